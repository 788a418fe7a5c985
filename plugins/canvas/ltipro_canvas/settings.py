"""The Canvas plugin's settings: the API developer key, an optional admin token, the API URL.

Canvas has two kinds of developer keys. The tool's LTI key (the one launches come
through) cannot call the REST API; calendar sync needs an **API key** (Admin > Developer
Keys > + Developer Key > + API Key) whose client id and secret let each instructor
authorise the tool once ("Connect Canvas"), after which the tool acts as that instructor
for their meetings' calendar events. An installation that prefers one account-level
token (an admin's access token, from a Canvas user's Settings > + New Access Token) sets
``admin_access_token`` instead, or as the fallback for instructors who have not connected.

Every setting is ``platform``-scoped: set for the credential it holds for all its Canvas
platforms, and a platform (a second Canvas instance) can have its own.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from ltipro.extension import SettingSpec
from ltipro.hookspecs import hookimpl
from ltipro.lmsapi import LmsNotConfigured

NAME = "canvas"

CLIENT_ID = "api_client_id"
CLIENT_SECRET = "api_client_secret"
ADMIN_TOKEN = "admin_access_token"
API_BASE_URL = "api_base_url"

WHERE_THE_KEY_IS = (
    "In Canvas: Admin > Developer Keys > + Developer Key > + API Key. Set its Redirect URI "
    "to the tool's /plugins/canvas/oauth/callback address, save, switch the key ON, and "
    "copy the number in the Details column (client id) and the key shown under it (secret)."
)


def _client_id(text: str) -> str:
    value = text.strip()
    if not value or any(c.isspace() for c in value) or len(value) > 100:
        raise ValueError(
            "give the client id of the Canvas API developer key: one word of up to 100 "
            "characters, such as 10000000000123"
        )
    return value


def _secret(text: str) -> str:
    value = text.strip()
    if len(value) < 8 or any(c.isspace() for c in value):
        raise ValueError(
            "paste the whole value Canvas shows, without spaces (it is at least 8 characters)"
        )
    return value


def _base_url(text: str) -> str:
    value = text.strip().rstrip("/")
    parts = urlsplit(value)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ValueError("give the address of your Canvas, such as https://school.instructure.com")
    if parts.query or parts.fragment or parts.username or parts.password:
        raise ValueError(
            "give only the address of your Canvas (https://school.instructure.com), "
            "without a query, fragment or user name"
        )
    if parts.path not in ("", "/"):
        raise ValueError(
            f"give the address of your Canvas without a path ({parts.scheme}://"
            f"{parts.netloc}): the tool adds /api/v1/... itself"
        )
    return f"{parts.scheme}://{parts.netloc.lower()}"


SETTINGS: tuple[SettingSpec, ...] = (
    SettingSpec(
        NAME,
        CLIENT_ID,
        "API developer key: client id",
        scope="platform",
        help=(
            "The client id of a Canvas API developer key (not the LTI key launches use), "
            "so instructors can connect their Canvas calendar. " + WHERE_THE_KEY_IS
        ),
        validate=_client_id,
    ),
    SettingSpec(
        NAME,
        CLIENT_SECRET,
        "API developer key: secret",
        scope="platform",
        help="The secret (Key) of the same API developer key. " + WHERE_THE_KEY_IS,
        secret=True,
        validate=_secret,
    ),
    SettingSpec(
        NAME,
        ADMIN_TOKEN,
        "Admin access token (optional)",
        scope="platform",
        help=(
            "An access token of a Canvas account that may manage every course's calendar "
            "(Account > Settings > + New Access Token). Used for meetings whose host has "
            "not connected Canvas; leave empty to sync only with each host's own grant."
        ),
        secret=True,
        validate=_secret,
    ),
    SettingSpec(
        NAME,
        API_BASE_URL,
        "Canvas API address (optional)",
        scope="platform",
        help=(
            "Where the tool calls Canvas's REST API, such as https://school.instructure.com. "
            "Empty: the course's Canvas domain from launches (canvas_api_domain)."
        ),
        validate=_base_url,
    ),
)


@hookimpl
def plugin_settings() -> list[SettingSpec]:
    """The API developer key, the optional admin token and the API address."""
    return list(SETTINGS)


def api_base_url(settings: Mapping[str, Any], domain: str | None) -> str:
    """Canvas's address for API calls: the setting, else ``https://<course domain>``.

    Raises :class:`LmsNotConfigured` when neither is known, with what to set.
    """
    configured = settings.get(API_BASE_URL)
    if isinstance(configured, str) and configured:
        return configured.rstrip("/")
    if domain:
        return f"https://{domain.strip().lower().rstrip('/')}"
    raise LmsNotConfigured(
        "the Canvas address is unknown: set the canvas setting api_base_url "
        "(ltipro plugins set --credential NAME canvas api_base_url=https://school.instructure.com)"
    )


def client_credentials(settings: Mapping[str, Any]) -> tuple[str, str] | None:
    """The API developer key's client id and secret, or ``None`` when either is missing."""
    client_id = settings.get(CLIENT_ID)
    secret = settings.get(CLIENT_SECRET)
    if isinstance(client_id, str) and client_id and isinstance(secret, str) and secret:
        return client_id, secret
    return None


def admin_token(settings: Mapping[str, Any]) -> str | None:
    token = settings.get(ADMIN_TOKEN)
    return token if isinstance(token, str) and token else None
