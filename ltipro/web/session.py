"""Finding the session of a request: bearer header, form field, then cookie."""

from __future__ import annotations

from starlette.requests import Request

from ltipro.lti.errors import LaunchError
from ltipro.sessions import COOKIE_NAME, FORM_FIELD, Session


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
