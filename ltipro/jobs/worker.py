"""Workers: claim due jobs, run their handlers, and settle each as done, retried or dead.

``ltipro worker`` runs a :class:`Worker` until it is told to stop; with SQLite the web app
runs one inside its own process (:func:`app_runner`). Any number of workers may share one
PostgreSQL database: a job is held by one worker at a time, under a lease the worker keeps
renewing while the handler runs, and a job whose worker died is claimed again once its
lease has run out.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import secrets
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from ltipro.jobs import queue
from ltipro.jobs.handlers import JobContext, JobHandlers, PermanentFailure, RetryAfter, registry
from ltipro.jobs.queue import Job, error_text
from ltipro.observability import job_finished, request_context

if TYPE_CHECKING:
    from ltipro.settings import Settings
    from ltipro.tool import Tool

log = logging.getLogger("ltipro.jobs")

# Long enough for any handler's call to an LMS, short enough that a crashed worker's job
# waits minutes, not hours; a running handler renews it every third of the way.
DEFAULT_LEASE = timedelta(minutes=5)
# Done jobs are kept this long (and their idempotency keys with them), then deleted.
DONE_RETENTION = timedelta(days=30)
PURGE_INTERVAL = 3600.0
DEFAULT_POLL = 1.0
# How long a stopping web app waits for the job in hand before giving it back.
APP_STOP_GRACE = 30.0
# Throttled attempts are given back for this long after a job was enqueued; later ones
# count towards its maximum like any failure.
THROTTLED_FOR_AT_MOST = timedelta(days=1)
# A throttled job waits what the service asked plus up to this fraction of it again.
THROTTLE_JITTER = 0.5


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff with full jitter, in seconds.

    After failed attempt *n* the next one waits anywhere from 0 to ``base·2ⁿ⁻¹`` (at most
    ``cap``), drawn uniformly: jobs that failed together, because an LMS was down,
    spread out over the window instead of striking it again all at once.
    """

    base: float = 10.0
    cap: float = 3600.0

    def ceiling(self, attempt: int) -> float:
        """The longest wait after failed attempt ``attempt`` (counted from 1)."""
        exponent = min(max(attempt - 1, 0), 62)
        return float(min(self.cap, self.base * 2.0**exponent))

    def delay(self, attempt: int, rng: random.Random) -> float:
        return rng.uniform(0.0, self.ceiling(attempt))


@dataclass(frozen=True)
class Outcome:
    """What one attempt came to.

    ``result`` is ``done``; ``retry`` (queued again, ``delay`` seconds from now); ``dead``;
    ``lost`` (the lease had passed to another worker, whose result counts); or
    ``released`` (the worker stopped mid-run and gave the job back uncounted).
    """

    job: Job
    result: str
    error: str | None = None
    delay: float | None = None


def _worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


async def _wait(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)


class Worker:
    """Runs due jobs of the kinds in ``handlers``, ``concurrency`` at a time.

    ``clock`` and ``rng`` are the worker's only sources of time and chance, so a test can
    give it a clock it moves by hand and see the exact backoff it chose.
    """

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        handlers: JobHandlers | None = None,
        tool: Tool | None = None,
        name: str | None = None,
        concurrency: int = 1,
        poll: float = DEFAULT_POLL,
        lease: timedelta = DEFAULT_LEASE,
        backoff: Backoff | None = None,
        clock: Callable[[], datetime] = queue.now,
        rng: random.Random | None = None,
        keep_done: timedelta | None = DONE_RETENTION,
    ) -> None:
        if concurrency < 1:
            raise ValueError(f"a worker runs at least one job at a time (got {concurrency})")
        if poll <= 0:
            raise ValueError(f"the poll interval must be positive (got {poll})")
        if lease <= timedelta(0):
            raise ValueError("the lease must be positive")
        self.engine = engine
        self.handlers = handlers if handlers is not None else registry
        self.tool = tool
        self.name = name or _worker_name()
        self.concurrency = concurrency
        self.poll = poll
        self.lease = lease
        self.backoff = backoff or Backoff()
        self.clock = clock
        self.rng = rng or random.Random()
        self.keep_done = keep_done

    def slot_name(self, slot: int) -> str:
        """The lease holder's name of one of the worker's concurrent slots."""
        return f"{self.name}/{slot}"

    # -- one job ---------------------------------------------------------------------------

    async def run_one(
        self, *, slot: int = 0, untouched_since: datetime | None = None
    ) -> Outcome | None:
        """Claim the next due job and run it; ``None`` when no job is due."""
        holder = self.slot_name(slot)
        job = await queue.claim(
            self.engine,
            holder,
            kinds=self.handlers.kinds(),
            lease=self.lease,
            at=self.clock(),
            untouched_since=untouched_since,
        )
        if job is None:
            return None
        # Every log line of the job carries its id, as a request's carry the request's.
        with request_context(f"job-{job.id}"):
            outcome = await self._run_claimed(job, holder)
        job_finished(job.kind, outcome.result)
        return outcome

    async def _run_claimed(self, job: Job, holder: str) -> Outcome:
        if job.attempts > job.max_attempts:
            # Claimed back from a worker that died during the last attempt allowed.
            error = (
                f"attempt {job.max_attempts} of {job.max_attempts} never finished: the "
                "worker running it stopped, and its lease ran out"
            )
            settled = await queue.mark_dead(self.engine, job, holder, self.clock(), error)
            log.error("job %s (%s) is dead: %s", job.id, job.kind, error)
            return Outcome(job, "dead" if settled else "lost", error)
        return await self._execute(job, holder)

    async def _execute(self, job: Job, holder: str) -> Outcome:
        registration = self.handlers.get(job.kind)
        if registration is None:  # unregistered since the claim: leave it to another worker
            await queue.release(self.engine, job, holder, self.clock())
            return Outcome(job, "released")
        context = JobContext(job=job, tool=self.tool, worker_id=holder)
        keeper = asyncio.create_task(self._keep_lease(job, holder))
        deadline = asyncio.timeout(registration.timeout)
        try:
            async with deadline:
                await registration.handler(context)
        except asyncio.CancelledError:
            # The worker is being stopped hard: give the job back at once, uncounted,
            # rather than leave it to wait for its lease to run out.
            try:
                await asyncio.shield(queue.release(self.engine, job, holder, self.clock()))
            except Exception:
                # Not lost either way: the job runs again once its lease has run out.
                log.exception(
                    "job %s (%s) was interrupted; giving it back failed", job.id, job.kind
                )
            else:
                log.warning(
                    "job %s (%s) was interrupted and put back in the queue", job.id, job.kind
                )
            raise
        except RetryAfter as exc:
            reason = f"throttled: {exc.reason}" if exc.reason else "throttled"
            return await self._throttled(job, holder, reason, exc.seconds)
        except PermanentFailure as exc:
            return await self._bury(job, holder, error_text(exc))
        except TimeoutError as exc:
            if deadline.expired():
                error = f"the handler did not finish within {registration.timeout:g} seconds"
            else:
                error = error_text(exc)
                log.debug("job %s (%s) raised", job.id, job.kind, exc_info=True)
            return await self._failed(job, holder, error)
        except Exception as exc:
            # The stored error says what went wrong; where, for a handler's author, at debug.
            log.debug("job %s (%s) raised", job.id, job.kind, exc_info=True)
            return await self._failed(job, holder, error_text(exc))
        finally:
            keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await keeper
        if await queue.mark_done(self.engine, job, holder, self.clock()):
            log.info("job %s (%s) done on attempt %d", job.id, job.kind, job.attempts)
            return Outcome(job, "done")
        return self._lost(job)

    async def _failed(
        self,
        job: Job,
        holder: str,
        error: str,
        *,
        delay: float | None = None,
    ) -> Outcome:
        if job.attempts >= job.max_attempts:
            return await self._bury(job, holder, error)
        wait = self.backoff.delay(job.attempts, self.rng) if delay is None else delay
        at = self.clock()
        if not await queue.mark_retry(
            self.engine, job, holder, at, at + timedelta(seconds=wait), error
        ):
            return self._lost(job, error)
        log.warning(
            "job %s (%s) failed attempt %d of %d, next in %.1f s: %s",
            job.id,
            job.kind,
            job.attempts,
            job.max_attempts,
            wait,
            error,
        )
        return Outcome(job, "retry", error, wait)

    async def _throttled(self, job: Job, holder: str, reason: str, seconds: float) -> Outcome:
        """The remote service asked to come back later: wait, without using up an attempt.

        Throttling says nothing about whether the job can succeed, so a throttled attempt
        is given back: under a long burst of throttling (a bulk change against Canvas's
        rate limit) jobs wait their turn instead of running out of attempts. The job
        keeps being given back for THROTTLED_FOR_AT_MOST after it was enqueued; after
        that a throttled attempt counts like any failure, so a service that throttles
        for ever still ends in the dead letters. The wait gets up to half again of
        random jitter, so the jobs throttled together do not all come back at once.
        """
        wait = seconds * (1.0 + self.rng.uniform(0.0, THROTTLE_JITTER))
        error = f"{reason} (retry after {seconds:g} s)"
        at = self.clock()
        if at - job.created_at >= THROTTLED_FOR_AT_MOST:
            return await self._failed(job, holder, error, delay=wait)
        if not await queue.mark_retry(
            self.engine, job, holder, at, at + timedelta(seconds=wait), error, uncounted=True
        ):
            return self._lost(job, error)
        log.info("job %s (%s) throttled, next in %.1f s: %s", job.id, job.kind, wait, error)
        return Outcome(job, "retry", error, wait)

    async def _bury(self, job: Job, holder: str, error: str) -> Outcome:
        if not await queue.mark_dead(self.engine, job, holder, self.clock(), error):
            return self._lost(job, error)
        log.error("job %s (%s) is dead after attempt %d: %s", job.id, job.kind, job.attempts, error)
        return Outcome(job, "dead", error)

    def _lost(self, job: Job, error: str | None = None) -> Outcome:
        log.warning(
            "job %s (%s): the lease ran out before attempt %d ended and another worker "
            "holds the job now; this attempt's result is dropped",
            job.id,
            job.kind,
            job.attempts,
        )
        return Outcome(job, "lost", error)

    async def _keep_lease(self, job: Job, holder: str) -> None:
        interval = self.lease.total_seconds() / 3
        while True:
            await asyncio.sleep(interval)
            try:
                kept = await queue.extend_lease(self.engine, job, holder, self.clock() + self.lease)
            except Exception:
                log.exception("job %s (%s): could not renew the lease", job.id, job.kind)
                continue
            if not kept:
                return

    # -- many jobs -------------------------------------------------------------------------

    async def drain(self, stop: asyncio.Event | None = None) -> list[Outcome]:
        """Run every job due now, each at most once, and return what each came to.

        A job that fails and is due again at once waits for the next drain, so a drain
        always ends. ``stop`` ends it early, after the jobs in hand.
        """
        cutoff = self.clock()
        outcomes: list[Outcome] = []

        async def slot_loop(slot: int) -> None:
            while stop is None or not stop.is_set():
                outcome = await self.run_one(slot=slot, untouched_since=cutoff)
                if outcome is None:
                    return
                outcomes.append(outcome)

        await self._in_slots(slot_loop)
        return outcomes

    async def run(self, stop: asyncio.Event) -> None:
        """Run jobs as they come due until ``stop`` is set, then finish those in hand.

        A failure to reach the database is logged and tried again after the poll
        interval: a worker outlives a database restart.
        """

        async def slot_loop(slot: int) -> None:
            while not stop.is_set():
                try:
                    outcome = await self.run_one(slot=slot)
                except Exception:
                    log.exception(
                        "the job worker %s could not reach the database; trying again in %g s",
                        self.slot_name(slot),
                        self.poll,
                    )
                    outcome = None
                if outcome is None:
                    await _wait(stop, self.poll)

        purger = asyncio.create_task(self._purge_loop(stop)) if self.keep_done else None
        try:
            await self._in_slots(slot_loop)
        finally:
            if purger is not None:
                purger.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await purger

    async def _in_slots(self, slot_loop: Callable[[int], Awaitable[None]]) -> None:
        tasks = [asyncio.ensure_future(slot_loop(slot)) for slot in range(self.concurrency)]
        try:
            await asyncio.gather(*tasks)
        finally:
            # When the caller was cancelled, or a slot failed: each slot gives its job back.
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _purge_loop(self, stop: asyncio.Event) -> None:
        assert self.keep_done is not None
        while not stop.is_set():
            try:
                removed = await queue.purge_done(
                    self.engine, older_than=self.keep_done, at=self.clock()
                )
                if removed:
                    log.info("deleted %d jobs done more than %s ago", removed, self.keep_done)
            except Exception:
                log.exception("deleting old done jobs failed")
            await _wait(stop, PURGE_INTERVAL)


# -- the runner inside the web app ---------------------------------------------------------


def runs_in_app(settings: Settings) -> bool:
    """Whether the web app runs jobs itself: on SQLite, unless ``LTIPRO_JOBS_IN_APP`` says."""
    if settings.jobs_in_app is not None:
        return settings.jobs_in_app
    return make_url(settings.database_url).get_backend_name() == "sqlite"


class BackgroundRunner:
    """A worker running inside the web app's event loop, from start-up to shut-down."""

    def __init__(self, worker: Worker) -> None:
        self.worker = worker
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self.worker.run(self._stop))

    async def stop(self, grace: float = APP_STOP_GRACE) -> None:
        """Finish the job in hand (waiting up to ``grace`` seconds, then give it back)."""
        self._stop.set()
        if self._task is None:
            return
        try:
            await asyncio.wait_for(asyncio.shield(self._task), grace)
        except TimeoutError:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


def app_runner(tool: Tool) -> BackgroundRunner | None:
    """The web app's own job runner, started, or ``None`` where workers run the jobs."""
    if not runs_in_app(tool.settings):
        return None
    runner = BackgroundRunner(Worker(tool.repo.engine, tool=tool, concurrency=1))
    runner.start()
    log.info("running jobs in the web app's process (%s)", runner.worker.name)
    return runner
