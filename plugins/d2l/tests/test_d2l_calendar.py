"""Calendar sync against the Brightspace double: the exact requests, and what comes back.

The double (``ltipro_d2l.testing``) keeps events per org unit, checks the bearer token,
the route's form (collections end with ``/``) and every field of ``Calendar.EventData``,
and refuses what Brightspace refuses. The hooks are called as the core calls them.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from ltipro_d2l.calendar import (
    calendar_create_event,
    calendar_delete_event,
    calendar_list_events,
    calendar_update_event,
    read_marker,
    utc_datetime,
)
from ltipro_d2l.testing import BrightspaceDouble

from ltipro.context import CourseIdentifiers
from ltipro.extension import Audience, CalendarEvent
from ltipro.lmsapi import (
    LmsApi,
    LmsNotAuthorized,
    LmsNotConfigured,
    LmsNotFound,
    LmsRequestRefused,
    LmsThrottled,
    LmsUnavailable,
)

ORG_UNIT = 522938
GROUP = 7001
COURSE = CourseIdentifiers(
    context_id=str(ORG_UNIT), lms_course_id=str(ORG_UNIT), domain="school.brightspace.com"
)
CHICAGO = ZoneInfo("America/Chicago")
MARKER = "ltipro:m-7f3a:20260302T1500Z"


def meeting(**changes: object) -> CalendarEvent:
    event = CalendarEvent(
        marker=MARKER,
        title="Calculus office hours",
        start=datetime(2026, 3, 2, 9, 0, tzinfo=CHICAGO),
        end=datetime(2026, 3, 2, 10, 0, tzinfo=CHICAGO),
        timezone="America/Chicago",
        join_url="https://meet.example.edu/Calc-7f3a",
        description="Bring your questions on limits.",
    )
    return replace(event, **changes)  # type: ignore[arg-type]


def settings(api: LmsApi) -> dict[str, object]:
    return dict(api.settings)


def expected_body(description: str, *, group: int | None = None) -> dict[str, object]:
    return {
        "Title": "Calculus office hours",
        "Description": description,
        "StartDateTime": "2026-03-02T15:00:00.000Z",
        "EndDateTime": "2026-03-02T16:00:00.000Z",
        "StartDay": None,
        "EndDay": None,
        "IsAllDayEvent": False,
        "GroupId": group,
        "RecurrenceInfo": {
            "RepeatType": 1,
            "RepeatEvery": 1,
            "RepeatOnInfo": {
                "Monday": False,
                "Tuesday": False,
                "Wednesday": False,
                "Thursday": False,
                "Friday": False,
                "Saturday": False,
                "Sunday": False,
            },
            "RepeatUntilDate": "2026-03-02T16:00:00.000Z",
        },
        "LocationId": None,
        "LocationName": "",
        "AssociatedEntity": None,
        "HasVisibilityRestrictions": False,
        "VisibilityRestrictions": {
            "Type": 1,
            "Range": None,
            "HiddenRangeUnitType": None,
            "StartDate": None,
            "EndDate": None,
        },
    }


DESCRIPTION = (
    f"Bring your questions on limits.\n\nJoin: https://meet.example.edu/Calc-7f3a\n\n[{MARKER}]"
)


async def create(api: LmsApi, event: CalendarEvent | None = None) -> str:
    return await calendar_create_event(
        course=COURSE, event=event or meeting(), settings=settings(api), api=api
    )


# -- create -------------------------------------------------------------------------------------


async def test_create_looks_for_the_marker_in_a_day_around_the_start_then_posts_the_event_data(
    brightspace: BrightspaceDouble, d2l_api: LmsApi
) -> None:
    event_id = await create(d2l_api)

    listing, posted = brightspace.api_requests()
    assert (listing.method, listing.path) == ("GET", "/d2l/api/le/1.82/522938/calendar/events/")
    assert dict(listing.query) == {
        "startDateTime": "2026-03-01T15:00:00.000Z",
        "endDateTime": "2026-03-03T15:00:00.000Z",
    }
    assert (posted.method, posted.path) == ("POST", "/d2l/api/le/1.82/522938/calendar/event/")
    assert posted.headers["authorization"].startswith("Bearer eyJ")
    assert posted.headers["content-type"] == "application/json"
    assert posted.json() == expected_body(DESCRIPTION)
    assert posted.status == 200
    stored = brightspace.events[int(event_id)]
    assert stored["OrgUnitId"] == ORG_UNIT
    assert read_marker(stored["Description"]) == MARKER


async def test_a_retried_create_finds_its_event_and_posts_nothing(
    brightspace: BrightspaceDouble, d2l_api: LmsApi
) -> None:
    first = await create(d2l_api)
    again = await create(d2l_api)

    assert again == first
    assert len(brightspace.events_in(ORG_UNIT)) == 1
    assert [r.method for r in brightspace.api_requests()] == ["GET", "POST", "GET"]


async def test_a_retried_create_follows_the_event_list_pages_to_find_its_event(
    brightspace: BrightspaceDouble, d2l_api: LmsApi
) -> None:
    brightspace.page_size = 2
    for hour in (13, 14, 17):
        brightspace.add_event(
            ORG_UNIT,
            StartDateTime=f"2026-03-02T{hour}:00:00.000Z",
            EndDateTime=f"2026-03-02T{hour}:30:00.000Z",
        )
    first = await create(d2l_api)
    again = await create(d2l_api)

    assert again == first
    assert len(brightspace.events_in(ORG_UNIT)) == 4
    second_round = [r for r in brightspace.api_requests("GET")][-2:]
    assert dict(second_round[1].query)["bookmark"] == "2"


async def test_an_older_version_answering_a_bare_array_is_read_too(
    brightspace: BrightspaceDouble, d2l_api: LmsApi
) -> None:
    brightspace.list_shape = "array"
    first = await create(d2l_api)
    assert await create(d2l_api) == first
    assert len(brightspace.events_in(ORG_UNIT)) == 1


async def test_a_group_meeting_goes_to_that_groups_calendar(
    brightspace: BrightspaceDouble, d2l_api: LmsApi
) -> None:
    event = meeting(audience=(Audience("group", str(GROUP), "Lab A"),))
    event_id = await create(d2l_api, event)

    assert brightspace.api_requests("POST")[0].json() == expected_body(DESCRIPTION, group=GROUP)
    assert brightspace.events[int(event_id)]["GroupId"] == GROUP


async def test_a_meeting_for_sections_goes_to_the_course_calendar_naming_them(
    brightspace: BrightspaceDouble, d2l_api: LmsApi
) -> None:
    audience = (Audience("section", "31", "Section 01"), Audience("group", "7001", "Lab A"))
    await create(d2l_api, meeting(audience=audience))

    body = brightspace.api_requests("POST")[0].json()
    assert body["GroupId"] is None
    assert "For: Section 01, Lab A" in body["Description"]
    assert body["Description"].endswith(f"[{MARKER}]")


async def test_each_occurrence_of_a_recurring_meeting_is_an_event_with_its_own_marker(
    brightspace: BrightspaceDouble, d2l_api: LmsApi
) -> None:
    first = datetime(2026, 3, 2, 9, 0, tzinfo=CHICAGO)
    ids = []
    for week in range(3):
        start = first + timedelta(weeks=week)
        marker = f"ltipro:m-7f3a:{start.astimezone(UTC):%Y%m%dT%H%MZ}"
        event = meeting(
            marker=marker,
            start=start,
            end=start + timedelta(hours=1),
            recurrence="Weekly on Monday, 3 times",
        )
        ids.append(await create(d2l_api, event))

    assert len(set(ids)) == 3
    posted = [r.json() for r in brightspace.api_requests("POST")]
    # 9:00 in Chicago is 15:00 UTC before daylight saving time starts on 8 March, 14:00 after.
    assert [p["StartDateTime"] for p in posted] == [
        "2026-03-02T15:00:00.000Z",
        "2026-03-09T14:00:00.000Z",
        "2026-03-16T14:00:00.000Z",
    ]
    assert all(p["RecurrenceInfo"]["RepeatType"] == 1 for p in posted)
    assert all("Part of a recurring meeting: Weekly on Monday" in p["Description"] for p in posted)
    assert [read_marker(p["Description"]) for p in posted] == [
        "ltipro:m-7f3a:20260302T1500Z",
        "ltipro:m-7f3a:20260309T1400Z",
        "ltipro:m-7f3a:20260316T1400Z",
    ]


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        (datetime(2026, 7, 1, 9, 30, tzinfo=ZoneInfo("Europe/Berlin")), "2026-07-01T07:30:00.000Z"),
        (datetime(2026, 1, 1, 9, 30, tzinfo=ZoneInfo("Europe/Berlin")), "2026-01-01T08:30:00.000Z"),
        (datetime(2026, 1, 1, 0, 15, tzinfo=ZoneInfo("Asia/Kolkata")), "2025-12-31T18:45:00.000Z"),
        (datetime(2026, 1, 1, 12, 0, 0, 250_000, tzinfo=UTC), "2026-01-01T12:00:00.250Z"),
    ],
)
def test_times_travel_as_utc_with_milliseconds_whatever_the_meetings_time_zone(
    moment: datetime, expected: str
) -> None:
    assert utc_datetime(moment) == expected


# -- update and delete ------------------------------------------------------------------------


async def test_update_puts_the_new_event_data_on_the_event(
    brightspace: BrightspaceDouble, d2l_api: LmsApi
) -> None:
    event_id = await create(d2l_api)
    moved = meeting(
        title="Calculus office hours (moved)",
        start=datetime(2026, 3, 2, 11, 0, tzinfo=CHICAGO),
        end=datetime(2026, 3, 2, 12, 30, tzinfo=CHICAGO),
    )
    answer = await calendar_update_event(
        course=COURSE, event_id=event_id, event=moved, settings=settings(d2l_api), api=d2l_api
    )

    assert answer == event_id
    put = brightspace.api_requests("PUT")[0]
    assert put.path == f"/d2l/api/le/1.82/522938/calendar/event/{event_id}"
    body = put.json()
    assert (body["Title"], body["StartDateTime"], body["EndDateTime"]) == (
        "Calculus office hours (moved)",
        "2026-03-02T17:00:00.000Z",
        "2026-03-02T18:30:00.000Z",
    )
    stored = brightspace.events[int(event_id)]
    assert stored["StartDateTime"] == "2026-03-02T17:00:00.000Z"
    assert len(brightspace.events_in(ORG_UNIT)) == 1


async def test_updating_an_event_deleted_in_brightspace_says_it_is_gone(
    brightspace: BrightspaceDouble, d2l_api: LmsApi
) -> None:
    event_id = await create(d2l_api)
    del brightspace.events[int(event_id)]

    with pytest.raises(LmsNotFound):
        await calendar_update_event(
            course=COURSE,
            event_id=event_id,
            event=meeting(),
            settings=settings(d2l_api),
            api=d2l_api,
        )


async def test_delete_removes_the_event_and_an_event_already_gone_counts_as_deleted(
    brightspace: BrightspaceDouble, d2l_api: LmsApi
) -> None:
    event_id = await create(d2l_api)
    args = {"course": COURSE, "event_id": event_id, "settings": settings(d2l_api), "api": d2l_api}

    assert await calendar_delete_event(**args) is True
    assert brightspace.events_in(ORG_UNIT) == []
    assert await calendar_delete_event(**args) is True

    deletes = brightspace.api_requests("DELETE")
    assert [d.path for d in deletes] == [f"/d2l/api/le/1.82/522938/calendar/event/{event_id}"] * 2
    assert [d.status for d in deletes] == [200, 404]


# -- list -------------------------------------------------------------------------------------


async def test_list_returns_the_windows_events_with_the_tools_markers_read_back(
    brightspace: BrightspaceDouble, d2l_api: LmsApi
) -> None:
    mine = await create(d2l_api)
    theirs = brightspace.add_event(ORG_UNIT, Title="Midterm review")
    brightspace.add_event(
        ORG_UNIT,
        Title="Next month",
        StartDateTime="2026-04-20T15:00:00.000Z",
        EndDateTime="2026-04-20T16:00:00.000Z",
    )

    found = await calendar_list_events(
        course=COURSE,
        start=datetime(2026, 3, 1, tzinfo=UTC),
        end=datetime(2026, 3, 8, tzinfo=UTC),
        settings=settings(d2l_api),
        api=d2l_api,
    )

    by_id = {e.id: e for e in found}
    assert set(by_id) == {mine, str(theirs["CalendarEventId"])}
    assert by_id[mine].marker == MARKER
    assert by_id[mine].start == datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
    assert by_id[str(theirs["CalendarEventId"])].marker is None
    query = dict(brightspace.api_requests("GET")[-1].query)
    assert query == {
        "startDateTime": "2026-03-01T00:00:00.000Z",
        "endDateTime": "2026-03-08T00:00:00.000Z",
    }


def test_the_marker_is_read_from_the_last_marker_line_even_inside_html() -> None:
    assert read_marker("<p>Notes</p><p>[ltipro:m-1:20260302T1500Z]</p>") == (
        "ltipro:m-1:20260302T1500Z"
    )
    assert read_marker("No marker [here]") is None
    assert read_marker(None) is None


# -- what goes wrong -------------------------------------------------------------------------


async def test_throttling_is_reported_with_brightspaces_retry_after(
    brightspace: BrightspaceDouble, d2l_api: LmsApi
) -> None:
    brightspace.throttle_next(retry_after=17)
    with pytest.raises(LmsThrottled) as caught:
        await create(d2l_api)
    assert caught.value.retry_after == 17
    assert brightspace.events_in(ORG_UNIT) == []


@pytest.mark.parametrize("status", [500, 502, 503, 504])
async def test_a_server_error_is_reported_as_unavailable(
    brightspace: BrightspaceDouble, d2l_api: LmsApi, status: int
) -> None:
    event_id = await create(d2l_api)
    brightspace.fail_next(status)
    with pytest.raises(LmsUnavailable):
        await calendar_update_event(
            course=COURSE,
            event_id=event_id,
            event=meeting(),
            settings=settings(d2l_api),
            api=d2l_api,
        )


async def test_a_timeout_is_reported_as_unavailable(
    brightspace: BrightspaceDouble, d2l_api: LmsApi
) -> None:
    brightspace.fail_next(timeout=True)
    with pytest.raises(LmsUnavailable, match="timed out"):
        await create(d2l_api)


async def test_an_account_without_calendar_rights_in_the_course_is_told_to_the_admin(
    brightspace: BrightspaceDouble, d2l_api: LmsApi
) -> None:
    brightspace.org_units[ORG_UNIT].calendar_managers = False
    with pytest.raises(LmsNotAuthorized, match="may not manage this course's calendar"):
        await create(d2l_api)


async def test_a_group_of_another_course_is_refused_by_brightspace(
    brightspace: BrightspaceDouble, d2l_api: LmsApi
) -> None:
    event = meeting(audience=(Audience("group", "999", "Elsewhere"),))
    with pytest.raises(LmsRequestRefused, match="GroupId 999"):
        await create(d2l_api, event)


async def test_a_course_without_an_org_unit_id_is_a_configuration_error(d2l_api: LmsApi) -> None:
    course = CourseIdentifiers(context_id="abc-123", lms_course_id=None)
    with pytest.raises(LmsNotConfigured, match="org unit"):
        await calendar_create_event(
            course=course, event=meeting(), settings=settings(d2l_api), api=d2l_api
        )


async def test_without_a_base_url_the_platforms_issuer_names_brightspace(
    brightspace: BrightspaceDouble, d2l_api: LmsApi
) -> None:
    api = replace(
        d2l_api,
        settings={**d2l_api.settings, "base_url": None},
        issuer="https://school.brightspace.com",
    )
    course = replace(COURSE, domain="elsewhere.example.edu")
    await calendar_create_event(course=course, event=meeting(), settings=api.settings, api=api)
    assert len(brightspace.events_in(ORG_UNIT)) == 1


async def test_a_brightspace_address_in_a_private_network_is_refused(d2l_api: LmsApi) -> None:
    async def private(host: str) -> list[str]:
        return ["10.1.2.3"]

    api = replace(d2l_api, resolver=private)
    with pytest.raises(LmsNotConfigured, match="refused"):
        await create(api)


async def test_without_a_connection_the_admin_is_told_to_connect(d2l_api: LmsApi) -> None:
    await d2l_api.tokens.delete("app")
    with pytest.raises(LmsNotAuthorized, match="python -m ltipro_d2l connect"):
        await create(d2l_api)
