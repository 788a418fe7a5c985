"""The durable job queue: enqueueing in the caller's transaction, idempotency keys, leases,
backoff, dead letters, racing workers, crashed workers, the web app's runner and the CLI.

Every queue test runs on SQLite, and on PostgreSQL too when ``LTIPRO_TEST_DATABASE_URL``
is set. Time is a clock the test moves by hand and jitter a random source it reads, so
no test waits for a backoff or a lease to run out.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, insert, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from ltipro.cli import main
from ltipro.jobs import (
    DEAD,
    DONE,
    QUEUED,
    RUNNING,
    Backoff,
    HandlerConflict,
    JobContext,
    JobHandlers,
    JobNotFound,
    JobStateError,
    NewJob,
    PermanentFailure,
    RetryAfter,
    Worker,
    count_jobs,
    dead_jobs,
    discard_job,
    enqueue,
    enqueue_many,
    get_job,
    job_handler,
    list_jobs,
    purge_done,
    queue,
    register_handler,
    registry,
    retry_after_seconds,
    retry_job,
)
from ltipro.jobs.handlers import MAX_RETRY_AFTER
from ltipro.jobs.queue import Job
from ltipro.jobs.worker import THROTTLE_JITTER, runs_in_app
from ltipro.plugins import Plugins
from ltipro.settings import Settings, SettingsError
from ltipro.storage.database import create_engine
from ltipro.storage.schema import credentials
from ltipro.tool import Tool
from ltipro.web.app import create_app

PG_URL = os.environ.get("LTIPRO_TEST_DATABASE_URL")
LEASE = timedelta(minutes=5)


# -- clocks, recorders, jobs ---------------------------------------------------------------


class Clock:
    """A clock that moves only when the test says; starts a moment ahead of real time, so
    jobs enqueued at real time are due at once."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC) + timedelta(seconds=1)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


class TopOfWindow(random.Random):
    """Jitter that always picks the top of the window it is offered, and records the window."""

    def __init__(self) -> None:
        super().__init__(0)
        self.windows: list[tuple[float, float]] = []

    def uniform(self, a: float, b: float) -> float:
        self.windows.append((a, b))
        return b


class Recorder:
    """A handler that records every run, and any run that overlaps another of the same job."""

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay
        self.running: set[int] = set()
        self.overlaps = 0
        self.runs: Counter[int] = Counter()
        self.by_worker: Counter[str] = Counter()
        self.keys: list[str] = []
        self.attempts: list[int] = []
        self.started = asyncio.Event()

    async def __call__(self, context: JobContext) -> None:
        job_id = context.job.id
        if job_id in self.running:
            self.overlaps += 1
        self.running.add(job_id)
        self.started.set()
        try:
            self.runs[job_id] += 1
            self.by_worker[context.worker_id.rsplit("/", 1)[0]] += 1
            self.keys.append(context.key)
            self.attempts.append(context.attempt)
            await asyncio.sleep(self.delay)
        finally:
            self.running.discard(job_id)


async def add_job(engine: AsyncEngine, kind: str, key: str, payload: Any = None, **kw: Any) -> Job:
    async with engine.begin() as conn:
        return await enqueue(conn, kind, payload if payload is not None else {}, key=key, **kw)


async def all_jobs(engine: AsyncEngine) -> list[Job]:
    return await list_jobs(engine, limit=10000)


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(database_url)
    try:
        yield engine
    finally:
        await engine.dispose()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def handlers() -> JobHandlers:
    return JobHandlers()


def worker_for(engine: AsyncEngine, handlers: JobHandlers, clock: Clock, **kw: Any) -> Worker:
    return Worker(engine, handlers=handlers, clock=clock, name=kw.pop("name", "w1"), **kw)


# -- enqueueing ----------------------------------------------------------------------------


async def test_a_job_enqueued_in_a_transaction_that_rolls_back_leaves_no_job(
    engine: AsyncEngine,
) -> None:
    with pytest.raises(RuntimeError, match="the change failed"):
        async with engine.begin() as conn:
            await conn.execute(
                insert(credentials).values(
                    name="college",
                    options={},
                    enabled_plugins=[],
                    auto_approve_registrations=False,
                    created_at=datetime.now(UTC),
                )
            )
            await enqueue(conn, "calendar.sync", {"meeting": "m1"}, key="m1:v1")
            raise RuntimeError("the change failed")
    assert await all_jobs(engine) == []
    async with engine.connect() as conn:
        assert (await conn.execute(select(func.count()).select_from(credentials))).scalar() == 0

    # The same change committed: the change and its job are both there.
    async with engine.begin() as conn:
        await conn.execute(
            insert(credentials).values(
                name="college",
                options={},
                enabled_plugins=[],
                auto_approve_registrations=False,
                created_at=datetime.now(UTC),
            )
        )
        job = await enqueue(conn, "calendar.sync", {"meeting": "m1"}, key="m1:v1")
    assert [j.id for j in await all_jobs(engine)] == [job.id]
    assert job.status == QUEUED and job.attempts == 0 and job.payload == {"meeting": "m1"}


async def test_a_job_on_a_connection_that_is_never_committed_is_not_there(
    engine: AsyncEngine,
) -> None:
    async with engine.connect() as conn:
        await enqueue(conn, "calendar.sync", {}, key="k")
        await conn.rollback()
    assert await all_jobs(engine) == []


async def test_the_same_idempotency_key_twice_makes_one_job_and_returns_it(
    engine: AsyncEngine, handlers: JobHandlers, clock: Clock
) -> None:
    async with engine.begin() as conn:
        first = await enqueue(conn, "calendar.sync", {"v": 1}, key="meeting-7:v3")
        again = await enqueue(conn, "calendar.sync", {"v": 2}, key="meeting-7:v3")
        # The duplicate did not break the caller's transaction (on PostgreSQL a failed
        # INSERT would have): the change after it commits with it.
        await conn.execute(
            insert(credentials).values(
                name="after-the-duplicate",
                options={},
                enabled_plugins=[],
                auto_approve_registrations=False,
                created_at=datetime.now(UTC),
            )
        )
    later = await add_job(engine, "calendar.sync", "meeting-7:v3", {"v": 3})
    other_kind = await add_job(engine, "course.notify", "meeting-7:v3")
    assert first.id == again.id == later.id
    assert later.payload == {"v": 1}  # the first payload stands
    assert other_kind.id != first.id  # keys are unique per kind
    assert len(await all_jobs(engine)) == 2
    async with engine.connect() as conn:
        names = (await conn.execute(select(credentials.c.name))).scalars().all()
    assert names == ["after-the-duplicate"]

    # Once done, the key still names the same job: enqueueing it again runs nothing.
    recorder = Recorder()
    handlers.register("calendar.sync", recorder)
    assert [o.result for o in await worker_for(engine, handlers, clock).drain()] == ["done"]
    done_again = await add_job(engine, "calendar.sync", "meeting-7:v3")
    assert done_again.id == first.id and done_again.status == DONE
    assert await worker_for(engine, handlers, clock).drain() == []
    assert recorder.runs == Counter({first.id: 1})


async def test_enqueue_refuses_what_it_cannot_store(engine: AsyncEngine) -> None:
    with pytest.raises(TypeError, match="the connection of the transaction"):
        await enqueue(engine, "calendar.sync", {}, key="k")  # type: ignore[arg-type]
    async with engine.begin() as conn:
        with pytest.raises(ValueError, match="a job kind is"):
            await enqueue(conn, "Calendar Sync", {}, key="k")
        with pytest.raises(ValueError, match="idempotency key is 1 to 255"):
            await enqueue(conn, "calendar.sync", {}, key="")
        with pytest.raises(ValueError, match="idempotency key is 1 to 255"):
            await enqueue(conn, "calendar.sync", {}, key="k" * 256)
        with pytest.raises(ValueError, match="payload must be JSON"):
            await enqueue(conn, "calendar.sync", {"at": datetime.now(UTC)}, key="k")
        with pytest.raises(ValueError, match="payload must be JSON"):
            await enqueue(conn, "calendar.sync", {"x": float("nan")}, key="k")
        with pytest.raises(ValueError, match="max_attempts must be from 1"):
            await enqueue(conn, "calendar.sync", {}, key="k", max_attempts=0)
        with pytest.raises(ValueError, match="time zone"):
            await enqueue(conn, "calendar.sync", {}, key="k", run_after=datetime(2030, 1, 1))
    assert await all_jobs(engine) == []


async def test_enqueue_many_makes_one_job_per_key_within_the_batch_and_against_existing_ones(
    engine: AsyncEngine, handlers: JobHandlers, clock: Clock
) -> None:
    existing = await add_job(
        engine, "calendar.sync", "m2:v1", {"v": "existing"}, credential_id=None
    )
    async with engine.begin() as conn:
        made = await enqueue_many(
            conn,
            "calendar.sync",
            [
                NewJob({"v": "a"}, key="m1:v1"),
                NewJob({"v": "b"}, key="m2:v1"),  # taken by an existing job
                NewJob({"v": "c"}, key="m1:v1"),  # taken earlier in the same batch
                NewJob({"v": "d"}, key="m3:v1", max_attempts=3, run_after=timedelta(hours=1)),
            ],
        )
        # The duplicates did not break the caller's transaction: the change commits.
        await conn.execute(
            insert(credentials).values(
                name="with-the-jobs",
                options={},
                enabled_plugins=[],
                auto_approve_registrations=False,
                created_at=datetime.now(UTC),
            )
        )
    assert [j.key for j in made] == ["m1:v1", "m2:v1", "m1:v1", "m3:v1"]
    assert made[0].id == made[2].id and made[0].payload == {"v": "a"}
    assert made[1].id == existing.id and made[1].payload == {"v": "existing"}
    assert made[3].max_attempts == 3 and made[3].run_after > made[0].run_after
    assert len({j.id for j in made}) == 3
    jobs_now = await all_jobs(engine)
    assert sorted(j.key for j in jobs_now) == ["m1:v1", "m2:v1", "m3:v1"]
    # enqueue() and enqueue_many() agree on what a key names, and a kind keeps its own keys.
    assert (await add_job(engine, "calendar.sync", "m3:v1")).id == made[3].id
    async with engine.begin() as conn:
        other = await enqueue_many(conn, "course.notify", [NewJob({}, key="m1:v1")])
        again = await enqueue_many(conn, "calendar.sync", [NewJob({}, key="m1:v1")])
        assert await enqueue_many(conn, "calendar.sync", []) == []
    assert other[0].id not in {j.id for j in made} and again[0].id == made[0].id

    # The jobs run like any other: each once.
    recorder = Recorder()
    handlers.register("calendar.sync", recorder)
    handlers.register("course.notify", Recorder())
    clock.advance(3600)
    assert len(await worker_for(engine, handlers, clock).drain()) == 4
    assert sorted(recorder.runs.values()) == [1, 1, 1]


async def test_enqueue_many_writes_large_batches_in_chunks_and_all_or_nothing(
    engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(queue, "ENQUEUE_CHUNK", 7)
    await add_job(engine, "calendar.sync", "k-3")
    await add_job(engine, "calendar.sync", "k-11")
    items = [NewJob({"n": n}, key=f"k-{n % 20}", credential_id=None) for n in range(30)]
    async with engine.begin() as conn:
        made = await enqueue_many(conn, "calendar.sync", items)
    assert [j.key for j in made] == [i.key for i in items]
    assert {j.key: j.payload for j in made}["k-5"] == {"n": 5}
    assert len(await all_jobs(engine)) == 20

    # Rolled back with the change: none of them.
    with pytest.raises(RuntimeError, match="the change failed"):
        async with engine.begin() as conn:
            await enqueue_many(conn, "course.notify", [NewJob({}, key=f"n{n}") for n in range(15)])
            raise RuntimeError("the change failed")
    assert len(await all_jobs(engine)) == 20


async def test_enqueue_many_checks_every_item_before_writing_any(engine: AsyncEngine) -> None:
    with pytest.raises(TypeError, match="the connection of the transaction"):
        await enqueue_many(engine, "calendar.sync", [])  # type: ignore[arg-type]
    async with engine.begin() as conn:
        with pytest.raises(ValueError, match="a job kind is"):
            await enqueue_many(conn, "Calendar Sync", [NewJob({}, key="k")])
        for bad in (
            NewJob({}, key=""),
            NewJob({"x": float("nan")}, key="k2"),
            NewJob({}, key="k3", max_attempts=0),
            NewJob({}, key="k4", run_after=datetime(2030, 1, 1)),
        ):
            with pytest.raises(ValueError):
                await enqueue_many(conn, "calendar.sync", [NewJob({}, key="fine"), bad])
        with pytest.raises(TypeError, match="NewJob"):
            await enqueue_many(conn, "calendar.sync", [("k", {})])  # type: ignore[list-item]
    assert await all_jobs(engine) == []


async def test_run_after_delays_the_first_attempt(
    engine: AsyncEngine, handlers: JobHandlers, clock: Clock
) -> None:
    handlers.register("later", Recorder())
    job = await add_job(engine, "later", "k", run_after=clock.now + timedelta(hours=1))
    worker = worker_for(engine, handlers, clock)
    assert await worker.drain() == []
    clock.advance(3600)
    assert [(o.job.id, o.result) for o in await worker.drain()] == [(job.id, "done")]


# -- handlers ------------------------------------------------------------------------------


def test_a_kind_takes_one_handler_and_a_second_one_is_refused() -> None:
    handlers = JobHandlers()

    async def first(context: JobContext) -> None: ...

    async def second(context: JobContext) -> None: ...

    handlers.register("calendar.sync", first)
    handlers.register("calendar.sync", first)  # the same one again (a module re-imported)
    with pytest.raises(HandlerConflict, match="already has a handler"):
        handlers.register("calendar.sync", second)
    with pytest.raises(ValueError, match="a job kind is"):
        handlers.register("", first)
    with pytest.raises(ValueError, match="timeout must be positive"):
        handlers.register("other", first, timeout=0)
    assert handlers.kinds() == ["calendar.sync"]
    handlers.unregister("calendar.sync")
    assert "calendar.sync" not in handlers


def test_job_handler_and_register_handler_fill_the_process_registry() -> None:
    @job_handler("test.decorated", timeout=30)
    async def decorated(context: JobContext) -> None: ...

    async def plain(context: JobContext) -> None: ...

    register_handler("test.plain", plain)
    try:
        registration = registry.get("test.decorated")
        assert registration is not None
        assert registration.handler is decorated and registration.timeout == 30
        assert "test.plain" in registry
    finally:
        registry.unregister("test.decorated")
        registry.unregister("test.plain")


async def test_a_worker_leaves_alone_the_jobs_of_kinds_it_has_no_handler_for(
    engine: AsyncEngine, handlers: JobHandlers, clock: Clock
) -> None:
    handlers.register("known", Recorder())
    unknown = await add_job(engine, "from.another.plugin", "k")
    assert await worker_for(engine, handlers, clock).drain() == []
    job = await get_job(engine, unknown.id)
    assert job.status == QUEUED and job.attempts == 0


# -- failures, backoff and throttling ------------------------------------------------------


async def test_a_handler_failing_twice_then_succeeding_is_done_after_three_attempts_with_backoff(
    engine: AsyncEngine, handlers: JobHandlers, clock: Clock
) -> None:
    calls: list[tuple[int, str]] = []

    async def flaky(context: JobContext) -> None:
        calls.append((context.attempt, context.key))
        if context.attempt <= 2:
            raise RuntimeError(f"LMS answered 502 (attempt {context.attempt})")

    handlers.register("flaky", flaky)
    rng = TopOfWindow()
    worker = worker_for(engine, handlers, clock, rng=rng, backoff=Backoff(base=10, cap=3600))
    job = await add_job(engine, "flaky", "meeting-1:v1")

    first = await worker.run_one()
    assert first is not None and first.result == "retry" and first.delay == 10
    stored = await get_job(engine, job.id)
    assert stored.status == QUEUED and stored.attempts == 1
    assert stored.run_after == clock.now + timedelta(seconds=10)
    assert stored.last_error == "RuntimeError: LMS answered 502 (attempt 1)"
    assert stored.locked_by is None and stored.locked_until is None

    clock.advance(9.9)
    assert await worker.run_one() is None  # not due before its backoff ends
    clock.advance(0.1)
    second = await worker.run_one()
    assert second is not None and second.result == "retry" and second.delay == 20
    assert (await get_job(engine, job.id)).run_after == clock.now + timedelta(seconds=20)

    clock.advance(20)
    third = await worker.run_one()
    assert third is not None and third.result == "done"
    done = await get_job(engine, job.id)
    assert done.status == DONE and done.attempts == 3 and done.last_error is None
    assert done.finished_at == clock.now
    # Full jitter: each wait was drawn from zero up to base·2ⁿ⁻¹.
    assert rng.windows == [(0.0, 10.0), (0.0, 20.0)]
    assert calls == [(1, "meeting-1:v1"), (2, "meeting-1:v1"), (3, "meeting-1:v1")]


def test_backoff_doubles_up_to_its_cap_and_jitters_over_the_whole_window() -> None:
    backoff = Backoff(base=10, cap=100)
    assert [backoff.ceiling(n) for n in range(1, 7)] == [10, 20, 40, 80, 100, 100]
    assert backoff.ceiling(5000) == 100  # no overflow however many attempts
    rng = random.Random(7)
    for attempt in (1, 3, 6):
        delays = [backoff.delay(attempt, rng) for _ in range(500)]
        ceiling = backoff.ceiling(attempt)
        assert all(0 <= d <= ceiling for d in delays)
        assert min(delays) < 0.1 * ceiling and max(delays) > 0.9 * ceiling


async def test_retry_after_from_a_handler_sets_the_next_attempt_instead_of_the_backoff(
    engine: AsyncEngine, handlers: JobHandlers, clock: Clock
) -> None:
    runs: list[int] = []

    async def throttled(context: JobContext) -> None:
        runs.append(context.attempt)
        if len(runs) == 1:
            raise RetryAfter(120, "429 Too Many Requests")

    handlers.register("throttled", throttled)
    rng = TopOfWindow()
    worker = worker_for(engine, handlers, clock, rng=rng)
    job = await add_job(engine, "throttled", "k")
    outcome = await worker.run_one()
    # The service's wait plus jitter of up to half of it: never sooner than asked.
    assert outcome is not None and outcome.result == "retry" and outcome.delay == 180
    assert rng.windows == [(0.0, THROTTLE_JITTER)]  # the jitter's draw, not a backoff's
    stored = await get_job(engine, job.id)
    assert stored.run_after == clock.now + timedelta(seconds=180)
    assert stored.last_error == "throttled: 429 Too Many Requests (retry after 120 s)"
    assert stored.attempts == 0  # a throttled attempt is given back
    clock.advance(179)
    assert await worker.run_one() is None
    clock.advance(1)
    again = await worker.run_one()
    assert again is not None and again.result == "done"
    assert runs == [1, 1]  # the second run is attempt 1 again


async def test_throttling_for_longer_than_any_job_has_attempts_loses_nothing(
    engine: AsyncEngine, handlers: JobHandlers, clock: Clock
) -> None:
    throttled_runs = 40  # far more than the job's 3 attempts

    async def busy_lms(context: JobContext) -> None:
        busy_lms.runs += 1  # type: ignore[attr-defined]
        if busy_lms.runs <= throttled_runs:  # type: ignore[attr-defined]
            raise RetryAfter(5, "403 Rate Limit Exceeded")

    busy_lms.runs = 0  # type: ignore[attr-defined]
    handlers.register("busy", busy_lms)
    worker = worker_for(engine, handlers, clock)
    job = await add_job(engine, "busy", "k", max_attempts=3)
    for _ in range(throttled_runs + 1):
        outcome = await worker.run_one()
        assert outcome is not None and outcome.result in ("retry", "done")
        clock.advance(8)
    stored = await get_job(engine, job.id)
    assert stored.status == DONE and stored.attempts == 1


async def test_a_service_that_throttles_for_more_than_a_day_still_ends_in_the_dead_letters(
    engine: AsyncEngine, handlers: JobHandlers, clock: Clock
) -> None:
    async def always_throttled(context: JobContext) -> None:
        raise RetryAfter(3600, "429 Too Many Requests")

    handlers.register("always", always_throttled)
    worker = worker_for(engine, handlers, clock)
    job = await add_job(engine, "always", "k", max_attempts=2)
    results = []
    for _ in range(60):
        outcome = await worker.run_one()
        if outcome is None:
            clock.advance(3600 * 1.5)
            continue
        results.append(outcome.result)
        if outcome.result == "dead":
            break
    assert results[-1] == "dead"
    # Throttled attempts were given back for a day, then counted: 2 attempts, then dead.
    assert clock.now - job.created_at >= timedelta(days=1)
    assert results.count("retry") > job.max_attempts
    stored = await get_job(engine, job.id)
    assert stored.status == DEAD and "Too Many Requests" in (stored.last_error or "")


def test_retry_after_reads_seconds_and_http_dates_and_falls_back_on_nonsense() -> None:
    now = datetime(2026, 12, 8, 9, 0, tzinfo=UTC)
    assert retry_after_seconds("30", default=5) == 30
    assert (
        retry_after_seconds(
            format_datetime(now + timedelta(seconds=90), usegmt=True), default=5, now=now
        )
        == 90
    )
    assert (
        retry_after_seconds(
            format_datetime(now - timedelta(hours=1), usegmt=True), default=5, now=now
        )
        == 0
    )
    for nonsense in (None, "", "soon", "-5", "1.5e3"):
        assert retry_after_seconds(nonsense, default=5, now=now) == 5
    assert RetryAfter.from_header("45", default=5).seconds == 45
    assert RetryAfter(10**9).seconds == MAX_RETRY_AFTER
    assert RetryAfter(-3).seconds == 0 and RetryAfter(float("nan")).seconds == 0


async def test_a_permanent_failure_is_dead_at_once(
    engine: AsyncEngine, handlers: JobHandlers, clock: Clock
) -> None:
    async def refused(context: JobContext) -> None:
        raise PermanentFailure("the course no longer exists in Canvas (404)")

    handlers.register("refused", refused)
    job = await add_job(engine, "refused", "k", max_attempts=5)
    outcome = await worker_for(engine, handlers, clock).run_one()
    assert outcome is not None and outcome.result == "dead"
    stored = await get_job(engine, job.id)
    assert stored.status == DEAD and stored.attempts == 1
    assert stored.last_error == "PermanentFailure: the course no longer exists in Canvas (404)"


async def test_a_handler_past_its_timeout_fails_the_attempt(
    engine: AsyncEngine, handlers: JobHandlers, clock: Clock
) -> None:
    async def hangs(context: JobContext) -> None:
        await asyncio.sleep(30)

    handlers.register("hangs", hangs, timeout=0.05)
    job = await add_job(engine, "hangs", "k")
    outcome = await worker_for(engine, handlers, clock).run_one()
    assert outcome is not None and outcome.result == "retry"
    stored = await get_job(engine, job.id)
    assert stored.status == QUEUED
    assert stored.last_error == "the handler did not finish within 0.05 seconds"


# -- dead letters ----------------------------------------------------------------------------


async def test_exhausted_attempts_go_dead_then_retry_runs_to_done_and_discard_removes(
    engine: AsyncEngine, handlers: JobHandlers, clock: Clock
) -> None:
    broken = {"yes": True}
    recorder = Recorder()

    async def sync(context: JobContext) -> None:
        await recorder(context)
        if broken["yes"]:
            raise ConnectionError("Canvas is down")

    handlers.register("sync", sync)
    worker = worker_for(engine, handlers, clock)
    job = await add_job(engine, "sync", "meeting-1", max_attempts=3)
    results = []
    for _ in range(3):
        results += [o.result for o in await worker.drain()]
        clock.advance(3600)
    assert results == ["retry", "retry", "dead"]
    dead = await get_job(engine, job.id)
    assert dead.status == DEAD and dead.attempts == 3
    assert dead.last_error == "ConnectionError: Canvas is down"
    assert dead.finished_at is not None and dead.locked_by is None
    assert [j.id for j in await dead_jobs(engine)] == [job.id]
    assert await worker.drain() == []  # a dead job is never picked up by itself

    broken["yes"] = False
    retried = await retry_job(engine, job.id)
    assert retried.status == QUEUED and retried.attempts == 0 and retried.finished_at is None
    assert [o.result for o in await worker.drain()] == ["done"]
    assert (await get_job(engine, job.id)).status == DONE
    assert await dead_jobs(engine) == []
    assert recorder.runs[job.id] == 4

    broken["yes"] = True
    doomed = await add_job(engine, "sync", "meeting-2", max_attempts=1)
    assert [o.result for o in await worker.drain()] == ["dead"]
    assert [j.id for j in await dead_jobs(engine)] == [doomed.id]
    discarded = await discard_job(engine, doomed.id)
    assert discarded.id == doomed.id and discarded.status == DEAD
    assert await dead_jobs(engine) == []
    with pytest.raises(JobNotFound, match=f"there is no job with id {doomed.id}"):
        await get_job(engine, doomed.id)
    # Its key is free again: the same work can be queued anew.
    renewed = await add_job(engine, "sync", "meeting-2")
    assert renewed.id != doomed.id and renewed.status == QUEUED

    with pytest.raises(JobStateError, match=f"job {job.id} is done"):
        await retry_job(engine, job.id)
    with pytest.raises(JobStateError, match=f"job {job.id} is done"):
        await discard_job(engine, job.id)
    with pytest.raises(JobNotFound):
        await retry_job(engine, 999_999)
    assert await count_jobs(engine) == {QUEUED: 1, RUNNING: 0, DONE: 1, DEAD: 0}


async def test_a_running_job_cannot_be_retried_or_discarded(
    engine: AsyncEngine, clock: Clock
) -> None:
    job = await add_job(engine, "sync", "k")
    claimed = await queue.claim(engine, "w9/0", kinds=["sync"], lease=LEASE, at=clock.now)
    assert claimed is not None and claimed.id == job.id
    with pytest.raises(JobStateError, match="is running now \\(held by w9/0\\)"):
        await retry_job(engine, job.id)
    with pytest.raises(JobStateError, match="is running now"):
        await discard_job(engine, job.id)


async def test_done_jobs_are_purged_after_the_retention_and_dead_ones_are_kept(
    engine: AsyncEngine, handlers: JobHandlers, clock: Clock
) -> None:
    async def fails(context: JobContext) -> None:
        raise RuntimeError("no")

    handlers.register("ok", Recorder())
    handlers.register("fails", fails)
    old = await add_job(engine, "ok", "old")
    dead = await add_job(engine, "fails", "dead", max_attempts=1)
    await worker_for(engine, handlers, clock).drain()
    clock.advance(86400 * 31)
    recent = await add_job(engine, "ok", "recent", run_after=clock.now)
    await worker_for(engine, handlers, clock).drain()
    removed = await purge_done(engine, older_than=timedelta(days=30), at=clock.now)
    assert removed == 1
    assert sorted(j.id for j in await all_jobs(engine)) == sorted([dead.id, recent.id])
    assert old.id not in [j.id for j in await all_jobs(engine)]


# -- racing and crashing workers ---------------------------------------------------------------


async def test_two_workers_racing_never_run_one_job_at_once_and_run_every_job(
    database_url: str, handlers: JobHandlers
) -> None:
    # Two workers as two processes would be: each with its own engine and connections.
    first_engine, second_engine = create_engine(database_url), create_engine(database_url)
    try:
        recorder = Recorder(delay=0.003)
        handlers.register("race", recorder)
        for n in range(40):
            await add_job(first_engine, "race", f"job-{n}")
        first = Worker(first_engine, handlers=handlers, name="first", concurrency=4)
        second = Worker(second_engine, handlers=handlers, name="second", concurrency=4)
        outcomes = await asyncio.gather(first.drain(), second.drain())
        assert recorder.overlaps == 0
        assert sorted(recorder.runs.values()) == [1] * 40  # every job, each once
        assert recorder.by_worker["first"] > 0 and recorder.by_worker["second"] > 0
        assert sum(len(o) for o in outcomes) == 40
        assert await count_jobs(first_engine) == {QUEUED: 0, RUNNING: 0, DONE: 40, DEAD: 0}
    finally:
        await first_engine.dispose()
        await second_engine.dispose()


async def test_a_job_whose_worker_died_runs_again_after_the_lease_exactly_once_more(
    engine: AsyncEngine, handlers: JobHandlers, clock: Clock
) -> None:
    recorder = Recorder()
    handlers.register("sync", recorder)
    job = await add_job(engine, "sync", "k")
    # The crashed worker: it took the job under a lease and never finished it.
    taken = await queue.claim(engine, "crashed/0", kinds=["sync"], lease=LEASE, at=clock.now)
    assert taken is not None and taken.status == RUNNING and taken.attempts == 1

    worker = worker_for(engine, handlers, clock)
    assert await worker.drain() == []  # leased: nobody else runs it
    clock.advance(LEASE.total_seconds() - 1)
    assert await worker.drain() == []
    clock.advance(1)
    outcomes = await worker.drain()
    assert [(o.job.id, o.result) for o in outcomes] == [(job.id, "done")]
    clock.advance(86400)
    assert await worker.drain() == []
    assert recorder.runs == Counter({job.id: 1})
    stored = await get_job(engine, job.id)
    assert stored.status == DONE and stored.attempts == 2

    # The crashed worker coming back to life cannot settle a job it no longer holds.
    assert not await queue.mark_done(engine, taken, "crashed/0", clock.now)
    assert not await queue.mark_retry(engine, taken, "crashed/0", clock.now, clock.now, "late")
    assert (await get_job(engine, job.id)).status == DONE


async def test_a_worker_whose_lease_was_taken_over_does_not_overwrite_the_new_holder(
    engine: AsyncEngine, handlers: JobHandlers, clock: Clock
) -> None:
    job = await add_job(engine, "sync", "k")
    stale = await queue.claim(engine, "slow/0", kinds=["sync"], lease=LEASE, at=clock.now)
    assert stale is not None
    clock.advance(LEASE.total_seconds())
    fresh = await queue.claim(engine, "fresh/0", kinds=["sync"], lease=LEASE, at=clock.now)
    assert fresh is not None and fresh.id == job.id and fresh.attempts == 2
    assert not await queue.mark_dead(engine, stale, "slow/0", clock.now, "too late")
    held = await get_job(engine, job.id)
    assert held.status == RUNNING and held.locked_by == "fresh/0"


async def test_a_job_whose_worker_died_on_its_last_attempt_is_dead_without_running(
    engine: AsyncEngine, handlers: JobHandlers, clock: Clock
) -> None:
    recorder = Recorder()
    handlers.register("sync", recorder)
    job = await add_job(engine, "sync", "k", max_attempts=1)
    assert await queue.claim(engine, "crashed/0", kinds=["sync"], lease=LEASE, at=clock.now)
    clock.advance(LEASE.total_seconds())
    outcomes = await worker_for(engine, handlers, clock).drain()
    assert [o.result for o in outcomes] == ["dead"]
    stored = await get_job(engine, job.id)
    assert stored.status == DEAD and stored.attempts == 1
    assert "its lease ran out" in (stored.last_error or "")
    assert recorder.runs == Counter()


async def test_a_long_handler_keeps_its_lease_so_no_one_else_takes_the_job(
    engine: AsyncEngine, handlers: JobHandlers
) -> None:
    recorder = Recorder(delay=0.5)
    handlers.register("long", recorder)
    job = await add_job(engine, "long", "k")
    lease = timedelta(seconds=0.3)
    holder = Worker(engine, handlers=handlers, name="holder", lease=lease)
    other = Worker(engine, handlers=handlers, name="other", lease=lease)
    running = asyncio.create_task(holder.run_one())
    await asyncio.wait_for(recorder.started.wait(), 5)
    # Past the first lease's end, the renewed lease still keeps the job.
    await asyncio.sleep(0.35)
    assert await other.run_one() is None
    outcome = await running
    assert outcome is not None and outcome.result == "done"
    assert recorder.runs == Counter({job.id: 1}) and recorder.overlaps == 0


async def test_across_failures_throttling_and_a_crashed_worker_no_job_is_lost(
    database_url: str, handlers: JobHandlers, clock: Clock
) -> None:
    first_engine, second_engine = create_engine(database_url), create_engine(database_url)
    try:
        recorder = Recorder(delay=0.001)
        planned_failures: dict[int, int] = {}

        async def unreliable(context: JobContext) -> None:
            await recorder(context)
            n, run = context.payload["n"], recorder.runs[context.job.id]
            if n % 5 == 0 and run == 1:
                raise RuntimeError("502 Bad Gateway")
            if n % 5 == 1 and run == 1:
                raise RetryAfter(30, "403 Rate Limit Exceeded")
            if n % 7 == 0 and run <= 2:
                raise TimeoutError("read timeout")

        handlers.register("unreliable", unreliable)
        created = [await add_job(first_engine, "unreliable", f"n-{n}", {"n": n}) for n in range(30)]
        for n, job in enumerate(created):
            planned_failures[job.id] = 2 if n % 7 == 0 else 1 if n % 5 in (0, 1) else 0
        crashed = [
            await queue.claim(
                first_engine, "crashed/0", kinds=["unreliable"], lease=LEASE, at=clock.now
            )
            for _ in range(3)
        ]
        crashed_ids = {j.id for j in crashed if j is not None}
        assert len(crashed_ids) == 3

        workers = [
            Worker(
                engine,
                handlers=handlers,
                name=name,
                concurrency=3,
                clock=clock,
                rng=random.Random(1),
            )
            for engine, name in ((first_engine, "first"), (second_engine, "second"))
        ]
        for _ in range(10):
            await asyncio.gather(*(w.drain() for w in workers))
            counts = await count_jobs(first_engine)
            if counts[QUEUED] == counts[RUNNING] == 0:
                break
            clock.advance(600)
        assert await count_jobs(first_engine) == {QUEUED: 0, RUNNING: 0, DONE: 30, DEAD: 0}
        assert recorder.overlaps == 0
        for job in created:
            # Once, plus once per planned failure; the crashed worker's claims ran nothing.
            assert recorder.runs[job.id] == 1 + planned_failures[job.id], job
            stored = await get_job(first_engine, job.id)
            extra = 1 if job.id in crashed_ids else 0
            given_back = 1 if created.index(job) % 5 == 1 else 0  # the throttled attempt
            assert stored.attempts == recorder.runs[job.id] + extra - given_back
    finally:
        await first_engine.dispose()
        await second_engine.dispose()


@pytest.mark.skipif(not PG_URL, reason="PostgreSQL only: SKIP LOCKED")
async def test_on_postgresql_a_worker_skips_a_row_another_connection_has_locked(
    database_url: str, handlers: JobHandlers
) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("PostgreSQL only")
    engine = create_engine(database_url)
    try:
        first = await add_job(engine, "sync", "first")
        second = await add_job(engine, "sync", "second")
        async with engine.connect() as locker:
            await locker.execute(
                text("SELECT id FROM jobs WHERE id = :id FOR UPDATE"), {"id": first.id}
            )
            # Claims the next job at once rather than waiting for the lock.
            claimed = await asyncio.wait_for(
                queue.claim(engine, "w/0", kinds=["sync"], lease=LEASE), timeout=5
            )
            assert claimed is not None and claimed.id == second.id
            await locker.rollback()
    finally:
        await engine.dispose()


# -- running and stopping ------------------------------------------------------------------


async def test_a_stopped_worker_finishes_the_job_in_hand_and_takes_no_other(
    engine: AsyncEngine, handlers: JobHandlers
) -> None:
    started, release = asyncio.Event(), asyncio.Event()
    runs: list[str] = []

    async def slow(context: JobContext) -> None:
        runs.append(context.key)
        started.set()
        await release.wait()

    handlers.register("slow", slow)
    await add_job(engine, "slow", "a")
    worker = Worker(engine, handlers=handlers, poll=0.05)
    stop = asyncio.Event()
    running = asyncio.create_task(worker.run(stop))
    await asyncio.wait_for(started.wait(), 5)
    waiting = await add_job(engine, "slow", "b")
    stop.set()
    release.set()
    await asyncio.wait_for(running, 5)
    assert runs == ["a"]
    assert await count_jobs(engine) == {QUEUED: 1, RUNNING: 0, DONE: 1, DEAD: 0}
    assert (await get_job(engine, waiting.id)).status == QUEUED


async def test_a_running_worker_picks_up_jobs_as_they_are_enqueued(
    engine: AsyncEngine, handlers: JobHandlers
) -> None:
    recorder = Recorder()
    handlers.register("live", recorder)
    worker = Worker(engine, handlers=handlers, poll=0.02, concurrency=2)
    stop = asyncio.Event()
    running = asyncio.create_task(worker.run(stop))
    try:
        for n in range(5):
            await add_job(engine, "live", f"k{n}")
        for _ in range(250):
            if (await count_jobs(engine))[DONE] == 5:
                break
            await asyncio.sleep(0.02)
    finally:
        stop.set()
        await asyncio.wait_for(running, 5)
    assert await count_jobs(engine) == {QUEUED: 0, RUNNING: 0, DONE: 5, DEAD: 0}
    assert sorted(recorder.runs.values()) == [1] * 5


async def test_a_worker_stopped_hard_mid_job_gives_the_job_back_uncounted(
    engine: AsyncEngine, handlers: JobHandlers
) -> None:
    started = asyncio.Event()

    async def forever(context: JobContext) -> None:
        started.set()
        await asyncio.sleep(60)

    handlers.register("forever", forever)
    job = await add_job(engine, "forever", "k")
    running = asyncio.create_task(Worker(engine, handlers=handlers).run(asyncio.Event()))
    await asyncio.wait_for(started.wait(), 5)
    running.cancel()
    with pytest.raises(asyncio.CancelledError):
        await running
    stored = await get_job(engine, job.id)
    assert stored.status == QUEUED and stored.attempts == 0 and stored.locked_by is None


# -- the web app's runner ----------------------------------------------------------------------


def _settings(tmp_path: Path, database_url: str, jobs_in_app: bool | None = None) -> Settings:
    return Settings(
        instance=tmp_path / "instance",
        base_url="https://tool.test",
        secret_key="jobs-test-secret-key-" + "k" * 32,
        database_url=database_url,
        jobs_in_app=jobs_in_app,
    )


def test_the_app_runs_jobs_itself_on_sqlite_unless_the_setting_says_otherwise(
    tmp_path: Path,
) -> None:
    sqlite_url = f"sqlite:///{tmp_path / 'ltipro.db'}"
    postgres_url = "postgresql://ltipro@db.internal/ltipro"
    assert runs_in_app(_settings(tmp_path, sqlite_url))
    assert not runs_in_app(_settings(tmp_path, postgres_url))
    assert runs_in_app(_settings(tmp_path, postgres_url, jobs_in_app=True))
    assert not runs_in_app(_settings(tmp_path, sqlite_url, jobs_in_app=False))


@pytest.mark.parametrize(("value", "expected"), [("1", True), ("0", False), ("", None)])
def test_ltipro_jobs_in_app_is_read_as_a_switch(
    tmp_path: Path, value: str, expected: bool | None
) -> None:
    env = {
        "LTIPRO_INSTANCE": str(tmp_path),
        "LTIPRO_BASE_URL": "https://tool.test",
        "LTIPRO_SECRET_KEY": "s" * 40,
        "LTIPRO_JOBS_IN_APP": value,
    }
    assert Settings.from_env(env).jobs_in_app is expected


def test_ltipro_jobs_in_app_other_than_1_or_0_is_refused(tmp_path: Path) -> None:
    env = {
        "LTIPRO_INSTANCE": str(tmp_path),
        "LTIPRO_BASE_URL": "https://tool.test",
        "LTIPRO_SECRET_KEY": "s" * 40,
        "LTIPRO_JOBS_IN_APP": "yes",
    }
    with pytest.raises(SettingsError, match="LTIPRO_JOBS_IN_APP must be 1 or 0"):
        Settings.from_env(env)


@pytest.fixture
def in_app_recorder() -> Iterator[Recorder]:
    recorder = Recorder()
    register_handler("test.in-app", recorder)
    try:
        yield recorder
    finally:
        registry.unregister("test.in-app")


async def test_the_web_app_on_sqlite_runs_due_jobs_while_it_serves(
    ltipro_database_url: str, tmp_path: Path, in_app_recorder: Recorder
) -> None:
    settings = _settings(tmp_path, ltipro_database_url)
    tool = await Tool.open(settings, plugins=Plugins.load(()))
    try:
        job = await add_job(tool.repo.engine, "test.in-app", "k")
        app = create_app(settings, tool=tool)
        async with app.router.lifespan_context(app):
            for _ in range(250):
                if in_app_recorder.runs:
                    break
                await asyncio.sleep(0.02)
        assert in_app_recorder.runs == Counter({job.id: 1})
        assert (await get_job(tool.repo.engine, job.id)).status == DONE
    finally:
        await tool.close()


async def test_the_web_app_told_not_to_run_jobs_leaves_them_to_workers(
    ltipro_database_url: str, tmp_path: Path, in_app_recorder: Recorder
) -> None:
    settings = _settings(tmp_path, ltipro_database_url, jobs_in_app=False)
    tool = await Tool.open(settings, plugins=Plugins.load(()))
    try:
        job = await add_job(tool.repo.engine, "test.in-app", "k")
        app = create_app(settings, tool=tool)
        async with app.router.lifespan_context(app):
            await asyncio.sleep(0.2)
        assert in_app_recorder.runs == Counter()
        assert (await get_job(tool.repo.engine, job.id)).status == QUEUED
    finally:
        await tool.close()


# -- the command line ----------------------------------------------------------------------


@dataclass
class Result:
    status: int
    out: str
    err: str


class Cli:
    def __init__(self, capsys: pytest.CaptureFixture[str], instance: Path) -> None:
        self.capsys = capsys
        self.instance = instance

    @property
    def database_url(self) -> str:
        return f"sqlite:///{self.instance / 'ltipro.db'}"

    def __call__(self, *argv: str) -> Result:
        self.capsys.readouterr()
        status = main(list(argv))
        captured = self.capsys.readouterr()
        assert "Traceback" not in captured.err + captured.out
        return Result(status, captured.out, captured.err)

    def ok(self, *argv: str) -> Result:
        result = self(*argv)
        assert result.status == 0, result.err
        return result

    def fails(self, *argv: str, says: str) -> Result:
        result = self(*argv)
        assert result.status == 2, (result.out, result.err)
        assert result.err.startswith("ltipro: error: "), result.err
        assert says in result.err, result.err
        return result

    def with_engine(self, action: Any) -> Any:
        async def go() -> Any:
            engine = create_engine(self.database_url)
            try:
                return await action(engine)
            finally:
                await engine.dispose()

        return asyncio.run(go())


@pytest.fixture
def environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    for name in list(os.environ):
        if name.startswith("LTIPRO_") and not name.startswith("LTIPRO_TEST_"):
            monkeypatch.delenv(name)
    instance = tmp_path / "instance"
    monkeypatch.setenv("LTIPRO_INSTANCE", str(instance))
    monkeypatch.setenv("LTIPRO_BASE_URL", "https://tool.example.edu")
    monkeypatch.setenv("LTIPRO_PLUGINS", "")
    monkeypatch.chdir(tmp_path)
    return instance


@pytest.fixture(scope="session")
def initialised_instance(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An instance folder after `ltipro init`, made once and copied per test."""
    instance = tmp_path_factory.mktemp("ltipro-jobs-cli") / "instance"
    env = {
        "LTIPRO_INSTANCE": str(instance),
        "LTIPRO_BASE_URL": "https://tool.example.edu",
        "LTIPRO_PLUGINS": "",
    }
    saved = {name: os.environ.get(name) for name in env}
    os.environ.update(env)
    try:
        assert main(["init"]) == 0
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    return instance


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str], environment: Path, initialised_instance: Path) -> Cli:
    shutil.copytree(initialised_instance, environment)
    return Cli(capsys, environment)


@pytest.fixture
def cli_handlers() -> Iterator[dict[str, bool]]:
    """``test.cli`` in the process registry, failing while ``broken`` is true."""
    state = {"broken": False}

    async def handler(context: JobContext) -> None:
        if state["broken"]:
            raise RuntimeError("the LMS said no\nand a second line")

    register_handler("test.cli", handler)
    try:
        yield state
    finally:
        registry.unregister("test.cli")


def test_jobs_list_on_an_empty_queue_says_so(cli: Cli) -> None:
    assert cli.ok("jobs", "list").out == "No jobs.\n"
    assert cli.ok("jobs", "list", "--status", "dead").out == "No dead jobs.\n"


def test_worker_once_runs_the_due_jobs_and_reports_them(
    cli: Cli, cli_handlers: dict[str, bool]
) -> None:
    assert cli.ok("worker", "--once").out == "No job was due.\n"
    cli.with_engine(lambda e: add_job(e, "test.cli", "a"))
    cli.with_engine(lambda e: add_job(e, "test.cli", "b"))
    assert cli.ok("worker", "--once", "--concurrency", "2").out == (
        "Ran 2 jobs: 2 done, 0 to retry, 0 dead.\n"
    )
    listed = cli.ok("jobs", "list").out.splitlines()
    assert [line.split("\t")[1:3] for line in listed] == [["done", "test.cli"]] * 2


def test_a_dead_job_is_listed_retried_and_discarded_from_the_command_line(
    cli: Cli, cli_handlers: dict[str, bool]
) -> None:
    cli_handlers["broken"] = True
    dead = cli.with_engine(lambda e: add_job(e, "test.cli", "meeting-9", max_attempts=1))
    other = cli.with_engine(lambda e: add_job(e, "test.cli", "meeting-10", max_attempts=1))
    assert cli.ok("worker", "--once").out == "Ran 2 jobs: 0 done, 0 to retry, 2 dead.\n"

    lines = cli.ok("jobs", "list", "--status", "dead").out.splitlines()
    assert len(lines) == 2
    fields = lines[1].split("\t")
    assert fields[:4] == [str(dead.id), "dead", "test.cli", "attempt 1/1"]
    assert fields[4].startswith("dead since ")
    assert fields[5:] == ["meeting-9", "RuntimeError: the LMS said no"]
    listed = json.loads(cli.ok("jobs", "list", "--json", "--kind", "test.cli").out)
    assert {j["id"] for j in listed} == {dead.id, other.id}
    assert listed[0]["last_error"] == "RuntimeError: the LMS said no\nand a second line"

    cli_handlers["broken"] = False
    assert "is queued again" in cli.ok("jobs", "retry", str(dead.id)).out
    assert cli.ok("worker", "--once").out == "Ran 1 job: 1 done, 0 to retry, 0 dead.\n"
    assert (
        f"Discarded job {other.id} (test.cli, key meeting-10)"
        in cli.ok("jobs", "discard", str(other.id)).out
    )
    assert cli.ok("jobs", "list", "--status", "dead").out == "No dead jobs.\n"
    statuses = cli.with_engine(count_jobs)
    assert statuses == {QUEUED: 0, RUNNING: 0, DONE: 1, DEAD: 0}

    cli.fails("jobs", "retry", str(dead.id), says=f"job {dead.id} is done")
    cli.fails("jobs", "discard", str(other.id), says=f"there is no job with id {other.id}")


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["jobs", "retry", "abc"], "a job id is a number (got 'abc'"),
        (["jobs", "discard", "0"], "there is no job with id 0"),
        (["jobs", "retry", "99999999999"], "there is no job with id 99999999999"),
        (["jobs", "retry", "424242"], "there is no job with id 424242"),
        (["jobs", "list", "--status", "failed"], "invalid choice: 'failed'"),
        (["jobs", "list", "--limit", "0"], "list from 1 to 10000 jobs"),
        (["jobs", "list", "--credential", "nope"], "nope"),
        (["worker", "--concurrency", "0"], "run from 1 to 100 jobs at a time"),
        (["worker", "--concurrency", "many"], "a number of jobs is a whole number"),
        (["worker", "--poll", "0"], "the poll interval is more than 0"),
        (["worker", "--poll", "nan"], "the poll interval is more than 0"),
        (["worker", "--poll", "soon"], "a number of seconds"),
    ],
)
def test_job_commands_refuse_bad_input_with_a_clear_message(
    cli: Cli, argv: list[str], says: str
) -> None:
    cli.fails(*argv, says=says)


def test_job_commands_on_an_installation_not_set_up_say_to_run_init(
    capsys: pytest.CaptureFixture[str], environment: Path
) -> None:
    cli = Cli(capsys, environment)
    cli.fails("worker", "--once", says="run `ltipro init` first")
    cli.fails("jobs", "list", says="run `ltipro init` first")


# A worker process with one slow job kind registered, as a plugin would register it.
SLOW_WORKER = """
import asyncio
import sys
from pathlib import Path

from ltipro.cli import main
from ltipro.jobs import register_handler


async def slow(context):
    Path(sys.argv[1]).write_text(str(context.job.id))
    await asyncio.sleep(1.0)


register_handler("test.slow", slow)
raise SystemExit(main(["worker", "--poll", "0.1"]))
"""


def test_worker_stopped_by_sigterm_finishes_the_job_in_hand_and_exits_cleanly(
    environment: Path, initialised_instance: Path, tmp_path: Path
) -> None:
    shutil.copytree(initialised_instance, environment)
    database_url = f"sqlite:///{environment / 'ltipro.db'}"

    async def in_database(action: Any) -> Any:
        engine = create_engine(database_url)
        try:
            return await action(engine)
        finally:
            await engine.dispose()

    job = asyncio.run(in_database(lambda e: add_job(e, "test.slow", "k")))
    started = tmp_path / "started"
    script = tmp_path / "slow_worker.py"
    script.write_text(SLOW_WORKER)
    process = subprocess.Popen(
        [sys.executable, str(script), str(started)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ),
    )
    try:
        for _ in range(300):
            if started.exists() or process.poll() is not None:
                break
            time.sleep(0.05)
        assert started.exists(), process.communicate(timeout=5)
        process.send_signal(signal.SIGTERM)  # while the job is in hand
        out, err = process.communicate(timeout=15)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, err
    assert "stopping after the jobs in hand" in err
    assert "stopped." in out
    assert "Traceback" not in err
    stored = asyncio.run(in_database(lambda e: get_job(e, job.id)))
    assert stored.status == DONE and stored.attempts == 1
