"""The HTTP floor: a launch's two requests against servers that do nothing else.

Each server runs in its own process (uvicorn, or gunicorn with 2 sync workers), started
once; the load is 8 concurrent browsers with keep-alive connections (where the server
keeps them), as ``launchbench.load`` makes it, and the server's CPU is read from
``/proc`` with ``launchbench.procs`` (``utime + stime`` of the server and its children).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode

import httpx
from launchbench import procs
from launchbench.load import FORWARDED, TIMEOUT, percentile

from floorbench import payload
from ltipro.testing.servers import LOOPBACK, ServerProcess, free_port, start_server

BENCH_DIR = Path(__file__).resolve().parent.parent
# uvloop and httptools are the benchmark's, installed apart: never the tool's dependencies.
FAST_DIR = Path("/tmp/floor-uvloop")


@dataclass(frozen=True)
class Stack:
    """One server configuration of the HTTP floor."""

    name: str
    description: str
    app: str  # module:attribute
    server: str  # "uvicorn" or "gunicorn"
    fast: bool = False  # uvloop + httptools (else asyncio + h11)
    proxy_headers: bool = True  # X-Forwarded-Proto trusted from 127.0.0.1, as the tools run


STACKS = {
    s.name: s
    for s in (
        Stack("raw-h11", "raw ASGI, uvicorn, asyncio + h11", "floorbench.apps:raw_app", "uvicorn"),
        Stack(
            "raw-httptools",
            "raw ASGI, uvicorn, uvloop + httptools",
            "floorbench.apps:raw_app",
            "uvicorn",
            fast=True,
        ),
        Stack(
            "raw-httptools-noproxy",
            "raw ASGI, uvicorn, uvloop + httptools, proxy headers off",
            "floorbench.apps:raw_app",
            "uvicorn",
            fast=True,
            proxy_headers=False,
        ),
        Stack(
            "raw-h11-noproxy",
            "raw ASGI, uvicorn, asyncio + h11, proxy headers off",
            "floorbench.apps:raw_app",
            "uvicorn",
            proxy_headers=False,
        ),
        Stack(
            "starlette-h11",
            "Starlette, uvicorn, asyncio + h11",
            "floorbench.apps:starlette_app",
            "uvicorn",
        ),
        Stack(
            "starlette-httptools",
            "Starlette, uvicorn, uvloop + httptools",
            "floorbench.apps:starlette_app",
            "uvicorn",
            fast=True,
        ),
        Stack(
            "flask-gunicorn-2w",
            "Flask + ProxyFix, gunicorn, 2 sync workers",
            "floorbench.flask_app:app",
            "gunicorn",
        ),
    )
}
DEFAULT_STACKS = (
    "raw-h11",
    "raw-httptools",
    "raw-httptools-noproxy",
    "starlette-h11",
    "starlette-httptools",
    "flask-gunicorn-2w",
)


def ensure_fast() -> str | None:
    """Make uvloop and httptools importable from :data:`FAST_DIR`; why not, if they cannot be."""
    check = [sys.executable, "-c", "import uvloop, httptools"]
    env = {**os.environ, "PYTHONPATH": str(FAST_DIR)}
    if subprocess.run(check, env=env, capture_output=True).returncode == 0:
        return None
    pip = Path(sys.executable).with_name("pip")
    done = subprocess.run(
        [str(pip), "install", "--quiet", "--target", str(FAST_DIR), "uvloop", "httptools"],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        return f"pip install --target {FAST_DIR} uvloop httptools failed: {done.stderr[-300:]}"
    if subprocess.run(check, env=env, capture_output=True).returncode != 0:
        return f"uvloop and httptools are still not importable from {FAST_DIR}"
    return None


def versions(fast: bool) -> dict[str, str]:
    """The measured packages' versions (uvloop and httptools from :data:`FAST_DIR`)."""
    names = [
        "uvicorn",
        "h11",
        "starlette",
        "flask",
        "werkzeug",
        "gunicorn",
        "httpx",
        "cryptography",
        "pyjwt",
        "jinja2",
        "markupsafe",
        "python-multipart",
        "sqlalchemy",
        "aiosqlite",
        "psycopg",
        "psycopg-binary",
    ]
    if fast:
        names += ["uvloop", "httptools"]
    code = (
        "import importlib.metadata as m, json, sys\n"
        "out = {}\n"
        "for n in sys.argv[1:]:\n"
        "    try: out[n] = m.version(n)\n"
        "    except m.PackageNotFoundError: out[n] = 'not installed'\n"
        "print(json.dumps(out))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(FAST_DIR)}
    done = subprocess.run(
        [sys.executable, "-c", code, *names], env=env, capture_output=True, text=True, check=True
    )
    return dict(json.loads(done.stdout))


def _argv(stack: Stack, port: int) -> list[str]:
    if stack.server == "gunicorn":
        return [
            sys.executable,
            "-m",
            "gunicorn",
            "--workers",
            "2",
            "--worker-class",
            "sync",
            "--bind",
            f"{LOOPBACK}:{port}",
            "--chdir",
            str(BENCH_DIR),
            stack.app,
        ]
    return [
        sys.executable,
        "-m",
        "uvicorn",
        stack.app,
        "--host",
        LOOPBACK,
        "--port",
        str(port),
        "--loop",
        "uvloop" if stack.fast else "asyncio",
        "--http",
        "httptools" if stack.fast else "h11",
        "--proxy-headers" if stack.proxy_headers else "--no-proxy-headers",
        "--forwarded-allow-ips",
        LOOPBACK,
        "--no-access-log",
        "--log-level",
        "warning",
        "--lifespan",
        "off",
    ]


@contextlib.contextmanager
def serve(stack: Stack, work_dir: Path) -> Iterator[ServerProcess]:
    """``stack`` listening on 127.0.0.1, stopped on leaving the block."""
    port = free_port()
    path = [str(BENCH_DIR), *([str(FAST_DIR)] if stack.fast else [])]
    env = {
        "PATH": str(Path(sys.executable).parent) + ":/usr/bin:/bin",
        "PYTHONPATH": ":".join(path),
        "PYTHONUNBUFFERED": "1",
    }
    server = start_server(
        stack.name,
        _argv(stack, port),
        url=f"http://{LOOPBACK}:{port}",
        ready_path="/healthz",
        env=env,
        log_path=work_dir / f"{stack.name}.log",
    )
    try:
        yield server
    finally:
        server.stop()


# -- the load --------------------------------------------------------------------------------


@dataclass
class Load:
    launches: int = 0
    errors: int = 0
    error_samples: list[str] = field(default_factory=list)
    total: list[float] = field(default_factory=list)
    wall: float = 0.0
    generator_cpu: float = 0.0


class LaunchFailed(Exception):
    pass


async def _send(transport: httpx.AsyncBaseTransport, request: httpx.Request) -> httpx.Response:
    response = await transport.handle_async_request(request)
    try:
        await response.aread()
    finally:
        await response.aclose()
    return response


async def _one_launch(
    transport: httpx.AsyncBaseTransport, url: str, body: bytes, result: Load | None
) -> None:
    start = time.perf_counter()
    login = httpx.Request(
        "GET",
        url + payload.LOGIN_PATH + "?" + payload.LOGIN_QUERY,
        headers=FORWARDED,
        extensions={"timeout": TIMEOUT},
    )
    response = await _send(transport, login)
    if response.status_code != 302 or not response.headers.get("location"):
        raise LaunchFailed(f"login answered {response.status_code}")
    cookie = response.headers.get("set-cookie", "").split(";", 1)[0]
    if not cookie.startswith(payload.STATE_COOKIE_NAME + "="):
        raise LaunchFailed(f"login set no state cookie: {cookie!r}")
    post = httpx.Request(
        "POST",
        url + payload.LAUNCH_PATH,
        content=body,
        headers={
            **FORWARDED,
            "Content-Type": "application/x-www-form-urlencoded",
            "Cookie": cookie,
        },
        extensions={"timeout": TIMEOUT},
    )
    response = await _send(transport, post)
    if response.status_code != 200 or payload.PAGE_MARKER not in response.text:
        raise LaunchFailed(f"launch answered {response.status_code}: {response.text[:200]}")
    if result is not None:
        result.total.append(time.perf_counter() - start)
        result.launches += 1


async def run_load(url: str, body: bytes, *, users: int, launches: int, record: bool) -> Load:
    """``users`` browsers doing ``launches`` launches between them, keep-alive."""
    result = Load()
    remaining = launches

    async def browser(transport: httpx.AsyncBaseTransport) -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            try:
                await _one_launch(transport, url, body, result if record else None)
            except (LaunchFailed, httpx.HTTPError) as exc:
                result.errors += 1
                if len(result.error_samples) < 5:
                    result.error_samples.append(f"{type(exc).__name__}: {exc}")

    cpu_start = time.thread_time()
    transport = httpx.AsyncHTTPTransport(
        limits=httpx.Limits(max_connections=users, max_keepalive_connections=users), retries=0
    )
    async with transport:
        start = time.perf_counter()
        await asyncio.gather(*(browser(transport) for _ in range(users)))
        result.wall = time.perf_counter() - start
    result.generator_cpu = time.thread_time() - cpu_start
    return result


def launch_body(id_token: str) -> bytes:
    """The form the LMS's page posts to the tool."""
    return urlencode({"id_token": id_token, "state": payload.STATE}).encode()


@dataclass
class HttpRound:
    stack: str
    launches: int
    errors: int
    server_cpu_ms: float  # per launch (two requests), all of the server's processes
    generator_cpu_ms: float
    launches_per_s: float
    p50_ms: float
    load_average: tuple[float, float, float]
    others_cores: float


def measure(
    stack: Stack, server: ServerProcess, body: bytes, *, users: int, launches: int
) -> HttpRound:
    """One measured phase: ``launches`` launches, the server's CPU per launch."""
    tracker = procs.CpuTracker(procs.tree_selector(server.process.pid))
    load_average = procs.load_average()
    busy_before = procs.machine_busy_seconds()
    tracker.start()
    result = asyncio.run(run_load(server.url, body, users=users, launches=launches, record=True))
    server_seconds = tracker.stop()
    busy = procs.machine_busy_seconds() - busy_before
    n = max(result.launches, 1)
    ours = server_seconds + result.generator_cpu
    return HttpRound(
        stack=stack.name,
        launches=result.launches,
        errors=result.errors,
        server_cpu_ms=round(server_seconds * 1000 / n, 4),
        generator_cpu_ms=round(result.generator_cpu * 1000 / n, 3),
        launches_per_s=round(result.launches / result.wall, 1) if result.wall else 0.0,
        p50_ms=round(percentile(result.total, 50) * 1000, 2),
        load_average=load_average,
        others_cores=round(max(busy - ours, 0.0) / result.wall, 2) if result.wall else 0.0,
    )


def warm_up(server: ServerProcess, body: bytes, *, users: int, launches: int) -> None:
    result = asyncio.run(run_load(server.url, body, users=users, launches=launches, record=False))
    if result.errors:
        raise SystemExit(
            f"{server.name}: {result.errors} warm-up launches failed, e.g.\n"
            + "\n".join(result.error_samples)
        )
