"""The tool as a real server process on a throwaway PostgreSQL database, with the
database (or Redis) reached through a :class:`tcp_proxy.TcpProxy` the fault tests cut or
stall, and what those tests check of its answers."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
from sqlalchemy import Table, create_engine, select
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

    def post(self, path: str, **kwargs: Any) -> Answer:
        return self._call("POST", path, **kwargs)

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
        launches, course_rows = self.read(launch_log, courses)
        return launches, course_rows

    def read(self, *tables: Table) -> list[list[Any]]:
        """Every row of each table, read directly (not through the proxy)."""
        engine = create_engine(sync_postgres_url(self.database_url))
        try:
            with engine.connect() as conn:
                return [list(conn.execute(select(table)).all()) for table in tables]
        finally:
            engine.dispose()


def _through(url: str, port: int) -> str:
    return make_url(url).set(host="127.0.0.1", port=port).render_as_string(hide_password=False)


@contextlib.contextmanager
def installation_with(
    tmp: Path,
    *,
    proxied: str,
    redis_url: str | None = None,
    environment: Mapping[str, str] | None = None,
) -> Iterator[Installation]:
    """The tool on a throwaway database, with ``proxied`` ("database" or "redis") behind
    the proxy; ``environment`` adds ``LTIPRO_*`` variables to the server's."""
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
            extra: dict[str, str] = dict(environment or {})
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
