"""Launches in a real browser that refuses the tool's cookies inside the LMS page.

The LMS (the standalone simulator on http://127.0.0.1:P) and the tool (http://localhost:Q)
are different sites, and the tool runs in an iframe of the LMS's course page, as in
production. Debian's Chromium is driven by Playwright; no browser is ever downloaded.

What Chromium does here (checked by these tests): its "block third-party cookies" setting
refuses ordinary cookies in the iframe but keeps partitioned ones (CHIPS), which the tool
sets. A browser that refuses the tool's cookies altogether is modelled by a cookie rule
blocking the tool's site inside the LMS's pages, or by stripping every ``Set-Cookie``
header the tool sends before the browser sees it.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit, urlunsplit

import httpx
import pytest
import pytest_asyncio

from ltipro.testing.servers import (
    SimulatorConfig,
    ToolConfig,
    free_port,
    register_platform,
    run_cli,
    running,
    start_simulator,
    start_tool,
)

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# The machine's network is closed: without these, Chromium keeps trying Google's hosts.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    # The tool (localhost) and the LMS (127.0.0.1) are different sites, so Chromium would
    # put the tool's frame in a process of its own; on a loaded machine the driver then
    # loses sight of the frame while it navigates through the launch. Cookie rules are
    # decided by site, not by process, so keeping frames in one process changes nothing
    # the tests check.
    "--disable-site-isolation-trials",
    "--disable-features=IsolateOrigins,site-per-process",
    "--disable-component-update",
    "--disable-sync",
]
STEP_TIMEOUT_MS = 15_000
TEST_TIMEOUT = 90.0
# Refreshed from the cookie-less launch with LTIPRO_UPDATE_SCREENSHOTS=1.
SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "screenshots" / "launch-in-iframe.png"
EXAMPLE = "generic/instructor"
USER_NAME = "Sam Teacher"
COURSE_TITLE = "Introduction to Standards"

# Chromium profile preferences. cookie_controls_mode 1 is "block third-party cookies"
# (chrome://settings/cookies); block_third_party_cookies is its older name.
BLOCK_THIRD_PARTY = {"cookie_controls_mode": 1, "block_third_party_cookies": True}


def _browser_available() -> None:
    """Skip without Chromium or Playwright, except in CI, where the suite installs both."""
    problem = None
    if not os.path.exists(CHROMIUM):
        problem = f"Chromium is not installed at {CHROMIUM} (scripts/ensure-chromium installs it)"
    else:
        try:
            import playwright.async_api  # noqa: F401
        except ImportError:
            problem = "Python Playwright is not installed (pip install -e '.[dev]')"
    if problem is None:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"browser tests must run in CI: {problem}")
    pytest.skip(problem)


@dataclass
class Servers:
    """The tool and the LMS simulator, each a process of its own on its own site."""

    tool_url: str
    tool_origin_pattern: re.Pattern[str]
    lms_url: str
    lms_origin: str
    tool_listen_url: str


def tool_cookies_blocked_in_the_lms(servers: Servers) -> dict[str, Any]:
    """A cookie rule refusing the tool's cookies, partitioned ones too, under the LMS's pages.

    A content-settings exception: "cookie's site,top-level site" -> 2 (block).
    """
    return {"cookies": {f"{servers.tool_url},{servers.lms_origin}": {"setting": 2}}}


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    _browser_available()
    tmp = tmp_path_factory.mktemp("browser-servers")
    tool_port, lms_port = free_port(), free_port()
    tool = ToolConfig(
        instance=tmp / "instance",
        base_url=f"http://localhost:{tool_port}",
        database_url=f"sqlite:///{tmp / 'ltipro.db'}",
        plugins=("generic",),
    )
    simulator = SimulatorConfig(
        port=lms_port,
        tool_url=tool.base_url,
        key_file=tmp / "platform-key.json",
        client_id="browser-client",
        deployment_id="browser-deployment",
        plugins=("generic",),
    )
    # Each process starts while the next command runs; both are waited for at the end.
    lms = start_simulator(simulator, log_dir=tmp, wait=False)
    with running(lms):
        run_cli(tool, "init")
        with start_tool(tool, port=tool_port, log_dir=tmp, wait=False) as process:
            register_platform(
                tool,
                credential="college",
                issuer=simulator.issuer,
                client_id=simulator.client_id,
                deployment_id=simulator.deployment_id,
            )
            lms.wait_until_ready()
            process.wait_until_ready()
            yield Servers(
                tool_url=tool.base_url,
                tool_origin_pattern=re.compile("^" + re.escape(tool.base_url) + "/"),
                lms_url=simulator.issuer,
                lms_origin=simulator.url,
                tool_listen_url=process.url,
            )


@dataclass
class ToolTraffic:
    """What passed between the browser and the tool, as the browser's network saw it."""

    requests: list[tuple[str, str, str | None]] = field(default_factory=list)
    set_cookies: list[str] = field(default_factory=list)

    def launch_posts(self) -> list[str | None]:
        """The Cookie header of each POST to the launch URL (None: no cookie at all)."""
        return [c for method, path, c in self.requests if (method, path) == ("POST", "/lti/launch")]

    def cookies_sent(self) -> list[str]:
        """Every Cookie header the browser sent the tool."""
        return [cookie for _, _, cookie in self.requests if cookie]


@dataclass
class Browser:
    """One Chromium with a profile of its own, and what it exchanged with the tool."""

    context: Any
    page: Any
    traffic: ToolTraffic
    tmp: Path
    closers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)


OpenBrowser = Callable[..., Awaitable[Browser]]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def playwright(servers: Servers) -> AsyncIterator[Any]:
    """One Playwright driver for the module; each test still gets a browser of its own."""
    from playwright.async_api import async_playwright

    async with async_playwright() as driver:
        yield driver


@pytest_asyncio.fixture(loop_scope="module")
async def open_browser(
    playwright: Any, servers: Servers, tmp_path: Path
) -> AsyncIterator[OpenBrowser]:
    """Start Chromium on a fresh profile with the cookie preferences the test gives."""
    from playwright.async_api import Error as PlaywrightError

    opened: list[Browser] = []

    async def start(
        profile: Mapping[str, Any], *, exceptions: Mapping[str, Any] | None = None
    ) -> Browser:
        user_data = tmp_path / f"profile-{len(opened)}"
        prefs: dict[str, Any] = {"profile": dict(profile)}
        if exceptions:
            prefs["profile"]["content_settings"] = {"exceptions": dict(exceptions)}
        (user_data / "Default").mkdir(parents=True)
        (user_data / "Default" / "Preferences").write_text(json.dumps(prefs))
        context = await playwright.chromium.launch_persistent_context(
            str(user_data),
            executable_path=CHROMIUM,
            args=CHROMIUM_ARGS,
            headless=True,
            viewport={"width": 1100, "height": 760},
            timeout=STEP_TIMEOUT_MS,
        )
        context.set_default_timeout(STEP_TIMEOUT_MS)
        traffic = ToolTraffic()

        async def on_request(request: Any) -> None:
            if not servers.tool_origin_pattern.match(request.url):
                return
            try:
                headers = await request.all_headers()
            except PlaywrightError:  # the browser closed while the request was under way
                return
            path = urlsplit(request.url).path
            traffic.requests.append((request.method, path, headers.get("cookie")))

        async def on_response(response: Any) -> None:
            if not servers.tool_origin_pattern.match(response.url):
                return
            try:
                headers = await response.headers_array()
            except PlaywrightError:
                return
            traffic.set_cookies.extend(
                h["value"] for h in headers if h["name"].lower() == "set-cookie"
            )

        context.on("request", on_request)
        context.on("response", on_response)
        page = context.pages[0] if context.pages else await context.new_page()
        browser = Browser(context=context, page=page, traffic=traffic, tmp=tmp_path)
        opened.append(browser)
        return browser

    try:
        yield start
    finally:
        for browser in opened:
            await browser.context.close()
            for close in browser.closers:
                await close()


async def open_course_page(browser: Browser, servers: Servers, storage: str) -> Any:
    """In the LMS: pick the example instructor and launch the tool into the course page."""
    page = browser.page
    await page.goto(servers.lms_url + "/")
    await page.select_option("#example", EXAMPLE)
    await page.select_option("#storage", storage)
    await page.click("button[type=submit]")
    await page.wait_for_selector("iframe[name=tool]", state="attached")
    return page.frame_locator("iframe[name=tool]")


async def expect_active_session(tool_frame: Any) -> None:
    from playwright.async_api import expect

    await expect(tool_frame.locator("#api-check")).to_contain_text(
        f"Session active for {USER_NAME}.", timeout=STEP_TIMEOUT_MS
    )
    await expect(tool_frame.locator("h1")).to_contain_text(COURSE_TITLE)
    await expect(tool_frame.locator('[data-field="name"]')).to_have_text(USER_NAME)


async def expect_role_and_email(tool_frame: Any) -> None:
    from playwright.async_api import expect

    await expect(tool_frame.locator('[data-field="role"]')).to_have_text("Instructor")
    await expect(tool_frame.locator('[data-field="email"]')).to_have_text("sam.teacher@example.edu")


@dataclass
class Forwarded:
    """What the test passed on to the tool for the browser, and what it kept back."""

    posts: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    dropped_cookies: list[str] = field(default_factory=list)


async def serve_through_the_test(browser: Browser, servers: Servers) -> Forwarded:
    """Route every request through the test, dropping each ``Set-Cookie`` the tool sends.

    Requests are forwarded with httpx rather than Playwright's ``route.fetch``, which
    files the response's cookies in the browser's cookie jar and sends them on later
    requests by itself, whatever the browser's cookie settings say. The LMS's pages go
    through the test too: Chromium counts a page it did not fetch itself as public, and
    its Local Network Access checks refuse navigation from a public page to a loopback
    address such as the LMS's.
    """
    forwarded = Forwarded()
    client = httpx.AsyncClient(timeout=10.0, follow_redirects=False)
    origins = {
        servers.tool_url: servers.tool_listen_url,
        servers.lms_origin: servers.lms_origin,
    }

    async def forward(route: Any) -> None:
        request = route.request
        url = urlsplit(request.url)
        origin = f"{url.scheme}://{url.netloc}"
        listen = urlsplit(origins[origin])
        is_tool = origin == servers.tool_url
        headers = {
            name: value
            for name, value in (await request.all_headers()).items()
            if not name.startswith(":") and name.lower() not in ("host", "content-length")
        }
        headers["host"] = url.netloc
        body = request.post_data_buffer
        if is_tool and request.method == "POST":
            fields = dict(parse_qsl((body or b"").decode(), keep_blank_values=True))
            forwarded.posts.append((url.path, fields))
        answer = await client.request(
            request.method,
            urlunsplit((listen.scheme, listen.netloc, url.path, url.query, "")),
            headers=headers,
            content=body,
        )
        kept: dict[str, str] = {}
        for name, value in answer.headers.multi_items():
            lowered = name.lower()
            if lowered == "set-cookie":
                if is_tool:
                    forwarded.dropped_cookies.append(value)
                    continue
            elif lowered in ("content-length", "content-encoding", "transfer-encoding"):
                continue
            kept[lowered] = kept[lowered] + "\n" + value if lowered in kept else value
        await route.fulfill(status=answer.status_code, headers=kept, body=answer.content)

    for origin in origins:
        await browser.context.route(re.compile("^" + re.escape(origin) + "/"), forward)
    browser.closers.append(client.aclose)
    return forwarded


async def test_chromium_refuses_ordinary_third_party_cookies_but_keeps_the_tools_partitioned_ones(
    open_browser: OpenBrowser, servers: Servers
) -> None:
    async with asyncio.timeout(TEST_TIMEOUT):
        browser = await open_browser(BLOCK_THIRD_PARTY)

        tool_frame = await open_course_page(browser, servers, storage="cookie")

        await expect_active_session(tool_frame)
        # The state cookie the login set came back with the launch: it is Partitioned.
        assert any("Partitioned" in c for c in browser.traffic.set_cookies)
        launch_cookies = browser.traffic.launch_posts()
        assert len(launch_cookies) == 1 and "ltipro_state_" in (launch_cookies[0] or "")
        # The same browser refuses a cookie without the Partitioned attribute there.
        frame = browser.page.frame(name="tool")
        written = await frame.evaluate(
            """() => {
                document.cookie = "ordinary=1; Path=/; Secure; SameSite=None";
                document.cookie = "partitioned=1; Path=/; Secure; SameSite=None; Partitioned";
                return document.cookie;
            }"""
        )
        assert "partitioned=1" in written
        assert "ordinary=1" not in written


async def test_the_browser_sends_no_cookie_to_the_tool_when_its_site_is_blocked_in_the_lms(
    open_browser: OpenBrowser, servers: Servers
) -> None:
    async with asyncio.timeout(TEST_TIMEOUT):
        browser = await open_browser(
            BLOCK_THIRD_PARTY, exceptions=tool_cookies_blocked_in_the_lms(servers)
        )

        tool_frame = await open_course_page(browser, servers, storage="postmessage")

        # The launch still completes: through the LMS's storage frame, not the cookie.
        await expect_active_session(tool_frame)
        assert any(c.startswith("ltipro_state_") for c in browser.traffic.set_cookies)
        assert any(c.startswith("ltipro_session=") for c in browser.traffic.set_cookies)
        assert browser.traffic.cookies_sent() == []
        # First without a cookie (the tool asks for the storage check), then with the proof.
        assert browser.traffic.launch_posts() == [None, None]
        assert await browser.context.cookies(servers.tool_url) == []


async def test_launch_in_iframe_without_any_cookie_runs_on_lms_storage_and_the_session_token(
    open_browser: OpenBrowser, servers: Servers
) -> None:
    async with asyncio.timeout(TEST_TIMEOUT):
        browser = await open_browser(BLOCK_THIRD_PARTY)
        forwarded = await serve_through_the_test(browser, servers)

        tool_frame = await open_course_page(browser, servers, storage="postmessage")

        await expect_active_session(tool_frame)
        await expect_role_and_email(tool_frame)
        dropped = forwarded.dropped_cookies
        assert any(c.startswith("ltipro_state_") for c in dropped)
        assert any(c.startswith("ltipro_session=") for c in dropped)
        assert await browser.context.cookies(servers.tool_url) == []
        # The platform's id_token post, then the same again with the secret the tool's
        # login page had kept in the LMS's storage frame: that confirmed the launch.
        launches = [fields for path, fields in forwarded.posts if path == "/lti/launch"]
        assert len(launches) == 2
        assert "lti_storage_proof" not in launches[0]
        assert launches[1]["lti_storage_proof"]
        assert launches[1]["id_token"] == launches[0]["id_token"]
        shot = browser.tmp / "launch-in-iframe.png"
        await browser.page.screenshot(path=str(shot))
        if os.environ.get("LTIPRO_UPDATE_SCREENSHOTS") == "1":
            SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(shot, SCREENSHOT)


async def test_cookie_only_launch_with_blocked_cookies_is_refused_with_a_new_window_that_works(
    open_browser: OpenBrowser, servers: Servers
) -> None:
    from playwright.async_api import expect

    async with asyncio.timeout(TEST_TIMEOUT):
        browser = await open_browser(
            BLOCK_THIRD_PARTY, exceptions=tool_cookies_blocked_in_the_lms(servers)
        )

        tool_frame = await open_course_page(browser, servers, storage="cookie")

        await expect(tool_frame.locator("h1")).to_have_text("The tool could not open")
        await expect(tool_frame.locator("[data-error-code]")).to_have_attribute(
            "data-error-code", "state_not_bound"
        )
        new_window = tool_frame.get_by_role("link", name="Open in a new window")
        await expect(new_window).to_be_visible()
        assert browser.traffic.launch_posts() == [None]

        # In a window of its own the tool is the first party: its cookie is kept.
        async with browser.page.expect_popup() as popup_info:
            await new_window.click()
        popup = await popup_info.value
        await expect(popup.locator("#api-check")).to_contain_text(
            f"Session active for {USER_NAME}.", timeout=STEP_TIMEOUT_MS
        )
        await expect(popup.locator("h1")).to_contain_text(COURSE_TITLE)
        assert urlsplit(popup.url).netloc == urlsplit(servers.tool_url).netloc
        assert browser.traffic.launch_posts()[-1] is not None
        assert "ltipro_state_" in (browser.traffic.launch_posts()[-1] or "")
