"""Readiness, request ids, structured logs and metrics, in-process on each database backend."""

from __future__ import annotations

import asyncio
import json
import logging
import math
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from ltipro import observability
from ltipro.jobs.handlers import JobContext, JobHandlers
from ltipro.jobs.queue import enqueue
from ltipro.jobs.worker import Worker
from ltipro.observability import (
    REGISTRY,
    JsonFormatter,
    MetricsTransport,
    RequestIdFilter,
    SharedMetrics,
    merge_snapshots,
)
from ltipro.settings import Settings, SettingsError
from ltipro.storage.store import StoreUnavailable
from ltipro.testing.harness import ToolHarness
from ltipro.web import health

CLAIM = "https://purl.imsglobal.org/spec/lti/claim/"
STUDENT = {
    "sub": "student-1",
    "email": "student@example.edu",
    CLAIM + "roles": ["http://purl.imsglobal.org/vocab/lis/v2/membership#Learner"],
    CLAIM + "context": {"id": "course-1", "title": "Biology"},
    CLAIM + "resource_link": {"id": "link-1"},
}
SAMPLE = re.compile(
    r'^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(?P<labels>(?:[a-zA-Z_]\w*="(?:[^"\\]|\\.)*",?)*)\})?'
    r" (?P<value>[-+]?(?:\d+(?:\.\d*)?(?:e[-+]?\d+)?|Inf|NaN))$"
)


@pytest.fixture(autouse=True)
def fresh_metrics() -> Iterator[None]:
    REGISTRY.reset()
    yield
    REGISTRY.reset()


@pytest.fixture
def records() -> Iterator[list[logging.LogRecord]]:
    """Every record the ``ltipro`` loggers write, with the request id filter applied."""
    seen: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record)

    handler = Keep(level=logging.DEBUG)
    handler.addFilter(RequestIdFilter())
    logger = logging.getLogger("ltipro")
    previous = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        yield seen
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous)


def parse_exposition(body: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    """The samples of a text-format 0.0.4 page; every line must be a comment or a sample."""
    samples: dict[str, list[tuple[dict[str, str], float]]] = {}
    for line in body.splitlines():
        if not line or line.startswith("# HELP ") or line.startswith("# TYPE "):
            continue
        match = SAMPLE.match(line)
        assert match, f"not a sample line: {line!r}"
        labels = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', match["labels"] or ""))
        value = match["value"]
        number = math.inf if value in ("+Inf", "Inf") else float(value)
        samples.setdefault(match["name"], []).append((labels, number))
    return samples


def value_of(samples: dict[str, Any], name: str, **labels: str) -> float:
    return sum(
        v for found, v in samples.get(name, []) if all(found.get(k) == w for k, w in labels.items())
    )


# -- /readyz ----------------------------------------------------------------------------------


async def test_readyz_names_each_check_and_answers_200_when_all_pass(harness: ToolHarness) -> None:
    response = await harness.client.get("/readyz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ready"
    assert set(body["checks"]) == {"database", "store"}
    assert all(check["ok"] for check in body["checks"].values())
    assert body["checks"]["store"]["backend"] == "database"
    assert response.headers["cache-control"] == "no-store"


class BrokenStore:
    """A store whose backend is down (what RedisStore raises when Redis is)."""

    async def peek(self, kind: str, key: str) -> str | None:
        raise StoreUnavailable("Redis is unavailable: connection refused")


class SilentStore:
    """A store whose backend takes a connection and never answers."""

    async def peek(self, kind: str, key: str) -> str | None:
        await asyncio.sleep(30)
        return None


async def test_readyz_is_503_naming_the_store_when_it_fails(harness: ToolHarness) -> None:
    real = harness.tool.store
    harness.tool.store = BrokenStore()  # type: ignore[assignment]
    try:
        response = await harness.client.get("/readyz")
    finally:
        harness.tool.store = real
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["database"]["ok"] is True
    assert body["checks"]["store"] == {
        "ok": False,
        "error": "unreachable",
        "ms": body["checks"]["store"]["ms"],
        "backend": "database",
    }
    assert "connection refused" not in response.text  # details go to the log only


async def test_readyz_gives_up_on_a_check_that_does_not_answer(
    harness: ToolHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(health, "READY_TIMEOUT", 0.05)
    real = harness.tool.store
    harness.tool.store = SilentStore()  # type: ignore[assignment]
    try:
        async with asyncio.timeout(5):
            response = await harness.client.get("/readyz")
    finally:
        harness.tool.store = real
    assert response.status_code == 503
    assert response.json()["checks"]["store"]["error"] == "no answer within 0.05 s"


async def test_readyz_is_503_naming_the_database_when_it_is_unreachable(
    harness: ToolHarness,
) -> None:
    from ltipro.storage.database import create_engine

    real = harness.tool.repo.engine
    # Port 1 on the loopback interface: nothing listens, the connection is refused at once.
    harness.tool.repo.engine = create_engine("postgresql://ltipro@127.0.0.1:1/none")
    try:
        response = await harness.client.get("/readyz")
    finally:
        await harness.tool.repo.engine.dispose()
        harness.tool.repo.engine = real
    assert response.status_code == 503
    assert response.json()["checks"]["database"]["ok"] is False


async def test_healthz_stays_200_while_the_store_is_down(harness: ToolHarness) -> None:
    real = harness.tool.store
    harness.tool.store = BrokenStore()  # type: ignore[assignment]
    try:
        response = await harness.client.get("/healthz")
    finally:
        harness.tool.store = real
    assert response.status_code == 200


# -- request ids and log lines ------------------------------------------------------------------


async def test_a_sane_request_id_is_kept_and_echoed(harness: ToolHarness) -> None:
    response = await harness.client.get("/healthz", headers={"X-Request-ID": "lb-7f3a.42"})
    assert response.headers["x-request-id"] == "lb-7f3a.42"


@pytest.mark.parametrize("sent", ['x" forged="1', "a b", "-leading-dash", "x" * 200, ""])
async def test_an_unsafe_request_id_is_replaced_by_a_new_one(
    harness: ToolHarness, sent: str
) -> None:
    response = await harness.client.get("/healthz", headers={"X-Request-ID": sent})
    echoed = response.headers["x-request-id"]
    assert echoed != sent
    assert re.fullmatch(r"[0-9a-f]{32}", echoed)


async def test_every_request_gets_its_own_id(harness: ToolHarness) -> None:
    ids = {(await harness.client.get("/healthz")).headers["x-request-id"] for _ in range(3)}
    assert len(ids) == 3


async def test_a_refused_launch_logs_its_lines_under_the_requests_id(
    harness: ToolHarness, records: list[logging.LogRecord]
) -> None:
    await harness.launch13(STUDENT, form_overrides={"state": "forged-state"})
    launch_lines = [r for r in records if getattr(r, "route", None) == "/lti/launch"]
    assert len(launch_lines) == 1
    request_id = launch_lines[0].request_id  # type: ignore[attr-defined]
    assert launch_lines[0].status == 400  # type: ignore[attr-defined]
    refusals = [r for r in records if getattr(r, "outcome", None) == "refused"]
    assert refusals, "the refused launch wrote no log line"
    assert all(r.request_id == request_id for r in refusals)  # type: ignore[attr-defined]
    assert refusals[0].code == "unknown_state"  # type: ignore[attr-defined]


async def test_the_request_log_line_is_json_with_request_id_route_status_and_pid(
    harness: ToolHarness, records: list[logging.LogRecord]
) -> None:
    await harness.client.get("/admin/login", headers={"X-Request-ID": "req-123"})
    (record,) = [r for r in records if r.name == "ltipro.access"]
    line = JsonFormatter().format(record)
    assert "\n" not in line
    entry = json.loads(line)
    assert entry["request_id"] == "req-123"
    assert entry["route"] == "/admin/login"
    assert entry["method"] == "GET"
    assert entry["status"] == 200
    assert entry["duration_ms"] >= 0
    assert isinstance(entry["pid"], int)
    assert entry["level"] == "info"


async def test_job_log_lines_carry_the_jobs_id_and_jobs_are_counted(
    harness: ToolHarness, records: list[logging.LogRecord]
) -> None:
    handlers = JobHandlers()

    async def handler(context: JobContext) -> None:
        logging.getLogger("ltipro.jobs.test").info("working on %s", context.job.payload)

    handlers.register("ops.test", handler)
    async with harness.tool.repo.engine.begin() as conn:
        job = await enqueue(conn, "ops.test", {"n": 1}, key="ops-1")
    worker = Worker(harness.tool.repo.engine, handlers=handlers, tool=harness.tool)
    outcome = await worker.run_one()
    assert outcome is not None and outcome.result == "done"
    working = [r for r in records if r.name == "ltipro.jobs.test"]
    assert [r.request_id for r in working] == [f"job-{job.id}"]  # type: ignore[attr-defined]
    assert observability.JOBS_RUN.value(kind="ops.test", outcome="done") == 1


def test_log_format_is_text_in_development_and_json_otherwise(tmp_path: Path) -> None:
    base = {"LTIPRO_INSTANCE": str(tmp_path), "LTIPRO_SECRET_KEY": "k" * 40}
    assert Settings.from_env({**base, "LTIPRO_DEV": "1"}).log_format == "text"
    production = {**base, "LTIPRO_BASE_URL": "https://lti.example.edu"}
    assert Settings.from_env(production).log_format == "json"
    assert Settings.from_env({**production, "LTIPRO_LOG_FORMAT": "text"}).log_format == "text"


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("LTIPRO_LOG_FORMAT", "xml", "LTIPRO_LOG_FORMAT must be json or text"),
        ("LTIPRO_METRICS_TOKEN", "short", "LTIPRO_METRICS_TOKEN must be at least 16"),
        ("LTIPRO_METRICS_ALLOW", "10.0.0.0/8,not-a-net", "LTIPRO_METRICS_ALLOW must be"),
    ],
)
def test_operations_settings_refuse_values_they_cannot_use(
    tmp_path: Path, name: str, value: str, message: str
) -> None:
    env = {"LTIPRO_INSTANCE": str(tmp_path), "LTIPRO_SECRET_KEY": "k" * 40, "LTIPRO_DEV": "1"}
    with pytest.raises(SettingsError, match=message):
        Settings.from_env({**env, name: value})


# -- /metrics ---------------------------------------------------------------------------------


async def test_metrics_count_launches_by_lms_and_outcome(harness: ToolHarness) -> None:
    assert (await harness.launch13(STUDENT)).status_code == 200
    assert (await harness.launch13(STUDENT, form_overrides={"state": "forged"})).status_code == 400
    response = await harness.client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    samples = parse_exposition(response.text)
    assert value_of(samples, "ltipro_launches_total", lms="generic", outcome="ok") == 1
    refused = value_of(samples, "ltipro_launches_total", outcome="refused")
    assert refused == 1


async def test_latency_is_labelled_by_route_template_not_by_path(harness: ToolHarness) -> None:
    for uid in ("abc", "def"):
        await harness.client.post(f"/meetings/{uid}/join")
    await harness.client.get("/no/such/page")
    samples = parse_exposition((await harness.client.get("/metrics")).text)
    routes = {
        labels["route"] for labels, _ in samples["ltipro_http_request_duration_seconds_count"]
    }
    assert "/meetings/{uid}/join" in routes
    assert "unmatched" in routes
    assert not any("abc" in route or "no/such" in route for route in routes)
    joins = value_of(
        samples, "ltipro_http_request_duration_seconds_count", route="/meetings/{uid}/join"
    )
    assert joins == 2


async def test_histogram_buckets_are_cumulative_and_end_at_the_count(harness: ToolHarness) -> None:
    for _ in range(3):
        await harness.client.get("/healthz")
    samples = parse_exposition((await harness.client.get("/metrics")).text)
    buckets = [
        (labels["le"], v)
        for labels, v in samples["ltipro_http_request_duration_seconds_bucket"]
        if labels["route"] == "/healthz"
    ]
    counts = [v for _, v in buckets]
    assert counts == sorted(counts)
    assert buckets[-1] == ("+Inf", 3.0)
    assert value_of(samples, "ltipro_http_request_duration_seconds_count", route="/healthz") == 3


async def test_queue_depth_is_read_from_the_database_at_scrape_time(harness: ToolHarness) -> None:
    async with harness.tool.repo.engine.begin() as conn:
        for n in range(3):
            await enqueue(conn, "ops.depth", {"n": n}, key=f"depth-{n}")
    samples = parse_exposition((await harness.client.get("/metrics")).text)
    assert value_of(samples, "ltipro_jobs", status="queued") == 3
    assert value_of(samples, "ltipro_jobs", status="dead") == 0
    assert value_of(samples, "ltipro_metrics_database_up") == 1


TOKEN = "metrics-token-0123456789abcdef"


@pytest.fixture
async def guarded(database_url: str, tmp_path: Path) -> Any:
    async with ToolHarness(
        database_url=database_url,
        instance=tmp_path / "instance",
        plugins=[],
        settings_overrides={"metrics_token": TOKEN},
    ) as h:
        yield h


async def test_metrics_need_the_token_when_one_is_set(guarded: ToolHarness) -> None:
    anonymous = await guarded.client.get("/metrics")
    wrong = await guarded.client.get("/metrics", headers={"Authorization": "Bearer nope"})
    right = await guarded.client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert anonymous.status_code == 401 and wrong.status_code == 401
    assert "ltipro_" not in anonymous.text + wrong.text
    assert right.status_code == 200 and "ltipro_launches_total" in right.text


async def test_metrics_allow_list_admits_listed_networks_only(harness: ToolHarness) -> None:
    # httpx's in-process transport presents the client as 127.0.0.1.
    harness.tool.settings = harness.settings = _replace(harness.settings, ("10.0.0.0/8",))
    assert (await harness.client.get("/metrics")).status_code == 403
    harness.tool.settings = _replace(harness.settings, ("127.0.0.0/8",))
    assert (await harness.client.get("/metrics")).status_code == 200


def _replace(settings: Settings, allow: tuple[str, ...]) -> Settings:
    import dataclasses

    return dataclasses.replace(settings, metrics_allow=allow)


async def test_outbound_calls_are_counted_by_service_and_status_never_by_url() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.host == "slow.lms.test":
            raise httpx.ReadTimeout("no answer", request=request)
        return httpx.Response(429 if request.url.host == "api.zoom.us" else 200)

    transport = MetricsTransport(httpx.MockTransport(answer))
    async with httpx.AsyncClient(transport=transport) as client:
        await client.get("https://api.zoom.us/v2/users/me/meetings")
        await client.post("https://zoom.us/oauth/token")
        await client.get("https://canvas.example.edu/api/v1/courses/12345/calendar_events")
        await client.get("https://canvas.example.edu/api/lti/security/jwks")
        with pytest.raises(httpx.ReadTimeout):
            await client.get("https://slow.lms.test/api/v1/x")
    counted = observability.OUTBOUND_REQUESTS
    assert counted.value(service="zoom", endpoint="api", status="429") == 1
    assert counted.value(service="zoom", endpoint="token", status="200") == 1
    assert counted.value(service="lms", endpoint="api", status="200") == 1
    assert counted.value(service="lms", endpoint="keys", status="200") == 1
    assert counted.value(service="lms", endpoint="api", status="timeout") == 1
    body = observability.render(REGISTRY, merge_snapshots([REGISTRY.snapshot()]))
    assert "canvas.example.edu" not in body and "12345" not in body


def test_snapshots_of_several_processes_are_summed(tmp_path: Path) -> None:
    """What each worker writes to the shared folder, summed whichever worker is scraped."""
    observability.LAUNCHES.inc(lms="canvas", outcome="ok")
    observability.HTTP_LATENCY.observe(0.02, method="GET", route="/x")
    first = SharedMetrics(tmp_path)
    first.flush()
    # A second process: the same registry's values, written under another file name.
    second = SharedMetrics(tmp_path)
    second.flush()
    merged = second.collect()
    body = observability.render(REGISTRY, merged)
    samples = parse_exposition(body)
    assert value_of(samples, "ltipro_launches_total", lms="canvas", outcome="ok") == 2
    assert value_of(samples, "ltipro_http_request_duration_seconds_count", route="/x") == 2
    assert observability.clear_folder(tmp_path) == 2
    assert list(tmp_path.iterdir()) == []


def test_label_values_are_escaped_in_the_exposition() -> None:
    observability.LAUNCHES.inc(lms='we"ird\\lms\n', outcome="ok")
    body = observability.render(REGISTRY, merge_snapshots([REGISTRY.snapshot()]))
    assert 'lms="we\\"ird\\\\lms\\n"' in body
    parse_exposition(body)


# -- failures ------------------------------------------------------------------------------------


async def test_an_unreachable_database_is_a_503_page_not_a_traceback(harness: ToolHarness) -> None:
    from ltipro.storage.database import create_engine

    real = harness.tool.repo.engine
    harness.tool.repo.engine = create_engine("postgresql://ltipro@127.0.0.1:1/none")
    try:
        page = await harness.login(STUDENT)
    finally:
        await harness.tool.repo.engine.dispose()
        harness.tool.repo.engine = real
    assert page.status_code == 503
    assert page.headers["retry-after"] == "30"
    assert 'data-error-code="database_unavailable"' in page.text
    assert "briefly unavailable" in page.text
    assert "Traceback" not in page.text and "127.0.0.1:1" not in page.text


async def test_an_unhandled_error_is_logged_with_the_requests_id(
    records: list[logging.LogRecord],
) -> None:
    from starlette.applications import Starlette
    from starlette.routing import Route

    async def broken(request: Any) -> Any:
        raise RuntimeError("a bug")

    app = Starlette(routes=[Route("/broken", broken)])
    app.add_middleware(health.RequestObservability)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="https://tool.test") as client:
        response = await client.get("/broken", headers={"X-Request-ID": "req-bug"})
    assert response.status_code == 500
    (error,) = [r for r in records if r.exc_info and r.levelno == logging.ERROR]
    assert error.request_id == "req-bug"  # type: ignore[attr-defined]
    assert "a bug" in JsonFormatter().format(error)
    (line,) = [r for r in records if r.name == "ltipro.access"]
    assert line.status == 500 and line.route == "/broken"  # type: ignore[attr-defined]
