"""Two tool processes sharing one PostgreSQL database, as several workers do in production.

The tool runs under uvicorn in processes of its own, configured from ``LTIPRO_*`` variables
and the ``ltipro`` command line the way an admin sets it up. The LMS is a simulated
platform in the test whose key set the standalone simulator process publishes, so the
tool fetches the platform's keys over real HTTP. The test drives every request itself.
"""

from __future__ import annotations

import asyncio
import os
import re
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from html import unescape
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest
from sqlalchemy import create_engine, select, text
from sqlalchemy.engine import make_url

from ltipro.simulator.__main__ import load_key_file, simulated_platform
from ltipro.simulator.platform import SimulatedPlatform
from ltipro.storage.schema import launch_log
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

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(
        not PG_URL, reason="set LTIPRO_TEST_DATABASE_URL to a PostgreSQL server to run these"
    ),
]

CLAIM = "https://purl.imsglobal.org/spec/lti/claim/"
CLIENT_ID = "multi-process-client"
DEPLOYMENT_ID = "multi-process-deployment"
TIMEOUT = httpx.Timeout(15.0)


def _instructor(user: str) -> dict[str, Any]:
    return {
        "sub": user,
        "name": "Grace Hopper",
        "email": "grace@example.edu",
        CLAIM + "roles": ["http://purl.imsglobal.org/vocab/lis/v2/membership#Instructor"],
        CLAIM + "context": {"id": "course-mp", "title": "Compilers", "label": "CS301"},
        CLAIM + "resource_link": {"id": "link-mp"},
    }


@dataclass
class Installation:
    """One installation of the tool: two worker processes, one database, one LMS."""

    database_url: str
    process_a: ServerProcess
    process_b: ServerProcess
    platform: SimulatedPlatform

    def launch_log(self) -> list[Any]:
        engine = create_engine(_sync_url(self.database_url))
        try:
            with engine.connect() as conn:
                return list(conn.execute(select(launch_log).order_by(launch_log.c.id)).all())
        finally:
            engine.dispose()


def _sync_url(url: str) -> str:
    return make_url(url).set(drivername="postgresql+psycopg").render_as_string(hide_password=False)


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    """A throwaway PostgreSQL database for this module (dropped afterwards)."""
    assert PG_URL
    name = f"ltipro_mp_{os.getpid()}_{secrets.token_hex(3)}"
    admin = create_engine(_sync_url(PG_URL), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="module")
def installation(pg_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installation]:
    tmp = tmp_path_factory.mktemp("multiprocess")
    port_a, port_b, port_lms = free_port(), free_port(), free_port()
    # Both workers serve one public address, as behind a load balancer.
    public = f"http://localhost:{port_a}"
    config_a = ToolConfig(
        instance=tmp / "worker-a", base_url=public, database_url=pg_url, plugins=("generic",)
    )
    config_b = config_a.worker(tmp / "worker-b")
    simulator = SimulatorConfig(
        port=port_lms,
        tool_url=public,
        key_file=tmp / "platform-key.json",
        client_id=CLIENT_ID,
        deployment_id=DEPLOYMENT_ID,
        plugins=("generic",),
    )
    # Every process starts while the next command runs; all are waited for at the end.
    lms = start_simulator(simulator, log_dir=tmp, wait=False)
    with running(lms):
        run_cli(config_a, "db", "upgrade")
        worker_a = start_tool(config_a, port=port_a, log_dir=tmp, name="worker-a", wait=False)
        with running(worker_a):
            worker_b = start_tool(config_b, port=port_b, log_dir=tmp, name="worker-b", wait=False)
            with running(worker_b):
                register_platform(
                    config_a,
                    credential="college",
                    issuer=simulator.issuer,
                    client_id=CLIENT_ID,
                    deployment_id=DEPLOYMENT_ID,
                )
                for server in (lms, worker_a, worker_b):
                    server.wait_until_ready()
                platform = simulated_platform(
                    issuer=simulator.issuer,
                    tool_url=public,
                    client_id=CLIENT_ID,
                    deployment_id=DEPLOYMENT_ID,
                    key=load_key_file(simulator.key_file),
                )
                yield Installation(
                    database_url=pg_url, process_a=worker_a, process_b=worker_b, platform=platform
                )


@dataclass
class LoginResult:
    form: dict[str, str]
    cookie: str


def login(installation: Installation, server: ServerProcess, claims: dict[str, Any]) -> LoginResult:
    """The LMS's login initiation on ``server``, then the platform's authentication answer."""
    platform = installation.platform
    response = httpx.get(
        server.url + "/lti/login", params=platform.login_params(claims), timeout=TIMEOUT
    )
    assert response.status_code == 302, response.text
    auth_params = dict(parse_qsl(urlsplit(response.headers["location"]).query))
    _, form = platform.authenticate(auth_params)
    # What the browser sends back: the state cookie it was given (name=value only).
    cookie = response.headers["set-cookie"].split(";", 1)[0]
    assert cookie.startswith("ltipro_state_")
    return LoginResult(form=form, cookie=cookie)


def post_launch(server: ServerProcess, result: LoginResult) -> httpx.Response:
    return httpx.post(
        server.url + "/lti/launch",
        data=result.form,
        headers={"Cookie": result.cookie},
        timeout=TIMEOUT,
    )


def session_token(page: httpx.Response) -> str:
    match = re.search(r'<meta name="ltipro-session" content="([^"]+)"', page.text)
    assert match, "the course page carries no session token"
    return unescape(match.group(1))


def me(server: ServerProcess, token: str) -> httpx.Response:
    return httpx.get(
        server.url + "/api/v1/me", headers={"Authorization": f"Bearer {token}"}, timeout=TIMEOUT
    )


def requests_seen(server: ServerProcess, path: str) -> int:
    """How many requests for ``path`` the server's access log shows."""
    return len(re.findall(rf'"(?:GET|POST) {re.escape(path)}[ ?]', server.log_text()))


def test_login_on_one_process_completes_on_the_other_and_the_session_works_on_both(
    installation: Installation,
) -> None:
    a, b = installation.process_a, installation.process_b
    logins_on_a, launches_on_b = requests_seen(a, "/lti/login"), requests_seen(b, "/lti/launch")

    started = login(installation, a, _instructor("user-across"))
    page = post_launch(b, started)

    assert page.status_code == 200, page.text
    assert "Compilers" in page.text
    assert requests_seen(a, "/lti/login") == logins_on_a + 1
    assert requests_seen(b, "/lti/launch") == launches_on_b + 1
    token = session_token(page)
    for server in (a, b):
        answer = me(server, token)
        assert answer.status_code == 200, answer.text
        assert answer.json()["user"]["id"] == "user-across"
        assert answer.json()["course"]["context_id"] == "course-mp"
    ok = [r for r in installation.launch_log() if r.user_id == "user-across"]
    assert [(r.outcome, r.lms, r.lti_version) for r in ok] == [("ok", "generic", "1.3")]


def test_a_launch_completed_on_one_process_is_refused_when_replayed_to_the_other(
    installation: Installation,
) -> None:
    a, b = installation.process_a, installation.process_b
    started = login(installation, a, _instructor("user-replayed"))
    assert post_launch(b, started).status_code == 200

    replay = post_launch(a, started)

    assert 400 <= replay.status_code < 500
    assert "The tool could not open" in replay.text
    assert 'data-error-code="unknown_state"' in replay.text
    assert "already used" in replay.text
    assert "Traceback" not in replay.text
    rows = [r for r in installation.launch_log() if r.user_id == "user-replayed"]
    assert [(r.outcome, r.code) for r in rows] == [("ok", None), ("refused", "unknown_state")]
    assert rows[1].issuer == installation.platform.issuer
    assert rows[1].client_id == CLIENT_ID


async def test_one_launch_posted_to_both_processes_at_once_opens_exactly_one_session(
    installation: Installation,
) -> None:
    a, b = installation.process_a, installation.process_b
    started = login(installation, b, _instructor("user-raced"))

    async with httpx.AsyncClient(timeout=TIMEOUT, headers={"Cookie": started.cookie}) as client:
        answers = await asyncio.gather(
            *(client.post(s.url + "/lti/launch", data=started.form) for s in (a, b, a, b))
        )

    statuses = sorted(r.status_code for r in answers)
    assert statuses[0] == 200 and all(400 <= s < 500 for s in statuses[1:]), statuses
    rows = [r for r in installation.launch_log() if r.user_id == "user-raced"]
    assert sorted(r.outcome for r in rows) == ["ok", "refused", "refused", "refused"]
    assert {r.code for r in rows if r.outcome == "refused"} <= {"unknown_state", "replayed_nonce"}
