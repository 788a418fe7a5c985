"""LTI 1.1: an OAuth 1.0a HMAC-SHA1 signed ``basic-lti-launch-request`` form post.

The signature is checked with oauthlib against the credential's consumer key and
secret, over the tool's public launch URL (``LTIPRO_BASE_URL``, since the tool runs
behind a TLS proxy), with a timestamp window and single-use nonces.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from urllib.parse import urlencode

from oauthlib.common import Request
from oauthlib.oauth1.rfc5849 import signature

from ltipro.context import LaunchMessage
from ltipro.lti.errors import LaunchError
from ltipro.tool import Tool

NONCE_KIND = "nonce11"
TIMESTAMP_WINDOW = 300
MESSAGE_TYPES = ("basic-lti-launch-request",)
VERSIONS = ("LTI-1p0", "LTI-1p2")


def is_lti11(form: Mapping[str, str]) -> bool:
    """An LTI 1.1 launch carries OAuth parameters and no ``id_token``."""
    return "oauth_consumer_key" in form and "id_token" not in form


def verify_signature(url: str, form: Mapping[str, str], secret: str, query: str = "") -> bool:
    """Whether the form's HMAC-SHA1 signature is right for ``url`` and ``secret``.

    ``query`` is the launch URL's query string, which an LMS signs along with the form
    when the admin configured the launch URL with one.
    """
    if form.get("oauth_signature_method") != "HMAC-SHA1":
        return False
    full_url = f"{url}?{query}" if query else url
    body = urlencode(list(form.items()))
    request = Request(
        full_url,
        http_method="POST",
        body=body,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    request.params = signature.collect_parameters(
        uri_query=query, body=list(form.items()), exclude_oauth_signature=True, with_realm=False
    )
    request.signature = form.get("oauth_signature", "")
    return bool(signature.verify_hmac_sha1(request, client_secret=secret))


async def validate_launch11(tool: Tool, form: Mapping[str, str], query: str = "") -> LaunchMessage:
    """Validate an LTI 1.1 launch post, or raise :class:`LaunchError`."""
    key = form.get("oauth_consumer_key") or ""
    credential = await tool.repo.credential_by_lti11_key(key) if key else None
    secret = tool.repo.lti11_secret(credential) if credential else None
    if credential is None or not secret:
        raise LaunchError(
            "unknown_consumer_key",
            "This LMS is not registered with the tool.",
            status=401,
            hint=f"No credential has the LTI 1.1 consumer key {key!r}.",
        )
    if not verify_signature(tool.settings.url("/lti/launch"), form, secret, query):
        raise LaunchError(
            "bad_signature",
            "The launch's signature is not valid.",
            status=401,
            hint=(
                "Check the shared secret in the LMS, and that the LMS posts to "
                f"{tool.settings.url('/lti/launch')} exactly."
            ),
        )
    try:
        timestamp = int(form.get("oauth_timestamp", ""))
    except ValueError:
        raise LaunchError(
            "bad_timestamp", "The launch has no valid timestamp.", status=401
        ) from None
    if abs(time.time() - timestamp) > TIMESTAMP_WINDOW:
        raise LaunchError(
            "stale_timestamp",
            "The launch has expired. Start it again from your LMS.",
            status=401,
            hint="If this keeps happening, check the LMS server's clock.",
        )
    nonce = form.get("oauth_nonce") or ""
    if not nonce or not await tool.store.add_once(
        NONCE_KIND, f"{key}:{nonce}", 2 * TIMESTAMP_WINDOW + tool.settings.clock_leeway
    ):
        raise LaunchError(
            "replayed_nonce",
            "This launch was already used. Start it again from your LMS.",
            status=401,
        )
    if form.get("lti_message_type") not in MESSAGE_TYPES:
        raise LaunchError(
            "unsupported_message",
            f"The tool does not handle {form.get('lti_message_type')!r} messages.",
        )
    if form.get("lti_version") not in VERSIONS:
        raise LaunchError(
            "unsupported_version",
            f"The launch says it is LTI version {form.get('lti_version')!r}.",
        )
    if not form.get("resource_link_id"):
        raise LaunchError("bad_message", "The launch lacks its resource_link_id.")
    return LaunchMessage(version="1.1", claims=dict(form), credential=credential.name)
