"""Brightspace OAuth 2.0: connecting the tool once, and keeping its token fresh.

Brightspace's API is used with the authorisation code grant
(https://docs.valence.desire2learn.com/basic/oauth2.html): an admin registers an OAuth 2.0
app in Brightspace, then authorises it once, signed in to Brightspace as the account the
tool should act as (a service account allowed to manage the courses' calendars). The
token is kept under the subject ``"app"`` in the plugin's token store, per credential
and platform registration, encrypted at rest.

Who may start the authorisation: the admin console's session cookie is scoped to
``/admin`` and never reaches a plugin's routes, so ``/plugins/d2l/oauth/start`` takes a
link that only someone with access to the installation can make::

    python -m ltipro_d2l connect --credential main --platform 3

prints a start link signed with the installation's secret key, valid 15 minutes and good
for one use. The start page binds the authorisation to the browser that opened it (a
cookie), and the callback accepts a ``state`` only with that cookie, once, and only as
signed by the tool, so a forged or replayed callback cannot swap in another account.

Refresh tokens rotate: each refresh answers with a new refresh token and the old one
stops working. So a refresh (1) runs once at a time per credential and platform in a
process, (2) stores the new refresh token before the access token is used, and (3) when
Brightspace says ``invalid_grant``, first reads the store again: another process may have
rotated the token a moment earlier, and its new token is used. Only when the stored
refresh token is the very one refused is the connection lost, and the admin is told to
connect again (:class:`~ltipro.lmsapi.LmsNotAuthorized`).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import html
import logging
import secrets
import weakref
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import httpx
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from ltipro.crypto import Signer, TokenError
from ltipro.hookspecs import hookimpl
from ltipro.jobs.handlers import retry_after_seconds
from ltipro.lmsapi import (
    DEFAULT_THROTTLE_WAIT,
    LmsApi,
    LmsApiError,
    LmsNotAuthorized,
    LmsNotSetUp,
    LmsThrottled,
    LmsUnavailable,
    StoredToken,
    transport_error,
)
from ltipro_d2l.settings import NAME, D2lConfig, config_from

if TYPE_CHECKING:
    from ltipro.tool import Tool

log = logging.getLogger(__name__)

AUTHORIZATION_URL = "https://auth.brightspace.com/oauth2/auth"
TOKEN_URL = "https://auth.brightspace.com/core/connect/token"
LMS = "Brightspace"

#: The token store subject of the tool's own Brightspace authorisation.
SUBJECT = "app"
START_PATH = "/plugins/d2l/oauth/start"
CALLBACK_PATH = "/plugins/d2l/oauth/callback"
COOKIE = "ltipro_d2l_oauth"
COOKIE_PATH = "/plugins/d2l/oauth/"
START_LIFETIME = 900
STATE_LIFETIME = 600
START_KIND = "d2l_oauth_start"
STATE_KIND = "d2l_oauth_state"


def connect_command(credential: str, platform_id: int | None) -> str:
    """The command an admin runs to (re)connect Brightspace, for messages."""
    platform = f" --platform {platform_id}" if platform_id is not None else ""
    return f"python -m ltipro_d2l connect --credential {credential}{platform}"


def _reconnect_hint(api: LmsApi) -> str:
    which = f" (credential id {api.credential_id})" if api.credential_id is not None else ""
    command = connect_command("NAME", api.platform_id)
    return f"an admin must connect Brightspace again with `{command}`{which}"


# -- the token endpoint --------------------------------------------------------------------


class TokenRefused(LmsNotAuthorized):
    """The token endpoint refused the grant; ``error`` is its OAuth error code."""

    def __init__(self, message: str, error: str) -> None:
        super().__init__(message)
        self.error = error


async def token_request(
    http: httpx.AsyncClient, config: D2lConfig, form: Mapping[str, str]
) -> dict[str, Any]:
    """POST a grant to Brightspace's token endpoint with the app's credentials (HTTP Basic).

    Returns the JSON answer; an OAuth error answer raises :class:`TokenRefused`, a 429
    :class:`~ltipro.lmsapi.LmsThrottled`, anything else unusable
    :class:`~ltipro.lmsapi.LmsUnavailable`.
    """
    try:
        response = await http.post(
            TOKEN_URL,
            data=dict(form),
            auth=(config.client_id, config.client_secret),
            headers={"Accept": "application/json"},
        )
    except httpx.HTTPError as exc:
        raise transport_error(exc, f"{LMS}'s token endpoint") from exc
    if response.status_code == 429:
        wait = retry_after_seconds(
            response.headers.get("Retry-After"), default=DEFAULT_THROTTLE_WAIT
        )
        raise LmsThrottled(f"{LMS}'s token endpoint asked to slow down", wait)
    if response.status_code >= 500:
        raise LmsUnavailable(f"{LMS}'s token endpoint answered {response.status_code}")
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise LmsUnavailable(
            f"{LMS}'s token endpoint answered {response.status_code} without a JSON object"
        )
    if response.status_code != 200 or "error" in body:
        error = str(body.get("error") or "invalid_request")
        detail = body.get("error_description")
        text = f"{LMS} refused the token request: {error}"
        if isinstance(detail, str) and detail:
            text += f" ({detail[:200]})"
        if error == "invalid_client":
            text += " (check the d2l plugin's client_id and client_secret settings)"
        raise TokenRefused(text, error)
    return body


# -- a fresh access token for a call -------------------------------------------------------

# One lock per credential, platform and app, per event loop (a lock belongs to the loop
# it first waits in; tests and scripts may run several loops one after another).
_locks: weakref.WeakKeyDictionary[
    asyncio.AbstractEventLoop, dict[tuple[int | None, int | None, str], asyncio.Lock]
] = weakref.WeakKeyDictionary()


def _lock_for(api: LmsApi, config: D2lConfig) -> asyncio.Lock:
    locks = _locks.setdefault(asyncio.get_running_loop(), {})
    key = (api.credential_id, api.platform_id, config.client_id)
    lock = locks.get(key)
    if lock is None:
        lock = locks[key] = asyncio.Lock()
    return lock


async def access_token(
    api: LmsApi,
    config: D2lConfig,
    *,
    stale: str | None = None,
    now: datetime | None = None,
) -> str:
    """An access token for Brightspace's API, refreshed first when it has expired.

    ``stale`` names an access token Brightspace just refused (401) although it had not
    expired by our clock: it is refreshed unless another call already did.
    """
    token = await api.tokens.get(SUBJECT)
    if token is None:
        raise LmsNotSetUp(f"Brightspace is not connected yet: {_reconnect_hint(api)}")
    if not _needs_refresh(token, stale, now):
        return token.access_token
    async with _lock_for(api, config):
        # Another call may have refreshed while this one waited for the lock.
        token = await api.tokens.get(SUBJECT)
        if token is None:
            raise LmsNotAuthorized(f"Brightspace is not connected: {_reconnect_hint(api)}")
        if not _needs_refresh(token, stale, now):
            return token.access_token
        return (await _refresh(api, config, token, now=now)).access_token


def _needs_refresh(token: StoredToken, stale: str | None, now: datetime | None) -> bool:
    return token.expired(now=now) or (stale is not None and token.access_token == stale)


async def _refresh(
    api: LmsApi, config: D2lConfig, token: StoredToken, *, now: datetime | None, again: bool = True
) -> StoredToken:
    if not token.refresh_token:
        raise LmsNotAuthorized(
            f"the Brightspace authorisation has expired and has no refresh token (is "
            f"'Enable refresh tokens' ticked for the OAuth 2.0 app?): {_reconnect_hint(api)}"
        )
    try:
        body = await token_request(
            api.http,
            config,
            {
                "grant_type": "refresh_token",
                "refresh_token": token.refresh_token,
                "scope": config.scope,
            },
        )
    except TokenRefused as refused:
        if refused.error != "invalid_grant":
            raise
        # Rotation: another process may have used this refresh token a moment ago and
        # stored the new one. Only if the store still holds the refused one is it lost.
        current = await api.tokens.get(SUBJECT)
        if current is not None and current.refresh_token != token.refresh_token:
            if not current.expired(now=now):
                return current
            if again:
                return await _refresh(api, config, current, now=now, again=False)
        raise LmsNotAuthorized(
            f"Brightspace no longer accepts the tool's authorisation (invalid_grant: it was "
            f"revoked, expired or replaced): {_reconnect_hint(api)}"
        ) from None
    fresh = StoredToken.from_oauth(body, now=now)
    if fresh.refresh_token is None:
        # Brightspace answers a refresh with a new refresh token; should one ever come
        # without, the old one is kept rather than losing the connection.
        fresh = replace(fresh, refresh_token=token.refresh_token)
    fresh = replace(fresh, extra=dict(token.extra))
    # Stored before use: the old refresh token is already dead at Brightspace.
    await api.tokens.put(SUBJECT, fresh)
    return fresh


# -- connecting: the signed start link, the start page and the callback ---------------------


def _start_signer(tool: Tool) -> Signer:
    return Signer(tool.settings.secret_key, "d2l-oauth-start")


def _state_signer(tool: Tool) -> Signer:
    return Signer(tool.settings.secret_key, "d2l-oauth-state")


def redirect_uri(tool: Tool) -> str:
    """The Redirect URI the OAuth 2.0 app must be registered with in Brightspace."""
    return tool.settings.url(CALLBACK_PATH)


def start_url(tool: Tool, credential_id: int, platform_id: int | None) -> str:
    """A one-use link, valid 15 minutes, that starts connecting Brightspace."""
    token = _start_signer(tool).sign(
        {"credential": credential_id, "platform": platform_id, "nonce": secrets.token_urlsafe(16)},
        START_LIFETIME,
    )
    return tool.settings.url(START_PATH) + "?" + urlencode({"token": token})


def _page(title: str, message: str, status: int = 200) -> Response:
    body = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title></head><body><main>"
        f"<h1>{html.escape(title)}</h1><p>{html.escape(message)}</p></main></body></html>"
    )
    response = HTMLResponse(body, status_code=status)
    response.headers["Cache-Control"] = "no-store"
    return response


def _refused(message: str, status: int = 400) -> Response:
    return _page("Brightspace was not connected", message, status)


def _binding_hash(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def _id(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


async def _config_for(tool: Tool, credential_id: int, platform_id: int | None) -> Any:
    """The credential and the plugin's settings for it, or a message saying what is wrong."""
    from ltipro.plugin_settings import effective_settings
    from ltipro.storage.repository import NotFound

    try:
        credential = await tool.repo.credential_by_id(credential_id)
    except NotFound:
        return None, None, "The credential of this link no longer exists."
    issuer = None
    if platform_id is not None:
        try:
            platform = await tool.repo.platform(platform_id)
        except NotFound:
            return None, None, "The platform registration of this link no longer exists."
        if platform.credential_id != credential.id:
            return None, None, "The platform of this link is not the credential's."
        issuer = platform.issuer
    settings = await effective_settings(tool, credential, NAME, platform_id)
    try:
        config = config_from(settings, issuer=issuer, require_base=False)
    except LmsApiError as exc:
        return credential, None, f"The d2l plugin is not ready: {exc}."
    return credential, config, None


async def oauth_start(request: Request) -> Response:
    """``GET /plugins/d2l/oauth/start?token=...``: off to Brightspace's consent page."""
    tool: Tool = request.app.state.tool
    raw = request.query_params.get("token", "")
    again = "Make a new link with `python -m ltipro_d2l connect --credential NAME`."
    try:
        payload = _start_signer(tool).verify(raw)
    except TokenError:
        return _refused(f"This link is not valid or has expired. {again}")
    credential_id = _id(payload.get("credential"))
    platform_id = _id(payload.get("platform"))
    nonce = payload.get("nonce")
    if credential_id is None or not isinstance(nonce, str):
        return _refused(f"This link is not valid. {again}")
    credential, config, problem = await _config_for(tool, credential_id, platform_id)
    if problem is not None:
        return _refused(problem)
    if not await tool.store.add_once(START_KIND, nonce, START_LIFETIME):
        return _refused(f"This link has been used already. {again}")
    binding = secrets.token_urlsafe(24)
    state = _state_signer(tool).sign(
        {
            "credential": credential_id,
            "platform": platform_id,
            "binding": _binding_hash(binding),
            "nonce": secrets.token_urlsafe(16),
        },
        STATE_LIFETIME,
    )
    query = urlencode(
        {
            "response_type": "code",
            "client_id": config.client_id,
            "redirect_uri": redirect_uri(tool),
            "scope": config.scope,
            "state": state,
        }
    )
    response = RedirectResponse(f"{AUTHORIZATION_URL}?{query}", status_code=303)
    response.set_cookie(
        COOKIE,
        binding,
        max_age=STATE_LIFETIME,
        path=COOKIE_PATH,
        secure=True,
        httponly=True,
        samesite="lax",
    )
    response.headers["Cache-Control"] = "no-store"
    log.info("connecting Brightspace for credential %s started", credential.name)
    return response


async def oauth_callback(request: Request) -> Response:
    """``GET /plugins/d2l/oauth/callback``: Brightspace sends the admin back here."""
    from ltipro.calendar.runtime import token_store

    tool: Tool = request.app.state.tool
    params = request.query_params
    again = "Start again with a new link from `python -m ltipro_d2l connect`."
    try:
        payload = _state_signer(tool).verify(params.get("state", ""))
    except TokenError:
        return _refused(f"The answer from Brightspace is not valid or is too old. {again}")
    credential_id = _id(payload.get("credential"))
    platform_id = _id(payload.get("platform"))
    binding = payload.get("binding")
    nonce = payload.get("nonce")
    if credential_id is None or not isinstance(binding, str) or not isinstance(nonce, str):
        return _refused(f"The answer from Brightspace is not valid. {again}")
    cookie = request.cookies.get(COOKIE, "")
    if not cookie or not hmac.compare_digest(_binding_hash(cookie), binding):
        return _refused(
            f"This browser did not start connecting Brightspace (open the link and sign in "
            f"to Brightspace in the same browser). {again}"
        )
    if not await tool.store.add_once(STATE_KIND, nonce, STATE_LIFETIME):
        return _refused(f"This answer from Brightspace has been used already. {again}")
    error = params.get("error")
    if error:
        reason = (
            "access was denied in Brightspace"
            if error == "access_denied"
            else f"Brightspace answered {error[:100]}"
        )
        detail = params.get("error_description", "")[:200]
        return _finish(_refused(f"Nothing changed: {reason}{': ' + detail if detail else ''}."))
    code = params.get("code", "")
    if not code:
        return _finish(_refused(f"Brightspace sent no authorisation code. {again}"))
    credential, config, problem = await _config_for(tool, credential_id, platform_id)
    if problem is not None:
        return _finish(_refused(problem))
    try:
        body = await token_request(
            tool.http,
            config,
            {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri(tool)},
        )
        token = StoredToken.from_oauth(body)
    except TokenRefused as exc:
        return _finish(_refused(f"{exc}. {again}"))
    except LmsApiError as exc:
        return _finish(_refused(f"Brightspace could not be reached: {exc}. Try again.", 502))
    token = replace(token, extra={"connected_at": datetime.now(UTC).isoformat()})
    await token_store(tool, credential_id, platform_id, NAME).put(SUBJECT, token)
    log.info("Brightspace connected for credential %s (platform %s)", credential.name, platform_id)
    where = f" (platform {platform_id})" if platform_id is not None else ""
    return _finish(
        _page(
            "Brightspace is connected",
            f"The tool now reaches Brightspace's API for credential {credential.name}{where}. "
            "Calendar events of meetings will appear in the courses' calendars.",
        )
    )


def _finish(response: Response) -> Response:
    response.delete_cookie(COOKIE, path=COOKIE_PATH, secure=True, httponly=True, samesite="lax")
    return response


@hookimpl
def plugin_routes() -> list[BaseRoute]:
    """``/plugins/d2l/oauth/start`` and ``/plugins/d2l/oauth/callback``."""
    return [
        Route("/oauth/start", oauth_start, methods=["GET"]),
        Route("/oauth/callback", oauth_callback, methods=["GET"]),
    ]
