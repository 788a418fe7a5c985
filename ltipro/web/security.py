"""Security headers on every response, framing limited to the approved LMS domains."""

from __future__ import annotations

from collections.abc import Iterable

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

FRAME_ANCESTORS_KEY = "frame_ancestors"


def frame_ancestors(domains: Iterable[str] | None) -> str:
    """The ``frame-ancestors`` source list: the approved domains, or anyone when none are set."""
    listed = sorted({d for d in (domains or ()) if d})
    if not listed:
        return "*"
    return "'self' " + " ".join(listed)


def allow_framing_by(request: Request, domains: Iterable[str]) -> None:
    """Let the response be shown inside pages of these domains (all, when empty)."""
    request.state.frame_ancestors = frame_ancestors(domains)


class SecurityHeaders:
    """Plain ASGI middleware adding the headers every page needs."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                state = scope.get("state") or {}
                ancestors = state.get(FRAME_ANCESTORS_KEY, "'self'")
                headers = list(message.get("headers", []))
                names = {name.lower() for name, _ in headers}
                if b"content-security-policy" not in names:
                    headers.append(
                        (
                            b"content-security-policy",
                            f"frame-ancestors {ancestors}; base-uri 'none'; object-src 'none'".encode(),
                        )
                    )
                headers.append((b"x-content-type-options", b"nosniff"))
                headers.append((b"referrer-policy", b"no-referrer"))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)
