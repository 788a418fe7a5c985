"""The ``calendar.sync`` job: make a course's LMS calendar show a meeting as it is now.

A meeting's change (scheduled, edited, deleted) and its sync job are written in one
transaction (:func:`enqueue_calendar_sync`). The job does not replay the change: it reads
the meeting as it is when the job runs, computes the events it should have (one per
occurrence, :func:`ltipro.calendar.events.desired_events`), compares them with the
events the tool made before (the ``calendar_events`` table) and creates, updates or
deletes the difference through the course's LMS plugin. Running it again changes
nothing, so at-least-once execution is safe: a create the LMS carried out just before a
crash is found again by its marker, and an unchanged occurrence is not sent again.

Syncs of one meeting take turns (:class:`ltipro.calendar.store.MeetingLock`), so two
workers never both create the same occurrence.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, NamedTuple

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from ltipro.calendar.events import desired_events, fingerprint, parse_marker
from ltipro.calendar.runtime import CourseLms, course_lms
from ltipro.calendar.store import (
    EventRow,
    MeetingBusy,
    MeetingLock,
    RowWrite,
    meeting_locked,
    rows_for_meeting,
    utcnow,
    write_rows,
)
from ltipro.extension import CalendarEvent
from ltipro.jobs import JobContext, PermanentFailure, RetryAfter, job_handler
from ltipro.jobs.queue import Job, NewJob, enqueue_many
from ltipro.lmsapi import (
    LmsApiError,
    LmsNotFound,
    LmsNotSetUp,
    LmsThrottled,
    LmsUnavailable,
)
from ltipro.meetings.model import Meeting
from ltipro.meetings.repository import MeetingsRepository
from ltipro.storage.database import stored_utc
from ltipro.storage.meetings_tables import meetings

if TYPE_CHECKING:
    from ltipro.tool import Tool

log = logging.getLogger("ltipro.calendar")

KIND = "calendar.sync"
CALENDAR_HOOKS = ("calendar_create_event", "calendar_update_event", "calendar_delete_event")
# A sync that finds its meeting busy comes back after this long (plus the worker's jitter).
BUSY_RETRY = 5.0


# -- enqueueing --------------------------------------------------------------------------------


class MeetingSync(NamedTuple):
    """One meeting whose calendar sync :func:`enqueue_calendar_syncs` queues."""

    meeting: Meeting | str  # the meeting, or its uid
    credential_id: int
    course_id: int


async def enqueue_calendar_sync(
    conn: AsyncConnection,
    meeting_or_uid: Meeting | str,
    credential_id: int,
    course_id: int,
) -> Job:
    """Add the meeting's calendar sync to the transaction ``conn`` is in.

    Call it on the connection that creates, changes or deletes the meeting, after the
    change: the job's key names the meeting's version (its ``updated_at``, or
    ``deleted``), so calling it twice for one change adds one job, and every new change
    adds another. Which job runs last does not matter: each syncs the meeting as it is.
    """
    jobs = await enqueue_calendar_syncs(
        conn, [MeetingSync(meeting_or_uid, credential_id, course_id)]
    )
    return jobs[0]


# Meeting uids per version lookup (one bound parameter each).
LOOKUP_CHUNK = 500


async def enqueue_calendar_syncs(conn: AsyncConnection, syncs: Iterable[MeetingSync]) -> list[Job]:
    """:func:`enqueue_calendar_sync` for many meetings, in a few statements.

    The same jobs, keys and payloads as one call per meeting, for changes made in bulk
    (an import and its undo): the meetings' versions are read in one ``SELECT`` per
    :data:`LOOKUP_CHUNK` meetings and the jobs written with
    :func:`ltipro.jobs.queue.enqueue_many`, in the caller's transaction. Returns the
    jobs in the order of ``syncs``.
    """
    wanted = list(syncs)
    uids = [_uid(sync.meeting) for sync in wanted]
    versions: dict[str, datetime] = {}
    distinct = sorted(set(uids))
    for start in range(0, len(distinct), LOOKUP_CHUNK):
        chunk = distinct[start : start + LOOKUP_CHUNK]
        rows = await conn.execute(
            select(meetings.c.uid, meetings.c.updated_at).where(meetings.c.uid.in_(chunk))
        )
        for row in rows.all():
            versions[row.uid] = stored_utc(row.updated_at)
    items = []
    for sync, uid in zip(wanted, uids, strict=True):
        payload: dict[str, Any] = {
            "meeting": uid,
            "credential": sync.credential_id,
            "course": sync.course_id,
        }
        updated_at = versions.get(uid)
        if updated_at is None:
            version = "deleted"
            if isinstance(sync.meeting, Meeting):
                # Deleting its events may need the host's authorisation at the LMS.
                payload["host"] = sync.meeting.host_user_id
        else:
            version = updated_at.strftime("%Y%m%dT%H%M%S.%fZ")
        items.append(
            NewJob(payload, key=f"{KIND}:{uid}:{version}", credential_id=sync.credential_id)
        )
    return await enqueue_many(conn, KIND, items)


def _uid(meeting_or_uid: Meeting | str) -> str:
    return meeting_or_uid.uid if isinstance(meeting_or_uid, Meeting) else str(meeting_or_uid)


# -- syncing one meeting ------------------------------------------------------------------------


@dataclass
class SyncResult:
    """What one sync did; ``skipped`` says why it did nothing, when it did nothing."""

    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    unchanged: int = 0
    skipped: str | None = None


def calendar_capable(lms: CourseLms | None) -> bool:
    """Whether the course's LMS plugin can create, update and delete calendar events."""
    return lms is not None and all(lms.implements(h) for h in CALENDAR_HOOKS)


async def create_event(lms: CourseLms, event: CalendarEvent) -> str | None:
    """Create an occurrence's event (the plugin finds one carrying the marker first).

    ``None``: the plugin has no calendar it can write to for this course.
    """
    event_id = await lms.call("calendar_create_event", event=event)
    return str(event_id) if event_id else None


async def update_event(lms: CourseLms, event_id: str, event: CalendarEvent) -> str | None:
    """Change an occurrence's event; one deleted at the LMS meanwhile is made again."""
    try:
        new_id = await lms.call("calendar_update_event", event_id=event_id, event=event)
    except LmsNotFound:
        return await create_event(lms, event)
    return str(new_id) if new_id else event_id


async def delete_event(lms: CourseLms, event_id: str) -> None:
    await lms.call("calendar_delete_event", event_id=event_id)


async def sync_meeting(
    tool: Tool,
    meeting_uid: str,
    credential_id: int,
    course_id: int,
    *,
    holder: str,
    host_user_id: str | None = None,
    clock: Callable[[], datetime] = utcnow,
    wait: float | None = None,
) -> SyncResult:
    """Bring the LMS calendar in line with the meeting; see the module's description.

    Raises :mod:`ltipro.lmsapi` errors as the plugin raised them (the job handler maps
    them to the queue's outcomes) and :class:`~ltipro.calendar.store.MeetingBusy` when
    another sync holds the meeting for longer than ``wait`` seconds. ``host_user_id``
    is whom to call the LMS for once the meeting is deleted (its host, while it exists).
    """
    engine = tool.repo.engine
    async with meeting_locked(engine, meeting_uid, holder, wait=wait, clock=clock) as lock:
        # Read after taking the lock: the state another sync left, and the latest meeting.
        meeting = await MeetingsRepository(engine).get(credential_id, course_id, meeting_uid)
        user_id = meeting.host_user_id if meeting is not None else host_user_id
        lms = await course_lms(tool, course_id, user_id=user_id or None)
        if lms is None:
            return SyncResult(skipped="the course or its LMS plugin is not available")
        if not calendar_capable(lms):
            return SyncResult(skipped=f"the {lms.lms} plugin has no calendar hooks")
        if not lms.credential.options.calendar_sync:
            return SyncResult(skipped="calendar sync is off for the credential")
        return await _apply(lms, lock, meeting, meeting_uid, clock())


async def _apply(
    lms: CourseLms,
    lock: MeetingLock,
    meeting: Meeting | None,
    meeting_uid: str,
    now: datetime,
) -> SyncResult:
    engine = lms.tool.repo.engine
    result = SyncResult()
    rows = await rows_for_meeting(engine, meeting_uid)
    wanted: dict[str, CalendarEvent] = {}
    if meeting is not None:
        wanted = desired_events(meeting, now)
    # Events of occurrences the meeting no longer has. A new occurrence takes one of
    # them over (a meeting moved to another time): changed in place, the event keeps its
    # id and whatever links to it in the LMS. Those left over are deleted.
    leftovers = [
        row
        for key, row in sorted(rows.items())
        if key not in wanted and not _keeps_history(row, meeting, now)
    ]

    # Which rows may wait for the end of the sync, and which may not. A row must be
    # recorded right after the LMS has the event whenever a rerun could not find the
    # event again by itself:
    # - a created event, or one whose id changed (an LMS that updates by delete and
    #   create): the marker search finds it again only while its occurrence is still
    #   wanted; if the meeting is moved or deleted before the rerun, nothing would
    #   delete it (an orphan in the LMS);
    # - a moved event (``replaces``): until its row is re-keyed, the event is recorded
    #   under its old marker, and a reconcile would record it under the new one too,
    #   after which a sync deletes it as the old occurrence's.
    # Those are written one by one, as soon as the LMS answers. Two kinds may wait, and
    # are written together in one transaction at the end (also when a later LMS call
    # fails, so a retry does not send them again):
    # - an event changed in place (same marker, same id): lost, the row only keeps the
    #   old fingerprint, and a rerun sends the same update again;
    # - the row of a deleted event: lost, a rerun deletes the event again, which the
    #   plugin reports as gone already (the hook's contract), and drops the row then.
    later: list[RowWrite] = []
    removed: list[str] = []
    try:
        for key, event in wanted.items():
            sent = fingerprint(event)
            row = rows.get(key)
            if row is not None and row.fingerprint == sent:
                result.unchanged += 1
                continue
            replaces = None
            if row is not None:
                event_id = await update_event(lms, row.event_id, event)
                result.updated.append(key)
            elif leftovers:
                moved = leftovers.pop(0)
                replaces = moved.marker
                event_id = await update_event(lms, moved.event_id, event)
                result.updated.append(key)
            else:
                event_id = await create_event(lms, event)
                result.created.append(key)
            if event_id is None:
                result.skipped = f"the {lms.lms} plugin has no calendar to write to for the course"
                break
            write = RowWrite(
                marker=key,
                meeting_uid=meeting_uid,
                course_id=lms.course_id,
                credential_id=lms.credential.id,
                lms=lms.lms,
                event_id=event_id,
                fingerprint=sent,
                replaces=replaces,
            )
            if row is not None and event_id == row.event_id:
                later.append(write)  # changed in place: may wait (see above)
            else:
                await write_rows(engine, [write])  # created, moved or a new id: now
            await lock.renew()

        for row in leftovers if result.skipped is None else []:
            await delete_event(lms, row.event_id)
            removed.append(row.marker)
            result.deleted.append(row.marker)
            await lock.renew()
    except Exception:
        # What the LMS has done so far is recorded before the error goes to the queue.
        try:
            await write_rows(engine, later, removed)
        except Exception:
            log.exception("calendar sync of meeting %s: recording its rows failed", meeting_uid)
        raise
    await write_rows(engine, later, removed)
    return result


def _keeps_history(row: EventRow, meeting: Meeting | None, now: datetime) -> bool:
    """An event of an occurrence that has begun stays, unless its meeting was deleted."""
    if meeting is None:
        return False
    parsed = parse_marker(row.marker)
    return parsed is not None and parsed.start <= now


# -- the job ------------------------------------------------------------------------------------


def job_error(exc: LmsApiError) -> Exception:
    """What the queue should make of an LMS error: wait, back off, or stop."""
    if isinstance(exc, LmsThrottled):
        return RetryAfter(exc.retry_after, str(exc))
    if isinstance(exc, LmsUnavailable):
        return exc  # retried with backoff
    # Not authorised, not configured, refused, or the course gone: only an admin can help.
    return PermanentFailure(str(exc))


@job_handler(KIND)
async def sync_calendar(context: JobContext) -> None:
    """Handler of ``calendar.sync``: sync one meeting's events; safe to run again."""
    tool = context.tool
    if tool is None:
        raise PermanentFailure("calendar.sync needs the running tool")
    payload: dict[str, Any] = context.payload if isinstance(context.payload, dict) else {}
    try:
        uid = str(payload["meeting"])
        credential_id = int(payload["credential"])
        course_id = int(payload["course"])
    except (KeyError, TypeError, ValueError):
        raise PermanentFailure(f"the job's payload is not a calendar sync: {payload!r}") from None
    try:
        host = payload.get("host")
        result = await sync_meeting(
            tool,
            uid,
            credential_id,
            course_id,
            holder=f"job:{context.job.id}",
            host_user_id=str(host) if host else None,
        )
    except MeetingBusy as exc:
        raise RetryAfter(BUSY_RETRY, str(exc)) from exc  # the worker adds the jitter
    except LmsNotSetUp as exc:
        # The LMS's API was never set up for this credential: nothing to keep for later.
        log.info("calendar sync of meeting %s skipped: %s", uid, exc)
        return
    except LmsApiError as exc:
        raise job_error(exc) from exc
    except httpx.HTTPError:
        raise  # a plugin's unwrapped transport error: retried with backoff
    if result.skipped:
        log.info("calendar sync of meeting %s: nothing to do (%s)", uid, result.skipped)
    else:
        log.info(
            "calendar sync of meeting %s: %d created, %d updated, %d deleted, %d unchanged",
            uid,
            len(result.created),
            len(result.updated),
            len(result.deleted),
            result.unchanged,
        )


__all__ = [
    "KIND",
    "MeetingSync",
    "SyncResult",
    "calendar_capable",
    "enqueue_calendar_sync",
    "enqueue_calendar_syncs",
    "job_error",
    "sync_calendar",
    "sync_meeting",
]
