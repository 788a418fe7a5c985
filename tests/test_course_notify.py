"""Course notifications (``course.notify``): a meeting scheduled or a recording published is
announced once through the course's LMS, when the credential has the option on.

The LMS is a plugin of the tests' own, ``notelms``, registered in the harness: it records
each notice its ``notify_course`` hook receives (content, audience, on whose behalf), and
fails on request with the errors the LMS API contract defines.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select
from zoom_support import Browser, ZoomCourse, person, use_zoom

from ltipro.calendar.notify import KIND, notify
from ltipro.context import CourseIdentifiers, LaunchContext, LaunchMessage
from ltipro.extension import Audience, CourseNotice, LmsDetails
from ltipro.hookspecs import hookimpl
from ltipro.jobs import DEAD, DONE, JobHandlers, Outcome, Worker, list_jobs, retry_job
from ltipro.lmsapi import (
    LmsApi,
    LmsNotAuthorized,
    LmsNotFound,
    LmsRequestRefused,
    LmsThrottled,
    LmsUnavailable,
)
from ltipro.lti.claims import standard_launch_context
from ltipro.storage.jobs_tables import jobs
from ltipro.storage.meetings_tables import meetings
from ltipro.testing.harness import ToolHarness

LMS = "notelms"
SECTION = Audience("section", "12", "Section A")


class NoticeLms:
    """An LMS whose messaging keeps what it is asked to send, and fails when told to."""

    def __init__(self) -> None:
        self.sent: list[tuple[CourseIdentifiers, CourseNotice, str | None]] = []
        self.failures: list[Exception] = []

    @hookimpl
    def lms_details(self) -> LmsDetails:
        return LmsDetails(name=LMS, title="Notice LMS", product_family_codes=(LMS,))

    @hookimpl
    def launch_context(self, message: LaunchMessage) -> LaunchContext:
        return standard_launch_context(message, lms=LMS)

    @hookimpl
    async def course_audiences(self, course: CourseIdentifiers) -> list[Audience]:
        return [SECTION]

    @hookimpl
    async def notify_course(
        self, course: CourseIdentifiers, notice: CourseNotice, api: LmsApi
    ) -> bool:
        if self.failures:
            raise self.failures.pop(0)
        self.sent.append((course, notice, api.user_id))
        return True


@pytest.fixture
def lms() -> NoticeLms:
    return NoticeLms()


@pytest.fixture
async def harness(database_url: str, tmp_path: Path, lms: NoticeLms) -> AsyncIterator[ToolHarness]:
    async with ToolHarness(
        database_url=database_url,
        instance=tmp_path / "instance",
        plugins=[],
        extra_plugins=[(LMS, lms)],
        lms=LMS,
    ) as h:
        yield h


async def notify_on(harness: ToolHarness, on: bool = True) -> None:
    credential = await harness.refresh_credential()
    await harness.tool.repo.set_options(
        credential, credential.options.updated({"notify_course": on})
    )


def worker(harness: ToolHarness, now: datetime | None = None) -> Worker:
    """A worker that runs course notices only, at a time the test chooses."""
    handlers = JobHandlers()
    handlers.register(KIND, notify)
    clock = (lambda: now) if now is not None else (lambda: datetime.now(UTC))
    return Worker(harness.tool.repo.engine, handlers=handlers, tool=harness.tool, clock=clock)


async def run_all(harness: ToolHarness) -> list[Outcome]:
    outcomes = []
    runner = worker(harness)
    while (outcome := await runner.run_one()) is not None:
        outcomes.append(outcome)
    return outcomes


async def notice_jobs(harness: ToolHarness) -> list[Any]:
    return await list_jobs(harness.tool.repo.engine, kind=KIND)


async def launch(harness: ToolHarness, user: str, role: str) -> Browser:
    page = await harness.launch13(person(user, role))
    assert page.status_code == 200, page.text[-800:]
    return Browser(harness, page)


async def schedule(browser: Browser, **fields: Any) -> dict[str, Any]:
    start = (datetime.now(UTC) + timedelta(days=2)).replace(microsecond=0)
    body = {"topic": "Office hours", "start_time": start.isoformat(), "duration": 30} | fields
    response = await browser.api("POST", "/api/v1/meetings", json=body)
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


async def test_course_notify_off_sends_nothing_and_enqueues_nothing(
    harness: ToolHarness, lms: NoticeLms
) -> None:
    teacher = await launch(harness, "teacher", "Instructor")
    await schedule(teacher)
    assert await notice_jobs(harness) == []
    assert await run_all(harness) == [] and lms.sent == []


async def test_scheduling_notifies_the_course_once_with_the_join_link(
    harness: ToolHarness, lms: NoticeLms
) -> None:
    await notify_on(harness)
    teacher = await launch(harness, "teacher", "Instructor")
    created = await schedule(
        teacher, topic="Exam review", agenda="Bring questions.", timezone="Europe/Paris"
    )
    [job] = await notice_jobs(harness)  # written with the meeting, before any worker ran
    assert job.key == f"course.notify:meeting:{created['id']}"
    assert job.credential_id == harness.credential.id

    [outcome] = await run_all(harness)
    assert outcome.result == DONE
    [(course, notice, on_behalf_of)] = lms.sent
    assert course.context_id == "bio-101" and course.title == "Course bio-101"
    assert on_behalf_of == "teacher"
    async with harness.tool.repo.engine.connect() as conn:
        join_url = (await conn.execute(select(meetings.c.join_url))).scalar_one()
    assert notice.kind == "meeting_scheduled"
    assert notice.subject == "New meeting: Exam review"
    assert "Teacher scheduled “Exam review”." in notice.body
    assert "Bring questions." in notice.body and f"Join: {join_url}" in notice.body
    local = datetime.fromisoformat(created["start_time"]).astimezone(ZoneInfo("Europe/Paris"))
    assert local.strftime("%H:%M") + " (Europe/Paris)" in notice.body
    assert notice.url == join_url and notice.audience == ()
    assert notice.key == job.key

    # Edits, a second worker pass and the same meeting saved again announce nothing more.
    changed = await teacher.api("PATCH", f"/api/v1/meetings/{created['id']}", json={"topic": "X"})
    assert changed.status_code == 200
    assert await run_all(harness) == []
    assert len(lms.sent) == 1 and len(await notice_jobs(harness)) == 1


async def test_a_meeting_for_a_section_is_announced_to_that_section(
    harness: ToolHarness, lms: NoticeLms
) -> None:
    await notify_on(harness)
    teacher = await launch(harness, "teacher", "Instructor")
    await schedule(teacher, topic="Section lab", audience=["section:12"])
    await run_all(harness)
    [(_, notice, _)] = lms.sent
    assert notice.audience == (SECTION,)


async def test_a_meeting_deleted_before_its_notice_runs_is_not_announced(
    harness: ToolHarness, lms: NoticeLms
) -> None:
    await notify_on(harness)
    teacher = await launch(harness, "teacher", "Instructor")
    created = await schedule(teacher)
    assert (await teacher.api("DELETE", f"/api/v1/meetings/{created['id']}")).status_code == 204
    [outcome] = await run_all(harness)
    assert outcome.result == DONE and lms.sent == []


async def test_turning_notices_off_before_the_job_runs_stops_it(
    harness: ToolHarness, lms: NoticeLms
) -> None:
    await notify_on(harness)
    teacher = await launch(harness, "teacher", "Instructor")
    await schedule(teacher)
    await notify_on(harness, False)
    [outcome] = await run_all(harness)
    assert outcome.result == DONE and lms.sent == []


async def test_lms_errors_wait_retry_or_stop_as_the_contract_says(
    harness: ToolHarness, lms: NoticeLms
) -> None:
    await notify_on(harness)
    teacher = await launch(harness, "teacher", "Instructor")
    await schedule(teacher)
    now = datetime.now(UTC)
    lms.failures = [LmsThrottled("429 Too Many Requests", 42), LmsUnavailable("502 from LMS")]
    throttled = await worker(harness, now).run_one()
    assert throttled is not None and throttled.result == "retry"
    assert throttled.delay is not None and 42 <= throttled.delay <= 63  # plus jitter
    assert await worker(harness, now + timedelta(seconds=41)).run_one() is None
    due = now + timedelta(seconds=throttled.delay + 0.5)
    unavailable = await worker(harness, due).run_one()
    assert unavailable is not None and unavailable.result == "retry"
    assert lms.sent == []
    later = now + timedelta(hours=1)
    done = await worker(harness, later).run_one()
    assert done is not None and done.result == DONE and len(lms.sent) == 1

    for failure in (
        LmsNotAuthorized("Canvas refused the token: the user must authorise the tool again"),
        LmsNotFound("the course no longer exists in the LMS"),
        LmsRequestRefused("Canvas refused the conversation: 400 recipients invalid"),
    ):
        await schedule(teacher, topic=type(failure).__name__)
        lms.failures = [failure]
        dead = await worker(harness, later).run_one()
        assert dead is not None and dead.result == DEAD
        assert dead.error is not None and str(failure) in dead.error
    assert len(lms.sent) == 1
    # A dead notice retried by an admin, once the LMS is fixed, is sent once.
    [first_dead, *_] = [j for j in await notice_jobs(harness) if j.status == DEAD]
    await retry_job(harness.tool.repo.engine, first_dead.id, at=later)
    assert (await worker(harness, later).run_one()).result == DONE  # type: ignore[union-attr]
    assert len(lms.sent) == 2


# -- recordings, through the Zoom double -------------------------------------------------------


@pytest.fixture
async def zoom(harness: ToolHarness) -> AsyncIterator[ZoomCourse]:
    course = await use_zoom(harness)
    course.double.add_user("teacher@example.edu", type=2)
    yield course
    assert course.double.violations == [], "requests outside Zoom's document"


async def recorded(zoom: ZoomCourse, host: Browser, topic: str) -> tuple[str, str]:
    uid = await host.schedule(topic)
    start = await zoom.move_to_past(uid, days=7)
    instance = zoom.double.hold_meeting(await zoom.zoom_id(uid), start_time=start, participants=[])
    return uid, instance.uuid


async def test_a_published_recording_is_announced_once_however_often_it_is_published(
    harness: ToolHarness, zoom: ZoomCourse, lms: NoticeLms
) -> None:
    await zoom.options(recording_link_for_students="published")
    teacher = await zoom.launch(person("teacher", "Instructor"))
    uid, recording = await recorded(zoom, teacher, "Lecture 1")
    await notify_on(harness)
    path = f"/meetings/{uid}/recordings/publish"
    for published in ("1", "0", "1"):
        response = await teacher.post(path, recording_id=recording, published=published)
        assert response.status_code == 200
    again = await teacher.api(
        "POST", path.replace("/meetings", "/api/v1/meetings"), json={"recording_id": recording}
    )
    assert again.status_code == 200
    recording_jobs = [j for j in await notice_jobs(harness) if ":recording:" in j.key]
    assert len(recording_jobs) == 1
    await run_all(harness)
    [(_, notice, on_behalf_of)] = [s for s in lms.sent if s[1].kind == "recording_published"]
    assert notice.subject == "Recording available: Lecture 1"
    assert "Lecture 1" in notice.body and on_behalf_of == "teacher"
    assert notice.url == "" and "start" not in notice.body.lower()


async def test_publish_all_is_announced_once_for_the_course(
    harness: ToolHarness, zoom: ZoomCourse, lms: NoticeLms
) -> None:
    await zoom.options(recording_link_for_students="published")
    teacher = await zoom.launch(person("teacher", "Instructor"))
    await recorded(zoom, teacher, "Lecture 1")
    await notify_on(harness)
    for published in ("1", "0", "1"):
        response = await teacher.post("/meetings/recordings/publish-all", published=published)
        assert response.status_code == 200
    await run_all(harness)
    [(course, notice, _)] = [s for s in lms.sent if s[1].kind == "recording_published"]
    assert notice.subject == "Meeting recordings available"
    assert "Course bio-101" in notice.body and notice.audience == ()
    assert course.context_id == "bio-101"


async def test_a_recording_withdrawn_before_its_notice_runs_is_not_announced(
    harness: ToolHarness, zoom: ZoomCourse, lms: NoticeLms
) -> None:
    await zoom.options(recording_link_for_students="published")
    teacher = await zoom.launch(person("teacher", "Instructor"))
    uid, recording = await recorded(zoom, teacher, "Lecture 1")
    await notify_on(harness)
    path = f"/meetings/{uid}/recordings/publish"
    await teacher.post(path, recording_id=recording, published="1")
    await teacher.post(path, recording_id=recording, published="0")
    await run_all(harness)
    assert [s for s in lms.sent if s[1].kind == "recording_published"] == []
    async with harness.tool.repo.engine.connect() as conn:
        statuses = (await conn.execute(select(jobs.c.status).where(jobs.c.kind == KIND))).all()
    assert {s.status for s in statuses} == {DONE}
