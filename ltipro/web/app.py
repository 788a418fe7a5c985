"""The Starlette application: every route, top to bottom, and the one lifespan."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.types import Scope

from ltipro import observability
from ltipro.jobs.worker import app_runner
from ltipro.lti.errors import LaunchError
from ltipro.plugins import Plugins
from ltipro.settings import Settings
from ltipro.storage.database import UnstorableText
from ltipro.storage.store import StoreUnavailable
from ltipro.tool import Tool
from ltipro.web import (
    admin,
    api,
    config_api,
    feeds,
    health,
    imports,
    jobs_api,
    lti,
    meetings,
    registration,
    zoom_webhooks,
)
from ltipro.web.deadline import RequestDeadline
from ltipro.web.security import SecurityHeaders, allow_framing_by
from ltipro.web.templating import make_environment, render

log = logging.getLogger(__name__)

PURGE_INTERVAL = 300.0

# An API import checks and applies a whole file, and an undo removes a whole batch, in the
# request (a provider call a row): they are not cut at LTIPRO_REQUEST_TIMEOUT.
LONG_RUNNING = re.compile(r"/api/v1/credentials/\d+/imports(?:/\d+)?")


def runs_long(scope: Scope) -> bool:
    """Whether a request may take longer than the request deadline (see LONG_RUNNING)."""
    if scope.get("method") not in ("POST", "DELETE"):
        return False
    path: str = scope.get("path", "")
    root = scope.get("root_path", "")
    if root and path.startswith(root):
        path = path[len(root) :]
    return LONG_RUNNING.fullmatch(path) is not None


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def home(request: Request) -> Response:
    tool: Tool = request.app.state.tool
    return render(request, "home.html", {"settings": tool.settings})


async def launch_error(request: Request, exc: Exception) -> Response:
    """A refusal outside the launch itself (no session, not allowed): a page or JSON."""
    assert isinstance(exc, LaunchError)
    if request.url.path.startswith("/api/"):
        return JSONResponse({"error": exc.code, "message": exc.message}, status_code=exc.status)
    response = render(
        request,
        "lti/error.html",
        {"error": exc, "custom_message": "", "sign_in_url": "", "relaunch_url": None},
        status_code=exc.status,
    )
    allow_framing_by(request, ())
    return response


# How long a browser or an LMS should wait before trying again when the store is down.
STORE_RETRY_AFTER = "30"


async def store_unavailable(request: Request, exc: Exception) -> Response:
    """The state and session store (Redis or the database) is down: a 503, never a 500.

    A launch cannot be checked for replay without the store, so it is refused rather
    than let through; the user is told to try again and the refusal is logged.
    """
    log.error("the protocol store is unavailable: %s", exc)
    error = LaunchError(
        "store_unavailable",
        "The tool is briefly unavailable. Please try again in a minute.",
        status=503,
        hint=(
            "The tool cannot reach its session store: check the Redis server named in "
            "LTIPRO_REDIS_URL (or the database when no Redis is configured)."
        ),
    )
    headers = {"Retry-After": STORE_RETRY_AFTER}
    if request.url.path.startswith("/api/"):
        return JSONResponse(
            {"error": error.code, "message": error.message}, status_code=503, headers=headers
        )
    if request.url.path.startswith("/lti/"):
        response = await lti.launch_refused(request, error)
    else:
        response = render(
            request,
            "lti/error.html",
            {"error": error, "custom_message": "", "sign_in_url": "", "relaunch_url": None},
            status_code=503,
        )
        allow_framing_by(request, ())
    response.headers.update(headers)
    return response


async def unstorable_text(request: Request, exc: Exception) -> Response:
    """Text the database cannot hold (a NUL character) was sent: a 400 saying so."""
    message = str(exc)
    if request.url.path.startswith("/api/"):
        return JSONResponse({"error": "unstorable_text", "message": message}, status_code=400)
    return PlainTextResponse(message, status_code=400)


async def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if request.url.path.startswith("/api/"):
        return JSONResponse(
            {"error": f"http_{exc.status_code}", "message": exc.detail},
            status_code=exc.status_code,
            headers=exc.headers,
        )
    return PlainTextResponse(exc.detail, status_code=exc.status_code, headers=exc.headers)


def core_routes() -> list[BaseRoute]:
    return [
        Route("/", home, methods=["GET"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", health.readyz, methods=["GET"]),
        Route("/metrics", health.metrics, methods=["GET"]),
        Route("/lti/login", lti.login, methods=["GET", "POST"]),
        Route("/lti/launch", lti.launch, methods=["POST"]),
        Route("/lti/deep-link", lti.deep_link_response, methods=["POST"]),
        Route("/lti/register", registration.register, methods=["GET"]),
        Route("/.well-known/jwks.json", lti.jwks, methods=["GET"]),
        Route("/meetings", meetings.show, methods=["GET", "POST"]),
        Route("/meetings/schedule", meetings.schedule, methods=["POST"]),
        Route("/meetings/{uid}/edit", meetings.edit, methods=["POST"]),
        Route("/meetings/{uid}/update", meetings.update, methods=["POST"]),
        Route("/meetings/{uid}/delete", meetings.delete, methods=["POST"]),
        Route("/meetings/{uid}/start", meetings.start, methods=["POST"]),
        Route("/meetings/{uid}/join", meetings.join, methods=["POST"]),
        Route("/meetings/recordings", meetings.recordings_page, methods=["POST"]),
        Route("/meetings/recordings/publish-all", meetings.publish_all, methods=["POST"]),
        Route("/meetings/{uid}/recordings/publish", meetings.publish, methods=["POST"]),
        Route("/meetings/{uid}/recordings/delete", meetings.delete_recording, methods=["POST"]),
        Route("/meetings/{uid}/attendance", meetings.attendance_page, methods=["POST"]),
        Route("/meetings/{uid}/attendance.csv", meetings.attendance_download, methods=["POST"]),
        Route("/api/v1/me", api.me, methods=["GET"]),
        Route("/api/v1/meetings", meetings.api_list, methods=["GET"]),
        Route("/api/v1/meetings", meetings.api_create, methods=["POST"]),
        Route("/api/v1/meetings/{uid}", meetings.api_get, methods=["GET"]),
        Route("/api/v1/meetings/{uid}", meetings.api_update, methods=["PATCH"]),
        Route("/api/v1/meetings/{uid}", meetings.api_delete, methods=["DELETE"]),
        Route("/api/v1/meetings/{uid}/start", meetings.api_start, methods=["POST"]),
        Route("/api/v1/meetings/{uid}/join", meetings.api_join, methods=["POST"]),
        Route("/api/v1/audiences", meetings.api_audiences, methods=["GET"]),
        Route("/api/v1/recordings", meetings.api_recordings, methods=["GET"]),
        Route("/api/v1/recordings/publish-all", meetings.api_publish_all, methods=["POST"]),
        Route("/api/v1/meetings/{uid}/recordings", meetings.api_recordings, methods=["GET"]),
        Route("/api/v1/meetings/{uid}/recordings/publish", meetings.api_publish, methods=["POST"]),
        Route(
            "/api/v1/meetings/{uid}/recordings/delete",
            meetings.api_delete_recording,
            methods=["POST"],
        ),
        Route("/api/v1/meetings/{uid}/attendance", meetings.api_attendance, methods=["GET"]),
        Route(
            "/api/v1/meetings/{uid}/attendance.csv",
            meetings.api_attendance_csv,
            methods=["GET"],
        ),
        Route("/webhooks/zoom/{credential}", zoom_webhooks.zoom_webhook, methods=["POST"]),
        Route("/api/v1/openapi.json", api.openapi, methods=["GET"]),
        Route(
            "/api/v1/credentials/{credential_id:int}/config",
            config_api.credential_config,
            methods=["GET", "PATCH"],
        ),
        Route(
            "/api/v1/credentials/{credential_id:int}/jobs",
            jobs_api.credential_jobs,
            methods=["GET"],
        ),
        Route(
            "/api/v1/credentials/{credential_id:int}/jobs/{job_id:int}/retry",
            jobs_api.retry,
            methods=["POST"],
        ),
        Route(
            "/api/v1/credentials/{credential_id:int}/jobs/{job_id:int}/discard",
            jobs_api.discard,
            methods=["POST"],
        ),
        Route("/feeds/{token}.ics", feeds.feed, methods=["GET"]),
        Route("/meetings/feeds", feeds.links_page, methods=["POST"]),
        Route("/meetings/feeds/course/reset", feeds.reset_course_page, methods=["POST"]),
        Route("/meetings/feeds/mine/reset", feeds.reset_mine_page, methods=["POST"]),
        Route("/api/v1/feeds", feeds.api_feeds, methods=["GET"]),
        Route("/api/v1/feeds/course/reset", feeds.api_reset_course, methods=["POST"]),
        Route("/api/v1/feeds/mine/reset", feeds.api_reset_mine, methods=["POST"]),
        *imports.api_routes(),
        Mount("/admin", routes=admin.admin_routes()),
    ]


def create_app(settings: Settings | None = None, *, tool: Tool | None = None) -> Starlette:
    """The ASGI app; ``tool`` (in tests) replaces the resources the lifespan would open."""
    settings = settings or (tool.settings if tool else Settings.from_env())
    plugins = tool.plugins if tool else Plugins.load(settings.plugins)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        owned = tool is None
        if owned:
            # A server of its own (not a test's app): its log lines and shared metrics.
            observability.configure_logging(settings.log_format)
            observability.shared_metrics(settings.metrics_dir)
        current = tool or await Tool.open(settings, plugins=plugins)
        app.state.tool = current
        if settings.dev:
            from ltipro.simulator.setup import ensure_simulator_registered

            await ensure_simulator_registered(current)
        purger = asyncio.create_task(_purge_loop(current))
        # With SQLite (or LTIPRO_JOBS_IN_APP=1) the app runs the job queue itself.
        job_runner = app_runner(current)
        try:
            yield
        finally:
            if job_runner is not None:
                await job_runner.stop()
            purger.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await purger
            if owned:
                await current.close()
                observability.stop_sharing()

    routes = core_routes() + plugin_routes(plugins)
    if settings.dev:
        from ltipro.simulator.app import simulator_routes

        routes.append(Mount("/simulator", routes=simulator_routes()))
    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        middleware=[
            Middleware(health.RequestObservability),
            Middleware(SecurityHeaders),
            # Innermost: its 503 is logged, counted and given the security headers.
            Middleware(RequestDeadline, seconds=settings.request_timeout, unbounded=runs_long),
        ],
        exception_handlers={
            LaunchError: launch_error,
            HTTPException: http_error,
            StoreUnavailable: store_unavailable,
            UnstorableText: unstorable_text,
            **{error: health.database_unavailable for error in health.DATABASE_ERRORS},
        },
    )
    app.state.templates = make_environment(settings.instance)
    app.state.settings = settings
    if tool is not None:
        app.state.tool = tool
    return app


def plugin_routes(plugins: Plugins) -> list[BaseRoute]:
    """Each plugin's own routes, mounted under ``/plugins/<name>/``."""
    mounted: list[BaseRoute] = []
    for name, routes in plugins.broadcast_sync("plugin_routes"):
        if routes:
            mounted.append(Mount(f"/plugins/{name}", routes=list(routes)))
    return mounted


async def _purge_loop(tool: Tool) -> None:
    while True:
        await asyncio.sleep(PURGE_INTERVAL)
        try:
            await tool.store.purge_expired()
        except Exception:
            log.exception("purging expired protocol state failed")
