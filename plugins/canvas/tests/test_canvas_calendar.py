"""Canvas calendar sync against the Canvas double: the exact requests, and what Canvas keeps."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from ltipro_canvas.calendar import (
    calendar_create_event,
    calendar_delete_event,
    calendar_list_events,
    calendar_update_event,
    describe,
    parse_event_id,
    read_marker,
)
from ltipro_canvas.testing import CanvasDouble, RecordedRequest, canvas_api, canvas_http

from ltipro.context import CourseIdentifiers
from ltipro.extension import Audience, CalendarEvent, LmsCalendarEvent
from ltipro.lmsapi import LmsApi, LmsNotConfigured, LmsNotFound, LmsRequestRefused

COURSE = CourseIdentifiers("ctx-1", lms_course_id="3")
NEW_YORK = ZoneInfo("America/New_York")
TEACHER = "7"


@pytest.fixture
def canvas() -> CanvasDouble:
    double = CanvasDouble()
    double.add_course("3", sections=["31", "32"], groups=["41", "42"], teachers=[TEACHER])
    return double


@pytest.fixture
async def http(canvas: CanvasDouble) -> AsyncIterator[httpx.AsyncClient]:
    async with canvas_http(canvas) as client:
        yield client


@pytest.fixture
def api(canvas: CanvasDouble, http: httpx.AsyncClient) -> LmsApi:
    token, _ = canvas.issue_token(TEACHER, expires_in=None)
    settings = {
        "api_client_id": canvas.client_id,
        "api_client_secret": canvas.client_secret,
        "admin_access_token": token,
        "api_base_url": None,
    }
    course_api: LmsApi = canvas_api(canvas, http, settings=settings)
    return course_api


@pytest.fixture
def course() -> CourseIdentifiers:
    # The course as the core hands it to hooks: with the Canvas domain of its launches.
    return replace(COURSE, domain="canvas.test")


def occurrence(
    start: datetime,
    *,
    uid: str = "m1",
    audience: tuple[Audience, ...] = (),
    title: str = "Office hours",
    recurrence: str | None = None,
) -> CalendarEvent:
    return CalendarEvent(
        marker=f"ltipro:{uid}:{start.astimezone(UTC):%Y%m%dT%H%MZ}",
        title=title,
        start=start,
        end=start + timedelta(minutes=45),
        timezone="America/New_York",
        join_url="https://meet.example/j/123?pwd=a&b=1",
        description="Bring questions.\nCameras optional.",
        recurrence=recurrence,
        audience=audience,
    )


async def create_event(
    course: CourseIdentifiers, event: CalendarEvent, settings: Mapping[str, Any], api: LmsApi
) -> str:
    """``calendar_create_event``, which always answers an id for Canvas."""
    event_id = await calendar_create_event(course, event, settings, api)
    assert event_id is not None
    return event_id


async def listing(
    course: CourseIdentifiers,
    start: datetime,
    end: datetime,
    settings: Mapping[str, Any],
    api: LmsApi,
) -> list[LmsCalendarEvent]:
    """``calendar_list_events``, which always answers a list for Canvas."""
    events = await calendar_list_events(course, start, end, settings, api)
    assert events is not None
    return events


def form(request: RecordedRequest) -> dict[str, str]:
    return dict(request.form)


# -- create -------------------------------------------------------------------------------


async def test_create_looks_for_the_marker_then_posts_the_event_in_utc_with_canvas_field_names(
    canvas: CanvasDouble, api: LmsApi, course: CourseIdentifiers
) -> None:
    # 10:00 in New York on 2 March 2026 (EST, UTC-5) is 15:00 UTC.
    event = occurrence(datetime(2026, 3, 2, 10, 0, tzinfo=NEW_YORK))
    event_id = await create_event(course, event, api.settings, api)

    search, create = canvas.api_requests()
    assert (search.method, search.path) == ("GET", "/api/v1/calendar_events")
    assert search.query == (
        ("context_codes[]", "course_3"),
        ("type", "event"),
        ("start_date", "2026-03-01T15:00:00Z"),
        ("end_date", "2026-03-03T15:45:00Z"),
        ("per_page", "100"),
    )
    assert (create.method, create.path, create.status) == ("POST", "/api/v1/calendar_events", 201)
    assert create.form == (
        ("calendar_event[context_code]", "course_3"),
        ("calendar_event[title]", "Office hours"),
        ("calendar_event[description]", describe(event)),
        ("calendar_event[start_at]", "2026-03-02T15:00:00Z"),
        ("calendar_event[end_at]", "2026-03-02T15:45:00Z"),
        ("calendar_event[location_name]", "Online meeting"),
        ("calendar_event[time_zone_edited]", "America/New_York"),
    )
    [stored] = canvas.events_in("course_3")
    assert event_id == str(stored["id"])
    assert stored["start_at"] == datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
    assert read_marker(stored["description"]) == event.marker
    assert stored["description"].endswith(f"<p>[{event.marker}]</p>")


async def test_summer_time_is_converted_by_its_own_offset(
    canvas: CanvasDouble, api: LmsApi, course: CourseIdentifiers
) -> None:
    # 10:00 in New York on 6 July 2026 (EDT, UTC-4) is 14:00 UTC.
    await create_event(
        course, occurrence(datetime(2026, 7, 6, 10, 0, tzinfo=NEW_YORK)), api.settings, api
    )
    create = canvas.api_requests("POST")[0]
    assert form(create)["calendar_event[start_at]"] == "2026-07-06T14:00:00Z"


async def test_a_retried_create_finds_its_marker_and_makes_no_second_event(
    canvas: CanvasDouble, api: LmsApi, course: CourseIdentifiers
) -> None:
    event = occurrence(datetime(2026, 3, 2, 15, 0, tzinfo=UTC))
    first = await create_event(course, event, api.settings, api)
    again = await create_event(course, event, api.settings, api)
    assert again == first
    assert len(canvas.events_in("course_3")) == 1
    assert len(canvas.api_requests("POST")) == 1


async def test_the_marker_search_ignores_other_events_and_other_occurrences(
    canvas: CanvasDouble, api: LmsApi, course: CourseIdentifiers
) -> None:
    start = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
    other = await create_event(course, occurrence(start, uid="m2"), api.settings, api)
    mine = await create_event(course, occurrence(start), api.settings, api)
    assert mine != other
    assert len(canvas.events_in("course_3")) == 2


async def test_each_occurrence_of_a_recurring_meeting_is_its_own_event_naming_the_series(
    canvas: CanvasDouble, api: LmsApi, course: CourseIdentifiers
) -> None:
    weekly = "Every Monday, 4 times"
    starts = [datetime(2026, 3, 2, 10, 0, tzinfo=NEW_YORK) + timedelta(weeks=n) for n in range(4)]
    ids = [
        await create_event(course, occurrence(s, recurrence=weekly), api.settings, api)
        for s in starts
    ]
    assert len(set(ids)) == 4
    stored = canvas.events_in("course_3")
    # New York switches to summer time on 8 March 2026: 10:00 is 14:00 UTC from then on.
    assert [e["start_at"].hour for e in stored] == [15, 14, 14, 14]
    assert all(weekly in e["description"] for e in stored)
    assert [read_marker(e["description"]) for e in stored] == [
        "ltipro:m1:20260302T1500Z",
        "ltipro:m1:20260309T1400Z",
        "ltipro:m1:20260316T1400Z",
        "ltipro:m1:20260323T1400Z",
    ]


async def test_the_description_escapes_html_and_keeps_the_join_link(api: LmsApi) -> None:
    event = occurrence(datetime(2026, 3, 2, 15, 0, tzinfo=UTC))
    event = CalendarEvent(**{**event.__dict__, "description": "<script>x</script> & more"})
    text = describe(event)
    assert "<script>" not in text and "&lt;script&gt;" in text
    assert 'href="https://meet.example/j/123?pwd=a&amp;b=1"' in text
    assert read_marker(text) == event.marker


# -- sections and groups ------------------------------------------------------------------


async def test_a_meeting_for_sections_is_one_course_event_with_section_times(
    canvas: CanvasDouble, api: LmsApi, course: CourseIdentifiers
) -> None:
    sections = (Audience("section", "31", "A"), Audience("section", "32", "B"))
    event = occurrence(datetime(2026, 3, 2, 15, 0, tzinfo=UTC), audience=sections)
    event_id = await create_event(course, event, api.settings, api)

    sent = form(canvas.api_requests("POST")[0])
    assert sent["calendar_event[context_code]"] == "course_3"
    for n, section in enumerate(("31", "32")):
        assert sent[f"calendar_event[child_event_data][{n}][context_code]"] == (
            f"course_section_{section}"
        )
        assert sent[f"calendar_event[child_event_data][{n}][start_at]"] == "2026-03-02T15:00:00Z"
        assert sent[f"calendar_event[child_event_data][{n}][end_at]"] == "2026-03-02T15:45:00Z"
    [parent] = canvas.events_in("course_3")
    assert event_id == str(parent["id"])
    assert parent["all_context_codes"] == "course_3,course_section_31,course_section_32"

    # The listing returns the section copies too; they are the same event.
    assert await create_event(course, event, api.settings, api) == event_id
    [listed] = await listing(course, event.start - timedelta(days=1), event.end, api.settings, api)
    assert (listed.id, listed.marker) == (event_id, event.marker)


async def test_a_meeting_moved_back_to_the_whole_course_drops_its_section_times(
    canvas: CanvasDouble, api: LmsApi, course: CourseIdentifiers
) -> None:
    start = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
    event = occurrence(start, audience=(Audience("section", "31", "A"),))
    event_id = await create_event(course, event, api.settings, api)
    whole = occurrence(start)
    assert await calendar_update_event(course, event_id, whole, api.settings, api) == event_id

    put = canvas.api_requests("PUT")[0]
    assert form(put)["calendar_event[remove_child_events]"] == "true"
    [parent] = canvas.events_in("course_3")
    assert parent["child_ids"] == [] and parent["all_context_codes"] == "course_3"


async def test_a_meeting_for_groups_gets_one_event_per_group_and_one_id_naming_them(
    canvas: CanvasDouble, api: LmsApi, course: CourseIdentifiers
) -> None:
    groups = (Audience("group", "42", "Team B"), Audience("group", "41", "Team A"))
    event = occurrence(datetime(2026, 3, 2, 15, 0, tzinfo=UTC), audience=groups)
    event_id = await create_event(course, event, api.settings, api)

    assert canvas.events_in("course_3") == []
    [in_41] = canvas.events_in("group_41")
    [in_42] = canvas.events_in("group_42")
    assert event_id == f"g41:{in_41['id']},g42:{in_42['id']}"
    assert canvas.api_requests("GET")[0].query[:2] == (
        ("context_codes[]", "group_41"),
        ("context_codes[]", "group_42"),
    )
    # Retried: found in both calendars, nothing new.
    assert await create_event(course, event, api.settings, api) == event_id
    assert len(canvas.api_requests("POST")) == 2
    # Listed back as the same id.
    listed = await listing(course, event.start - timedelta(hours=1), event.end, api.settings, api)
    assert [(e.id, e.marker) for e in listed] == [(event_id, event.marker)]


async def test_changing_a_meetings_groups_moves_its_events(
    canvas: CanvasDouble, api: LmsApi, course: CourseIdentifiers
) -> None:
    start = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
    event_id = await create_event(
        course, occurrence(start, audience=(Audience("group", "41", "A"),)), api.settings, api
    )
    moved = occurrence(
        start, audience=(Audience("group", "42", "B"), Audience("section", "31", "S"))
    )
    new_id = await calendar_update_event(course, event_id, moved, api.settings, api)
    assert new_id is not None
    parts = parse_event_id(new_id)
    assert set(parts) == {"", "42"}
    assert canvas.events_in("group_41") == []
    assert [str(e["id"]) for e in canvas.events_in("group_42")] == [parts["42"]]
    assert [str(e["id"]) for e in canvas.events_in("course_3")] == [parts[""]]

    assert await calendar_delete_event(course, new_id, api.settings, api) is True
    assert canvas.events_in("group_42") == [] and canvas.events_in("course_3") == []


# -- update and delete ---------------------------------------------------------------------


async def test_update_puts_the_new_times_and_title_on_the_same_event(
    canvas: CanvasDouble, api: LmsApi, course: CourseIdentifiers
) -> None:
    start = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
    event_id = await create_event(course, occurrence(start), api.settings, api)
    later = occurrence(start + timedelta(hours=2), title="Office hours (moved)")
    assert await calendar_update_event(course, event_id, later, api.settings, api) == event_id

    put = canvas.api_requests("PUT")[0]
    assert put.path == f"/api/v1/calendar_events/{event_id}"
    sent = form(put)
    assert "calendar_event[context_code]" not in sent
    assert sent["calendar_event[title]"] == "Office hours (moved)"
    assert sent["calendar_event[start_at]"] == "2026-03-02T17:00:00Z"
    [stored] = canvas.events_in("course_3")
    assert stored["title"] == "Office hours (moved)"
    assert stored["end_at"] == datetime(2026, 3, 2, 17, 45, tzinfo=UTC)


async def test_updating_an_event_deleted_in_canvas_says_it_is_gone(
    canvas: CanvasDouble, api: LmsApi, course: CourseIdentifiers
) -> None:
    event = occurrence(datetime(2026, 3, 2, 15, 0, tzinfo=UTC))
    event_id = await create_event(course, event, api.settings, api)
    assert event_id is not None
    canvas.events[int(event_id)]["workflow_state"] = "deleted"  # an instructor deleted it
    with pytest.raises(LmsNotFound):
        await calendar_update_event(course, event_id, event, api.settings, api)
    assert len(canvas.api_requests("POST")) == 1


async def test_delete_removes_the_event_and_an_event_already_gone_is_deleted_too(
    canvas: CanvasDouble, api: LmsApi, course: CourseIdentifiers
) -> None:
    event_id = await create_event(
        course, occurrence(datetime(2026, 3, 2, 15, 0, tzinfo=UTC)), api.settings, api
    )
    assert event_id is not None
    assert await calendar_delete_event(course, event_id, api.settings, api) is True
    delete = canvas.api_requests("DELETE")[0]
    assert (delete.path, delete.status) == (f"/api/v1/calendar_events/{event_id}", 200)
    assert canvas.events_in("course_3") == []
    assert await calendar_delete_event(course, event_id, api.settings, api) is True
    assert canvas.api_requests("DELETE")[1].status == 404


async def test_an_event_id_the_plugin_never_made_is_refused(
    api: LmsApi, course: CourseIdentifiers
) -> None:
    for bad in ("abc", "12,12", "x3:4", "g:5", ""):
        with pytest.raises(LmsRequestRefused):
            await calendar_delete_event(course, bad, api.settings, api)


# -- listing -------------------------------------------------------------------------------


async def test_listing_follows_canvas_pagination_and_reads_markers_back(
    canvas: CanvasDouble, api: LmsApi, course: CourseIdentifiers
) -> None:
    start = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
    ids = []
    for n in range(103):
        event = occurrence(start + timedelta(hours=n), uid=f"m{n}")
        ids.append(await create_event(course, event, api.settings, api))
    canvas.requests.clear()
    listed = await listing(course, start, start + timedelta(days=10), api.settings, api)
    assert sorted(e.id for e in listed) == sorted(ids)
    assert {e.marker for e in listed} == {
        f"ltipro:m{n}:" + f"{start + timedelta(hours=n):%Y%m%dT%H%MZ}" for n in range(103)
    }
    groups, *pages = canvas.api_requests("GET")
    assert (groups.path, groups.query) == ("/api/v1/courses/3/groups", (("per_page", "100"),))
    assert [p.path for p in pages] == ["/api/v1/calendar_events"] * 2
    # The course's and its groups' calendars in one listing, the window in UTC.
    assert pages[0].query == (
        ("context_codes[]", "course_3"),
        ("context_codes[]", "group_41"),
        ("context_codes[]", "group_42"),
        ("type", "event"),
        ("start_date", "2026-03-02T15:00:00Z"),
        ("end_date", "2026-03-12T15:00:00Z"),
        ("per_page", "100"),
    )
    assert ("page", "2") in pages[1].query


async def test_listing_shows_duplicates_and_events_without_markers_separately(
    canvas: CanvasDouble, api: LmsApi, course: CourseIdentifiers
) -> None:
    start = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
    event = occurrence(start)
    event_id = await create_event(course, event, api.settings, api)
    token = api.settings["admin_access_token"]
    async with canvas_http(canvas) as client:
        for description in (describe(event), "<p>Faculty meeting</p>"):
            made = await client.post(
                "https://canvas.test/api/v1/calendar_events",
                data={
                    "calendar_event[context_code]": "course_3",
                    "calendar_event[title]": "copy",
                    "calendar_event[description]": description,
                    "calendar_event[start_at]": "2026-03-02T15:00:00Z",
                },
                headers={"Authorization": f"Bearer {token}"},
            )
            assert made.status_code == 201
    listed = await listing(
        course, start - timedelta(hours=1), start + timedelta(hours=1), api.settings, api
    )
    markers = sorted((e.marker or "", e.id) for e in listed)
    assert [m for m, _ in markers] == ["", event.marker, event.marker]
    assert event_id in [i for _, i in markers]


# -- configuration ---------------------------------------------------------------------------


async def test_a_course_without_a_canvas_course_id_says_which_custom_field_is_missing(
    api: LmsApi,
) -> None:
    course = CourseIdentifiers("ctx-1", domain="canvas.test")
    with pytest.raises(LmsNotConfigured, match=r"canvas_course_id=\$Canvas.course.id"):
        await create_event(
            course, occurrence(datetime(2026, 3, 2, 15, 0, tzinfo=UTC)), api.settings, api
        )


async def test_without_a_domain_or_api_address_the_admin_is_told_which_setting_to_set(
    api: LmsApi,
) -> None:
    with pytest.raises(LmsNotConfigured, match="api_base_url"):
        await calendar_delete_event(CourseIdentifiers("ctx-1", "3"), "5", api.settings, api)


async def test_the_api_address_setting_wins_over_the_course_domain(
    canvas: CanvasDouble, api: LmsApi
) -> None:
    settings = {**api.settings, "api_base_url": "https://canvas.test"}
    moved_api = replace(api, settings=settings)
    course = CourseIdentifiers("ctx-1", "3", domain="old-name.example.edu")
    await create_event(
        course, occurrence(datetime(2026, 3, 2, 15, 0, tzinfo=UTC)), settings, moved_api
    )
    assert len(canvas.events_in("course_3")) == 1


async def test_a_private_canvas_address_is_refused_before_any_call(
    canvas: CanvasDouble, api: LmsApi, course: CourseIdentifiers
) -> None:
    async def private(host: str) -> list[str]:
        return ["10.1.2.3"]

    with pytest.raises(LmsNotConfigured, match="refused"):
        await calendar_delete_event(course, "5", api.settings, replace(api, resolver=private))
    assert canvas.requests == []


async def test_a_meeting_for_too_many_groups_is_refused_before_anything_is_made(
    canvas: CanvasDouble, api: LmsApi, course: CourseIdentifiers
) -> None:
    many = tuple(Audience("group", str(100 + n), f"Team {n}") for n in range(14))
    canvas.add_course("3", groups=[a.id for a in many], teachers=["7"])
    event = occurrence(datetime(2026, 3, 2, 15, 0, tzinfo=UTC), audience=many)
    with pytest.raises(LmsRequestRefused, match="too many Canvas groups"):
        await create_event(course, event, api.settings, api)
    assert canvas.requests == []
