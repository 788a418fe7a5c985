"""Canvas's OAuth 2 for the REST API: per-user grants, their refresh, and which token to use.

Canvas lets a tool call its API as a user once that user has authorised the tool's API
developer key (https://developerdocs.instructure.com/services/canvas/oauth/oauth_endpoints):

1. ``GET /plugins/canvas/oauth/start`` (or ``POST`` with the session field) sends the
   instructor to ``<canvas>/login/oauth2/auth?client_id&response_type=code&redirect_uri
   &state``. ``state`` is signed by the tool and names the credential, the platform, the
   LTI user (and their Canvas id when the launch carried ``canvas_user_id``) and a
   single-use nonce kept in the protocol store, which the starting browser also holds in
   a cookie: a state cannot be forged or replayed, and a flow started by one person
   cannot be finished by another. Canvas's sign-in page refuses to be framed, so the
   meetings page opens this in a new window.
2. Canvas sends the browser back to ``/plugins/canvas/oauth/callback?code&state`` (or
   ``?error=access_denied&state`` when the user said no). The tool exchanges the code at
   ``POST <canvas>/login/oauth2/token`` (``grant_type=authorization_code``) for an
   access token (one hour), a refresh token and the Canvas user (refused when it is not
   the Canvas user who launched, where the launch said), and keeps them with the
   core's token store (encrypted), under the user's LTI user id: the id the core knows
   a meeting's host by, and passes to the hooks as ``api.user_id``.
3. An expired access token is renewed with ``grant_type=refresh_token`` (Canvas keeps the
   refresh token the same), one refresh at a time per user in a process.

Which token a call uses (:func:`access_token`): the meeting host's grant, else the
``admin_access_token`` setting, else :class:`LmsNotAuthorized` saying what to do.
"""

from __future__ import annotations

import asyncio
import secrets
import weakref
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import httpx
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from ltipro.crypto import Signer, TokenError
from ltipro.hookspecs import hookimpl
from ltipro.lmsapi import (
    LmsApi,
    LmsApiError,
    LmsNotAuthorized,
    LmsNotConfigured,
    LmsNotSetUp,
    LmsUnavailable,
    StoredToken,
    transport_error,
)
from ltipro.lti.errors import LaunchError
from ltipro_canvas.settings import admin_token, api_base_url, client_credentials

if TYPE_CHECKING:
    from ltipro.sessions import Session
    from ltipro.tool import Tool

NAME = "canvas"
LMS = "Canvas"
AUTHORIZE_PATH = "/login/oauth2/auth"
TOKEN_PATH = "/login/oauth2/token"
CALLBACK_PATH = "/plugins/canvas/oauth/callback"
START_PATH = "/plugins/canvas/oauth/start"
STATE_PURPOSE = "canvas-oauth-state"
STATE_KIND = "canvas_oauth"
# Long enough to sign in to Canvas on the way, short enough that a leaked link goes stale.
STATE_LIFETIME = 900
# The browser that started the flow keeps the state's nonce in this cookie; the callback
# must come back to that browser. Without it, someone could start a flow for their own
# session and have another person authorise it, tying that person's Canvas account to
# the first one's meetings. SameSite=Lax: Canvas's redirect is a top-level navigation.
FLOW_COOKIE = "ltipro_canvas_oauth"
COOKIE_PATH = "/plugins/canvas/oauth"
CANVAS_USER_ATTRIBUTES = ("custom_canvas_user_id", "canvas_user_id")


# -- which token -------------------------------------------------------------------------


@dataclass(frozen=True)
class Grant:
    """The bearer token of one call, and whose it is (``None``: the admin token)."""

    token: str
    subject: str | None = None


NOT_CONNECTED = (
    "Canvas calendar sync has no token for this meeting's host{who}: the host opens the "
    "tool in the course and chooses “Connect Canvas” (which needs the API developer key in "
    "the canvas settings api_client_id and api_client_secret), or an admin sets the canvas "
    "setting admin_access_token"
)


async def access_token(api: LmsApi, base_url: str) -> Grant:
    """The token to call Canvas with: the host's grant (refreshed if due), else the admin's."""
    subject = api.user_id
    if subject:
        stored = await api.tokens.get(subject)
        if stored is not None:
            if stored.expired():
                return await _refresh(api, base_url, subject, stored.access_token)
            return Grant(stored.access_token, subject)
    token = admin_token(api.settings)
    if token:
        return Grant(token, None)
    message = NOT_CONNECTED.format(who=f" ({subject})" if subject else "")
    if client_credentials(api.settings) is None:
        raise LmsNotSetUp(message)  # neither a developer key nor a token: sync is not set up
    raise LmsNotAuthorized(message)


async def refreshed_token(api: LmsApi, base_url: str, failed: Grant) -> Grant | None:
    """A new token after Canvas refused ``failed`` (401), or ``None`` when none can be had."""
    if failed.subject is None:
        return None
    return await _refresh(api, base_url, failed.subject, failed.token)


# One lock per event loop, credential, platform and subject: a burst of calls for the
# same host refreshes once. (Another process may refresh at the same moment; Canvas
# keeps refresh tokens valid, so both succeed and the last one stored wins.)
_LOCKS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[tuple[Any, ...], asyncio.Lock]]
_LOCKS = weakref.WeakKeyDictionary()


def _lock(api: LmsApi, subject: str) -> asyncio.Lock:
    per_loop = _LOCKS.setdefault(asyncio.get_running_loop(), {})
    key = (api.credential_id, api.platform_id, subject)
    lock = per_loop.get(key)
    if lock is None:
        lock = per_loop[key] = asyncio.Lock()
    return lock


async def _refresh(api: LmsApi, base_url: str, subject: str, stale_access: str) -> Grant:
    async with _lock(api, subject):
        stored = await api.tokens.get(subject)
        if stored is None:
            raise LmsNotAuthorized(NOT_CONNECTED.format(who=f" ({subject})"))
        if stored.access_token != stale_access and not stored.expired():
            return Grant(stored.access_token, subject)  # refreshed while we waited
        if not stored.refresh_token:
            await api.tokens.delete(subject)
            raise LmsNotAuthorized(_reconnect(subject, "the grant cannot be renewed"))
        body = await _token_request(
            api,
            base_url,
            {"grant_type": "refresh_token", "refresh_token": stored.refresh_token},
            subject=subject,
        )
        renewed = StoredToken.from_oauth(body)
        token = replace(
            renewed,
            # Canvas answers a refresh without a refresh token: the old one stays valid.
            refresh_token=renewed.refresh_token or stored.refresh_token,
            extra=stored.extra,
        )
        await api.tokens.put(subject, token)
        return Grant(token.access_token, subject)


def _reconnect(subject: str, why: str) -> str:
    return (
        f"the Canvas authorisation of user {subject} no longer works ({why}): they open the "
        "tool in the course and choose “Connect Canvas” again"
    )


async def _token_request(
    api: LmsApi, base_url: str, fields: Mapping[str, str], *, subject: str | None
) -> dict[str, Any]:
    """``POST /login/oauth2/token`` with the developer key; the decoded answer."""
    credentials = client_credentials(api.settings)
    if credentials is None:
        raise LmsNotConfigured(
            "the Canvas API developer key is not configured: set the canvas settings "
            "api_client_id and api_client_secret"
        )
    client_id, client_secret = credentials
    url = await api.check_url(base_url + TOKEN_PATH)
    data = {**fields, "client_id": client_id, "client_secret": client_secret}
    try:
        response = await api.http.post(url, data=data, headers={"Accept": "application/json"})
    except httpx.HTTPError as exc:
        raise transport_error(exc, LMS) from exc
    if response.status_code >= 500 or response.status_code == 429:
        raise LmsUnavailable(f"{LMS}'s token endpoint answered {response.status_code}")
    try:
        body = response.json()
    except ValueError:
        body = None
    if response.status_code != 200 or not isinstance(body, dict):
        error = body.get("error") if isinstance(body, dict) else None
        detail = body.get("error_description") if isinstance(body, dict) else None
        reason = f"{error}: {detail}" if error and detail else str(error or response.status_code)
        if subject is not None and error == "invalid_grant":
            # Revoked or deleted in Canvas: the stored grant is useless from now on.
            await api.tokens.delete(subject)
            raise LmsNotAuthorized(_reconnect(subject, f"{LMS} said {reason}"))
        if error == "invalid_client":
            raise LmsNotConfigured(
                f"{LMS} refused the API developer key ({reason}): check the canvas settings "
                "api_client_id and api_client_secret, and that the key is switched ON"
            )
        raise LmsNotAuthorized(f"{LMS} refused the token request ({reason})")
    return body


async def exchange_code(api: LmsApi, base_url: str, code: str, redirect_uri: str) -> StoredToken:
    """The token for an authorisation ``code``, with the Canvas user in ``extra``."""
    body = await _token_request(
        api,
        base_url,
        {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri},
        subject=None,
    )
    token = StoredToken.from_oauth(body)
    found = body.get("user")
    user: dict[str, Any] = found if isinstance(found, dict) else {}
    extra = {
        "canvas_user_id": str(user.get("id")) if user.get("id") is not None else None,
        "canvas_user_name": user.get("name") if isinstance(user.get("name"), str) else None,
        "base_url": base_url,
    }
    return replace(token, extra={k: v for k, v in extra.items() if v is not None})


# -- routes -------------------------------------------------------------------------------


def _signer(tool: Tool) -> Signer:
    return Signer(tool.settings.secret_key, STATE_PURPOSE)


async def _session_api(tool: Tool, credential_id: int, platform_id: int | None) -> LmsApi:
    """An :class:`LmsApi` for the credential and platform, without a course."""
    from ltipro.calendar.runtime import token_store
    from ltipro.plugin_settings import effective_settings

    credential = await tool.repo.credential_by_id(credential_id)
    settings = await effective_settings(tool, credential, NAME, platform_id)
    return LmsApi(
        http=tool.http,
        settings=settings,
        tokens=token_store(tool, credential_id, platform_id, NAME),
        credential_id=credential_id,
        platform_id=platform_id,
        allow_private_urls=tool.settings.allow_private_urls,
        resolver=tool.platform_keys.resolver,
    )


def _refuse(code: str, message: str, *, status: int = 400, hint: str = "") -> LaunchError:
    return LaunchError(code, message, status=status, hint=hint, lms=NAME)


async def oauth_start(request: Request) -> Response:
    """Send an instructor to Canvas to authorise the tool's API developer key."""
    from ltipro.web.session import require_session

    tool: Tool = request.app.state.tool
    session: Session = await require_session(request)
    if not session.is_instructor:
        raise _refuse(
            "canvas_not_instructor",
            "Only instructors connect Canvas: calendar events are made for the meetings they host.",
            status=403,
        )
    user_id = session.context.user_id
    if not user_id:
        raise _refuse("canvas_no_user", "This launch did not say who you are in Canvas.")
    api = await _session_api(tool, session.credential_id, session.platform_id)
    credentials = client_credentials(api.settings)
    if credentials is None:
        raise _refuse(
            "canvas_api_key_missing",
            "Canvas calendar sync is not set up for this course yet. Ask your Canvas "
            "administrator to give the tool's administrator an API developer key.",
            status=409,
            hint="Set the canvas settings api_client_id and api_client_secret for this "
            "credential (ltipro plugins set --credential NAME canvas api_client_id=...).",
        )
    try:
        base_url = await api.check_url(api_base_url(api.settings, session.context.domain))
    except LmsApiError as exc:
        raise _refuse("canvas_address_refused", str(exc), status=409) from exc
    nonce = secrets.token_urlsafe(18)
    await tool.store.put(STATE_KIND, nonce, session.id, STATE_LIFETIME)
    state = _signer(tool).sign(
        {
            "c": session.credential_id,
            "p": session.platform_id,
            "u": user_id,
            "s": session.id,
            "n": nonce,
            "b": base_url,
            "cu": _launch_canvas_user(session),
        },
        STATE_LIFETIME,
    )
    query = urlencode(
        {
            "client_id": credentials[0],
            "response_type": "code",
            "redirect_uri": tool.settings.url(CALLBACK_PATH),
            "state": state,
        }
    )
    response = RedirectResponse(f"{base_url}{AUTHORIZE_PATH}?{query}", status_code=303)
    response.set_cookie(
        FLOW_COOKIE,
        nonce,
        max_age=STATE_LIFETIME,
        path=COOKIE_PATH,
        secure=True,
        httponly=True,
        samesite="lax",
    )
    return response


def _launch_canvas_user(session: Session) -> str | None:
    """Canvas's numeric id of the launching user, when the launch carried it."""
    for name in CANVAS_USER_ATTRIBUTES:
        value = session.context.attributes.get(name)
        if value and not value.startswith("$"):
            return value.strip()
    return None


async def oauth_callback(request: Request) -> Response:
    """Canvas sends the instructor back here: keep the grant, or say why there is none."""
    tool: Tool = request.app.state.tool
    state = _verified_state(tool, request.query_params.get("state"))
    error = request.query_params.get("error")
    if error:
        # Canvas's documented answer to "Cancel" is error=access_denied.
        await tool.store.take(STATE_KIND, state["n"])
        if error == "access_denied":
            return _page(
                request,
                "Canvas was not connected",
                "You chose not to let the tool use your Canvas account, so your meetings "
                "will not be added to the course calendar on your behalf. You can connect "
                "later from the meetings page. You may close this window.",
                status=200,
                code="canvas_access_denied",
            )
        raise _refuse(
            "canvas_oauth_error",
            f"Canvas did not authorise the tool ({error[:100]}). Try again from the "
            "meetings page; if it keeps failing, tell your Canvas administrator.",
        )
    code = request.query_params.get("code")
    if not code:
        raise _refuse(
            "canvas_oauth_no_code",
            "Canvas sent no authorisation code. Start again from the meetings page.",
        )
    if request.cookies.get(FLOW_COOKIE) != state["n"]:
        raise _refuse(
            "canvas_oauth_other_browser",
            "This Canvas authorisation was started in another browser or window, or its "
            "time ran out. Start again from the meetings page, in this browser.",
        )
    if await tool.store.take(STATE_KIND, state["n"]) is None:
        raise _refuse(
            "canvas_oauth_state_used",
            "This Canvas authorisation link was already used or has expired. Start again "
            "from the meetings page.",
        )
    api = await _session_api(tool, state["c"], state["p"])
    try:
        token = await exchange_code(api, state["b"], code, tool.settings.url(CALLBACK_PATH))
    except LmsUnavailable as exc:
        raise _refuse(
            "canvas_unavailable",
            f"Canvas did not answer properly ({exc}). Please try again in a minute.",
            status=502,
        ) from exc
    except LmsApiError as exc:
        raise _refuse(
            "canvas_oauth_refused",
            "Canvas refused to give the tool access. Start again from the meetings page; "
            "if it keeps failing, tell your Canvas administrator.",
            hint=str(exc),
        ) from exc
    launched_as = state.get("cu")
    granted_by = token.extra.get("canvas_user_id")
    if isinstance(launched_as, str) and granted_by is not None and granted_by != launched_as:
        raise _refuse(
            "canvas_oauth_other_user",
            "You authorised the tool as another Canvas user than the one who opened it. "
            "Sign in to Canvas as yourself and start again from the meetings page.",
            status=403,
        )
    await api.tokens.put(state["u"], token)
    name = token.extra.get("canvas_user_name") or "your account"
    response = _page(
        request,
        "Canvas is connected",
        f"The tool now adds your meetings to the course calendar as {name}. You may close "
        "this window.",
        status=200,
        code="canvas_connected",
    )
    response.delete_cookie(FLOW_COOKIE, path=COOKIE_PATH, secure=True, httponly=True)
    return response


def _verified_state(tool: Tool, state: str | None) -> dict[str, Any]:
    if not state:
        raise _refuse(
            "canvas_oauth_no_state",
            "This page is only reached from Canvas's authorisation screen. Start again "
            "from the meetings page.",
        )
    try:
        payload = _signer(tool).verify(state)
    except TokenError as exc:
        raise _refuse(
            "canvas_oauth_bad_state",
            "This Canvas authorisation link is not valid or has expired. Start again from "
            "the meetings page.",
        ) from exc
    expected = {"c": int, "u": str, "n": str, "b": str}
    if any(not isinstance(payload.get(k), t) for k, t in expected.items()) or not (
        payload.get("p") is None or isinstance(payload.get("p"), int)
    ):
        raise _refuse("canvas_oauth_bad_state", "This Canvas authorisation link is not valid.")
    return payload


RESULT_PAGE = """{% extends "base.html" %}
{% block title %}{{ title }}{% endblock %}
{% block content %}
<section class="card" role="status">
  <h1>{{ title }}</h1>
  <p data-result-code="{{ code }}">{{ message }}</p>
</section>
{% endblock %}"""


def _page(request: Request, title: str, message: str, *, status: int, code: str) -> Response:
    """A short page in the tool's layout (the app's templates, autoescaped)."""
    env = request.app.state.templates
    body = env.from_string(RESULT_PAGE).render(
        request=request, title=title, message=message, code=code
    )
    return HTMLResponse(body, status_code=status)


async def oauth_status(request: Request) -> Response:
    """Whether the session's user has connected Canvas, for the meetings page's link.

    ``connectable`` is true when the API developer key is configured; ``connected`` when
    the user's grant is stored. The page shows "Connect Canvas" (a link to
    ``connect_url``, opened in a new window: Canvas's sign-in page refuses to be framed)
    to an instructor who is connectable and not connected.
    """
    from ltipro.web.session import require_session

    tool: Tool = request.app.state.tool
    session: Session = await require_session(request)
    api = await _session_api(tool, session.credential_id, session.platform_id)
    user_id = session.context.user_id
    grant = await api.tokens.get(user_id) if user_id else None
    return JSONResponse(
        {
            "connectable": client_credentials(api.settings) is not None,
            "connected": grant is not None,
            "canvas_user": grant.extra.get("canvas_user_name") if grant else None,
            "admin_token": admin_token(api.settings) is not None,
            "connect_url": START_PATH,
        }
    )


@hookimpl
def plugin_routes() -> list[BaseRoute]:
    """``/plugins/canvas/oauth/start``, ``.../callback`` and ``.../status``."""
    return [
        Route("/oauth/start", oauth_start, methods=["GET", "POST"]),
        Route("/oauth/callback", oauth_callback, methods=["GET"]),
        Route("/oauth/status", oauth_status, methods=["GET"]),
    ]
