"""The D2L plugin's settings: where Brightspace is and how the tool signs in to its API.

Brightspace's REST API (Valence) is called with an OAuth 2.0 app an administrator
registers in Brightspace (Admin Tools > Manage Extensibility > OAuth 2.0) and then
authorises once for a service account (``python -m ltipro_d2l connect``). Every setting
can be set for the credential or for one platform registration, since one credential may
serve several Brightspace instances, each with its own OAuth app.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from ltipro.extension import SettingSpec
from ltipro.hookspecs import hookimpl
from ltipro.lmsapi import LmsNotConfigured

NAME = "d2l"

#: The LE API version the plugin asks for unless the admin names another. D2L keeps each
#: version for years after newer ones come; ``GET /d2l/api/versions/`` on the Brightspace
#: instance lists the ones it serves.
DEFAULT_LE_VERSION = "1.82"
#: The calendar routes are not in Brightspace's scopes table, and routes without a scope
#: of their own need ``core:*:*``.
DEFAULT_SCOPE = "core:*:*"

_VERSION = re.compile(r"^\d{1,2}\.\d{1,3}$")
_SCOPE = re.compile(r"^[A-Za-z0-9_*]+:[A-Za-z0-9_*]+:[A-Za-z0-9_*]+$")


def clean_base_url(text: str) -> str:
    """A Brightspace address as ``https://host[:port]``: no path, query or fragment."""
    value = text.strip().rstrip("/")
    parts = urlsplit(value)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ValueError(
            "give the address of your Brightspace, such as https://school.brightspace.com"
        )
    if parts.path or parts.query or parts.fragment or parts.username or parts.password:
        raise ValueError(
            "give only the scheme and host of your Brightspace, such as "
            "https://school.brightspace.com (no path)"
        )
    return f"{parts.scheme}://{parts.netloc.lower()}"


def clean_le_version(text: str) -> str:
    value = text.strip()
    if not _VERSION.match(value):
        raise ValueError(
            "give an LE API version as Brightspace writes it, such as 1.82 "
            "(GET /d2l/api/versions/ on your Brightspace lists them)"
        )
    return value


def clean_scope(text: str) -> str:
    words = text.split()
    if not words or not all(_SCOPE.match(word) for word in words):
        raise ValueError(
            "give OAuth 2.0 scopes of the form group:resource:action separated by spaces, "
            "such as core:*:*"
        )
    return " ".join(words)


def clean_client_id(text: str) -> str:
    value = text.strip()
    if not value or any(c.isspace() for c in value) or len(value) > 200:
        raise ValueError("give the Client ID Brightspace showed when the OAuth 2.0 app was made")
    return value


@hookimpl
def plugin_settings() -> list[SettingSpec]:
    """Brightspace's address, the OAuth 2.0 app, the API version and scope."""
    where = "Admin Tools > Manage Extensibility > OAuth 2.0"
    return [
        SettingSpec(
            NAME,
            "base_url",
            "Brightspace address",
            scope="platform",
            help=(
                "The address of your Brightspace, such as https://school.brightspace.com. "
                "Empty: the LTI 1.3 issuer of the platform registration (or the address "
                "LTI 1.1 launches come from)."
            ),
            validate=clean_base_url,
        ),
        SettingSpec(
            NAME,
            "client_id",
            "OAuth 2.0 Client ID",
            scope="platform",
            help=f"The Client ID of the app registered in Brightspace under {where}.",
            validate=clean_client_id,
        ),
        SettingSpec(
            NAME,
            "client_secret",
            "OAuth 2.0 Client Secret",
            scope="platform",
            help=f"The Client Secret of that app ({where}).",
            secret=True,
            validate=lambda text: text.strip(),
        ),
        SettingSpec(
            NAME,
            "le_version",
            "LE API version",
            scope="platform",
            help=(
                f"The Brightspace LE API version calendar calls use (default {DEFAULT_LE_VERSION}). "
                "GET /d2l/api/versions/ on your Brightspace lists the ones it serves."
            ),
            default=DEFAULT_LE_VERSION,
            validate=clean_le_version,
        ),
        SettingSpec(
            NAME,
            "scope",
            "OAuth 2.0 scope",
            scope="platform",
            help=(
                "The scope the app was registered with. Brightspace's calendar routes need "
                f"{DEFAULT_SCOPE} (they have no scope of their own)."
            ),
            default=DEFAULT_SCOPE,
            validate=clean_scope,
        ),
    ]


@dataclass(frozen=True)
class D2lConfig:
    """The settings a call needs, checked: a missing one is an error for the admin."""

    base_url: str
    client_id: str
    client_secret: str
    le_version: str
    scope: str

    @property
    def le_base(self) -> str:
        """``https://host/d2l/api/le/<version>``: what every calendar route starts with."""
        return f"{self.base_url}/d2l/api/le/{self.le_version}"


def config_from(
    settings: Mapping[str, Any],
    *,
    issuer: str | None = None,
    domain: str | None = None,
    require_base: bool = True,
) -> D2lConfig:
    """The plugin's settings for a call, with the Brightspace address filled in.

    Without a ``base_url`` setting, the LTI 1.3 issuer (Brightspace issues launches from
    its own address) and then the launch's domain stand in for it. Connecting needs no
    address (Brightspace's OAuth service is the same for every instance):
    ``require_base=False`` leaves it empty when it is unknown.
    """
    base = settings.get("base_url") or ""
    if not base and issuer:
        parts = urlsplit(issuer)
        if parts.scheme and parts.netloc:
            base = f"{parts.scheme}://{parts.netloc}"
    if not base and domain:
        base = f"https://{domain}"
    if not base and require_base:
        raise LmsNotConfigured(
            "the Brightspace address is not known: set the d2l plugin's base_url setting "
            "(`ltipro plugins set --credential NAME d2l base_url=https://...`)"
        )
    client_id = settings.get("client_id") or ""
    client_secret = settings.get("client_secret") or ""
    if not client_id or not client_secret:
        raise LmsNotConfigured(
            "the Brightspace OAuth 2.0 app is not configured: set the d2l plugin's "
            "client_id and client_secret settings"
        )
    return D2lConfig(
        base_url=str(base).rstrip("/"),
        client_id=str(client_id),
        client_secret=str(client_secret),
        le_version=str(settings.get("le_version") or DEFAULT_LE_VERSION),
        scope=str(settings.get("scope") or DEFAULT_SCOPE),
    )
