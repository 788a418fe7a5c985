"""Connecting Canvas from the meetings page in a real browser, the tool in the course page.

The tool runs under uvicorn with the Canvas plugin and the Canvas API developer key
configured as an admin does it (``ltipro plugins set ... canvas api_client_id=...``);
Canvas's OAuth endpoints are the Canvas double (``ltipro_canvas.testing``) served on
127.0.0.1 from a thread of the test. The button opens Canvas's consent in a new window
(Canvas's sign-in page refuses to be framed); once Canvas sent the instructor back, the
notice is gone. Students never see it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import pytest_asyncio
from canvas_site import canvas_site, chromium_browser
from ltipro_canvas.notices import CONNECT_TEXT
from ltipro_canvas.testing import CanvasDouble
from test_third_party_cookies import STEP_TIMEOUT_MS, _browser_available

from ltipro.testing.servers import free_port

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]


@dataclass
class Servers:
    tool_url: str
    lms_url: str
    canvas_url: str
    canvas: CanvasDouble


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    _browser_available()
    tmp = tmp_path_factory.mktemp("connect-canvas-e2e")
    canvas_port = free_port()
    canvas_url = f"http://127.0.0.1:{canvas_port}"
    canvas = CanvasDouble(host=f"127.0.0.1:{canvas_port}")
    canvas.add_course("3", sections=["31"], teachers=["7"])
    canvas.signed_in_user = canvas.add_user("7", "TeacherFirst TeacherLast")
    with canvas_site(
        tmp,
        "connect",
        canvas,
        canvas_port,
        [f"api_client_id={canvas.client_id}", f"api_client_secret={canvas.client_secret}"],
    ) as (tool_url, lms_url):
        yield Servers(tool_url, lms_url, canvas_url, canvas)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def chromium(servers: Servers) -> AsyncIterator[Any]:
    async with chromium_browser() as browser:
        yield browser


async def open_course(servers: Servers, page: Any, example: str) -> Any:
    """Launch the tool from the LMS simulator's Canvas example; the tool's frame."""
    from playwright.async_api import expect

    await page.goto(servers.lms_url + "/")
    await page.select_option("#example", example)
    await page.click("button[type=submit]")
    tool = page.frame_locator("iframe[name=tool]")
    await expect(tool.locator("#api-check")).to_contain_text("Session active for")
    return tool


async def test_an_instructor_connects_canvas_in_a_new_window_and_the_notice_goes(
    servers: Servers, chromium: Any, tmp_path: Any
) -> None:
    from playwright.async_api import expect

    context = await chromium.new_context()
    context.set_default_timeout(STEP_TIMEOUT_MS)
    page = await context.new_page()
    try:
        tool = await open_course(servers, page, "canvas/teacher-13")
        notice = tool.locator('[data-notice="canvas-connect"]')
        await expect(notice).to_contain_text(CONNECT_TEXT)
        async with context.expect_page() as opened:
            await notice.get_by_role("button", name="Connect Canvas").click()
        window = await opened.value
        await window.wait_for_load_state()
        await expect(window.locator('[data-result-code="canvas_connected"]')).to_be_visible()
        assert window.url.startswith(servers.tool_url + "/plugins/canvas/oauth/callback?")
        asked = [r for r in servers.canvas.requests if r.path == "/login/oauth2/auth"]
        assert len(asked) == 1
        assert dict(asked[0].query)["client_id"] == servers.canvas.client_id
        # The course page itself stayed where it was, the tool still in its frame.
        assert page.url.startswith(servers.lms_url)
        await window.close()

        tool = await open_course(servers, page, "canvas/teacher-13")
        await expect(tool.locator("h1")).to_contain_text("Meetings")
        await expect(tool.locator('[data-notice="canvas-connect"]')).to_have_count(0)
    finally:
        await page.screenshot(path=str(tmp_path / "connected.png"))
        await context.close()


async def test_a_student_never_sees_the_notice(servers: Servers, chromium: Any) -> None:
    from playwright.async_api import expect

    context = await chromium.new_context()
    context.set_default_timeout(STEP_TIMEOUT_MS)
    page = await context.new_page()
    try:
        tool = await open_course(servers, page, "canvas/student-13")
        await expect(tool.locator("h1")).to_contain_text("Meetings")
        await expect(tool.locator('[data-notice="canvas-connect"]')).to_have_count(0)
    finally:
        await context.close()
