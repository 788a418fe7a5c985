"""The launch's two routes with nothing behind them, as ASGI apps (the HTTP floor).

``GET /lti/login`` answers ``302`` to the LMS with the state cookie; ``POST /lti/launch``
reads the whole form body and answers ``200`` with the ~10 KB first page and the session
cookie. Neither parses, checks, stores or renders anything: those parts are measured
in-process (``floorbench.inprocess``). Served by uvicorn::

    uvicorn floorbench.apps:raw_app        # plain ASGI, no framework
    uvicorn floorbench.apps:starlette_app  # the same two routes in Starlette
"""

from __future__ import annotations

from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from floorbench import payload

PAGE = payload.page()
PAGE_BYTES = PAGE.encode()

_LOGIN_HEADERS = [
    (b"location", payload.LOCATION.encode()),
    (b"set-cookie", payload.STATE_SET_COOKIE.encode()),
    (b"content-length", b"0"),
]
_PAGE_HEADERS = [
    (b"content-type", b"text/html; charset=utf-8"),
    (b"content-length", str(len(PAGE_BYTES)).encode()),
    (b"set-cookie", payload.SESSION_SET_COOKIE.encode()),
]


async def _answer(send: Any, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def raw_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Plain ASGI: the least a Python web application can do for the two requests."""
    if scope["type"] != "http":
        return
    path = scope["path"]
    if path == payload.LOGIN_PATH and scope["method"] == "GET":
        await _answer(send, 302, _LOGIN_HEADERS, b"")
    elif path == payload.LAUNCH_PATH and scope["method"] == "POST":
        more = True
        body = b""
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        await _answer(send, 200, _PAGE_HEADERS, PAGE_BYTES)
    elif path == "/healthz":
        await _answer(send, 200, [(b"content-length", b"2")], b"ok")
    else:
        await _answer(send, 404, [(b"content-length", b"0")], b"")


async def login(request: Request) -> Response:
    response = RedirectResponse(payload.LOCATION, status_code=302)
    response.set_cookie(
        payload.STATE_COOKIE_NAME,
        payload.STATE,
        max_age=payload.STATE_MAX_AGE,
        path="/lti",
        secure=True,
        httponly=True,
        samesite="none",
    )
    return response


async def launch(request: Request) -> Response:
    await request.body()
    response = HTMLResponse(PAGE)
    response.set_cookie(
        payload.SESSION_COOKIE_NAME,
        payload.SESSION_VALUE,
        max_age=payload.SESSION_MAX_AGE,
        path="/",
        secure=True,
        httponly=True,
        samesite="none",
    )
    return response


async def healthz(request: Request) -> Response:
    return PlainTextResponse("ok")


starlette_app = Starlette(
    routes=[
        Route(payload.LOGIN_PATH, login, methods=["GET"]),
        Route(payload.LAUNCH_PATH, launch, methods=["POST"]),
        Route("/healthz", healthz),
    ]
)
