"""The Canvas double over real HTTP, in a thread of the benchmark's process.

``ltipro worker`` processes reach Canvas the way they reach any LMS: with their own HTTP
client, over TCP, at the ``api_base_url`` the credential's Canvas settings name. So the
double (``ltipro_canvas.testing.CanvasDouble``, the one the plugin's tests use) is served
by uvicorn on 127.0.0.1, in a thread of this process: the benchmark reads its state (the
events, every request and its answer) directly after a run, without an admin API.

Each concurrency level starts from the same Canvas: :func:`clone` copies the seeded
double's state into a new double, and :class:`Switch` puts it behind the same address.
"""

from __future__ import annotations

import copy
import itertools
import threading
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import uvicorn
from ltipro_canvas.testing import CanvasDouble

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]

START_TIMEOUT = 10.0


class Switch:
    """An ASGI app that hands every request to whichever double is current."""

    def __init__(self, app: App) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)


class CanvasServer:
    """uvicorn serving a :class:`Switch` on ``127.0.0.1:port`` in a daemon thread."""

    def __init__(self, double: CanvasDouble, port: int, host: str = "127.0.0.1") -> None:
        self.switch = Switch(double)
        self.host = host
        self.port = port
        config = uvicorn.Config(
            self.switch,
            host=host,
            port=port,
            log_level="warning",
            access_log=False,
            lifespan="off",
            # As many connections as the workers open; Canvas's own limit is the bucket.
            backlog=2048,
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="canvas-double", daemon=True)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def use(self, double: CanvasDouble) -> None:
        """Answer from ``double`` from the next request on."""
        self.switch.app = double

    def start(self) -> CanvasServer:
        self.thread.start()
        deadline = time.monotonic() + START_TIMEOUT
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the Canvas double did not start on {self.url}")
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def new_double(host: str, latency: float) -> CanvasDouble:
    """A double on the wall clock (its request times compare with the database's)."""
    return CanvasDouble(host=host, latency=latency, clock=time.time)


def clone(seed: CanvasDouble, latency: float) -> CanvasDouble:
    """A new double holding a copy of ``seed``'s Canvas: courses, users, tokens, events.

    Requests, faults and throttling buckets are not copied: the copy starts with a clean
    record and full quotas, as a Canvas that was left alone for a while.
    """
    double = new_double(seed.host, latency)
    double.courses = copy.deepcopy(seed.courses)
    double.users = dict(seed.users)
    double.admins = set(seed.admins)
    double.tokens = copy.deepcopy(seed.tokens)
    double.refresh_tokens = dict(seed.refresh_tokens)
    double.events = copy.deepcopy(seed.events)
    # New events get ids after the copied ones, as they would in the seeded Canvas.
    double._ids = itertools.count(max(seed.events, default=1000) + 1)
    return double
