"""PostgreSQL and Redis lost while the tool serves launches, through a proxy the test cuts.

The tool runs as a real server process; its database (or its Redis) is reached through
:class:`tcp_proxy.TcpProxy`, and the test cuts the proxy in the middle of a load of
launches. What must hold, as docs/deploy.md says:

- every request gets an answer within a bounded time: a page that worked, a refusal, or
  a 503 "briefly unavailable" page (JSON under ``/api/``) with ``Retry-After`` — never a
  500 or a traceback;
- nothing is half-written: every launch the log records as done has its course;
- ``/readyz`` reports the failed dependency while ``/healthz`` stays up;
- once the proxy is back the service resumes by itself, without a restart.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest
from sqlalchemy import create_engine, select
from sqlalchemy.engine import make_url
from tcp_proxy import TcpProxy

from ltipro.simulator.__main__ import load_key_file, simulated_platform
from ltipro.simulator.platform import SimulatedPlatform
from ltipro.storage.schema import courses, launch_log
from ltipro.testing.pytest_plugin import postgres_database, sync_postgres_url
from ltipro.testing.servers import (
    ServerProcess,
    SimulatorConfig,
    ToolConfig,
    free_port,
    register_platform,
    run_cli,
    running,
    start_simulator,
    start_tool,
)

PG_URL = os.environ.get("LTIPRO_TEST_DATABASE_URL")
REDIS_URL = os.environ.get("LTIPRO_TEST_REDIS_URL")
pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(not PG_URL, reason="set LTIPRO_TEST_DATABASE_URL to run these"),
]

CLAIM = "https://purl.imsglobal.org/spec/lti/claim/"
CLIENT_ID = "fault-client"
DEPLOYMENT_ID = "fault-deployment"
# No request may take longer than this, whatever is down.
BOUND = 10.0


@dataclass
class Answer:
    path: str
    status: int
    seconds: float
    body: str
    headers: dict[str, str]


@dataclass
class Installation:
    tool: ServerProcess
    platform: SimulatedPlatform
    database_url: str  # direct, not through the proxy
    proxy: TcpProxy

    def get(self, path: str, **kwargs: Any) -> Answer:
        return self._call("GET", path, **kwargs)

    def _call(self, method: str, path: str, **kwargs: Any) -> Answer:
        start = time.monotonic()
        with httpx.Client(timeout=BOUND + 5) as client:
            response = client.request(method, self.tool.url + path, **kwargs)
        return Answer(
            path,
            response.status_code,
            time.monotonic() - start,
            response.text,
            dict(response.headers),
        )

    def launch(self, n: int) -> list[Answer]:
        """Login and launch as one browser; stops at the first step that did not work."""
        claims = {
            "sub": f"user-{n}",
            "email": f"user{n}@example.edu",
            CLAIM + "roles": ["http://purl.imsglobal.org/vocab/lis/v2/membership#Learner"],
            CLAIM + "context": {"id": f"course-{n % 3}", "title": "Optics"},
            CLAIM + "resource_link": {"id": "link-1"},
        }
        login = self._call("GET", "/lti/login", params=self.platform.login_params(claims))
        if login.status != 302:
            return [login]
        auth = dict(parse_qsl(urlsplit(login.headers["location"]).query))
        _, form = self.platform.authenticate(auth)
        cookie = login.headers["set-cookie"].split(";", 1)[0]
        page = self._call("POST", "/lti/launch", data=form, headers={"Cookie": cookie})
        return [login, page]

    def rows(self) -> tuple[list[Any], list[Any]]:
        engine = create_engine(sync_postgres_url(self.database_url))
        try:
            with engine.connect() as conn:
                launches = list(conn.execute(select(launch_log)).all())
                course_rows = list(conn.execute(select(courses)).all())
        finally:
            engine.dispose()
        return launches, course_rows


def _through(url: str, port: int) -> str:
    return make_url(url).set(host="127.0.0.1", port=port).render_as_string(hide_password=False)


@contextlib.contextmanager
def installation_with(
    tmp: Path, *, proxied: str, redis_url: str | None = None
) -> Iterator[Installation]:
    """The tool on a throwaway database, with ``proxied`` ("database" or "redis") behind
    the proxy."""
    assert PG_URL
    with postgres_database(PG_URL, "ltipro_fault") as database:
        if proxied == "database":
            target = make_url(database)
            upstream = (target.host or "127.0.0.1", target.port or 5432)
        else:
            assert redis_url
            parts = urlsplit(redis_url)
            upstream = (parts.hostname or "127.0.0.1", parts.port or 6379)
        port, tool_port, lms_port = free_port(), free_port(), free_port()
        with TcpProxy(*upstream, port=port) as proxy:
            extra: dict[str, str] = {}
            tool_database = database
            if proxied == "database":
                tool_database = _through(database, port)
            else:
                assert redis_url
                extra["LTIPRO_REDIS_URL"] = parts._replace(netloc=f"127.0.0.1:{port}").geturl()
            public = f"http://127.0.0.1:{tool_port}"
            config = ToolConfig(
                instance=tmp / "instance",
                base_url=public,
                database_url=tool_database,
                plugins=("generic",),
                extra=extra,
            )
            simulator = SimulatorConfig(
                port=lms_port,
                tool_url=public,
                key_file=tmp / "platform-key.json",
                client_id=CLIENT_ID,
                deployment_id=DEPLOYMENT_ID,
                plugins=("generic",),
            )
            lms = start_simulator(simulator, log_dir=tmp, wait=False)
            with running(lms):
                run_cli(config, "init")
                # The server starts while the platform is registered; both are awaited below.
                tool = start_tool(config, port=tool_port, log_dir=tmp, wait=False)
                with running(tool):
                    register_platform(
                        config,
                        credential="college",
                        issuer=simulator.issuer,
                        client_id=CLIENT_ID,
                        deployment_id=DEPLOYMENT_ID,
                    )
                    for server in (lms, tool):
                        server.wait_until_ready()
                    platform = simulated_platform(
                        issuer=simulator.issuer,
                        tool_url=public,
                        client_id=CLIENT_ID,
                        deployment_id=DEPLOYMENT_ID,
                        key=load_key_file(simulator.key_file),
                    )
                    yield Installation(tool, platform, database, proxy)


def assert_clean(answers: list[Answer]) -> None:
    """Each answer came in time, and is a page that worked, a refusal or a clear 503."""
    for answer in answers:
        assert answer.seconds < BOUND, (answer.path, answer.seconds)
        assert answer.status != 500 and answer.status < 600, (answer.path, answer.body[-800:])
        assert "Traceback" not in answer.body
        if answer.status == 503:
            assert answer.headers.get("retry-after") == "30"
            assert "briefly unavailable" in answer.body


def wait_until_ready(installation: Installation) -> Answer:
    deadline = time.monotonic() + BOUND
    while True:
        answer = installation.get("/readyz")
        if answer.status == 200 or time.monotonic() > deadline:
            return answer
        time.sleep(0.1)


# -- PostgreSQL -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def database_behind_proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installation]:
    with installation_with(tmp_path_factory.mktemp("pg-lost"), proxied="database") as found:
        yield found


def test_postgresql_lost_during_a_load_fails_cleanly_and_service_resumes(
    database_behind_proxy: Installation,
) -> None:
    site = database_behind_proxy
    with ThreadPoolExecutor(max_workers=4) as pool:
        before = [a for batch in pool.map(site.launch, range(4)) for a in batch]
    assert [a.status for a in before] == [302, 200] * 4

    # A load of launches, with the database cut while it runs.
    answers: list[Answer] = []
    lock = threading.Lock()

    def one(n: int) -> None:
        result = site.launch(n)
        with lock:
            answers.extend(result)

    with ThreadPoolExecutor(max_workers=4) as pool:
        running_load = [pool.submit(one, n) for n in range(100, 116)]
        time.sleep(0.05)
        site.proxy.cut()
        for future in running_load:
            future.result(timeout=60)
        # Cut for certain now: every launch is refused cleanly.
        during = [a for batch in pool.map(site.launch, range(200, 204)) for a in batch]
    assert_clean(answers + during)
    assert [a.status for a in during] == [503] * 4
    assert 'data-error-code="database_unavailable"' in during[0].body
    api = site.get("/api/v1/me", headers={"Authorization": "Bearer x"})
    assert_clean([api])
    assert api.status in (401, 503)
    ready = site.get("/readyz")
    assert ready.status == 503 and ready.seconds < BOUND
    assert ready.body and '"database":{"ok":false' in ready.body.replace(" ", "")
    assert site.get("/healthz").status == 200

    site.proxy.restore()
    assert wait_until_ready(site).status == 200
    with ThreadPoolExecutor(max_workers=4) as pool:
        after = [a for batch in pool.map(site.launch, range(300, 304)) for a in batch]
    assert [a.status for a in after] == [302, 200] * 4

    # Nothing half-written: each launch recorded as done has its course, and exactly the
    # launches that answered with their page, plus at most those that failed after it.
    launches, course_rows = site.rows()
    known = {(c.credential_id, c.context_id) for c in course_rows}
    done = [r for r in launches if r.outcome == "ok"]
    assert all((r.credential_id, r.context_id) in known for r in done)
    pages = [a for a in before + answers + during + after if a.path == "/lti/launch"]
    shown = sum(1 for a in pages if a.status == 200)
    failed = sum(1 for a in pages if a.status == 503)
    assert shown <= len(done) <= shown + failed
    assert len(known) == len({r.context_id for r in done}) == 3


# -- Redis --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def redis_behind_proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installation]:
    if not REDIS_URL:
        pytest.skip("set LTIPRO_TEST_REDIS_URL to run this")
    with installation_with(
        tmp_path_factory.mktemp("redis-lost"), proxied="redis", redis_url=REDIS_URL
    ) as found:
        yield found


@pytest.mark.redis
def test_redis_lost_refuses_launches_with_a_clear_503_and_service_resumes(
    redis_behind_proxy: Installation,
) -> None:
    site = redis_behind_proxy
    assert [a.status for a in site.launch(1)] == [302, 200]

    site.proxy.cut()
    during = site.launch(2)
    assert_clean(during)
    # The documented behaviour: refuse (no launch without its single-use checks).
    assert [a.status for a in during] == [503]
    assert 'data-error-code="store_unavailable"' in during[0].body
    ready = site.get("/readyz")
    assert ready.status == 503
    checks = ready.body.replace(" ", "")
    assert '"database":{"ok":true' in checks and '"store":{"ok":false' in checks
    assert site.get("/healthz").status == 200

    site.proxy.restore()
    assert wait_until_ready(site).status == 200
    assert [a.status for a in site.launch(3)] == [302, 200]
    launches, _ = site.rows()
    assert sorted(r.user_id for r in launches if r.outcome == "ok") == ["user-1", "user-3"]


def test_a_database_that_answers_nothing_makes_readiness_fail_within_its_time_limit(
    database_behind_proxy: Installation,
) -> None:
    site = database_behind_proxy
    assert wait_until_ready(site).status == 200
    site.proxy.stall()
    try:
        ready = site.get("/readyz")
        alive = site.get("/healthz")
        scrape = site.get("/metrics")
    finally:
        site.proxy.restore()
    assert ready.status == 503 and ready.seconds < BOUND
    assert "no answer within" in ready.body
    assert alive.status == 200 and alive.seconds < 1.0
    # The scrape gives up on the queue depth in time and says the database was not read.
    assert scrape.status == 200 and scrape.seconds < BOUND
    assert "ltipro_metrics_database_up 0.0" in scrape.body
    assert wait_until_ready(site).status == 200
    assert [a.status for a in site.launch(400)] == [302, 200]
