"""What a load balancer and a monitoring system ask the tool: alive, ready, metrics.

- ``/healthz`` (in ``ltipro.web.app``): the process answers. Liveness only, so a database
  outage does not make an orchestrator restart every worker.
- ``/readyz``: the database and the session store (Redis when configured) answer within
  a short time; 200 with each check named, 503 when one fails, so a load balancer stops
  sending users to a worker that could only fail them.
- ``/metrics``: Prometheus text format, optionally behind a token or an address list.

And the middleware that gives every request its id, its log line and its latency, and the
handler that turns a lost database into a 503 page instead of a traceback.
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ltipro import observability
from ltipro.lti.errors import LaunchError
from ltipro.observability import (
    HTTP_LATENCY,
    HTTP_REQUESTS,
    REQUEST_ID_HEADER,
    accepted_request_id,
    request_context,
)
from ltipro.settings import Settings
from ltipro.storage.jobs_tables import jobs
from ltipro.web.security import allow_framing_by
from ltipro.web.templating import render

T = TypeVar("T")
log = logging.getLogger("ltipro.web")
access_log = logging.getLogger("ltipro.access")

# Each readiness check gets this long: a load balancer's probe usually waits 5 s or less.
READY_TIMEOUT = 2.0
# Routes that a load balancer or Prometheus calls every few seconds: logged at debug only.
QUIET_ROUTES = frozenset({"/healthz", "/readyz", "/metrics"})
# Queue states worth a gauge; done jobs are history, and counting them would grow with it.
QUEUE_STATES = ("queued", "running", "dead")
DATABASE_RETRY_AFTER = "30"


# -- /readyz ----------------------------------------------------------------------------------


# Probes given up on, kept referenced until they end (see within_time_limit).
_abandoned: set[asyncio.Task[Any]] = set()


def _forget(task: asyncio.Task[Any]) -> None:
    _abandoned.discard(task)
    if not task.cancelled():
        task.exception()  # retrieved, so it is not reported as lost


async def within_time_limit(probe: Callable[[], Awaitable[T]], seconds: float) -> T:
    """``await probe()``, or :class:`TimeoutError` after ``seconds``, whatever it does.

    ``asyncio.timeout`` alone is not enough: a cancelled database call may itself wait on
    the silent connection while it cleans up (seen: ten seconds and more). The probe runs
    as a task of its own, which is cancelled and left to finish in the background.
    """
    task = asyncio.ensure_future(probe())
    done, _ = await asyncio.wait({task}, timeout=seconds)
    if not done:
        task.cancel()
        _abandoned.add(task)
        task.add_done_callback(_forget)
        raise TimeoutError
    return task.result()


async def _check(name: str, probe: Any) -> tuple[str, dict[str, Any]]:
    start = time.perf_counter()
    try:
        await within_time_limit(probe, READY_TIMEOUT)
    except TimeoutError:
        log.warning("readiness check %s: no answer within %.1f s", name, READY_TIMEOUT)
        result: dict[str, Any] = {"ok": False, "error": f"no answer within {READY_TIMEOUT:g} s"}
    except Exception as exc:
        # The details (host names, drivers' messages) go to the log, not to the caller.
        log.warning("readiness check %s failed: %s: %s", name, type(exc).__name__, exc)
        result = {"ok": False, "error": "unreachable"}
    else:
        result = {"ok": True}
    result["ms"] = round((time.perf_counter() - start) * 1000, 1)
    return name, result


async def readyz(request: Request) -> Response:
    """``GET /readyz``: 200 when the database and the store answer, 503 otherwise."""
    tool = request.app.state.tool

    async def database() -> None:
        async with tool.repo.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def store() -> None:
        # A read through the store's own code path: whatever backs it is exercised.
        await tool.store.peek("readiness", "probe")

    results = dict(await asyncio.gather(_check("database", database), _check("store", store)))
    results["store"]["backend"] = "redis" if tool.settings.redis_url else "database"
    ready = all(r["ok"] for r in results.values())
    return JSONResponse(
        {"status": "ready" if ready else "unavailable", "checks": results},
        status_code=200 if ready else 503,
        headers={"Cache-Control": "no-store"},
    )


# -- /metrics ---------------------------------------------------------------------------------


def metrics_allowed(request: Request, settings: Settings) -> bool:
    """Whether this caller may read the metrics.

    With neither ``LTIPRO_METRICS_TOKEN`` nor ``LTIPRO_METRICS_ALLOW`` set, anyone may
    (keep ``/metrics`` off the public proxy then, as docs/deploy.md shows). With either
    set, a caller passes by presenting the token or by coming from a listed network.
    """
    if not settings.metrics_token and not settings.metrics_allow:
        return True
    if settings.metrics_token:
        given = request.headers.get("authorization", "")
        scheme, _, credentials = given.partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(
            credentials.strip().encode(), settings.metrics_token.encode()
        ):
            return True
    if settings.metrics_allow and request.client is not None:
        try:
            address = ipaddress.ip_address(request.client.host)
        except ValueError:
            return False
        return any(address in ipaddress.ip_network(network) for network in settings.metrics_allow)
    return False


async def queue_depth(tool: Any) -> dict[tuple[str, ...], float]:
    """Jobs per state, read at scrape time (one indexed query)."""
    counts: dict[tuple[str, ...], float] = {(state,): 0.0 for state in QUEUE_STATES}

    async def read() -> None:
        async with tool.repo.engine.connect() as conn:
            rows = await conn.execute(
                select(jobs.c.status, func.count())
                .where(jobs.c.status.in_(QUEUE_STATES))
                .group_by(jobs.c.status)
            )
            for status, count in rows:
                counts[(str(status),)] = float(count)

    await within_time_limit(read, READY_TIMEOUT)
    return counts


async def metrics(request: Request) -> Response:
    """``GET /metrics``: every process's counters summed, and the job queue's depth."""
    tool = request.app.state.tool
    settings: Settings = tool.settings
    if not metrics_allowed(request, settings):
        return PlainTextResponse(
            "metrics need the token of LTIPRO_METRICS_TOKEN (Authorization: Bearer ...)\n",
            status_code=401 if settings.metrics_token else 403,
            headers={"WWW-Authenticate": "Bearer"} if settings.metrics_token else None,
        )
    gauges = []
    database_up = 1.0
    try:
        depth = await queue_depth(tool)
    except Exception as exc:
        log.warning("metrics: the job queue could not be read: %s: %s", type(exc).__name__, exc)
        database_up = 0.0
    else:
        gauges.append(("ltipro_jobs", "Jobs in the queue by state.", ["status"], depth))
    gauges.append(
        (
            "ltipro_metrics_database_up",
            "1 when the scrape could read the database, 0 when it could not.",
            [],
            {(): database_up},
        )
    )
    merged = await asyncio.to_thread(observability.collect, settings.metrics_dir)
    body = observability.render(observability.REGISTRY, merged, gauges)
    return Response(body, media_type="text/plain; version=0.0.4; charset=utf-8")


# -- the database lost ------------------------------------------------------------------------

DATABASE_ERRORS: tuple[type[Exception], ...] = (OperationalError, InterfaceError, PoolTimeout)


def database_lost(exc: BaseException) -> bool:
    """Whether an error means the database cannot be reached (not a bug in a query)."""
    if isinstance(exc, DATABASE_ERRORS):
        return True
    return isinstance(exc, DBAPIError) and exc.connection_invalidated


async def database_unavailable(request: Request, exc: Exception) -> Response:
    """A 503 page (or JSON) that says to try again, instead of a 500 traceback."""
    if not database_lost(exc):
        raise exc
    log.error("the database is unavailable: %s: %s", type(exc).__name__, str(exc)[:500])
    error = LaunchError(
        "database_unavailable",
        "The tool is briefly unavailable. Please try again in a minute.",
        status=503,
        hint="The tool cannot reach its database: check the server in LTIPRO_DATABASE_URL.",
    )
    return unavailable(request, error)


def unavailable(request: Request, error: LaunchError) -> Response:
    """The 503 "briefly unavailable" answer, with ``Retry-After``: JSON under ``/api/``,
    otherwise the error page (which any LMS may frame, as no course is known)."""
    headers = {"Retry-After": DATABASE_RETRY_AFTER}
    if request.url.path.startswith("/api/"):
        return JSONResponse(
            {"error": error.code, "message": error.message}, status_code=503, headers=headers
        )
    response = render(
        request,
        "lti/error.html",
        {"error": error, "custom_message": "", "sign_in_url": "", "relaunch_url": None},
        status_code=503,
    )
    allow_framing_by(request, ())
    response.headers.update(headers)
    return response


# -- every request: its id, its log line, its latency ----------------------------------------


def route_template(scope: Scope) -> str:
    """The matched route's path pattern (``/meetings/{uid}/join``), never the raw path."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    if not isinstance(path, str):
        return "unmatched"
    # Inside a Mount the route's path is relative; the mount's prefix is in root_path.
    prefix = scope.get("root_path", "")[len(scope.get("ltipro.root_path", "")) :]
    return (prefix + path) or "/"


class RequestObservability:
    """Plain ASGI middleware: request id in and out, one log line, latency metrics."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        sent_id = None
        for name, value in scope.get("headers", ()):
            if name == b"x-request-id":
                sent_id = value.decode("latin-1")
                break
        request_id = accepted_request_id(sent_id)
        scope["ltipro.root_path"] = scope.get("root_path", "")
        status = 500
        start = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                headers = list(message.get("headers", []))
                headers.append((REQUEST_ID_HEADER.encode(), request_id.encode()))
                message["headers"] = headers
            await send(message)

        with request_context(request_id):
            try:
                await self.app(scope, receive, send_with_id)
            except Exception:
                # Logged here, while the request's id is still on the context: the server's
                # own traceback line comes later, without it.
                log.exception("unhandled error in %s %s", scope.get("method"), scope.get("path"))
                raise
            finally:
                elapsed = time.perf_counter() - start
                route = route_template(scope)
                method = scope.get("method", "")
                HTTP_LATENCY.observe(elapsed, method=method, route=route)
                HTTP_REQUESTS.inc(method=method, route=route, status=str(status))
                level = logging.DEBUG if route in QUIET_ROUTES else logging.INFO
                if access_log.isEnabledFor(level):
                    _log_request(scope, level, method, route, status, elapsed)


def _log_request(
    scope: Scope, level: int, method: str, route: str, status: int, elapsed: float
) -> None:
    """The request's one line. The record is made directly: ``Logger.log`` would also walk
    the stack to find its caller, which costs more than the rest of the line together."""
    path = scope.get("path", "")
    client = scope.get("client")
    record = access_log.makeRecord(
        access_log.name,
        level,
        __file__,
        0,
        "%s %s %d %.1f ms",
        (method, path, status, elapsed * 1000),
        None,
        extra={
            "method": method,
            "path": path,
            "route": route,
            "status": status,
            "duration_ms": round(elapsed * 1000, 2),
            "client": client[0] if client else None,
        },
    )
    access_log.handle(record)
