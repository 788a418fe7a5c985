"""The Blackboard plugin's settings: the Learn site and the REST application's key and secret.

Learn's REST API authenticates an *application*: its key and secret come from the
Anthology Developer Portal, and the Learn administrator allows the application on the
site (Administrator Panel > Integrations > REST API Integrations), choosing the Learn
user whose role decides what it may do. Each is set per platform (a Learn site), or once
for the credential when it serves one site.

Every Learn site signs its LTI 1.3 launches with the shared issuer
``https://blackboard.com``, so the issuer cannot tell the site's address: the Learn URL
must be set (a self-hosted site with its own issuer gets it as the default).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from ltipro.extension import SettingSpec
from ltipro.hookspecs import hookimpl
from ltipro.lmsapi import LmsApi, LmsNotConfigured, LmsNotSetUp

NAME = "blackboard"
LEARN_URL = "learn_url"
APP_KEY = "app_key"
APP_SECRET = "app_secret"
SHARED_ISSUER = "https://blackboard.com"

INTEGRATION_HELP = (
    "In Learn: Administrator Panel > Integrations > REST API Integrations > Create "
    "Integration, with the application ID of this key, a Learn user whose system role has "
    "the privileges Course/Organization Control Panel (Tools) > Calendar > Create Entry, "
    "Edit Entry and Delete Entry, End user access Yes and Authorized to act as user No."
)


def clean_learn_url(raw: str) -> str:
    """The Learn site's address, without a trailing slash or an API path."""
    text = raw.strip()
    parts = urlsplit(text)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ValueError(
            "give the Learn site's address as a full URL, e.g. https://learn.example.edu"
        )
    if parts.query or parts.fragment:
        raise ValueError("give the Learn site's address without ?query or #fragment")
    path = parts.path.rstrip("/")
    for marker in ("/learn/api", "/webapps", "/ultra"):
        if marker in path:
            path = path[: path.index(marker)]
    return f"{parts.scheme}://{parts.netloc}{path}"


def clean_text(raw: str) -> str:
    value = raw.strip()
    if not value or any(c.isspace() for c in value):
        raise ValueError("paste the value exactly as the Developer Portal shows it, without spaces")
    return value


@hookimpl
def plugin_settings() -> list[SettingSpec]:
    """The Learn site's address and the REST application's key and secret."""
    return [
        SettingSpec(
            NAME,
            LEARN_URL,
            "Learn site URL",
            scope="platform",
            help=(
                "The address of the Learn site, e.g. https://learn.example.edu. Learn's "
                "launches all come from the issuer https://blackboard.com, so it cannot be "
                "guessed from them."
            ),
            validate=clean_learn_url,
        ),
        SettingSpec(
            NAME,
            APP_KEY,
            "REST application key",
            scope="platform",
            help="The application key from the Anthology Developer Portal. " + INTEGRATION_HELP,
            validate=clean_text,
        ),
        SettingSpec(
            NAME,
            APP_SECRET,
            "REST application secret",
            scope="platform",
            help="The application's secret from the Anthology Developer Portal.",
            secret=True,
            validate=clean_text,
        ),
    ]


def learn_url(settings: Mapping[str, Any], api: LmsApi) -> str:
    """The Learn site's address: the setting, else a site-specific issuer."""
    configured = settings.get(LEARN_URL)
    if isinstance(configured, str) and configured.strip():
        return configured.strip().rstrip("/")
    if api.issuer and api.issuer.rstrip("/") != SHARED_ISSUER:
        try:
            return clean_learn_url(api.issuer)
        except ValueError:
            pass
    raise LmsNotConfigured(
        f"the Learn site URL is not set: set the blackboard setting {LEARN_URL!r} for this "
        "platform (Learn's launches come from the shared issuer https://blackboard.com)"
    )


def app_credentials(settings: Mapping[str, Any]) -> tuple[str, str]:
    """The application key and secret, or :class:`LmsNotConfigured` naming what is missing."""
    key, secret = settings.get(APP_KEY), settings.get(APP_SECRET)
    missing = [n for n, v in ((APP_KEY, key), (APP_SECRET, secret)) if not v]
    if len(missing) == 2:
        raise LmsNotSetUp(
            f"the Learn REST application is not set up: set {' and '.join(missing)}. "
            + INTEGRATION_HELP
        )
    if missing:
        raise LmsNotConfigured(
            f"the Learn REST application is not set up: set {' and '.join(missing)}. "
            + INTEGRATION_HELP
        )
    return str(key), str(secret)
