"""The calendar tests' world: the tool with the ``memlms`` plugin, its calendar service, a
course, and workers that run ``calendar.sync`` on a clock the test moves. The ``world``
fixture (``conftest.py``) makes one per test."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from memory_lms import CalendarService
from sqlalchemy.ext.asyncio import AsyncEngine

from ltipro.calendar.sync import KIND, enqueue_calendar_sync, sync_calendar
from ltipro.extension import Audience
from ltipro.jobs import JobHandlers, Worker
from ltipro.jobs.queue import Job, list_jobs
from ltipro.jobs.worker import Outcome
from ltipro.meetings.model import Meeting
from ltipro.meetings.repository import MeetingsRepository
from ltipro.providers.base import Recurrence
from ltipro.testing.harness import ToolHarness

COURSE = "bio-101"
LMS_COURSE = "4242"
DOMAIN = "lms.test"


class Clock:
    """The workers' time: now, plus however far the test has moved it."""

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += timedelta(seconds=seconds)


def next_week(hour: int = 10, zone: str = "UTC") -> datetime:
    from zoneinfo import ZoneInfo

    day = (datetime.now(UTC) + timedelta(days=7)).date()
    return datetime(day.year, day.month, day.day, hour, tzinfo=ZoneInfo(zone)).astimezone(UTC)


@dataclass
class World:
    harness: ToolHarness
    service: CalendarService
    course_id: int
    clock: Clock = field(default_factory=Clock)

    @property
    def tool(self) -> Any:
        return self.harness.tool

    @property
    def engine(self) -> AsyncEngine:
        return self.harness.tool.repo.engine

    @property
    def credential_id(self) -> int:
        return self.harness.credential.id

    @property
    def repo(self) -> MeetingsRepository:
        return MeetingsRepository(self.engine)

    def events(self) -> list[dict[str, Any]]:
        return self.service.course_events(LMS_COURSE)

    def _enqueue(self, meeting: Meeting | None = None) -> Any:
        async def enqueue(conn: Any, uid: str) -> None:
            await enqueue_calendar_sync(conn, meeting or uid, self.credential_id, self.course_id)

        return enqueue

    async def meeting(
        self,
        topic: str = "Office hours",
        *,
        start: datetime | None = None,
        duration: int = 45,
        timezone: str = "UTC",
        recurrence: Recurrence | None = None,
        agenda: str = "",
        course_id: int | None = None,
        audience: tuple[Audience, ...] = (),
    ) -> Meeting:
        """A meeting saved as the service saves one: with its sync job, in one transaction."""
        return await self.repo.add(
            in_transaction=self._enqueue(),
            credential_id=self.credential_id,
            course_id=course_id or self.course_id,
            provider="jitsi",
            provider_meeting_id=secrets.token_hex(6),
            topic=topic,
            agenda=agenda,
            start_time=start or next_week(),
            duration=duration,
            timezone=timezone,
            recurrence=recurrence,
            join_url=f"https://meet.example.edu/{secrets.token_hex(4)}",
            host_user_id="teacher-1",
            host_name="Teacher",
            host_email="teacher@example.edu",
            host_role="instructor",
            host_account_id="teacher@example.edu",
            audience=audience,
            source="tool",
            alternative_hosts=None,
        )

    async def change(self, meeting: Meeting, **values: Any) -> Meeting:
        return await self.repo.change(meeting, values, in_transaction=self._enqueue())

    async def delete(self, meeting: Meeting) -> None:
        await self.repo.remove(meeting, in_transaction=self._enqueue(meeting))

    def worker(self, name: str = "worker-a", engine: AsyncEngine | None = None) -> Worker:
        handlers = JobHandlers()
        handlers.register(KIND, sync_calendar)
        return Worker(
            engine or self.engine,
            handlers=handlers,
            tool=self.tool,
            name=name,
            clock=self.clock,
            concurrency=1,
        )

    async def run_jobs(self, worker: Worker | None = None) -> list[Outcome]:
        """Run every job due now (retries become due as the clock moves)."""
        return await (worker or self.worker()).drain()

    async def settle(self, rounds: int = 30, step: float = 3600.0) -> list[Outcome]:
        """Run jobs, moving the clock past each wait, until none is left queued."""
        outcomes: list[Outcome] = []
        for _ in range(rounds):
            outcomes += await self.run_jobs()
            if not await self.jobs("queued") and not await self.jobs("running"):
                return outcomes
            self.clock.advance(step)
        raise AssertionError("jobs still queued after every round")

    async def jobs(self, status: str | None = None) -> list[Job]:
        return await list_jobs(self.engine, status=status, kind=KIND, limit=1000)

    async def set_option(self, **changes: Any) -> None:
        credential = await self.harness.refresh_credential()
        await self.tool.repo.set_options(credential, credential.options.updated(changes))
        await self.harness.refresh_credential()
