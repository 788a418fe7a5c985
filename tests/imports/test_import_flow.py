"""Importing a file end to end on the Zoom double: every row error in the dry run, an
all-or-nothing apply, the simulator launch that shows the imported meeting, the
instructors made alternative hosts, and undo."""

from __future__ import annotations

import re
from typing import Any

import pytest
from import_support import (
    DOMAIN,
    batch_count,
    confirm_jobs,
    course_count,
    csv_bytes,
    meeting_count,
    other_account_meeting,
    teacher,
    use_zoom,
    zoom_meetings,
)
from sqlalchemy import select

from ltipro.imports import service
from ltipro.imports.batches import APPLIED, CHECKED, UNDONE, BatchError, calendar_sync_function
from ltipro.imports.tables import import_rows
from ltipro.jobs.queue import list_jobs
from ltipro.storage.meetings_tables import meetings
from ltipro.storage.schema import courses
from ltipro.testing.harness import ToolHarness
from ltipro.testing.zoom_double import ZoomDouble


@pytest.fixture
async def zoom(harness: ToolHarness) -> Any:
    double = await use_zoom(harness)
    yield double
    assert double.violations == [], "requests outside Zoom's document"


async def _import(harness: ToolHarness, data: bytes, *, dry_run: bool) -> Any:
    credential = await harness.refresh_credential()
    return await service.import_file(
        harness.tool, credential, data, file_name="courses.csv", actor="cli", dry_run=dry_run
    )


async def _approve(harness: ToolHarness, *domains: str) -> None:
    credential = await harness.refresh_credential()
    await harness.tool.repo.set_options(
        credential, credential.options.updated({"approved_domains": list(domains)})
    )


async def test_the_dry_run_reports_every_row_error_with_its_row_number_and_writes_nothing(
    harness: ToolHarness, zoom: ZoomDouble
) -> None:
    await _approve(harness, DOMAIN, "lms.test")
    ok, taken, here, gone = zoom_meetings(zoom, 4)
    del zoom.meetings[gone]  # deleted at Zoom: "not found"
    foreign = other_account_meeting(zoom)
    # "taken" is in another course already; "here" in the course its row names.
    first = await _import(
        harness,
        csv_bytes([(str(taken), "other-course", DOMAIN, ""), (str(here), "course-1", DOMAIN, "")]),
        dry_run=False,
    )
    assert first.status == APPLIED
    meetings_before, courses_before = await meeting_count(harness), await course_count(harness)
    batch = await _import(
        harness,
        csv_bytes(
            [
                (str(ok), "course-1", DOMAIN, "101"),  # row 2: fine
                ("8.12346E+10", "course-1", DOMAIN, ""),  # 3: digits lost
                (str(ok), "course-2", DOMAIN, ""),  # 4: duplicate of row 2
                (str(gone), "course-1", DOMAIN, ""),  # 5: not at Zoom
                (str(foreign), "course-1", DOMAIN, ""),  # 6: another account's
                (str(taken), "course-1", DOMAIN, ""),  # 7: in another course
                (str(here), "course-1", DOMAIN, ""),  # 8: already here: skipped
                ("81234567890", "", DOMAIN, ""),  # 9: no context
                ("81234567891", "course-1", "", ""),  # 10: no domain
                ("81234567892", "course-1", "evil.example.com", ""),  # 11: not approved
                ("", "course-1", DOMAIN, ""),  # 12: no meeting id
            ]
        ),
        dry_run=True,
    )
    assert batch.status == CHECKED and not batch.can_apply
    by_row = {r.number: r for r in batch.rows}
    assert by_row[2].action == "add" and by_row[2].errors == []
    assert by_row[2].course_state == "imported"  # made by the first import, not launched
    assert "keeping only 6 of its 11 digits" in by_row[3].errors[0]
    assert "also in row 2" in by_row[4].errors[0]
    assert (
        f"Zoom has no meeting {gone}" in by_row[5].errors[0] or "no meeting" in by_row[5].errors[0]
    )
    assert "another Zoom account" in by_row[6].errors[0]
    assert "already in another course (context other-course" in by_row[7].errors[0]
    assert by_row[8].action == "skip" and not by_row[8].errors
    assert "Context ID is empty" in by_row[9].errors[0]
    assert "Domain is empty" in by_row[10].errors[0]
    assert "evil.example.com is not an approved domain" in by_row[11].errors[0]
    assert "Meeting ID is empty" in by_row[12].errors[0]
    assert batch.error_rows == 9 and batch.summary["add"] == 1 and batch.summary["skip"] == 1
    assert await meeting_count(harness) == meetings_before
    assert await course_count(harness) == courses_before
    with pytest.raises(BatchError, match="9 row"):
        await service.apply(harness.tool, harness.credential, batch.id, actor="cli")
    assert await meeting_count(harness) == meetings_before


async def test_an_applied_import_shows_the_meeting_when_the_course_launches_from_the_simulator(
    harness: ToolHarness, zoom: ZoomDouble
) -> None:
    (meeting_id,) = zoom_meetings(zoom, 1, topic="Imported seminar")
    zoom.add_user("teacher@example.edu", type=2)  # a licensed user: may be alternative host
    domain = "lms.test"  # the simulator's return URL host is the launch's domain
    batch = await _import(
        harness, csv_bytes([(str(meeting_id), "course-9", domain, "")]), dry_run=True
    )
    assert batch.rows[0].course_state == "new"
    assert await course_count(harness) == 0  # the dry run wrote no course
    batch = await service.apply(harness.tool, harness.credential, batch.id, actor="cli")
    assert batch.status == APPLIED and batch.applied_by == "cli"
    async with harness.tool.repo.engine.connect() as conn:
        course = (await conn.execute(select(courses))).one()
        stored = (await conn.execute(select(meetings))).one()
    assert (course.context_id, course.domain, course.lms) == ("course-9", domain, "")
    assert stored.source == "import" and stored.provider_meeting_id == str(meeting_id)
    assert stored.host_email == "scheduler@example.edu"
    assert len(await confirm_jobs(harness)) == 1
    if calendar_sync_function() is not None:  # the calendar sync is installed: queued too
        queued = await list_jobs(harness.tool.repo.engine, kind="calendar.sync")
        assert [j.payload["meeting"] for j in queued] == [stored.uid]

    claims = teacher(course="course-9", domain=domain)
    page = await harness.launch13(claims)
    assert page.status_code == 200, page.text[-800:]
    assert "Imported seminar" in page.text
    assert re.search(rf'data-meeting="{stored.uid}"', page.text)
    async with harness.tool.repo.engine.connect() as conn:
        launched = (await conn.execute(select(courses))).one()
    assert launched.id == course.id and launched.lms == "generic"  # the same row, completed
    # Auto populate is off, yet the imported meeting gets the course's instructor.
    settings = zoom.meetings[meeting_id].settings
    assert settings["alternative_hosts"] == "teacher@example.edu"


async def test_a_failure_in_the_middle_of_applying_leaves_nothing_written(
    harness: ToolHarness, zoom: ZoomDouble
) -> None:
    ids = zoom_meetings(zoom, 5)
    rows = [(str(m), f"course-{i}", DOMAIN, "") for i, m in enumerate(ids)]
    batch = await _import(harness, csv_bytes(rows), dry_run=True)
    store = service.batches_of(harness.tool)
    written: list[int] = []

    async def fail_on_fourth(number: int) -> None:
        written.append(number)
        if len(written) == 4:
            raise RuntimeError("the database went away")

    store.row_hook = fail_on_fourth
    store.write_chunk = 2  # rows 2 and 3 are written before row 5 fails
    with pytest.raises(RuntimeError):
        await service.apply(harness.tool, harness.credential, batch.id, actor="cli")
    store.row_hook = None
    assert written == [2, 3, 4, 5]
    assert await meeting_count(harness) == 0  # what was written is rolled back with it
    assert await course_count(harness) == 0
    assert await confirm_jobs(harness) == []
    after = await service.get(harness.tool, harness.credential, batch.id)
    assert after.status == CHECKED and after.applied_at is None
    assert "Nothing was imported" in (after.message or "")
    # The batch can be applied once the trouble is gone.
    done = await service.apply(harness.tool, harness.credential, batch.id, actor="cli")
    assert done.status == APPLIED and await meeting_count(harness) == 5


async def test_applying_checks_again_and_imports_nothing_when_zoom_changed_since_the_preview(
    harness: ToolHarness, zoom: ZoomDouble
) -> None:
    first, second = zoom_meetings(zoom, 2)
    batch = await _import(
        harness,
        csv_bytes([(str(first), "c1", DOMAIN, ""), (str(second), "c2", DOMAIN, "")]),
        dry_run=True,
    )
    assert batch.can_apply
    del zoom.meetings[second]
    after = await service.apply(harness.tool, harness.credential, batch.id, actor="cli")
    assert after.status == CHECKED and after.error_rows == 1
    assert "changed since the preview" in (after.message or "")
    assert await meeting_count(harness) == 0


async def test_undo_previews_then_removes_a_whole_batch_and_keeps_it_as_a_record(
    harness: ToolHarness, zoom: ZoomDouble
) -> None:
    ids = zoom_meetings(zoom, 3)
    harness_rows = [(str(ids[0]), "c1", DOMAIN, ""), (str(ids[1]), "c1", DOMAIN, "")]
    harness_rows.append((str(ids[2]), "c2", DOMAIN, ""))
    batch = await _import(harness, csv_bytes(harness_rows), dry_run=False)
    assert await meeting_count(harness) == 3 and await course_count(harness) == 2
    preview = await service.undo(
        harness.tool, harness.credential, batch.id, actor="cli", dry_run=True
    )
    assert [i.row.number for i in preview.items] == [2, 3, 4]
    assert preview.meetings == 3 and preview.courses == 2
    assert await meeting_count(harness) == 3  # the preview changed nothing
    done = await service.undo(harness.tool, harness.credential, batch.id, actor="admin@x.edu")
    assert done.removed == 3
    assert await meeting_count(harness) == 0 and await course_count(harness) == 0
    kept = await service.get(harness.tool, harness.credential, batch.id)
    assert kept.status == UNDONE and kept.undone_by == "admin@x.edu"
    assert all(r.undone_at is not None for r in kept.rows)
    assert set(zoom.meetings) >= set(ids)  # Zoom's meetings are left alone
    with pytest.raises(BatchError, match="undone already"):
        await service.undo(harness.tool, harness.credential, batch.id, actor="cli")
    # The meetings can be imported again after an undo.
    again = await _import(harness, csv_bytes(harness_rows), dry_run=False)
    assert again.status == APPLIED and await meeting_count(harness) == 3


async def test_undo_of_chosen_rows_keeps_the_others_and_a_launched_course(
    harness: ToolHarness, zoom: ZoomDouble
) -> None:
    ids = zoom_meetings(zoom, 3)
    rows = [(str(m), "course-1", "lms.test", "") for m in ids]
    batch = await _import(harness, csv_bytes(rows), dry_run=False)
    page = await harness.launch13(teacher(course="course-1", domain="lms.test"))
    assert page.status_code == 200
    plan = await service.undo(harness.tool, harness.credential, batch.id, actor="cli", rows=[2, 4])
    assert plan.removed == 2 and plan.courses == 0
    assert await meeting_count(harness) == 1 and await course_count(harness) == 1
    kept = await service.get(harness.tool, harness.credential, batch.id)
    assert kept.status == APPLIED  # partly undone
    assert [r.number for r in kept.undoable_rows] == [3]
    with pytest.raises(BatchError, match=r"row\(s\) 9"):
        await service.undo(harness.tool, harness.credential, batch.id, actor="cli", rows=[9])
    async with harness.tool.repo.engine.connect() as conn:
        undone = (
            await conn.execute(
                select(import_rows.c.row_number).where(import_rows.c.undone_at.is_not(None))
            )
        ).all()
    assert sorted(r[0] for r in undone) == [2, 4]
    assert await batch_count(harness) == 1


async def test_a_meeting_added_elsewhere_while_applying_fails_the_whole_file_cleanly(
    harness: ToolHarness, zoom: ZoomDouble
) -> None:
    first, second = zoom_meetings(zoom, 2)
    batch = await _import(
        harness,
        csv_bytes([(str(first), "c1", DOMAIN, ""), (str(second), "c2", DOMAIN, "")]),
        dry_run=True,
    )
    store = service.batches_of(harness.tool)

    async def someone_imports_the_second_meeting(number: int) -> None:
        if number != 2:
            return
        store.row_hook = None
        other = await _import(
            harness, csv_bytes([(str(second), "elsewhere", DOMAIN, "")]), dry_run=False
        )
        assert other.status == APPLIED

    store.row_hook = someone_imports_the_second_meeting
    with pytest.raises(BatchError, match="while it was being applied"):
        await service.apply(harness.tool, harness.credential, batch.id, actor="cli")
    assert await meeting_count(harness) == 1  # only the other import's meeting
    after = await service.get(harness.tool, harness.credential, batch.id)
    assert after.status == CHECKED and "Nothing was imported" in (after.message or "")


async def test_a_check_whose_process_stopped_says_so_instead_of_waiting_forever(
    harness: ToolHarness, zoom: ZoomDouble
) -> None:
    from datetime import UTC, datetime, timedelta

    from sqlalchemy import update

    from ltipro.imports.tables import import_batches

    store = service.batches_of(harness.tool)
    batch_id = await store.create(harness.credential.id, "big.csv", "cli", 1000, None)
    running = await service.get(harness.tool, harness.credential, batch_id)
    assert running.status == "checking" and not running.progress()["done"]
    async with harness.tool.repo.engine.begin() as conn:
        await conn.execute(
            update(import_batches)
            .where(import_batches.c.id == batch_id)
            .values(updated_at=datetime.now(UTC) - timedelta(minutes=20))
        )
    stopped = await service.get(harness.tool, harness.credential, batch_id)
    assert stopped.status == "interrupted" and stopped.progress()["done"]
    assert "upload the file again" in (stopped.message or "")
