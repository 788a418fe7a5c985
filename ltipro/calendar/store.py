"""The calendar sync's rows: which LMS event holds which occurrence, and per-meeting locks."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import and_, delete, or_, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncEngine

from ltipro.storage.calendar_tables import calendar_events, calendar_locks
from ltipro.storage.database import stored_utc

# As long as a job's lease: a holder that dies leaves a lock that runs out by itself.
LOCK_LEASE = timedelta(minutes=5)
# How long a sync waits for another sync of the same meeting before it gives up its turn.
LOCK_WAIT = 10.0
LOCK_POLL = 0.2


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class EventRow:
    """One LMS event the tool made for one occurrence."""

    marker: str
    meeting_uid: str
    course_id: int
    credential_id: int
    lms: str
    event_id: str
    fingerprint: str
    synced_at: datetime


def _row(row: Any) -> EventRow:
    return EventRow(
        marker=row.marker,
        meeting_uid=row.meeting_uid,
        course_id=row.course_id,
        credential_id=row.credential_id,
        lms=row.lms,
        event_id=row.event_id,
        fingerprint=row.fingerprint,
        synced_at=stored_utc(row.synced_at),
    )


def _insert(engine: AsyncEngine) -> Any:
    return postgresql_insert if engine.dialect.name == "postgresql" else sqlite_insert


async def rows_for_meeting(engine: AsyncEngine, meeting_uid: str) -> dict[str, EventRow]:
    async with engine.connect() as conn:
        rows = (
            await conn.execute(
                select(calendar_events).where(calendar_events.c.meeting_uid == meeting_uid)
            )
        ).all()
    return {r.marker: _row(r) for r in rows}


async def rows_for_course(engine: AsyncEngine, course_id: int) -> dict[str, EventRow]:
    async with engine.connect() as conn:
        rows = (
            await conn.execute(
                select(calendar_events).where(calendar_events.c.course_id == course_id)
            )
        ).all()
    return {r.marker: _row(r) for r in rows}


async def save_row(
    engine: AsyncEngine,
    *,
    marker: str,
    meeting_uid: str,
    course_id: int,
    credential_id: int,
    lms: str,
    event_id: str,
    fingerprint: str,
    at: datetime | None = None,
    replaces: str | None = None,
) -> None:
    """Record (or replace) the event of one occurrence, by its marker.

    ``replaces`` is the marker the event carried before its occurrence moved: that row
    goes in the same transaction, so the event is never recorded under both markers
    (a later sync would delete it as the old occurrence's).
    """
    values = {
        "meeting_uid": meeting_uid,
        "course_id": course_id,
        "credential_id": credential_id,
        "lms": lms,
        "event_id": event_id,
        "fingerprint": fingerprint,
        "synced_at": at or utcnow(),
    }
    statement = _insert(engine)(calendar_events).values(marker=marker, **values)
    statement = statement.on_conflict_do_update(index_elements=["marker"], set_=values)
    async with engine.begin() as conn:
        if replaces is not None and replaces != marker:
            await conn.execute(delete(calendar_events).where(calendar_events.c.marker == replaces))
        await conn.execute(statement)


@dataclass(frozen=True)
class RowWrite:
    """One row :func:`write_rows` records: :func:`save_row`'s arguments."""

    marker: str
    meeting_uid: str
    course_id: int
    credential_id: int
    lms: str
    event_id: str
    fingerprint: str
    replaces: str | None = None


async def write_rows(
    engine: AsyncEngine,
    saves: Sequence[RowWrite],
    deletes: Sequence[str] = (),
    *,
    at: datetime | None = None,
) -> None:
    """Record ``saves`` and remove the rows of the markers ``deletes``, in one transaction.

    The same rows as :func:`save_row` for each save and :func:`delete_row` for each
    marker, in two or three statements instead of a transaction each. The markers
    replaced by moved events go in the same transaction as the moved rows (see
    :func:`save_row`).
    """
    if not saves and not deletes:
        return
    synced_at = at or utcnow()
    gone = list(dict.fromkeys([*deletes, *(s.replaces for s in saves if s.replaces)]))
    gone = [m for m in gone if m not in {s.marker for s in saves}]
    insert = _insert(engine)(calendar_events)
    upsert = insert.on_conflict_do_update(
        index_elements=["marker"],
        set_={
            name: insert.excluded[name]
            for name in (
                "meeting_uid",
                "course_id",
                "credential_id",
                "lms",
                "event_id",
                "fingerprint",
                "synced_at",
            )
        },
    )
    async with engine.begin() as conn:
        for start in range(0, len(gone), 500):
            chunk = gone[start : start + 500]
            await conn.execute(delete(calendar_events).where(calendar_events.c.marker.in_(chunk)))
        if saves:
            await conn.execute(
                upsert,
                [
                    {
                        "marker": s.marker,
                        "meeting_uid": s.meeting_uid,
                        "course_id": s.course_id,
                        "credential_id": s.credential_id,
                        "lms": s.lms,
                        "event_id": s.event_id,
                        "fingerprint": s.fingerprint,
                        "synced_at": synced_at,
                    }
                    for s in saves
                ],
            )


async def delete_row(engine: AsyncEngine, marker: str) -> None:
    async with engine.begin() as conn:
        await conn.execute(delete(calendar_events).where(calendar_events.c.marker == marker))


# -- one sync per meeting at a time -----------------------------------------------------------


class MeetingBusy(Exception):
    """Another sync (or a reconcile) is working on the meeting's events right now."""


class LockLost(Exception):
    """The lock ran out and another holder took it: stop before acting on stale state."""


class MeetingLock:
    """A lease on one meeting's calendar events, held by one sync at a time.

    Two syncs of one meeting that ran together could both find an occurrence without
    an event and both create one; the lock makes them take turns. It is a row, not a
    held transaction or connection, so it works the same on SQLite and PostgreSQL, and a
    holder that dies (a killed worker) leaves a lock that runs out after ``lease``. The
    same holder (a job run again after its worker died) takes its own lock back at once.
    """

    def __init__(
        self,
        engine: AsyncEngine,
        meeting_uid: str,
        holder: str,
        *,
        lease: timedelta = LOCK_LEASE,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.engine = engine
        self.meeting_uid = meeting_uid
        self.holder = holder
        self.lease = lease
        self.clock = clock
        self._until: datetime | None = None

    async def acquire(self) -> bool:
        at = self.clock()
        until = at + self.lease
        statement = _insert(self.engine)(calendar_locks).values(
            meeting_uid=self.meeting_uid, holder=self.holder, locked_until=until
        )
        statement = statement.on_conflict_do_update(
            index_elements=["meeting_uid"],
            set_={"holder": self.holder, "locked_until": until},
            where=or_(calendar_locks.c.locked_until <= at, calendar_locks.c.holder == self.holder),
        ).returning(calendar_locks.c.holder)
        async with self.engine.begin() as conn:
            got = (await conn.execute(statement)).first()
        if got is None:
            return False
        self._until = until
        return True

    async def renew(self) -> None:
        """Extend the lease once a third of it has passed; raise :class:`LockLost` if taken."""
        at = self.clock()
        if self._until is not None and self._until - at > self.lease * 2 / 3:
            return
        until = at + self.lease
        async with self.engine.begin() as conn:
            changed = await conn.execute(
                update(calendar_locks)
                .where(
                    and_(
                        calendar_locks.c.meeting_uid == self.meeting_uid,
                        calendar_locks.c.holder == self.holder,
                    )
                )
                .values(locked_until=until)
            )
        if not changed.rowcount:
            raise LockLost(
                f"the calendar lock of meeting {self.meeting_uid} ran out and was taken over"
            )
        self._until = until

    async def release(self) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(
                delete(calendar_locks).where(
                    and_(
                        calendar_locks.c.meeting_uid == self.meeting_uid,
                        calendar_locks.c.holder == self.holder,
                    )
                )
            )
        self._until = None


@asynccontextmanager
async def meeting_locked(
    engine: AsyncEngine,
    meeting_uid: str,
    holder: str,
    *,
    wait: float | None = None,
    clock: Callable[[], datetime] = utcnow,
) -> AsyncIterator[MeetingLock]:
    """Hold the meeting's lock for the block; raise :class:`MeetingBusy` after ``wait`` s."""
    lock = MeetingLock(engine, meeting_uid, holder, clock=clock)
    waited = 0.0
    limit = LOCK_WAIT if wait is None else wait
    while not await lock.acquire():
        if waited >= limit:
            raise MeetingBusy(f"another calendar sync of meeting {meeting_uid} is running")
        await asyncio.sleep(LOCK_POLL)
        waited += LOCK_POLL
    try:
        yield lock
    finally:
        await lock.release()
