"""The ``page_notices`` hook: what an LMS plugin asks of the person on the meetings page.

The plugin here records what it was asked and answers as told; the meetings page shows
its notices, leaves out what is not a path of the tool, and is shown all the same when
the plugin raises or is slow.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import httpx
import pytest

from ltipro.context import LaunchContext, LaunchMessage
from ltipro.extension import LmsDetails, PageContext, PageNotice
from ltipro.hookspecs import hookimpl
from ltipro.lmsapi import LmsApi
from ltipro.lti.claims import standard_launch_context
from ltipro.testing.harness import ToolHarness
from ltipro.web import notices

CLAIM = "https://purl.imsglobal.org/spec/lti/claim/"
LIS = "http://purl.imsglobal.org/vocab/lis/v2/"
CONNECT = PageNotice(
    "Connect <Notice LMS> so your meetings reach the calendar",
    "Connect",
    "/plugins/noticelms/start",
    method="post",
    new_window=True,
    key="noticelms-connect",
)


class NoticeLms:
    """An LMS plugin with a meetings-page notice (or a failure, or a hang, as told)."""

    def __init__(self) -> None:
        self.answer: Any = [CONNECT]
        self.seen: list[tuple[PageContext, Mapping[str, Any], str | None]] = []

    @hookimpl
    def lms_details(self) -> LmsDetails:
        return LmsDetails(name="noticelms", title="Notice LMS", product_family_codes=("nlms",))

    @hookimpl
    def identify_lms(self, message: LaunchMessage) -> str | None:
        return "noticelms" if message.product_family_code == "nlms" else None

    @hookimpl
    def launch_context(self, message: LaunchMessage) -> LaunchContext:
        return standard_launch_context(message, lms="noticelms")

    @hookimpl
    async def page_notices(
        self, context: PageContext, settings: Mapping[str, Any], api: LmsApi
    ) -> list[PageNotice] | None:
        self.seen.append((context, settings, api.user_id))
        if isinstance(self.answer, Exception):
            raise self.answer
        if self.answer == "hang":
            await asyncio.Event().wait()
        return self.answer


def person(user: str, role: str) -> dict[str, Any]:
    return {
        "sub": user,
        "name": user.title(),
        "email": f"{user}@example.edu",
        CLAIM + "roles": [LIS + f"membership#{role}"],
        CLAIM + "context": {"id": "bio-101", "title": "Biology"},
        CLAIM + "resource_link": {"id": "link-bio"},
        CLAIM + "tool_platform": {"product_family_code": "nlms", "guid": "lms-1"},
    }


@pytest.fixture
def lms() -> NoticeLms:
    return NoticeLms()


@pytest.fixture
async def harness(database_url: str, tmp_path: Path, lms: NoticeLms) -> AsyncIterator[ToolHarness]:
    async with ToolHarness(
        database_url=database_url,
        instance=tmp_path / "instance",
        plugins=[],
        extra_plugins=[("noticelms", lms)],
    ) as h:
        yield h


async def page(harness: ToolHarness, role: str = "Instructor") -> httpx.Response:
    response = await harness.launch13(person(role.lower(), role))
    assert response.status_code == 200, response.text
    return response


def notice_blocks(response: httpx.Response) -> list[str]:
    return re.findall(r'<div class="flash notice".*?</div>', response.text, re.S)


async def test_the_plugins_notice_is_shown_with_its_button(
    harness: ToolHarness, lms: NoticeLms
) -> None:
    response = await page(harness)
    [block] = notice_blocks(response)
    assert 'data-notice="noticelms-connect"' in block
    assert "Connect &lt;Notice LMS&gt; so your meetings reach the calendar" in block
    assert '<form method="post" action="/plugins/noticelms/start" target="_blank">' in block
    assert f'name="session" value="{harness.session_token(response)}"' in block
    [(context, settings, user_id)] = lms.seen
    assert (context.role, context.may_schedule, context.calendar_sync) == (
        "instructor",
        True,
        True,
    )
    assert context.launch.user_id == user_id == "instructor"
    assert isinstance(settings, Mapping)


async def test_the_plugin_is_told_who_is_looking(harness: ToolHarness, lms: NoticeLms) -> None:
    lms.answer = None
    response = await page(harness, "Learner")
    assert notice_blocks(response) == []
    [(context, _, _)] = lms.seen
    assert (context.role, context.may_schedule) == ("student", False)


async def test_a_get_notice_is_a_link_without_the_session(
    harness: ToolHarness, lms: NoticeLms
) -> None:
    lms.answer = [PageNotice("Read how", "How it works", "/plugins/noticelms/help", method="get")]
    response = await page(harness)
    [block] = notice_blocks(response)
    assert '<a class="button" href="/plugins/noticelms/help">How it works</a>' in block
    assert 'name="session"' not in block


@pytest.mark.parametrize(
    "url", ["https://elsewhere.example/steal", "//elsewhere.example/steal", "javascript:x"]
)
async def test_a_notice_leading_out_of_the_tool_is_left_out(
    harness: ToolHarness, lms: NoticeLms, url: str, caplog: pytest.LogCaptureFixture
) -> None:
    lms.answer = [PageNotice("Go", "Go", url), "not a notice"]
    with caplog.at_level(logging.WARNING, logger="ltipro.web.notices"):
        response = await page(harness)
    assert notice_blocks(response) == []
    assert "elsewhere.example" not in response.text
    assert "not a path of the tool" in caplog.text


async def test_a_plugin_that_raises_is_logged_and_the_page_is_shown(
    harness: ToolHarness, lms: NoticeLms, caplog: pytest.LogCaptureFixture
) -> None:
    lms.answer = RuntimeError("the plugin broke")
    with caplog.at_level(logging.ERROR, logger="ltipro.web.notices"):
        response = await page(harness)
    assert response.status_code == 200
    assert "Upcoming meetings" in response.text
    assert notice_blocks(response) == []
    assert "the plugin broke" in caplog.text


async def test_a_slow_plugin_is_left_out_after_the_wait(
    harness: ToolHarness,
    lms: NoticeLms,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    lms.answer = "hang"
    monkeypatch.setattr(notices, "NOTICE_WAIT_SECONDS", 0.05)
    with caplog.at_level(logging.WARNING, logger="ltipro.web.notices"):
        response = await page(harness)
    assert response.status_code == 200
    assert notice_blocks(response) == []
    assert "took longer than" in caplog.text


async def test_a_plugin_without_the_hook_adds_nothing(harness: ToolHarness) -> None:
    # The built-in generic plugin serves launches no plugin claims; it has no notices.
    claims = person("instructor", "Instructor")
    del claims[CLAIM + "tool_platform"]
    response = await harness.launch13(claims)
    assert response.status_code == 200, response.text
    assert notice_blocks(response) == []
