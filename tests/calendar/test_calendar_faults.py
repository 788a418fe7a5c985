"""The calendar sync when the LMS and the workers fail: 5xx, time-outs, throttling, a lost
answer, a worker killed mid-job, and workers racing for the same jobs. Afterwards every
meeting has exactly one event per occurrence and no job is lost."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from calendar_world import LMS_COURSE, World
from memory_lms import NAME, WorkerKilled, marker_of
from sqlalchemy.ext.asyncio import AsyncEngine

from ltipro.calendar import store
from ltipro.calendar.events import marker
from ltipro.calendar.runtime import token_store
from ltipro.calendar.store import MeetingLock, meeting_locked
from ltipro.jobs.worker import DEFAULT_LEASE
from ltipro.providers.base import Recurrence
from ltipro.storage.database import create_engine


def one_event_per_occurrence(world: World) -> dict[str, int]:
    counts: dict[str, int] = {}
    for event in world.events():
        key = marker_of(event["description"]) or "?"
        counts[key] = counts.get(key, 0) + 1
    return counts


async def test_lms_5xx_is_retried_with_backoff_until_it_answers(world: World) -> None:
    meeting = await world.meeting()
    world.service.faults.queue = ["503", "503"]
    first = await world.run_jobs()
    assert [o.result for o in first] == ["retry"]
    assert first[0].error is not None and "503" in first[0].error
    assert first[0].delay is not None and 0 <= first[0].delay <= 10  # backoff, attempt 1
    outcomes = await world.settle()
    assert [o.result for o in outcomes] == ["retry", "done"]
    assert one_event_per_occurrence(world) == {marker(meeting.uid, meeting.start_time): 1}


async def test_a_timeout_is_retried_and_leaves_one_event(world: World) -> None:
    meeting = await world.meeting()
    world.service.faults.queue = ["timeout"]
    [first] = await world.run_jobs()
    assert first.result == "retry" and "timed out" in (first.error or "")
    await world.settle()
    assert one_event_per_occurrence(world) == {marker(meeting.uid, meeting.start_time): 1}


async def test_throttling_waits_at_least_as_long_as_the_lms_asked(world: World) -> None:
    await world.meeting()
    world.service.faults.queue = ["429"]
    world.service.faults.retry_after = 37
    [first] = await world.run_jobs()
    # The LMS's wait, plus jitter of up to half of it so throttled jobs spread out.
    assert first.result == "retry" and first.delay is not None and 37 <= first.delay <= 55.5
    assert "throttled" in (first.error or "") and "retry after 37 s" in (first.error or "")
    world.clock.advance(36)
    assert await world.run_jobs() == []  # not due before the LMS's wait is over
    world.clock.advance(first.delay - 36 + 1)
    assert [o.result for o in await world.run_jobs()] == ["done"]
    assert len(world.events()) == 1


async def test_an_answer_lost_after_the_lms_made_the_event_leaves_no_duplicate(
    world: World,
) -> None:
    daily = Recurrence(type="daily", repeat_interval=1, end_times=3)
    meeting = await world.meeting(recurrence=daily)
    world.service.faults.only = "POST"
    # The first occurrence's create goes through; the second's is done but its answer lost.
    world.service.faults.queue = ["", "lost"]
    await world.settle()
    counts = one_event_per_occurrence(world)
    assert len(counts) == 3 and set(counts.values()) == {1}
    assert all(k.startswith(f"ltipro:{meeting.uid}:") for k in counts)


async def test_no_authorisation_is_a_dead_letter_with_the_reason(world: World) -> None:
    await token_store(world.tool, world.credential_id, world.harness.registration.id, NAME).delete(
        "app"
    )
    await world.meeting()
    [outcome] = await world.run_jobs()
    assert outcome.result == "dead"
    assert "no API token" in (outcome.error or "")
    [dead] = await world.jobs("dead")
    assert dead.attempts == 1


async def test_a_refused_request_is_a_dead_letter(world: World) -> None:
    await world.meeting(topic=" ")  # the LMS refuses an event without a title
    [outcome] = await world.run_jobs()
    assert outcome.result == "dead" and "400" in (outcome.error or "")


async def test_a_worker_killed_mid_job_is_replaced_once_its_lease_runs_out(world: World) -> None:
    daily = Recurrence(type="daily", repeat_interval=1, end_times=4)
    meeting = await world.meeting(recurrence=daily)
    world.service.faults.only = "POST"
    world.service.faults.queue = ["", "kill"]  # dies right after the LMS made the 2nd event
    with pytest.raises(WorkerKilled):
        await world.worker("doomed").run_one()
    assert len(world.events()) == 2
    [job] = await world.jobs("running")
    # SIGKILL runs no clean-up: the meeting's lock stays held by the job, as it would.
    assert await MeetingLock(world.engine, meeting.uid, f"job:{job.id}").acquire()

    replacement = world.worker("replacement")
    assert await replacement.drain() == []  # the dead worker's lease still holds the job
    world.clock.advance(DEFAULT_LEASE.total_seconds() + 1)
    [outcome] = await replacement.drain()
    assert outcome.result == "done" and outcome.job.attempts == 2
    counts = one_event_per_occurrence(world)
    assert len(counts) == 4 and set(counts.values()) == {1}
    assert await world.jobs("queued") == [] and await world.jobs("running") == []


async def test_a_worker_killed_while_moving_an_event_leaves_it_under_its_new_marker(
    world: World,
) -> None:
    meeting = await world.meeting()
    await world.run_jobs()
    [event] = world.events()
    later = meeting.start_time + timedelta(hours=3)
    meeting = await world.change(meeting, start_time=later)
    world.service.faults.only = "PUT"
    world.service.faults.queue = ["kill"]  # the LMS moved the event; the tool never knew
    with pytest.raises(WorkerKilled):
        await world.worker("doomed").run_one()
    world.clock.advance(DEFAULT_LEASE.total_seconds() + 1)
    [outcome] = await world.run_jobs(world.worker("replacement"))
    assert outcome.result == "done"
    [moved] = world.events()
    assert moved["id"] == event["id"]
    assert marker_of(moved["description"]) == marker(meeting.uid, later)
    rows = await store.rows_for_meeting(world.engine, meeting.uid)
    assert list(rows) == [marker(meeting.uid, later)]


async def test_a_second_sync_of_a_busy_meeting_waits_its_turn(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store, "LOCK_WAIT", 0.0)
    meeting = await world.meeting()
    async with meeting_locked(world.engine, meeting.uid, "reconcile:x"):
        [outcome] = await world.run_jobs()
    assert outcome.result == "retry" and "another calendar sync" in (outcome.error or "")
    assert outcome.delay is not None and 5 <= outcome.delay <= 10
    assert world.events() == []
    await world.settle()
    assert len(world.events()) == 1


async def test_a_lock_left_by_a_dead_holder_runs_out(world: World) -> None:
    held = MeetingLock(world.engine, "m1", "job:1", clock=world.clock)
    assert await held.acquire()
    other = MeetingLock(world.engine, "m1", "job:2", clock=world.clock)
    assert not await other.acquire()
    assert await MeetingLock(world.engine, "m1", "job:1", clock=world.clock).acquire()
    world.clock.advance(store.LOCK_LEASE.total_seconds() + 1)
    assert await other.acquire()
    with pytest.raises(store.LockLost):
        await held.renew()


async def _race(world: World, engines: list[AsyncEngine], meetings: int) -> None:
    """Several workers, each with its own connection pool (as separate processes have),
    drain the queue together against a slow LMS until no job is left."""
    for round_ in range(40):
        workers = [world.worker(f"w{i}", engine=e) for i, e in enumerate(engines)]
        for w in workers:
            w.concurrency = 3
        await asyncio.gather(*(w.drain() for w in workers))
        if not await world.jobs("queued") and not await world.jobs("running"):
            return
        world.clock.advance(60 + round_)
    raise AssertionError(f"jobs still waiting after the race ({meetings} meetings)")


@pytest.mark.parametrize("workers", [2, 3])
async def test_workers_racing_for_the_same_jobs_leave_one_event_per_occurrence(
    world: World, database_url: str, workers: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store, "LOCK_WAIT", 0.05)
    monkeypatch.setattr(store, "LOCK_POLL", 0.01)
    world.service.faults.delay = 0.002  # a slow LMS widens every window
    created = []
    for n in range(6):
        daily = Recurrence(type="daily", repeat_interval=1, end_times=2) if n % 2 else None
        meeting = await world.meeting(f"Meeting {n}", recurrence=daily)
        # Edited twice straight away: three jobs of one meeting race each other.
        meeting = await world.change(meeting, topic=f"Meeting {n} (edited)")
        meeting = await world.change(meeting, agenda="final")
        created.append(meeting)
    assert len(await world.jobs("queued")) == 18
    engines = [create_engine(database_url) for _ in range(workers)]
    try:
        await _race(world, engines, len(created))
    finally:
        for engine in engines:
            await engine.dispose()
    jobs = await world.jobs()
    assert len(jobs) == 18 and {j.status for j in jobs} == {"done"}  # none lost, none dead
    counts = one_event_per_occurrence(world)
    expected = {
        marker(m.uid, start): 1
        for m in created
        for start in (
            [m.start_time, m.start_time + timedelta(days=1)] if m.recurrence else [m.start_time]
        )
    }
    assert counts == expected
    assert {e["title"] for e in world.events()} == {f"Meeting {n} (edited)" for n in range(6)}
    assert all("final" in e["description"] for e in world.events())
    assert set(world.service.events) == {LMS_COURSE}
