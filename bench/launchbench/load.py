"""Complete LTI 1.3 launches by many concurrent browsers (asyncio + httpx, loopback only).

One launch is what a browser does: ``GET`` the tool's login URL with the LMS's login
parameters, follow the redirect to the LMS's authentication endpoint (answered here, by
the simulated platform), post the signed ``id_token`` and ``state`` to the tool's launch
URL with the cookies the login set, and receive the first page. Each launch is a fresh
browser: it sends only the cookies its own login set.
"""

from __future__ import annotations

import asyncio
import math
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlsplit

# httpcore looks for sniffio on every request and, where it is not installed, pays for a
# failed import each time (a search of sys.path): record its absence once, so the
# generator's CPU goes to launches.
if "sniffio" not in sys.modules:
    try:
        import sniffio  # noqa: F401
    except ImportError:
        sys.modules["sniffio"] = None  # type: ignore[assignment]

import httpx

from ltipro.simulator.platform import SimulatedPlatform

# Every request says it came through the TLS proxy (both tools trust 127.0.0.1 to say so),
# so both run as they do in production: https URLs, Secure cookies.
FORWARDED = {"X-Forwarded-Proto": "https"}
TIMEOUT = httpx.Timeout(30.0).as_dict()


@dataclass(frozen=True)
class Target:
    """A tool as the generator sees it: where it listens and what it calls things."""

    name: str
    url: str  # where it listens (http://127.0.0.1:PORT)
    login_path: str
    page_marker: str  # text the first page must contain


class LaunchFailed(Exception):
    """A launch that did not end on the tool's first page."""


@dataclass
class LoadResult:
    """What a load produced: completed launches, their timings, the generator's CPU."""

    launches: int = 0
    errors: int = 0
    error_samples: list[str] = field(default_factory=list)
    total: list[float] = field(default_factory=list)  # complete launch, seconds
    login: list[float] = field(default_factory=list)  # GET /login alone
    launch: list[float] = field(default_factory=list)  # POST /launch alone
    wall: float = 0.0
    generator_cpu: float = 0.0
    sign_cpu: float = 0.0


def _cookies(response: httpx.Response, jar: dict[str, str]) -> None:
    for header in response.headers.get_list("set-cookie"):
        pair = header.split(";", 1)[0]
        name, _, value = pair.partition("=")
        jar[name.strip()] = value.strip()


def _cookie_header(jar: dict[str, str]) -> dict[str, str]:
    if not jar:
        return dict(FORWARDED)
    return {**FORWARDED, "Cookie": "; ".join(f"{k}={v}" for k, v in jar.items())}


def login_request(target: Target, params: dict[str, str]) -> httpx.Request:
    """The login-initiation request, built (and its long URL checked) ahead of time."""
    return httpx.Request(
        "GET",
        target.url + target.login_path,
        params=params,
        headers=FORWARDED,
        extensions={"timeout": TIMEOUT},
    )


async def _send(transport: httpx.AsyncBaseTransport, request: httpx.Request) -> httpx.Response:
    # The transport alone, as a browser's network stack: the client layer would parse the
    # long redirect URL again to offer a follow-up request the browser never makes.
    response = await transport.handle_async_request(request)
    try:
        await response.aread()
    finally:
        await response.aclose()
    return response


async def one_launch(
    transport: httpx.AsyncBaseTransport,
    target: Target,
    platform: SimulatedPlatform,
    login: httpx.Request,
    result: LoadResult | None,
) -> None:
    """One complete launch; raises :class:`LaunchFailed` with what went wrong."""
    jar: dict[str, str] = {}
    start = time.perf_counter()
    response = await _send(transport, login)
    login_done = time.perf_counter()
    if response.status_code not in (302, 303):
        raise LaunchFailed(f"login answered {response.status_code}: {response.text[:300]}")
    _cookies(response, jar)
    location = response.headers.get("location", "")
    auth_url = platform.issuer + "/auth"
    if not location.startswith(auth_url + "?"):
        raise LaunchFailed(f"login redirected to {location[:200]!r}, not to {auth_url}")
    sign_start = time.thread_time()
    try:
        action, form = platform.authenticate(dict(parse_qsl(urlsplit(location).query)))
    except ValueError as exc:
        raise LaunchFailed(f"the platform refused the authentication request: {exc}") from exc
    sign_cpu = time.thread_time() - sign_start
    # The platform posts to the tool's public launch URL; the tool listens on target.url.
    post = httpx.Request(
        "POST",
        target.url + urlsplit(action).path,
        data=form,
        headers=_cookie_header(jar),
        extensions={"timeout": TIMEOUT},
    )
    post_start = time.perf_counter()
    response = await _send(transport, post)
    end = time.perf_counter()
    if response.status_code != 200 or target.page_marker not in response.text:
        raise LaunchFailed(f"launch answered {response.status_code}: {response.text[:300]}")
    if result is not None:
        result.total.append(end - start)
        result.login.append(login_done - start)
        result.launch.append(end - post_start)
        result.sign_cpu += sign_cpu
        result.launches += 1


async def run_load(
    target: Target,
    platform: SimulatedPlatform,
    requests: Iterator[httpx.Request],
    *,
    users: int,
    launches: int,
    time_limit: float,
    record: bool = True,
) -> LoadResult:
    """``users`` browsers launching until ``launches`` are done or ``time_limit`` passes.

    A launch started before the time limit is finished; none starts after it. Each
    browser keeps its connection open between launches where the server allows it.
    """
    result = LoadResult()
    remaining = launches
    deadline = time.monotonic() + time_limit

    async def browser(transport: httpx.AsyncBaseTransport) -> None:
        nonlocal remaining
        # No await between the check and the decrement: browsers never over-count.
        while remaining > 0 and time.monotonic() < deadline:
            remaining -= 1
            login = next(requests)
            try:
                await one_launch(transport, target, platform, login, result if record else None)
            except (LaunchFailed, httpx.HTTPError) as exc:
                result.errors += 1
                if len(result.error_samples) < 5:
                    result.error_samples.append(f"{type(exc).__name__}: {exc}")

    cpu_start = time.thread_time()  # the event loop: requests, cookies, signing
    transport = httpx.AsyncHTTPTransport(
        limits=httpx.Limits(max_connections=users, max_keepalive_connections=users),
        retries=0,
    )
    async with transport:
        start = time.perf_counter()
        await asyncio.gather(*(browser(transport) for _ in range(users)))
        result.wall = time.perf_counter() - start
    result.generator_cpu = time.thread_time() - cpu_start
    return result


def percentile(values: list[float], pct: float) -> float:
    """The nearest-rank percentile (``pct`` in 0..100) of ``values``."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), math.ceil(pct / 100 * len(ordered))))
    return ordered[rank - 1]
