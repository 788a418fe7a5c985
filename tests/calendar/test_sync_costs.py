"""What one sync costs the database, and that the savings keep the sync's guarantees.

A job reads its LMS token once and then remembers it (written through when a plugin
stores a new one, read again when it expired or when a plugin looks twice in one call),
and the rows of events changed in place or deleted are written together at the end of
the sync, while created and moved events are recorded as soon as the LMS has them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from calendar_world import World
from memory_lms import NAME, TOKEN, WorkerKilled, marker_of
from sqlalchemy import event, select
from sqlalchemy.ext.asyncio import AsyncEngine

from ltipro.calendar import store
from ltipro.calendar.runtime import course_lms, token_store
from ltipro.jobs.worker import DEFAULT_LEASE
from ltipro.lmsapi import LmsNotAuthorized, StoredToken
from ltipro.plugin_settings import set_plugin_settings
from ltipro.providers.base import Recurrence
from ltipro.storage.schema import courses
from ltipro.testing.harness import ToolHarness

CANVAS_HOST = "school.instructure.com"
HOST = "lti-teacher-1"


@contextmanager
def statements(engine: AsyncEngine) -> Iterator[list[str]]:
    """The SQL the engine runs inside the block, one line each."""
    seen: list[str] = []

    def record(conn: Any, cursor: Any, sql: str, *args: Any) -> None:
        seen.append(" ".join(sql.split()))

    event.listen(engine.sync_engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", record)


def token_reads(seen: list[str]) -> int:
    return sum(1 for sql in seen if sql.startswith("SELECT") and "FROM lms_tokens" in sql)


def one_event_per_occurrence(world: World) -> dict[str, int]:
    counts: dict[str, int] = {}
    for e in world.events():
        found = marker_of(e["description"])
        assert found is not None
        counts[found] = counts.get(found, 0) + 1
    return counts


async def list_events(lms: Any) -> Any:
    now = datetime.now(UTC)
    return await lms.call("calendar_list_events", start=now, end=now + timedelta(days=60))


async def test_a_jobs_calls_read_the_token_once_and_use_the_one_a_plugin_stores(
    world: World,
) -> None:
    lms = await course_lms(world.tool, world.course_id)
    assert lms is not None
    with statements(world.engine) as seen:
        for _ in range(3):
            await list_events(lms)
    assert token_reads(seen) == 1  # the first call reads it, the next two remember it

    # A plugin that stores a new token (a refresh) writes it through: the database has
    # it, and the next call uses it without reading it back.
    await lms.api.tokens.put("app", StoredToken("refused-by-the-lms"))
    with statements(world.engine) as seen, pytest.raises(LmsNotAuthorized):
        await list_events(lms)
    assert token_reads(seen) == 0
    other_job = token_store(world.tool, world.credential_id, world.harness.registration.id, NAME)
    stored = await other_job.get("app")
    assert stored is not None and stored.access_token == "refused-by-the-lms"
    await lms.api.tokens.put("app", StoredToken(TOKEN))
    assert await list_events(lms) == []

    # An expired token is never served from memory: the refresh starts from the database.
    expired = StoredToken(TOKEN, "refresh", datetime.now(UTC) - timedelta(minutes=5))
    await lms.api.tokens.put("app", expired)
    with statements(world.engine) as seen:
        await list_events(lms)
        await list_events(lms)
    assert token_reads(seen) == 2
    await lms.api.tokens.put("app", StoredToken(TOKEN))

    # Deleted through the store: the next call finds no token, as the database has none.
    await lms.api.tokens.delete("app")
    with pytest.raises(LmsNotAuthorized, match="no API token"):
        await list_events(lms)
    await other_job.put("app", StoredToken(TOKEN))

    # Outside an LMS call every read goes to the database, and another job (another
    # course_lms) starts with nothing remembered.
    with statements(world.engine) as seen:
        assert await lms.api.tokens.get("app") is not None
        assert await lms.api.tokens.get("app") is not None
        fresh = await course_lms(world.tool, world.course_id)
        assert fresh is not None
        await list_events(fresh)
    assert token_reads(seen) == 3


async def test_a_create_searches_and_posts_with_the_remembered_token(world: World) -> None:
    meeting = await world.meeting()
    lms = await course_lms(world.tool, world.course_id)
    assert lms is not None
    await list_events(lms)
    from ltipro.calendar.events import desired_events

    [wanted] = desired_events(meeting, datetime.now(UTC)).values()
    with statements(world.engine) as seen:
        # Two requests (the marker search, then the POST), the second after the LMS
        # answered the first: both use the remembered token.
        event_id = await lms.call("calendar_create_event", event=wanted)
    assert token_reads(seen) == 0
    assert [e["id"] for e in world.events()] == [event_id]


@pytest.fixture
async def canvas(database_url: str, tmp_path: Path) -> AsyncIterator[tuple[ToolHarness, Any]]:
    from ltipro_canvas.testing import CLIENT_ID, CLIENT_SECRET, CanvasDouble

    async with ToolHarness(
        database_url=database_url,
        instance=tmp_path / "instance",
        plugins=["canvas"],
        lms="canvas",
    ) as harness:
        double = CanvasDouble(host=CANVAS_HOST)
        double.add_course("3", teachers=["7"])
        harness.transport.add(CANVAS_HOST, double)
        await set_plugin_settings(
            harness.tool,
            harness.credential,
            "canvas",
            {"api_client_id": CLIENT_ID, "api_client_secret": CLIENT_SECRET},
        )
        await harness.tool.repo.record_course(
            harness.credential.id,
            lms="canvas",
            domain=CANVAS_HOST,
            context_id="ctx-bio",
            lms_course_id="3",
            title="Biology 101",
            label="BIO101",
            history=[],
            platform_id=harness.registration.id,
        )
        yield harness, double


async def test_a_token_refused_midjob_is_looked_up_again_not_refreshed_from_memory(
    canvas: tuple[ToolHarness, Any],
) -> None:
    harness, double = canvas
    grants = token_store(harness.tool, harness.credential.id, harness.registration.id, "canvas")
    access, refresh = double.issue_token("7")
    await grants.put(HOST, StoredToken(access, refresh, datetime.now(UTC) + timedelta(hours=1)))
    async with harness.tool.repo.engine.connect() as conn:
        course_id = (await conn.execute(select(courses.c.id))).scalar_one()
    lms = await course_lms(harness.tool, course_id, user_id=HOST)
    assert lms is not None
    await list_events(lms)  # the job's first call: the grant is read and remembered

    # Meanwhile the teacher removed the tool in Canvas and connected it again: the
    # remembered grant is revoked, refresh token and all, and the new one is stored.
    double.revoke("7")
    access, refresh = double.issue_token("7")
    await grants.put(HOST, StoredToken(access, refresh, datetime.now(UTC) + timedelta(hours=1)))
    sent = len(double.requests)

    # The next call goes out with the remembered grant and is refused (401); the
    # plugin's second look reads the database and finds the new grant, so it neither
    # refreshes with the revoked refresh token nor throws the new grant away.
    assert await list_events(lms) == []
    paths = [r.path for r in double.requests[sent:]]
    assert not any("oauth2/token" in p for p in paths)
    stored = await grants.get(HOST)
    assert stored is not None and stored.access_token == access


async def test_events_changed_in_place_are_recorded_in_one_statement(world: World) -> None:
    weekly = Recurrence(type="weekly", repeat_interval=1, end_times=4)
    meeting = await world.meeting("Seminar", recurrence=weekly)
    with statements(world.engine) as seen:
        await world.run_jobs()
    # Created events: each recorded as soon as the LMS has it.
    assert sum(1 for sql in seen if sql.startswith("INSERT INTO calendar_events")) == 4

    await world.change(meeting, topic="Seminar (renamed)")
    with statements(world.engine) as seen:
        assert [o.result for o in await world.run_jobs()] == ["done"]
    assert sum(1 for sql in seen if sql.startswith("INSERT INTO calendar_events")) == 1
    assert {e["title"] for e in world.events()} == {"Seminar (renamed)"}
    rows = await store.rows_for_meeting(world.engine, meeting.uid)
    assert len(rows) == 4 and len({r.fingerprint for r in rows.values()}) == 4

    await world.delete(meeting)
    with statements(world.engine) as seen:
        assert [o.result for o in await world.run_jobs()] == ["done"]
    assert sum(1 for sql in seen if sql.startswith("DELETE FROM calendar_events")) == 1
    assert world.events() == []
    assert await store.rows_for_meeting(world.engine, meeting.uid) == {}


async def test_an_lms_failure_midway_keeps_the_rows_of_what_the_lms_did(world: World) -> None:
    weekly = Recurrence(type="weekly", repeat_interval=1, end_times=4)
    meeting = await world.meeting("Seminar", recurrence=weekly)
    await world.run_jobs()
    before = await store.rows_for_meeting(world.engine, meeting.uid)
    meeting = await world.change(meeting, topic="Seminar (renamed)")
    world.service.faults.only = "PUT"
    world.service.faults.queue = ["", "", "503"]
    [outcome] = await world.run_jobs()
    assert outcome.result == "retry"
    after = await store.rows_for_meeting(world.engine, meeting.uid)
    changed = [m for m in after if after[m].fingerprint != before[m].fingerprint]
    assert len(changed) == 2  # the two updates the LMS made are recorded

    puts = sum(1 for method, _ in world.service.requests if method == "PUT")
    await world.settle()
    # The retry sends only the two occurrences not yet changed.
    assert sum(1 for method, _ in world.service.requests if method == "PUT") == puts + 2
    assert {e["title"] for e in world.events()} == {"Seminar (renamed)"}
    assert set(one_event_per_occurrence(world).values()) == {1}


async def test_a_worker_killed_before_the_rows_are_written_leaves_a_rerun_right(
    world: World,
) -> None:
    weekly = Recurrence(type="weekly", repeat_interval=1, end_times=3)
    renamed = await world.meeting("Renamed", recurrence=weekly)
    removed = await world.meeting("Removed", recurrence=weekly)
    await world.run_jobs()

    # Killed after the LMS changed every occurrence in place, before the rows were
    # written: the rows keep the old fingerprints, and the rerun sends the updates again.
    renamed = await world.change(renamed, topic="Renamed (new)")
    world.service.faults.only = "PUT"
    world.service.faults.queue = ["", "", "kill"]
    with pytest.raises(WorkerKilled):
        await world.worker("doomed").run_one()
    world.clock.advance(DEFAULT_LEASE.total_seconds() + 1)
    assert [o.result for o in await world.run_jobs(world.worker("replacement"))] == ["done"]

    # Killed after the LMS deleted every occurrence, before the rows went: the rerun
    # deletes again (gone already) and drops the rows.
    await world.delete(removed)
    world.service.faults.only = "DELETE"
    world.service.faults.queue = ["", "", "kill"]
    with pytest.raises(WorkerKilled):
        await world.worker("doomed-2").run_one()
    assert len(await store.rows_for_meeting(world.engine, removed.uid)) == 3
    world.clock.advance(DEFAULT_LEASE.total_seconds() + 1)
    assert [o.result for o in await world.run_jobs(world.worker("replacement"))] == ["done"]

    assert await store.rows_for_meeting(world.engine, removed.uid) == {}
    assert {e["title"] for e in world.events()} == {"Renamed (new)"}
    counts = one_event_per_occurrence(world)
    assert len(counts) == 3 and set(counts.values()) == {1}
    rows = await store.rows_for_meeting(world.engine, renamed.uid)
    assert {r.event_id for r in rows.values()} == {e["id"] for e in world.events()}
