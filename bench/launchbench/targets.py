"""The servers under load: ltipro (SQLite or PostgreSQL, 1 or N workers) and the reference.

Each configuration gets a fresh installation: its own instance folder and database
(a new SQLite file, or a throwaway PostgreSQL database dropped afterwards), set up the
way an administrator sets it up (``ltipro init``, ``ltipro credentials create``,
``ltipro platforms add``), then served by ``ltipro serve --workers N`` in production
mode: an https:// public URL behind a TLS proxy, every launch rule on, the credential's
default options and the embedded meetings provider.
"""

from __future__ import annotations

import contextlib
import secrets
import shutil
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from ltipro.testing.servers import (
    LOOPBACK,
    ServerError,
    ServerProcess,
    ToolConfig,
    cli_command,
    free_port,
    register_platform,
    run_cli,
    start_server,
)

BENCH_DIR = Path(__file__).resolve().parent.parent
CLIENT_ID = "bench-client"
DEPLOYMENT_ID = "bench-deployment"
LTIPRO_MARKER = "<h1>Meetings"
REFERENCE_MARKER = "<h1>Reference tool"


@dataclass
class Running:
    """A started server, what the generator needs to launch it, and what to measure."""

    name: str
    server: ServerProcess
    login_url: str  # the public URLs the platform knows the tool by
    launch_url: str
    login_path: str
    marker: str
    client_id: str
    database: str  # "sqlite", "postgresql" or "redis"
    workers: int
    pg_database: str | None = None  # this configuration's PostgreSQL database
    redis_pid: int | None = None  # the reference's private Redis


def _sync_url(url: str) -> str:
    return make_url(url).set(drivername="postgresql+psycopg").render_as_string(hide_password=False)


@contextlib.contextmanager
def throwaway_postgres(admin_url: str) -> Iterator[tuple[str, str]]:
    """A new PostgreSQL database on the server of ``admin_url``, dropped afterwards."""
    name = f"ltipro_bench_{secrets.token_hex(4)}"
    admin = create_engine(_sync_url(admin_url), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(admin_url).set(database=name).render_as_string(hide_password=False), name
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@contextlib.contextmanager
def ltipro(
    *,
    database: str,
    workers: int,
    issuer: str,
    work_dir: Path,
    pg_admin_url: str,
    log_level: str = "info",
    redis: bool = False,
    extra_env: dict[str, str] | None = None,
) -> Iterator[Running]:
    """ltipro on a fresh installation, served by ``ltipro serve --workers N``.

    ``redis`` keeps state, nonces and sessions in a private Redis (``LTIPRO_REDIS_URL``),
    as the scale-out deployment does; ``extra_env`` adds to the server's environment.
    """
    name = f"ltipro-{database}{'+redis' if redis else ''}-{workers}w"
    folder = work_dir / name
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    with contextlib.ExitStack() as stack:
        pg_name: str | None = None
        if database == "postgresql":
            database_url, pg_name = stack.enter_context(throwaway_postgres(pg_admin_url))
        else:
            database_url = f"sqlite:///{folder / 'ltipro.db'}"
        extra = dict(extra_env or {})
        redis_pid: int | None = None
        if redis:
            redis_port, redis_pid = stack.enter_context(private_redis(folder))
            extra["LTIPRO_REDIS_URL"] = f"redis://{LOOPBACK}:{redis_port}/0"
        port = free_port()
        public = f"https://{LOOPBACK}:{port}"
        config = ToolConfig(
            instance=folder / "instance", base_url=public, database_url=database_url, extra=extra
        )
        run_cli(config, "init")
        register_platform(
            config,
            credential="bench",
            issuer=issuer,
            client_id=CLIENT_ID,
            deployment_id=DEPLOYMENT_ID,
        )
        argv = [
            *cli_command(),
            "serve",
            "--host",
            LOOPBACK,
            "--port",
            str(port),
            "--workers",
            str(workers),
            "--log-level",
            log_level,
        ]
        server = start_server(
            name,
            argv,
            url=f"http://{LOOPBACK}:{port}",
            ready_path="/healthz",
            env=config.environ(),
            log_path=folder / "server.log",
        )
        stack.callback(server.stop)
        yield Running(
            name=name,
            server=server,
            login_url=public + "/lti/login",
            launch_url=public + "/lti/launch",
            login_path="/lti/login",
            marker=LTIPRO_MARKER,
            client_id=CLIENT_ID,
            database=database,
            workers=workers,
            pg_database=pg_name,
            redis_pid=redis_pid,
        )


@contextlib.contextmanager
def reference(
    *, issuer: str, work_dir: Path, workers: int = 2, extra_env: dict[str, str] | None = None
) -> Iterator[Running]:
    """The pylti1p3 Flask tool under gunicorn (sync workers), with a private Redis."""
    folder = work_dir / f"reference-{workers}w"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    with contextlib.ExitStack() as stack:
        redis_port, redis_pid = stack.enter_context(private_redis(folder))
        port = free_port()
        public = f"https://{LOOPBACK}:{port}"
        env = {
            "PATH": str(Path(sys.executable).parent) + ":/usr/bin:/bin",
            "PYTHONUNBUFFERED": "1",
            "REFTOOL_ISSUER": issuer,
            "REFTOOL_CLIENT_ID": CLIENT_ID,
            "REFTOOL_DEPLOYMENT_ID": DEPLOYMENT_ID,
            "REFTOOL_REDIS_URL": f"redis://{LOOPBACK}:{redis_port}/0",
            "REFTOOL_SECRET_KEY": secrets.token_urlsafe(32),
            **(extra_env or {}),
        }
        argv = [
            sys.executable,
            "-m",
            "gunicorn",
            "--workers",
            str(workers),
            "--worker-class",
            "sync",
            "--bind",
            f"{LOOPBACK}:{port}",
            "--chdir",
            str(BENCH_DIR),
            "reference_tool.app:app",
        ]
        server = start_server(
            "reference",
            argv,
            url=f"http://{LOOPBACK}:{port}",
            ready_path="/login",  # not polled: the port accepting is enough (warm-up follows)
            env=env,
            log_path=folder / "server.log",
            wait=False,
        )
        stack.callback(server.stop)
        _wait_for_port(port, server)
        yield Running(
            name=f"reference-{workers}w",
            server=server,
            login_url=public + "/login",
            launch_url=public + "/launch",
            login_path="/login",
            marker=REFERENCE_MARKER,
            client_id=CLIENT_ID,
            database="redis",
            workers=workers,
            redis_pid=redis_pid,
        )


@contextlib.contextmanager
def private_redis(folder: Path) -> Iterator[tuple[int, int]]:
    """A Redis server of this run's own on 127.0.0.1: ``(port, pid)``, stopped afterwards.

    Its own process, so its CPU is this run's alone (the machine's Redis is shared).
    """
    redis_server = shutil.which("redis-server")
    if redis_server is None:
        raise ServerError("redis-server is needed (apt-get install redis-server)")
    port = free_port()
    redis = start_server(
        "redis",
        [
            redis_server,
            "--bind",
            LOOPBACK,
            "--port",
            str(port),
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(folder),
        ],
        url=f"http://{LOOPBACK}:{port}",
        ready_path="",
        env={"PATH": "/usr/bin:/bin"},
        log_path=folder / "redis.log",
        wait=False,
    )
    try:
        _wait_for_port(port, redis)
        yield port, redis.process.pid
    finally:
        redis.stop()


def _wait_for_port(port: int, server: ServerProcess, timeout: float = 30.0) -> None:
    """Wait until something accepts connections on ``port`` (the server answers anything)."""
    import socket
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not server.running:
            raise ServerError(f"{server.name} exited early:\n{server.log_tail()}")
        with socket.socket() as sock:
            sock.settimeout(0.5)
            if sock.connect_ex((LOOPBACK, port)) == 0:
                return
        time.sleep(0.1)
    server.stop()
    raise ServerError(f"{server.name} did not listen on {port} within {timeout:.0f}s")
