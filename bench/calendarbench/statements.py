"""Database work per synced meeting change, counted exactly: statements, transactions,
pool checkouts, driver calls.

The calendar benchmark's CPU and wall time move with the machine's load; these counts do
not. The tool runs in-process (:class:`~ltipro.testing.ToolHarness` with the Canvas
plugin) against the Canvas double with no latency and no throttling, on SQLite or on a
throwaway PostgreSQL database. The set-up is the benchmark's in small: courses, a
baseline of meetings synced once (not counted), then a mix of changes made through the
meetings repository with their ``calendar.sync`` jobs (not counted: that is the app's
request). What is counted is one worker draining those jobs, one at a time: claiming,
the meeting's lock, reading the meeting, the course and its LMS, the Canvas token, the
occurrence rows, marking the job done::

    .venv/bin/python bench/calendarbench/statements.py                 # SQLite
    .venv/bin/python bench/calendarbench/statements.py --postgresql    # and PostgreSQL
    .venv/bin/python bench/calendarbench/statements.py --tokens admin --changes 400
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ltipro_canvas.testing import CLIENT_ID, CLIENT_SECRET, CanvasDouble
from sqlalchemy import event, select

from calendarbench.workload import (
    ADMIN_CANVAS_USER,
    Installed,
    Mix,
    _add,
    canvas_course,
    canvas_teacher,
    enqueue_changes,
    host_of,
    in_batches,
    make_plan,
)
from ltipro.calendar.runtime import token_store
from ltipro.calendar.sync import KIND, sync_calendar
from ltipro.jobs import JobHandlers, Worker
from ltipro.lmsapi import StoredToken
from ltipro.plugin_settings import set_plugin_settings
from ltipro.storage.schema import courses
from ltipro.testing.dbcounts import driver_calls
from ltipro.testing.harness import ToolHarness, prepare_database

DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/postgres"
CANVAS_HOST = "canvas.count.test"


async def _install(harness: ToolHarness, double: CanvasDouble, mix: Mix, tokens: str) -> Installed:
    """Canvas settings, courses and tokens as the benchmark's ``install`` makes them, on
    the harness's credential and platform."""
    tool = harness.tool
    credential = harness.credential
    platform_id = harness.registration.id
    settings = {"api_client_id": CLIENT_ID, "api_client_secret": CLIENT_SECRET}
    if tokens == "admin":
        double.add_user(ADMIN_CANVAS_USER, "Canvas admin", admin=True)
        access, _ = double.issue_token(ADMIN_CANVAS_USER, expires_in=None, refresh=False)
        settings["admin_access_token"] = access
    await set_plugin_settings(tool, credential, "canvas", settings)
    store = token_store(tool, credential.id, platform_id, "canvas")
    for n in range(mix.courses):
        double.add_course(canvas_course(n), name=f"Course {n}", teachers=[canvas_teacher(n)])
        await tool.repo.record_course(
            credential.id,
            lms="canvas",
            domain=CANVAS_HOST,
            context_id=f"course-{n}",
            lms_course_id=canvas_course(n),
            title=f"Course {n}",
            label=f"C{n}",
            history=[],
            platform_id=platform_id,
        )
        if tokens == "hosts":
            access, refresh = double.issue_token(canvas_teacher(n), expires_in=3600)
            await store.put(
                host_of(n),
                StoredToken.from_oauth(
                    {"access_token": access, "refresh_token": refresh, "expires_in": 3600}
                ),
            )
    async with tool.repo.engine.connect() as conn:
        rows = (await conn.execute(select(courses.c.id, courses.c.context_id))).all()
    by_context = {r.context_id: r.id for r in rows}
    course_ids = [by_context[f"course-{n}"] for n in range(mix.courses)]
    canvas_ids = [canvas_course(n) for n in range(mix.courses)]
    return Installed(credential.id, platform_id, course_ids, canvas_ids)


def _worker(harness: ToolHarness) -> Worker:
    handlers = JobHandlers()
    handlers.register(KIND, sync_calendar)
    return Worker(
        harness.tool.repo.engine,
        handlers=handlers,
        tool=harness.tool,
        name="count",
        concurrency=1,
    )


async def count_sync(
    database_url: str, instance: Path, mix: Mix, tokens: str, seed: int
) -> dict[str, Any]:
    """Counts per synced change (and per Canvas call) while one worker drains the jobs."""
    plan = make_plan(mix, seed)
    async with ToolHarness(
        database_url=database_url, instance=instance, plugins=["canvas"], lms="canvas"
    ) as harness:
        double = CanvasDouble(host=CANVAS_HOST)
        harness.transport.add(CANVAS_HOST, double)
        installed = await _install(harness, double, mix, tokens)
        repo_engine = harness.tool.repo.engine
        from ltipro.meetings.repository import MeetingsRepository

        repo = MeetingsRepository(repo_engine)

        async def add(planned: Any) -> None:
            made = await _add(repo, installed, planned, mix.occurrences)
            installed.uids[planned.label] = made.uid

        await in_batches(add, plan.baseline)
        baseline = await _worker(harness).drain()
        if any(o.result != "done" for o in baseline):
            raise SystemExit(f"the baseline did not sync: {Counter(o.result for o in baseline)}")
        jobs = await enqueue_changes(harness.tool, installed, plan)
        calls_before = len(double.requests)

        engine = repo_engine.sync_engine
        counts: Counter[str] = Counter()

        def on(name: str) -> Any:
            return lambda *args: counts.update([name])

        shapes: Counter[str] = Counter()

        def on_statement(conn: Any, cursor: Any, sql: str, *args: Any) -> None:
            counts["statements"] += 1
            shapes[_shape(sql)] += 1

        listeners = [
            (engine.pool, "checkout", on("pool checkouts")),
            (engine, "begin", on("transactions")),
            (engine, "commit", on("commits")),
            (engine, "rollback", on("rollbacks")),
            (engine, "before_cursor_execute", on_statement),
        ]
        for target, name, fn in listeners:
            event.listen(target, name, fn)
        try:
            with driver_calls(counts):
                outcomes = await _worker(harness).drain()
        finally:
            for target, name, fn in listeners:
                event.remove(target, name, fn)
        results = Counter(o.result for o in outcomes)
        if results != Counter({"done": jobs}):
            raise SystemExit(f"not every change synced: {dict(results)}")
        calls = len(double.requests) - calls_before
        return {
            "changes": jobs,
            "canvas calls": calls,
            "per change": {k: round(v / jobs, 2) for k, v in sorted(counts.items())},
            "per canvas call": {k: round(v / calls, 2) for k, v in sorted(counts.items())},
            "statements a change, by kind": {
                k: round(v / jobs, 2) for k, v in shapes.most_common()
            },
        }


def _shape(sql: str) -> str:
    """A statement's verb and table: ``SELECT lms_tokens``, ``UPDATE jobs``."""
    words = sql.split()
    if not words:
        return "?"
    verb = words[0].upper()
    upper = [w.upper() for w in words]
    keyword = {"INSERT": "INTO", "UPDATE": "UPDATE", "DELETE": "FROM"}.get(verb, "FROM")
    if keyword in upper and upper.index(keyword) + 1 < len(words):
        return f"{verb} {words[upper.index(keyword) + 1].strip('()')}"
    return verb


def report(label: str, result: dict[str, Any]) -> str:
    lines = [
        f"{label}: {result['changes']} changes, {result['canvas calls']} Canvas calls "
        f"({result['canvas calls'] / result['changes']:.2f} a change)"
    ]
    for name, value in result["per change"].items():
        lines.append(f"  {name}: {value} a change, {result['per canvas call'][name]} a call")
    lines.append("  statements a change, by kind:")
    for name, value in result["statements a change, by kind"].items():
        lines.append(f"    {name}: {value}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="bench/calendarbench/statements.py",
        description="Database work per synced calendar change, counted.",
    )
    parser.add_argument("--changes", type=int, default=200, help="changes synced (200)")
    parser.add_argument("--courses", type=int, default=10, help="courses (10)")
    parser.add_argument(
        "--tokens",
        choices=("admin", "hosts", "both"),
        default="both",
        help="one admin token, a grant per instructor, or both runs (default)",
    )
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--postgresql",
        nargs="?",
        const=DEFAULT_PG,
        metavar="URL",
        help=f"count on a throwaway PostgreSQL database too (server default {DEFAULT_PG})",
    )
    parser.add_argument("--json", type=Path, help="also write the counts to this file")
    args = parser.parse_args(argv)
    from launchbench.statements import _throwaway_postgres

    mix = Mix(changes=args.changes, courses=args.courses)
    modes = ("admin", "hosts") if args.tokens == "both" else (args.tokens,)
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="ltipro-count-") as tmp:
        folder = Path(tmp)
        for tokens in modes:
            url = f"sqlite:///{folder / f'{tokens}.db'}"
            prepare_database(url)
            label = f"SQLite, --tokens {tokens}"
            results[label] = asyncio.run(
                count_sync(url, folder / f"sqlite-{tokens}", mix, tokens, args.seed)
            )
            print(report(label, results[label]), flush=True)
            if args.postgresql:
                with _throwaway_postgres(args.postgresql) as pg_url:
                    prepare_database(pg_url)
                    label = f"PostgreSQL, --tokens {tokens}"
                    results[label] = asyncio.run(
                        count_sync(pg_url, folder / f"pg-{tokens}", mix, tokens, args.seed)
                    )
                print(report(label, results[label]), flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
