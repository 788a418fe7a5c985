"""The ASGI plumbing the API doubles share: the lifespan, the request, the answer.

A double (Zoom's, an LMS's) is a plain ASGI app reached through
:class:`~ltipro.testing.transport.RoutingTransport` or served over HTTP in a thread; what
it does with a request is its own, how it reads one and answers is the same for all.
"""

from __future__ import annotations

from collections.abc import Mapping

from starlette.types import Receive, Scope, Send


async def read_request(
    scope: Scope, receive: Receive, send: Send
) -> tuple[dict[str, str], bytes] | None:
    """The request's headers (names lower-cased) and whole body; ``None`` for a lifespan
    scope, which this answers until the server shuts down."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return None
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
    return headers, body


async def send_response(
    send: Send, status: int, payload: bytes, headers: Mapping[str, object]
) -> None:
    """Answer with ``payload`` and ``headers`` (and its ``content-length``)."""
    raw = [(k.lower().encode(), str(v).encode()) for k, v in headers.items()]
    raw.append((b"content-length", str(len(payload)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": payload})
