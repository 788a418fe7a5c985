"""The Moodle plugin's settings: where the Moodle site is and the web-service token it uses.

Both are set per platform (a Moodle site is one LTI 1.3 platform), or once for the
credential when it serves a single site. The site URL defaults to the platform's issuer,
which Moodle sets to its own ``wwwroot`` (``https://moodle.example.edu`` or
``https://example.edu/moodle``), so most installations only paste the token.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from ltipro.extension import SettingSpec
from ltipro.hookspecs import hookimpl
from ltipro.lmsapi import LmsApi, LmsNotConfigured, LmsNotSetUp

NAME = "moodle"
SITE_URL = "site_url"
TOKEN = "ws_token"

SERVICE_FUNCTIONS = (
    "core_calendar_create_calendar_events",
    "core_calendar_delete_calendar_events",
    "core_calendar_get_calendar_events",
)

TOKEN_HELP = (
    "A token of a Moodle external service holding the functions "
    + ", ".join(SERVICE_FUNCTIONS)
    + ". In Moodle: Site administration > Server > Web services > Manage tokens. The "
    "token's user needs the capability moodle/calendar:manageentries in the courses "
    "(a system role with it, or the Manager role) and webservice/rest:use."
)


def clean_site_url(raw: str) -> str:
    """A Moodle site's ``wwwroot``: an https:// URL, kept without a trailing slash."""
    text = raw.strip()
    parts = urlsplit(text)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ValueError(
            "give the Moodle site's address as a full URL, e.g. https://moodle.example.edu"
        )
    if parts.query or parts.fragment:
        raise ValueError("give the Moodle site's address without ?query or #fragment")
    path = parts.path.rstrip("/")
    for suffix in ("/webservice/rest/server.php", "/login/index.php"):
        path = path.removesuffix(suffix)
    return f"{parts.scheme}://{parts.netloc}{path}"


def clean_token(raw: str) -> str:
    """Moodle's tokens are 32 hexadecimal characters (``md5`` of a random string)."""
    token = raw.strip()
    if not token or any(c.isspace() for c in token):
        raise ValueError("paste the token exactly as Moodle shows it, without spaces")
    return token


@hookimpl
def plugin_settings() -> list[SettingSpec]:
    """The Moodle site's address and the web-service token calendar sync uses."""
    return [
        SettingSpec(
            NAME,
            SITE_URL,
            "Moodle site URL",
            scope="platform",
            help=(
                "The address of the Moodle site (its wwwroot), e.g. https://moodle.example.edu. "
                "Leave empty to use the platform's issuer, which Moodle sets to this address."
            ),
            validate=clean_site_url,
        ),
        SettingSpec(
            NAME,
            TOKEN,
            "Web-service token",
            scope="platform",
            help=TOKEN_HELP,
            secret=True,
            validate=clean_token,
        ),
    ]


def site_url(settings: Mapping[str, Any], api: LmsApi) -> str:
    """The Moodle site's address: the setting, else the platform's issuer."""
    configured = settings.get(SITE_URL)
    if isinstance(configured, str) and configured.strip():
        return configured.strip().rstrip("/")
    if api.issuer:
        try:
            return clean_site_url(api.issuer)
        except ValueError:
            pass
    raise LmsNotConfigured(
        "the Moodle site URL is not set and the platform's issuer is not a URL: set the "
        f"moodle setting {SITE_URL!r} for this platform"
    )


def token(settings: Mapping[str, Any]) -> str:
    """The web-service token, or :class:`LmsNotConfigured` saying how to make one."""
    value = settings.get(TOKEN)
    if isinstance(value, str) and value.strip():
        return value.strip()
    raise LmsNotSetUp(f"the Moodle web-service token is not set ({TOKEN!r}). {TOKEN_HELP}")
