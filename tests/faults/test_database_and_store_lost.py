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

import os
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from installation import (
    BOUND,
    PG_URL,
    Answer,
    Installation,
    assert_clean,
    installation_with,
    wait_until_ready,
)

REDIS_URL = os.environ.get("LTIPRO_TEST_REDIS_URL")
pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(not PG_URL, reason="set LTIPRO_TEST_DATABASE_URL to run these"),
]


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
