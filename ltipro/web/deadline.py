"""A bound on how long a request may take before its answer starts.

A database that accepts connections but stops answering (a stalled server, a network
that drops packets) raises no error: every request that needs it would wait as long as
the stall lasts, and the LMS's frame with it. :class:`RequestDeadline` gives each request
``LTIPRO_REQUEST_TIMEOUT`` seconds of the tool's own time; a request that has not started
its answer by then is stopped and answered with the same 503 "briefly unavailable" page
(JSON under ``/api/``) and ``Retry-After`` as a lost database.

What stopping a request leaves behind:

- its work is cancelled: a database transaction it had open is rolled back (all of its
  writes or none, as with any failed transaction), and its pool connection is given back
  or thrown away by the driver's own clean-up;
- that clean-up may itself wait on the silent connection (psycopg gives a cancelled
  query up to ten seconds), so it runs on in the background rather than holding the
  answer back, as ``/readyz`` does with its probes (:func:`ltipro.web.health.within_time_limit`).

Not bounded: anything but HTTP requests (the lifespan, hence the job worker and the
purge loop); an answer once it has started (a download or a stream is never cut in the
middle); the time spent waiting for the client to send its body (a slow upload is the
client's time, not the tool's); and the routes the app names as long-running.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ltipro.lti.errors import LaunchError
from ltipro.web.health import DATABASE_RETRY_AFTER, unavailable

log = logging.getLogger("ltipro.web")

# Requests stopped at their deadline whose clean-up is still running (see _abandon).
_stopped: set[asyncio.Future[Any]] = set()


def _forget(task: asyncio.Future[Any]) -> None:
    _stopped.discard(task)
    if not task.cancelled():
        task.exception()  # retrieved, so it is not reported as lost


def _abandon(task: asyncio.Future[Any]) -> None:
    """Cancel ``task`` and keep it referenced until its clean-up ends."""
    task.cancel()
    _stopped.add(task)
    task.add_done_callback(_forget)


def stopped_requests() -> int:
    """How many stopped requests are still cleaning up (for tests and diagnostics)."""
    return len(_stopped)


def never(scope: Scope) -> bool:
    return False


def timed_out(scope: Scope, seconds: float) -> Response:
    """The answer to a request stopped at its deadline: the lost-database 503."""
    error = LaunchError(
        "request_timeout",
        "The tool is briefly unavailable. Please try again in a minute.",
        status=503,
        hint=(
            f"The tool could not answer within {seconds:g} s (LTIPRO_REQUEST_TIMEOUT): "
            "usually its database (LTIPRO_DATABASE_URL) has stopped answering."
        ),
    )
    if "app" in scope:
        return unavailable(Request(scope), error)
    # Outside a Starlette app (no templates to render a page with).
    headers = {"Retry-After": DATABASE_RETRY_AFTER}
    if scope.get("path", "").startswith("/api/"):
        return JSONResponse(
            {"error": error.code, "message": error.message}, status_code=503, headers=headers
        )
    return PlainTextResponse(error.message, status_code=503, headers=headers)


class RequestDeadline:
    """Plain ASGI middleware: a request gets ``seconds`` to start its answer, or a 503.

    ``seconds`` of 0 turns the bound off. ``unbounded(scope)`` names the requests that
    may take as long as they need (an API import that checks and applies a whole file).
    """

    def __init__(
        self,
        app: ASGIApp,
        seconds: float,
        *,
        unbounded: Callable[[Scope], bool] = never,
        respond: Callable[[Scope, float], Response] = timed_out,
    ) -> None:
        self.app = app
        self.seconds = seconds
        self.unbounded = unbounded
        self.respond = respond

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.seconds <= 0 or self.unbounded(scope):
            await self.app(scope, receive, send)
            return
        loop = asyncio.get_running_loop()
        begun = loop.time()
        started = False
        stopped = False
        client_time = 0.0  # spent waiting for the client's body, not counted
        receiving_since: float | None = None

        async def timed_receive() -> Message:
            nonlocal client_time, receiving_since
            since = receiving_since = loop.time()
            try:
                return await receive()
            finally:
                receiving_since = None
                client_time += loop.time() - since

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if stopped:
                return  # the 503 went out instead; a late answer is dropped
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        task = asyncio.ensure_future(self.app(scope, timed_receive, guarded_send))
        # Woken when the request ends or its time is up (cheaper than asyncio.wait, which
        # every request pays for).
        waiter: asyncio.Future[None] = loop.create_future()

        def wake(_: object = None) -> None:
            if not waiter.done():
                waiter.set_result(None)

        task.add_done_callback(wake)
        try:
            while not task.done():
                if started:
                    # Answering already: a download or a stream runs to its end.
                    await task
                    break
                now = loop.time()
                waiting_for_client = now - receiving_since if receiving_since is not None else 0
                left = self.seconds - (now - begun - client_time - waiting_for_client)
                if left <= 0:
                    break
                timer = loop.call_later(left, wake)
                try:
                    await waiter
                finally:
                    timer.cancel()
                waiter = loop.create_future()
        except asyncio.CancelledError:
            if not task.done():
                _abandon(task)
            raise
        if task.done():
            task.result()  # raises what the app raised
            return
        stopped = True
        _abandon(task)
        log.warning(
            "%s %s: no answer within %g s; answered 503 and stopped the request",
            scope.get("method", ""),
            scope.get("path", ""),
            self.seconds,
        )
        response = self.respond(scope, self.seconds)
        await response(scope, receive, send)
