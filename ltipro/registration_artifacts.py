"""What an LMS administrator pastes into the LMS to install the tool.

Each LMS plugin answers the ``registration_artifacts`` hook with the configuration its
LMS takes (a Canvas developer key, the values of a Moodle form, ...). The pieces every
LMS shares are built here, once, so every plugin describes the same tool:

- :func:`tool_urls`: the tool's login, launch and key-set URLs for its public URL;
- :func:`lti11_cartridge`: the LTI 1.1 ``basic_lti_link`` (IMS Common Cartridge) XML;
- :func:`values_artifact`: the fields of an LMS form, one ``name: value`` line each;
- :func:`dynamic_registration_artifact`: the LTI Dynamic Registration URL of the
  credential whose artefacts are being built;
- :func:`standard_artifacts`: all of the above for an LMS the tool knows nothing
  special about (the ``generic`` plugin's answer).

Every artefact asks the LMS for the user's name and email address, puts the tool in the
course navigation where the LMS has one, and names the tool's key-set URL instead of a
key: a key pasted into an LMS would stop every launch at the tool's next key rotation.

:func:`credential_artifacts` is how the core asks a plugin (``ltipro platforms config``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit
from xml.sax.saxutils import escape, quoteattr

from ltipro.extension import RegistrationArtifact
from ltipro.lti.registration import DEFAULT_LINK_DAYS, TOOL_DESCRIPTION, TOOL_NAME
from ltipro.plugins import PluginError

if TYPE_CHECKING:
    from ltipro.storage.repository import Credential
    from ltipro.tool import Tool

LOGIN_PATH = "/lti/login"
LAUNCH_PATH = "/lti/launch"
JWKS_PATH = "/.well-known/jwks.json"
TOOL_ID = "ltipro"

# The custom parameters the core reads from every LMS: the user's time zone (the
# credential's "timezone from the LMS" option) and the courses a course was copied from
# (so a copy takes over the original's meetings). Plugins add their LMS's own.
STANDARD_CUSTOM: Mapping[str, str] = {
    "person_address_timezone": "$Person.address.timezone",
    "context_id_history": "$Context.id.history",
}

CARTRIDGE_NS = "http://www.imsglobal.org/xsd/imslticc_v1p0"
BLTI_NS = "http://www.imsglobal.org/xsd/imsbasiclti_v1p0"
LTICM_NS = "http://www.imsglobal.org/xsd/imslticm_v1p0"
LTICP_NS = "http://www.imsglobal.org/xsd/imslticp_v1p0"
XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"
SCHEMA_LOCATIONS = (
    (CARTRIDGE_NS, "http://www.imsglobal.org/xsd/lti/ltiv1p0/imslticc_v1p0.xsd"),
    (BLTI_NS, "http://www.imsglobal.org/xsd/lti/ltiv1p0/imsbasiclti_v1p0.xsd"),
    (LTICM_NS, "http://www.imsglobal.org/xsd/lti/ltiv1p0/imslticm_v1p0.xsd"),
    (LTICP_NS, "http://www.imsglobal.org/xsd/lti/ltiv1p0/imslticp_v1p0.xsd"),
)
CANVAS_PLATFORM = "canvas.instructure.com"


@dataclass(frozen=True)
class ToolUrls:
    """The tool's addresses an LMS needs, for one public base URL.

    ``launch`` is also the redirect URI, the target link URI and the deep-linking URL:
    the tool answers every LTI message there.
    """

    base_url: str
    login: str
    launch: str
    jwks: str
    domain: str


def tool_urls(base_url: str) -> ToolUrls:
    """The tool's login, launch and key-set URLs under ``base_url`` (``LTIPRO_BASE_URL``)."""
    base = base_url.rstrip("/")
    return ToolUrls(
        base_url=base,
        login=base + LOGIN_PATH,
        launch=base + LAUNCH_PATH,
        jwks=base + JWKS_PATH,
        domain=urlsplit(base).netloc.lower(),
    )


def custom_lines(custom: Mapping[str, str]) -> list[str]:
    """Custom parameters as an LMS's text box takes them: one ``name=value`` a line."""
    return [f"{name}={value}" for name, value in custom.items()]


# -- values ----------------------------------------------------------------------------------


def values_artifact(
    lms: str, title: str, rows: Sequence[tuple[str, str]], help: str = ""
) -> RegistrationArtifact:
    """The fields of an LMS form as a ``values`` artefact, one ``name: value`` line each.

    A name given on several rows is a field that takes several lines (custom
    parameters, redirect URLs): each row is one of its lines.
    """
    lines = []
    for name, value in rows:
        if not name or ":" in name or "\n" in name or "\n" in value:
            raise ValueError(f"a value row needs a name without ':' and one line: {name!r}")
        lines.append(f"{name}: {value}")
    return RegistrationArtifact(lms, title, "values", "\n".join(lines), help)


def read_values(content: str) -> list[tuple[str, str]]:
    """The rows of a ``values`` artefact, in order (the reverse of :func:`values_artifact`)."""
    rows = []
    for line in content.splitlines():
        name, sep, value = line.partition(": ")
        if not sep:
            raise ValueError(f"not a 'name: value' line: {line!r}")
        rows.append((name, value))
    return rows


# -- the LTI 1.1 cartridge -------------------------------------------------------------------


def _property(name: str, value: str, indent: str) -> str:
    return f"{indent}<lticm:property name={quoteattr(name)}>{escape(value)}</lticm:property>"


def lti11_cartridge(
    base_url: str,
    *,
    custom: Mapping[str, str] = STANDARD_CUSTOM,
    title: str = TOOL_NAME,
    description: str = TOOL_DESCRIPTION,
) -> str:
    """The tool as an LTI 1.1 ``cartridge_basiclti_link`` (IMS Common Cartridge) document.

    It carries the launch URL (and the same URL as ``secure_launch_url`` when it is
    https://), the ``custom`` parameters, and Canvas's extension: a course-navigation
    link and the ``public`` privacy level, so Canvas sends name and email. Elements come
    in the order the IMS schema's sequence requires. The consumer key and shared secret
    are never in it: the LMS administrator types them separately.
    """
    urls = tool_urls(base_url)
    locations = "\n    ".join(f"{ns} {xsd}" for ns, xsd in SCHEMA_LOCATIONS)
    lines = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        f'<cartridge_basiclti_link xmlns="{CARTRIDGE_NS}"',
        f'    xmlns:blti="{BLTI_NS}"',
        f'    xmlns:lticm="{LTICM_NS}"',
        f'    xmlns:lticp="{LTICP_NS}"',
        f'    xmlns:xsi="{XSI_NS}"',
        f'    xsi:schemaLocation="{locations}">',
        f"  <blti:title>{escape(title)}</blti:title>",
        f"  <blti:description>{escape(description)}</blti:description>",
    ]
    if custom:
        lines.append("  <blti:custom>")
        lines += [_property(name, value, "    ") for name, value in custom.items()]
        lines.append("  </blti:custom>")
    lines += [
        f"  <blti:extensions platform={quoteattr(CANVAS_PLATFORM)}>",
        _property("tool_id", TOOL_ID, "    "),
        _property("privacy_level", "public", "    "),
        _property("domain", urls.domain, "    "),
        '    <lticm:options name="course_navigation">',
        _property("url", urls.launch, "      "),
        _property("text", title, "      "),
        _property("enabled", "true", "      "),
        "    </lticm:options>",
        "  </blti:extensions>",
        f"  <blti:launch_url>{escape(urls.launch)}</blti:launch_url>",
    ]
    if urls.launch.startswith("https://"):
        lines.append(f"  <blti:secure_launch_url>{escape(urls.launch)}</blti:secure_launch_url>")
    lines += [
        "  <blti:vendor>",
        f"    <lticp:code>{escape(urls.domain)}</lticp:code>",
        f"    <lticp:name>{escape(title)}</lticp:name>",
        f"    <lticp:url>{escape(urls.base_url)}</lticp:url>",
        "  </blti:vendor>",
        "</cartridge_basiclti_link>",
    ]
    return "\n".join(lines) + "\n"


def cartridge_artifact(
    lms: str, base_url: str, custom: Mapping[str, str] = STANDARD_CUSTOM, help: str = ""
) -> RegistrationArtifact:
    """The LTI 1.1 cartridge of :func:`lti11_cartridge` as an ``xml`` artefact."""
    return RegistrationArtifact(
        lms,
        "LTI 1.1 configuration (cartridge XML)",
        "xml",
        lti11_cartridge(base_url, custom=custom),
        help
        or "For an LMS still on LTI 1.1: paste this XML where the LMS takes a tool's "
        "configuration, then type the credential's LTI 1.1 consumer key and shared secret.",
    )


# -- dynamic registration --------------------------------------------------------------------

# The registration URL is signed with the installation's secret key, which plugins never
# see, and the hook's signature is fixed; so the core makes the URL and lends it to the
# plugin for the duration of the hook call.
_registration_url: ContextVar[str | None] = ContextVar("ltipro_registration_url", default=None)


def dynamic_registration_url() -> str | None:
    """The LTI Dynamic Registration URL of the credential whose artefacts are being built.

    It is the URL ``ltipro platforms register-url`` prints. Outside
    :func:`credential_artifacts` (a plugin's hook called directly, in a test) there is
    none, and this returns ``None``.
    """
    return _registration_url.get()


@contextmanager
def lending_registration_url(url: str | None) -> Iterator[None]:
    """Make ``url`` the :func:`dynamic_registration_url` for the code run inside."""
    token = _registration_url.set(url)
    try:
        yield
    finally:
        _registration_url.reset(token)


def dynamic_registration_artifact(lms: str, help: str = "") -> RegistrationArtifact | None:
    """The credential's dynamic-registration URL as a ``url`` artefact, when there is one."""
    url = dynamic_registration_url()
    if url is None:
        return None
    return RegistrationArtifact(
        lms,
        "LTI Dynamic Registration URL",
        "url",
        url,
        help
        or "Paste this URL into the LMS's LTI Dynamic Registration form. It registers LMSs "
        "under this credential until it expires; the tool's administrator then approves "
        "each with `ltipro platforms approve ID` (unless the credential approves "
        "registrations automatically).",
    )


# -- the standard set --------------------------------------------------------------------------


def lti13_values(
    base_url: str, custom: Mapping[str, str] = STANDARD_CUSTOM
) -> list[tuple[str, str]]:
    """The tool's LTI 1.3 values under their usual names, for an LMS's manual form."""
    urls = tool_urls(base_url)
    return [
        ("OpenID Connect login initiation URL", urls.login),
        ("Target link URI (launch URL)", urls.launch),
        ("Redirect URI", urls.launch),
        ("Deep linking URL", urls.launch),
        ("Public keyset (JWKS) URL", urls.jwks),
        ("Tool domain", urls.domain),
        ("Claims to share", "name, given_name, family_name, email"),
        ("Placement", "course navigation (a link in the course menu), where the LMS has one"),
        *(("Custom parameter", line) for line in custom_lines(custom)),
    ]


def standard_artifacts(lms: str, base_url: str) -> list[RegistrationArtifact]:
    """What any standard LTI platform needs: LTI 1.3 values, dynamic registration, LTI 1.1."""
    artifacts = [
        values_artifact(
            lms,
            "LTI 1.3 tool values",
            lti13_values(base_url),
            "Type these into the LMS's form for a new LTI 1.3 (LTI Advantage) tool. Give "
            "the key-set URL, never a pasted key, and let the LMS share the user's name "
            "and email address.",
        ),
        dynamic_registration_artifact(lms),
        cartridge_artifact(lms, base_url),
    ]
    return [a for a in artifacts if a is not None]


# -- what the core calls -----------------------------------------------------------------------


async def credential_artifacts(
    tool: Tool, credential: Credential, lms: str, *, days: int = DEFAULT_LINK_DAYS
) -> list[RegistrationArtifact]:
    """The artefacts that install the tool in ``lms`` for ``credential``.

    The plugin of ``lms`` gets its effective settings for the credential, and the
    credential's registration URL (valid ``days`` days) through
    :func:`dynamic_registration_url`. A plugin that does not implement the hook gets
    :func:`standard_artifacts`. An answer that is not a list of
    :class:`~ltipro.extension.RegistrationArtifact` raises
    :class:`~ltipro.plugins.PluginError` naming the plugin.
    """
    from ltipro.lti.registration import registration_url
    from ltipro.plugin_settings import effective_settings

    if lms not in tool.plugins.details:
        raise ValueError(f"no plugin for LMS {lms!r} is loaded")
    settings = await effective_settings(tool, credential, lms)
    url = registration_url(tool.settings, credential, days=days)
    with lending_registration_url(url):
        answer = await tool.plugins.call_lms(
            lms,
            "registration_artifacts",
            credential=credential.name,
            base_url=tool.settings.base_url,
            settings=settings,
        )
        if answer is None:
            return standard_artifacts(lms, tool.settings.base_url)
    if not isinstance(answer, Sequence) or not all(
        isinstance(a, RegistrationArtifact) for a in answer
    ):
        raise PluginError(
            f"the plugin {lms!r} answered registration_artifacts with "
            f"{type(answer).__name__}: it must return a list of RegistrationArtifact"
        )
    return list(answer)


__all__ = [
    "STANDARD_CUSTOM",
    "ToolUrls",
    "cartridge_artifact",
    "credential_artifacts",
    "custom_lines",
    "dynamic_registration_artifact",
    "dynamic_registration_url",
    "lending_registration_url",
    "lti11_cartridge",
    "lti13_values",
    "read_values",
    "standard_artifacts",
    "tool_urls",
    "values_artifact",
]
