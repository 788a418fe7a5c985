"""In-process floors: the CPU of each part of a launch, alone, in this process.

Each part runs many times in a loop (timeit-style) and ``time.process_time`` (every
thread of this process: aiosqlite's worker thread counts) gives the CPU per launch;
several rounds, the median. The garbage collector stays on, as in a server.
PostgreSQL's own CPU is the backend's, read from ``/proc/<pid>/schedstat`` apart.
"""

from __future__ import annotations

import asyncio
import base64
import gc
import hashlib
import hmac
import json
import secrets
import sqlite3
import statistics
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from floorbench import payload, statements


@dataclass
class Floor:
    """One part's CPU per launch (microseconds): the median round and every round."""

    part: str
    name: str
    description: str
    per_launch_us: float
    rounds_us: list[float]
    iterations: int  # launches per round
    backend_us: float | None = None  # PostgreSQL backend CPU per launch (median round)
    rounds_backend_us: list[float] = field(default_factory=list)
    wall_us: float | None = None  # wall time per launch (median round), for the record


def _floor(part: str, name: str, description: str, rounds: list[float], n: int) -> Floor:
    return Floor(
        part=part,
        name=name,
        description=description,
        per_launch_us=round(statistics.median(rounds) * 1e6, 2),
        rounds_us=[round(r * 1e6, 2) for r in rounds],
        iterations=n,
    )


def time_sync(fn: Callable[[int], object], n: int, rounds: int, warmup: int = 50) -> list[float]:
    """CPU seconds per call of ``fn(i)``, one figure per round."""
    for i in range(warmup):
        fn(i)
    results = []
    for _ in range(rounds):
        gc.collect()
        start = time.process_time()
        for i in range(n):
            fn(i)
        results.append((time.process_time() - start) / n)
    return results


def time_async(
    fn: Callable[[int], Awaitable[object]], n: int, rounds: int, warmup: int = 50
) -> list[float]:
    """As :func:`time_sync`, for a coroutine function, in one event loop."""

    async def run() -> list[float]:
        for i in range(warmup):
            await fn(i)
        results = []
        for _ in range(rounds):
            gc.collect()
            start = time.process_time()
            for i in range(n):
                await fn(i)
            results.append((time.process_time() - start) / n)
        return results

    return asyncio.run(run())


# -- the id_token ------------------------------------------------------------------------------


def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def token_floors(n: int, rounds: int) -> list[Floor]:
    """Verifying the RS256 id_token: with ``cryptography`` directly, and with PyJWT."""
    import jwt
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding, rsa

    private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public_key = private_key.public_key()  # parsed once: a tool caches the LMS's keys
    token = payload.sign_rs256(payload.id_token_claims(), private_key, "key-1")
    pkcs1 = padding.PKCS1v15()
    sha256 = hashes.SHA256()

    def direct(_: int) -> object:
        header_b64, claims_b64, signature_b64 = token.split(".")
        header = json.loads(_b64decode(header_b64))
        if header.get("alg") != "RS256":
            raise ValueError("not RS256")
        public_key.verify(
            _b64decode(signature_b64),
            (header_b64 + "." + claims_b64).encode("ascii"),
            pkcs1,
            sha256,
        )
        return json.loads(_b64decode(claims_b64))

    def pyjwt(_: int) -> object:
        return jwt.decode(
            token,
            public_key,
            algorithms=["RS256"],
            audience=payload.CLIENT_ID,
            issuer=payload.ISSUER,
        )

    assert direct(0)["nonce"] == pyjwt(0)["nonce"] == payload.NONCE  # type: ignore[index]
    return [
        _floor(
            "id_token",
            "rs256-cryptography",
            f"RS256 verify, cryptography directly: split, base64url, json, verify "
            f"({len(token)}-byte token, 2048-bit key parsed once)",
            time_sync(direct, n, rounds),
            n,
        ),
        _floor(
            "id_token",
            "rs256-pyjwt",
            "RS256 verify, PyJWT jwt.decode (signature, exp, iat, aud, iss; key object given)",
            time_sync(pyjwt, n, rounds),
            n,
        ),
    ]


# -- parsing, tokens, the page, proxy headers ------------------------------------------------


def request_floors(body: bytes, n: int, rounds: int) -> list[Floor]:
    """Reading the login query, the form body and the state cookie (both requests)."""
    from starlette.requests import Request

    cookie = f"{payload.STATE_COOKIE_NAME}={payload.STATE}"

    def stdlib(_: int) -> object:
        query = dict(parse_qsl(payload.LOGIN_QUERY, keep_blank_values=True))
        form = dict(parse_qsl(body.decode("latin-1"), keep_blank_values=True))
        cookies = dict(part.split("=", 1) for part in cookie.split("; "))
        return query["iss"], form["id_token"], cookies[payload.STATE_COOKIE_NAME]

    get_scope = {
        "type": "http",
        "method": "GET",
        "path": payload.LOGIN_PATH,
        "query_string": payload.LOGIN_QUERY.encode(),
        "headers": [(b"host", b"tool.example.edu")],
    }
    post_headers = [
        (b"host", b"tool.example.edu"),
        (b"content-type", b"application/x-www-form-urlencoded"),
        (b"content-length", str(len(body)).encode()),
        (b"cookie", cookie.encode()),
    ]

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def starlette(_: int) -> object:
        query = Request(get_scope).query_params
        post = Request(
            {
                "type": "http",
                "method": "POST",
                "path": payload.LAUNCH_PATH,
                "query_string": b"",
                "headers": post_headers,
            },
            receive,
        )
        form = await post.form()
        return query["iss"], form["id_token"], post.cookies[payload.STATE_COOKIE_NAME]

    return [
        _floor(
            "request",
            "parse-stdlib",
            "login query + form body (urllib.parse.parse_qsl) + state cookie",
            time_sync(stdlib, n, rounds),
            n,
        ),
        _floor(
            "request",
            "parse-starlette",
            "Starlette Request: query_params + await form() (python-multipart) + cookies",
            time_async(starlette, n, rounds),
            n,
        ),
    ]


def token_making_floor(n: int, rounds: int) -> Floor:
    """The random values of a launch (state, nonce, session id) and the cookie's HMAC."""
    key = secrets.token_bytes(32)

    def make(_: int) -> object:
        state = secrets.token_urlsafe(32)
        nonce = secrets.token_urlsafe(32)
        session = secrets.token_urlsafe(32)
        mac = hmac.new(key, session.encode(), hashlib.sha256).hexdigest()
        return state, nonce, session + "." + mac

    return _floor(
        "tokens",
        "tokens-hmac",
        "3 x secrets.token_urlsafe(32) + HMAC-SHA256 of the session cookie",
        time_sync(make, n, rounds),
        n,
    )


def page_floors(n: int, rounds: int) -> list[Floor]:
    """Rendering a ~10 KB first page from a compiled (cached) Jinja2 template.

    Two pages of the same size: mostly markup (two meetings, the stylesheet inline), and
    dense (24 meetings: ten times the substitutions, each escaped).
    """
    floors = []
    for kind, rows in (("light", 2), ("dense", 24)):
        template = payload.page_template(kind)
        context = payload.context_for(kind)
        size = len(template.render(**context).encode())

        def render(_: int, template: Any = template, context: Any = context) -> object:
            return template.render(**context)

        floors.append(
            _floor(
                "page",
                f"jinja2-{kind}",
                f"Jinja2 render, autoescape, cached template, {size:,}-byte page, "
                f"{rows} meeting rows",
                time_sync(render, n, rounds),
                n,
            )
        )
    return floors


def proxy_floor(n: int, rounds: int) -> Floor:
    """uvicorn's ProxyHeadersMiddleware (X-Forwarded-Proto from 127.0.0.1), two requests."""
    from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

    async def app(scope: Any, receive: Any, send: Any) -> None:
        return None

    wrapped = ProxyHeadersMiddleware(app, trusted_hosts="127.0.0.1")  # type: ignore[arg-type]
    headers = [
        (b"host", b"127.0.0.1:8000"),
        (b"accept", b"*/*"),
        (b"accept-encoding", b"gzip, deflate"),
        (b"connection", b"keep-alive"),
        (b"user-agent", b"python-httpx/0.28.1"),
        (b"x-forwarded-proto", b"https"),
    ]

    def scope() -> dict[str, Any]:
        return {
            "type": "http",
            "client": ("127.0.0.1", 50000),
            "scheme": "http",
            "headers": headers,
        }

    async def through(_: int) -> None:
        await wrapped(scope(), None, None)  # type: ignore[arg-type]
        await wrapped(scope(), None, None)  # type: ignore[arg-type]

    async def bare(_: int) -> None:
        await app(scope(), None, None)
        await app(scope(), None, None)

    async def run() -> list[float]:
        for i in range(50):
            await through(i)
            await bare(i)
        results = []
        for _ in range(rounds):
            gc.collect()
            start = time.process_time()
            for i in range(n):
                await through(i)
            middle = time.process_time()
            for i in range(n):
                await bare(i)
            end = time.process_time()
            results.append(max((middle - start) - (end - middle), 0.0) / n)
        return results

    return _floor(
        "proxy",
        "uvicorn-proxy-headers",
        "uvicorn ProxyHeadersMiddleware on both requests (its cost over calling the app bare)",
        asyncio.run(run()),
        n,
    )


# -- the database ------------------------------------------------------------------------------


def _schedstat_ns(pid: int) -> int:
    """CPU time of a (single-threaded) process in nanoseconds, from the scheduler."""
    with open(f"/proc/{pid}/schedstat") as f:
        return int(f.read().split()[0])


@dataclass
class DbStack:
    name: str
    description: str
    make: Callable[[], Awaitable[statements.LaunchStore]]
    loop: str = "asyncio"  # or "uvloop"


def _runner(loop: str) -> asyncio.Runner:
    if loop == "uvloop":
        import uvloop

        return asyncio.Runner(loop_factory=uvloop.new_event_loop)
    return asyncio.Runner()


def _measure_store(
    stack: DbStack,
    launches: list[statements.LaunchParams],
    n: int,
    rounds: int,
    warmup: int,
    backends: Callable[[], list[int]] | None,
) -> Floor:
    async def run() -> tuple[list[float], list[float], list[float]]:
        store = await stack.make()
        try:
            for i in range(warmup):
                await store.launch(launches[i])
            cpu: list[float] = []
            backend: list[float] = []
            wall: list[float] = []
            for r in range(rounds):
                batch = launches[warmup + r * n : warmup + (r + 1) * n]
                gc.collect()
                pids = backends() if backends else []
                before = {pid: _schedstat_ns(pid) for pid in pids}
                start_wall = time.perf_counter()
                start = time.process_time()
                for params in batch:
                    await store.launch(params)
                cpu.append((time.process_time() - start) / n)
                wall.append((time.perf_counter() - start_wall) / n)
                if backends:
                    after = {pid: _schedstat_ns(pid) for pid in backends()}
                    spent = sum(after[p] - before.get(p, 0) for p in after)
                    backend.append(spent / 1e9 / n)
            return cpu, backend, wall
        finally:
            await store.close()

    with _runner(stack.loop) as runner:
        cpu, backend, wall = runner.run(run())
    floor = _floor("db", stack.name, stack.description, cpu, n)
    if backend:
        floor.backend_us = round(statistics.median(backend) * 1e6, 2)
        floor.rounds_backend_us = [round(b * 1e6, 2) for b in backend]
    floor.wall_us = round(statistics.median(wall) * 1e6, 1)
    return floor


def _with_loops(stacks: list[DbStack], uvloop: bool) -> list[DbStack]:
    """Each stack on asyncio's loop and, when ``uvloop``, again on uvloop's."""
    found = []
    for stack in stacks:
        found.append(stack)
        if uvloop:
            found.append(
                DbStack(
                    stack.name + "@uvloop",
                    stack.description + ", on uvloop",
                    stack.make,
                    loop="uvloop",
                )
            )
    return found


def db_floors(
    work_dir: Path,
    pg_admin_url: str | None,
    n: int,
    rounds: int,
    *,
    uvloop: bool,
    warmup: int = 50,
    log: Callable[[str], None] = print,
) -> list[Floor]:
    """A launch's database work on each stack (see :mod:`floorbench.statements`).

    The stdlib ``sqlite3`` module called inline never waits on the event loop, so it runs
    on asyncio's alone; the pooled stacks and psycopg also on uvloop when ``uvloop`` is
    true (the held-connection variants, which only isolate the pool's part, on asyncio).
    """
    launches = statements.launch_params(warmup + n * rounds)
    floors: list[Floor] = []
    counter = iter(range(1000))

    def sqlite_file(stem: str) -> Path:
        return work_dir / f"{stem}-{next(counter)}.db"

    sqlite_stacks = [
        DbStack(
            "sqlite3-inline",
            "stdlib sqlite3, inline (no thread), WAL file, synchronous=NORMAL",
            lambda: statements.SqliteInline.open(sqlite_file("inline")),
        ),
        *_with_loops(
            [
                DbStack(
                    "sqla-aiosqlite",
                    "SQLAlchemy Core async, sqlite+aiosqlite, engine.begin() per transaction",
                    lambda: statements.SqlaStore.open(
                        f"sqlite+aiosqlite:///{sqlite_file('sqla')}", hold=False
                    ),
                ),
            ],
            uvloop,
        ),
        DbStack(
            "sqla-sqlite-sync",
            "SQLAlchemy Core sync, stdlib sqlite3 inline (no thread), engine.begin() per "
            "transaction",
            lambda: statements.SqlaSyncStore.open(sqlite_file("sqla-sync")),
        ),
        DbStack(
            "sqla-aiosqlite-held",
            "SQLAlchemy Core async, sqlite+aiosqlite, one connection held (no pool checkout)",
            lambda: statements.SqlaStore.open(
                f"sqlite+aiosqlite:///{sqlite_file('sqla-held')}", hold=True
            ),
        ),
    ]
    for stack in sqlite_stacks:
        log(f"  database: {stack.name}")
        floors.append(_measure_store(stack, launches, n, rounds, warmup, None))
    if pg_admin_url is None:
        return floors
    from launchbench import procs
    from launchbench.targets import throwaway_postgres

    with throwaway_postgres(pg_admin_url) as (url, name):

        def backends() -> list[int]:
            # This run's connections only: an autovacuum worker names the database too.
            return [p.pid for p in procs.postgres_backends(name)() if "autovacuum" not in p.cmdline]

        pg_stacks = _with_loops(
            [
                DbStack(
                    "psycopg-async",
                    "psycopg 3 AsyncConnection, one connection (BEGIN, statements, COMMIT)",
                    lambda: statements.PsycopgStore.open(url),
                ),
                DbStack(
                    "psycopg-async-pipeline",
                    "psycopg 3 AsyncConnection, autocommit login, pipelined launch transaction",
                    lambda: statements.PsycopgPipelineStore.open(url),
                ),
                DbStack(
                    "sqla-psycopg",
                    "SQLAlchemy Core async, postgresql+psycopg, engine.begin() per transaction",
                    lambda: statements.SqlaStore.open(statements.sqla_pg_url(url), hold=False),
                ),
            ],
            uvloop,
        )
        pg_stacks.append(
            DbStack(
                "sqla-psycopg-held",
                "SQLAlchemy Core async, postgresql+psycopg, one connection held",
                lambda: statements.SqlaStore.open(statements.sqla_pg_url(url), hold=True),
            )
        )
        for stack in pg_stacks:
            log(f"  database: {stack.name}")
            floors.append(_measure_store(stack, launches, n, rounds, warmup, backends))
    return floors


def sqlite_version() -> str:
    return sqlite3.sqlite_version
