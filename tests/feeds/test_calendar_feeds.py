"""Calendar feeds end to end: the links on the meetings page, what a subscriber fetches
without any session, resets that revoke, and the tokens the database keeps (hashes only).

Every feed is checked with the strict RFC 5545 reader in ``ical_check``.
"""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime, timedelta
from html import unescape
from typing import Any
from zoneinfo import ZoneInfo

import httpx
from ical_check import Component, parse
from sqlalchemy import select

from ltipro.meetings.model import occurrences
from ltipro.plugin_settings import set_plugin_settings
from ltipro.storage.feed_tables import feed_tokens
from ltipro.storage.meetings_tables import meetings
from ltipro.testing.harness import TOOL_URL, ToolHarness

CLAIM = "https://purl.imsglobal.org/spec/lti/claim/"
LIS = "http://purl.imsglobal.org/vocab/lis/v2/"


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


class User:
    """One launched person: their page, their session token, their feed links."""

    def __init__(self, harness: ToolHarness, page: httpx.Response) -> None:
        self.harness = harness
        self.page = page
        self.token = harness.session_token(page)

    def link(self, which: str) -> str | None:
        """A feed link on the page shown now (after "Show calendar links")."""
        match = re.search(rf'value="([^"]*)" data-feed="{which}"', self.page.text)
        return unescape(match.group(1)) if match else None

    async def show_links(self) -> None:
        assert 'action="/meetings/feeds"' in self.page.text  # the page offers the links
        response = await self.post("/meetings/feeds")
        assert response.status_code == 200

    async def post(self, path: str, **fields: str) -> httpx.Response:
        self.harness.client.cookies.clear()
        response = await self.harness.client.post(path, data={"session": self.token, **fields})
        if response.status_code < 500:
            self.page = response
        return response

    async def api(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        self.harness.client.cookies.clear()
        headers = {"Authorization": f"Bearer {self.token}"}
        return await self.harness.client.request(method, path, headers=headers, **kwargs)


async def launch(harness: ToolHarness, claims: dict[str, Any]) -> User:
    """A launched user whose page shows the calendar links."""
    page = await harness.launch13(claims)
    assert page.status_code == 200, page.text[-500:]
    assert "data-feed=" not in page.text  # not made on every page view
    user = User(harness, page)
    await user.show_links()
    return user


async def schedule(user: User, **fields: Any) -> dict[str, Any]:
    start = (datetime.now(UTC) + timedelta(days=2)).replace(microsecond=0)
    body = {"topic": "Office hours", "start_time": start.isoformat(), "duration": 45} | fields
    response = await user.api("POST", "/api/v1/meetings", json=body)
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


async def fetch(harness: ToolHarness, url: str, **headers: str) -> httpx.Response:
    """What a calendar program does: a plain GET, no cookie, no session."""
    assert url.startswith(TOOL_URL + "/feeds/")
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=harness.app), base_url=TOOL_URL
    ) as stranger:
        return await stranger.get(url.removeprefix(TOOL_URL), headers=headers)


async def calendar(harness: ToolHarness, url: str) -> Component:
    response = await fetch(harness, url)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/calendar; charset=utf-8"
    return parse(response.content)


TEACHER = person("teacher", "Instructor")
STUDENT = person("student", "Learner")


async def test_a_course_feed_shows_its_meetings_to_anyone_with_the_link(
    harness: ToolHarness,
) -> None:
    teacher = await launch(harness, TEACHER)
    created = await schedule(
        teacher,
        topic="Lab, part 1; bring a laptop \\ charger",
        agenda="Read chapter 2.\nThen try exercise 3, 4; 5.",
    )
    student = await launch(harness, STUDENT)
    url = student.link("course")
    assert url and url == teacher.link("course")
    assert "Subscribe to calendar" in student.page.text

    response = await fetch(harness, url)
    assert response.status_code == 200
    assert response.headers["cache-control"] == "private, max-age=300"
    assert response.headers["referrer-policy"] == "no-referrer"
    feed = parse(response.content)
    assert feed.text("X-WR-CALNAME") == "Course bio-101: meetings"
    [event] = feed.events
    assert event.text("SUMMARY") == "Lab, part 1; bring a laptop \\ charger"
    start = datetime.fromisoformat(created["start_time"])
    assert event.time("DTSTART") == start
    assert event.time("DTEND") == start + timedelta(minutes=45)
    assert event.one("STATUS") == "CONFIRMED"
    async with harness.tool.repo.engine.connect() as conn:
        join_url = (await conn.execute(select(meetings.c.join_url))).scalar_one()
    description = event.text("DESCRIPTION")
    assert description.startswith("Read chapter 2.\nThen try exercise 3, 4; 5.\n")
    assert f"Join: {join_url}" in description and "Course: Course bio-101" in description
    assert event.one("URL") == join_url
    assert event.one("UID") == f"{created['id']}@tool.test"


async def test_a_feed_never_carries_the_hosts_start_link(harness: ToolHarness) -> None:
    await set_plugin_settings(
        harness.tool,
        harness.credential,
        "providers",
        {
            "jitsi.server_url": "https://meet.example.edu",
            "jitsi.app_id": "ltipro",
            "jitsi.app_secret": "jitsi-app-secret-0123456789abcdef",
        },
    )
    teacher = await launch(harness, TEACHER)
    created = await schedule(teacher)
    start = await teacher.api("POST", f"/api/v1/meetings/{created['id']}/start")
    host_token = httpx.URL(start.json()["start_url"]).params["jwt"]
    url = teacher.link("course")
    assert url
    body = (await fetch(harness, url)).text
    assert "BEGIN:VEVENT" in body
    assert host_token not in body and "jwt=" not in body


async def test_recurring_meetings_are_expanded_at_their_local_time_across_a_dst_change(
    harness: ToolHarness,
) -> None:
    teacher = await launch(harness, TEACHER)
    # Weekly at 10:00 in Chicago, across the start of daylight saving time in March.
    first = datetime(datetime.now(UTC).year + 1, 3, 7, 10, 0, tzinfo=ZoneInfo("America/Chicago"))
    created = await schedule(
        teacher,
        topic="Seminar",
        start_time=first.isoformat(),
        timezone="America/Chicago",
        repeat="weekly",
        weekly_days=["sun"],
        end_times=3,
    )
    url = teacher.link("course")
    assert url
    feed = await calendar(harness, url)
    starts = [e.time("DTSTART") for e in feed.events]
    assert [s.astimezone(ZoneInfo("America/Chicago")).hour for s in starts] == [10, 10, 10]
    assert [s.hour for s in starts] == [16, 15, 15]  # UTC-6, then UTC-5
    async with harness.tool.repo.engine.connect() as conn:
        row = (await conn.execute(select(meetings))).one()
    from ltipro.meetings.model import recurrence_from_json

    expected = occurrences(
        row.start_time.replace(tzinfo=UTC) if row.start_time.tzinfo is None else row.start_time,
        recurrence_from_json(row.recurrence),
        row.timezone,
    )
    assert starts == expected
    uids = [e.one("UID") for e in feed.events]
    assert len(set(uids)) == 3
    assert all(u.startswith(created["id"] + "-") and u.endswith("@tool.test") for u in uids)
    # The same feed fetched again names the same events: subscribers update, not duplicate.
    again = await calendar(harness, url)
    assert [e.one("UID") for e in again.events] == uids


async def test_edits_show_under_the_same_uid_and_deleted_meetings_disappear(
    harness: ToolHarness,
) -> None:
    teacher = await launch(harness, TEACHER)
    kept = await schedule(teacher, topic="Kept")
    gone = await schedule(teacher, topic="Gone")
    url = teacher.link("course")
    assert url
    before = await calendar(harness, url)
    assert sorted(e.text("SUMMARY") for e in before.events) == ["Gone", "Kept"]
    changed = await teacher.api("PATCH", f"/api/v1/meetings/{kept['id']}", json={"topic": "Moved"})
    assert changed.status_code == 200
    assert (await teacher.api("DELETE", f"/api/v1/meetings/{gone['id']}")).status_code == 204
    after = await calendar(harness, url)
    [event] = after.events
    assert event.text("SUMMARY") == "Moved"
    assert event.one("UID") == f"{kept['id']}@tool.test"


async def test_the_feed_answers_an_unchanged_fetch_with_304(harness: ToolHarness) -> None:
    teacher = await launch(harness, TEACHER)
    await schedule(teacher)
    url = teacher.link("course")
    assert url
    first = await fetch(harness, url)
    etag = first.headers["etag"]
    assert (await fetch(harness, url, **{"If-None-Match": etag})).status_code == 304
    await schedule(teacher, topic="Another")
    assert (await fetch(harness, url, **{"If-None-Match": etag})).status_code == 200


async def test_unknown_malformed_and_reset_links_all_answer_the_same_404(
    harness: ToolHarness,
) -> None:
    teacher = await launch(harness, TEACHER)
    old = teacher.link("course")
    assert old
    reset = await teacher.post("/meetings/feeds/course/reset")
    assert reset.status_code == 200
    assert "the old one no longer works" in unescape(reset.text)
    new = teacher.link("course")
    assert new and new != old
    assert (await fetch(harness, new)).status_code == 200
    token = old.rsplit("/", 1)[1].removesuffix(".ics")
    forged = token[:-1] + ("A" if token[-1] != "A" else "B")
    answers = [
        await fetch(harness, old),
        await fetch(harness, f"{TOOL_URL}/feeds/{forged}.ics"),
        await fetch(harness, f"{TOOL_URL}/feeds/short.ics"),
        await fetch(harness, f"{TOOL_URL}/feeds/{'%27' * 43}.ics"),
    ]
    assert {a.status_code for a in answers} == {404}
    assert len({a.text for a in answers}) == 1
    assert all("BEGIN:VCALENDAR" not in a.text for a in answers)
    assert (await harness.client.post(new.removeprefix(TOOL_URL))).status_code == 405


async def test_only_instructors_reset_the_course_link_and_each_user_their_own(
    harness: ToolHarness,
) -> None:
    teacher = await launch(harness, TEACHER)
    student = await launch(harness, STUDENT)
    course = student.link("course")
    mine = student.link("mine")
    assert course and mine and mine != course and mine != teacher.link("mine")
    assert "/meetings/feeds/course/reset" not in student.page.text
    assert "/meetings/feeds/course/reset" in teacher.page.text

    refused = await student.api("POST", "/api/v1/feeds/course/reset")
    assert refused.status_code == 403 and refused.json()["error"] == "not_allowed"
    page = await student.post("/meetings/feeds/course/reset")
    assert page.status_code == 403
    assert (await fetch(harness, course)).status_code == 200

    listed = await student.api("GET", "/api/v1/feeds")
    assert listed.json() == {"course": course, "mine": mine, "may_reset_course": False}
    renewed = await student.api("POST", "/api/v1/feeds/mine/reset")
    assert renewed.status_code == 200
    assert renewed.json()["mine"] != mine and renewed.json()["course"] == course
    assert (await fetch(harness, mine)).status_code == 404
    assert (await fetch(harness, renewed.json()["mine"])).status_code == 200
    # The teacher's own feed was not touched by the student's reset.
    teacher_mine = teacher.link("mine")
    assert teacher_mine and (await fetch(harness, teacher_mine)).status_code == 200
    assert (await harness.client.get("/api/v1/feeds")).status_code == 401


async def test_a_users_feed_gathers_the_courses_they_launched_in(harness: ToolHarness) -> None:
    for course in ("bio-101", "chem-201", "phys-301"):
        teacher = await launch(harness, person("teacher", "Instructor", course))
        await schedule(teacher, topic=f"Meeting of {course}")
    await launch(harness, person("student", "Learner", "bio-101"))
    student = await launch(harness, person("student", "Learner", "chem-201"))
    mine = student.link("mine")
    assert mine
    feed = await calendar(harness, mine)
    assert feed.text("X-WR-CALNAME") == "My meetings"
    assert sorted(e.text("SUMMARY") for e in feed.events) == [
        "Meeting of bio-101",
        "Meeting of chem-201",
    ]
    courses = {e.text("DESCRIPTION").rsplit("Course: ", 1)[1].split("\n")[0] for e in feed.events}
    assert courses == {"Course bio-101", "Course chem-201"}


async def test_the_database_keeps_only_the_tokens_hash(harness: ToolHarness) -> None:
    teacher = await launch(harness, TEACHER)
    links = [teacher.link("course"), teacher.link("mine")]
    tokens = [link.rsplit("/", 1)[1].removesuffix(".ics") for link in links if link]
    assert len(tokens) == 2 and all(len(t) == 43 for t in tokens)
    async with harness.tool.repo.engine.connect() as conn:
        rows = (await conn.execute(select(feed_tokens))).all()
    assert {r.token_hash for r in rows} == {hashlib.sha256(t.encode()).hexdigest() for t in tokens}
    stored = " ".join(str(value) for row in rows for value in row)
    assert not any(t in stored for t in tokens)
    by_kind = {r.scope.split(":")[0]: r for r in rows}
    assert by_kind["user"].scope == "user:teacher" and by_kind["user"].course_id is None
    assert by_kind["course"].scope == f"course:{by_kind['course'].course_id}"
