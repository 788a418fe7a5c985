"""Reconciliation: compare the LMS calendars with the meetings, and repair the drift.

The sync job keeps calendars right as meetings change, but calendars also change behind
the tool's back (someone deletes or edits an event in the LMS), and a job that went to
the dead letters leaves its meeting unsynced. ``ltipro calendar reconcile`` reads each
course's calendar through the plugin's ``calendar_list_events`` and repairs four kinds
of drift, each found by the marker the tool puts in its events:

- **missing**: an occurrence with no event carrying its marker: created;
- **stale**: an event whose title or times (or, by the tool's records, anything else)
  differ from the meeting's: updated;
- **duplicate**: two events with the same marker (a retried create of a plugin that
  could not find its first): one kept, the tool's recorded one if it is among them;
- **orphaned**: an event whose marker names a meeting that no longer exists, or an
  occurrence the meeting no longer has: deleted.

Events without a tool marker are never touched. Each meeting is repaired under the same
per-meeting lock as the sync job, so the two never work on one meeting at once.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Literal

from sqlalchemy import select

from ltipro.calendar.events import (
    HORIZON,
    desired_events,
    fingerprint,
    looks_the_same,
    parse_marker,
)
from ltipro.calendar.runtime import CourseLms, course_lms
from ltipro.calendar.store import (
    EventRow,
    MeetingBusy,
    delete_row,
    meeting_locked,
    rows_for_course,
    save_row,
    utcnow,
)
from ltipro.calendar.sync import calendar_capable, create_event, delete_event, update_event
from ltipro.extension import LmsCalendarEvent
from ltipro.lmsapi import LmsApiError, LmsNotSetUp
from ltipro.meetings.model import MAX_DURATION, Meeting
from ltipro.meetings.repository import MeetingsRepository
from ltipro.storage.schema import courses

if TYPE_CHECKING:
    from ltipro.tool import Tool

Drift = Literal["missing", "stale", "duplicate", "orphaned"]


@dataclass(frozen=True)
class Repair:
    """One repair: what drifted, the occurrence's marker, and the LMS event concerned."""

    drift: Drift
    marker: str
    event_id: str | None
    title: str

    def describe(self, dry_run: bool) -> str:
        verb = {
            "missing": ("would create", "created"),
            "stale": ("would update", "updated"),
            "duplicate": ("would delete duplicate", "deleted duplicate"),
            "orphaned": ("would delete orphaned", "deleted orphaned"),
        }[self.drift][0 if dry_run else 1]
        event = f" event {self.event_id}" if self.event_id else " event"
        return f"{verb}{event} {self.marker} ({self.title})"


@dataclass
class CourseReport:
    """What reconciling one course found and did."""

    course_id: int
    context_id: str
    domain: str
    lms: str
    repairs: list[Repair] = field(default_factory=list)
    skipped: str | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return f"course {self.context_id} ({self.lms}, {self.domain})"

    def counts(self) -> dict[str, int]:
        out = {"missing": 0, "stale": 0, "duplicate": 0, "orphaned": 0}
        for repair in self.repairs:
            out[repair.drift] += 1
        return out


async def reconcile(
    tool: Tool,
    *,
    credential_id: int | None = None,
    dry_run: bool = False,
    clock: Callable[[], datetime] = utcnow,
) -> list[CourseReport]:
    """Reconcile every course (of one credential, when given); one report per course."""
    query = select(courses.c.id, courses.c.context_id, courses.c.domain, courses.c.lms)
    if credential_id is not None:
        query = query.where(courses.c.credential_id == credential_id)
    async with tool.repo.engine.connect() as conn:
        rows = (await conn.execute(query.order_by(courses.c.id))).all()
    reports = []
    for row in rows:
        report = CourseReport(row.id, row.context_id, row.domain, row.lms)
        await reconcile_course(tool, report, dry_run=dry_run, now=clock())
        reports.append(report)
    return reports


async def reconcile_course(
    tool: Tool, report: CourseReport, *, dry_run: bool, now: datetime
) -> None:
    """Repair one course's calendar, filling in ``report``."""
    lms = await course_lms(tool, report.course_id)
    if lms is None:
        report.skipped = "its LMS plugin is not loaded or not enabled"
        return
    if not calendar_capable(lms) or not lms.implements("calendar_list_events"):
        report.skipped = f"the {lms.lms} plugin cannot list calendar events"
        return
    if not lms.credential.options.calendar_sync:
        report.skipped = "calendar sync is off for its credential"
        return
    # Occurrences under way began up to a meeting's longest duration ago.
    start = now - timedelta(minutes=MAX_DURATION)
    end = now + HORIZON + timedelta(days=1)
    try:
        listed = await lms.call("calendar_list_events", start=start, end=end) or []
    except LmsNotSetUp as exc:
        report.skipped = f"the {lms.lms} API is not set up: {exc}"
        return
    except LmsApiError as exc:
        report.problems.append(f"listing the calendar failed: {exc}")
        return
    found: dict[str, dict[str, list[LmsCalendarEvent]]] = {}
    for event in listed:
        parsed = parse_marker(event.marker)
        if parsed is not None:
            found.setdefault(parsed.meeting_uid, {}).setdefault(event.marker or "", []).append(
                event
            )
    rows = await rows_for_course(tool.repo.engine, report.course_id)
    meetings = {
        m.uid: m for m in await MeetingsRepository(tool.repo.engine).for_course(report.course_id)
    }
    uids = set(meetings) | set(found) | {r.meeting_uid for r in rows.values()}
    holder = f"reconcile:{secrets.token_hex(4)}"
    for uid in sorted(uids):
        try:
            async with meeting_locked(tool.repo.engine, uid, holder, wait=0):
                meeting = await MeetingsRepository(tool.repo.engine).get(
                    lms.credential.id, report.course_id, uid
                )
                mine = {k: v for k, v in rows.items() if v.meeting_uid == uid}
                await _repair_meeting(
                    lms, report, uid, meeting, found.get(uid, {}), mine, now, dry_run
                )
        except MeetingBusy:
            report.problems.append(f"meeting {uid} was left alone: a sync of it is running")
        except LmsApiError as exc:
            report.problems.append(f"meeting {uid}: {exc}")


async def _repair_meeting(
    lms: CourseLms,
    report: CourseReport,
    uid: str,
    meeting: Meeting | None,
    listed: dict[str, list[LmsCalendarEvent]],
    rows: dict[str, EventRow],
    now: datetime,
    dry_run: bool,
) -> None:
    engine = lms.tool.repo.engine
    wanted = desired_events(meeting, now) if meeting is not None else {}

    async def record(marker: str, event_id: str, sent: str) -> None:
        if not dry_run:
            await save_row(
                engine,
                marker=marker,
                meeting_uid=uid,
                course_id=lms.course_id,
                credential_id=lms.credential.id,
                lms=lms.lms,
                event_id=event_id,
                fingerprint=sent,
            )

    for marker, events in sorted(listed.items()):
        row = rows.get(marker)
        parsed = parse_marker(marker)
        if marker not in wanted:
            if meeting is not None and parsed is not None and parsed.start <= now:
                continue  # an occurrence that began: its event stays as history
            for event in events:
                report.repairs.append(Repair("orphaned", marker, event.id, event.title))
                if not dry_run:
                    await delete_event(lms, event.id)
            if row is not None and not dry_run:
                await delete_row(engine, marker)
            continue
        keep = next((e for e in events if row is not None and e.id == row.event_id), events[0])
        for event in events:
            if event is not keep:
                report.repairs.append(Repair("duplicate", marker, event.id, event.title))
                if not dry_run:
                    await delete_event(lms, event.id)
        desired = wanted[marker]
        sent = fingerprint(desired)
        stale = not looks_the_same(desired, keep.title, keep.start, keep.end) or (
            row is not None and row.fingerprint != sent
        )
        event_id: str | None = keep.id
        if stale:
            report.repairs.append(Repair("stale", marker, keep.id, desired.title))
            if not dry_run:
                event_id = await update_event(lms, keep.id, desired)
        if event_id is not None and (stale or row is None or row.event_id != event_id):
            await record(marker, event_id, sent)

    for marker, desired in wanted.items():
        if marker in listed:
            continue
        report.repairs.append(Repair("missing", marker, None, desired.title))
        if not dry_run:
            made = await create_event(lms, desired)
            if made is not None:
                await record(marker, made, fingerprint(desired))

    for marker in rows:
        # The tool's record of an event of a deleted meeting that the LMS no longer has.
        if marker not in listed and marker not in wanted and meeting is None and not dry_run:
            await delete_row(engine, marker)
