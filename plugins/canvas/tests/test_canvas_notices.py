"""The "Connect Canvas" notice of the meetings page, through the whole tool.

Shown to an instructor who schedules meetings when calendar sync would use their own
Canvas grant and they have none; its button posts the session to the OAuth start route
in a new window, and once Canvas sent them back, the notice is gone.
"""

from __future__ import annotations

import copy
import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from ltipro_canvas.examples import STUDENT_13, TEACHER_13
from ltipro_canvas.notices import CONNECT_TEXT
from ltipro_canvas.testing import CanvasDouble

from ltipro.plugin_settings import set_plugin_settings
from ltipro.testing.harness import TOOL_URL, ToolHarness
from ltipro.testing.helpers import launch

CANVAS_HOST = "canvas.home.russfeld.me"  # the launches' canvas_api_domain
CALLBACK = f"{TOOL_URL}/plugins/canvas/oauth/callback"
NOTICE = re.compile(r'<div class="flash notice"[^>]*data-notice="canvas-connect".*?</div>', re.S)


@pytest.fixture
async def tool(canvas_harness: ToolHarness) -> AsyncIterator[ToolHarness]:
    yield canvas_harness


@pytest.fixture
def canvas(tool: ToolHarness) -> CanvasDouble:
    double = CanvasDouble(host=CANVAS_HOST)
    double.add_course("3", sections=["31"], teachers=["7"])
    double.add_user("7", "TeacherFirst TeacherLast")
    double.signed_in_user = "7"
    tool.transport.add(CANVAS_HOST, double)
    return double


async def configure(tool: ToolHarness, canvas: CanvasDouble, **extra: str) -> None:
    values = {"api_client_id": canvas.client_id, "api_client_secret": canvas.client_secret}
    await set_plugin_settings(tool.tool, tool.credential, "canvas", {**values, **extra})


async def open_page(tool: ToolHarness, claims: dict[str, Any] = TEACHER_13) -> httpx.Response:
    page = await launch(tool, "1.3", copy.deepcopy(claims))
    assert page.status_code == 200, page.text
    return page


def notice_of(page: httpx.Response) -> str | None:
    found = NOTICE.search(page.text)
    return found.group(0) if found else None


def attribute(html: str, name: str) -> str | None:
    found = re.search(rf'\b{name}="([^"]*)"', html)
    return found.group(1) if found else None


async def test_an_instructor_without_a_grant_sees_connect_canvas_in_a_new_window(
    tool: ToolHarness, canvas: CanvasDouble
) -> None:
    await configure(tool, canvas)
    page = await open_page(tool)
    notice = notice_of(page)
    assert notice is not None
    assert CONNECT_TEXT in notice
    assert attribute(notice, "method") == "post"
    assert attribute(notice, "action") == "/plugins/canvas/oauth/start"
    assert attribute(notice, "target") == "_blank"
    assert f'name="session" value="{tool.session_token(page)}"' in notice
    assert ">Connect Canvas</button>" in notice


async def test_the_button_starts_the_flow_and_after_the_callback_the_notice_is_gone(
    tool: ToolHarness, canvas: CanvasDouble
) -> None:
    await configure(tool, canvas)
    page = await open_page(tool)
    notice = notice_of(page)
    assert notice is not None
    token = tool.session_token(page)

    # What the browser sends when the button is pressed: the form, as the page has it.
    started = await tool.client.post(
        str(attribute(notice, "action")), data={"session": token}, follow_redirects=False
    )
    assert started.status_code == 303
    assert started.headers["location"].startswith(f"https://{CANVAS_HOST}/login/oauth2/auth?")
    at_canvas = await tool.outbound.get(started.headers["location"])
    assert at_canvas.headers["location"].startswith(CALLBACK + "?")
    back = await tool.client.get(at_canvas.headers["location"])
    assert back.status_code == 200

    reloaded = await tool.client.get("/meetings", headers={"Authorization": f"Bearer {token}"})
    assert reloaded.status_code == 200
    assert notice_of(reloaded) is None
    assert "Meetings" in reloaded.text


async def test_students_never_see_it(tool: ToolHarness, canvas: CanvasDouble) -> None:
    await configure(tool, canvas)
    page = await open_page(tool, STUDENT_13)
    assert notice_of(page) is None
    assert CONNECT_TEXT not in page.text


async def test_without_the_api_developer_key_there_is_nothing_to_connect(
    tool: ToolHarness,
) -> None:
    page = await open_page(tool)
    assert notice_of(page) is None


async def test_an_admin_token_syncs_for_everyone_so_nobody_is_asked(
    tool: ToolHarness, canvas: CanvasDouble
) -> None:
    await configure(tool, canvas, admin_access_token="a-token-of-the-admin")
    page = await open_page(tool)
    assert notice_of(page) is None


async def test_with_calendar_sync_off_nobody_is_asked(
    tool: ToolHarness, canvas: CanvasDouble
) -> None:
    await configure(tool, canvas)
    credential = await tool.refresh_credential()
    await tool.tool.repo.set_options(
        credential, credential.options.updated({"calendar_sync": False})
    )
    page = await open_page(tool)
    assert notice_of(page) is None


async def test_an_instructor_who_may_not_schedule_is_not_asked(
    tool: ToolHarness, canvas: CanvasDouble
) -> None:
    await configure(tool, canvas)
    credential = await tool.refresh_credential()
    # Nobody counts as an instructor: the teacher's launch is a student's.
    await tool.tool.repo.set_options(
        credential, credential.options.updated({"instructor_roles": ["Administrator"]})
    )
    page = await open_page(tool)
    assert notice_of(page) is None
