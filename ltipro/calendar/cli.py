"""``ltipro calendar reconcile``: repair the drift between meetings and LMS calendars."""

from __future__ import annotations

import argparse
from typing import Any

from ltipro.calendar.reconcile import CourseReport, reconcile
from ltipro.cli import _out, _run, _settings, _with_tool


def course_summary(report: CourseReport, dry_run: bool) -> str:
    """One line per course: what drifted, and what was (or would be) done about it."""
    if report.skipped:
        return f"{report.name}: skipped, {report.skipped}"
    counts = report.counts()
    if not report.repairs:
        parts = "in step, nothing to repair"
    else:
        parts = ", ".join(f"{n} {drift}" for drift, n in counts.items() if n)
        parts += " (dry run: nothing changed)" if dry_run else " repaired"
    problems = f"; {len(report.problems)} problem(s)" if report.problems else ""
    return f"{report.name}: {parts}{problems}"


async def run_reconcile(tool: Any, credential: str | None, dry_run: bool) -> int:
    """Reconcile and print the report: one line per course, one per repair; 1 on problems."""
    credential_id = None
    if credential is not None:
        credential_id = (await tool.repo.credential(credential)).id
    reports = await reconcile(tool, credential_id=credential_id, dry_run=dry_run)
    if not reports:
        _out("No courses to reconcile.")
        return 0
    for report in reports:
        _out(course_summary(report, dry_run))
        for repair in report.repairs:
            _out(f"  {repair.describe(dry_run)}")
        for problem in report.problems:
            _out(f"  problem: {problem}")
    repaired = sum(len(r.repairs) for r in reports)
    failed = sum(len(r.problems) for r in reports)
    verb = "to repair" if dry_run else "repaired"
    _out(f"{len(reports)} course(s), {repaired} event(s) {verb}, {failed} problem(s).")
    return 1 if failed else 0


def cmd_calendar_reconcile(args: argparse.Namespace) -> int:
    """``ltipro calendar reconcile``: compare LMS calendars with the meetings, repair drift."""

    async def run(tool: Any) -> int:
        return await run_reconcile(tool, args.credential, args.dry_run)

    return _run(_with_tool, _settings(), run)


def add_commands(sub: Any) -> None:
    """Add ``calendar`` to the ``ltipro`` parser's commands."""
    cal = sub.add_parser("calendar", help="meetings in LMS calendars: reconcile drift")
    cal_sub = cal.add_subparsers(dest="action", metavar="ACTION")
    cal_sub.required = True
    p = cal_sub.add_parser(
        "reconcile",
        help="compare LMS calendars with the meetings; repair missing, stale, duplicate and "
        "orphaned events",
    )
    p.add_argument("--credential", metavar="NAME", help="only the courses of this credential")
    p.add_argument(
        "--dry-run", action="store_true", help="report the drift without changing anything"
    )
    p.set_defaults(func=cmd_calendar_reconcile)
