"""Import batches in the database: the checked file, applying it, undoing it.

Applying writes everything of one file in ONE transaction: the courses it needs, a
meeting row per imported meeting (``source='import'``), the rows' outcome, the calendar
sync of each meeting and the confirmation email's job. A failure anywhere leaves
nothing written. Undoing removes the chosen meetings (and the course records the batch
made that nobody has launched) in one transaction too, and keeps the batch as a record.
"""

from __future__ import annotations

import importlib
import logging
import secrets
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import and_, bindparam, delete, func, insert, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from ltipro.imports.checks import ADD, Association, Known, RowCheck, start_of
from ltipro.imports.tables import import_batches, import_rows
from ltipro.jobs.queue import enqueue
from ltipro.storage.database import stored_utc
from ltipro.storage.meetings_tables import meetings
from ltipro.storage.schema import courses

log = logging.getLogger(__name__)

CHECKING = "checking"
CHECKED = "checked"
APPLYING = "applying"
APPLIED = "applied"
UNDONE = "undone"
INTERRUPTED = "interrupted"
CONFIRM_JOB = "import.confirm"
# A course an import made carries no LMS until someone launches it.
NOT_LAUNCHED = ""
SOURCE = "import"

# Called for each row as it is written (tests inject a failure here).
RowHook = Callable[[int], Awaitable[None]]


class BatchError(Exception):
    """The batch is not in a state that allows this; ``status`` is the HTTP status."""

    def __init__(self, message: str, status: int = 409) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


@dataclass(frozen=True)
class BatchRow:
    id: int
    number: int
    meeting_id_cell: str
    meeting_id: str | None
    context_id: str
    domain: str
    lms_course_id: str | None
    action: str
    errors: list[str]
    notes: list[str]
    course_state: str | None
    details: dict[str, Any] | None
    course_id: int | None
    course_created: bool
    meeting_row_id: int | None
    meeting_uid: str | None
    undone_at: datetime | None

    @property
    def topic(self) -> str:
        return str((self.details or {}).get("topic") or "")

    @property
    def imported(self) -> bool:
        """Whether applying the batch made a meeting from this row."""
        return self.meeting_uid is not None


@dataclass(frozen=True)
class Batch:
    id: int
    credential_id: int
    status: str
    file_name: str
    created_by: str
    notify: str | None
    total_rows: int
    checked_rows: int
    error_rows: int
    summary: dict[str, Any]
    message: str | None
    created_at: datetime
    updated_at: datetime
    applied_at: datetime | None
    applied_by: str | None
    undone_at: datetime | None
    undone_by: str | None
    rows: list[BatchRow] = field(default_factory=list)

    @property
    def can_apply(self) -> bool:
        return self.status == CHECKED and self.error_rows == 0 and self.summary.get("add", 0) > 0

    @property
    def undoable_rows(self) -> list[BatchRow]:
        return [r for r in self.rows if r.imported and r.undone_at is None]

    def progress(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "status": self.status,
            "total_rows": self.total_rows,
            "checked_rows": self.checked_rows,
            "error_rows": self.error_rows,
            "summary": self.summary,
            "message": self.message,
            "done": self.status not in (CHECKING, APPLYING),
        }


def _now() -> datetime:
    return datetime.now(UTC)


def _row(r: Any) -> BatchRow:
    return BatchRow(
        id=r.id,
        number=r.row_number,
        meeting_id_cell=r.meeting_id_cell,
        meeting_id=r.meeting_id,
        context_id=r.context_id,
        domain=r.domain,
        lms_course_id=r.lms_course_id,
        action=r.action,
        errors=list(r.errors or []),
        notes=list(r.notes or []),
        course_state=r.course_state,
        details=dict(r.details) if r.details else None,
        course_id=r.course_id,
        course_created=bool(r.course_created),
        meeting_row_id=r.meeting_row_id,
        meeting_uid=r.meeting_uid,
        undone_at=stored_utc(r.undone_at),
    )


def _batch(r: Any, rows: list[BatchRow] | None = None) -> Batch:
    created_at = stored_utc(r.created_at)
    updated_at = stored_utc(r.updated_at)
    assert created_at is not None and updated_at is not None
    return Batch(
        id=r.id,
        credential_id=r.credential_id,
        status=r.status,
        file_name=r.file_name,
        created_by=r.created_by,
        notify=r.notify,
        total_rows=r.total_rows,
        checked_rows=r.checked_rows,
        error_rows=r.error_rows,
        summary=dict(r.summary or {}),
        message=r.message,
        created_at=created_at,
        updated_at=updated_at,
        applied_at=stored_utc(r.applied_at),
        applied_by=r.applied_by,
        undone_at=stored_utc(r.undone_at),
        undone_by=r.undone_by,
        rows=rows or [],
    )


class ImportBatches:
    """Reading and writing the import tables."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        # Tests set this to fail in the middle of applying a batch.
        self.row_hook: RowHook | None = None
        # Meetings are written this many at a time (one statement each way).
        self.write_chunk = 250

    # -- reading ---------------------------------------------------------------------------

    async def get(self, credential_id: int, batch_id: int, *, rows: bool = True) -> Batch | None:
        """A batch of this credential (``None`` for another credential's, too)."""
        async with self.engine.connect() as conn:
            found = (
                await conn.execute(
                    select(import_batches).where(
                        and_(
                            import_batches.c.id == batch_id,
                            import_batches.c.credential_id == credential_id,
                        )
                    )
                )
            ).first()
            if found is None:
                return None
            listed: list[BatchRow] = []
            if rows:
                listed = [
                    _row(r)
                    for r in (
                        await conn.execute(
                            select(import_rows)
                            .where(import_rows.c.batch_id == batch_id)
                            .order_by(import_rows.c.row_number)
                        )
                    ).all()
                ]
        return _batch(found, listed)

    async def list(self, credential_id: int, limit: int = 50) -> list[Batch]:
        async with self.engine.connect() as conn:
            found = (
                await conn.execute(
                    select(import_batches)
                    .where(import_batches.c.credential_id == credential_id)
                    .order_by(import_batches.c.id.desc())
                    .limit(limit)
                )
            ).all()
        return [_batch(r) for r in found]

    async def known(self, credential_id: int, provider: str, checks: Sequence[RowCheck]) -> Known:
        """The associations and courses the rows name, read in two queries."""
        ids = sorted({c.meeting_id for c in checks if c.meeting_id})
        pairs = sorted({(c.domain, c.context_id) for c in checks if c.domain and c.context_id})
        associations: dict[str, Association] = {}
        found_courses: dict[tuple[str, str], tuple[int, bool]] = {}
        async with self.engine.connect() as conn:
            for chunk in _chunks(ids, 500):
                rows = await conn.execute(
                    select(
                        meetings.c.provider_meeting_id,
                        meetings.c.course_id,
                        courses.c.context_id,
                        courses.c.domain,
                    )
                    .join(courses, courses.c.id == meetings.c.course_id)
                    .where(
                        and_(
                            meetings.c.credential_id == credential_id,
                            meetings.c.provider == provider,
                            meetings.c.provider_meeting_id.in_(chunk),
                        )
                    )
                )
                for r in rows:
                    associations[r.provider_meeting_id] = Association(
                        r.provider_meeting_id, r.course_id, r.context_id, r.domain
                    )
            for pair_chunk in _chunks(pairs, 300):
                rows = await conn.execute(
                    select(courses.c.id, courses.c.domain, courses.c.context_id, courses.c.lms)
                    .where(courses.c.credential_id == credential_id)
                    .where(tuple_(courses.c.domain, courses.c.context_id).in_(pair_chunk))
                )
                for r in rows:
                    found_courses[(r.domain, r.context_id)] = (r.id, r.lms != NOT_LAUNCHED)
        return Known(associations, found_courses)

    # -- the dry run -------------------------------------------------------------------------

    async def create(
        self, credential_id: int, file_name: str, actor: str, total_rows: int, notify: str | None
    ) -> int:
        now = _now()
        async with self.engine.begin() as conn:
            result = await conn.execute(
                insert(import_batches).values(
                    credential_id=credential_id,
                    status=CHECKING,
                    file_name=file_name[:255] or "import.csv",
                    created_by=actor[:255],
                    notify=notify,
                    total_rows=total_rows,
                    checked_rows=0,
                    error_rows=0,
                    summary={},
                    created_at=now,
                    updated_at=now,
                )
            )
            batch_id = _new_id(result)
        return int(batch_id)

    async def progress(self, batch_id: int, checked: int, status: str | None = None) -> None:
        values: dict[str, Any] = {"checked_rows": checked, "updated_at": _now()}
        if status is not None:
            values["status"] = status
        async with self.engine.begin() as conn:
            await conn.execute(
                update(import_batches).where(import_batches.c.id == batch_id).values(**values)
            )

    async def store_checks(
        self,
        batch_id: int,
        checks: Sequence[RowCheck],
        summary: dict[str, Any],
        message: str | None = None,
        status: str = CHECKED,
    ) -> None:
        """Replace the batch's rows with these checks and mark it checked."""
        async with self.engine.begin() as conn:
            await conn.execute(delete(import_rows).where(import_rows.c.batch_id == batch_id))
            values = [
                {
                    "batch_id": batch_id,
                    "row_number": c.number,
                    "meeting_id_cell": c.meeting_id_cell,
                    "meeting_id": c.meeting_id,
                    "context_id": c.context_id[:1000],
                    "domain": c.domain[:1000],
                    "lms_course_id": c.lms_course_id[:1000] or None,
                    "action": c.action,
                    "errors": c.errors,
                    "notes": c.notes,
                    "course_state": c.course_state,
                    "details": c.details,
                    "course_created": False,
                }
                for c in checks
            ]
            for chunk in _chunks(values, 500):
                await conn.execute(insert(import_rows), chunk)
            await conn.execute(
                update(import_batches)
                .where(import_batches.c.id == batch_id)
                .values(
                    status=status,
                    total_rows=len(checks),
                    checked_rows=len(checks),
                    error_rows=sum(1 for c in checks if c.errors),
                    summary=summary,
                    message=message,
                    updated_at=_now(),
                )
            )

    async def claim(self, batch_id: int, from_status: str, to_status: str) -> bool:
        """Move the batch between states if it is in ``from_status`` (one wins a race)."""
        async with self.engine.begin() as conn:
            result = await conn.execute(
                update(import_batches)
                .where(
                    and_(import_batches.c.id == batch_id, import_batches.c.status == from_status)
                )
                .values(status=to_status, updated_at=_now())
            )
        return bool(result.rowcount)

    async def interrupt_stale(self, credential_id: int, older_than: datetime) -> None:
        """Batches whose checking stopped (the process ended) say so instead of waiting."""
        async with self.engine.begin() as conn:
            await conn.execute(
                update(import_batches)
                .where(
                    and_(
                        import_batches.c.credential_id == credential_id,
                        import_batches.c.status.in_((CHECKING, APPLYING)),
                        import_batches.c.updated_at < older_than,
                    )
                )
                .values(
                    status=INTERRUPTED,
                    message="The check stopped before it finished (the server restarted). "
                    "Nothing was imported: upload the file again.",
                    updated_at=_now(),
                )
            )

    # -- applying ----------------------------------------------------------------------------

    async def apply(
        self,
        batch: Batch,
        *,
        provider: str,
        actor: str,
        notify: str | None = None,
        calendar_sync: bool = True,
    ) -> None:
        """Write the batch in one transaction; the batch must be ``applying`` already."""
        now = _now()
        async with self.engine.begin() as conn:
            course_ids: dict[tuple[str, str], int] = {}
            created: set[tuple[str, str]] = set()
            pending: list[tuple[BatchRow, dict[str, Any]]] = []
            for row in batch.rows:
                if row.action != ADD:
                    continue
                if self.row_hook is not None:
                    await self.row_hook(row.number)
                key = (row.domain, row.context_id)
                if key not in course_ids:
                    course_ids[key], made = await _course(
                        conn, batch.credential_id, row.domain, row.context_id, row.lms_course_id
                    )
                    if made:
                        created.add(key)
                pending.append((row, _meeting_values(batch, row, course_ids[key], provider, now)))
                if len(pending) >= self.write_chunk:
                    await _write(conn, batch, pending, created, calendar_sync)
                    pending = []
            if pending:
                await _write(conn, batch, pending, created, calendar_sync)
            await enqueue(
                conn,
                CONFIRM_JOB,
                {"batch": batch.id},
                key=f"batch:{batch.id}",
                credential_id=batch.credential_id,
            )
            await conn.execute(
                update(import_batches)
                .where(import_batches.c.id == batch.id)
                .values(
                    status=APPLIED,
                    applied_at=now,
                    applied_by=actor[:255],
                    updated_at=now,
                    notify=notify or batch.notify,
                    message=None,
                )
            )

    # -- undoing -------------------------------------------------------------------------------

    async def undo(self, batch: Batch, rows: Sequence[BatchRow], actor: str) -> int:
        """Remove these rows' meetings in one transaction; returns how many were removed."""
        now = _now()
        removed = 0
        async with self.engine.begin() as conn:
            meeting_ids = [r.meeting_row_id for r in rows if r.meeting_row_id is not None]
            for chunk in _chunks(meeting_ids, 500):
                result = await conn.execute(
                    delete(meetings).where(
                        and_(meetings.c.id.in_(chunk), meetings.c.source == SOURCE)
                    )
                )
                removed += result.rowcount or 0
            await enqueue_calendar_syncs_if_available(
                conn,
                [
                    (row.meeting_uid, batch.credential_id, row.course_id)
                    for row in rows
                    if row.meeting_row_id is not None and row.meeting_uid and row.course_id
                ],
            )
            made = sorted({r.course_id for r in rows if r.course_created and r.course_id})
            for course_id in made:
                left = (
                    await conn.execute(
                        select(func.count())
                        .select_from(meetings)
                        .where(meetings.c.course_id == course_id)
                    )
                ).scalar_one()
                if not left:
                    await conn.execute(
                        delete(courses).where(
                            and_(courses.c.id == course_id, courses.c.lms == NOT_LAUNCHED)
                        )
                    )
            for chunk in _chunks([r.id for r in rows], 500):
                await conn.execute(
                    update(import_rows)
                    .where(import_rows.c.id.in_(chunk))
                    .values(undone_at=now, undone_by=actor[:255])
                )
            still = (
                await conn.execute(
                    select(func.count())
                    .select_from(import_rows)
                    .where(
                        and_(
                            import_rows.c.batch_id == batch.id,
                            import_rows.c.meeting_uid.is_not(None),
                            import_rows.c.undone_at.is_(None),
                        )
                    )
                )
            ).scalar_one()
            values: dict[str, Any] = {"updated_at": now}
            if not still:
                values.update(status=UNDONE, undone_at=now, undone_by=actor[:255])
            await conn.execute(
                update(import_batches).where(import_batches.c.id == batch.id).values(**values)
            )
        return removed

    async def courses_left_empty(self, rows: Sequence[BatchRow]) -> set[int]:
        """Of the courses these rows' batch made, those nobody launched and that keep no
        other meeting once these rows are undone: undoing removes them too."""
        made = {r.course_id for r in rows if r.course_created and r.course_id}
        if not made:
            return set()
        leaving = {r.meeting_row_id for r in rows if r.meeting_row_id is not None}
        out: set[int] = set()
        async with self.engine.connect() as conn:
            for course_id in made:
                row = (
                    await conn.execute(select(courses.c.lms).where(courses.c.id == course_id))
                ).first()
                if row is None or row.lms != NOT_LAUNCHED:
                    continue
                others = (
                    await conn.execute(
                        select(meetings.c.id).where(meetings.c.course_id == course_id)
                    )
                ).all()
                if all(o.id in leaving for o in others):
                    out.add(course_id)
        return out


def _meeting_values(
    batch: Batch, row: BatchRow, course_id: int, provider: str, now: datetime
) -> dict[str, Any]:
    details = row.details or {}
    return {
        "uid": secrets.token_urlsafe(12),
        "credential_id": batch.credential_id,
        "course_id": course_id,
        "provider": provider,
        "provider_meeting_id": str(details.get("id") or row.meeting_id),
        "topic": str(details.get("topic") or row.meeting_id)[:300],
        "agenda": "",
        "start_time": start_of(details, now),
        "duration": int(details.get("duration") or 60),
        "timezone": str(details.get("timezone") or "UTC"),
        "recurrence": details.get("recurrence"),
        "join_url": str(details.get("join_url") or ""),
        # The host is the provider user who made the meeting through the API; no one in
        # the LMS is its host.
        "host_user_id": "",
        "host_name": None,
        "host_email": str(details.get("host_email") or ""),
        "host_role": "instructor",
        "host_account_id": str(details.get("host_id") or ""),
        "audience": [],
        "source": SOURCE,
        "alternative_hosts": None,
        "created_at": now,
        "updated_at": now,
    }


async def _write(
    conn: AsyncConnection,
    batch: Batch,
    pending: Sequence[tuple[BatchRow, dict[str, Any]]],
    created: set[tuple[str, str]],
    calendar_sync: bool,
) -> None:
    """Insert these meetings, record them on their rows, and queue their calendar sync."""
    await conn.execute(insert(meetings), [values for _, values in pending])
    uids = [values["uid"] for _, values in pending]
    ids = {
        r.uid: r.id
        for r in await conn.execute(
            select(meetings.c.uid, meetings.c.id).where(meetings.c.uid.in_(uids))
        )
    }
    await conn.execute(
        update(import_rows)
        .where(import_rows.c.id == bindparam("row_id"))
        .values(
            course_id=bindparam("new_course_id"),
            course_created=bindparam("new_course_created"),
            meeting_row_id=bindparam("new_meeting_row_id"),
            meeting_uid=bindparam("new_meeting_uid"),
        ),
        [
            {
                "row_id": row.id,
                "new_course_id": values["course_id"],
                "new_course_created": (row.domain, row.context_id) in created,
                "new_meeting_row_id": ids[values["uid"]],
                "new_meeting_uid": values["uid"],
            }
            for row, values in pending
        ],
    )
    if calendar_sync:
        await enqueue_calendar_syncs_if_available(
            conn,
            [(values["uid"], batch.credential_id, values["course_id"]) for _, values in pending],
        )


async def _course(
    conn: AsyncConnection,
    credential_id: int,
    domain: str,
    context_id: str,
    lms_course_id: str | None,
) -> tuple[int, bool]:
    """The course's id, recording it when the tool does not know it yet.

    A course nobody launched is a ``courses`` row with an empty ``lms``: its first launch
    fills in the LMS, title and the rest (``Repository.record_course`` updates the row
    that has this credential, domain and context id), and finds the imported meetings.
    """
    where = and_(
        courses.c.credential_id == credential_id,
        courses.c.domain == domain,
        courses.c.context_id == context_id,
    )
    found = (await conn.execute(select(courses.c.id, courses.c.lms_course_id).where(where))).first()
    if found is not None:
        if lms_course_id and not found.lms_course_id:
            await conn.execute(
                update(courses).where(courses.c.id == found.id).values(lms_course_id=lms_course_id)
            )
        return int(found.id), False
    now = _now()
    result = await conn.execute(
        insert(courses).values(
            credential_id=credential_id,
            lms=NOT_LAUNCHED,
            domain=domain,
            context_id=context_id,
            lms_course_id=lms_course_id or None,
            title=None,
            label=None,
            history=[],
            created_at=now,
            # Not launched yet: the import time stands in until the first launch.
            last_launch_at=now,
        )
    )
    return _new_id(result), True


async def course_has_imported(
    engine: AsyncEngine, credential_id: int, domain: str, context_id: str
) -> bool:
    """Whether the course holds an imported meeting (its instructors then become the
    meeting's alternative hosts when they launch)."""
    async with engine.connect() as conn:
        found = (
            await conn.execute(
                select(meetings.c.id)
                .join(courses, courses.c.id == meetings.c.course_id)
                .where(
                    and_(
                        courses.c.credential_id == credential_id,
                        courses.c.domain == domain,
                        courses.c.context_id == context_id,
                        meetings.c.source == SOURCE,
                    )
                )
                .limit(1)
            )
        ).first()
    return found is not None


def calendar_sync_function() -> Callable[..., Any] | None:
    """``ltipro.calendar.sync.enqueue_calendar_sync`` where the calendar sync is installed."""
    try:
        module = importlib.import_module("ltipro.calendar.sync")
    except ImportError:
        return None
    found = getattr(module, "enqueue_calendar_sync", None)
    return found if callable(found) else None


async def enqueue_calendar_sync_if_available(
    conn: AsyncConnection, uid: str, credential_id: int, course_id: int
) -> bool:
    """Queue the meeting's LMS calendar sync in the caller's transaction, where the
    calendar sync is installed (``ltipro.calendar.sync``). After an undo the meeting is
    gone, and the sync removes its calendar events."""
    function = calendar_sync_function()
    if function is None:
        return False
    await function(conn, uid, credential_id, course_id)
    return True


async def enqueue_calendar_syncs_if_available(
    conn: AsyncConnection, meetings_: Sequence[tuple[str, int, int]]
) -> bool:
    """:func:`enqueue_calendar_sync_if_available` for many meetings (uid, credential id,
    course id) at once: their jobs are written in a few statements
    (``ltipro.calendar.sync.enqueue_calendar_syncs``), in the caller's transaction."""
    try:
        module = importlib.import_module("ltipro.calendar.sync")
    except ImportError:
        return False
    bulk = getattr(module, "enqueue_calendar_syncs", None)
    sync = getattr(module, "MeetingSync", None)
    if not callable(bulk) or sync is None:
        for uid, credential_id, course_id in meetings_:
            if not await enqueue_calendar_sync_if_available(conn, uid, credential_id, course_id):
                return False
        return True
    if meetings_:
        await bulk(conn, [sync(*m) for m in meetings_])
    return True


def _new_id(result: Any) -> int:
    key = result.inserted_primary_key
    assert key is not None
    return int(key[0])


def _chunks(items: Sequence[Any], size: int) -> list[Sequence[Any]]:
    return [items[i : i + size] for i in range(0, len(items), size)]
