"""PostgreSQL that accepts connections but answers nothing, while the tool serves users.

The tool runs as a real server process with ``LTIPRO_REQUEST_TIMEOUT=2``; its database is
reached through :class:`tcp_proxy.TcpProxy`, which the test stalls (connections accepted,
nothing ever answered, as behind a firewall that drops packets). What must hold, as
docs/deploy.md says:

- a login, a launch, a meetings page, the console's sign-in and an API call each answer
  within the deadline with the 503 "briefly unavailable" page (JSON under ``/api/``) and
  ``Retry-After``;
- nothing is half-written: the database holds exactly what it held before the stall, and
  the launch that was stopped goes through when posted again;
- no pool connection is lost: after the stall, more launches than the pool holds
  connections succeed one after another;
- the service resumes by itself once the database answers again.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from html import unescape
from urllib.parse import parse_qsl, urlsplit

import pytest
from installation import (
    CLAIM,
    PG_URL,
    Answer,
    Installation,
    assert_clean,
    installation_with,
    wait_until_ready,
)

from ltipro.storage.schema import courses, launch_log, protocol_state

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(not PG_URL, reason="set LTIPRO_TEST_DATABASE_URL to run these"),
]

DEADLINE = 2.0
# How late after the deadline an answer may come on a busy test machine.
SLACK = 1.5
# The server's pool: 10 connections and 10 more on demand (ltipro.storage.database).
POOL = 20


@pytest.fixture(scope="module")
def stalled_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installation]:
    with installation_with(
        tmp_path_factory.mktemp("pg-stall"),
        proxied="database",
        environment={"LTIPRO_REQUEST_TIMEOUT": f"{DEADLINE:g}"},
    ) as found:
        yield found


def session_token(page: Answer) -> str:
    match = re.search(r'<meta name="ltipro-session" content="([^"]+)"', page.body)
    assert match, page.body[-500:]
    return unescape(match.group(1))


def prepared_launch(site: Installation, n: int) -> Callable[[], Answer]:
    """A login done now, and the launch that follows it, to be posted later."""
    claims = {
        "sub": f"stalled-{n}",
        "email": f"stalled{n}@example.edu",
        CLAIM + "roles": ["http://purl.imsglobal.org/vocab/lis/v2/membership#Instructor"],
        CLAIM + "context": {"id": f"stalled-course-{n}", "title": "Acoustics"},
        CLAIM + "resource_link": {"id": "link-1"},
    }
    login = site.get("/lti/login", params=site.platform.login_params(claims))
    assert login.status == 302, login.body[-500:]
    auth = dict(parse_qsl(urlsplit(login.headers["location"]).query))
    _, form = site.platform.authenticate(auth)
    cookie = login.headers["set-cookie"].split(";", 1)[0]
    return lambda: site.post("/lti/launch", data=form, headers={"Cookie": cookie})


def admin_sign_in(site: Installation) -> Callable[[], Answer]:
    """The console's sign-in form fetched now, and its posting (which needs the database:
    the failed-attempt count lives in the store), to be sent later."""
    page = site.get("/admin/login")
    assert page.status == 200
    match = re.search(r'name="csrf_token" value="([^"]+)"', page.body)
    assert match, page.body[-500:]
    cookie = page.headers["set-cookie"].split(";", 1)[0]
    form = {"csrf_token": unescape(match.group(1)), "email": "a@example.edu", "password": "x"}
    return lambda: site.post("/admin/login", data=form, headers={"Cookie": cookie})


def stored(site: Installation) -> list[list[object]]:
    return [
        sorted(map(tuple, rows), key=repr)
        for rows in site.read(launch_log, courses, protocol_state)
    ]


def test_a_stalled_database_gets_503_within_the_deadline_nothing_half_written_and_service_resumes(
    stalled_site: Installation,
) -> None:
    site = stalled_site
    assert wait_until_ready(site).status == 200
    first = site.launch(1)
    assert [a.status for a in first] == [302, 200]
    token = session_token(first[1])
    launch = prepared_launch(site, 2)
    login_params = site.platform.login_params(
        {"sub": "stalled-3", CLAIM + "context": {"id": "stalled-course-3"}}
    )
    sign_in = admin_sign_in(site)
    before = stored(site)

    calls: dict[str, Callable[[], Answer]] = {
        "login": lambda: site.get("/lti/login", params=login_params),
        "launch": launch,
        "meetings page": lambda: site.post("/meetings", data={"session": token}),
        "admin sign-in": sign_in,
        "API": lambda: site.get("/api/v1/meetings", headers={"Authorization": f"Bearer {token}"}),
    }
    site.proxy.stall()
    try:
        with ThreadPoolExecutor(max_workers=len(calls)) as pool:
            futures = {name: pool.submit(call) for name, call in calls.items()}
            during = {name: future.result(timeout=60) for name, future in futures.items()}
        alive = site.get("/healthz")
    finally:
        site.proxy.restore()

    assert_clean(list(during.values()))
    for name, answer in during.items():
        assert answer.status == 503, (name, answer.status, answer.body[-500:])
        assert DEADLINE <= answer.seconds < DEADLINE + SLACK, (name, answer.seconds)
        assert answer.headers["retry-after"] == "30"
    assert during["API"].headers["content-type"].startswith("application/json")
    assert '"error":"request_timeout"' in during["API"].body.replace(" ", "")
    for name in ("login", "launch", "meetings page", "admin sign-in"):
        assert 'data-error-code="request_timeout"' in during[name].body, name
    assert alive.status == 200 and alive.seconds < 1.0
    slowest = max(a.seconds for a in during.values())
    print(f"slowest answer during the stall: {slowest:.2f} s (deadline {DEADLINE:g} s)")

    # The service resumes by itself, and the stall left nothing behind.
    assert wait_until_ready(site).status == 200
    assert stored(site) == before
    # The launch that was stopped consumed nothing: posted again, it goes through.
    again = launch()
    assert again.status == 200, again.body[-500:]
    resumed = site.post("/meetings", data={"session": token})
    assert resumed.status == 200

    # No connection was lost to the stopped requests: more launches than the pool has
    # connections, one after another, all succeed.
    results = [site.launch(n) for n in range(100, 100 + POOL + 5)]
    assert all([a.status for a in answers] == [302, 200] for answers in results), [
        [a.status for a in answers] for answers in results
    ]
    launches, course_rows = site.rows()
    assert sorted(r.user_id for r in launches if r.outcome == "ok") == sorted(
        ["user-1", "stalled-2"] + [f"user-{n}" for n in range(100, 100 + POOL + 5)]
    )
    assert {c.context_id for c in course_rows} == {
        "course-0",
        "course-1",
        "course-2",
        "stalled-course-2",
    }


def test_many_requests_during_a_stall_all_answer_in_time_and_the_pool_recovers(
    stalled_site: Installation,
) -> None:
    site = stalled_site
    assert wait_until_ready(site).status == 200
    assert [a.status for a in site.launch(200)] == [302, 200]
    # More requests at once than the pool has connections: those waiting for a connection
    # are bounded by the deadline as well as those waiting for an answer.
    site.proxy.stall()
    try:
        start = time.monotonic()
        with ThreadPoolExecutor(max_workers=8) as pool:
            during = [
                a for batch in pool.map(site.launch, range(300, 300 + POOL + 4)) for a in batch
            ]
        elapsed = time.monotonic() - start
    finally:
        site.proxy.restore()
    assert_clean(during)
    assert [a.status for a in during] == [503] * (POOL + 4)
    assert all(a.seconds < DEADLINE + SLACK for a in during), [a.seconds for a in during]
    assert elapsed < 4 * (DEADLINE + SLACK)

    assert wait_until_ready(site).status == 200
    results = [site.launch(n) for n in range(400, 400 + POOL + 5)]
    assert all([a.status for a in answers] == [302, 200] for answers in results)
