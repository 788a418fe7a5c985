"""The import as the console, the API and the command line use it: check a file, apply a
checked batch, undo a batch or some of its rows.

Every entry point takes the tool and the credential; each check asks the credential's
provider, so an import needs the provider set up (and reachable) first.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.exc import IntegrityError

from ltipro.imports import checks as rules
from ltipro.imports.batches import (
    APPLIED,
    APPLYING,
    CHECKED,
    CHECKING,
    INTERRUPTED,
    Batch,
    BatchError,
    BatchRow,
    ImportBatches,
)
from ltipro.imports.csvfile import FileRow, ImportFile, read_file
from ltipro.providers.base import Feature, MeetingsProvider
from ltipro.storage.repository import Credential

log = logging.getLogger(__name__)

# Progress is written at most this often (seconds) while rows are checked.
PROGRESS_INTERVAL = 0.5
# A batch still "checking" after this long was left by a process that stopped.
STALE_AFTER = timedelta(minutes=15)
# Checks running in this process, kept so they are not collected before they finish.
_RUNNING: set[asyncio.Task[Any]] = set()


def max_rows(tool: Any, credential: Credential) -> int:
    """The most rows one file may have: the credential's option, within the installation's
    ``LTIPRO_IMPORT_MAX_ROWS``."""
    return max(1, min(credential.options.csv_import_max_rows, tool.settings.import_max_rows))


def batches_of(tool: Any) -> ImportBatches:
    store: ImportBatches | None = getattr(tool, "_import_batches", None)
    if store is None:
        store = ImportBatches(tool.repo.engine)
        tool._import_batches = store
    return store


def read(tool: Any, credential: Credential, data: bytes) -> ImportFile:
    """The file's rows, or :class:`~ltipro.imports.csvfile.ImportFileError`."""
    return read_file(data, max_rows=max_rows(tool, credential))


def _file_rows(rows: Iterable[BatchRow]) -> list[FileRow]:
    return [
        FileRow(r.number, r.meeting_id_cell, r.context_id, r.domain, r.lms_course_id or "")
        for r in rows
    ]


def _warnings(
    credential: Credential, provider: MeetingsProvider, parsed_notes: Iterable[str]
) -> list[str]:
    notes = list(parsed_notes)
    if not provider.has(Feature.ALTERNATIVE_HOSTS):
        notes.append(
            f"{provider.title} has no alternative hosts: the course's instructors join "
            "imported meetings like everyone else; only the meeting's own host starts them."
        )
    return notes


async def _checked(
    tool: Any,
    credential: Credential,
    provider: MeetingsProvider,
    batch_id: int,
    rows: list[FileRow],
) -> list[rules.RowCheck]:
    store = batches_of(tool)
    found = rules.local_checks(rows, credential.options)
    rules.tool_checks(found, await store.known(credential.id, provider.name, found))
    last = 0.0

    async def progress(done: int) -> None:
        nonlocal last
        now = time.monotonic()
        if now - last >= PROGRESS_INTERVAL or done == len(found):
            last = now
            await store.progress(batch_id, done)

    await rules.provider_checks(found, provider, progress=progress)
    renamed = rules.canonical_ids(found)
    if renamed:
        rules.tool_checks(renamed, await store.known(credential.id, provider.name, renamed))
    return found


async def check(
    tool: Any,
    credential: Credential,
    parsed: ImportFile,
    *,
    file_name: str,
    actor: str,
    notify: str | None = None,
    batch_id: int | None = None,
) -> Batch:
    """The dry run of a file read with :func:`read`: every row checked, stored as a batch."""
    provider = await tool.providers.for_credential(tool, credential)
    store = batches_of(tool)
    if batch_id is None:
        batch_id = await store.create(credential.id, file_name, actor, len(parsed.rows), notify)
    try:
        found = await _checked(tool, credential, provider, batch_id, parsed.rows)
        summary: dict[str, Any] = rules.summarise(found)
        summary["notes"] = _warnings(credential, provider, parsed.notes)
        await store.store_checks(batch_id, found, summary)
    except BaseException as exc:
        await store.store_checks(
            batch_id, [], {}, f"The check stopped: {exc}. Nothing was imported.", INTERRUPTED
        )
        raise
    batch = await store.get(credential.id, batch_id)
    assert batch is not None
    return batch


async def start_check(
    tool: Any,
    credential: Credential,
    parsed: ImportFile,
    *,
    file_name: str,
    actor: str,
    notify: str | None = None,
) -> int:
    """Start the dry run in the background and return the batch id at once (the console
    shows its progress while it runs)."""
    await tool.providers.for_credential(tool, credential)  # a provider error: refuse now
    store = batches_of(tool)
    batch_id = await store.create(credential.id, file_name, actor, len(parsed.rows), notify)

    async def run() -> None:
        try:
            await check(
                tool, credential, parsed, file_name=file_name, actor=actor, batch_id=batch_id
            )
        except Exception:
            log.exception("checking import batch %s failed", batch_id)

    task = asyncio.create_task(run())
    _RUNNING.add(task)
    task.add_done_callback(_RUNNING.discard)
    return batch_id


async def start_apply(
    tool: Any, credential: Credential, batch_id: int, *, actor: str, notify: str | None = None
) -> None:
    """Apply a checked batch in the background (the console shows its progress)."""
    batch = await get(tool, credential, batch_id)
    _check_appliable(batch)  # refused in the request, with the reason
    if not await batches_of(tool).claim(batch_id, CHECKED, APPLYING):
        raise BatchError(f"Import batch {batch_id} is being applied already.")

    async def run() -> None:
        try:
            await apply(tool, credential, batch_id, actor=actor, notify=notify, claimed=True)
        except Exception:
            log.exception("applying import batch %s failed", batch_id)

    task = asyncio.create_task(run())
    _RUNNING.add(task)
    task.add_done_callback(_RUNNING.discard)


async def wait_for_checks() -> None:
    """Wait for the background checks of this process (tests and shutdown)."""
    while _RUNNING:
        await asyncio.gather(*list(_RUNNING), return_exceptions=True)


async def get(tool: Any, credential: Credential, batch_id: int) -> Batch:
    store = batches_of(tool)
    batch = await store.get(credential.id, batch_id)
    if batch is None:
        raise BatchError(f"There is no import batch {batch_id} for this credential.", 404)
    stale = datetime.now(UTC) - STALE_AFTER
    if batch.status in (CHECKING, APPLYING) and batch.updated_at < stale:
        await store.interrupt_stale(credential.id, stale)
        found = await store.get(credential.id, batch_id)
        assert found is not None
        batch = found
    return batch


async def apply(
    tool: Any,
    credential: Credential,
    batch_id: int,
    *,
    actor: str,
    notify: str | None = None,
    claimed: bool = False,
) -> Batch:
    """Apply a checked batch, all or nothing.

    The rows are checked once more first (the provider or the tool may have changed
    since the preview); if anything is wrong now, nothing is written and the batch shows
    the new errors. Then everything is written in one transaction.
    """
    batch = await get(tool, credential, batch_id)
    store = batches_of(tool)
    if not claimed:
        _check_appliable(batch)
        if not await store.claim(batch_id, CHECKED, APPLYING):
            raise BatchError(f"Import batch {batch_id} is being applied already.")
    provider = await tool.providers.for_credential(tool, credential)
    try:
        found = await _checked(tool, credential, provider, batch_id, _file_rows(batch.rows))
        summary: dict[str, Any] = rules.summarise(found)
        summary["notes"] = batch.summary.get("notes", [])
        if summary["errors"]:
            await store.store_checks(
                batch_id,
                found,
                summary,
                "Something changed since the preview (see the errors below). Nothing was imported.",
            )
            return await get(tool, credential, batch_id)
        await store.store_checks(batch_id, found, summary, status=APPLYING)
        fresh = await store.get(credential.id, batch_id)
        assert fresh is not None
        try:
            await store.apply(fresh, provider=provider.name, actor=actor, notify=notify)
        except IntegrityError:
            # A launch or another import added one of the meetings since the check.
            raise BatchError(
                "A meeting of this file was added to a course while it was being applied. "
                "Nothing was imported: upload the file again to see which."
            ) from None
    except BaseException as exc:
        reason = exc.message if isinstance(exc, BatchError) else str(exc) or type(exc).__name__
        await store.progress(batch_id, batch.total_rows, status=CHECKED)
        await _note(store, batch_id, f"Applying failed ({reason}). Nothing was imported.")
        raise
    return await get(tool, credential, batch_id)


def _check_appliable(batch: Batch) -> None:
    if batch.status == APPLIED or batch.applied_at is not None:
        raise BatchError(f"Import batch {batch.id} was applied already.")
    if batch.status != CHECKED:
        raise BatchError(f"Import batch {batch.id} is {batch.status}; it cannot be applied now.")
    if batch.error_rows:
        raise BatchError(
            f"Import batch {batch.id} has {batch.error_rows} row(s) with errors: correct the "
            "file and upload it again. Nothing was imported.",
            422,
        )
    if not batch.summary.get("add"):
        raise BatchError(f"Import batch {batch.id} has no meeting to import.", 422)


async def _note(store: ImportBatches, batch_id: int, message: str) -> None:
    from sqlalchemy import update

    from ltipro.imports.tables import import_batches

    async with store.engine.begin() as conn:
        await conn.execute(
            update(import_batches).where(import_batches.c.id == batch_id).values(message=message)
        )


async def import_file(
    tool: Any,
    credential: Credential,
    data: bytes,
    *,
    file_name: str,
    actor: str,
    dry_run: bool,
    notify: str | None = None,
) -> Batch:
    """Check a file and, unless ``dry_run`` or a row has errors, apply it (API and CLI)."""
    parsed = read(tool, credential, data)
    batch = await check(tool, credential, parsed, file_name=file_name, actor=actor, notify=notify)
    if dry_run or not batch.can_apply:
        return batch
    return await apply(tool, credential, batch.id, actor=actor, notify=notify)


# -- undo ----------------------------------------------------------------------------------------

REMOVE = "remove"
GONE = "gone"


@dataclass(frozen=True)
class UndoItem:
    row: BatchRow
    action: str  # remove, or gone (the meeting was deleted in the tool already)
    course_removed: bool = False


@dataclass
class UndoPlan:
    """What undoing would do (or did): each row, and the course records removed with it."""

    batch: Batch
    items: list[UndoItem] = field(default_factory=list)
    done: bool = False
    removed: int = 0

    @property
    def meetings(self) -> int:
        return sum(1 for i in self.items if i.action == REMOVE)

    @property
    def courses(self) -> int:
        return len({i.row.course_id for i in self.items if i.course_removed})


async def undo(
    tool: Any,
    credential: Credential,
    batch_id: int,
    *,
    actor: str,
    rows: Iterable[int] | None = None,
    dry_run: bool = False,
) -> UndoPlan:
    """Remove the meetings a batch imported (all, or the rows numbered in ``rows``).

    The provider's meetings are not deleted: the import only brought them into courses,
    and undoing takes them out again. The batch stays, marked undone, as a record.
    """
    batch = await get(tool, credential, batch_id)
    if batch.applied_at is None:
        raise BatchError(f"Import batch {batch_id} was never applied: there is nothing to undo.")
    undoable = batch.undoable_rows
    if rows is not None:
        wanted = set(rows)
        by_number = {r.number: r for r in batch.rows}
        unknown = sorted(n for n in wanted if n not in by_number or not by_number[n].imported)
        if unknown:
            raise BatchError(
                f"Batch {batch_id} imported no meeting from row(s) {', '.join(map(str, unknown))}.",
                422,
            )
        undoable = [r for r in undoable if r.number in wanted]
    if not undoable:
        raise BatchError(f"Everything of import batch {batch_id} was undone already.")
    store = batches_of(tool)
    emptied = await store.courses_left_empty(undoable)
    plan = UndoPlan(
        batch,
        [
            UndoItem(r, REMOVE if r.meeting_row_id is not None else GONE, r.course_id in emptied)
            for r in undoable
        ],
    )
    if dry_run:
        return plan
    plan.removed = await store.undo(batch, undoable, actor)
    plan.done = True
    plan.batch = await get(tool, credential, batch_id)
    return plan


__all__ = [
    "APPLIED",
    "CHECKED",
    "CHECKING",
    "BatchError",
    "apply",
    "check",
    "get",
    "import_file",
    "max_rows",
    "read",
    "start_check",
    "undo",
    "wait_for_checks",
]
