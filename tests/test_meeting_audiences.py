"""Meetings for chosen sections or groups: the schedule form and API offer what the
course's LMS lists (``course_audiences``), check the choice against it, show it in the
Section/Group column, and list section meetings to those sections' students."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from html import unescape
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update

from ltipro.context import CourseIdentifiers, LaunchContext, LaunchMessage
from ltipro.extension import Audience, LmsDetails
from ltipro.hookspecs import hookimpl
from ltipro.lmsapi import LmsApi, LmsNotAuthorized, LmsUnavailable
from ltipro.lti.claims import standard_launch_context
from ltipro.meetings.audiences import CACHE_KIND
from ltipro.meetings.model import audience_from_json, launch_sections, may_see
from ltipro.storage.meetings_tables import meetings
from ltipro.testing.harness import ToolHarness

CLAIM = "https://purl.imsglobal.org/spec/lti/claim/"
LIS = "http://purl.imsglobal.org/vocab/lis/v2/"

MONDAY = Audience("section", "41", "Monday lab")
THURSDAY = Audience("section", "42", "Thursday lab")
PROJECT = Audience("group", "77", "Project team A")


class SectionsLms:
    """An LMS plugin that lists its courses' sections and groups (or fails as told)."""

    def __init__(self) -> None:
        self.answer: Any = [MONDAY, THURSDAY, PROJECT]
        self.calls: list[tuple[str, str | None]] = []

    @hookimpl
    def lms_details(self) -> LmsDetails:
        return LmsDetails(name="sectionlms", title="Section LMS", product_family_codes=("slms",))

    @hookimpl
    def identify_lms(self, message: LaunchMessage) -> str | None:
        return "sectionlms" if message.product_family_code == "slms" else None

    @hookimpl
    def launch_context(self, message: LaunchMessage) -> LaunchContext:
        return standard_launch_context(message, lms="sectionlms")

    @hookimpl
    async def course_audiences(
        self, course: CourseIdentifiers, api: LmsApi
    ) -> list[Audience] | None:
        self.calls.append((course.context_id, api.user_id))
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


def person(user: str, role: str, sections: str | None = None) -> dict[str, Any]:
    claims: dict[str, Any] = {
        "sub": user,
        "name": user.title(),
        "email": f"{user}@example.edu",
        CLAIM + "roles": [LIS + f"membership#{role}"],
        CLAIM + "context": {"id": "bio-101", "title": "Biology"},
        CLAIM + "resource_link": {"id": "link-bio"},
        CLAIM + "tool_platform": {"product_family_code": "slms", "guid": "lms-1"},
    }
    if sections is not None:
        claims[CLAIM + "custom"] = {"canvas_section_ids": sections}
    return claims


TEACHER = person("teacher", "Instructor")


@pytest.fixture
def lms() -> SectionsLms:
    return SectionsLms()


@pytest.fixture
async def harness(
    database_url: str, tmp_path: Path, lms: SectionsLms
) -> AsyncIterator[ToolHarness]:
    async with ToolHarness(
        database_url=database_url,
        instance=tmp_path / "instance",
        plugins=[],
        extra_plugins=[("sectionlms", lms)],
    ) as h:
        yield h


class Browser:
    def __init__(self, harness: ToolHarness, page: httpx.Response) -> None:
        self.harness = harness
        self.page = page
        self.token = harness.session_token(page)

    async def post(self, path: str, **fields: Any) -> httpx.Response:
        self.harness.client.cookies.clear()
        response = await self.harness.client.post(path, data={"session": self.token, **fields})
        if response.status_code < 300:
            self.page = response
        return response

    async def api(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        self.harness.client.cookies.clear()
        headers = {"Authorization": f"Bearer {self.token}"}
        return await self.harness.client.request(method, path, headers=headers, **kwargs)

    def meeting_ids(self) -> list[str]:
        return re.findall(r'<tr data-meeting="([^"]+)">', self.page.text)

    def column(self, uid: str) -> str:
        row = self.page.text.split(f'<tr data-meeting="{uid}">')[1].split("</tr>")[0]
        match = re.search(r'data-label="Section/Group" data-audience>([^<]*)<', row)
        assert match, row
        return unescape(match.group(1))


async def launch(harness: ToolHarness, claims: dict[str, Any]) -> Browser:
    page = await harness.launch13(claims)
    assert page.status_code == 200, page.text[-800:]
    return Browser(harness, page)


def tomorrow() -> dict[str, str]:
    day = (datetime.now(UTC) + timedelta(days=1)).date()
    return {"date": day.isoformat(), "time": "10:00", "timezone": "UTC", "duration": "45"}


async def schedule(browser: Browser, topic: str, audience: list[str] | None = None) -> str:
    fields: dict[str, Any] = {"topic": topic, **tomorrow()}
    if audience is not None:
        fields["audience"] = audience
    response = await browser.post("/meetings/schedule", **fields)
    assert response.status_code == 200, re.findall(r"field-error[^>]*>([^<]*)", response.text)
    assert f"Scheduled “{topic}”" in unescape(response.text)
    found = re.search(
        rf'<tr data-meeting="([^"]+)">\s*<td data-label="Topic"><strong>{re.escape(topic)}<',
        response.text,
    )
    assert found
    return found.group(1)


def checkboxes(page: str) -> dict[str, tuple[str, bool]]:
    """The audience checkboxes: value -> (label text, checked)."""
    out = {}
    for match in re.finditer(
        r'<label for="(audience-[^"]+)"><input type="checkbox" id="\1" name="audience" '
        r'value="([^"]+)" ?(checked)?> ([^<]*)</label>',
        page,
    ):
        out[match.group(2)] = (unescape(match.group(4)), bool(match.group(3)))
    return out


async def test_the_form_offers_the_courses_sections_and_groups_as_labelled_checkboxes(
    harness: ToolHarness, lms: SectionsLms
) -> None:
    teacher = await launch(harness, TEACHER)
    assert checkboxes(teacher.page.text) == {
        "section:41": ("Monday lab", False),
        "section:42": ("Thursday lab", False),
        "group:77": ("Project team A", False),
    }
    assert "<legend>For" in teacher.page.text and "<h3>Sections</h3>" in teacher.page.text
    assert lms.calls == [("bio-101", "teacher")]


async def test_a_meeting_for_a_section_and_a_group_is_stored_and_listed_by_name(
    harness: ToolHarness,
) -> None:
    teacher = await launch(harness, TEACHER)
    uid = await schedule(teacher, "Lab review", ["section:41", "group:77"])
    whole = await schedule(teacher, "Lecture")
    assert "<th>Section/Group</th>" in teacher.page.text
    assert teacher.column(uid) == "Monday lab, Project team A"
    assert teacher.column(whole) == "Whole course"
    async with harness.tool.repo.engine.connect() as conn:
        stored = (
            await conn.execute(select(meetings.c.audience).where(meetings.c.uid == uid))
        ).scalar_one()
    assert stored == [
        {"kind": "section", "id": "41", "name": "Monday lab"},
        {"kind": "group", "id": "77", "name": "Project team A"},
    ]
    body = (await teacher.api("GET", f"/api/v1/meetings/{uid}")).json()
    assert body["audience"] == [
        {"key": "section:41", "kind": "section", "id": "41", "name": "Monday lab"},
        {"key": "group:77", "kind": "group", "id": "77", "name": "Project team A"},
    ]


async def test_page_loads_reuse_the_lms_answer_for_a_few_minutes(
    harness: ToolHarness, lms: SectionsLms
) -> None:
    teacher = await launch(harness, TEACHER)
    await teacher.post("/meetings")
    await schedule(teacher, "Lab review", ["section:42"])
    colleague = await launch(harness, person("colleague", "Instructor"))
    assert "Thursday lab" in colleague.page.text
    assert lms.calls == [("bio-101", "teacher")]
    # Once the entry is gone (expired), the LMS is asked again.
    await harness.tool.store.take(CACHE_KIND, str(await course_row_id(harness)))
    await colleague.post("/meetings")
    assert lms.calls == [("bio-101", "teacher"), ("bio-101", "colleague")]


async def course_row_id(harness: ToolHarness) -> int:
    async with harness.tool.repo.engine.connect() as conn:
        return int((await conn.execute(select(meetings.c.course_id))).scalars().first() or 1)


async def test_students_are_not_offered_the_choice_and_the_lms_is_not_asked(
    harness: ToolHarness, lms: SectionsLms
) -> None:
    student = await launch(harness, person("sam", "Learner", sections="41"))
    assert checkboxes(student.page.text) == {}
    assert lms.calls == []
    refused = await student.api("GET", "/api/v1/audiences")
    assert refused.status_code == 403


async def test_students_who_host_hold_meetings_for_the_whole_course_only(
    harness: ToolHarness, lms: SectionsLms
) -> None:
    credential = await harness.refresh_credential()
    await harness.tool.repo.set_options(
        credential, credential.options.updated({"students_may_host": True})
    )
    student = await launch(harness, person("sam", "Learner", sections="41"))
    assert "Schedule a meeting" in student.page.text
    assert checkboxes(student.page.text) == {}
    refused = await student.post(
        "/meetings/schedule", topic="Study group", audience="section:41", **tomorrow()
    )
    assert refused.status_code == 422
    assert "Only instructors hold meetings for sections or groups." in unescape(refused.text)
    uid = await schedule(student, "Study group")
    assert student.column(uid) == "Whole course"
    assert lms.calls == []


async def test_an_audience_the_lms_did_not_list_is_refused_and_nothing_is_stored(
    harness: ToolHarness,
) -> None:
    teacher = await launch(harness, TEACHER)
    response = await teacher.post(
        "/meetings/schedule", topic="Sneaky", audience=["section:99"], **tomorrow()
    )
    assert response.status_code == 422
    assert "Choose sections or groups of this course." in unescape(response.text)
    malformed = await teacher.post(
        "/meetings/schedule", topic="Sneaky", audience="course:1", **tomorrow()
    )
    assert malformed.status_code == 422
    assert "Choose sections or groups from the list." in unescape(malformed.text)
    api = await teacher.api(
        "POST",
        "/api/v1/meetings",
        json={
            "topic": "API",
            "start_time": (datetime.now(UTC) + timedelta(days=1)).isoformat(),
            "audience": ["group:1", 5],
        },
    )
    assert api.status_code == 422
    assert "audience" in api.json()["fields"]
    weird = await teacher.api(
        "POST",
        "/api/v1/meetings",
        json={
            "topic": "API",
            "start_time": (datetime.now(UTC) + timedelta(days=1)).isoformat(),
            "audience": {"kind": "section"},
        },
    )
    assert weird.status_code == 422
    assert await harness.tool.repo.count(meetings) == 0


async def test_the_api_takes_audience_keys_and_lists_the_choices(harness: ToolHarness) -> None:
    teacher = await launch(harness, TEACHER)
    choices = await teacher.api("GET", "/api/v1/audiences")
    assert choices.status_code == 200
    assert choices.json() == {
        "available": True,
        "reason": None,
        "sections": [
            {"key": "section:41", "kind": "section", "id": "41", "name": "Monday lab"},
            {"key": "section:42", "kind": "section", "id": "42", "name": "Thursday lab"},
        ],
        "groups": [{"key": "group:77", "kind": "group", "id": "77", "name": "Project team A"}],
    }
    created = await teacher.api(
        "POST",
        "/api/v1/meetings",
        json={
            "topic": "API",
            "start_time": (datetime.now(UTC) + timedelta(days=1)).isoformat(),
            "audience": ["section:42", {"kind": "group", "id": "77"}],
        },
    )
    assert created.status_code == 201, created.text
    uid = created.json()["id"]
    assert [a["name"] for a in created.json()["audience"]] == ["Thursday lab", "Project team A"]
    kept = await teacher.api("PATCH", f"/api/v1/meetings/{uid}", json={"topic": "Renamed"})
    assert [a["key"] for a in kept.json()["audience"]] == ["section:42", "group:77"]
    cleared = await teacher.api("PATCH", f"/api/v1/meetings/{uid}", json={"audience": []})
    assert cleared.json()["audience"] == []


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        (None, "Section LMS does not tell the tool about sections and groups"),
        (LmsUnavailable("Section LMS answered 503"), "Section LMS did not answer"),
        (LmsNotAuthorized("no token"), "Section LMS has not authorised the tool"),
        (RuntimeError("a bug in the plugin"), "Section LMS could not list"),
        ("not a list", "Section LMS could not list"),
    ],
)
async def test_when_the_lms_cannot_tell_the_form_offers_the_whole_course_and_says_why(
    harness: ToolHarness, lms: SectionsLms, answer: Any, reason: str
) -> None:
    lms.answer = answer
    teacher = await launch(harness, TEACHER)
    assert checkboxes(teacher.page.text) == {}
    note = re.search(r"<p class=\"muted note\" data-audience-note>([^<]*)</p>", teacher.page.text)
    assert note is not None
    assert unescape(note.group(1)).startswith(reason)
    assert "so meetings are for the whole course" in note.group(1)
    uid = await schedule(teacher, "Lecture")
    assert teacher.column(uid) == "Whole course"
    refused = await teacher.post(
        "/meetings/schedule", topic="Lab", audience="section:41", **tomorrow()
    )
    assert refused.status_code == 422
    assert reason in unescape(refused.text)
    api = (await teacher.api("GET", "/api/v1/audiences")).json()
    assert api["available"] is False and api["reason"].startswith(reason)
    assert api["sections"] == [] and api["groups"] == []
    # A failure is remembered briefly for this person, so the pages above asked once.
    assert len(lms.calls) == 1


async def test_editing_shows_the_chosen_audience_and_keeps_it_when_the_lms_is_down(
    harness: ToolHarness, lms: SectionsLms
) -> None:
    teacher = await launch(harness, TEACHER)
    uid = await schedule(teacher, "Lab review", ["section:41"])
    form = await teacher.post(f"/meetings/{uid}/edit")
    assert checkboxes(form.text)["section:41"] == ("Monday lab", True)
    assert checkboxes(form.text)["section:42"] == ("Thursday lab", False)
    lms.answer = LmsUnavailable("down")
    await harness.tool.store.take(CACHE_KIND, str(await course_row_id(harness)))
    saved = await teacher.post(
        f"/meetings/{uid}/update", topic="Lab review (moved)", audience="section:41", **tomorrow()
    )
    assert saved.status_code == 200, re.findall(r"field-error[^>]*>([^<]*)", saved.text)
    assert teacher.column(uid) == "Monday lab"
    widened = await teacher.post(
        f"/meetings/{uid}/update",
        topic="Lab review",
        audience=["section:41", "section:42"],
        **tomorrow(),
    )
    assert widened.status_code == 422
    assert "did not answer" in unescape(widened.text)


async def test_students_see_the_meetings_of_their_sections_groups_and_the_course(
    harness: ToolHarness,
) -> None:
    teacher = await launch(harness, TEACHER)
    monday = await schedule(teacher, "Monday lab session", ["section:41"])
    thursday = await schedule(teacher, "Thursday lab session", ["section:42"])
    group = await schedule(teacher, "Project meeting", ["group:77"])
    lecture = await schedule(teacher, "Lecture")
    everything = {monday, thursday, group, lecture}
    assert set(teacher.meeting_ids()) == everything

    sam = await launch(harness, person("sam", "Learner", sections="41"))
    assert set(sam.meeting_ids()) == {monday, group, lecture}
    listed = (await sam.api("GET", "/api/v1/meetings")).json()["upcoming"]
    assert {m["id"] for m in listed} == {monday, group, lecture}
    hidden = await sam.api("GET", f"/api/v1/meetings/{thursday}")
    assert hidden.status_code == 404

    both = await launch(harness, person("kim", "Learner", sections="41,42"))
    assert set(both.meeting_ids()) == everything
    # A launch that does not say which sections someone is in hides nothing.
    unknown = await launch(harness, person("lee", "Learner"))
    assert set(unknown.meeting_ids()) == everything


async def test_meetings_stored_with_the_earlier_string_audience_still_read(
    harness: ToolHarness,
) -> None:
    teacher = await launch(harness, TEACHER)
    uid = await schedule(teacher, "Old meeting")
    async with harness.tool.repo.engine.begin() as conn:
        await conn.execute(
            update(meetings).where(meetings.c.uid == uid).values(audience=["section:41", "Room B"])
        )
    await teacher.post("/meetings")
    assert teacher.column(uid) == "Section 41, Room B"
    assert audience_from_json(["section:41", "Room B", 7, {"kind": "team", "id": "1"}]) == (
        Audience("section", "41", "Section 41"),
        Audience("group", "Room B", "Room B"),
    )


def test_who_sees_a_meeting_for_sections() -> None:
    from ltipro.meetings.model import Meeting

    meeting = Meeting(
        id=1,
        uid="u",
        credential_id=1,
        course_id=1,
        provider="jitsi",
        provider_meeting_id="room",
        topic="t",
        agenda="",
        start_time=datetime.now(UTC),
        duration=30,
        timezone="UTC",
        recurrence=None,
        join_url="https://meet.example/room",
        host_user_id="host",
        host_name=None,
        host_email="h@example.edu",
        host_role="student",
        host_account_id="h",
        audience=(THURSDAY,),
    )
    assert may_see(meeting, "instructor", "x", frozenset())
    assert may_see(meeting, "student", "host", frozenset())  # the student who hosts it
    assert may_see(meeting, "student", "x", frozenset({"42"}))
    assert not may_see(meeting, "student", "x", frozenset({"41"}))
    assert may_see(meeting, "student", "x", None)
    assert launch_sections({"custom_section_ids": " 41 , 42 "}) == {"41", "42"}
    assert launch_sections({}) is None
    # Said, but in none of them: only meetings that are not for sections only.
    assert not may_see(meeting, "student", "x", launch_sections({"custom_section_ids": ""}))


async def test_the_openapi_document_describes_audiences(harness: ToolHarness) -> None:
    document = (await harness.client.get("/api/v1/openapi.json")).json()
    assert "get" in document["paths"]["/audiences"]
    schema = document["components"]["schemas"]["MeetingInput"]["properties"]["audience"]
    assert schema["type"] == "array" and schema["maxItems"] == 50


async def test_an_lms_without_sections_is_told_at_once_without_asking_or_caching(
    harness: ToolHarness,
) -> None:
    claims = person("teacher", "Instructor")
    del claims[CLAIM + "tool_platform"]  # the generic plugin serves it: no such hook
    teacher = await launch(harness, claims)
    note = re.search(r"<p class=\"muted note\" data-audience-note>([^<]*)</p>", teacher.page.text)
    assert note is not None
    assert unescape(note.group(1)) == (
        "Other LMS (standard LTI) does not tell the tool about sections and groups, "
        "so meetings are for the whole course."
    )
    assert checkboxes(teacher.page.text) == {}
    for key in ("1", "1:teacher"):
        assert await harness.tool.store.peek(CACHE_KIND, key) is None


async def test_entries_the_tool_cannot_store_are_left_out_of_the_choices(
    harness: ToolHarness, lms: SectionsLms
) -> None:
    lms.answer = [
        MONDAY,
        "section:42",
        Audience("group", "has spaces", "Bad id"),
        Audience("team", "5", "Not a kind"),  # type: ignore[arg-type]
        MONDAY,
        Audience("group", "78", ""),
    ]
    teacher = await launch(harness, TEACHER)
    assert checkboxes(teacher.page.text) == {
        "section:41": ("Monday lab", False),
        "group:78": ("78", False),
    }
