"""Meetings reach a Canvas course calendar through the core's job queue and this plugin.

The tool runs with the Canvas plugin; the course is recorded as a launch records it; the
host connected Canvas (their grant is in the core's token store); workers run the
``calendar.sync`` jobs on a clock the test moves. Canvas is the double.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from ltipro_canvas.api import QUOTA_GATE
from ltipro_canvas.calendar import read_marker
from ltipro_canvas.testing import CanvasDouble
from sqlalchemy import select

from ltipro.calendar.runtime import token_store
from ltipro.calendar.sync import KIND, enqueue_calendar_sync, sync_calendar
from ltipro.jobs import JobHandlers, Worker
from ltipro.jobs.queue import dead_jobs
from ltipro.jobs.worker import Outcome
from ltipro.lmsapi import StoredToken
from ltipro.meetings.model import Meeting
from ltipro.meetings.repository import MeetingsRepository
from ltipro.plugin_settings import set_plugin_settings
from ltipro.storage.schema import courses
from ltipro.testing.harness import ToolHarness

HOST_LTI_ID = "lti-teacher-1"
CANVAS_HOST = "school.instructure.com"


class Clock:
    def __init__(self) -> None:
        self.offset = timedelta(0)

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset


@dataclass
class World:
    harness: ToolHarness
    canvas: CanvasDouble
    course_id: int
    clock: Clock = field(default_factory=Clock)

    @property
    def repo(self) -> MeetingsRepository:
        return MeetingsRepository(self.harness.tool.repo.engine)

    def _enqueue(self, meeting: Meeting | None = None) -> Any:
        async def enqueue(conn: Any, uid: str) -> None:
            await enqueue_calendar_sync(
                conn, meeting or uid, self.harness.credential.id, self.course_id
            )

        return enqueue

    async def meeting(self, topic: str, start: datetime) -> Meeting:
        return await self.repo.add(
            in_transaction=self._enqueue(),
            credential_id=self.harness.credential.id,
            course_id=self.course_id,
            provider="jitsi",
            provider_meeting_id=secrets.token_hex(6),
            topic=topic,
            agenda="",
            start_time=start,
            duration=60,
            timezone="Europe/Paris",
            recurrence=None,
            join_url=f"https://meet.example.edu/{secrets.token_hex(4)}",
            host_user_id=HOST_LTI_ID,
            host_name="Teacher",
            host_email="teacher@example.edu",
            host_role="instructor",
            host_account_id="teacher@example.edu",
            audience=(),
            source="tool",
            alternative_hosts=None,
        )

    async def run_jobs(self) -> list[Outcome]:
        handlers = JobHandlers()
        handlers.register(KIND, sync_calendar)
        worker = Worker(
            self.harness.tool.repo.engine,
            handlers=handlers,
            tool=self.harness.tool,
            name="worker-a",
            clock=self.clock,
            concurrency=1,
        )
        return await worker.drain()


@pytest.fixture
async def world(ltipro_backend_database_url: str, tmp_path: Path) -> AsyncIterator[World]:
    async with ToolHarness(
        database_url=ltipro_backend_database_url,
        instance=tmp_path / "instance",
        plugins=["canvas"],
        lms="canvas",
    ) as harness:
        canvas = CanvasDouble(host=CANVAS_HOST)
        canvas.add_course("3", teachers=["7"])
        harness.transport.add(CANVAS_HOST, canvas)
        tool = harness.tool
        await tool.repo.record_course(
            harness.credential.id,
            lms="canvas",
            domain=CANVAS_HOST,
            context_id="ctx-bio",
            lms_course_id="3",
            title="Biology 101",
            label="BIO101",
            history=[],
            platform_id=harness.registration.id,
        )
        async with tool.repo.engine.connect() as conn:
            course_id = (await conn.execute(select(courses.c.id))).scalar_one()
        yield World(harness, canvas, course_id)


async def connect_host(world: World) -> None:
    access, refresh = world.canvas.issue_token("7")
    grant = StoredToken(access, refresh, datetime.now(UTC) + timedelta(hours=1))
    store = token_store(
        world.harness.tool, world.harness.credential.id, world.harness.registration.id, "canvas"
    )
    await store.put(HOST_LTI_ID, grant)


def next_week() -> datetime:
    day = (datetime.now(UTC) + timedelta(days=7)).date()
    return datetime(day.year, day.month, day.day, 9, 0, tzinfo=UTC)


async def test_a_meeting_scheduled_changed_and_deleted_follows_in_the_canvas_calendar(
    world: World,
) -> None:
    await connect_host(world)
    start = next_week()
    meeting = await world.meeting("Office hours", start)
    assert [o.result for o in await world.run_jobs()] == ["done"]
    [event] = world.canvas.events_in("course_3")
    assert event["title"] == "Office hours"
    assert event["start_at"] == start
    sent = dict(world.canvas.api_requests("POST")[0].form)
    assert sent["calendar_event[time_zone_edited]"] == "Europe/Paris"
    assert read_marker(event["description"]) == f"ltipro:{meeting.uid}:{start:%Y%m%dT%H%MZ}"

    meeting = await world.repo.change(
        meeting, {"topic": "Office hours (moved)"}, in_transaction=world._enqueue()
    )
    assert [o.result for o in await world.run_jobs()] == ["done"]
    [moved] = world.canvas.events_in("course_3")
    assert (moved["id"], moved["title"]) == (event["id"], "Office hours (moved)")

    await world.repo.remove(meeting, in_transaction=world._enqueue(meeting))
    assert [o.result for o in await world.run_jobs()] == ["done"]
    assert world.canvas.events_in("course_3") == []


async def test_canvas_throttling_makes_the_job_wait_and_then_succeed(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The client's quota gate runs on the same clock as the worker.
    monkeypatch.setattr(QUOTA_GATE, "clock", lambda: world.clock().timestamp())
    await connect_host(world)
    world.canvas.fail_next(
        403,
        method="POST",
        body=b"403 Forbidden (Rate Limit Exceeded)",
        headers={"X-Rate-Limit-Remaining": "10.0", "X-Request-Cost": "0"},
    )
    await world.meeting("Office hours", next_week())
    [first] = await world.run_jobs()
    assert first.result == "retry"
    assert first.delay is not None and first.delay >= 4.0  # (1 + 50 - 10) / 10 units a second
    world.clock.offset += timedelta(seconds=first.delay + 1)
    assert [o.result for o in await world.run_jobs()] == ["done"]
    assert len(world.canvas.events_in("course_3")) == 1


async def test_a_host_who_never_connected_canvas_sends_the_job_to_the_dead_letters(
    world: World,
) -> None:
    await set_plugin_settings(
        world.harness.tool,
        world.harness.credential,
        "canvas",
        {"api_client_id": "10000000000042", "api_client_secret": "developer-key-secret"},
    )
    await world.meeting("Office hours", next_week())
    [outcome] = await world.run_jobs()
    assert outcome.result == "dead"
    assert outcome.error is not None and "Connect Canvas" in outcome.error
    assert world.canvas.api_requests() == []


async def test_without_any_canvas_api_setting_the_sync_is_skipped_not_kept_as_dead_letters(
    world: World,
) -> None:
    await world.meeting("Office hours", next_week())
    [outcome] = await world.run_jobs()
    assert outcome.result == "done"
    assert world.canvas.api_requests() == []
    async with world.harness.tool.repo.engine.connect() as conn:
        assert await dead_jobs(conn) == []
