"""LTI Dynamic Registration, the tool's side (1EdTech LTI Dynamic Registration 1.0).

An LMS administrator pastes the tool's registration URL into the LMS. The LMS opens it
with ``openid_configuration`` (where its OpenID configuration lives) and, usually, a
``registration_token``. The tool fetches and checks the configuration, posts its own
client metadata to the LMS's registration endpoint, and stores the new platform under
the credential the registration URL names: pending until an admin approves it, or active
at once when the credential says so.

The registration URL carries a signed token naming the credential, so only someone the
tool's admin gave the URL to can attach an LMS to that credential.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

import httpx

from ltipro.crypto import Signer, TokenError
from ltipro.extension import LmsDetails
from ltipro.lti.keys import UnsafeURL, resolve_public
from ltipro.plugins import GENERIC
from ltipro.settings import Settings
from ltipro.storage.repository import Conflict, Credential, Platform, Repository
from ltipro.tool import Tool

log = logging.getLogger(__name__)

PLATFORM_CONFIGURATION = "https://purl.imsglobal.org/spec/lti-platform-configuration"
TOOL_CONFIGURATION = "https://purl.imsglobal.org/spec/lti-tool-configuration"
CLOSE_MESSAGE = "org.imsglobal.lti.close"

SIGNER_PURPOSE = "dynamic-registration"
CREDENTIAL_PARAMETER = "credential"
DEFAULT_LINK_DAYS = 30
MAX_LINK_DAYS = 365

TOOL_NAME = "Meetings"
TOOL_DESCRIPTION = "Video meetings in LMS courses: schedule, join and review them from the course."
# Who the user is, so the tool can match them to a meetings account; nothing more.
REQUESTED_CLAIMS = ("iss", "sub", "name", "given_name", "family_name", "email")
COURSE_NAVIGATION = "course_navigation"

REQUIRED_FIELDS = (
    "issuer",
    "authorization_endpoint",
    "token_endpoint",
    "jwks_uri",
    "registration_endpoint",
)
ENDPOINT_FIELDS = REQUIRED_FIELDS[1:]

# A configuration or registration answer is a few kilobytes; a platform that sends
# megabytes is broken or hostile, and the tool does not hold it in memory.
MAX_RESPONSE_BYTES = 256 * 1024
MAX_URL_LENGTH = 1000  # the platforms table's URL columns
MAX_ISSUER_LENGTH = 500
MAX_ID_LENGTH = 255
MAX_REGISTRATION_TOKEN_LENGTH = 8192
MAX_ERROR_TEXT = 500
# RFC 6750's b64token: what may follow "Bearer " in an Authorization header.
BEARER_TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")


class RegistrationError(Exception):
    """A dynamic registration the tool refuses or cannot complete.

    ``code`` is a short stable reason, ``message`` is shown to the LMS administrator,
    ``status`` is the HTTP status of the page (always 4xx), ``hint`` says what to change.
    """

    def __init__(self, code: str, message: str, *, status: int = 400, hint: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status
        self.hint = hint

    def __repr__(self) -> str:
        return f"RegistrationError({self.code!r}, {self.message!r})"


# -- the registration URL ---------------------------------------------------------------------


def registration_signer(secret_key: str) -> Signer:
    """The signer of registration-URL tokens (its own purpose: no other token passes)."""
    return Signer(secret_key, SIGNER_PURPOSE)


def registration_url(
    settings: Settings, credential: Credential, days: int = DEFAULT_LINK_DAYS
) -> str:
    """The URL an LMS administrator pastes into the LMS to register it under ``credential``.

    It stays valid for ``days`` days and can register any number of LMSs until then.
    """
    if not 1 <= days <= MAX_LINK_DAYS:
        raise ValueError(f"a registration URL lasts 1 to {MAX_LINK_DAYS} days (got {days})")
    token = registration_signer(settings.secret_key).sign(
        {"credential": credential.name, "credential_id": credential.id}, days * 86400
    )
    return settings.url("/lti/register") + "?" + urlencode({CREDENTIAL_PARAMETER: token})


async def credential_for_link(repo: Repository, secret_key: str, token: str | None) -> Credential:
    """The credential a registration URL's token names, or :class:`RegistrationError`."""
    new_link = "Ask the tool's administrator for a new one (`ltipro platforms register-url`)."
    if not token:
        raise RegistrationError(
            "missing_credential",
            "This registration URL is incomplete: it does not say which of the tool's "
            "credentials the LMS joins.",
            hint="Paste the whole URL that `ltipro platforms register-url --credential NAME` "
            "printed, including its ?credential= part.",
        )
    try:
        if len(token) > 2000:
            raise TokenError("malformed token")
        body = registration_signer(secret_key).verify(token)
    except TokenError as exc:
        if str(exc) == "expired":
            raise RegistrationError(
                "expired_registration_url",
                "This registration URL has expired.",
                status=403,
                hint=new_link,
            ) from None
        raise RegistrationError(
            "bad_registration_url",
            "This registration URL is not one the tool made.",
            status=403,
            hint="Check that the whole URL was pasted unchanged. " + new_link,
        ) from None
    name = body.get("credential")
    credential = await repo.find_credential(name) if isinstance(name, str) else None
    # The id guards against a credential removed and made again under the same name.
    if credential is None or credential.id != body.get("credential_id"):
        raise RegistrationError(
            "unknown_credential",
            "The tool's credential this registration URL was made for no longer exists.",
            status=404,
            hint=new_link,
        )
    return credential


# -- the platform's configuration ---------------------------------------------------------


@dataclass(frozen=True)
class PlatformConfiguration:
    """The parts of an LMS's OpenID configuration the tool uses."""

    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    registration_endpoint: str
    product_family_code: str
    version: str | None
    messages_supported: tuple[Mapping[str, Any], ...]

    def placements(self, message_type: str) -> tuple[str, ...] | None:
        """The placements the LMS lists for a message type; ``None`` when it lists none."""
        for message in self.messages_supported:
            if message.get("type") == message_type:
                listed = message.get("placements")
                if isinstance(listed, list):
                    return tuple(p for p in listed if isinstance(p, str))
        return None


def issuer_matches(configuration_url: str, issuer: str) -> bool:
    """Whether the configuration URL starts with the issuer, at a path boundary.

    A plain prefix test would let ``https://lms.example.edu.attacker.test/...`` speak for
    the issuer ``https://lms.example.edu``.
    """
    try:
        parts = urlsplit(issuer)
    except ValueError:
        return False
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return False
    if parts.query or parts.fragment:
        return False
    if not configuration_url.startswith(issuer):
        return False
    rest = configuration_url[len(issuer) :]
    return issuer.endswith("/") or rest == "" or rest[0] in "/?#"


def read_platform_configuration(url: str, data: Any) -> PlatformConfiguration:
    """Check an LMS's OpenID configuration fetched from ``url``."""
    if not isinstance(data, dict):
        raise RegistrationError(
            "bad_configuration",
            "The LMS's configuration is not a JSON object.",
            hint=f"{url} must answer with the LMS's OpenID configuration.",
        )
    missing = [
        name for name in REQUIRED_FIELDS if not isinstance(data.get(name), str) or not data[name]
    ]
    lti = data.get(PLATFORM_CONFIGURATION)
    if not isinstance(lti, dict):
        lti = None
        missing.append(PLATFORM_CONFIGURATION)
    elif not isinstance(code := lti.get("product_family_code"), str) or not code.strip():
        missing.append(f"{PLATFORM_CONFIGURATION} product_family_code")
    if missing or lti is None:
        raise RegistrationError(
            "incomplete_configuration",
            "The LMS's configuration lacks " + ", ".join(missing) + ".",
            hint=f"Check that {url} is the LMS's LTI OpenID configuration and that the LMS "
            "supports LTI Dynamic Registration.",
        )
    issuer = data["issuer"]
    if len(issuer) > MAX_ISSUER_LENGTH or not issuer_matches(url, issuer):
        raise RegistrationError(
            "issuer_mismatch",
            "The LMS's configuration names an issuer it was not fetched from.",
            hint=f"The configuration at {url} says its issuer is {issuer[:200]!r}; the "
            "configuration URL must start with the issuer.",
        )
    for name in ENDPOINT_FIELDS:
        if len(data[name]) > MAX_URL_LENGTH:
            raise RegistrationError(
                "bad_configuration",
                f"The LMS's {name} is longer than {MAX_URL_LENGTH} characters.",
            )
    code = lti["product_family_code"].strip()[:MAX_ID_LENGTH]
    version = lti.get("version")
    supported = lti.get("messages_supported")
    return PlatformConfiguration(
        issuer=issuer,
        authorization_endpoint=data["authorization_endpoint"],
        token_endpoint=data["token_endpoint"],
        jwks_uri=data["jwks_uri"],
        registration_endpoint=data["registration_endpoint"],
        product_family_code=code,
        version=version if isinstance(version, str) else None,
        messages_supported=tuple(
            m for m in (supported if isinstance(supported, list) else []) if isinstance(m, dict)
        ),
    )


async def check_endpoints(tool: Tool, configuration: PlatformConfiguration) -> None:
    """Every URL the tool will call or send browsers to must pass the same safety check."""
    for name in ENDPOINT_FIELDS:
        await _check_safe(tool, getattr(configuration, name), "unsafe_endpoint", f"LMS's {name}")


SAFE_URL_HINT = (
    "The tool only talks to LMSs on public https:// addresses "
    "(LTIPRO_ALLOW_PRIVATE_URLS=1 allows others for test set-ups)."
)


async def _check_safe(tool: Tool, url: str, code: str, what: str) -> None:
    """The tool's rule for URLs it fetches: public https://, unless the installation allows more."""
    try:
        await resolve_public(
            url,
            allow_private=tool.settings.allow_private_urls,
            resolver=tool.platform_keys.resolver,
        )
    except UnsafeURL as exc:
        raise RegistrationError(code, f"The {what} is refused: {exc}.", hint=SAFE_URL_HINT) from exc
    except ValueError as exc:
        # Not a URL at all (``https://[x``), or a host name no resolver accepts.
        raise RegistrationError(
            code, f"The {what} is not a valid URL: {url[:200]!r}.", hint=SAFE_URL_HINT
        ) from exc


# -- what the tool asks for ---------------------------------------------------------------


def course_navigation_placement(configuration: PlatformConfiguration) -> str | None:
    """The LMS's own name for the course-navigation placement, where it lists one."""
    listed = configuration.placements("LtiResourceLinkRequest") or ()
    if COURSE_NAVIGATION in listed:
        return COURSE_NAVIGATION
    # Some LMSs qualify their placement names (``https://canvas.instructure.com/lti/...``).
    for name in listed:
        if re.split(r"[/#]", name)[-1] == COURSE_NAVIGATION:
            return name
    return None


def tool_metadata(settings: Settings, configuration: PlatformConfiguration) -> dict[str, Any]:
    """The client metadata the tool registers with (LTI Dynamic Registration 1.0, 3.5)."""
    launch_url = settings.url("/lti/launch")
    resource_link: dict[str, Any] = {
        "type": "LtiResourceLinkRequest",
        "target_link_uri": launch_url,
        "label": TOOL_NAME,
    }
    placement = course_navigation_placement(configuration)
    if placement:
        resource_link["placements"] = [placement]
    deep_linking = {
        "type": "LtiDeepLinkingRequest",
        "target_link_uri": launch_url,
        "label": TOOL_NAME,
    }
    return {
        "application_type": "web",
        "response_types": ["id_token"],
        "grant_types": ["implicit", "client_credentials"],
        "initiate_login_uri": settings.url("/lti/login"),
        "redirect_uris": [launch_url],
        "client_name": TOOL_NAME,
        "jwks_uri": settings.url("/.well-known/jwks.json"),
        "token_endpoint_auth_method": "private_key_jwt",
        # No LTI Advantage service is used, so none is asked for.
        "scope": "",
        TOOL_CONFIGURATION: {
            "domain": settings.base_host,
            "description": TOOL_DESCRIPTION,
            "target_link_uri": launch_url,
            "claims": list(REQUESTED_CLAIMS),
            "messages": [resource_link, deep_linking],
        },
    }


@dataclass(frozen=True)
class PlatformAnswer:
    """What the LMS answered to the registration."""

    client_id: str
    deployment_id: str | None


def read_registration_answer(data: Any) -> PlatformAnswer:
    """Check the LMS's answer to the registration: a client id and maybe a deployment."""
    consequence = (
        "The LMS may now hold a registration the tool does not know: remove it in the LMS "
        "and register again."
    )
    if not isinstance(data, dict):
        raise RegistrationError(
            "bad_registration_answer",
            "The LMS's answer to the registration is not a JSON object.",
            status=424,
            hint=consequence,
        )
    client_id = _identifier(data.get("client_id"))
    if client_id is None:
        raise RegistrationError(
            "bad_registration_answer",
            "The LMS's answer to the registration has no usable client_id.",
            status=424,
            hint=consequence,
        )
    deployment_id = None
    tool_configuration = data.get(TOOL_CONFIGURATION)
    if isinstance(tool_configuration, dict) and tool_configuration.get("deployment_id") not in (
        None,
        "",
    ):
        deployment_id = _identifier(tool_configuration["deployment_id"])
        if deployment_id is None:
            raise RegistrationError(
                "bad_registration_answer",
                "The LMS's answer to the registration has a deployment_id the tool cannot use.",
                status=424,
                hint=consequence,
            )
    return PlatformAnswer(client_id=client_id, deployment_id=deployment_id)


def _identifier(value: Any) -> str | None:
    """An id the LMS sent as a string or a number, within the column's length."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        value = str(value)
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_ID_LENGTH:
        return None
    return value


def choose_lms(product_family_code: str, details: Mapping[str, LmsDetails]) -> str:
    """The loaded plugin whose LMS sends this product family code, else ``generic``."""
    wanted = product_family_code.strip().lower()
    for name, detail in details.items():
        if wanted in (code.lower() for code in detail.product_family_codes):
            return name
    return GENERIC


# -- talking to the LMS ---------------------------------------------------------------------


async def _exchange(
    tool: Tool,
    method: str,
    url: str,
    *,
    what: str,
    headers: Mapping[str, str],
    body: Any = None,
) -> tuple[int, bytes]:
    """One request to the LMS: its status and body, read up to :data:`MAX_RESPONSE_BYTES`."""
    try:
        async with tool.http.stream(
            method,
            url,
            headers=dict(headers),
            json=body,
            timeout=tool.settings.http_timeout,
        ) as response:
            received = bytearray()
            async for chunk in response.aiter_bytes():
                received += chunk
                if len(received) > MAX_RESPONSE_BYTES:
                    raise RegistrationError(
                        "answer_too_large",
                        f"The LMS's answer to {what} is larger than the tool accepts.",
                        status=424,
                        hint=f"{url} sent more than {MAX_RESPONSE_BYTES // 1024} KiB.",
                    )
            return response.status_code, bytes(received)
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        raise RegistrationError(
            "platform_unreachable",
            f"The LMS could not be reached for {what}.",
            status=424,
            hint=f"{method} {url} failed: {str(exc) or type(exc).__name__}. Check that the LMS is "
            "reachable from the tool's server.",
        ) from exc


def _json(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return _NOT_JSON


_NOT_JSON = object()


def platform_error_text(raw: bytes) -> str:
    """What an LMS said when refusing, in the shapes LMSs use (OAuth errors, Canvas's)."""
    data = _json(raw)
    parts: list[str] = []
    if isinstance(data, dict):
        for key in ("error_description", "errorMessage", "message", "error"):
            if isinstance(data.get(key), str) and data[key].strip():
                parts.append(data[key].strip())
        errors = data.get("errors")
        if isinstance(errors, list):
            parts.extend(
                str(e.get("message")).strip()
                for e in errors
                if isinstance(e, dict) and e.get("message")
            )
    if not parts:
        parts = [raw.decode("utf-8", "replace").strip()]
    text = " — ".join(dict.fromkeys(p for p in parts if p)) or "(no explanation given)"
    return text[:MAX_ERROR_TEXT]


async def fetch_configuration(
    tool: Tool, url: str, registration_token: str | None = None
) -> PlatformConfiguration:
    """Fetch and check the LMS's OpenID configuration from ``url``."""
    if not url:
        raise RegistrationError(
            "missing_configuration",
            "The LMS did not say where its configuration is.",
            hint="Start the registration from the LMS's dynamic registration page; it adds "
            "openid_configuration to the URL.",
        )
    if len(url) > MAX_URL_LENGTH:
        raise RegistrationError(
            "bad_configuration_url", "The LMS's configuration URL is too long to be real."
        )
    await _check_safe(tool, url, "unsafe_configuration_url", "LMS's configuration URL")
    headers = {"Accept": "application/json"}
    if registration_token:
        # Canvas hands out its configuration only with the registration token.
        headers["Authorization"] = f"Bearer {registration_token}"
    status, raw = await _exchange(tool, "GET", url, what="its configuration", headers=headers)
    if status != 200:
        raise RegistrationError(
            "configuration_unavailable",
            f"The LMS did not hand over its configuration (HTTP {status}).",
            status=424,
            hint=f"GET {url} answered {status}: {platform_error_text(raw)}",
        )
    data = _json(raw)
    if data is _NOT_JSON:
        raise RegistrationError(
            "bad_configuration",
            "The LMS's configuration is not JSON.",
            hint=f"{url} must answer with the LMS's OpenID configuration.",
        )
    return read_platform_configuration(url, data)


async def post_registration(
    tool: Tool,
    configuration: PlatformConfiguration,
    metadata: Mapping[str, Any],
    registration_token: str | None,
) -> PlatformAnswer:
    """Send the tool's client metadata to the LMS's registration endpoint."""
    headers = {"Accept": "application/json", "Content-Type": "application/json"}
    if registration_token:
        headers["Authorization"] = f"Bearer {registration_token}"
    status, raw = await _exchange(
        tool,
        "POST",
        configuration.registration_endpoint,
        what="the registration",
        headers=headers,
        body=dict(metadata),
    )
    if status not in (200, 201):
        raise RegistrationError(
            "registration_refused",
            f"The LMS refused the registration: {platform_error_text(raw)}",
            status=424,
            hint=f"The LMS's registration endpoint answered HTTP {status}. Start the "
            "registration again from the LMS; a registration token is valid only once and "
            "for a short time.",
        )
    data = _json(raw)
    return read_registration_answer(None if data is _NOT_JSON else data)


# -- the whole registration ---------------------------------------------------------------


@dataclass(frozen=True)
class RegistrationOutcome:
    """A platform the tool now knows, and whether it may launch yet."""

    platform: Platform
    configuration: PlatformConfiguration

    @property
    def active(self) -> bool:
        return self.platform.status == "active"

    @property
    def deployment_ids(self) -> Sequence[str]:
        return [d for d, _ in self.platform.deployments]


async def register_platform(
    tool: Tool,
    credential: Credential,
    openid_configuration: str,
    registration_token: str | None,
) -> RegistrationOutcome:
    """Register the tool with the LMS and store the LMS under ``credential``.

    Nothing is stored unless the LMS accepted the registration and its answer is usable.
    """
    if registration_token is not None and (
        len(registration_token) > MAX_REGISTRATION_TOKEN_LENGTH
        or not BEARER_TOKEN.fullmatch(registration_token)
    ):
        raise RegistrationError(
            "bad_registration_token",
            "The LMS's registration token is not a token the tool can send back to it.",
            hint="A registration token is at most "
            f"{MAX_REGISTRATION_TOKEN_LENGTH} characters of letters, digits and -._~+/=.",
        )
    configuration = await fetch_configuration(
        tool, openid_configuration.strip(), registration_token
    )
    await check_endpoints(tool, configuration)
    answer = await post_registration(
        tool, configuration, tool_metadata(tool.settings, configuration), registration_token
    )
    lms = choose_lms(configuration.product_family_code, tool.plugins.details)
    host = urlsplit(configuration.issuer).netloc
    title = (
        tool.plugins.title(lms) if lms != GENERIC else configuration.product_family_code
    ) or "LMS"
    try:
        platform = await tool.repo.add_platform(
            credential,
            lms=lms,
            issuer=configuration.issuer,
            client_id=answer.client_id,
            deployment_ids=[answer.deployment_id] if answer.deployment_id else [],
            auth_login_url=configuration.authorization_endpoint,
            auth_token_url=configuration.token_endpoint,
            jwks_url=configuration.jwks_uri,
            status="active" if credential.auto_approve_registrations else "pending",
            source="dynamic",
            name=f"{title} ({host})"[:MAX_ID_LENGTH],
        )
    except Conflict as exc:
        raise RegistrationError(
            "already_registered",
            "The tool already has a registration with this LMS and client id.",
            status=409,
            hint=str(exc),
        ) from exc
    log.info(
        "LMS %s (%s, client id %s) registered itself under credential %s as platform %s (%s)",
        configuration.issuer,
        lms,
        answer.client_id,
        credential.name,
        platform.id,
        platform.status,
    )
    return RegistrationOutcome(platform=platform, configuration=configuration)
