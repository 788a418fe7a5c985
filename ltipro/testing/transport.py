"""An httpx transport that sends each host to an in-process ASGI app.

The tool's outbound client uses it in tests so that the platform's key set, and later
the LMS and provider doubles, are reached over real HTTP semantics without a network.
A host it does not know fails to connect, as it would on a closed network.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx


class RoutingTransport(httpx.AsyncBaseTransport):
    """Dispatch requests by host (``host`` or ``host:port``) to ASGI apps."""

    def __init__(self, apps: Mapping[str, Any] | None = None) -> None:
        self.apps: dict[str, httpx.ASGITransport] = {}
        self.requests: list[httpx.Request] = []
        for host, app in (apps or {}).items():
            self.add(host, app)

    def add(self, host: str, app: Any) -> None:
        self.apps[host.lower()] = httpx.ASGITransport(app=app)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        host = request.url.host.lower()
        netloc = request.url.netloc.decode().lower()
        transport = self.apps.get(netloc) or self.apps.get(host)
        if transport is None:
            raise httpx.ConnectError(f"no route to {netloc}", request=request)
        return await transport.handle_async_request(request)
