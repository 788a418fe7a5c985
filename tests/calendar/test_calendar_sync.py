"""The calendar.sync job: meetings scheduled, changed and deleted follow in the LMS calendar,
one event per occurrence, in the meeting's time zone, and never twice."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from calendar_world import LMS_COURSE, World
from memory_lms import NAME, marker_of
from sqlalchemy import select

from ltipro.calendar.events import marker, parse_marker
from ltipro.calendar.runtime import course_lms, token_store
from ltipro.calendar.store import rows_for_meeting
from ltipro.calendar.sync import (
    MeetingSync,
    enqueue_calendar_sync,
    enqueue_calendar_syncs,
    sync_meeting,
)
from ltipro.crypto import ENCRYPTED_PREFIX
from ltipro.extension import Audience
from ltipro.lmsapi import StoredToken
from ltipro.plugin_settings import set_plugin_settings
from ltipro.providers.base import Recurrence
from ltipro.storage.calendar_tables import calendar_events, lms_tokens
from ltipro.storage.meetings_tables import meetings
from ltipro.storage.schema import courses


def test_marker_names_the_meeting_and_the_occurrence_start_in_utc() -> None:
    start = datetime(2027, 3, 14, 9, 30, tzinfo=ZoneInfo("America/Chicago"))
    text = marker("AbC-d_9", start)
    assert text == "ltipro:AbC-d_9:20270314T1430Z"
    parsed = parse_marker(text)
    assert parsed is not None and parsed.meeting_uid == "AbC-d_9"
    assert parsed.start == start
    assert parse_marker("ltipro:x:2027") is None and parse_marker("Office hours") is None


async def test_meeting_scheduled_changed_and_deleted_follows_in_the_lms_calendar(
    world: World,
) -> None:
    meeting = await world.meeting("Office hours", agenda="Bring questions")
    assert [j.payload["meeting"] for j in await world.jobs("queued")] == [meeting.uid]
    assert world.events() == []  # nothing happens before a worker runs the job

    assert [o.result for o in await world.run_jobs()] == ["done"]
    [event] = world.events()
    assert event["title"] == "Office hours"
    assert datetime.fromisoformat(event["start"]) == meeting.start_time
    assert datetime.fromisoformat(event["end"]) == meeting.start_time + timedelta(minutes=45)
    assert event["join_url"] == meeting.join_url
    assert "Bring questions" in event["description"]
    assert marker_of(event["description"]) == marker(meeting.uid, meeting.start_time)

    later = meeting.start_time + timedelta(hours=2)
    meeting = await world.change(meeting, topic="Office hours (moved)", start_time=later)
    await world.run_jobs()
    [moved] = world.events()
    assert moved["title"] == "Office hours (moved)"
    assert datetime.fromisoformat(moved["start"]) == later
    assert marker_of(moved["description"]) == marker(meeting.uid, later)

    await world.delete(meeting)
    await world.run_jobs()
    assert world.events() == []
    assert await rows_for_meeting(world.engine, meeting.uid) == {}
    assert {j.status for j in await world.jobs()} == {"done"}


async def test_each_occurrence_of_a_recurring_meeting_is_its_own_event_in_local_time(
    world: World,
) -> None:
    # Weekly at 09:00 in Chicago across the end of daylight saving time (early November):
    # the local time stays 09:00, so the UTC time moves by an hour.
    year = datetime.now(UTC).year + 1
    start = datetime(year, 10, 20, 9, 0, tzinfo=ZoneInfo("America/Chicago"))
    weekly = Recurrence(type="weekly", repeat_interval=1, weekly_days=(), end_times=4)
    meeting = await world.meeting(
        "Seminar", start=start.astimezone(UTC), timezone="America/Chicago", recurrence=weekly
    )
    await world.run_jobs()
    events = world.events()
    assert len(events) == 4
    local = [
        datetime.fromisoformat(e["start"]).astimezone(ZoneInfo("America/Chicago")) for e in events
    ]
    assert [t.hour for t in local] == [9, 9, 9, 9]
    assert [t.date() for t in local] == [(start + timedelta(weeks=n)).date() for n in range(4)]
    utc_hours = {datetime.fromisoformat(e["start"]).hour for e in events}
    assert utc_hours == {14, 15}  # CDT, then CST
    assert all(e["timezone"] == "America/Chicago" for e in events)
    assert all("Every week, 4 times" in e["description"] for e in events)
    markers = [marker_of(e["description"]) for e in events]
    assert len(set(markers)) == 4
    assert all(m is not None and m.startswith(f"ltipro:{meeting.uid}:") for m in markers)


async def test_shortening_a_series_removes_the_dropped_occurrences_only(world: World) -> None:
    daily = Recurrence(type="daily", repeat_interval=1, end_times=5)
    meeting = await world.meeting("Daily stand-up", recurrence=daily)
    await world.run_jobs()
    before = {e["id"]: marker_of(e["description"]) for e in world.events()}
    assert len(before) == 5

    await world.change(meeting, recurrence=Recurrence(type="daily", repeat_interval=1, end_times=3))
    await world.run_jobs()
    after = {e["id"]: marker_of(e["description"]) for e in world.events()}
    assert len(after) == 3
    assert after.items() <= before.items()  # the first three kept their ids, nothing remade
    sent = [m for m, _ in world.service.requests if m != "GET"]
    # The series' text changed ("3 times"), so the kept events are updated in place.
    assert sorted(sent) == ["DELETE"] * 2 + ["POST"] * 5 + ["PUT"] * 3
    assert all("Every day, 3 times" in e["description"] for e in world.events())


async def test_an_unchanged_meeting_sends_nothing_again(world: World) -> None:
    meeting = await world.meeting()
    await world.run_jobs()
    world.service.requests.clear()
    # A change the calendar does not show (the alternative hosts) syncs, and finds nothing to do.
    await world.change(meeting, alternative_hosts=("ta@example.edu",))
    assert len(await world.jobs("queued")) == 1
    await world.run_jobs()
    assert world.service.requests == []
    assert len(world.events()) == 1


async def test_the_job_run_twice_leaves_one_event_per_occurrence(world: World) -> None:
    daily = Recurrence(type="daily", repeat_interval=1, end_times=3)
    meeting = await world.meeting(recurrence=daily)
    [job] = await world.jobs("queued")
    await world.run_jobs()
    # At-least-once: the same job again (its worker died before marking it done), and
    # once more with the tool's records lost, so only the markers can tell.
    for _ in range(2):
        await sync_meeting(
            world.tool, meeting.uid, world.credential_id, world.course_id, holder=f"job:{job.id}"
        )
    async with world.engine.begin() as conn:
        await conn.execute(calendar_events.delete())
    result = await sync_meeting(
        world.tool, meeting.uid, world.credential_id, world.course_id, holder=f"job:{job.id}"
    )
    assert len(result.created) == 3  # "created" as far as the tool knew: the LMS found them
    assert len(world.events()) == 3
    assert len(await rows_for_meeting(world.engine, meeting.uid)) == 3


async def test_an_event_deleted_in_the_lms_is_made_again_when_the_meeting_changes(
    world: World,
) -> None:
    meeting = await world.meeting()
    await world.run_jobs()
    [event] = world.events()
    world.service.events[LMS_COURSE].clear()  # someone deleted it in the LMS

    await world.change(meeting, topic="Renamed")
    await world.run_jobs()
    [again] = world.events()
    assert again["title"] == "Renamed" and again["id"] != event["id"]
    [row] = (await rows_for_meeting(world.engine, meeting.uid)).values()
    assert row.event_id == again["id"]


async def test_calendar_sync_off_leaves_the_lms_calendar_alone(world: World) -> None:
    await world.set_option(calendar_sync=False)
    await world.meeting()
    outcomes = await world.run_jobs()
    assert [o.result for o in outcomes] == ["done"]  # a no-op is a success, not a dead letter
    assert world.events() == [] and world.service.requests == []

    await world.set_option(calendar_sync=True)
    meeting = await world.meeting("Second")
    await world.run_jobs()
    assert [e["title"] for e in world.events()] == ["Second"]
    assert meeting.uid in world.events()[0]["description"]


async def test_an_lms_without_calendar_hooks_is_a_no_op(world: World) -> None:
    await world.tool.repo.record_course(
        world.credential_id,
        lms="plainlms",
        domain="plain.test",
        context_id="chem-1",
        lms_course_id=None,
        title=None,
        label=None,
        history=[],
    )
    async with world.engine.connect() as conn:
        plain = (
            await conn.execute(select(courses.c.id).where(courses.c.context_id == "chem-1"))
        ).scalar_one()
    await world.meeting(course_id=plain)
    assert [o.result for o in await world.run_jobs()] == ["done"]
    assert world.service.requests == []


async def test_the_job_is_written_in_the_meetings_transaction(world: World) -> None:
    meeting = await world.meeting()
    with pytest.raises(RuntimeError):
        async with world.engine.begin() as conn:
            await conn.execute(
                meetings.update().where(meetings.c.id == meeting.id).values(topic="Never")
            )
            await enqueue_calendar_sync(conn, meeting.uid, world.credential_id, world.course_id)
            raise RuntimeError("the request failed after the change")
    assert len(await world.jobs()) == 1  # the rolled-back change left no job

    # One change enqueued twice (a double call) is one job; the next change is another.
    async with world.engine.begin() as conn:
        first = await enqueue_calendar_sync(conn, meeting, world.credential_id, world.course_id)
        again = await enqueue_calendar_sync(conn, meeting, world.credential_id, world.course_id)
    assert first.id == again.id
    changed = await world.change(meeting, topic="Changed")
    keys = {j.key for j in await world.jobs()}
    assert len(keys) == 2
    await world.delete(changed)
    deleted = [j for j in await world.jobs() if j.key.endswith(":deleted")]
    assert len(deleted) == 1 and deleted[0].payload["host"] == "teacher-1"


async def test_bulk_enqueue_makes_the_same_jobs_as_one_call_per_meeting(world: World) -> None:
    kept = await world.meeting("Kept")
    changed = await world.meeting("Changed")
    gone = await world.meeting("Gone")
    await world.run_jobs()
    changed = await world.change(changed, topic="Changed again")
    await world.delete(gone)
    before = {j.key: j for j in await world.jobs()}

    fresh = await world.meeting("Fresh")
    with pytest.raises(RuntimeError):
        async with world.engine.begin() as conn:
            await conn.execute(meetings.update().where(meetings.c.id == kept.id).values(topic="x"))
            await enqueue_calendar_syncs(
                conn, [MeetingSync("never", world.credential_id, world.course_id)]
            )
            raise RuntimeError("the change failed")
    count = len(await world.jobs())

    async with world.engine.begin() as conn:
        jobs = await enqueue_calendar_syncs(
            conn,
            [
                MeetingSync(kept, world.credential_id, world.course_id),
                MeetingSync(changed.uid, world.credential_id, world.course_id),
                MeetingSync(gone, world.credential_id, world.course_id),
                MeetingSync(fresh.uid, world.credential_id, world.course_id),
                MeetingSync(kept.uid, world.credential_id, world.course_id),  # twice
            ],
        )
        single = await enqueue_calendar_sync(conn, gone, world.credential_id, world.course_id)
    # Every meeting's version was queued already by its own change: nothing new.
    assert len(await world.jobs()) == count
    assert jobs[0].key.startswith(f"calendar.sync:{kept.uid}:")
    assert jobs[1].key.startswith(f"calendar.sync:{changed.uid}:")
    assert jobs[2].key == f"calendar.sync:{gone.uid}:deleted"
    assert jobs[3].key.startswith(f"calendar.sync:{fresh.uid}:")
    assert jobs[0].id == jobs[4].id and jobs[2].id == single.id
    assert {j.key for j in jobs[:3]} <= set(before)
    assert jobs[3].payload == {
        "meeting": fresh.uid,
        "credential": world.credential_id,
        "course": world.course_id,
    }
    # A meeting gone without a job yet gets one, with its host when the caller knows it.
    async with world.engine.begin() as conn:
        [late] = await enqueue_calendar_syncs(
            conn, [MeetingSync("removed-elsewhere", world.credential_id, world.course_id)]
        )
    assert late.key == "calendar.sync:removed-elsewhere:deleted" and "host" not in late.payload
    assert [o.result for o in await world.run_jobs()] == ["done"] * 4
    assert sorted(e["title"] for e in world.events()) == ["Changed again", "Fresh", "Kept"]


async def test_meetings_scheduled_edited_and_deleted_in_the_tool_reach_the_calendar(
    world: World,
) -> None:
    from test_meetings import CLAIM, launch, person, schedule, tomorrow

    claims = person("teacher", "Instructor", course="chem-101")
    claims[CLAIM + "custom"] = {"course_id": "7777"}
    teacher = await launch(world.harness, claims)
    uid = await schedule(teacher, "Lab briefing")
    [job] = await world.jobs("queued")
    assert job.payload["meeting"] == uid and job.credential_id == world.credential_id
    await world.run_jobs()
    [event] = world.service.course_events("7777")
    assert event["title"] == "Lab briefing" and event["timezone"] == "America/Chicago"
    local = datetime.fromisoformat(event["start"]).astimezone(ZoneInfo("America/Chicago"))
    assert (local.date().isoformat(), local.strftime("%H:%M")) == (
        tomorrow()["date"],
        "10:00",
    )

    saved = await teacher.post(
        f"/meetings/{uid}/update", topic="Lab briefing (moved)", duration="30", **tomorrow(14)
    )
    assert saved.status_code == 200
    await world.run_jobs()
    [moved] = world.service.course_events("7777")
    assert moved["id"] == event["id"] and moved["title"] == "Lab briefing (moved)"
    local = datetime.fromisoformat(moved["start"]).astimezone(ZoneInfo("America/Chicago"))
    assert local.strftime("%H:%M") == "14:00"

    gone = await teacher.post(f"/meetings/{uid}/delete")
    assert gone.status_code == 200
    await world.run_jobs()
    assert world.service.course_events("7777") == []
    assert {j.status for j in await world.jobs()} == {"done"} and len(await world.jobs()) == 3


async def test_course_lms_gives_the_plugin_its_settings_tokens_and_course(world: World) -> None:
    credential = await world.harness.refresh_credential()
    await set_plugin_settings(
        world.tool,
        credential,
        NAME,
        {"api_url": "https://platform.memlms.test"},
        platform_id=world.harness.registration.id,
    )
    lms = await course_lms(world.tool, world.course_id, user_id="teacher-1")
    assert lms is not None
    assert lms.lms == NAME and lms.settings["api_url"] == "https://platform.memlms.test"
    assert lms.course.context_id == "bio-101" and lms.course.lms_course_id == LMS_COURSE
    assert lms.course.domain == "lms.test"
    assert lms.api.platform_id == world.harness.registration.id
    assert lms.api.issuer == world.harness.registration.issuer
    assert lms.api.user_id == "teacher-1"
    token = await lms.api.tokens.get("app")
    assert token is not None and token.access_token == "memlms-app-token"
    assert await course_lms(world.tool, 99999) is None
    # A plugin the credential turned off is never called.
    await world.tool.repo.set_enabled_plugins(credential, ["generic"])
    assert await course_lms(world.tool, world.course_id) is None


async def test_tokens_are_kept_encrypted_and_scoped_to_credential_platform_and_plugin(
    world: World,
) -> None:
    expires = datetime(2030, 1, 1, tzinfo=UTC)
    store = token_store(world.tool, world.credential_id, None, NAME)
    await store.put("user-7", StoredToken("secret-access", "secret-refresh", expires, "cal"))
    await store.put("user-7", StoredToken("newer-access", "secret-refresh", expires, "cal"))
    got = await store.get("user-7")
    assert got is not None and got.access_token == "newer-access"
    assert got.refresh_token == "secret-refresh" and got.expires_at == expires
    assert await store.subjects() == ["user-7"]
    # Another platform's, and another plugin's, store sees nothing of it.
    assert (
        await token_store(world.tool, world.credential_id, world.harness.registration.id, NAME).get(
            "user-7"
        )
        is None
    )
    assert await token_store(world.tool, world.credential_id, None, "other").get("user-7") is None
    async with world.engine.connect() as conn:
        query = select(lms_tokens.c.token).where(lms_tokens.c.subject == "user-7")
        stored = [r.token for r in (await conn.execute(query)).all()]
    assert len(stored) == 1 and stored[0].startswith(ENCRYPTED_PREFIX)
    assert "access" not in stored[0] and "refresh" not in stored[0]
    await store.delete("user-7")
    assert await store.get("user-7") is None and await store.subjects() == []


async def test_the_course_records_the_platform_of_its_launches(world: World) -> None:
    from test_meetings import TEACHER, person

    page = await world.harness.launch13(person("teacher", "Instructor", course="chem-202"))
    assert page.status_code == 200, page.text[-500:]
    assert TEACHER["sub"] == "teacher"
    async with world.engine.connect() as conn:
        row = (await conn.execute(select(courses).where(courses.c.context_id == "chem-202"))).one()
    assert row.platform_id == world.harness.registration.id and row.lms == NAME


async def test_a_course_the_plugin_has_no_calendar_for_is_left_alone(world: World) -> None:
    await world.tool.repo.record_course(
        world.credential_id,
        lms=NAME,
        domain="lms.test",
        context_id="no-calendar",
        lms_course_id=None,
        title=None,
        label=None,
        history=[],
    )
    async with world.engine.connect() as conn:
        course = (
            await conn.execute(select(courses.c.id).where(courses.c.context_id == "no-calendar"))
        ).scalar_one()
    meeting = await world.meeting(course_id=course)
    assert [o.result for o in await world.run_jobs()] == ["done"]
    assert world.service.events == {}
    assert await rows_for_meeting(world.engine, meeting.uid) == {}


async def test_every_process_that_opens_the_tool_knows_the_calendar_job(world: World) -> None:
    from ltipro.jobs import registry
    from ltipro.jobs.worker import Worker

    assert "calendar.sync" in registry.kinds()
    assert "calendar.sync" in Worker(world.engine, tool=world.tool).handlers.kinds()


async def test_a_meeting_for_sections_carries_them_and_follows_their_changes(
    world: World,
) -> None:
    section = Audience("section", "12", "Section A")
    meeting = await world.meeting(audience=(section,))
    await world.run_jobs()
    [event] = world.events()
    assert event["audience"] == ["section:12"]
    await world.change(meeting, audience=(section, Audience("group", "7", "Lab group")))
    await world.run_jobs()
    [changed] = world.events()
    assert changed["id"] == event["id"] and changed["audience"] == ["section:12", "group:7"]


async def test_a_long_series_fills_a_year_ahead_and_reconcile_extends_it_as_time_passes(
    world: World,
) -> None:
    from ltipro.calendar.events import HORIZON
    from ltipro.calendar.reconcile import reconcile
    from ltipro.meetings.model import occurrences

    monthly = Recurrence(type="monthly", repeat_interval=1, end_times=30)
    meeting = await world.meeting("Monthly review", recurrence=monthly)
    await world.run_jobs()
    starts = occurrences(meeting.start_time, meeting.recurrence, meeting.timezone)
    assert len(starts) == 30
    now = datetime.now(UTC)
    within = [t for t in starts if t <= now + HORIZON]
    assert 11 <= len(within) <= 13
    assert [datetime.fromisoformat(e["start"]) for e in world.events()] == within

    # Half a year on, the nightly reconcile adds the months that came within reach.
    later = now + timedelta(days=182)
    [report] = await reconcile(world.tool, credential_id=world.credential_id, clock=lambda: later)
    added = [t for t in starts if now + HORIZON < t <= later + HORIZON]
    assert report.counts()["missing"] == len(added) >= 5
    assert [datetime.fromisoformat(e["start"]) for e in world.events()] == within + added
