"""Course meetings end to end with the embedded provider: schedule, list, edit, delete,
start and join, as instructors and students see them."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from html import unescape
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import jwt
import pytest

from ltipro.meetings.model import FormError, MeetingForm, occurrences
from ltipro.plugin_settings import set_plugin_settings
from ltipro.providers.base import Recurrence
from ltipro.storage.meetings_tables import meetings
from ltipro.testing.harness import ToolHarness

CLAIM = "https://purl.imsglobal.org/spec/lti/claim/"
LIS = "http://purl.imsglobal.org/vocab/lis/v2/"
JITSI_SECRET = "jitsi-app-secret-0123456789abcdef"


def person(user: str, role: str, course: str = "bio-101") -> dict[str, Any]:
    return {
        "sub": user,
        "name": user.title(),
        "email": f"{user}@example.edu",
        CLAIM + "roles": [LIS + f"membership#{role}"],
        CLAIM + "context": {"id": course, "title": f"Course {course}"},
        CLAIM + "resource_link": {"id": f"link-{course}"},
        CLAIM + "launch_presentation": {"return_url": "https://lms.example.edu/c"},
    }


TEACHER = person("teacher", "Instructor")
STUDENT = person("student", "Learner")


def tomorrow(hour: int = 10) -> dict[str, str]:
    day = (datetime.now(UTC) + timedelta(days=1)).date()
    return {"date": day.isoformat(), "time": f"{hour:02d}:00", "timezone": "America/Chicago"}


class Browser:
    """One person's launched page: post its forms with the session token it carries."""

    def __init__(self, harness: ToolHarness, page: httpx.Response) -> None:
        self.harness = harness
        self.page = page
        self.token = harness.session_token(page)

    async def post(self, path: str, **fields: Any) -> httpx.Response:
        self.harness.client.cookies.clear()
        data = {"session": self.token, **fields}
        response = await self.harness.client.post(path, data=data)
        if response.status_code < 300:
            self.page = response
        return response

    async def api(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        self.harness.client.cookies.clear()
        headers = {"Authorization": f"Bearer {self.token}"}
        return await self.harness.client.request(method, path, headers=headers, **kwargs)

    def meeting_ids(self) -> list[str]:
        return re.findall(r'<tr data-meeting="([^"]+)">', self.page.text)


async def launch(harness: ToolHarness, claims: dict[str, Any]) -> Browser:
    page = await harness.launch13(claims)
    assert page.status_code == 200, page.text[-800:]
    return Browser(harness, page)


async def schedule(browser: Browser, topic: str = "Office hours", **extra: str) -> str:
    response = await browser.post(
        "/meetings/schedule", topic=topic, duration="45", **(tomorrow() | extra)
    )
    assert response.status_code == 200, re.findall(r"field-error[^>]*>([^<]*)", response.text)
    assert f"Scheduled “{topic}”" in unescape(response.text)
    return browser.meeting_ids()[-1]


async def test_instructor_schedules_and_everyone_in_the_course_sees_it(
    harness: ToolHarness,
) -> None:
    teacher = await launch(harness, TEACHER)
    assert "No upcoming meetings." in teacher.page.text
    uid = await schedule(teacher, "Week 1 seminar")
    assert "Week 1 seminar" in teacher.page.text
    assert "45 min" in teacher.page.text
    student = await launch(harness, STUDENT)
    assert student.meeting_ids() == [uid]
    row = student.page.text.split(f'data-meeting="{uid}"')[1].split("</tr>")[0]
    assert f"/meetings/{uid}/join" in row
    assert "/start" not in row and "/edit" not in row and "/delete" not in row


async def test_the_meeting_is_stored_in_utc_from_the_chosen_time_zone(harness: ToolHarness) -> None:
    teacher = await launch(harness, TEACHER)
    await schedule(teacher)
    async with harness.tool.repo.engine.connect() as conn:
        row = (await conn.execute(meetings.select())).one()
    start = row.start_time if row.start_time.tzinfo else row.start_time.replace(tzinfo=UTC)
    local = start.astimezone(ZoneInfo("America/Chicago"))
    assert (local.hour, local.minute) == (10, 0)
    assert row.timezone == "America/Chicago"
    assert row.join_url.startswith("https://meet.jit.si/OfficeHours-")


async def test_other_courses_do_not_see_the_meeting(harness: ToolHarness) -> None:
    teacher = await launch(harness, TEACHER)
    uid = await schedule(teacher)
    other = await launch(harness, person("teacher", "Instructor", course="chem-200"))
    assert other.meeting_ids() == []
    response = await other.api("GET", f"/api/v1/meetings/{uid}")
    assert response.status_code == 404
    response = await other.post(f"/meetings/{uid}/delete")
    assert response.status_code == 404
    assert teacher.meeting_ids() == [uid]


async def test_schedule_form_mistakes_are_shown_and_nothing_is_stored(harness: ToolHarness) -> None:
    teacher = await launch(harness, TEACHER)
    yesterday = (datetime.now(UTC) - timedelta(days=1)).date().isoformat()
    response = await teacher.post(
        "/meetings/schedule",
        topic="",
        date=yesterday,
        time="25:99",
        duration="0",
        timezone="Nowhere/City",
    )
    assert response.status_code == 422
    text = unescape(response.text)
    assert "Give the meeting a topic." in text
    assert "Choose a time zone from the list." in text
    assert "The start is not a date and time the tool understands." in text
    assert "The duration is 1 to 1440 minutes." in text
    assert await harness.tool.repo.count(meetings) == 0


async def test_host_starts_and_others_join(harness: ToolHarness) -> None:
    teacher = await launch(harness, TEACHER)
    uid = await schedule(teacher)
    start = await teacher.post(f"/meetings/{uid}/start")
    assert start.status_code == 303
    assert start.headers["location"].startswith("https://meet.jit.si/OfficeHours-")
    student = await launch(harness, STUDENT)
    join = await student.post(f"/meetings/{uid}/join")
    assert join.status_code == 303
    refused = await student.post(f"/meetings/{uid}/start")
    assert refused.status_code == 403
    assert "Only the meeting&#39;s host can start it." in refused.text


async def test_a_student_never_receives_the_hosts_start_link(harness: ToolHarness) -> None:
    await set_plugin_settings(
        harness.tool,
        harness.credential,
        "providers",
        {
            "jitsi.server_url": "https://meet.example.edu",
            "jitsi.app_id": "ltipro",
            "jitsi.app_secret": JITSI_SECRET,
        },
    )
    teacher = await launch(harness, TEACHER)
    uid = await schedule(teacher)
    host_start = (await teacher.post(f"/meetings/{uid}/start")).headers["location"]
    host_token = httpx.URL(host_start).params["jwt"]
    claims = jwt.decode(host_token, JITSI_SECRET, algorithms=["HS256"], audience="ltipro")
    assert claims["context"]["user"]["moderator"] is True

    student = await launch(harness, STUDENT)
    listing = await student.api("GET", "/api/v1/meetings")
    single = await student.api("GET", f"/api/v1/meetings/{uid}")
    api_start = await student.api("POST", f"/api/v1/meetings/{uid}/start")
    join = await student.api("POST", f"/api/v1/meetings/{uid}/join")
    assert api_start.status_code == 403
    for text in (student.page.text, listing.text, single.text, api_start.text, join.text):
        assert host_token not in text
    meetings_seen = [*listing.json()["upcoming"], single.json()]
    assert all("start_url" not in m and "join_url" not in m for m in meetings_seen)
    assert "start_url" not in api_start.json()
    student_token = httpx.URL(join.json()["join_url"]).params["jwt"]
    claims = jwt.decode(student_token, JITSI_SECRET, algorithms=["HS256"], audience="ltipro")
    assert claims["context"]["user"]["moderator"] is False
    assert claims["context"]["user"]["email"] == "student@example.edu"


async def test_instructor_edits_and_deletes(harness: ToolHarness) -> None:
    teacher = await launch(harness, TEACHER)
    uid = await schedule(teacher)
    form = await teacher.post(f"/meetings/{uid}/edit")
    assert form.status_code == 200
    assert 'value="Office hours"' in form.text and f"/meetings/{uid}/update" in form.text
    saved = await teacher.post(
        f"/meetings/{uid}/update", topic="Office hours (moved)", duration="30", **tomorrow(14)
    )
    assert saved.status_code == 200
    assert "Office hours (moved)" in unescape(saved.text) and "30 min" in saved.text
    gone = await teacher.post(f"/meetings/{uid}/delete")
    assert gone.status_code == 200
    assert teacher.meeting_ids() == []
    assert await harness.tool.repo.count(meetings) == 0


async def test_students_cannot_schedule_unless_the_credential_lets_them(
    harness: ToolHarness,
) -> None:
    student = await launch(harness, STUDENT)
    assert "Schedule a meeting" not in student.page.text
    refused = await student.post("/meetings/schedule", topic="Study group", **tomorrow())
    assert refused.status_code == 403
    assert await harness.tool.repo.count(meetings) == 0


async def test_students_host_their_own_meetings_when_allowed(harness: ToolHarness) -> None:
    credential = await harness.refresh_credential()
    await harness.tool.repo.set_options(
        credential, credential.options.updated({"students_may_host": True})
    )
    student = await launch(harness, STUDENT)
    uid = await schedule(student, "Study group")
    assert "(student)" in student.page.text
    assert (await student.post(f"/meetings/{uid}/start")).status_code == 303
    other = await launch(harness, person("other", "Learner"))
    assert (await other.post(f"/meetings/{uid}/delete")).status_code == 403
    assert (await other.post(f"/meetings/{uid}/start")).status_code == 403
    teacher = await launch(harness, TEACHER)
    row = teacher.page.text.split(f'data-meeting="{uid}"')[1].split("</tr>")[0]
    assert "/delete" in row and "/start" not in row
    assert (await teacher.post(f"/meetings/{uid}/delete")).status_code == 200


async def test_json_api_covers_every_action(harness: ToolHarness) -> None:
    teacher = await launch(harness, TEACHER)
    start = (datetime.now(UTC) + timedelta(days=2)).replace(microsecond=0)
    created = await teacher.api(
        "POST",
        "/api/v1/meetings",
        json={
            "topic": "API meeting",
            "start_time": start.isoformat(),
            "duration": 30,
            "timezone": "UTC",
        },
    )
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["topic"] == "API meeting" and body["you_host"] is True
    assert "start_url" not in body and "join_url" not in body
    uid = body["id"]
    listing = (await teacher.api("GET", "/api/v1/meetings")).json()
    assert [m["id"] for m in listing["upcoming"]] == [uid]
    assert listing["provider"]["name"] == "jitsi"
    assert "recordings" not in listing["provider"]["features"]
    patched = await teacher.api("PATCH", f"/api/v1/meetings/{uid}", json={"duration": 90})
    assert patched.status_code == 200 and patched.json()["duration"] == 90
    started = await teacher.api("POST", f"/api/v1/meetings/{uid}/start")
    assert started.status_code == 200 and started.json()["start_url"].startswith("https://")
    assert started.headers["cache-control"] == "no-store"
    assert (await teacher.api("DELETE", f"/api/v1/meetings/{uid}")).status_code == 204
    assert (await teacher.api("GET", f"/api/v1/meetings/{uid}")).status_code == 404


async def test_json_api_refuses_bad_input_with_4xx(harness: ToolHarness) -> None:
    teacher = await launch(harness, TEACHER)
    not_json = await teacher.api("POST", "/api/v1/meetings", content=b"{not json")
    assert not_json.status_code == 400 and not_json.json()["error"] == "bad_json"
    a_list = await teacher.api("POST", "/api/v1/meetings", json=[1, 2])
    assert a_list.status_code == 400
    invalid = await teacher.api("POST", "/api/v1/meetings", json={"topic": 5, "duration": "x"})
    assert invalid.status_code == 422
    assert {"start", "duration"} <= set(invalid.json()["fields"])
    assert await harness.tool.repo.count(meetings) == 0
    harness.client.cookies.clear()
    anonymous = await harness.client.get("/api/v1/meetings")
    assert anonymous.status_code == 401


def test_weekly_meetings_keep_their_local_time_across_daylight_saving() -> None:
    chicago = ZoneInfo("America/Chicago")
    first = datetime(2026, 10, 26, 9, 0, tzinfo=chicago)  # a Monday, before the change
    weekly = Recurrence(type="weekly", weekly_days=(2, 4), end_times=4)  # Mon, Wed
    starts = occurrences(first.astimezone(UTC), weekly, "America/Chicago")
    local = [s.astimezone(chicago) for s in starts]
    assert [d.strftime("%a %d %H:%M") for d in local] == [
        "Mon 26 09:00",
        "Wed 28 09:00",
        "Mon 02 09:00",
        "Wed 04 09:00",
    ]
    assert {s.utcoffset() for s in local} == {timedelta(hours=-5), timedelta(hours=-6)}


def test_recurrence_form_reads_repeats_and_refuses_nonsense() -> None:
    now = datetime(2026, 11, 27, 12, tzinfo=UTC)
    form = MeetingForm.parse(
        {
            "topic": "Lab",
            "date": "2026-12-01",
            "time": "09:30",
            "duration": "50",
            "timezone": "Europe/Paris",
            "repeat": "weekly",
            "weekly_days": ["tue", "thu"],
            "end_times": "6",
        },
        "UTC",
        now,
    )
    assert form.recurrence == Recurrence(type="weekly", weekly_days=(3, 5), end_times=6)
    assert len(occurrences(form.start_time, form.recurrence, form.timezone)) == 6
    with pytest.raises(FormError) as refused:
        MeetingForm.parse(
            {"topic": "Lab", "date": "2026-12-01", "time": "09:30", "repeat": "hourly"}, "UTC", now
        )
    assert "repeat" in refused.value.errors
    with pytest.raises(FormError) as refused:
        MeetingForm.parse(
            {
                "topic": "Lab",
                "date": "2026-12-01",
                "time": "09:30",
                "repeat": "daily",
                "end_times": "500",
            },
            "UTC",
            now,
        )
    assert "end_times" in refused.value.errors


async def test_a_topic_and_description_with_markup_are_shown_as_text_to_everyone(
    harness: ToolHarness,
) -> None:
    teacher = await launch(harness, TEACHER)
    topic = "<script>alert('topic')</script>"
    await schedule(teacher, topic, agenda='<img src=x onerror="alert(2)">')
    student = await launch(harness, STUDENT)
    for page in (teacher.page.text, student.page.text):
        assert "<script>alert(" not in page and "<img src=x" not in page
        assert "&lt;script&gt;alert(" in page
