"""The jobs table: enqueueing in the caller's transaction, claiming under a lease, settling.

Only this module writes the ``jobs`` table. :func:`enqueue` is what the rest of the tool
calls; the claim and settle functions are the worker's; the listing, retry and discard
functions serve ``ltipro jobs`` and the admin console.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import and_, delete, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from ltipro.jobs.handlers import KIND
from ltipro.storage.database import stored_utc
from ltipro.storage.jobs_tables import jobs
from ltipro.storage.repository import Conflict, NotFound

QUEUED = "queued"
RUNNING = "running"
DONE = "done"
DEAD = "dead"
STATUSES = (QUEUED, RUNNING, DONE, DEAD)

DEFAULT_MAX_ATTEMPTS = 12
MAX_ATTEMPTS_LIMIT = 1000
MAX_KEY_LENGTH = 255
# An error is kept for the admin to read, not as a log: its start says what happened.
MAX_ERROR_LENGTH = 4000

Bind = AsyncEngine | AsyncConnection


class JobNotFound(NotFound):
    """There is no job with that id (it may have been discarded)."""


class JobStateError(Conflict):
    """The job is not in a state that allows what was asked; the message says why."""


@dataclass(frozen=True)
class Job:
    """One row of the jobs table."""

    id: int
    kind: str
    key: str
    payload: Any
    status: str
    attempts: int
    max_attempts: int
    run_after: datetime
    locked_by: str | None
    locked_until: datetime | None
    last_error: str | None
    credential_id: int | None
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None


def now() -> datetime:
    return datetime.now(UTC)


def _job(row: Row[Any]) -> Job:
    m = row._mapping
    run_after = stored_utc(m["run_after"])
    created_at = stored_utc(m["created_at"])
    updated_at = stored_utc(m["updated_at"])
    assert run_after is not None and created_at is not None and updated_at is not None
    return Job(
        id=m["id"],
        kind=m["kind"],
        key=m["key"],
        payload=m["payload"],
        status=m["status"],
        attempts=m["attempts"],
        max_attempts=m["max_attempts"],
        run_after=run_after,
        locked_by=m["locked_by"],
        locked_until=stored_utc(m["locked_until"]),
        last_error=m["last_error"],
        credential_id=m["credential_id"],
        created_at=created_at,
        updated_at=updated_at,
        finished_at=stored_utc(m["finished_at"]),
    )


@asynccontextmanager
async def _transaction(bind: Bind) -> AsyncIterator[AsyncConnection]:
    """The caller's transaction when given a connection, else a new one on the engine."""
    if isinstance(bind, AsyncConnection):
        yield bind
        return
    async with bind.begin() as conn:
        yield conn


def error_text(error: BaseException | str) -> str:
    """How an error is stored: its type and message, cut to a readable length."""
    if isinstance(error, str):
        text = error
    else:
        message = str(error)
        text = f"{type(error).__name__}: {message}" if message else type(error).__name__
    if len(text) > MAX_ERROR_LENGTH:
        text = text[: MAX_ERROR_LENGTH - 1] + "…"
    return text


# -- enqueueing ----------------------------------------------------------------------------


def _check_connection(conn: Any, name: str) -> None:
    if not isinstance(conn, AsyncConnection):
        raise TypeError(
            f"{name}() takes the connection of the transaction that makes the change "
            "(`async with engine.begin() as conn:`), so that both are committed together"
        )


def _check_kind(kind: str) -> None:
    if not isinstance(kind, str) or not KIND.fullmatch(kind):
        raise ValueError(
            f"a job kind is 1 to 100 lowercase letters, digits, '.', '_', ':' or '-' (got {kind!r})"
        )


def _check_job(key: str, payload: Any, max_attempts: int) -> None:
    if not isinstance(key, str) or not key or len(key) > MAX_KEY_LENGTH:
        raise ValueError(f"a job's idempotency key is 1 to {MAX_KEY_LENGTH} characters")
    if (
        isinstance(max_attempts, bool)
        or not isinstance(max_attempts, int)
        or not 1 <= max_attempts <= MAX_ATTEMPTS_LIMIT
    ):
        raise ValueError(
            f"max_attempts must be from 1 to {MAX_ATTEMPTS_LIMIT} (got {max_attempts!r})"
        )
    try:
        json.dumps(payload, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"a job's payload must be JSON: {exc}") from None


def _when(run_after: datetime | timedelta | None, at: datetime) -> datetime:
    if run_after is None:
        return at
    if isinstance(run_after, timedelta):
        return at + run_after
    if run_after.tzinfo is None:
        raise ValueError("run_after must be a time with its time zone (UTC, say)")
    return run_after.astimezone(UTC)


def _values(
    kind: str,
    key: str,
    payload: Any,
    when: datetime,
    max_attempts: int,
    credential_id: int | None,
    at: datetime,
) -> dict[str, Any]:
    return {
        "kind": kind,
        "key": key,
        "payload": payload,
        "status": QUEUED,
        "attempts": 0,
        "max_attempts": max_attempts,
        "run_after": when,
        "credential_id": credential_id,
        "created_at": at,
        "updated_at": at,
    }


def _insert_new(conn: AsyncConnection) -> Any:
    """``INSERT ... ON CONFLICT (kind, key) DO NOTHING`` on the connection's database."""
    dialect = conn.dialect.name
    if dialect == "postgresql":
        return postgresql_insert(jobs).on_conflict_do_nothing(
            index_elements=[jobs.c.kind, jobs.c.key]
        )
    if dialect == "sqlite":
        return sqlite_insert(jobs).on_conflict_do_nothing(index_elements=[jobs.c.kind, jobs.c.key])
    # pragma: no cover - the tool runs on SQLite and PostgreSQL only
    raise NotImplementedError(f"the job queue does not support {dialect}")


async def enqueue(
    conn: AsyncConnection,
    kind: str,
    payload: Any,
    *,
    key: str,
    run_after: datetime | timedelta | None = None,
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
    credential_id: int | None = None,
) -> Job:
    """Add a job in the transaction ``conn`` is in, and return it.

    THE JOB IS WRITTEN IN THE CALLER'S TRANSACTION. Pass the connection that makes the
    change the job follows from: the change and the job are committed together or not
    at all, so a change is never left without its job, and a job never runs for a change
    that was rolled back. Never enqueue on a connection of its own after committing the
    change: a crash between the two would lose the job::

        async with tool.repo.engine.begin() as conn:
            meeting = await save_meeting(conn, ...)
            await enqueue(
                conn,
                "calendar.sync",
                {"meeting": meeting.uid},
                key=f"calendar.sync:{meeting.uid}:{meeting.updated_at.isoformat()}",
                credential_id=meeting.credential_id,
            )
        # committed here: the meeting and its calendar job, together

    ``key`` is the idempotency key: a job of the same ``kind`` and ``key`` is created only
    once, and enqueueing it again returns the existing job (whatever its status, and with
    its first payload) without adding one. Make it name the effect, so a repeated request
    maps to the same key and a new change to a new one. The handler receives the key too.

    ``run_after`` delays the first attempt (a time, or a delay from now); after
    ``max_attempts`` failed attempts the job is dead and waits for an admin. The payload
    must be JSON (it is stored as such): ids and values, never secrets, which the handler
    reads from storage when it runs.
    """
    _check_connection(conn, "enqueue")
    _check_kind(kind)
    _check_job(key, payload, max_attempts)
    at = now()
    values = _values(kind, key, payload, _when(run_after, at), max_attempts, credential_id, at)
    # ON CONFLICT rather than catching the unique violation: on PostgreSQL a failed INSERT
    # would abort the caller's whole transaction, change included.
    statement = _insert_new(conn).values(**values).returning(*jobs.c)
    row = (await conn.execute(statement)).first()
    if row is None:
        row = (
            await conn.execute(select(jobs).where(jobs.c.kind == kind, jobs.c.key == key))
        ).first()
        if row is None:  # pragma: no cover - the conflicting row cannot vanish in between
            raise RuntimeError(f"the job {kind} {key!r} clashed with one that is gone")
    return _job(row)


@dataclass(frozen=True)
class NewJob:
    """One job of :func:`enqueue_many`: what :func:`enqueue` takes besides the kind."""

    payload: Any
    key: str
    credential_id: int | None = None
    run_after: datetime | timedelta | None = None
    max_attempts: int = DEFAULT_MAX_ATTEMPTS


# Rows per INSERT: 10 values each stays well under SQLite's 32,766 bound parameters, and
# keeps one statement's text and answer small on PostgreSQL.
ENQUEUE_CHUNK = 500


async def enqueue_many(conn: AsyncConnection, kind: str, items: Iterable[NewJob]) -> list[Job]:
    """Add many jobs of one ``kind`` in the transaction ``conn`` is in; one job per item.

    The same as calling :func:`enqueue` for each item in turn, in a few statements
    instead of one or two per job: an ``INSERT ... ON CONFLICT (kind, key) DO NOTHING
    RETURNING`` of up to :data:`ENQUEUE_CHUNK` rows, then one ``SELECT`` of the jobs
    whose key was taken already. The rules are :func:`enqueue`'s: written in the
    caller's transaction (committed with the change or not at all), and a key names one
    job — an item whose key is taken (by an existing job, or by an earlier item of the
    same call) gets that job back, with its first payload, and adds nothing.

    Returns the jobs in the order of ``items``, so ``result[i]`` is the job of
    ``items[i]``. Every item is checked before anything is written: one bad item
    refuses the whole call with :class:`ValueError`.
    """
    _check_connection(conn, "enqueue_many")
    _check_kind(kind)
    wanted = list(items)
    at = now()
    first: dict[str, dict[str, Any]] = {}
    for item in wanted:
        if not isinstance(item, NewJob):
            raise TypeError(f"enqueue_many() takes NewJob items (got {type(item).__name__})")
        _check_job(item.key, item.payload, item.max_attempts)
        when = _when(item.run_after, at)
        # A key twice in one call: the first item's job, as two enqueue() calls would give.
        first.setdefault(
            item.key,
            _values(kind, item.key, item.payload, when, item.max_attempts, item.credential_id, at),
        )
    found: dict[str, Job] = {}
    # Inserted in key order: two transactions queueing overlapping keys at once wait for
    # each other's rows in the same order on PostgreSQL, never in a circle (deadlock).
    ordered = sorted(first.values(), key=lambda values: str(values["key"]))
    for chunk in _chunked(ordered, ENQUEUE_CHUNK):
        statement = _insert_new(conn).values(chunk).returning(*jobs.c)
        for row in (await conn.execute(statement)).all():
            job = _job(row)
            found[job.key] = job
        taken = [values["key"] for values in chunk if values["key"] not in found]
        if taken:
            rows = await conn.execute(
                select(jobs).where(jobs.c.kind == kind, jobs.c.key.in_(taken))
            )
            for row in rows.all():
                job = _job(row)
                found[job.key] = job
        missing = [key for key in taken if key not in found]
        if missing:  # pragma: no cover - the conflicting row cannot vanish in between
            raise RuntimeError(f"the job {kind} {missing[0]!r} clashed with one that is gone")
    return [found[item.key] for item in wanted]


def _chunked(items: list[dict[str, Any]], size: int) -> list[list[dict[str, Any]]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


# -- the worker's side ---------------------------------------------------------------------


def _due(table: Any, at: datetime) -> Any:
    return or_(
        and_(table.c.status == QUEUED, table.c.run_after <= at),
        # A running job whose lease ran out: its worker died or lost the database.
        and_(table.c.status == RUNNING, table.c.locked_until <= at),
    )


async def claim(
    engine: AsyncEngine,
    worker_id: str,
    *,
    kinds: Sequence[str],
    lease: timedelta,
    at: datetime | None = None,
    untouched_since: datetime | None = None,
) -> Job | None:
    """Take the next due job of one of ``kinds`` for ``worker_id``, or ``None``.

    The job becomes ``running`` with a lease until ``at + lease`` and one more attempt
    counted. On PostgreSQL the candidate row is locked with ``FOR UPDATE SKIP LOCKED``, so
    workers racing for jobs each take a different one without waiting for each other; on
    SQLite the single ``UPDATE ... RETURNING`` statement runs under the database's write
    lock, which gives the same guarantee. ``untouched_since`` skips jobs changed since
    then (a drain takes each job at most once).
    """
    if not kinds:
        return None
    at = at or now()
    # An alias, so the subquery stands on its own instead of correlating with the UPDATE.
    candidates = jobs.alias("candidate")
    candidate = select(candidates.c.id).where(
        candidates.c.kind.in_(list(kinds)), _due(candidates, at)
    )
    if untouched_since is not None:
        candidate = candidate.where(candidates.c.updated_at < untouched_since)
    candidate = candidate.order_by(candidates.c.run_after, candidates.c.id).limit(1)
    if engine.dialect.name == "postgresql":
        candidate = candidate.with_for_update(skip_locked=True)
    statement = (
        update(jobs)
        # Checked again on the row being changed: a second line against a double claim.
        .where(jobs.c.id == candidate.scalar_subquery(), _due(jobs, at))
        .values(
            status=RUNNING,
            locked_by=worker_id,
            locked_until=at + lease,
            attempts=jobs.c.attempts + 1,
            updated_at=at,
        )
        .returning(*jobs.c)
    )
    async with engine.begin() as conn:
        row = (await conn.execute(statement)).first()
    return _job(row) if row is not None else None


async def _settle(engine: AsyncEngine, job: Job, worker_id: str, **values: Any) -> bool:
    """Change a job the worker holds; ``False`` when its lease has passed to another."""
    async with engine.begin() as conn:
        result = await conn.execute(
            update(jobs)
            .where(
                jobs.c.id == job.id,
                jobs.c.status == RUNNING,
                jobs.c.locked_by == worker_id,
            )
            .values(**values)
        )
    return bool(result.rowcount)


async def extend_lease(engine: AsyncEngine, job: Job, worker_id: str, until: datetime) -> bool:
    """Keep holding a job whose handler is still at work."""
    return await _settle(engine, job, worker_id, locked_until=until)


async def mark_done(engine: AsyncEngine, job: Job, worker_id: str, at: datetime) -> bool:
    return await _settle(
        engine,
        job,
        worker_id,
        status=DONE,
        locked_by=None,
        locked_until=None,
        last_error=None,
        finished_at=at,
        updated_at=at,
    )


async def mark_retry(
    engine: AsyncEngine,
    job: Job,
    worker_id: str,
    at: datetime,
    run_after: datetime,
    error: str,
    *,
    uncounted: bool = False,
) -> bool:
    """Queue the job again; ``uncounted`` gives this attempt back (a throttled one)."""
    values: dict[str, Any] = {}
    if uncounted:
        values["attempts"] = max(0, job.attempts - 1)
    return await _settle(
        engine,
        job,
        worker_id,
        status=QUEUED,
        run_after=run_after,
        locked_by=None,
        locked_until=None,
        last_error=error,
        updated_at=at,
        **values,
    )


async def mark_dead(
    engine: AsyncEngine, job: Job, worker_id: str, at: datetime, error: str
) -> bool:
    return await _settle(
        engine,
        job,
        worker_id,
        status=DEAD,
        # A job whose worker died on its last attempt was counted one attempt too many.
        attempts=min(job.attempts, job.max_attempts),
        locked_by=None,
        locked_until=None,
        last_error=error,
        finished_at=at,
        updated_at=at,
    )


async def release(engine: AsyncEngine, job: Job, worker_id: str, at: datetime) -> bool:
    """Give back a job whose run was interrupted by the worker stopping, uncounted."""
    return await _settle(
        engine,
        job,
        worker_id,
        status=QUEUED,
        attempts=max(job.attempts - 1, 0),
        run_after=at,
        locked_by=None,
        locked_until=None,
        updated_at=at,
    )


# -- listing, retrying and discarding (the CLI and the admin console) -------------------------


async def get_job(bind: Bind, job_id: int) -> Job:
    """The job with ``job_id``; :class:`JobNotFound` when there is none."""
    async with _transaction(bind) as conn:
        row = (await conn.execute(select(jobs).where(jobs.c.id == job_id))).first()
    if row is None:
        raise JobNotFound(f"there is no job with id {job_id} (see `ltipro jobs list`)")
    return _job(row)


async def list_jobs(
    bind: Bind,
    *,
    status: str | None = None,
    kind: str | None = None,
    credential_id: int | None = None,
    limit: int = 100,
) -> list[Job]:
    """Jobs, newest first, optionally only those of one status, kind or credential."""
    if status is not None and status not in STATUSES:
        raise ValueError(f"a job's status is one of {', '.join(STATUSES)} (got {status!r})")
    query = select(jobs).order_by(jobs.c.id.desc()).limit(limit)
    if status is not None:
        query = query.where(jobs.c.status == status)
    if kind is not None:
        query = query.where(jobs.c.kind == kind)
    if credential_id is not None:
        query = query.where(jobs.c.credential_id == credential_id)
    async with _transaction(bind) as conn:
        rows = (await conn.execute(query)).all()
    return [_job(row) for row in rows]


async def dead_jobs(bind: Bind, *, credential_id: int | None = None, limit: int = 100) -> list[Job]:
    """The dead letters: jobs that failed every attempt and wait for an admin."""
    return await list_jobs(bind, status=DEAD, credential_id=credential_id, limit=limit)


async def count_jobs(bind: Bind, *, credential_id: int | None = None) -> dict[str, int]:
    """How many jobs there are in each status (every status present, 0 included)."""
    query = select(jobs.c.status, func.count()).group_by(jobs.c.status)
    if credential_id is not None:
        query = query.where(jobs.c.credential_id == credential_id)
    async with _transaction(bind) as conn:
        found = {status: count for status, count in (await conn.execute(query)).all()}
    return {status: int(found.get(status, 0)) for status in STATUSES}


def _not_allowed(job: Job, action: str) -> JobStateError:
    if job.status == RUNNING:
        return JobStateError(
            f"job {job.id} is running now (held by {job.locked_by}); it can be {action} "
            "once that attempt has ended"
        )
    return JobStateError(f"job {job.id} is {job.status}; only a dead or queued job can be {action}")


async def retry_job(bind: Bind, job_id: int, *, at: datetime | None = None) -> Job:
    """Put a dead job back in the queue, due now and with its attempts counted from zero.

    A queued job waiting for its next attempt is made due now the same way. Its last
    error stays on it until the next attempt ends.
    """
    at = at or now()
    async with _transaction(bind) as conn:
        row = (
            await conn.execute(
                update(jobs)
                .where(jobs.c.id == job_id, jobs.c.status.in_((DEAD, QUEUED)))
                .values(
                    status=QUEUED,
                    attempts=0,
                    run_after=at,
                    locked_by=None,
                    locked_until=None,
                    finished_at=None,
                    updated_at=at,
                )
                .returning(*jobs.c)
            )
        ).first()
        if row is None:
            raise _not_allowed(await get_job(conn, job_id), "retried")
    return _job(row)


async def discard_job(bind: Bind, job_id: int) -> Job:
    """Delete a dead (or still queued) job for good, and return what it was.

    Its idempotency key is free again afterwards: enqueueing the same kind and key makes
    a new job.
    """
    async with _transaction(bind) as conn:
        row = (
            await conn.execute(
                delete(jobs)
                .where(jobs.c.id == job_id, jobs.c.status.in_((DEAD, QUEUED)))
                .returning(*jobs.c)
            )
        ).first()
        if row is None:
            raise _not_allowed(await get_job(conn, job_id), "discarded")
    return _job(row)


async def purge_done(bind: Bind, *, older_than: timedelta, at: datetime | None = None) -> int:
    """Delete jobs done more than ``older_than`` ago; how many went.

    Their idempotency keys are free again afterwards, so keep them longer than the same
    change could come again.
    """
    cutoff = (at or now()) - older_than
    async with _transaction(bind) as conn:
        result = await conn.execute(
            delete(jobs).where(jobs.c.status == DONE, jobs.c.finished_at < cutoff)
        )
    return int(result.rowcount or 0)
