"""The courses, meetings and changes of a run, made through the tool as the app makes them.

A run measures a batch of meeting changes: new meetings scheduled, meetings edited
(renamed, or moved by an hour) and meetings deleted, one-time and weekly. Each change
touches a different meeting, so every job has real work to do: the meetings that are
edited or deleted exist beforehand, already in the Canvas calendar (the *baseline*,
synced once while setting up, unmeasured).

Every change goes through ``MeetingsRepository`` with ``enqueue_calendar_sync`` in the
same transaction, exactly as ``ltipro.meetings.service.CourseMeetings`` does after the
provider's call (the embedded provider has no remote side worth timing here).

:func:`check` is the correctness check afterwards: each occurrence of each meeting has
exactly one event in the Canvas double, and nothing else is left there.
"""

from __future__ import annotations

import asyncio
import random
import secrets
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from ltipro_canvas.calendar import read_marker
from ltipro_canvas.testing import CLIENT_ID, CLIENT_SECRET, CanvasDouble
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from ltipro.calendar.events import desired_events, parse_marker
from ltipro.calendar.runtime import token_store
from ltipro.calendar.sync import enqueue_calendar_sync
from ltipro.lmsapi import StoredToken
from ltipro.meetings.model import Meeting
from ltipro.meetings.repository import MeetingsRepository
from ltipro.plugin_settings import set_plugin_settings
from ltipro.providers.base import Recurrence
from ltipro.storage.calendar_tables import calendar_events
from ltipro.storage.schema import courses
from ltipro.tool import Tool

CANVAS_DOMAIN = "canvas.bench.test"
ADMIN_CANVAS_USER = "1"
TIMEZONES = ("America/New_York", "Europe/Paris", "Australia/Sydney", "UTC", "America/Denver")
DURATION = 60
EDIT_KINDS = ("retitle", "move")
# Meetings made at once while setting up (the pool holds 10 connections, and 10 more).
BATCH = 8

InTransaction = Callable[[AsyncConnection, str], Awaitable[object]]


# -- the plan -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Mix:
    """How many changes of each kind, and what the meetings look like."""

    changes: int = 2000
    create_share: float = 0.5
    edit_share: float = 0.3  # the rest are deletes
    recurring_share: float = 0.25
    occurrences: int = 6  # of a weekly meeting
    courses: int = 100

    @property
    def creates(self) -> int:
        return round(self.changes * self.create_share)

    @property
    def edits(self) -> int:
        return min(round(self.changes * self.edit_share), self.changes - self.creates)

    @property
    def deletes(self) -> int:
        return self.changes - self.creates - self.edits


@dataclass(frozen=True)
class PlannedMeeting:
    label: str
    course: int  # index into the plan's courses
    topic: str
    start: datetime  # UTC
    timezone: str
    recurring: bool


@dataclass(frozen=True)
class Change:
    kind: str  # create, retitle, move or delete
    meeting: PlannedMeeting


@dataclass(frozen=True)
class Plan:
    mix: Mix
    baseline: list[PlannedMeeting]
    changes: list[Change]

    def counts(self) -> dict[str, int]:
        return dict(Counter(c.kind for c in self.changes))


def make_plan(mix: Mix, seed: int) -> Plan:
    """The same plan for the same mix and seed: every level runs the same changes."""
    rng = random.Random(seed)
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)

    def meeting(n: int, prefix: str) -> PlannedMeeting:
        # Starts one to eight weeks ahead, on the hour, in working hours.
        start = today + timedelta(days=rng.randint(7, 56), hours=rng.randint(8, 17))
        return PlannedMeeting(
            label=f"{prefix}{n}",
            course=rng.randrange(mix.courses),
            topic=f"{'Seminar' if prefix == 'b' else 'Lecture'} {n}",
            start=start,
            timezone=rng.choice(TIMEZONES),
            recurring=rng.random() < mix.recurring_share,
        )

    baseline = [meeting(n, "b") for n in range(mix.edits + mix.deletes)]
    changes = [Change("create", meeting(n, "n")) for n in range(mix.creates)]
    changes += [Change(EDIT_KINDS[n % 2], m) for n, m in enumerate(baseline[: mix.edits])]
    changes += [Change("delete", m) for m in baseline[mix.edits :]]
    rng.shuffle(changes)  # a day's changes arrive mixed
    return Plan(mix, baseline, changes)


# -- the installation ---------------------------------------------------------------------------


@dataclass
class Installed:
    """What the seeded installation holds, by plan index and label."""

    credential_id: int
    platform_id: int
    course_ids: list[int]  # row ids, by plan index
    canvas_ids: list[str]  # Canvas course ids, by plan index
    uids: dict[str, str] = field(default_factory=dict)  # baseline label -> meeting uid


def host_of(course: int) -> str:
    """The LTI user id of the course's instructor, who hosts its meetings."""
    return f"lti-teacher-{course}"


def canvas_teacher(course: int) -> str:
    return str(5000 + course)


def canvas_course(course: int) -> str:
    return str(3000 + course)


async def install(
    tool: Tool, double: CanvasDouble, plan: Plan, *, canvas_url: str, tokens: str
) -> Installed:
    """Courses in the tool and in Canvas, the Canvas settings, and who calls Canvas.

    ``tokens`` is ``admin``: every call uses one account admin's access token (the
    ``admin_access_token`` setting), so they all share one throttling bucket; or
    ``hosts``: each course's instructor connected Canvas, and calls for their meetings
    use their own grant (one bucket per instructor, as Canvas counts per token).
    """
    credential = await tool.repo.credential("bench")
    [platform] = await tool.repo.list_platforms(credential)
    settings = {
        "api_base_url": canvas_url,
        "api_client_id": CLIENT_ID,
        "api_client_secret": CLIENT_SECRET,
    }
    if tokens == "admin":
        double.add_user(ADMIN_CANVAS_USER, "Canvas admin", admin=True)
        access, _ = double.issue_token(ADMIN_CANVAS_USER, expires_in=None, refresh=False)
        settings["admin_access_token"] = access
    await set_plugin_settings(tool, credential, "canvas", settings)
    store = token_store(tool, credential.id, platform.id, "canvas")
    canvas_ids = []
    for n in range(plan.mix.courses):
        canvas_id = canvas_course(n)
        canvas_ids.append(canvas_id)
        double.add_course(canvas_id, name=f"Course {n}", teachers=[canvas_teacher(n)])
        await tool.repo.record_course(
            credential.id,
            lms="canvas",
            domain=CANVAS_DOMAIN,
            context_id=f"course-{n}",
            lms_course_id=canvas_id,
            title=f"Course {n}",
            label=f"C{n}",
            history=[],
            platform_id=platform.id,
        )
        if tokens == "hosts":
            access, refresh = double.issue_token(canvas_teacher(n), expires_in=None)
            await store.put(host_of(n), StoredToken(access, refresh, None))
    async with tool.repo.engine.connect() as conn:
        rows = (await conn.execute(select(courses.c.id, courses.c.context_id))).all()
    by_context = {r.context_id: r.id for r in rows}
    course_ids = [by_context[f"course-{n}"] for n in range(plan.mix.courses)]
    installed = Installed(credential.id, platform.id, course_ids, canvas_ids)
    repo = MeetingsRepository(tool.repo.engine)

    async def add(planned: PlannedMeeting) -> None:
        made = await _add(repo, installed, planned, plan.mix.occurrences)
        installed.uids[planned.label] = made.uid

    await in_batches(add, plan.baseline)
    return installed


async def in_batches(
    action: Callable[[Any], Awaitable[None]], items: Sequence[Any], size: int = BATCH
) -> None:
    """``action`` on every item, ``size`` at a time (set-up only: order within a batch varies)."""
    for n in range(0, len(items), size):
        await asyncio.gather(*(action(item) for item in items[n : n + size]))


def _sync(installed: Installed, course: int, deleted: Meeting | None = None) -> InTransaction:
    """What the meetings service runs in a change's transaction: the calendar sync job."""

    async def enqueue(conn: AsyncConnection, uid: str) -> None:
        await enqueue_calendar_sync(
            conn, deleted or uid, installed.credential_id, installed.course_ids[course]
        )

    return enqueue


def _recurrence(planned: PlannedMeeting, occurrences: int) -> Recurrence | None:
    if not planned.recurring:
        return None
    return Recurrence(type="weekly", repeat_interval=1, end_times=occurrences)


async def _add(
    repo: MeetingsRepository, installed: Installed, planned: PlannedMeeting, occurrences: int
) -> Meeting:
    course = planned.course
    return await repo.add(
        in_transaction=_sync(installed, course),
        credential_id=installed.credential_id,
        course_id=installed.course_ids[course],
        provider="jitsi",
        provider_meeting_id=secrets.token_hex(6),
        topic=planned.topic,
        agenda="Weekly meeting of the course." if planned.recurring else "",
        start_time=planned.start,
        duration=DURATION,
        timezone=planned.timezone,
        recurrence=_recurrence(planned, occurrences),
        join_url=f"https://meet.jit.si/ltipro-bench-{secrets.token_hex(6)}",
        host_user_id=host_of(course),
        host_name=f"Teacher {course}",
        host_email=f"teacher{course}@example.edu",
        host_role="instructor",
        host_account_id=f"teacher{course}@example.edu",
        audience=(),
        source="tool",
        alternative_hosts=None,
    )


async def enqueue_changes(tool: Tool, installed: Installed, plan: Plan) -> int:
    """Make the plan's changes, each with its calendar sync job; the number of jobs."""
    repo = MeetingsRepository(tool.repo.engine)

    async def make(change: Change) -> None:
        planned = change.meeting
        if change.kind == "create":
            await _add(repo, installed, planned, plan.mix.occurrences)
            return
        course_id = installed.course_ids[planned.course]
        meeting = await repo.get(installed.credential_id, course_id, installed.uids[planned.label])
        if meeting is None:
            raise RuntimeError(f"the baseline meeting {planned.label} is missing")
        if change.kind == "delete":
            await repo.remove(meeting, in_transaction=_sync(installed, planned.course, meeting))
            return
        values: dict[str, Any] = (
            {"topic": f"{meeting.topic} (renamed)"}
            if change.kind == "retitle"
            else {"start_time": meeting.start_time + timedelta(hours=1)}
        )
        await repo.change(meeting, values, in_transaction=_sync(installed, planned.course))

    await in_batches(make, plan.changes)
    return len(plan.changes)


# -- the check ---------------------------------------------------------------------------------


@dataclass
class Check:
    """Whether Canvas shows exactly the meetings' occurrences, once each.

    Meetings whose job had not run when a level was cut off are left out (``unchecked``):
    their events are still as the baseline left them. Duplicates are counted everywhere.
    """

    meetings: int = 0
    unchecked: int = 0  # meetings whose sync never ran (a level cut off by its time limit)
    occurrences: int = 0  # events the checked meetings should have
    events: int = 0  # active events of the checked meetings (and of none) in Canvas
    missing: int = 0  # occurrences without an event
    duplicated: int = 0  # occurrences with more than one event
    orphaned: int = 0  # events of no current occurrence (deleted or moved meetings)
    unmarked: int = 0  # events without the tool's marker
    rows_wrong: int = 0  # the tool's own records that do not name the event Canvas has

    @property
    def ok(self) -> bool:
        return (
            self.occurrences == self.events
            and not self.missing
            and not self.duplicated
            and not self.orphaned
            and not self.unmarked
            and not self.rows_wrong
        )


def _uid(marker: str) -> str | None:
    parsed = parse_marker(marker)
    return parsed.meeting_uid if parsed else None


async def check(
    tool: Tool,
    double: CanvasDouble,
    installed: Installed,
    unsynced: AbstractSet[str] = frozenset(),
) -> Check:
    """Compare the courses' Canvas calendars with the meetings; ``unsynced``: uids left out."""
    result = Check(unchecked=len(unsynced))
    repo = MeetingsRepository(tool.repo.engine)
    now = datetime.now(UTC)
    wanted: set[str] = set()
    for course_id in installed.course_ids:
        for meeting in await repo.for_course(course_id):
            if meeting.uid in unsynced:
                continue
            result.meetings += 1
            wanted.update(desired_events(meeting, now))
    result.occurrences = len(wanted)
    found: dict[str, list[int]] = {}
    for canvas_id in installed.canvas_ids:
        for event in double.events_in(f"course_{canvas_id}"):
            marker = read_marker(event.get("description"))
            if marker is None:
                result.unmarked += 1
                continue
            found.setdefault(marker, []).append(int(event["id"]))
    result.duplicated = sum(1 for ids in found.values() if len(ids) > 1)
    judged = {m: ids for m, ids in found.items() if _uid(m) not in unsynced}
    result.events = sum(len(ids) for ids in judged.values())
    result.missing = sum(1 for m in wanted if m not in judged)
    result.orphaned = sum(len(ids) for m, ids in judged.items() if m not in wanted)
    async with tool.repo.engine.connect() as conn:
        rows = (
            await conn.execute(select(calendar_events.c.marker, calendar_events.c.event_id))
        ).all()
    recorded = {r.marker: r.event_id for r in rows if _uid(r.marker) not in unsynced}
    result.rows_wrong = sum(
        1 for m in wanted if m in judged and recorded.get(m) != str(judged[m][0])
    ) + sum(1 for m in recorded if m not in wanted)
    return result
