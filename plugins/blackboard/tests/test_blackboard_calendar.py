"""Calendar sync with Learn's REST API, against the Learn double.

Each test checks the requests the plugin sent (method, path, query, JSON body, the
application token) and what Learn holds afterwards, and how Learn's failures and token
expiry reach the job queue.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from ltipro_blackboard.calendar import (
    calendar_create_event,
    calendar_delete_event,
    calendar_list_events,
    calendar_update_event,
    read_marker,
)
from ltipro_blackboard.settings import clean_learn_url
from ltipro_blackboard.testing import ITEMS_PATH, LEARN_URL, TOKEN_PATH, LearnDouble

from ltipro.context import CourseIdentifiers
from ltipro.crypto import ENCRYPTED_PREFIX
from ltipro.extension import CalendarEvent
from ltipro.lmsapi import (
    LmsApi,
    LmsNotAuthorized,
    LmsNotConfigured,
    LmsNotFound,
    LmsRequestRefused,
    LmsThrottled,
    LmsUnavailable,
    MemoryTokenStore,
    StoredToken,
)
from ltipro.plugin_settings import PluginSettingError, effective_settings, set_plugin_settings
from ltipro.testing.harness import ToolHarness
from ltipro.testing.transport import RoutingTransport

UUID = "6c19281a08504db5a447b511f00c0c7b"
COURSE = CourseIdentifiers(UUID, lms_course_id="_122_1", title="Course One")
START = datetime(2026, 12, 1, 15, 0, tzinfo=UTC)


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
def learn() -> LearnDouble:
    double = LearnDouble()
    double.add_course("_122_1", uuid=UUID)
    double.add_course("_41_1")
    return double


@pytest.fixture
def transport(learn: LearnDouble) -> RoutingTransport:
    return RoutingTransport({"learn.example.edu": learn})


@pytest.fixture
async def http(transport: RoutingTransport) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=transport) as client:
        yield client


def make_api(http: httpx.AsyncClient, key: str | None, secret: str | None, **more: Any) -> LmsApi:
    settings = {"learn_url": LEARN_URL, "app_key": key, "app_secret": secret, **more}
    return LmsApi(
        http=http,
        settings=settings,
        tokens=MemoryTokenStore(),
        issuer="https://blackboard.com",
        resolver=public,
    )


@pytest.fixture
def api(learn: LearnDouble, http: httpx.AsyncClient) -> LmsApi:
    return make_api(http, *learn.add_app())


async def create(api: LmsApi, event: CalendarEvent, course: CourseIdentifiers = COURSE) -> str:
    return await calendar_create_event(course, event, api.settings, api)


# -- what is sent ---------------------------------------------------------------------------


async def test_create_gets_a_token_searches_by_marker_then_posts_the_item(
    learn: LearnDouble, api: LmsApi, transport: RoutingTransport
) -> None:
    event = occurrence()
    item_id = await create(api, event)

    token_request, search, post = transport.requests
    assert (token_request.method, token_request.url.path) == ("POST", TOKEN_PATH)
    assert token_request.content == b"grant_type=client_credentials"
    assert token_request.headers["authorization"].startswith("Basic ")
    assert (search.method, search.url.path) == ("GET", ITEMS_PATH)
    assert dict(search.url.params) == {
        "courseId": "_122_1",
        "type": "Course",
        "since": "2026-11-30T15:00:00.000Z",
        "until": "2026-12-02T16:00:00.000Z",
    }
    assert (post.method, post.url.path) == ("POST", ITEMS_PATH)
    assert post.headers["content-type"] == "application/json"
    assert post.headers["authorization"] == f"Bearer {next(iter(learn.tokens))}"
    body = learn.requests[-1].body
    assert body == {
        "type": "Course",
        "calendarId": "_122_1",
        "title": "Office hours",
        "description": (
            f"Bring your questions.\nJoin: https://meet.example.edu/ltipro-7f3a\n[{event.marker}]"
        ),
        "start": "2026-12-01T15:00:00.000Z",
        "end": "2026-12-01T16:00:00.000Z",
    }
    stored = learn.items[item_id]
    assert (stored.calendarId, stored.start) == ("_122_1", START)
    assert read_marker(stored.description) == event.marker


async def test_a_retried_create_finds_the_item_by_its_marker(
    learn: LearnDouble, api: LmsApi
) -> None:
    first = await create(api, occurrence())
    assert await create(api, occurrence()) == first
    assert [r.method for r in learn.api_requests()] == ["GET", "POST", "GET"]
    assert len(learn.course_items("_122_1")) == 1


async def test_times_are_sent_as_utc_instants_whatever_the_meetings_zone(
    learn: LearnDouble, api: LmsApi
) -> None:
    # 09:00 in Berlin on the last Sunday of March is already summer time: 07:00 UTC.
    berlin = datetime(2026, 3, 29, 9, 0, tzinfo=ZoneInfo("Europe/Berlin"))
    item_id = await create(api, occurrence(berlin, minutes=30, timezone="Europe/Berlin"))
    sent = learn.requests[-1].body
    assert (sent["start"], sent["end"]) == ("2026-03-29T07:00:00.000Z", "2026-03-29T07:30:00.000Z")
    listed = await calendar_list_events(
        COURSE, berlin - timedelta(hours=1), berlin + timedelta(hours=1), api.settings, api
    )
    assert [(e.id, e.start) for e in listed] == [(item_id, berlin.astimezone(UTC))]


async def test_each_occurrence_of_a_recurring_meeting_becomes_its_own_item(
    learn: LearnDouble, api: LmsApi
) -> None:
    weekly = [
        occurrence(START + timedelta(weeks=n), recurrence="Weekly on Tuesday, 3 times")
        for n in range(3)
    ]
    ids = [await create(api, e) for e in weekly]
    assert len(set(ids)) == 3
    posted = [r.body for r in learn.api_requests() if r.method == "POST"]
    assert [p["start"] for p in posted] == [
        "2026-12-01T15:00:00.000Z",
        "2026-12-08T15:00:00.000Z",
        "2026-12-15T15:00:00.000Z",
    ]
    assert all("recurrence" not in p for p in posted)
    assert all("Weekly on Tuesday, 3 times" in p["description"] for p in posted)


async def test_an_update_patches_the_item_in_place(learn: LearnDouble, api: LmsApi) -> None:
    event = occurrence()
    item_id = await create(api, event)
    moved = occurrence(
        START + timedelta(hours=2), title="Office hours (moved)", marker=event.marker
    )
    assert await calendar_update_event(COURSE, item_id, moved, api.settings, api) == item_id
    patch = learn.api_requests()[-1]
    assert (patch.method, patch.path) == ("PATCH", f"{ITEMS_PATH}/Course/{item_id}")
    assert patch.body["start"] == "2026-12-01T17:00:00.000Z"
    [item] = learn.course_items("_122_1")
    assert (item.title, item.start) == ("Office hours (moved)", START + timedelta(hours=2))
    assert read_marker(item.description) == event.marker


async def test_an_update_of_an_item_deleted_in_learn_is_not_found(
    learn: LearnDouble, api: LmsApi
) -> None:
    item_id = await create(api, occurrence())
    del learn.items[item_id]
    with pytest.raises(LmsNotFound):
        await calendar_update_event(COURSE, item_id, occurrence(), api.settings, api)


async def test_delete_removes_the_item_and_a_missing_one_counts_as_deleted(
    learn: LearnDouble, api: LmsApi
) -> None:
    item_id = await create(api, occurrence())
    assert await calendar_delete_event(COURSE, item_id, api.settings, api) is True
    assert learn.items == {}
    assert await calendar_delete_event(COURSE, item_id, api.settings, api) is True
    deletes = [r for r in learn.api_requests() if r.method == "DELETE"]
    assert [(r.path, r.status) for r in deletes] == [
        (f"{ITEMS_PATH}/Course/{item_id}", 204),
        (f"{ITEMS_PATH}/Course/{item_id}", 404),
    ]


async def test_list_reads_markers_back_pages_and_slices_long_windows(
    learn: LearnDouble, api: LmsApi
) -> None:
    ours = [await create(api, occurrence(START + timedelta(weeks=n))) for n in range(0, 30, 3)]
    theirs = learn.add_item("_122_1", "Exam review", START, START + timedelta(hours=2))
    learn.add_item("_41_1", "Another course", START, START + timedelta(hours=1))
    learn.requests.clear()
    listed = await calendar_list_events(
        COURSE, START - timedelta(days=1), START + timedelta(weeks=30), api.settings, api
    )
    assert {e.id for e in listed} == {*ours, theirs.id}
    assert {e.id: e.marker for e in listed}[theirs.id] is None
    assert all(e.marker for e in listed if e.id != theirs.id)
    windows = [
        (parse(r.query["since"]), parse(r.query["until"]))
        for r in learn.api_requests()
        if "offset" not in r.query
    ]
    assert len(windows) == 2 and all(u - s <= timedelta(weeks=16) for s, u in windows)
    # A page of 100 is the default; a course with more items is paged.
    for n in range(120):
        learn.add_item("_122_1", f"Busy {n}", START, START + timedelta(minutes=5))
    listed = await calendar_list_events(
        COURSE, START - timedelta(days=1), START + timedelta(days=1), api.settings, api
    )
    assert len(listed) == 122
    assert any(r.query.get("offset") == "100" for r in learn.api_requests())


def parse(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


async def test_the_course_key_is_looked_up_by_uuid_when_the_launch_gave_none(
    learn: LearnDouble, api: LmsApi
) -> None:
    course = CourseIdentifiers(UUID, lms_course_id=None)
    item_id = await create(api, occurrence(), course)
    lookup = learn.api_requests()[0]
    assert (lookup.path, lookup.query) == (
        f"/learn/api/public/v3/courses/uuid:{UUID}",
        {"fields": "id"},
    )
    assert learn.items[item_id].calendarId == "_122_1"
    with pytest.raises(LmsRequestRefused, match=re.escape("course_pk=@X@course.pk_string@X@")):
        await create(api, occurrence(), CourseIdentifiers("f" * 32, lms_course_id=None))


# -- tokens ---------------------------------------------------------------------------------


async def test_the_token_is_cached_in_the_store_and_reused(learn: LearnDouble, api: LmsApi) -> None:
    await create(api, occurrence())
    await create(api, occurrence(START + timedelta(days=1)))
    await calendar_delete_event(COURSE, "_1_1", api.settings, api)
    assert learn.token_requests == 1
    stored = await api.tokens.get("app")
    assert stored is not None and stored.access_token in learn.tokens
    assert stored.expires_at is not None and stored.expires_at > datetime.now(UTC)


async def test_an_expired_token_is_replaced_before_the_call(
    learn: LearnDouble, api: LmsApi
) -> None:
    await api.tokens.put(
        "app", StoredToken("old", expires_at=datetime.now(UTC) - timedelta(minutes=1))
    )
    await create(api, occurrence())
    assert learn.token_requests == 1
    assert all(r.status != 401 for r in learn.requests)


async def test_a_refused_token_is_replaced_once_and_the_call_sent_again(
    learn: LearnDouble, api: LmsApi
) -> None:
    await create(api, occurrence())
    learn.revoke_tokens()
    await calendar_delete_event(COURSE, "_9_1", api.settings, api)
    assert learn.token_requests == 2
    assert [r.status for r in learn.api_requests()[-2:]] == [401, 404]


async def test_concurrent_calls_fetch_one_token(learn: LearnDouble, api: LmsApi) -> None:
    learn.latency = 0.01
    await asyncio.gather(*(create(api, occurrence(START + timedelta(days=n))) for n in range(5)))
    assert learn.token_requests == 1


async def test_an_integration_refusing_fresh_tokens_is_not_authorised(
    learn: LearnDouble, api: LmsApi
) -> None:
    await create(api, occurrence())
    learn.fail_next(
        401, body=b'{"status":401,"message":"Bearer token is invalid"}', times=2, path=ITEMS_PATH
    )
    with pytest.raises(LmsNotAuthorized, match="REST API Integrations"):
        await calendar_delete_event(COURSE, "_9_1", api.settings, api)


async def test_a_wrong_key_or_secret_is_not_authorised(
    learn: LearnDouble, http: httpx.AsyncClient
) -> None:
    key, _ = learn.add_app()
    with pytest.raises(LmsNotAuthorized, match="invalid_client"):
        await create(make_api(http, key, "wrong"), occurrence())
    with pytest.raises(LmsNotConfigured, match="app_secret"):
        await create(make_api(http, key, None), occurrence())
    with pytest.raises(LmsNotConfigured, match="learn_url"):
        await create(make_api(http, key, "x", learn_url=None), occurrence())


# -- errors ---------------------------------------------------------------------------------


async def test_a_missing_privilege_names_the_learn_privileges(
    learn: LearnDouble, http: httpx.AsyncClient
) -> None:
    key, secret = learn.add_app(
        "view-only", "s3cret", entitlements=frozenset({"course.calendar-entry.VIEW"})
    )
    with pytest.raises(LmsNotAuthorized, match="Calendar > Create Entry"):
        await create(make_api(http, key, secret), occurrence())
    assert learn.items == {}


async def test_throttling_is_honoured_with_learns_retry_after(
    learn: LearnDouble, api: LmsApi
) -> None:
    learn.throttle_next("42", path=ITEMS_PATH)
    with pytest.raises(LmsThrottled) as caught:
        await create(api, occurrence())
    assert caught.value.retry_after == 42
    assert learn.items == {}


@pytest.mark.parametrize("status", [500, 503])
async def test_server_errors_are_unavailability_and_the_retry_creates_one_item(
    learn: LearnDouble, api: LmsApi, status: int
) -> None:
    learn.fail_next(status, path=ITEMS_PATH, method="POST")
    with pytest.raises(LmsUnavailable):
        await create(api, occurrence())
    await create(api, occurrence())
    assert len(learn.course_items("_122_1")) == 1


async def test_a_lost_answer_to_a_create_never_leaves_two_items(
    learn: LearnDouble, api: LmsApi
) -> None:
    await create(api, occurrence())
    learn.fail_next(timeout=True, path=ITEMS_PATH, method="GET")
    with pytest.raises(LmsUnavailable, match="timed out"):
        await create(api, occurrence())
    await create(api, occurrence())
    assert len(learn.course_items("_122_1")) == 1


async def test_learns_refusals_are_refusals(learn: LearnDouble, api: LmsApi) -> None:
    learn.courses["_122_1"].organization = True
    with pytest.raises(LmsRequestRefused, match="organization"):
        await create(api, occurrence())
    with pytest.raises(LmsRequestRefused, match="Learn has no course _404_1"):
        await create(api, occurrence(), CourseIdentifiers(UUID, lms_course_id="_404_1"))


# -- the double refuses what Learn refuses --------------------------------------------------


async def test_the_double_refuses_what_learn_refuses(
    learn: LearnDouble, api: LmsApi, http: httpx.AsyncClient
) -> None:
    await create(api, occurrence())
    token = next(iter(learn.tokens))
    bearer = {"Authorization": f"Bearer {token}"}
    item = {"type": "Course", "calendarId": "_122_1", "title": "x"}
    url = LEARN_URL + ITEMS_PATH
    start, end = "2026-12-01T15:00:00.000Z", "2026-12-01T16:00:00.000Z"
    cases = [
        (await http.post(url, json=item, headers=bearer), 400),  # no start/end
        (
            await http.post(
                url, json={**item, "start": start, "end": end, "colour": 1}, headers=bearer
            ),
            400,
        ),
        (
            await http.post(
                url, json={**item, "title": "t" * 256, "start": start, "end": end}, headers=bearer
            ),
            400,
        ),
        (
            await http.post(
                url,
                json={**item, "type": "GradebookColumn", "start": start, "end": end},
                headers=bearer,
            ),
            400,
        ),
        (await http.post(url, json={**item, "start": end, "end": start}, headers=bearer), 400),
        (await http.post(url, json={**item, "start": start, "end": end}), 401),
        (
            await http.get(
                url,
                params={"since": "2026-01-01T00:00:00Z", "until": "2026-06-01T00:00:00Z"},
                headers=bearer,
            ),
            400,
        ),
        (await http.put(url + "/Course/_1_1", json=item, headers=bearer), 405),
        (
            await http.post(
                LEARN_URL + TOKEN_PATH,
                data={"grant_type": "password"},
                auth=("d128e50d-c91e-47d3-a97e-9d0c8a77fb5e", "x"),
            ),
            400,
        ),
    ]
    assert [(r.status_code, expected) for r, expected in cases] == [
        (expected, expected) for _, expected in cases
    ]
    assert all("message" in r.json() or "error" in r.json() for r, _ in cases)


# -- settings -------------------------------------------------------------------------------


def test_the_learn_url_setting_is_cleaned_to_the_site() -> None:
    assert clean_learn_url("https://learn.example.edu/") == "https://learn.example.edu"
    assert (
        clean_learn_url("https://learn.example.edu/learn/api/public/v1/calendars")
        == "https://learn.example.edu"
    )
    with pytest.raises(ValueError, match="full URL"):
        clean_learn_url("learn.example.edu")


async def test_settings_are_stored_per_platform_with_the_secret_encrypted(
    blackboard_harness: ToolHarness,
) -> None:
    tool, credential = blackboard_harness.tool, blackboard_harness.credential
    platform = blackboard_harness.registration.id
    await set_plugin_settings(
        tool,
        credential,
        "blackboard",
        {"learn_url": "https://learn.example.edu/", "app_key": "k-1", "app_secret": "s-1"},
        platform_id=platform,
    )
    assert await effective_settings(tool, credential, "blackboard", platform) == {
        "learn_url": "https://learn.example.edu",
        "app_key": "k-1",
        "app_secret": "s-1",
    }
    stored = await tool.repo.stored_plugin_settings(credential.id, "blackboard", platform)
    assert str(stored["app_secret"]).startswith(ENCRYPTED_PREFIX)
    assert stored["app_key"] == "k-1"
    with pytest.raises(PluginSettingError, match="full URL"):
        await set_plugin_settings(tool, credential, "blackboard", {"learn_url": "learn"})


def test_the_plugin_offers_every_calendar_hook_to_the_core(blackboard_harness: ToolHarness) -> None:
    hooks = blackboard_harness.plugins.pm.hook
    for name in (
        "calendar_create_event",
        "calendar_update_event",
        "calendar_delete_event",
        "calendar_list_events",
        "plugin_settings",
    ):
        assert "blackboard" in [i.plugin_name for i in getattr(hooks, name).get_hookimpls()], name
