"""``ltipro worker`` and ``ltipro jobs``: run the job queue, and look after its dead letters."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import math
import signal
import sys
from collections import Counter
from collections.abc import Iterator
from typing import Any

from ltipro.cli import _out, _run, _settings, _with_tool
from ltipro.jobs.queue import (
    DEAD,
    DONE,
    QUEUED,
    RUNNING,
    STATUSES,
    Job,
    discard_job,
    list_jobs,
    retry_job,
)
from ltipro.jobs.worker import Outcome, Worker

MAX_CONCURRENCY = 100
MAX_POLL = 3600.0
MAX_LIST = 10000
ERROR_PREVIEW = 120
LOG_LEVELS = ("critical", "error", "warning", "info", "debug")


def job_id(value: str) -> int:
    """A job id as argparse reads it: a whole number the database can hold."""
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"a job id is a number (got {value!r}; see `ltipro jobs list`)"
        ) from None
    if not 1 <= number <= 2**31 - 1:
        raise argparse.ArgumentTypeError(f"there is no job with id {value}")
    return number


def concurrency(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"a number of jobs is a whole number (got {value!r})"
        ) from None
    if not 1 <= number <= MAX_CONCURRENCY:
        raise argparse.ArgumentTypeError(
            f"run from 1 to {MAX_CONCURRENCY} jobs at a time (got {number}); start more "
            "`ltipro worker` processes for more"
        )
    return number


def poll_seconds(value: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"a number of seconds, such as 0.5 or 2 (got {value!r})"
        ) from None
    if not math.isfinite(seconds) or not 0 < seconds <= MAX_POLL:
        raise argparse.ArgumentTypeError(
            f"the poll interval is more than 0 and at most {MAX_POLL:g} seconds (got {value})"
        )
    return seconds


def list_limit(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"a number of jobs is a whole number (got {value!r})"
        ) from None
    if not 1 <= number <= MAX_LIST:
        raise argparse.ArgumentTypeError(f"list from 1 to {MAX_LIST} jobs (got {number})")
    return number


# -- ltipro worker ---------------------------------------------------------------------------


def _summary(outcomes: list[Outcome]) -> str:
    if not outcomes:
        return "No job was due."
    counts = Counter(o.result for o in outcomes)
    parts = [f"{counts['done']} done", f"{counts['retry']} to retry", f"{counts['dead']} dead"]
    parts += [f"{counts[r]} {r}" for r in ("lost", "released") if counts[r]]
    noun = "job" if len(outcomes) == 1 else "jobs"
    return f"Ran {len(outcomes)} {noun}: {', '.join(parts)}."


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is when a record comes, not when it was made."""

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr
        super().emit(record)


@contextlib.contextmanager
def _log_to_stderr(level: str, log_format: str = "text") -> Iterator[None]:
    """The tool's log lines on standard error while the worker runs, one line each.

    ``LTIPRO_LOG_FORMAT=json`` makes them JSON objects, each with the job's id as its
    request id (ltipro.observability), like the web server's.
    """
    from ltipro.observability import JsonFormatter, RequestIdFilter

    handler = _StderrHandler()
    if log_format == "json":
        handler.setFormatter(JsonFormatter())
        handler.addFilter(RequestIdFilter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logger = logging.getLogger("ltipro")
    previous = logger.level
    logger.addHandler(handler)
    logger.setLevel(level.upper())
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous)


def cmd_worker(args: argparse.Namespace) -> int:
    """``ltipro worker``: run due jobs until SIGTERM or SIGINT (or once, with ``--once``)."""
    settings = _settings()

    async def work(tool: Any) -> int:
        return await _run_worker(tool, args)

    from ltipro import observability

    # With a metrics folder shared with the web workers of this host, /metrics counts the
    # jobs this process runs too.
    observability.shared_metrics(settings.metrics_dir)
    try:
        with _log_to_stderr(args.log_level, settings.log_format):
            return _run(_with_tool, settings, work)
    finally:
        observability.stop_sharing()


async def _run_worker(tool: Any, args: argparse.Namespace) -> int:
    worker = Worker(tool.repo.engine, tool=tool, concurrency=args.concurrency, poll=args.poll)
    kinds = worker.handlers.kinds()
    if not kinds:
        sys.stderr.write(
            "ltipro: warning: no job kinds are registered in this process (no loaded "
            "plugin or module registers a handler), so no job will run\n"
        )
    stop = asyncio.Event()
    current = asyncio.current_task()
    loop = asyncio.get_running_loop()

    def on_signal() -> None:
        if stop.is_set() and current is not None:
            current.cancel()  # a second signal: give the jobs in hand back and stop now
            return
        sys.stderr.write(
            "ltipro worker: stopping after the jobs in hand (signal again to stop now)\n"
        )
        stop.set()

    signals = (signal.SIGTERM, signal.SIGINT)
    for sig in signals:
        loop.add_signal_handler(sig, on_signal)
    try:
        if args.once:
            _out(_summary(await worker.drain(stop)))
            return 0
        sys.stderr.write(
            f"ltipro worker {worker.name}: running {', '.join(kinds) or 'no kinds'}, "
            f"{worker.concurrency} at a time; stop with SIGTERM or Ctrl-C\n"
        )
        await worker.run(stop)
        _out(f"Worker {worker.name} stopped.")
        return 0
    finally:
        for sig in signals:
            loop.remove_signal_handler(sig)


# -- ltipro jobs -------------------------------------------------------------------------------


def _when(job: Job) -> str:
    if job.status == QUEUED:
        return f"due {job.run_after:%Y-%m-%d %H:%M:%S} UTC"
    if job.status == RUNNING:
        until = f"{job.locked_until:%Y-%m-%d %H:%M:%S}" if job.locked_until else "?"
        return f"held by {job.locked_by} until {until} UTC"
    finished = f"{job.finished_at:%Y-%m-%d %H:%M:%S}" if job.finished_at else "?"
    return f"{'done' if job.status == DONE else 'dead since'} {finished} UTC"


def _preview(error: str | None) -> str:
    if not error:
        return ""
    first = error.strip().splitlines()[0] if error.strip() else ""
    return first if len(first) <= ERROR_PREVIEW else first[: ERROR_PREVIEW - 1] + "…"


def _as_json(job: Job) -> dict[str, Any]:
    def iso(value: Any) -> Any:
        return value.isoformat() if value is not None else None

    return {
        "id": job.id,
        "kind": job.kind,
        "key": job.key,
        "status": job.status,
        "attempts": job.attempts,
        "max_attempts": job.max_attempts,
        "run_after": iso(job.run_after),
        "locked_by": job.locked_by,
        "locked_until": iso(job.locked_until),
        "last_error": job.last_error,
        "credential_id": job.credential_id,
        "payload": job.payload,
        "created_at": iso(job.created_at),
        "updated_at": iso(job.updated_at),
        "finished_at": iso(job.finished_at),
    }


def cmd_jobs_list(args: argparse.Namespace) -> int:
    """``ltipro jobs list``: jobs, newest first, with their state and last error."""

    async def show(tool: Any) -> int:
        credential_id = None
        if args.credential is not None:
            credential_id = (await tool.repo.credential(args.credential)).id
        rows = await list_jobs(
            tool.repo.engine,
            status=args.status,
            kind=args.kind,
            credential_id=credential_id,
            limit=args.limit,
        )
        if args.json:
            _out(json.dumps([_as_json(job) for job in rows], indent=2))
            return 0
        if not rows:
            _out(f"No {args.status} jobs." if args.status else "No jobs.")
            return 0
        for job in rows:
            _out(
                "\t".join(
                    [
                        str(job.id),
                        job.status,
                        job.kind,
                        f"attempt {job.attempts}/{job.max_attempts}",
                        _when(job),
                        job.key,
                        _preview(job.last_error),
                    ]
                ).rstrip("\t")
            )
        return 0

    return _run(_with_tool, _settings(), show)


def cmd_jobs_retry(args: argparse.Namespace) -> int:
    """``ltipro jobs retry ID``: a dead job goes back to the queue, attempts from zero."""

    async def retry(tool: Any) -> int:
        job = await retry_job(tool.repo.engine, args.job_id)
        _out(
            f"Job {job.id} ({job.kind}) is queued again with {job.max_attempts} attempts; "
            "a worker runs it at its next poll."
        )
        return 0

    return _run(_with_tool, _settings(), retry)


def cmd_jobs_discard(args: argparse.Namespace) -> int:
    """``ltipro jobs discard ID``: delete a dead (or queued) job for good."""

    async def discard(tool: Any) -> int:
        job = await discard_job(tool.repo.engine, args.job_id)
        _out(f"Discarded job {job.id} ({job.kind}, key {job.key}); it will not run.")
        return 0

    return _run(_with_tool, _settings(), discard)


def add_commands(sub: Any) -> None:
    """Add ``worker`` and ``jobs`` to the ``ltipro`` parser's commands."""
    p = sub.add_parser("worker", help="run queued jobs (calendar sync, notifications, ...)")
    p.add_argument("--once", action="store_true", help="run the jobs due now, then exit (for cron)")
    p.add_argument(
        "--concurrency",
        type=concurrency,
        default=1,
        metavar="N",
        help="jobs to run at the same time (default 1)",
    )
    p.add_argument(
        "--poll",
        type=poll_seconds,
        default=1.0,
        metavar="SECONDS",
        help="how often to look for due jobs when idle (default 1)",
    )
    p.add_argument(
        "--log-level",
        default="info",
        choices=LOG_LEVELS,
        help="how much to log on standard error (default info; debug adds tracebacks)",
    )
    p.set_defaults(func=cmd_worker)

    jobs = sub.add_parser("jobs", help="the job queue: list jobs, retry or discard dead ones")
    jobs_sub = jobs.add_subparsers(dest="action", metavar="ACTION")
    jobs_sub.required = True
    p = jobs_sub.add_parser("list", help="list jobs, newest first")
    p.add_argument("--status", choices=STATUSES, help=f"only jobs in this state ({DEAD}: failed)")
    p.add_argument("--kind", help="only jobs of this kind, such as calendar.sync")
    p.add_argument("--credential", metavar="NAME", help="only the jobs of this credential")
    p.add_argument(
        "--limit", type=list_limit, default=100, metavar="N", help="at most N jobs (default 100)"
    )
    p.add_argument("--json", action="store_true", help="every field, payload included")
    p.set_defaults(func=cmd_jobs_list)
    p = jobs_sub.add_parser("retry", help="put a dead job back in the queue")
    p.add_argument("job_id", type=job_id, metavar="ID")
    p.set_defaults(func=cmd_jobs_retry)
    p = jobs_sub.add_parser("discard", help="delete a dead job for good")
    p.add_argument("job_id", type=job_id, metavar="ID")
    p.set_defaults(func=cmd_jobs_discard)
