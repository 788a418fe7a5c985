"""Run the calendar sync benchmark: one installation, then each concurrency level in turn.

    .venv/bin/python bench/calendar_sync.py                       # PostgreSQL, 1..32
    .venv/bin/python bench/calendar_sync.py --levels 8,32 --changes 500 --tokens hosts
    .venv/bin/python bench/calendar_sync.py --database sqlite --processes 1

See bench/README.md ("Calendar sync benchmark") for what is measured and how to read it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import secrets
import shutil
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from launchbench import procs
from launchbench.run import machine
from ltipro_canvas.testing import CanvasDouble
from sqlalchemy import Engine, create_engine, func, select, text, update
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from calendarbench.canvas_server import CanvasServer, clone, new_double
from calendarbench.workload import (
    Check,
    Installed,
    Mix,
    Plan,
    check,
    enqueue_changes,
    install,
    make_plan,
)
from ltipro.calendar.sync import KIND
from ltipro.jobs import Worker
from ltipro.settings import Settings
from ltipro.storage.database import stored_utc
from ltipro.storage.jobs_tables import jobs
from ltipro.testing.servers import (
    LOOPBACK,
    ServerError,
    ServerProcess,
    ToolConfig,
    cli_command,
    free_port,
    register_platform,
    run_cli,
    start_server,
)
from ltipro.tool import Tool

DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/postgres"
DEFAULT_LEVELS = "1,4,8,16,32"
TOOL_URL = "https://ltipro.bench.test"
ISSUER = "https://canvas.bench.test"
MONITOR_INTERVAL = 0.25
READY_TIMEOUT = 60.0
HOLD_BACK = timedelta(days=1)
SEED_CONCURRENCY = 16
SEED_TIMEOUT = 900.0


# -- databases ------------------------------------------------------------------------------------


def _sync_url(url: str) -> str:
    parsed = make_url(url)
    if parsed.get_backend_name() == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


class Databases:
    """The seed database and a copy of it per level: PostgreSQL (TEMPLATE) or SQLite files."""

    def __init__(self, kind: str, pg_url: str, work: Path) -> None:
        self.kind = kind
        self.work = work
        self.pg_url = pg_url
        self.prefix = f"ltipro_calbench_{secrets.token_hex(3)}"
        self.created: list[str] = []
        self.admin: Engine | None = None
        if kind == "postgresql":
            self.admin = create_engine(
                _sync_url(pg_url), isolation_level="AUTOCOMMIT", poolclass=NullPool
            )

    def url(self, name: str) -> str:
        if self.kind == "postgresql":
            return make_url(self.pg_url).set(database=name).render_as_string(hide_password=False)
        return f"sqlite:///{self.work / (name + '.db')}"

    def name(self, label: str) -> str:
        return f"{self.prefix}_{label}"

    def create(self, label: str, template: str | None = None) -> str:
        """A new database (empty, or a copy of ``template``); its name."""
        name = self.name(label)
        if self.admin is not None:
            clause = f' TEMPLATE "{template}"' if template else ""
            with self.admin.connect() as conn:
                conn.execute(text(f'CREATE DATABASE "{name}"{clause}'))
        elif template is not None:
            for suffix in ("", "-wal", "-shm"):
                source = self.work / f"{template}.db{suffix}"
                if source.exists():
                    shutil.copyfile(source, self.work / f"{name}.db{suffix}")
        self.created.append(name)
        return name

    def drop(self, name: str) -> None:
        if self.admin is not None:
            with self.admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        else:
            for suffix in ("", "-wal", "-shm"):
                with contextlib.suppress(FileNotFoundError):
                    (self.work / f"{name}.db{suffix}").unlink()
        with contextlib.suppress(ValueError):
            self.created.remove(name)

    def close(self) -> None:
        for name in list(self.created):
            with contextlib.suppress(Exception):
                self.drop(name)
        if self.admin is not None:
            self.admin.dispose()


# -- results --------------------------------------------------------------------------------------


@dataclass
class LevelResult:
    """One concurrency level's figures (times in seconds unless named otherwise)."""

    concurrency: int
    workers: str  # concurrency per worker process ("8 + 8"), or "in-process"
    changes: int
    jobs_done: int
    jobs_dead: int
    jobs_pending: int  # still queued or running when the level ended
    jobs_lost: int  # enqueued but no longer in the table
    drained: bool
    drain_s: float  # from the jobs' release to the last one done (or the time limit)
    changes_per_s: float
    lms_calls: int  # answered by Canvas (not throttled)
    lms_calls_per_s: float
    calls_by_method: dict[str, int]
    throttled: int  # Canvas's 403 Rate Limit Exceeded answers
    other_errors: int  # any other 4xx/5xx answer
    retries: int  # attempts beyond the first, over all jobs
    jobs_retried: int
    latency_p50_s: float  # release to done, jobs done within the level
    latency_p95_s: float
    latency_max_s: float
    peak_in_flight: int  # requests Canvas held at once
    cpu_workers_s: float | None
    cpu_database_s: float | None
    cpu_bench_s: float  # this process: the Canvas double (and, in-process, the workers)
    cpu_ms_per_change: float  # workers + PostgreSQL + this process, per change done
    others_cores: float  # CPU the rest of the machine used meanwhile, in cores
    load_average: tuple[float, float, float]
    projected_drain_s: float  # changes / changes_per_s: the whole batch at this pace
    correct: bool
    check: dict[str, int] = field(default_factory=dict)
    dead_errors: list[str] = field(default_factory=list)


def percentile(values: list[float], pct: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    index = max(0, min(len(ordered) - 1, math.ceil(pct / 100 * len(ordered)) - 1))
    return ordered[index]


def split(concurrency: int, processes: int) -> list[int]:
    """Concurrency per worker process: ``concurrency`` spread over at most ``processes``."""
    count = max(1, min(processes, concurrency))
    base, extra = divmod(concurrency, count)
    return [base + (1 if n < extra else 0) for n in range(count)]


# -- the installation -----------------------------------------------------------------------------


@dataclass
class Run:
    args: argparse.Namespace
    work: Path
    databases: Databases
    server: CanvasServer
    config: ToolConfig
    plan: Plan
    seed_db: str = ""
    installed: Installed | None = None
    seed_double: CanvasDouble | None = None
    first_job: int = 0  # the changes' jobs have ids above this
    enqueued: int = 0
    enqueue_s: float = 0.0

    def settings(self, database: str) -> Settings:
        return Settings.from_env(self.environ(database))

    def environ(self, database: str) -> dict[str, str]:
        env = self.config.environ()
        env["LTIPRO_DATABASE_URL"] = self.databases.url(database)
        return env

    def throttle(self, double: CanvasDouble) -> None:
        if self.args.no_throttle:
            return
        double.throttle_like_canvas(
            maximum=self.args.bucket_size,
            outflow=self.args.leak_rate,
            up_front_cost=self.args.up_front,
            cost=self.args.request_cost,
        )


async def _install(run: Run, double: CanvasDouble) -> Installed:
    """Courses, Canvas settings, tokens and the baseline meetings with their jobs."""
    tool = await Tool.open(run.settings(run.seed_db))
    try:
        return await install(
            tool, double, run.plan, canvas_url=run.server.url, tokens=run.args.tokens
        )
    finally:
        await tool.close()


def _seed(run: Run, double: CanvasDouble) -> None:
    """Sync the baseline to Canvas with the workers (set-up: no latency, no throttling)."""
    view = JobsView(run.databases.url(run.seed_db))
    try:
        shares = split(SEED_CONCURRENCY, run.args.processes)
        with worker_processes(run, run.seed_db, shares, "seed"):
            view.release()
            if not wait_until(lambda: view.unfinished() == 0, SEED_TIMEOUT):
                raise SystemExit(f"the baseline did not sync within {SEED_TIMEOUT:g} s")
        failed = [r for r in view.rows() if r.status != "done"]
    finally:
        view.close()
    if failed:
        raise SystemExit(f"{len(failed)} baseline jobs failed, e.g. {failed[0].last_error}")
    found = asyncio.run(_check(run, run.seed_db, double, set()))
    if not found.ok:
        raise SystemExit(f"the baseline is not in Canvas as it should be: {found}")


def prepare(args: argparse.Namespace, work: Path) -> Run:
    """A fresh installation set up as an admin does it, seeded with the baseline meetings."""
    databases = Databases(args.database, args.pg_url, work)
    # The baseline is synced without latency or throttling: it is set-up, not measured.
    seed_double = new_double("", 0.0)  # the host is set once the port is known
    server = CanvasServer(seed_double, free_port())
    seed_double.host = f"{LOOPBACK}:{server.port}"
    server.start()
    plan = make_plan(
        Mix(
            changes=args.changes,
            create_share=args.create_share,
            edit_share=args.edit_share,
            recurring_share=args.recurring_share,
            occurrences=args.occurrences,
            courses=args.courses,
        ),
        args.seed,
    )
    seed_db = databases.create("seed")
    config = ToolConfig(
        instance=work / "instance", base_url=TOOL_URL, database_url=databases.url(seed_db)
    )
    run = Run(args, work, databases, server, config, plan, seed_db=seed_db)
    run_cli(config, "init")
    register_platform(
        config,
        credential="bench",
        issuer=ISSUER,
        client_id="bench-canvas-key",
        deployment_id="1:bench",
        lms="canvas",
    )
    started = time.monotonic()
    run.installed = asyncio.run(_install(run, seed_double))
    _seed(run, seed_double)
    run.seed_double = seed_double
    sys.stderr.write(
        f"   seeded {len(plan.baseline)} meetings in {time.monotonic() - started:.0f} s "
        f"({len(seed_double.events)} Canvas events)\n"
    )
    # The changes are made once, with their jobs, and held back; every level starts from
    # a copy of this database and releases them all at once.
    view = JobsView(databases.url(seed_db))
    try:
        view.mark_start()
        started = time.monotonic()
        run.enqueued = asyncio.run(_enqueue(run, seed_db))
        run.enqueue_s = round(time.monotonic() - started, 2)
        view.hold_back()
        run.first_job = view.first
    finally:
        view.close()
    sys.stderr.write(f"   made {run.enqueued} changes and their jobs in {run.enqueue_s:.0f} s\n")
    return run


# -- the jobs table, read and nudged from here ---------------------------------------------------


class JobsView:
    """The level's jobs (ids above ``first``) through a plain synchronous connection."""

    def __init__(self, url: str) -> None:
        self.engine = create_engine(_sync_url(url), poolclass=NullPool)
        self.first = 0

    def mark_start(self) -> None:
        with self.engine.connect() as conn:
            self.first = int(
                conn.execute(select(func.coalesce(func.max(jobs.c.id), 0))).scalar_one()
            )

    def _mine(self) -> Any:
        return (jobs.c.id > self.first) & (jobs.c.kind == KIND)

    def hold_back(self) -> int:
        """Make the level's jobs due tomorrow, so no worker starts before all are up."""
        with self.engine.begin() as conn:
            result = conn.execute(
                update(jobs)
                .where(self._mine(), jobs.c.status == "queued")
                .values(run_after=datetime.now(UTC) + HOLD_BACK)
            )
        return int(result.rowcount)

    def release(self) -> datetime:
        """Make them all due now; the moment they became due."""
        at = datetime.now(UTC)
        with self.engine.begin() as conn:
            conn.execute(
                update(jobs).where(self._mine(), jobs.c.status == "queued").values(run_after=at)
            )
        return at

    def unfinished(self) -> int:
        with self.engine.connect() as conn:
            return int(
                conn.execute(
                    select(func.count())
                    .select_from(jobs)
                    .where(self._mine(), jobs.c.status.in_(("queued", "running")))
                ).scalar_one()
            )

    def rows(self) -> list[Any]:
        with self.engine.connect() as conn:
            return list(
                conn.execute(
                    select(
                        jobs.c.status,
                        jobs.c.attempts,
                        jobs.c.finished_at,
                        jobs.c.last_error,
                        jobs.c.payload,
                    ).where(self._mine())
                ).all()
            )

    def close(self) -> None:
        self.engine.dispose()


def wait_until(done: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if done():
            return True
        time.sleep(MONITOR_INTERVAL)
    return done()


# -- workers --------------------------------------------------------------------------------------


@contextlib.contextmanager
def worker_processes(
    run: Run, database: str, shares: list[int], label: str
) -> Iterator[list[ServerProcess]]:
    """``ltipro worker --concurrency N`` processes, started and ready; stopped afterwards."""
    env = run.environ(database)
    started: list[ServerProcess] = []
    try:
        for n, share in enumerate(shares):
            argv = [
                *cli_command(),
                "worker",
                "--concurrency",
                str(share),
                "--poll",
                f"{run.args.poll:g}",
                "--log-level",
                run.args.log_level,
            ]
            started.append(
                start_server(
                    f"worker-{n}",
                    argv,
                    url="http://worker.invalid",
                    ready_path="",
                    env=env,
                    log_path=run.work / f"{label}-worker-{n}.log",
                    wait=False,
                )
            )
        for worker in started:

            def ready(worker: ServerProcess = worker) -> bool:
                if not worker.running:
                    raise ServerError(f"{worker.name} exited:\n{worker.log_tail()}")
                return ": running " in worker.log_text()

            if not wait_until(ready, READY_TIMEOUT):
                raise ServerError(f"{worker.name} did not start:\n{worker.log_tail()}")
        yield started
    finally:
        for worker in started:
            worker.stop(timeout=30)


async def _drain_in_process(
    run: Run, database: str, concurrency: int, view: JobsView, limit: float
) -> bool:
    """Run the jobs with a Worker in this process until none is left (or ``limit`` s)."""
    tool = await Tool.open(run.settings(database))
    try:
        worker = Worker(tool.repo.engine, tool=tool, concurrency=concurrency, poll=run.args.poll)
        stop = asyncio.Event()
        task = asyncio.create_task(worker.run(stop))
        deadline = time.monotonic() + limit
        drained = False
        while time.monotonic() < deadline and not task.done():
            await asyncio.sleep(MONITOR_INTERVAL)
            if await asyncio.to_thread(view.unfinished) == 0:
                drained = True
                break
        stop.set()
        await task
        return drained
    finally:
        await tool.close()


async def _enqueue(run: Run, database: str) -> int:
    assert run.installed is not None
    tool = await Tool.open(run.settings(database))
    try:
        return await enqueue_changes(tool, run.installed, run.plan)
    finally:
        await tool.close()


async def _check(run: Run, database: str, double: CanvasDouble, unsynced: set[str]) -> Check:
    assert run.installed is not None
    tool = await Tool.open(run.settings(database))
    try:
        return await check(tool, double, run.installed, unsynced)
    finally:
        await tool.close()


# -- one level ------------------------------------------------------------------------------------


def measure_level(run: Run, concurrency: int) -> LevelResult:
    """Copy the seeded installation, release the changes' jobs, drain, read the figures."""
    args = run.args
    assert run.seed_double is not None
    label = f"c{concurrency}"
    database = run.databases.create(label, template=run.seed_db)
    double = clone(run.seed_double, args.latency)
    run.throttle(double)
    run.server.use(double)
    view = JobsView(run.databases.url(database))
    view.first = run.first_job
    try:
        shares = split(concurrency, args.processes)
        workers = "in-process" if args.in_process else " + ".join(str(s) for s in shares)
        trackers: list[procs.CpuTracker] = []
        db_tracker = None
        if args.database == "postgresql":
            db_tracker = procs.CpuTracker(procs.postgres_backends(database))
        with contextlib.ExitStack() as stack:
            worker_tracker = None
            if not args.in_process:
                started = stack.enter_context(worker_processes(run, database, shares, label))
                pids = [w.process.pid for w in started]
                worker_tracker = procs.CpuTracker(
                    lambda: [p for pid in pids for p in procs.tree(pid)]
                )
                trackers.append(worker_tracker)
            if db_tracker is not None:
                trackers.append(db_tracker)
            load_average = procs.load_average()
            busy_before = procs.machine_busy_seconds()
            own_before = procs.own_cpu_seconds()
            for tracker in trackers:
                tracker.start()
            released = view.release()
            clock_start = time.monotonic()
            if args.in_process:
                drained = asyncio.run(
                    _drain_in_process(run, database, concurrency, view, args.level_timeout)
                )
            else:
                drained = wait_until(lambda: view.unfinished() == 0, args.level_timeout)
            wall = time.monotonic() - clock_start
            worker_cpu = worker_tracker.stop() if worker_tracker is not None else None
            db_cpu = db_tracker.stop() if db_tracker is not None else None
            own_cpu = procs.own_cpu_seconds() - own_before
            busy = procs.machine_busy_seconds() - busy_before
        # The workers are stopped (those cut off finished the jobs in hand first).
        rows = view.rows()
        done = [r for r in rows if r.status == "done"]
        dead = [r for r in rows if r.status == "dead"]
        pending = [r for r in rows if r.status in ("queued", "running")]
        release_ts = released.timestamp()
        finished = [stored_utc(r.finished_at).timestamp() for r in done if r.finished_at]
        end_ts = max(finished) if drained and finished else release_ts + wall
        drain_s = max(end_ts - release_ts, 1e-6)
        latencies = [f - release_ts for f in finished if f <= end_ts]
        requests = [r for r in double.api_requests() if release_ts <= r.started <= end_ts]
        throttled = sum(1 for r in requests if r.status == 403)
        errors = sum(1 for r in requests if r.status >= 400 and r.status != 403)
        answered = [r for r in requests if r.status != 403]
        unsynced = {str(r.payload.get("meeting")) for r in rows if r.status != "done"}
        found = asyncio.run(_check(run, database, double, unsynced))
        ours = (worker_cpu or 0.0) + (db_cpu or 0.0) + own_cpu
        return LevelResult(
            concurrency=concurrency,
            workers=workers,
            changes=run.enqueued,
            jobs_done=len(done),
            jobs_dead=len(dead),
            jobs_pending=len(pending),
            jobs_lost=run.enqueued - len(rows),
            drained=drained,
            drain_s=round(drain_s, 2),
            changes_per_s=round(len(latencies) / drain_s, 2),
            lms_calls=len(answered),
            lms_calls_per_s=round(len(answered) / drain_s, 1),
            calls_by_method=dict(sorted(Counter(r.method for r in answered).items())),
            throttled=throttled,
            other_errors=errors,
            retries=sum(max(r.attempts - 1, 0) for r in rows),
            jobs_retried=sum(1 for r in rows if r.attempts > 1),
            latency_p50_s=round(percentile(latencies, 50), 2),
            latency_p95_s=round(percentile(latencies, 95), 2),
            latency_max_s=round(max(latencies, default=0.0), 2),
            peak_in_flight=double.max_in_flight,
            cpu_workers_s=round(worker_cpu, 2) if worker_cpu is not None else None,
            cpu_database_s=round(db_cpu, 2) if db_cpu is not None else None,
            cpu_bench_s=round(own_cpu, 2),
            cpu_ms_per_change=round(1000 * ours / max(len(latencies), 1), 1),
            others_cores=round(max(busy - ours, 0.0) / wall, 2) if wall else 0.0,
            load_average=load_average,
            projected_drain_s=round(run.enqueued * drain_s / max(len(latencies), 1), 1),
            # Cut off by the time limit, a level is correct when what ran is right and
            # nothing was lost; its pending jobs are the time limit's, not an error.
            correct=found.ok and not dead and run.enqueued == len(rows),
            check=asdict(found),
            dead_errors=sorted({(r.last_error or "")[:200] for r in dead})[:5],
        )
    finally:
        view.close()
        run.databases.drop(database)


# -- output ---------------------------------------------------------------------------------------


def bounds(args: argparse.Namespace) -> dict[str, Any]:
    """What the Canvas side alone allows, for reading the table."""
    cost = args.request_cost if args.request_cost is not None else args.latency + 0.01
    return {
        "latency_bound_calls_per_s_per_slot": round(1 / args.latency, 1) if args.latency else None,
        "requests_in_flight_per_token": int(args.bucket_size // args.up_front),
        "sustained_calls_per_s_per_token": round(args.leak_rate / cost, 1) if cost else None,
        "request_cost": round(cost, 4),
    }


def table(results: list[LevelResult], plan: Plan) -> str:
    """The results as Markdown, and what the table cannot show, per level."""
    lines = [
        "| concurrency (per process) | changes/s | LMS calls/s | time to drain s "
        "| throttled (403) | retries (jobs) | latency p50 / p95 s | peak in flight "
        "| CPU ms per change | correct |",
        "|---|---:|---:|---:|---:|---:|---|---:|---:|---|",
    ]
    for r in results:
        verdict = "yes" if r.correct else "NO"
        drain = f"{r.drain_s:.0f}"
        if not r.drained:
            drain = f"cut at {r.drain_s:.0f}: {r.jobs_done} done (~{r.projected_drain_s:.0f})"
            verdict += f" ({r.check.get('unchecked', 0)} unsynced left out)"
        lines.append(
            f"| {r.concurrency} ({r.workers}) | {r.changes_per_s:.1f} | {r.lms_calls_per_s:.0f} "
            f"| {drain} | {r.throttled} | {r.retries} ({r.jobs_retried}) "
            f"| {r.latency_p50_s:.0f} / {r.latency_p95_s:.0f} | {r.peak_in_flight} "
            f"| {r.cpu_ms_per_change:.0f} | {verdict} |"
        )
    counts = plan.counts()
    lines += [
        "",
        f"{sum(counts.values())} changes per level ("
        + ", ".join(f"{counts.get(k, 0)} {k}" for k in ("create", "retitle", "move", "delete"))
        + f") on {len(plan.baseline)} existing and {counts.get('create', 0)} new meetings.",
    ]
    for r in results:
        extra = [
            f"{r.lms_calls} calls answered ("
            + ", ".join(f"{n} {m}" for m, n in r.calls_by_method.items())
            + ")",
            "CPU s: workers "
            + " / PostgreSQL ".join(
                f"{v:.1f}" if v is not None else "-" for v in (r.cpu_workers_s, r.cpu_database_s)
            )
            + f" / this process {r.cpu_bench_s:.1f}",
            f"load average {' / '.join(f'{v:.1f}' for v in r.load_average)}, "
            f"rest of the machine {r.others_cores:.2f} cores",
        ]
        if r.other_errors:
            extra.append(f"{r.other_errors} other error answers")
        if r.jobs_dead or r.jobs_lost:
            extra.append(f"jobs dead {r.jobs_dead}, lost {r.jobs_lost}")
        if not r.correct:
            extra.append(f"check {r.check}")
        extra += r.dead_errors
        lines.append(f"- concurrency {r.concurrency}: " + "; ".join(extra))
    return "\n".join(lines)


# -- the command line -----------------------------------------------------------------------------


def _share(value: str) -> float:
    number = float(value)
    if not 0 <= number <= 1:
        raise argparse.ArgumentTypeError(f"a share is from 0 to 1 (got {value})")
    return number


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="bench/calendar_sync.py",
        description="Calendar sync of meeting changes to a Canvas double that answers slowly "
        "and throttles like Canvas, at several worker concurrencies.",
    )
    parser.add_argument(
        "--levels",
        default=DEFAULT_LEVELS,
        help=f"jobs run at the same time, in all, one level after another (default {DEFAULT_LEVELS})",
    )
    parser.add_argument(
        "--processes",
        type=int,
        default=2,
        help="`ltipro worker` processes a level's concurrency is spread over (default 2)",
    )
    parser.add_argument(
        "--in-process",
        action="store_true",
        help="run the jobs with Worker objects in this process instead of `ltipro worker`",
    )
    parser.add_argument("--changes", type=int, default=2000, help="meeting changes (default 2000)")
    parser.add_argument("--courses", type=int, default=100, help="courses (default 100)")
    parser.add_argument(
        "--create-share", type=_share, default=0.5, help="share of new meetings (default 0.5)"
    )
    parser.add_argument(
        "--edit-share",
        type=_share,
        default=0.3,
        help="share of edits, half renamed, half moved by an hour; the rest are deletes "
        "(default 0.3)",
    )
    parser.add_argument(
        "--recurring-share", type=_share, default=0.25, help="share of weekly meetings (0.25)"
    )
    parser.add_argument(
        "--occurrences", type=int, default=6, help="occurrences of a weekly meeting (default 6)"
    )
    parser.add_argument(
        "--latency", type=float, default=0.05, help="seconds Canvas takes per call (0.05)"
    )
    parser.add_argument(
        "--tokens",
        choices=("admin", "hosts"),
        default="admin",
        help="admin: every call with one admin access token (one throttling bucket); "
        "hosts: each course's instructor's own grant (default admin)",
    )
    parser.add_argument(
        "--bucket-size", type=float, default=700.0, help="Canvas's bucket, units (700)"
    )
    parser.add_argument(
        "--leak-rate", type=float, default=10.0, help="units the bucket leaks a second (10)"
    )
    parser.add_argument(
        "--up-front", type=float, default=50.0, help="pre-flight units per request (50)"
    )
    parser.add_argument(
        "--request-cost",
        type=float,
        default=None,
        help="units a finished request costs (default: its time, latency + 0.01)",
    )
    parser.add_argument("--no-throttle", action="store_true", help="Canvas never throttles")
    parser.add_argument(
        "--database", choices=("postgresql", "sqlite"), default="postgresql", help="(postgresql)"
    )
    parser.add_argument(
        "--pg-url",
        default=os.environ.get("LTIPRO_BENCH_DATABASE_URL", DEFAULT_PG),
        help=f"PostgreSQL server for the throwaway databases (default: "
        f"$LTIPRO_BENCH_DATABASE_URL or {DEFAULT_PG})",
    )
    parser.add_argument(
        "--poll",
        type=float,
        default=1.0,
        help="ltipro worker --poll, seconds (default 1, as shipped)",
    )
    parser.add_argument(
        "--log-level", default="info", help="ltipro worker --log-level (default info, as shipped)"
    )
    parser.add_argument(
        "--level-timeout",
        type=float,
        default=90.0,
        help="seconds a level may run before it is stopped and its pace reported (default 90)",
    )
    parser.add_argument("--seed", type=int, default=1, help="the plan's random seed (1)")
    parser.add_argument("--json", type=Path, help="write every figure to this JSON file")
    parser.add_argument("--keep", action="store_true", help="keep the working folder (logs)")
    args = parser.parse_args(argv)
    try:
        args.levels = [int(v) for v in args.levels.split(",") if v.strip()]
    except ValueError:
        parser.error(f"--levels takes numbers separated by commas (got {args.levels!r})")
    if not args.levels or any(not 1 <= v <= 200 for v in args.levels):
        parser.error("each level is from 1 to 200")
    if not 1 <= args.processes <= 16:
        parser.error("--processes must be 1..16")
    if any(-(-v // min(args.processes, v)) > 100 for v in args.levels):
        parser.error("at most 100 jobs per process (ltipro worker --concurrency): add --processes")
    if not 1 <= args.changes <= 100_000 or not 1 <= args.courses <= 10_000:
        parser.error("--changes must be 1..100000 and --courses 1..10000")
    if args.create_share + args.edit_share > 1:
        parser.error("--create-share and --edit-share add up to more than 1")
    if not 1 <= args.occurrences <= 100:
        parser.error("--occurrences must be 1..100")
    if not 0 <= args.latency <= 5:
        parser.error("--latency is 0 to 5 seconds")
    if args.bucket_size <= 0 or args.leak_rate <= 0 or args.up_front < 0:
        parser.error("--bucket-size and --leak-rate must be positive, --up-front not negative")
    if not 0 < args.poll <= 60 or not 0 < args.level_timeout <= 3600:
        parser.error("--poll is 0 to 60 seconds, --level-timeout 0 to 3600")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="ltipro-calbench-"))
    results: list[LevelResult] = []
    run: Run | None = None
    try:
        sys.stderr.write("== installing and seeding the baseline\n")
        run = prepare(args, work)
        for concurrency in args.levels:
            sys.stderr.write(f"== concurrency {concurrency}\n")
            result = measure_level(run, concurrency)
            results.append(result)
            sys.stderr.write(
                f"   {result.jobs_done}/{result.changes} changes in {result.drain_s:.1f} s, "
                f"{result.changes_per_s} changes/s, {result.lms_calls_per_s} calls/s, "
                f"{result.throttled} throttled, {result.retries} retries, "
                f"correct: {result.correct}\n"
            )
    finally:
        if run is not None:
            run.server.stop()
            run.databases.close()
        if args.keep:
            sys.stderr.write(f"logs kept in {work}\n")
        else:
            shutil.rmtree(work, ignore_errors=True)
    assert run is not None
    print(table(results, run.plan))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        settings = {k: v for k, v in vars(args).items() if k not in ("json", "keep", "pg_url")}
        args.json.write_text(
            json.dumps(
                {
                    "machine": machine(),
                    "settings": settings,
                    "plan": {
                        "changes": run.plan.counts(),
                        "baseline_meetings": len(run.plan.baseline),
                        "enqueue_s": run.enqueue_s,
                    },
                    "canvas_bounds": bounds(args),
                    "results": [asdict(r) for r in results],
                },
                indent=2,
                default=str,
            )
            + "\n"
        )
    return 0 if all(r.correct for r in results) else 1
