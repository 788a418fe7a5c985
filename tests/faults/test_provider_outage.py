"""Zoom answering 5xx, 429 or nothing: the person using the tool gets a clear message.

The Zoom client's own retries are covered in tests/test_zoom_client.py; these tests look
from the other end, at what the instructor's page and the JSON API answer when the
retries are spent, and check that nothing is stored for a meeting Zoom did not make.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from html import unescape
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from ltipro.plugin_settings import set_plugin_settings
from ltipro.providers.zoom.client import ZoomClient
from ltipro.storage.meetings_tables import meetings
from ltipro.testing.harness import ToolHarness
from ltipro.testing.zoom_double import ACCOUNT_ID, CLIENT_ID, CLIENT_SECRET, ZoomDouble

CLAIM = "https://purl.imsglobal.org/spec/lti/claim/"
TEACHER = {
    "sub": "teacher",
    "name": "Teacher",
    "email": "teacher@example.edu",
    CLAIM + "roles": ["http://purl.imsglobal.org/vocab/lis/v2/membership#Instructor"],
    CLAIM + "context": {"id": "bio-101", "title": "Biology"},
    CLAIM + "resource_link": {"id": "link-bio"},
}


@pytest.fixture
async def zoom(harness: ToolHarness, monkeypatch: pytest.MonkeyPatch) -> ZoomDouble:
    # Retries wait no wall-clock time here (their waits are tested with the client).
    monkeypatch.setattr(ZoomClient, "_backoff", lambda self, attempt: 0.0)
    double = ZoomDouble()
    double.add_user("teacher@example.edu", type=2)
    harness.transport.add("api.zoom.us", double)
    harness.transport.add("zoom.us", double)
    await set_plugin_settings(
        harness.tool,
        harness.credential,
        "providers",
        {
            "provider": "zoom",
            "zoom.account_id": ACCOUNT_ID,
            "zoom.client_id": CLIENT_ID,
            "zoom.client_secret": CLIENT_SECRET,
        },
    )
    return double


def _form() -> dict[str, str]:
    day = (datetime.now(UTC) + timedelta(days=1)).date().isoformat()
    return {
        "topic": "Lab review",
        "duration": "30",
        "date": day,
        "time": "10:00",
        "timezone": "UTC",
    }


async def _schedule(harness: ToolHarness, token: str) -> httpx.Response:
    harness.client.cookies.clear()
    return await harness.client.post("/meetings/schedule", data={"session": token, **_form()})


async def _stored_meetings(harness: ToolHarness) -> int:
    async with harness.tool.repo.engine.connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(meetings))).scalar_one())


def _message(page: httpx.Response) -> str:
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", page.text)).split())


@pytest.mark.parametrize(
    ("fault", "expected"),
    [
        ({"status": 500}, "Zoom"),
        ({"status": 503}, "Zoom"),
        ({"timeout": True}, "Zoom"),
        ({"status": 429, "code": 429, "headers": {"Retry-After": "3600"}}, "Zoom"),
    ],
    ids=["500", "503", "no-answer", "429-long-wait"],
)
async def test_scheduling_while_zoom_fails_shows_a_clear_message_and_stores_nothing(
    harness: ToolHarness, zoom: ZoomDouble, fault: dict[str, Any], expected: str
) -> None:
    page = await harness.launch13(TEACHER)
    assert page.status_code == 200, page.text[-800:]
    token = harness.session_token(page)
    zoom.fail_next(operation="meetingCreate", times=10, **fault)

    answer = await _schedule(harness, token)

    assert answer.status_code in (429, 502, 503, 504), answer.status_code
    text = _message(answer)
    assert expected in text
    assert "Traceback" not in answer.text and "Internal Server Error" not in text
    assert await _stored_meetings(harness) == 0


async def test_the_api_answers_json_with_a_code_when_zoom_fails(
    harness: ToolHarness, zoom: ZoomDouble
) -> None:
    page = await harness.launch13(TEACHER)
    token = harness.session_token(page)
    zoom.fail_next(502, operation="meetingCreate", times=10)
    harness.client.cookies.clear()
    answer = await harness.client.post(
        "/api/v1/meetings",
        json={"topic": "Lab", "duration": 30, "start_time": _start(), "timezone": "UTC"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert 500 < answer.status_code < 600 or answer.status_code == 429, answer.text
    body = answer.json()
    assert set(body) >= {"error", "message"} and "Zoom" in body["message"]
    assert await _stored_meetings(harness) == 0


async def test_the_course_page_still_opens_from_stored_meetings_while_zoom_is_down(
    harness: ToolHarness, zoom: ZoomDouble
) -> None:
    page = await harness.launch13(TEACHER)
    token = harness.session_token(page)
    assert (await _schedule(harness, token)).status_code == 200
    zoom.fail_next(503, times=50)
    again = await harness.launch13(TEACHER)
    assert again.status_code == 200, again.text[-800:]
    assert "Lab review" in _message(again)
    assert "Traceback" not in again.text


async def test_service_resumes_once_zoom_answers_again(
    harness: ToolHarness, zoom: ZoomDouble
) -> None:
    page = await harness.launch13(TEACHER)
    token = harness.session_token(page)
    zoom.fail_next(503, operation="meetingCreate", times=1)
    assert (await _schedule(harness, token)).status_code >= 500
    assert (await _schedule(harness, token)).status_code == 200
    assert await _stored_meetings(harness) == 1


def _start() -> str:
    return (datetime.now(UTC) + timedelta(days=1)).replace(microsecond=0).isoformat()
