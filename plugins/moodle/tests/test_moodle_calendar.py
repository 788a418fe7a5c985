"""Calendar sync with Moodle's web services, against the Moodle REST double.

Each test checks what the plugin sent (function, PHP-style parameters, where the token
travels) and what Moodle holds afterwards, and how Moodle's failures reach the job queue.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from ltipro_moodle.calendar import (
    calendar_create_event,
    calendar_delete_event,
    calendar_list_events,
    calendar_update_event,
    read_marker,
)
from ltipro_moodle.settings import clean_site_url
from ltipro_moodle.testing import SITE_URL, MoodleDouble
from ltipro_moodle.webservice import call

from ltipro.context import CourseIdentifiers
from ltipro.crypto import ENCRYPTED_PREFIX
from ltipro.extension import CalendarEvent
from ltipro.lmsapi import (
    LmsApi,
    LmsNotAuthorized,
    LmsNotConfigured,
    LmsRequestRefused,
    LmsThrottled,
    LmsUnavailable,
    MemoryTokenStore,
)
from ltipro.plugin_settings import PluginSettingError, effective_settings, set_plugin_settings
from ltipro.testing.harness import ToolHarness
from ltipro.testing.transport import RoutingTransport

COURSE = CourseIdentifiers("2", lms_course_id="2", title="Curso 1")
START = datetime(2026, 12, 1, 15, 0, tzinfo=UTC)
CREATE = "core_calendar_create_calendar_events"
DELETE = "core_calendar_delete_calendar_events"
GET = "core_calendar_get_calendar_events"


async def public(host: str) -> list[str]:
    return ["93.184.215.14"]


def occurrence(start: datetime = START, *, minutes: int = 60, **changes: Any) -> CalendarEvent:
    values: dict[str, Any] = {
        "marker": f"ltipro:m-7f3a:{start.astimezone(UTC):%Y%m%dT%H%MZ}",
        "title": "Office hours",
        "start": start,
        "end": start + timedelta(minutes=minutes),
        "timezone": "UTC",
        "join_url": "https://meet.example.edu/ltipro-7f3a",
        "description": "Bring your questions.",
    }
    values.update(changes)
    return CalendarEvent(**values)


@pytest.fixture
def moodle() -> MoodleDouble:
    double = MoodleDouble()
    double.add_course(2)
    double.add_course(3)
    return double


@pytest.fixture
def transport(moodle: MoodleDouble) -> RoutingTransport:
    return RoutingTransport({"moodle.example.edu": moodle})


@pytest.fixture
async def http(transport: RoutingTransport) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=transport) as client:
        yield client


def make_api(http: httpx.AsyncClient, token: str | None, **settings: Any) -> LmsApi:
    values = {"site_url": None, "ws_token": token, **settings}
    return LmsApi(
        http=http, settings=values, tokens=MemoryTokenStore(), issuer=SITE_URL, resolver=public
    )


@pytest.fixture
def api(moodle: MoodleDouble, http: httpx.AsyncClient) -> LmsApi:
    return make_api(http, moodle.add_token("a" * 32, courses={2}))


async def create(api: LmsApi, event: CalendarEvent, course: CourseIdentifiers = COURSE) -> str:
    return await calendar_create_event(course, event, api.settings, api)


# -- what is sent ---------------------------------------------------------------------------


async def test_create_looks_for_the_marker_then_posts_one_course_event(
    moodle: MoodleDouble, api: LmsApi, transport: RoutingTransport
) -> None:
    event = occurrence()
    event_id = await create(api, event)

    assert [c.function for c in moodle.calls] == [GET, CREATE]
    [search] = moodle.calls_to(GET)
    assert search.params["events"] == {"courseids": {"0": "2"}}
    assert search.params["options"] == {
        "userevents": "0",
        "siteevents": "0",
        "timestart": str(int((START - timedelta(days=1)).timestamp())),
        "timeend": str(int((START + timedelta(minutes=60, days=1)).timestamp())),
        "ignorehidden": "0",
    }
    [made] = moodle.calls_to(CREATE)
    sent = made.params["events"]["0"]
    assert sent == {
        "name": "Office hours",
        "description": sent["description"],
        "format": "1",
        "courseid": "2",
        "eventtype": "course",
        "timestart": str(int(START.timestamp())),
        "timeduration": "3600",
        "visible": "1",
    }
    assert sent["description"].splitlines()[-1] == f"<p>[{event.marker}]</p>"
    assert 'href="https://meet.example.edu/ltipro-7f3a"' in sent["description"]
    assert made.params["moodlewsrestformat"] == "json"
    # The token travels in the POSTed form, never in the URL.
    for request in transport.requests:
        assert request.method == "POST"
        assert request.url.path == "/webservice/rest/server.php"
        assert "wstoken" not in str(request.url)
    stored = moodle.events[int(event_id)]
    assert (stored.courseid, stored.eventtype, stored.timestart) == (2, "course", 1796137200)
    assert read_marker(stored.description) == event.marker


async def test_a_retried_create_finds_the_event_by_its_marker(
    moodle: MoodleDouble, api: LmsApi
) -> None:
    first = await create(api, occurrence())
    again = await create(api, occurrence())
    assert again == first
    assert len(moodle.calls_to(CREATE)) == 1
    assert len(moodle.course_events(2)) == 1


async def test_times_are_sent_as_the_utc_instant_whatever_the_meetings_zone(
    moodle: MoodleDouble, api: LmsApi
) -> None:
    # 09:00 in New York on the day after the autumn change is 14:00 UTC, not 13:00.
    local = datetime(2026, 11, 2, 9, 0, tzinfo=ZoneInfo("America/New_York"))
    tokyo = datetime(2026, 11, 3, 9, 30, tzinfo=ZoneInfo("Asia/Tokyo"))
    ny_id = await create(api, occurrence(local, timezone="America/New_York"))
    tokyo_id = await create(api, occurrence(tokyo, minutes=45, timezone="Asia/Tokyo"))
    assert moodle.events[int(ny_id)].timestart == int(
        datetime(2026, 11, 2, 14, tzinfo=UTC).timestamp()
    )
    assert moodle.events[int(tokyo_id)].timestart == int(
        datetime(2026, 11, 3, 0, 30, tzinfo=UTC).timestamp()
    )
    assert moodle.events[int(tokyo_id)].timeduration == 45 * 60


async def test_each_occurrence_of_a_recurring_meeting_becomes_its_own_event(
    moodle: MoodleDouble, api: LmsApi
) -> None:
    weekly = [
        occurrence(START + timedelta(weeks=n), recurrence="Weekly on Tuesday, 4 times")
        for n in range(4)
    ]
    ids = [await create(api, e) for e in weekly]
    assert len(set(ids)) == 4
    assert len(moodle.calls_to(CREATE)) == 4
    listed = await calendar_list_events(
        COURSE, START - timedelta(days=1), START + timedelta(weeks=5), api.settings, api
    )
    assert sorted((e.marker, e.start) for e in listed) == sorted(
        (e.marker, e.start) for e in weekly
    )
    assert all("Weekly on Tuesday" in (moodle.events[int(i)].description or "") for i in ids)


async def test_an_update_replaces_the_event_and_returns_the_new_id(
    moodle: MoodleDouble, api: LmsApi
) -> None:
    event = occurrence()
    old = await create(api, event)
    moved = occurrence(title="Office hours (moved)", minutes=90, marker=event.marker)
    new = await calendar_update_event(COURSE, old, moved, api.settings, api)

    assert new != old
    assert int(old) not in moodle.events
    [only] = moodle.course_events(2)
    assert (str(only.id), only.name, only.timeduration) == (new, "Office hours (moved)", 5400)
    [deleted] = moodle.calls_to(DELETE)
    assert deleted.params["events"] == {"0": {"eventid": old, "repeat": "0"}}
    # Delete first, then search, then create: the replacement carries the same marker.
    assert [c.function for c in moodle.calls] == [GET, CREATE, DELETE, GET, CREATE]


async def test_an_update_of_an_event_deleted_in_moodle_creates_it_again(
    moodle: MoodleDouble, api: LmsApi
) -> None:
    old = await create(api, occurrence())
    moodle.events.pop(int(old))
    new = await calendar_update_event(COURSE, old, occurrence(), api.settings, api)
    assert [str(e.id) for e in moodle.course_events(2)] == [new]


async def test_a_retried_update_still_leaves_exactly_one_event(
    moodle: MoodleDouble, api: LmsApi
) -> None:
    event = occurrence()
    old = await create(api, event)
    await calendar_update_event(COURSE, old, event, api.settings, api)
    # The job ran again from the start: the old id is gone, the first replacement exists.
    final = await calendar_update_event(COURSE, old, event, api.settings, api)
    assert [str(e.id) for e in moodle.course_events(2)] == [final]


async def test_delete_removes_the_event_and_a_missing_one_counts_as_deleted(
    moodle: MoodleDouble, api: LmsApi
) -> None:
    event_id = await create(api, occurrence())
    assert await calendar_delete_event(COURSE, event_id, api.settings, api) is True
    assert moodle.course_events(2) == []
    assert await calendar_delete_event(COURSE, event_id, api.settings, api) is True
    assert len(moodle.calls_to(DELETE)) == 2


async def test_list_reads_markers_back_and_leaves_other_events_unmarked(
    moodle: MoodleDouble, api: LmsApi
) -> None:
    ours = await create(api, occurrence())
    theirs = moodle.add_event(2, "Exam review", int((START + timedelta(days=2)).timestamp()))
    moodle.add_event(3, "Another course", int(START.timestamp()))
    listed = await calendar_list_events(
        COURSE, START - timedelta(days=1), START + timedelta(days=7), api.settings, api
    )
    by_id = {e.id: e for e in listed}
    assert set(by_id) == {ours, str(theirs.id)}
    assert by_id[ours].marker == occurrence().marker
    assert by_id[ours].end == START + timedelta(hours=1)
    assert by_id[str(theirs.id)].marker is None


# -- errors ---------------------------------------------------------------------------------


async def test_a_wrong_token_tells_the_admin_where_tokens_are_made(
    moodle: MoodleDouble, http: httpx.AsyncClient
) -> None:
    api = make_api(http, "f" * 32)
    with pytest.raises(LmsNotAuthorized, match="invalidtoken") as caught:
        await create(api, occurrence())
    assert "Manage tokens" in str(caught.value)


async def test_a_service_without_the_calendar_functions_names_them(
    moodle: MoodleDouble, http: httpx.AsyncClient
) -> None:
    token = moodle.add_token(functions=frozenset({"core_webservice_get_site_info"}), courses={2})
    with pytest.raises(LmsNotAuthorized, match="accessexception") as caught:
        await create(make_api(http, token), occurrence())
    assert "core_calendar_create_calendar_events" in str(caught.value)


async def test_a_user_who_cannot_manage_the_courses_calendar_is_not_authorised(
    moodle: MoodleDouble, http: httpx.AsyncClient
) -> None:
    token = moodle.add_token(courses={3})
    api = make_api(http, token)
    with pytest.raises(LmsNotAuthorized, match="moodle/calendar:manageentries"):
        await create(api, occurrence())
    assert moodle.events == {}


async def test_a_site_manager_token_may_write_any_course(
    moodle: MoodleDouble, http: httpx.AsyncClient
) -> None:
    api = make_api(http, moodle.add_token(manager=True))
    event_id = await create(api, occurrence(), CourseIdentifiers("3", lms_course_id="3"))
    assert moodle.events[int(event_id)].courseid == 3


async def test_rest_switched_off_is_an_authorisation_problem(
    moodle: MoodleDouble, api: LmsApi
) -> None:
    moodle.rest_enabled = False
    with pytest.raises(LmsNotAuthorized, match="REST protocol"):
        await create(api, occurrence())


async def test_a_throttling_proxy_is_honoured_with_its_retry_after(
    moodle: MoodleDouble, api: LmsApi
) -> None:
    moodle.throttle_next("17")
    with pytest.raises(LmsThrottled) as caught:
        await create(api, occurrence())
    assert caught.value.retry_after == 17
    assert moodle.events == {}


@pytest.mark.parametrize("status", [500, 502, 503])
async def test_server_errors_are_unavailability(
    moodle: MoodleDouble, api: LmsApi, status: int
) -> None:
    moodle.fail_next(status, function=CREATE)
    with pytest.raises(LmsUnavailable):
        await create(api, occurrence())
    # The search ran; nothing was created; the retry then succeeds once.
    assert await create(api, occurrence())
    assert len(moodle.course_events(2)) == 1


async def test_a_timeout_is_unavailability(moodle: MoodleDouble, api: LmsApi) -> None:
    moodle.fail_next(timeout=True)
    with pytest.raises(LmsUnavailable, match="timed out"):
        await create(api, occurrence())


async def test_other_moodle_exceptions_are_refusals(moodle: MoodleDouble, api: LmsApi) -> None:
    moodle.exception_next(
        "invalid_parameter_exception", "invalidparameter", "Invalid parameter value detected"
    )
    with pytest.raises(LmsRequestRefused, match="invalidparameter"):
        await create(api, occurrence())


async def test_missing_settings_say_which_setting(http: httpx.AsyncClient) -> None:
    with pytest.raises(LmsNotConfigured, match="ws_token"):
        await create(make_api(http, None), occurrence())
    no_issuer = LmsApi(
        http=http, settings={"ws_token": "x"}, tokens=MemoryTokenStore(), resolver=public
    )
    with pytest.raises(LmsNotConfigured, match="site_url"):
        await create(no_issuer, occurrence())


async def test_a_course_without_a_moodle_id_is_refused(api: LmsApi) -> None:
    with pytest.raises(LmsRequestRefused, match="no Moodle course id"):
        await create(api, occurrence(), CourseIdentifiers("4:section", lms_course_id=None))


async def test_the_site_url_defaults_to_the_issuer_with_its_path(http: httpx.AsyncClient) -> None:
    moodle = MoodleDouble("https://www.example.edu/moodle")
    moodle.add_course(2)
    token = moodle.add_token(courses={2})
    async with httpx.AsyncClient(transport=RoutingTransport({"www.example.edu": moodle})) as client:
        api = LmsApi(
            http=client,
            settings={"site_url": None, "ws_token": token},
            tokens=MemoryTokenStore(),
            issuer="https://www.example.edu/moodle",
            resolver=public,
        )
        await create(api, occurrence())
    assert moodle.calls[-1].path == "/moodle/webservice/rest/server.php"
    assert len(moodle.course_events(2)) == 1


# -- the double refuses what Moodle refuses -------------------------------------------------


async def test_the_double_checks_parameters_as_moodle_describes_them(
    moodle: MoodleDouble, api: LmsApi
) -> None:
    # delete needs both eventid and repeat
    with pytest.raises(LmsRequestRefused, match="invalidparameter"):
        await call(DELETE, {"events": [{"eventid": 5}]}, api.settings, api)
    with pytest.raises(LmsRequestRefused, match="invalidparameter"):
        await call(CREATE, {"events": [{"name": "x", "colour": "red"}]}, api.settings, api)
    with pytest.raises(LmsRequestRefused, match="invalidparameter"):
        await call(CREATE, {"events": [{"name": "x", "timestart": "soon"}]}, api.settings, api)
    assert moodle.refused == [
        "events => Missing required key in single structure: repeat",
        "events => Unexpected keys (colour) detected in parameter array.",
        'events => timestart => Invalid external api parameter: the value is "soon", the '
        'server was expecting "int" type',
    ]


async def test_the_double_answers_xml_unless_json_is_asked_for(
    moodle: MoodleDouble, http: httpx.AsyncClient
) -> None:
    token = moodle.add_token(courses={2})
    response = await http.post(
        SITE_URL + "/webservice/rest/server.php",
        data={"wstoken": token, "wsfunction": GET},
    )
    assert response.headers["content-type"].startswith("application/xml")


# -- settings -------------------------------------------------------------------------------


def test_the_site_url_setting_is_cleaned_to_the_wwwroot() -> None:
    assert clean_site_url(" https://moodle.example.edu/ ") == "https://moodle.example.edu"
    assert (
        clean_site_url("https://example.edu/moodle/webservice/rest/server.php")
        == "https://example.edu/moodle"
    )
    with pytest.raises(ValueError, match="full URL"):
        clean_site_url("moodle.example.edu")


async def test_settings_are_stored_per_platform_with_the_token_encrypted(
    moodle_harness: ToolHarness,
) -> None:
    tool, credential = moodle_harness.tool, moodle_harness.credential
    platform = moodle_harness.registration.id
    await set_plugin_settings(
        tool,
        credential,
        "moodle",
        {"site_url": "https://moodle.example.edu/", "ws_token": "0123456789abcdef" * 2},
        platform_id=platform,
    )
    settings = await effective_settings(tool, credential, "moodle", platform)
    assert settings == {
        "site_url": "https://moodle.example.edu",
        "ws_token": "0123456789abcdef" * 2,
    }
    stored = await tool.repo.stored_plugin_settings(credential.id, "moodle", platform)
    assert str(stored["ws_token"]).startswith(ENCRYPTED_PREFIX)
    with pytest.raises(PluginSettingError, match="full URL"):
        await set_plugin_settings(tool, credential, "moodle", {"site_url": "moodle"})


def test_the_plugin_offers_every_calendar_hook_to_the_core(moodle_harness: ToolHarness) -> None:
    hooks = moodle_harness.plugins.pm.hook
    for name in (
        "calendar_create_event",
        "calendar_update_event",
        "calendar_delete_event",
        "calendar_list_events",
        "plugin_settings",
    ):
        assert "moodle" in [i.plugin_name for i in getattr(hooks, name).get_hookimpls()], name
