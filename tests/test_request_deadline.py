"""The request deadline (``LTIPRO_REQUEST_TIMEOUT``, ltipro.web.deadline).

A request that has not started its answer within the deadline is stopped and answered
with the lost-database 503 (a page, or JSON under ``/api/``) and ``Retry-After``; an
answer that has started runs to its end; anything that is not an HTTP request, and the
time a client takes to send its body, are not bounded. With the tool's own app: a launch
held up by a locked database answers 503 in time and leaves nothing of its writes, and
the same launch goes through once the database answers again.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import Message, Receive, Scope, Send

from ltipro.settings import Settings, SettingsError
from ltipro.storage.schema import courses, launch_log, protocol_state
from ltipro.testing.harness import ToolHarness
from ltipro.testing.pytest_plugin import sync_postgres_url
from ltipro.web import deadline
from ltipro.web.app import runs_long
from ltipro.web.deadline import RequestDeadline
from ltipro.web.templating import make_environment

DEADLINE = 0.5
# How late a 503 may come after the deadline on a busy test machine.
SLACK = 1.0

cancelled: list[str] = []


async def slow(request: Request) -> Response:
    try:
        await asyncio.sleep(30)
    except asyncio.CancelledError:
        cancelled.append(request.url.path)
        raise
    return PlainTextResponse("too late")


async def quick(request: Request) -> Response:
    return JSONResponse({"ok": True})


async def stream(request: Request) -> Response:
    async def chunks() -> AsyncIterator[bytes]:
        for n in range(4):
            yield f"part {n}\n".encode()
            await asyncio.sleep(DEADLINE / 2)

    return StreamingResponse(chunks(), media_type="text/plain")


async def upload(request: Request) -> Response:
    body = await request.body()
    return JSONResponse({"bytes": len(body)})


def small_app(seconds: float = DEADLINE) -> Starlette:
    app = Starlette(
        routes=[
            Route("/meetings/slow", slow),
            Route("/api/v1/slow", slow),
            Route("/api/v1/quick", quick),
            Route("/download", stream),
            Route("/upload", upload, methods=["POST"]),
        ],
    )
    app.state.templates = make_environment()
    app.add_middleware(RequestDeadline, seconds=seconds)
    return app


@pytest.fixture
def client() -> Iterator[httpx.AsyncClient]:
    cancelled.clear()
    yield httpx.AsyncClient(transport=httpx.ASGITransport(app=small_app()), base_url="http://t")


async def timed(call: Any) -> tuple[httpx.Response, float]:
    start = time.monotonic()
    response = await call
    return response, time.monotonic() - start


async def until_cleaned_up() -> None:
    for _ in range(200):
        if deadline.stopped_requests() == 0:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("a stopped request is still running")


async def test_a_page_slower_than_the_deadline_gets_the_unavailable_page_in_time(
    client: httpx.AsyncClient,
) -> None:
    response, seconds = await timed(client.get("/meetings/slow"))
    assert response.status_code == 503
    assert DEADLINE <= seconds < DEADLINE + SLACK
    assert response.headers["retry-after"] == "30"
    assert response.headers["content-type"].startswith("text/html")
    assert 'data-error-code="request_timeout"' in response.text
    assert "briefly unavailable" in response.text
    assert "too late" not in response.text
    await until_cleaned_up()
    # Its work was stopped, not left running.
    assert cancelled == ["/meetings/slow"]


async def test_an_api_call_slower_than_the_deadline_gets_json(client: httpx.AsyncClient) -> None:
    response, seconds = await timed(client.get("/api/v1/slow"))
    assert response.status_code == 503
    assert seconds < DEADLINE + SLACK
    assert response.headers["retry-after"] == "30"
    assert response.json() == {
        "error": "request_timeout",
        "message": "The tool is briefly unavailable. Please try again in a minute.",
    }
    await until_cleaned_up()
    assert cancelled == ["/api/v1/slow"]


async def test_a_request_within_the_deadline_is_answered_as_usual(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/api/v1/quick")
    assert response.status_code == 200 and response.json() == {"ok": True}


async def test_an_answer_that_has_started_is_not_cut(client: httpx.AsyncClient) -> None:
    response, seconds = await timed(client.get("/download"))
    assert response.status_code == 200
    assert response.text == "part 0\npart 1\npart 2\npart 3\n"
    assert seconds > DEADLINE  # it ran past the deadline, whole


async def test_a_slow_client_body_does_not_count_against_the_deadline() -> None:
    chunks = [b"x" * 10] * 4
    sent: list[Message] = []

    async def receive() -> Message:
        await asyncio.sleep(DEADLINE / 2)  # the client sends a chunk now and then
        body = chunks.pop()
        return {"type": "http.request", "body": body, "more_body": bool(chunks)}

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/upload",
        "raw_path": b"/upload",
        "root_path": "",
        "query_string": b"",
        "headers": [],
        "client": ("127.0.0.1", 1),
        "server": ("t", 80),
    }
    start = time.monotonic()
    await small_app()(scope, receive, send)
    assert time.monotonic() - start > DEADLINE
    assert sent[0]["status"] == 200
    assert sent[1]["body"] == b'{"bytes":40}'


async def test_scopes_other_than_http_are_not_bounded() -> None:
    seen: list[str] = []

    async def long_running(scope: Scope, receive: Receive, send: Send) -> None:
        await asyncio.sleep(DEADLINE * 2)
        seen.append(scope["type"])

    async def nothing() -> Message:
        return {}

    async def ignore(message: Message) -> None:
        pass

    middleware = RequestDeadline(long_running, seconds=DEADLINE)
    for kind in ("lifespan", "websocket"):
        await middleware({"type": kind}, nothing, ignore)
    assert seen == ["lifespan", "websocket"]


async def test_a_deadline_of_zero_and_unbounded_routes_are_not_cut() -> None:
    async def late(scope: Scope, receive: Receive, send: Send) -> None:
        await asyncio.sleep(DEADLINE * 2)
        await PlainTextResponse("done")(scope, receive, send)

    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    async def receive() -> Message:
        return {"type": "http.request", "body": b""}

    scope = {"type": "http", "method": "POST", "path": "/api/v1/credentials/3/imports"}
    await RequestDeadline(late, seconds=0)(scope, receive, send)
    await RequestDeadline(late, seconds=DEADLINE, unbounded=runs_long)(scope, receive, send)
    assert [m["status"] for m in sent if m["type"] == "http.response.start"] == [200, 200]


def test_only_api_imports_and_undos_are_long_running() -> None:
    def scope(method: str, path: str, root: str = "") -> Scope:
        return {"type": "http", "method": method, "path": root + path, "root_path": root}

    assert runs_long(scope("POST", "/api/v1/credentials/3/imports"))
    assert runs_long(scope("DELETE", "/api/v1/credentials/3/imports/8"))
    assert runs_long(scope("POST", "/api/v1/credentials/3/imports", root="/lti"))
    assert not runs_long(scope("GET", "/api/v1/credentials/3/imports/8"))
    assert not runs_long(scope("POST", "/api/v1/meetings"))
    assert not runs_long(scope("POST", "/lti/launch"))
    assert not runs_long(scope("POST", "/api/v1/credentials/3/imports/8/extra"))


def test_the_deadline_is_read_from_the_environment(tmp_path: Path) -> None:
    base = {"LTIPRO_INSTANCE": str(tmp_path), "LTIPRO_DEV": "1"}
    assert Settings.from_env(base, create=True).request_timeout == 30
    assert Settings.from_env({**base, "LTIPRO_REQUEST_TIMEOUT": "5"}).request_timeout == 5
    assert Settings.from_env({**base, "LTIPRO_REQUEST_TIMEOUT": "0"}).request_timeout == 0
    for bad in ("-1", "2.5", "soon", "3601"):
        with pytest.raises(SettingsError, match="LTIPRO_REQUEST_TIMEOUT"):
            Settings.from_env({**base, "LTIPRO_REQUEST_TIMEOUT": bad})


# -- the tool's own app, on each database -----------------------------------------------------

LOCKED = (protocol_state, courses, launch_log)
CLAIMS = {
    "sub": "deadline-user",
    "email": "deadline@example.edu",
    "https://purl.imsglobal.org/spec/lti/claim/roles": [
        "http://purl.imsglobal.org/vocab/lis/v2/membership#Instructor"
    ],
    "https://purl.imsglobal.org/spec/lti/claim/context": {"id": "deadline-course"},
}


@contextmanager
def database_locked(database_url: str) -> Iterator[None]:
    """Another client holds the launch's tables, so its writes wait (as on a stalled
    server): on SQLite the database's write lock, on PostgreSQL the tables' locks."""
    engine = sa.create_engine(
        sync_postgres_url(database_url) if database_url.startswith("postgres") else database_url
    )
    try:
        with engine.connect() as conn:
            if engine.dialect.name == "sqlite":
                conn.exec_driver_sql("BEGIN EXCLUSIVE")
            else:
                names = ", ".join(table.name for table in LOCKED)
                conn.exec_driver_sql(f"LOCK TABLE {names} IN ACCESS EXCLUSIVE MODE")
            try:
                yield
            finally:
                conn.rollback()
    finally:
        engine.dispose()


async def written(harness: ToolHarness) -> list[Any]:
    async with harness.tool.repo.engine.connect() as conn:
        return [
            sorted(map(tuple, (await conn.execute(sa.select(table))).all()), key=repr)
            for table in LOCKED
        ]


@pytest.fixture
async def bounded(database_url: str, tmp_path: Path) -> AsyncIterator[ToolHarness]:
    async with ToolHarness(
        database_url=database_url,
        instance=tmp_path / "instance",
        settings_overrides={"request_timeout": 1},
    ) as h:
        yield h


async def test_a_launch_held_up_by_the_database_answers_503_in_time_and_writes_nothing(
    bounded: ToolHarness,
) -> None:
    harness = bounded
    assert make_url(harness.database_url).get_backend_name() in ("sqlite", "postgresql")
    login = await harness.login(CLAIMS)
    assert login.status_code == 302
    _, form = harness.platform.authenticate(harness.auth_request(login))
    before = await written(harness)

    with database_locked(harness.database_url):
        refused, seconds = await timed(harness.client.post("/lti/launch", data=form))
        await asyncio.sleep(0.2)  # a stopped request may not write, even later
    assert refused.status_code == 503
    assert 1.0 <= seconds < 1.0 + SLACK
    assert refused.headers["retry-after"] == "30"
    assert 'data-error-code="request_timeout"' in refused.text
    await until_cleaned_up()
    # Its connection went back to the pool (or was closed), and it wrote nothing.
    assert harness.tool.repo.engine.pool.checkedout() == 0  # type: ignore[attr-defined]
    assert await written(harness) == before

    # Nothing of it was kept, not even the spent login state: the same launch goes through.
    page = await harness.client.post("/lti/launch", data=form)
    assert page.status_code == 200, page.text[-500:]
    async with harness.tool.repo.engine.connect() as conn:
        launches = (await conn.execute(sa.select(launch_log))).all()
        course_ids = (await conn.execute(sa.select(courses.c.context_id))).scalars().all()
    assert [(r.user_id, r.outcome) for r in launches] == [("deadline-user", "ok")]
    assert course_ids == ["deadline-course"]
