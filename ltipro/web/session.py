"""Finding the session of a request: bearer header, form field, then cookie."""

from __future__ import annotations

from starlette.requests import Request

from ltipro.lti.errors import LaunchError
from ltipro.sessions import COOKIE_NAME, FORM_FIELD, Session
from ltipro.storage.repository import Credential

# Every API key starts with this, so a key is never mistaken for a session token.
API_KEY_PREFIX = "ltp_"


def bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return None


async def require_session(request: Request, *, allow_cookie: bool | None = None) -> Session:
    """The request's session, or a 401 the user can act on.

    A request that changes something must carry the token itself (header or form field);
    the cookie alone, which the browser sends on its own, only serves plain page loads.
    That is the tool's protection against cross-site request forgery.
    """
    if allow_cookie is None:
        allow_cookie = request.method in ("GET", "HEAD")
    token = bearer_token(request)
    if token is None and request.method == "POST":
        try:
            form = await request.form()
        except Exception:
            form = None
        value = form.get(FORM_FIELD) if form is not None else None
        token = value if isinstance(value, str) else None
    if token is None and allow_cookie:
        token = request.cookies.get(COOKIE_NAME)
    session = await request.app.state.tool.sessions.load(token)
    if session is None:
        raise LaunchError(
            "no_session",
            "Your session has expired or is missing. Open the tool again from your LMS course.",
            status=401,
        )
    return session


async def require_api_key(request: Request) -> Credential:
    """The credential whose API key the request carries (``Authorization: Bearer ltp_...``).

    API keys serve the credential's own systems (imports, reports), not a user in a
    launched page: ``ltipro api-keys create|revoke --credential NAME``. A missing,
    unknown or revoked key is refused with a 401 that says which.
    """
    token = bearer_token(request)
    if token is None or not token.startswith(API_KEY_PREFIX):
        raise LaunchError(
            "no_api_key",
            "This endpoint needs an API key: send `Authorization: Bearer ltp_...` "
            "(an admin creates one with `ltipro api-keys create`).",
            status=401,
        )
    credential: Credential | None = await request.app.state.tool.repo.credential_for_api_key(token)
    if credential is None:
        raise LaunchError(
            "invalid_api_key",
            "The API key is not valid: it is unknown or has been revoked.",
            status=401,
        )
    return credential
