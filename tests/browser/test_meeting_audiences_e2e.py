"""Scheduling a meeting for a Canvas section in a real browser, on a phone-width screen,
with the keyboard only.

The tool runs under uvicorn with the Canvas plugin, launched from the LMS simulator's
Canvas teacher example; the course's sections and groups come from the Canvas double
(``ltipro_canvas.testing_conversations``) served on 127.0.0.1 from a thread of the test,
configured the way an admin does it (``ltipro plugins set ... canvas api_base_url=...``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import pytest_asyncio
from canvas_site import canvas_site, chromium_browser
from ltipro_canvas.testing_conversations import CanvasCourseDouble
from test_third_party_cookies import STEP_TIMEOUT_MS, _browser_available

from ltipro.testing.servers import free_port

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]

CANVAS_TOKEN = "canvas-admin-token-e2e"
PHONE = {"width": 390, "height": 844}


@dataclass
class Servers:
    tool_url: str
    lms_url: str
    canvas: CanvasCourseDouble


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    _browser_available()
    tmp = tmp_path_factory.mktemp("audiences-e2e")
    canvas_port = free_port()
    canvas = CanvasCourseDouble()
    course = canvas.add_course(3, "LTI 1.3 Test Course")  # the examples' Canvas course
    canvas.add_section(course, "Monday lab", section_id=41)
    canvas.add_section(course, "Thursday lab", section_id=42)
    canvas.add_group(course, "Project team A", group_id=77)
    canvas.enrol(canvas.add_user(1, "Canvas Admin", token=CANVAS_TOKEN), course, "teacher")
    with canvas_site(
        tmp, "audiences", canvas, canvas_port, [f"admin_access_token={CANVAS_TOKEN}"]
    ) as (tool_url, lms_url):
        yield Servers(tool_url, lms_url, canvas)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def chromium(servers: Servers) -> AsyncIterator[Any]:
    async with chromium_browser() as browser:
        yield browser


async def test_an_instructor_schedules_for_a_section_with_the_keyboard_on_a_phone(
    servers: Servers, chromium: Any, tmp_path: Any
) -> None:
    from playwright.async_api import expect

    context = await chromium.new_context(viewport=PHONE)
    context.set_default_timeout(STEP_TIMEOUT_MS)
    page = await context.new_page()
    try:
        await page.goto(servers.lms_url + "/")
        await page.select_option("#example", "canvas/teacher-13")
        await page.fill("#context_id", "bio-101")
        await page.fill("#context_title", "Biology")
        await page.click("button[type=submit]")
        tool = page.frame_locator("iframe[name=tool]")
        await expect(tool.locator("#api-check")).to_contain_text("Session active for")

        # Open the form and fill it in from the keyboard.
        await tool.locator("#schedule summary").focus()
        await page.keyboard.press("Enter")
        await tool.get_by_label("Topic").focus()
        await page.keyboard.type("Lab review")
        day = (datetime.now(UTC) + timedelta(days=2)).date().isoformat()
        await tool.get_by_label("Date").fill(day)
        await tool.get_by_label("Time", exact=True).fill("10:00")
        await tool.get_by_label("Time zone").select_option("UTC")

        sections = tool.get_by_role("group", name="For (optional)")
        await expect(sections).to_be_visible()
        monday = tool.get_by_role("checkbox", name="Monday lab")
        await expect(tool.get_by_role("checkbox", name="Project team A")).to_be_visible()
        await monday.focus()
        await page.keyboard.press("Space")
        await expect(monday).to_be_checked()
        await expect(tool.get_by_role("checkbox", name="Thursday lab")).not_to_be_checked()
        await tool.locator("#audience").screenshot(path=str(tmp_path / "form.png"))
        await tool.get_by_role("button", name="Schedule", exact=True).focus()
        await page.keyboard.press("Enter")

        row = tool.locator("#panel-upcoming tr[data-meeting]", has_text="Lab review")
        await expect(row).to_have_count(1)
        cell = row.locator('td[data-label="Section/Group"]')
        await expect(cell).to_have_text("Monday lab")
        # Nothing wider than the phone: the table folds into labelled lines.
        frame = page.frame(name="tool")
        assert frame is not None
        overflow = await frame.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 0
        # The page loads above asked Canvas for the sections once (then from the cache).
        asked = [r for r in servers.canvas.requests if r.path.endswith("/sections")]
        assert len(asked) == 1
    finally:
        await page.screenshot(path=str(tmp_path / "phone.png"))
        await context.close()
