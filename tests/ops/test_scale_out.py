"""The tool as docs/deploy.md runs it: `ltipro serve --workers 3` on PostgreSQL and Redis.

Browsers' requests reach whichever worker process takes the connection. Launches must
work wherever their login and their id_token post land (login state and nonces shared in
Redis, sessions and courses in PostgreSQL), a replay must be refused by any process, and
``/metrics`` on any process must report the launches of all of them. Which process served
a request is read from the JSON log line that carries the request's id.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from html import unescape
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest
from sqlalchemy import create_engine, func, select

from ltipro.simulator.__main__ import load_key_file, simulated_platform
from ltipro.simulator.platform import SimulatedPlatform
from ltipro.storage.schema import launch_log
from ltipro.testing.pytest_plugin import postgres_database, sync_postgres_url
from ltipro.testing.servers import (
    ServerProcess,
    SimulatorConfig,
    ToolConfig,
    cli_command,
    free_port,
    register_platform,
    run_cli,
    running,
    start_server,
    start_simulator,
)

PG_URL = os.environ.get("LTIPRO_TEST_DATABASE_URL")
REDIS_URL = os.environ.get("LTIPRO_TEST_REDIS_URL")
pytestmark = [
    pytest.mark.postgres,
    pytest.mark.redis,
    pytest.mark.skipif(
        not (PG_URL and REDIS_URL),
        reason="set LTIPRO_TEST_DATABASE_URL and LTIPRO_TEST_REDIS_URL to run these",
    ),
]

CLAIM = "https://purl.imsglobal.org/spec/lti/claim/"
CLIENT_ID = "scale-out-client"
DEPLOYMENT_ID = "scale-out-deployment"
WORKERS = 3
LAUNCHES = 24
TIMEOUT = httpx.Timeout(20.0)


@dataclass
class Installation:
    server: ServerProcess
    platform: SimulatedPlatform
    database_url: str

    def launches_logged(self) -> int:
        """Successful launches in the launch log: what the metrics must add up to."""
        engine = create_engine(sync_postgres_url(self.database_url))
        try:
            with engine.connect() as conn:
                query = select(func.count()).where(launch_log.c.outcome == "ok")
                return int(conn.execute(query.select_from(launch_log)).scalar_one())
        finally:
            engine.dispose()

    def pids_by_request(self) -> dict[str, int]:
        """Which process served each request, from the JSON request log lines."""
        served: dict[str, int] = {}
        for line in self.server.log_text().splitlines():
            if not line.startswith("{"):
                continue
            entry = json.loads(line)
            if entry.get("logger") == "ltipro.access":
                served[entry["request_id"]] = entry["pid"]
        return served


@pytest.fixture(scope="module")
def installation(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installation]:
    assert PG_URL and REDIS_URL
    tmp = tmp_path_factory.mktemp("scale-out")
    port, port_lms = free_port(), free_port()
    public = f"http://127.0.0.1:{port}"
    with postgres_database(PG_URL, "ltipro_scale") as database:
        config = ToolConfig(
            instance=tmp / "instance",
            base_url=public,
            database_url=database,
            plugins=("generic",),
            extra={"LTIPRO_REDIS_URL": REDIS_URL, "LTIPRO_LOG_FORMAT": "json"},
        )
        simulator = SimulatorConfig(
            port=port_lms,
            tool_url=public,
            key_file=tmp / "platform-key.json",
            client_id=CLIENT_ID,
            deployment_id=DEPLOYMENT_ID,
            plugins=("generic",),
        )
        lms = start_simulator(simulator, log_dir=tmp, wait=False)
        with running(lms):
            run_cli(config, "init")
            # Exactly the command docs/deploy.md gives, on this machine's loopback.
            argv = [
                *cli_command(),
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--workers",
                str(WORKERS),
            ]
            server = start_server(
                "ltipro-serve",
                argv,
                url=public,
                ready_path="/readyz",
                env=config.environ(),
                log_path=tmp / "serve.log",
                wait=False,
            )
            with running(server):
                # The platform is registered while the workers start.
                register_platform(
                    config,
                    credential="college",
                    issuer=simulator.issuer,
                    client_id=CLIENT_ID,
                    deployment_id=DEPLOYMENT_ID,
                )
                server.wait_until_ready(timeout=60)
                lms.wait_until_ready()
                platform = simulated_platform(
                    issuer=simulator.issuer,
                    tool_url=public,
                    client_id=CLIENT_ID,
                    deployment_id=DEPLOYMENT_ID,
                    key=load_key_file(simulator.key_file),
                )
                yield Installation(server=server, platform=platform, database_url=database)


def _claims(n: int) -> dict[str, Any]:
    return {
        "sub": f"user-{n}",
        "name": "Ada Lovelace",
        "email": f"user{n}@example.edu",
        CLAIM + "roles": ["http://purl.imsglobal.org/vocab/lis/v2/membership#Instructor"],
        CLAIM + "context": {"id": "course-scale", "title": "Engines", "label": "EN101"},
        CLAIM + "resource_link": {"id": "link-scale"},
    }


def _client() -> httpx.Client:
    # No kept-alive connections: each request is a new connection, which any process may take.
    return httpx.Client(timeout=TIMEOUT, limits=httpx.Limits(max_keepalive_connections=0))


def launch(installation: Installation, n: int) -> tuple[int, int, dict[str, str], str]:
    """A complete launch; the statuses of login and launch, the launch form and cookie."""
    url = installation.server.url
    with _client() as client:
        login = client.get(
            url + "/lti/login",
            params=installation.platform.login_params(_claims(n)),
            headers={"X-Request-ID": f"login-{n}"},
        )
        if login.status_code != 302:
            return login.status_code, 0, {}, ""
        auth = dict(parse_qsl(urlsplit(login.headers["location"]).query))
        _, form = installation.platform.authenticate(auth)
        cookie = login.headers["set-cookie"].split(";", 1)[0]
        page = client.post(
            url + "/lti/launch",
            data=form,
            headers={"Cookie": cookie, "X-Request-ID": f"launch-{n}"},
        )
    return login.status_code, page.status_code, form, cookie


def test_launches_complete_whichever_worker_process_serves_each_step(
    installation: Installation,
) -> None:
    with ThreadPoolExecutor(max_workers=6) as pool:
        results = list(pool.map(lambda n: launch(installation, n), range(LAUNCHES)))

    assert [(login, page) for login, page, _, _ in results] == [(302, 200)] * LAUNCHES
    served = _wait_for_log_lines(installation, [f"launch-{n}" for n in range(LAUNCHES)])
    processes = {served[f"launch-{n}"] for n in range(LAUNCHES)} | {
        served[f"login-{n}"] for n in range(LAUNCHES)
    }
    assert len(processes) >= 2, "every request reached one process: nothing was shared"
    crossed = [n for n in range(LAUNCHES) if served[f"login-{n}"] != served[f"launch-{n}"]]
    assert crossed, "no launch finished on another process than its login"

    # A replay of a completed launch is refused, by whichever process gets it.
    _, _, form, cookie = results[crossed[0]]
    with _client() as client:
        replays = [
            client.post(
                installation.server.url + "/lti/launch", data=form, headers={"Cookie": cookie}
            )
            for _ in range(WORKERS)
        ]
    assert all(400 <= r.status_code < 500 for r in replays), [r.status_code for r in replays]
    assert all('data-error-code="unknown_state"' in r.text for r in replays)


def test_metrics_on_any_process_count_the_launches_of_all_processes(
    installation: Installation,
) -> None:
    url = installation.server.url
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda n: launch(installation, 1000 + n), range(8)))
    assert all(page == 200 for _, page, _, _ in results)
    logged = installation.launches_logged()
    assert logged >= 8

    # Each process writes its counts at most a second after they change; then every
    # process's /metrics reports the sum, which is what the launch log holds.
    deadline = time.monotonic() + 10
    seen: list[float] = []
    with _client() as client:
        while time.monotonic() < deadline:
            seen = [_launches_ok(client.get(url + "/metrics").text) for _ in range(WORKERS * 2)]
            if all(value == logged for value in seen):
                break
            time.sleep(0.1)
    assert seen and all(value == logged for value in seen), (logged, seen)
    with _client() as client:
        body = client.get(url + "/metrics").text
    # The tool fetched the platform's key set: an outbound call to an LMS's keys endpoint.
    assert 'ltipro_outbound_requests_total{service="lms",endpoint="keys",status="200"}' in body


def test_readiness_names_redis_as_the_store(installation: Installation) -> None:
    with _client() as client:
        answer = client.get(installation.server.url + "/readyz")
    assert answer.status_code == 200
    assert answer.json()["checks"]["store"]["backend"] == "redis"
    assert answer.headers["x-request-id"]


def _launches_ok(body: str) -> float:
    for line in body.splitlines():
        if line.startswith('ltipro_launches_total{lms="generic",outcome="ok"}'):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def _wait_for_log_lines(installation: Installation, request_ids: list[str]) -> dict[str, int]:
    deadline = time.monotonic() + 5
    while True:
        served = installation.pids_by_request()
        if all(r in served for r in request_ids) or time.monotonic() > deadline:
            return served
        time.sleep(0.05)


def test_the_log_is_one_json_object_per_line_with_request_ids(
    installation: Installation,
) -> None:
    _, _, form, cookie = launch(installation, 5000)
    with _client() as client:
        replay = client.post(
            installation.server.url + "/lti/launch",
            data=form,
            headers={"Cookie": cookie, "X-Request-ID": "replay-5000"},
        )
    assert replay.headers["x-request-id"] == "replay-5000"
    served = _wait_for_log_lines(installation, ["login-5000", "launch-5000", "replay-5000"])
    assert {"login-5000", "launch-5000", "replay-5000"} <= set(served)
    lines = [ln for ln in installation.server.log_text().splitlines() if ln.startswith("{")]
    entries = [json.loads(ln) for ln in lines]
    # The refusal's own line carries the id of the request it refused, as the access line does.
    ours = {e["logger"]: e for e in entries if e.get("request_id") == "replay-5000"}
    assert set(ours) >= {"ltipro.access", "ltipro.launch"}
    assert ours["ltipro.launch"]["code"] == "unknown_state"
    assert ours["ltipro.access"]["status"] == replay.status_code
    assert ours["ltipro.launch"]["pid"] == ours["ltipro.access"]["pid"]


def test_a_session_opened_on_one_process_works_on_every_process(
    installation: Installation,
) -> None:
    url = installation.server.url
    with _client() as client:
        login = client.get(
            url + "/lti/login", params=installation.platform.login_params(_claims(7000))
        )
        auth = dict(parse_qsl(urlsplit(login.headers["location"]).query))
        _, form = installation.platform.authenticate(auth)
        cookie = login.headers["set-cookie"].split(";", 1)[0]
        page = client.post(url + "/lti/launch", data=form, headers={"Cookie": cookie})
    assert page.status_code == 200
    match = re.search(r'<meta name="ltipro-session" content="([^"]+)"', page.text)
    assert match, "the course page carries no session token"
    token = unescape(match[1])

    def me(n: int) -> httpx.Response:
        with _client() as client:
            return client.get(
                url + "/api/v1/me",
                headers={"Authorization": f"Bearer {token}", "X-Request-ID": f"me-{n}"},
            )

    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        answers = list(pool.map(me, range(WORKERS * 4)))
    assert [a.status_code for a in answers] == [200] * (WORKERS * 4)
    assert {a.json()["user"]["id"] for a in answers} == {"user-7000"}
    served = _wait_for_log_lines(installation, [f"me-{n}" for n in range(WORKERS * 4)])
    assert len({served[f"me-{n}"] for n in range(WORKERS * 4)}) >= 2
