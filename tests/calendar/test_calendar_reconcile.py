"""``ltipro calendar reconcile`` repairs each kind of drift between the meetings and the
LMS calendar — missing, stale, duplicate and orphaned events — and touches nothing else."""

from __future__ import annotations

from datetime import timedelta

import pytest
from calendar_world import LMS_COURSE, World, next_week
from memory_lms import marker_of

from ltipro.calendar.cli import run_reconcile
from ltipro.calendar.events import marker
from ltipro.calendar.reconcile import reconcile
from ltipro.calendar.store import meeting_locked, rows_for_course
from ltipro.cli import build_parser
from ltipro.providers.base import Recurrence


def by_marker(world: World) -> dict[str, list[dict[str, object]]]:
    out: dict[str, list[dict[str, object]]] = {}
    for event in world.events():
        out.setdefault(marker_of(str(event["description"])) or "-", []).append(event)
    return out


async def drifted(world: World) -> dict[str, object]:
    """Two synced meetings, then the calendar changed behind the tool's back."""
    daily = Recurrence(type="daily", repeat_interval=1, end_times=2)
    lecture = await world.meeting("Lecture", recurrence=daily)
    lab = await world.meeting("Lab", start=next_week(14))
    await world.run_jobs()
    assert len(world.events()) == 3
    calendar = world.service.events[LMS_COURSE]
    first, second = (marker(lecture.uid, lecture.start_time + timedelta(days=d)) for d in (0, 1))
    lab_marker = marker(lab.uid, lab.start_time)
    events = by_marker(world)
    # missing: someone deleted the lecture's second occurrence in the LMS
    del calendar[str(events[second][0]["id"])]
    # stale: someone retitled the lab
    calendar[str(events[lab_marker][0]["id"])]["title"] = "Lab (cancelled?)"
    # duplicate: a second event with the lab's marker
    lab_event = events[lab_marker][0]
    duplicate = world.service.add_raw(
        LMS_COURSE, **{k: v for k, v in lab_event.items() if k != "id"}
    )
    # orphaned: the marker of a meeting that no longer exists
    orphan = world.service.add_raw(
        LMS_COURSE,
        title="Old meeting",
        start=str(lecture.start_time.isoformat()),
        end=str((lecture.start_time + timedelta(hours=1)).isoformat()),
        description=f"Gone\n[{marker('deletedMeeting1', lecture.start_time)}]",
    )
    # not the tool's: an instructor's own event, which reconcile never touches
    own = world.service.add_raw(
        LMS_COURSE,
        title="Exam",
        start=str(lecture.start_time.isoformat()),
        end=str((lecture.start_time + timedelta(hours=2)).isoformat()),
        description="Bring a pencil",
    )
    return {
        "first": first,
        "second": second,
        "lab": lab_marker,
        "lab_event": lab_event["id"],
        "duplicate": duplicate,
        "orphan": orphan,
        "own": own,
    }


async def test_reconcile_repairs_missing_stale_duplicate_and_orphaned_events(
    world: World,
) -> None:
    drift = await drifted(world)
    [report] = await reconcile(world.tool, credential_id=world.credential_id)
    assert report.problems == [] and report.skipped is None
    assert report.counts() == {"missing": 1, "stale": 1, "duplicate": 1, "orphaned": 1}
    found = {(r.drift, r.marker) for r in report.repairs}
    assert ("missing", drift["second"]) in found and ("stale", drift["lab"]) in found
    assert ("duplicate", drift["lab"]) in found
    assert ("orphaned", "ltipro:deletedMeeting1:" + str(drift["first"]).split(":")[2]) in found

    events = by_marker(world)
    assert sorted(events) == sorted(["-", drift["first"], drift["second"], drift["lab"]])
    assert {k: len(v) for k, v in events.items()} == {
        "-": 1,
        drift["first"]: 1,
        drift["second"]: 1,
        drift["lab"]: 1,
    }
    [lab] = events[drift["lab"]]
    assert lab["title"] == "Lab" and lab["id"] == drift["lab_event"]  # the recorded one kept
    assert events["-"][0]["id"] == drift["own"]
    rows = await rows_for_course(world.engine, world.course_id)
    assert set(rows) == {drift["first"], drift["second"], drift["lab"]}
    assert rows[str(drift["second"])].event_id == events[drift["second"]][0]["id"]

    # In step now: a second run finds nothing.
    [again] = await reconcile(world.tool, credential_id=world.credential_id)
    assert again.repairs == [] and again.problems == []


async def test_a_dry_run_reports_the_drift_and_changes_nothing(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    await drifted(world)
    before = sorted((e["id"], e["title"]) for e in world.events())
    rows_before = await rows_for_course(world.engine, world.course_id)
    world.service.requests.clear()
    assert await run_reconcile(world.tool, "test", dry_run=True) == 0
    out = capsys.readouterr().out
    assert "course bio-101 (memlms, lms.test): 1 missing, 1 stale, 1 duplicate, 1 orphaned" in out
    assert "(dry run: nothing changed)" in out
    assert "would create event ltipro:" in out and "would delete orphaned event" in out
    assert "1 course(s), 4 event(s) to repair, 0 problem(s)." in out
    assert sorted((e["id"], e["title"]) for e in world.events()) == before
    assert await rows_for_course(world.engine, world.course_id) == rows_before
    assert {m for m, _ in world.service.requests} == {"GET"}

    assert await run_reconcile(world.tool, "test", dry_run=False) == 0
    out = capsys.readouterr().out
    assert "1 missing, 1 stale, 1 duplicate, 1 orphaned repaired" in out
    assert "deleted duplicate event" in out and "created event ltipro:" in out
    assert await run_reconcile(world.tool, None, dry_run=False) == 0
    assert "in step, nothing to repair" in capsys.readouterr().out


async def test_reconcile_leaves_a_meeting_that_a_sync_holds_and_says_so(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    meeting = await world.meeting()
    await world.run_jobs()
    world.service.events[LMS_COURSE].clear()
    async with meeting_locked(world.engine, meeting.uid, "job:99"):
        assert await run_reconcile(world.tool, "test", dry_run=False) == 1
    out = capsys.readouterr().out
    assert f"problem: meeting {meeting.uid} was left alone" in out
    assert world.events() == []
    assert await run_reconcile(world.tool, "test", dry_run=False) == 0
    assert len(world.events()) == 1


async def test_reconcile_reports_a_course_it_cannot_reach(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    await world.set_option(calendar_sync=False)
    assert await run_reconcile(world.tool, "test", dry_run=True) == 0
    assert "skipped, calendar sync is off" in capsys.readouterr().out
    await world.set_option(calendar_sync=True)
    world.service.faults.queue = ["503"]
    assert await run_reconcile(world.tool, "test", dry_run=True) == 1
    assert "problem: listing the calendar failed" in capsys.readouterr().out


def test_the_command_takes_a_credential_and_a_dry_run() -> None:
    args = build_parser().parse_args(["calendar", "reconcile", "--credential", "x", "--dry-run"])
    assert args.credential == "x" and args.dry_run is True
    args = build_parser().parse_args(["calendar", "reconcile"])
    assert args.credential is None and args.dry_run is False
