"""``ltipro meetings import`` and ``ltipro meetings undo``: the import from a shell.

Both print the same table as the console's preview, one row per line with its row
number, and change nothing with ``--dry-run``. A file with row errors imports nothing
and exits with status 1; a file that cannot be read at all is a usage error (status 2).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from sqlalchemy import select

from ltipro.cli import UsageError, _out, _run, _settings, _with_tool
from ltipro.imports import confirm as _confirm  # noqa: F401 - registers the import.confirm job
from ltipro.imports import service
from ltipro.imports.batches import Batch, BatchError
from ltipro.imports.checks import COURSE_STATES
from ltipro.imports.csvfile import DEFAULT_MAX_BYTES, ImportFileError
from ltipro.imports.tables import import_batches
from ltipro.providers.base import ProviderError

ACTOR = "cli"


def batch_id(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"a batch id is a number (got {value!r})") from None
    if not 1 <= number <= 2**31 - 1:
        raise argparse.ArgumentTypeError(f"there is no import batch {value}")
    return number


def row_list(value: str) -> list[int]:
    try:
        numbers = sorted({int(n) for n in value.split(",") if n.strip()})
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"rows are numbers separated by commas, such as 3,5 (got {value!r})"
        ) from None
    if not numbers:
        raise argparse.ArgumentTypeError("name at least one row")
    return numbers


def _progress(done: int, total: int) -> None:
    if sys.stderr.isatty():
        sys.stderr.write(f"\rchecked {done} of {total} rows")
        sys.stderr.flush()


def print_batch(batch: Batch) -> None:
    """The preview (or outcome) as lines: row, meeting, course, what happens."""
    for row in batch.rows:
        what = (
            "error: " + " ".join(row.errors)
            if row.errors
            else ("undone" if row.undone_at else "added" if row.imported else row.action)
        )
        course = COURSE_STATES.get(row.course_state or "", "")
        _out(
            f"row {row.number}\t{row.meeting_id or row.meeting_id_cell}\t{row.context_id}\t"
            f"{row.domain}\t{course}\t{what}"
        )
    s = batch.summary
    _out(
        f"Batch {batch.id} ({batch.status}): {s.get('add', 0)} to add, {s.get('skip', 0)} "
        f"already in their course, {s.get('errors', 0)} with errors."
    )
    for note in s.get("notes", []):
        _out(f"Note: {note}")
    if batch.message:
        _out(batch.message)


def cmd_meetings_import(args: argparse.Namespace) -> int:
    """``ltipro meetings import FILE --credential NAME [--dry-run]``."""
    path = Path(args.file)
    try:
        if path.stat().st_size > DEFAULT_MAX_BYTES:
            raise UsageError(
                f"{path} is larger than {DEFAULT_MAX_BYTES:,} bytes: split it into smaller files"
            )
        data = path.read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from None

    async def run(tool: Any) -> int:
        credential = await tool.repo.credential(args.credential)
        try:
            batch = await service.import_file(
                tool,
                credential,
                data,
                file_name=path.name,
                actor=ACTOR,
                dry_run=args.dry_run,
                notify=args.notify,
            )
        except ImportFileError as exc:
            raise UsageError(exc.message) from None
        except (ProviderError, BatchError) as exc:
            raise UsageError(exc.message) from None
        print_batch(batch)
        if batch.error_rows:
            _out("Nothing was imported: correct the rows above and run the command again.")
            return 1
        if args.dry_run:
            _out("Dry run: nothing was imported. Run it again without --dry-run to import.")
        elif batch.applied_at is not None:
            _out(f"Imported. To undo: ltipro meetings undo {batch.id}")
        return 0

    return _run(_with_tool, _settings(), run)


def cmd_meetings_undo(args: argparse.Namespace) -> int:
    """``ltipro meetings undo BATCH [--rows 3,5] [--dry-run]``."""

    async def run(tool: Any) -> int:
        async with tool.repo.engine.connect() as conn:
            found = (
                await conn.execute(
                    select(import_batches.c.credential_id).where(import_batches.c.id == args.batch)
                )
            ).first()
        if found is None:
            raise UsageError(f"there is no import batch {args.batch}")
        credential = await tool.repo.credential_by_id(found.credential_id)
        try:
            plan = await service.undo(
                tool, credential, args.batch, actor=ACTOR, rows=args.rows, dry_run=args.dry_run
            )
        except BatchError as exc:
            raise UsageError(exc.message) from None
        for item in plan.items:
            what = "remove" if item.action == "remove" else "already deleted in the course"
            if item.course_removed:
                what += " (and the course record nobody launched)"
            _out(
                f"row {item.row.number}\t{item.row.meeting_id}\t{item.row.context_id}\t"
                f"{item.row.domain}\t{what}"
            )
        if args.dry_run:
            _out(
                f"Dry run: undoing would remove {plan.meetings} meeting(s) from their courses. "
                "Nothing was changed."
            )
        else:
            _out(f"Removed {plan.removed} meeting(s) from their courses (batch {args.batch}).")
        return 0

    return _run(_with_tool, _settings(), run)


def add_commands(sub: Any) -> None:
    """Register ``ltipro meetings import|undo`` (called by :func:`ltipro.cli.build_parser`)."""
    meetings = sub.add_parser("meetings", help="course meetings: import them from a CSV, undo")
    meetings_sub = meetings.add_subparsers(dest="action", metavar="ACTION")
    meetings_sub.required = True
    p = meetings_sub.add_parser(
        "import", help="import meetings from a CSV (Meeting ID, Context ID, Domain)"
    )
    p.add_argument("file", metavar="FILE", help="the CSV file")
    p.add_argument("--credential", required=True, metavar="NAME")
    p.add_argument("--dry-run", action="store_true", help="check every row; import nothing")
    p.add_argument(
        "--notify",
        metavar="EMAIL",
        help="send the confirmation here (default: the credential's admins)",
    )
    p.set_defaults(func=cmd_meetings_import)
    p = meetings_sub.add_parser("undo", help="take an import batch's meetings out again")
    p.add_argument("batch", type=batch_id, metavar="BATCH")
    p.add_argument("--rows", type=row_list, metavar="N,N", help="only these row numbers")
    p.add_argument("--dry-run", action="store_true", help="show what would be removed")
    p.set_defaults(func=cmd_meetings_undo)
