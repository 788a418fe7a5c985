"""The Zoom client against the Zoom API double: every call, tokens, retries, typed errors.

The double checks each request and response against Zoom's OpenAPI document; the
``double`` fixture fails a test whose requests broke it (``double.violations``), so every
test here also proves the client sends what Zoom documents.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

import httpx
import pytest

from ltipro.providers.zoom import (
    ZOOM_GOV_API_BASE_URL,
    ZOOM_GOV_OAUTH_TOKEN_URL,
    CreateAction,
    MeetingListType,
    MeetingType,
    RecurrenceType,
    UserType,
    ZoomAuthError,
    ZoomClient,
    ZoomDailyLimit,
    ZoomError,
    ZoomGroupNotFound,
    ZoomInvalidRequest,
    ZoomMeetingFields,
    ZoomMeetingNotFound,
    ZoomRateLimited,
    ZoomRecordingNotFound,
    ZoomRecurrence,
    ZoomSettings,
    ZoomTokenCache,
    ZoomUnavailable,
    ZoomUserExists,
    ZoomUserInAnotherAccount,
    ZoomUserNotFound,
    encode_meeting_id,
)
from ltipro.providers.zoom.client import parse_retry_after
from ltipro.providers.zoom.errors import ZoomNotFound, ZoomPermissionDenied, error_for
from ltipro.testing.zoom_double import ACCOUNT_ID, CLIENT_ID, CLIENT_SECRET, ZoomDouble
from ltipro.testing.zoom_openapi import (
    SUBSET_PATH,
    TOLERANCES,
    SchemaViolation,
    ZoomApiChecker,
    load_subset,
    subset_from_file,
)

REFERENCE_SPEC = (
    Path(__file__).resolve().parents[2] / "shared" / "reference" / "zoom-meeting-api-spec.json"
)
PARIS = ZoneInfo("Europe/Paris")
SETTINGS = ZoomSettings(account_id=ACCOUNT_ID, client_id=CLIENT_ID, client_secret=CLIENT_SECRET)


class Clock:
    """Wall-clock seconds shared by the double and the token cache; tests move it."""

    def __init__(self) -> None:
        self.now = datetime(2030, 1, 6, 12, 0, tzinfo=UTC).timestamp()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds

    def utc(self) -> datetime:
        return datetime.fromtimestamp(self.now, UTC)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def double(clock: Clock) -> Iterator[ZoomDouble]:
    zoom = ZoomDouble(clock=clock)
    yield zoom
    assert zoom.violations == [], "requests outside Zoom's document"


@pytest.fixture
async def http(double: ZoomDouble) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=double)) as client:
        yield client


@pytest.fixture
def waits() -> list[float]:
    return []


def make_client(
    http: httpx.AsyncClient,
    clock: Clock,
    waits: list[float],
    settings: ZoomSettings = SETTINGS,
    tokens: ZoomTokenCache | None = None,
) -> ZoomClient:
    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    return ZoomClient(
        settings,
        http,
        tokens=tokens or ZoomTokenCache(clock=clock),
        sleep=sleep,
        jitter=lambda: 1.0,  # backoff at its upper bound, so waits are exact
        now=clock.utc,
    )


@pytest.fixture
def zoom(http: httpx.AsyncClient, clock: Clock, waits: list[float]) -> ZoomClient:
    return make_client(http, clock, waits)


def api_requests(double: ZoomDouble) -> list[Any]:
    return [r for r in double.requests if r.operation_id != "token"]


def weekly_fields(**changes: Any) -> ZoomMeetingFields:
    base = ZoomMeetingFields(
        topic="Biology 101 lecture",
        start_time=datetime(2030, 1, 7, 10, 0, tzinfo=PARIS),  # a Monday
        duration=50,
        recurrence=ZoomRecurrence(RecurrenceType.WEEKLY, weekly_days=(2, 4), end_times=4),
    )
    return replace(base, **changes)


# --------------------------------------------------------------------------- tokens


async def test_first_call_gets_a_token_with_account_credentials_and_basic_auth(
    zoom: ZoomClient, double: ZoomDouble
) -> None:
    double.add_user("teacher@example.edu")
    await zoom.get_user("teacher@example.edu")
    token_request, api_request = double.requests
    assert token_request.method == "POST"
    assert token_request.raw_path == "/oauth/token"
    assert dict(token_request.query) == {
        "grant_type": "account_credentials",
        "account_id": ACCOUNT_ID,
    }
    assert (
        token_request.headers["authorization"]
        == httpx.BasicAuth(CLIENT_ID, CLIENT_SECRET)._auth_header
    )
    assert api_request.headers["authorization"].startswith("Bearer eyJ")


async def test_token_is_reused_by_later_calls_and_by_clients_sharing_the_cache(
    http: httpx.AsyncClient, double: ZoomDouble, clock: Clock, waits: list[float]
) -> None:
    double.add_user("teacher@example.edu")
    tokens = ZoomTokenCache(clock=clock)
    first = make_client(http, clock, waits, tokens=tokens)
    second = make_client(http, clock, waits, tokens=tokens)
    await first.get_user("teacher@example.edu")
    await first.get_user("teacher@example.edu")
    await second.get_user("teacher@example.edu")
    assert double.token_requests == 1
    assert len({r.headers["authorization"] for r in api_requests(double)}) == 1


async def test_concurrent_callers_wait_for_one_token_fetch(
    zoom: ZoomClient, double: ZoomDouble, clock: Clock
) -> None:
    double.add_user("teacher@example.edu")
    double.latency = 0.01  # the token fetch is in flight while the others arrive
    await asyncio.gather(*(zoom.get_user("teacher@example.edu") for _ in range(10)))
    assert double.token_requests == 1
    clock.advance(3600)
    await asyncio.gather(*(zoom.get_user("teacher@example.edu") for _ in range(10)))
    assert double.token_requests == 2
    assert all(r.status == 200 for r in api_requests(double))


async def test_token_is_replaced_a_margin_before_it_expires(
    zoom: ZoomClient, double: ZoomDouble, clock: Clock
) -> None:
    double.add_user("teacher@example.edu")
    await zoom.get_user("teacher@example.edu")
    clock.advance(3600 - 301)
    await zoom.get_user("teacher@example.edu")
    assert double.token_requests == 1
    clock.advance(2)  # now inside the 300 s margin, still before expiry
    await zoom.get_user("teacher@example.edu")
    assert double.token_requests == 2
    assert [r.status for r in api_requests(double)] == [200, 200, 200]


async def test_expired_token_code_124_is_refreshed_and_the_call_retried_once(
    zoom: ZoomClient, double: ZoomDouble
) -> None:
    host = double.add_user("teacher@example.edu")
    await zoom.get_user(host.id)
    double.expire_tokens()
    user = await zoom.get_user(host.id)
    assert user.id == host.id
    calls = api_requests(double)
    assert [r.status for r in calls] == [200, 401, 200]
    assert json.loads(calls[1].response) == {"code": 124, "message": "Access token is expired."}
    assert calls[1].headers["authorization"] != calls[2].headers["authorization"]
    assert double.token_requests == 2


async def test_concurrent_401s_cause_a_single_token_refresh(
    zoom: ZoomClient, double: ZoomDouble
) -> None:
    double.add_user("teacher@example.edu")
    await zoom.get_user("teacher@example.edu")
    double.expire_tokens()
    double.latency = 0.005
    await asyncio.gather(*(zoom.get_user("teacher@example.edu") for _ in range(6)))
    assert double.token_requests == 2


async def test_a_401_that_persists_after_one_refresh_raises_auth_error(
    zoom: ZoomClient, double: ZoomDouble
) -> None:
    double.add_user("teacher@example.edu")
    double.fail_next(401, code=124, message="Invalid access token.", operation="user", times=5)
    with pytest.raises(ZoomAuthError) as caught:
        await zoom.get_user("teacher@example.edu")
    assert caught.value.status == 401
    assert caught.value.code == 124
    assert len(api_requests(double)) == 2
    assert double.token_requests == 2


async def test_wrong_client_secret_raises_auth_error_with_zooms_reason(
    http: httpx.AsyncClient, double: ZoomDouble, clock: Clock, waits: list[float]
) -> None:
    client = make_client(http, clock, waits, settings=replace(SETTINGS, client_secret="wrong"))
    with pytest.raises(ZoomAuthError, match="Invalid client_id or client_secret") as caught:
        await client.get_user("teacher@example.edu")
    assert caught.value.status == 400
    assert api_requests(double) == []


async def test_each_account_gets_its_own_cached_token(
    http: httpx.AsyncClient, double: ZoomDouble, clock: Clock, waits: list[float]
) -> None:
    double.add_user("teacher@example.edu")
    double.add_app("acct-test-2", "client-test-2", "secret-test-2")
    tokens = ZoomTokenCache(clock=clock)
    one = make_client(http, clock, waits, tokens=tokens)
    two = make_client(
        http,
        clock,
        waits,
        settings=replace(
            SETTINGS,
            account_id="acct-test-2",
            client_id="client-test-2",
            client_secret="secret-test-2",
        ),
        tokens=tokens,
    )
    for client in (one, two, one, two):
        await client.get_user("teacher@example.edu")
    assert double.token_requests == 2
    used = [r.headers["authorization"] for r in api_requests(double)]
    assert used[0] == used[2] and used[1] == used[3] and used[0] != used[1]
    accounts = {double.tokens[header[7:]][0] for header in used}
    assert accounts == {ACCOUNT_ID, "acct-test-2"}


async def test_zoom_for_government_urls_are_used_for_tokens_and_calls(
    clock: Clock, waits: list[float]
) -> None:
    gov = ZoomDouble(
        clock=clock, api_base_url=ZOOM_GOV_API_BASE_URL, oauth_token_url=ZOOM_GOV_OAUTH_TOKEN_URL
    )
    gov.add_user("teacher@agency.gov")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=gov)) as http:
        settings = replace(
            SETTINGS, api_base_url=ZOOM_GOV_API_BASE_URL, oauth_token_url=ZOOM_GOV_OAUTH_TOKEN_URL
        )
        user = await make_client(http, clock, waits, settings=settings).get_user(
            "teacher@agency.gov"
        )
        assert user.email == "teacher@agency.gov"
        assert {(r.host, r.raw_path.split("/")[1]) for r in gov.requests} == {
            ("zoomgov.com", "oauth"),
            ("api.zoomgov.com", "v2"),
        }
        # The commercial URLs do not reach a Zoom for Government account.
        with pytest.raises(ZoomAuthError):
            await make_client(http, clock, waits).get_user("teacher@agency.gov")
        assert gov.violations == [
            "POST https://zoom.us/oauth/token: not a host and path Zoom serves"
        ]


def test_settings_and_credentials_keep_the_secret_out_of_their_repr() -> None:
    assert CLIENT_SECRET not in repr(SETTINGS)
    assert CLIENT_SECRET not in repr(SETTINGS.credentials)


# --------------------------------------------------------------------------- users


async def test_get_user_by_email_or_id(zoom: ZoomClient, double: ZoomDouble) -> None:
    host = double.add_user("Teacher@Example.edu", type=2, first_name="Ada", last_name="Lovelace")
    by_email = await zoom.get_user("teacher@example.edu")
    by_id = await zoom.get_user(host.id)
    assert by_email == by_id
    assert (by_email.id, by_email.type, by_email.status, by_email.first_name) == (
        host.id,
        2,
        "active",
        "Ada",
    )
    assert by_email.raw["account_id"] == ACCOUNT_ID
    assert api_requests(double)[0].raw_path == "/v2/users/teacher%40example.edu"


async def test_unknown_user_raises_user_not_found_1001_and_find_user_returns_none(
    zoom: ZoomClient,
) -> None:
    with pytest.raises(ZoomUserNotFound) as caught:
        await zoom.get_user("nobody@example.edu")
    assert (caught.value.status, caught.value.code) == (404, 1001)
    assert await zoom.find_user("nobody@example.edu") is None


@pytest.mark.parametrize(
    ("action", "status"),
    [
        (CreateAction.CREATE, "pending"),
        (CreateAction.AUTO_CREATE, "active"),
        (CreateAction.CUST_CREATE, "active"),
        (CreateAction.SSO_CREATE, "active"),
    ],
)
async def test_create_user_with_each_action(
    zoom: ZoomClient, double: ZoomDouble, action: CreateAction, status: str
) -> None:
    user = await zoom.create_user(
        "student@example.edu",
        action=action,
        type=UserType.BASIC,
        first_name="Grace",
        last_name="Hopper",
    )
    assert (user.email, user.type, user.status, user.first_name) == (
        "student@example.edu",
        1,
        status,
        "Grace",
    )
    sent = json.loads(double.requests_for("userCreate")[0].body)
    assert sent == {
        "action": str(action),
        "user_info": {
            "email": "student@example.edu",
            "type": 1,
            "first_name": "Grace",
            "last_name": "Hopper",
        },
    }
    assert double.users[user.id].status == status


async def test_create_user_with_licensed_type(zoom: ZoomClient, double: ZoomDouble) -> None:
    user = await zoom.create_user("teacher@example.edu", type=UserType.LICENSED)
    assert double.users[user.id].type == 2


async def test_creating_an_email_already_in_the_account_raises_user_exists_1005(
    zoom: ZoomClient, double: ZoomDouble
) -> None:
    double.add_user("teacher@example.edu", status="pending")
    with pytest.raises(ZoomUserExists) as caught:
        await zoom.create_user("teacher@example.edu")
    assert (caught.value.status, caught.value.code) == (409, 1005)


async def test_creating_an_email_of_another_account_raises_user_in_another_account_1009(
    zoom: ZoomClient, double: ZoomDouble
) -> None:
    double.add_external_user("elsewhere@example.org")
    assert await zoom.find_user("elsewhere@example.org") is None  # invisible from here
    with pytest.raises(ZoomUserInAnotherAccount) as caught:
        await zoom.create_user("elsewhere@example.org")
    assert (caught.value.status, caught.value.code) == (400, 1009)
    assert "already holds an active account" in caught.value.message


async def test_update_user_type_sends_patch_and_zoom_answers_204(
    zoom: ZoomClient, double: ZoomDouble
) -> None:
    host = double.add_user("teacher@example.edu", type=1)
    await zoom.update_user_type(host.id, UserType.LICENSED)
    assert double.users[host.id].type == 2
    request = double.requests_for("userUpdate")[0]
    assert (request.method, json.loads(request.body), request.status) == ("PATCH", {"type": 2}, 204)


async def test_retired_on_prem_type_is_refused_unless_the_account_still_has_it(
    zoom: ZoomClient, double: ZoomDouble
) -> None:
    host = double.add_user("teacher@example.edu", type=1)
    with pytest.raises(ZoomInvalidRequest, match="On-prem") as caught:
        await zoom.update_user_type(host.id, UserType.ON_PREM)
    assert caught.value.code == 300
    double.on_prem_allowed = True
    await zoom.update_user_type(host.id, UserType.ON_PREM)
    assert (await zoom.get_user(host.id)).type == 3


async def test_update_type_of_unknown_user_raises_user_not_found(zoom: ZoomClient) -> None:
    with pytest.raises(ZoomUserNotFound):
        await zoom.update_user_type("nobody@example.edu", UserType.LICENSED)


async def test_zak_token_is_asked_for_with_type_zak(zoom: ZoomClient, double: ZoomDouble) -> None:
    host = double.add_user("teacher@example.edu")
    zak = await zoom.zak_token(host.id)
    assert zak.startswith(f"zak-{host.id}-")
    assert double.requests_for("userToken")[0].query == (("type", "zak"),)


async def test_group_members_are_added_by_email_or_id_thirty_a_call(
    zoom: ZoomClient, double: ZoomDouble
) -> None:
    group = double.add_group("Instructors")
    users = [double.add_user(f"user{n}@example.edu") for n in range(31)]
    members = [u.email if n % 2 else u.id for n, u in enumerate(users)]
    await zoom.add_group_members(group, members)
    calls = double.requests_for("groupMembersCreate")
    assert [len(json.loads(c.body)["members"]) for c in calls] == [30, 1]
    assert json.loads(calls[0].body)["members"][:2] == [
        {"id": users[0].id},
        {"email": users[1].email},
    ]
    assert all(group in u.group_ids for u in users)
    with pytest.raises(ZoomGroupNotFound) as caught:
        await zoom.add_group_members("no-such-group", [users[0].id])
    assert caught.value.code == 4130


# --------------------------------------------------------------------------- meetings


async def test_create_meeting_sends_utc_time_zone_alternative_hosts_and_tracking_fields(
    zoom: ZoomClient, double: ZoomDouble
) -> None:
    host = double.add_user("teacher@example.edu")
    fields = ZoomMeetingFields(
        topic="Office hours",
        start_time=datetime(2030, 3, 1, 14, 30, tzinfo=PARIS),
        duration=30,
        agenda="Questions about the lab",
        alternative_hosts=["ta@example.edu", "ta2@example.edu"],
        tracking_fields=[("Course", "BIO101"), ("Term", "2030S")],
        settings={"join_before_host": True},
    )
    meeting = await zoom.create_meeting(host.id, fields)
    sent = json.loads(double.requests_for("meetingCreate")[0].body)
    assert sent == {
        "topic": "Office hours",
        "type": 2,
        "start_time": "2030-03-01T13:30:00Z",
        "timezone": "Europe/Paris",
        "duration": 30,
        "agenda": "Questions about the lab",
        "tracking_fields": [
            {"field": "Course", "value": "BIO101"},
            {"field": "Term", "value": "2030S"},
        ],
        "settings": {
            "join_before_host": True,
            "alternative_hosts": "ta@example.edu;ta2@example.edu",
        },
    }
    assert meeting.type == MeetingType.SCHEDULED
    assert meeting.start_time == datetime(2030, 3, 1, 13, 30, tzinfo=UTC)
    assert (meeting.host_id, meeting.status, meeting.timezone) == (
        host.id,
        "waiting",
        "Europe/Paris",
    )
    assert meeting.uuid and meeting.join_url and meeting.start_url
    assert meeting.alternative_hosts == ("ta@example.edu", "ta2@example.edu")
    assert meeting.tracking_fields == (("Course", "BIO101"), ("Term", "2030S"))
    assert meeting.raw["settings"]["join_before_host"] is True


async def test_create_meeting_for_unknown_host_raises_user_not_found(zoom: ZoomClient) -> None:
    with pytest.raises(ZoomUserNotFound):
        await zoom.create_meeting("nobody@example.edu", ZoomMeetingFields(topic="x"))


async def test_a_new_meeting_needs_a_topic_and_an_aware_start_time(
    zoom: ZoomClient, double: ZoomDouble
) -> None:
    host = double.add_user("teacher@example.edu")
    with pytest.raises(ValueError, match="topic"):
        await zoom.create_meeting(host.id, ZoomMeetingFields(duration=30))
    with pytest.raises(ValueError, match="aware"):
        await zoom.create_meeting(
            host.id, ZoomMeetingFields(topic="x", start_time=datetime(2030, 1, 1, 9))
        )
    assert api_requests(double) == []


async def test_get_meeting_returns_what_was_created(zoom: ZoomClient, double: ZoomDouble) -> None:
    host = double.add_user("teacher@example.edu")
    created = await zoom.create_meeting(
        host.id,
        ZoomMeetingFields(
            topic="Seminar", start_time=datetime(2030, 2, 1, 9, tzinfo=UTC), duration=90
        ),
    )
    fetched = await zoom.get_meeting(created.id)
    assert (fetched.id, fetched.uuid, fetched.topic, fetched.duration) == (
        created.id,
        created.uuid,
        "Seminar",
        90,
    )
    assert fetched.start_url == created.start_url


async def test_update_meeting_answers_204_and_changes_only_what_was_sent(
    zoom: ZoomClient, double: ZoomDouble
) -> None:
    host = double.add_user("teacher@example.edu")
    meeting = await zoom.create_meeting(host.id, ZoomMeetingFields(topic="Seminar", duration=90))
    await zoom.update_meeting(
        meeting.id, ZoomMeetingFields(topic="Seminar (moved)", alternative_hosts=[])
    )
    update = double.requests_for("meetingUpdate")[0]
    assert (update.status, update.response) == (204, b"")
    assert json.loads(update.body) == {
        "topic": "Seminar (moved)",
        "settings": {"alternative_hosts": ""},
    }
    fetched = await zoom.get_meeting(meeting.id)
    assert (fetched.topic, fetched.duration, fetched.alternative_hosts) == (
        "Seminar (moved)",
        90,
        (),
    )


async def test_deleted_meeting_answers_meeting_not_found_3001(
    zoom: ZoomClient, double: ZoomDouble
) -> None:
    host = double.add_user("teacher@example.edu")
    meeting = await zoom.create_meeting(host.id, ZoomMeetingFields(topic="Seminar"))
    await zoom.delete_meeting(meeting.id)
    assert double.requests_for("meetingDelete")[0].status == 204
    for call in (zoom.get_meeting(meeting.id), zoom.delete_meeting(meeting.id)):
        with pytest.raises(ZoomMeetingNotFound) as caught:
            await call
        assert (caught.value.status, caught.value.code) == (404, 3001)
    with pytest.raises(ZoomMeetingNotFound):
        await zoom.update_meeting(meeting.id, ZoomMeetingFields(topic="gone"))


async def test_recurring_meeting_has_occurrences_that_can_be_changed_and_deleted_one_by_one(
    zoom: ZoomClient, double: ZoomDouble
) -> None:
    host = double.add_user("teacher@example.edu")
    meeting = await zoom.create_meeting(host.id, weekly_fields())
    sent = json.loads(double.requests_for("meetingCreate")[0].body)
    assert sent["type"] == 8
    assert sent["recurrence"] == {
        "type": 2,
        "repeat_interval": 1,
        "weekly_days": "2,4",
        "end_times": 4,
    }
    assert meeting.recurring
    assert meeting.recurrence == ZoomRecurrence(
        RecurrenceType.WEEKLY, weekly_days=(2, 4), end_times=4
    )
    # Mondays and Wednesdays at 10:00 in Paris, i.e. 09:00 UTC in January.
    assert [o.start_time for o in meeting.occurrences] == [
        datetime(2030, 1, d, 9, 0, tzinfo=UTC) for d in (7, 9, 14, 16)
    ]
    second = meeting.occurrences[1].occurrence_id
    await zoom.update_meeting(meeting.id, ZoomMeetingFields(duration=75), occurrence_id=second)
    assert double.requests_for("meetingUpdate")[0].query == (("occurrence_id", second),)
    one = await zoom.get_meeting(meeting.id, occurrence_id=second)
    assert (one.duration, one.start_time) == (75, datetime(2030, 1, 9, 9, 0, tzinfo=UTC))
    await zoom.delete_meeting(meeting.id, occurrence_id=second)
    after = await zoom.get_meeting(meeting.id)
    assert second not in [o.occurrence_id for o in after.occurrences]
    assert len(after.occurrences) == 3


async def test_monthly_recurrence_until_a_date(zoom: ZoomClient, double: ZoomDouble) -> None:
    host = double.add_user("teacher@example.edu")
    recurrence = ZoomRecurrence(
        RecurrenceType.MONTHLY,
        monthly_week=-1,
        monthly_week_day=6,
        end_date_time=datetime(2030, 4, 30, tzinfo=UTC),
    )
    meeting = await zoom.create_meeting(
        host.id,
        weekly_fields(recurrence=recurrence, start_time=datetime(2030, 1, 25, 16, tzinfo=UTC)),
    )
    # The last Friday of January to April 2030.
    assert [
        (o.start_time.month, o.start_time.day) for o in meeting.occurrences if o.start_time
    ] == [(1, 25), (2, 22), (3, 29), (4, 26)]
    assert (
        json.loads(double.requests_for("meetingCreate")[0].body)["recurrence"]["end_date_time"]
        == "2030-04-30T00:00:00Z"
    )


def test_recurrence_refuses_both_ends_and_bad_days() -> None:
    with pytest.raises(ValueError):
        ZoomRecurrence(
            RecurrenceType.DAILY, end_times=3, end_date_time=datetime(2030, 1, 1, tzinfo=UTC)
        )
    with pytest.raises(ValueError):
        ZoomRecurrence(RecurrenceType.WEEKLY, weekly_days=(0,))


async def test_list_meetings_follows_next_page_token_over_several_pages(
    http: httpx.AsyncClient, double: ZoomDouble, clock: Clock, waits: list[float]
) -> None:
    zoom = make_client(http, clock, waits, settings=replace(SETTINGS, page_size=2))
    host = double.add_user("teacher@example.edu")
    other = double.add_user("other@example.edu")
    created = [
        await zoom.create_meeting(
            host.id,
            ZoomMeetingFields(topic=f"Lecture {n}", start_time=clock.utc() + timedelta(days=n + 1)),
        )
        for n in range(5)
    ]
    await zoom.create_meeting(other.id, ZoomMeetingFields(topic="Not mine"))
    listed = [m async for m in zoom.list_meetings(host.id, MeetingListType.UPCOMING)]
    assert [m.id for m in listed] == [m.id for m in created]
    pages = double.requests_for("meetings")
    assert len(pages) == 3
    tokens = [dict(p.query).pop("next_page_token", None) for p in pages]
    assert tokens[0] is None and tokens[1] and tokens[2] and tokens[1] != tokens[2]
    assert all(
        (dict(p.query)["type"], dict(p.query)["page_size"]) == ("upcoming", "2") for p in pages
    )
    assert json.loads(pages[-1].response)["next_page_token"] == ""


async def test_list_meetings_separates_upcoming_from_previous(
    zoom: ZoomClient, double: ZoomDouble, clock: Clock
) -> None:
    host = double.add_user("teacher@example.edu")
    past = await zoom.create_meeting(
        host.id, ZoomMeetingFields(topic="Past", start_time=clock.utc() - timedelta(days=2))
    )
    future = await zoom.create_meeting(
        host.id, ZoomMeetingFields(topic="Future", start_time=clock.utc() + timedelta(days=2))
    )
    upcoming = [m.id async for m in zoom.list_meetings(host.id, MeetingListType.UPCOMING)]
    previous = [m.id async for m in zoom.list_meetings(host.id, MeetingListType.PREVIOUS)]
    assert (upcoming, previous) == ([future.id], [past.id])


async def test_tracking_fields_of_the_account_are_listed(
    zoom: ZoomClient, double: ZoomDouble
) -> None:
    double.add_tracking_field("Course", required=True, recommended_values=["BIO101", "CHEM201"])
    double.add_tracking_field("Term", visible=False)
    found = await zoom.list_tracking_fields()
    assert [(f.field, f.required, f.visible, f.recommended_values) for f in found] == [
        ("Course", True, True, ("BIO101", "CHEM201")),
        ("Term", False, False, ()),
    ]


# --------------------------------------------------------------------------- rate limits and failures


async def test_429_with_retry_after_waits_that_long_then_succeeds(
    zoom: ZoomClient, double: ZoomDouble, waits: list[float]
) -> None:
    double.add_user("teacher@example.edu")
    double.rate_limit_next(retry_after="3")
    assert (await zoom.get_user("teacher@example.edu")).email == "teacher@example.edu"
    assert waits == [3.0]
    assert [r.status for r in api_requests(double)] == [429, 200]


async def test_429_without_retry_after_backs_off_exponentially(
    zoom: ZoomClient, double: ZoomDouble, waits: list[float]
) -> None:
    double.add_user("teacher@example.edu")
    double.rate_limit_next(times=3)
    await zoom.get_user("teacher@example.edu")
    assert waits == [0.5, 1.0, 2.0]


async def test_backoff_has_jitter_between_half_and_full_delay(
    http: httpx.AsyncClient, double: ZoomDouble, clock: Clock
) -> None:
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    client = ZoomClient(
        SETTINGS, http, tokens=ZoomTokenCache(clock=clock), sleep=sleep, jitter=lambda: 0.0
    )
    double.add_user("teacher@example.edu")
    double.rate_limit_next(times=2)
    await client.get_user("teacher@example.edu")
    assert waits == [0.25, 0.5]


async def test_429_retries_are_bounded(
    zoom: ZoomClient, double: ZoomDouble, waits: list[float]
) -> None:
    double.add_user("teacher@example.edu")
    double.rate_limit_next(times=10)
    with pytest.raises(ZoomRateLimited) as caught:
        await zoom.get_user("teacher@example.edu")
    assert caught.value.status == 429 and caught.value.retry_after is None
    assert len(waits) == SETTINGS.max_rate_limit_retries
    assert len(api_requests(double)) == SETTINGS.max_rate_limit_retries + 1


async def test_a_long_retry_after_is_not_waited_for(
    zoom: ZoomClient, double: ZoomDouble, waits: list[float]
) -> None:
    double.add_user("teacher@example.edu")
    double.rate_limit_next(retry_after="3600")
    with pytest.raises(ZoomRateLimited) as caught:
        await zoom.get_user("teacher@example.edu")
    assert caught.value.retry_after == 3600.0
    assert waits == []


async def test_a_create_refused_with_429_is_retried_and_made_once(
    zoom: ZoomClient, double: ZoomDouble, waits: list[float]
) -> None:
    host = double.add_user("teacher@example.edu")
    double.rate_limit_next(retry_after="1", operation="meetingCreate")
    await zoom.create_meeting(host.id, ZoomMeetingFields(topic="Seminar"))
    assert len(double.meetings) == 1 and waits == [1.0]


def test_retry_after_in_seconds_http_date_or_iso_time() -> None:
    now = datetime(2030, 5, 30, 23, 59, 0, tzinfo=UTC)
    assert parse_retry_after("7", now) == 7.0
    assert parse_retry_after("Thu, 30 May 2030 23:59:30 GMT", now) == 30.0
    assert parse_retry_after("2030-05-31T00:00:00Z", now) == 60.0  # the form in Zoom's docs
    assert parse_retry_after("2020-01-01T00:00:00Z", now) == 0.0
    assert parse_retry_after("soon", now) is None
    assert parse_retry_after(None, now) is None


@pytest.mark.parametrize("headers", [True, False], ids=["with-headers", "message-only"])
async def test_the_hosts_daily_create_limit_raises_daily_limit_at_once(
    zoom: ZoomClient, double: ZoomDouble, clock: Clock, waits: list[float], headers: bool
) -> None:
    double.daily_meeting_limit = 2
    double.daily_limit_headers = headers
    host = double.add_user("teacher@example.edu")
    first = await zoom.create_meeting(host.id, ZoomMeetingFields(topic="One"))
    await zoom.update_meeting(first.id, ZoomMeetingFields(topic="One, renamed"))  # counts too
    with pytest.raises(ZoomDailyLimit) as caught:
        await zoom.create_meeting(host.id, ZoomMeetingFields(topic="Three"))
    limit = caught.value
    assert (limit.status, limit.code, limit.per_user) == (429, 429, True)
    assert "daily rate limit (2)" in limit.message
    assert limit.resets_at == datetime(2030, 1, 7, tzinfo=UTC)
    assert limit.retry_after == 12 * 3600
    assert isinstance(limit, ZoomRateLimited)
    assert waits == []
    clock.advance(12 * 3600)  # the next UTC day
    await zoom.create_meeting(host.id, ZoomMeetingFields(topic="Three"))


async def test_5xx_on_a_read_is_retried_with_backoff(
    zoom: ZoomClient, double: ZoomDouble, waits: list[float]
) -> None:
    double.add_user("teacher@example.edu")
    double.fail_next(503, times=2)
    await zoom.get_user("teacher@example.edu")
    assert waits == [0.5, 1.0]
    assert [r.status for r in api_requests(double)] == [503, 503, 200]


async def test_5xx_retries_are_bounded_and_raise_unavailable(
    zoom: ZoomClient, double: ZoomDouble
) -> None:
    double.add_user("teacher@example.edu")
    double.fail_next(502, times=10)
    with pytest.raises(ZoomUnavailable) as caught:
        await zoom.get_user("teacher@example.edu")
    assert caught.value.status == 502
    assert len(api_requests(double)) == SETTINGS.max_server_error_retries + 1


async def test_5xx_on_a_create_is_not_retried(
    zoom: ZoomClient, double: ZoomDouble, waits: list[float]
) -> None:
    host = double.add_user("teacher@example.edu")
    double.fail_next(500, operation="meetingCreate")
    with pytest.raises(ZoomUnavailable):
        await zoom.create_meeting(host.id, ZoomMeetingFields(topic="Seminar"))
    assert len(double.requests_for("meetingCreate")) == 1 and waits == []


async def test_timeouts_are_retried_for_reads_and_not_for_creates(
    zoom: ZoomClient, double: ZoomDouble, waits: list[float]
) -> None:
    host = double.add_user("teacher@example.edu")
    double.fail_next(timeout=True, operation="user")
    assert (await zoom.get_user(host.id)).id == host.id
    assert waits == [0.5]
    double.fail_next(timeout=True, operation="meetingCreate")
    with pytest.raises(ZoomUnavailable, match="did not answer in time"):
        await zoom.create_meeting(host.id, ZoomMeetingFields(topic="Seminar"))


async def test_token_endpoint_outage_raises_unavailable(
    zoom: ZoomClient, double: ZoomDouble
) -> None:
    double.fail_next(503, operation="token")
    with pytest.raises(ZoomUnavailable):
        await zoom.get_user("teacher@example.edu")


async def test_token_endpoint_rate_limit_raises_rate_limited(
    zoom: ZoomClient, double: ZoomDouble
) -> None:
    double.fail_next(429, code=429, headers={"Retry-After": "2"}, operation="token")
    with pytest.raises(ZoomRateLimited) as caught:
        await zoom.get_user("teacher@example.edu")
    assert caught.value.retry_after == 2.0


async def test_a_page_token_repeated_by_zoom_stops_the_listing(
    zoom: ZoomClient, double: ZoomDouble
) -> None:
    host = double.add_user("teacher@example.edu")
    looping = json.dumps(
        {"page_size": 30, "total_records": 99, "next_page_token": "same", "meetings": []}
    )
    double.fail_next(200, body=looping.encode(), operation="meetings", times=5)
    with pytest.raises(ZoomError, match="repeated a page token"):
        [m async for m in zoom.list_meetings(host.id)]
    assert len(double.requests_for("meetings")) == 2


def test_settings_refuse_what_zoom_would_not_take() -> None:
    with pytest.raises(ValueError, match="page_size"):
        replace(SETTINGS, page_size=301)
    with pytest.raises(ValueError, match="not an http"):
        replace(SETTINGS, api_base_url="api.zoom.us/v2")


def test_error_bodies_map_to_typed_errors() -> None:
    cases = {
        (404, 1001): ZoomUserNotFound,
        (400, 1010): ZoomUserNotFound,
        (409, 1005): ZoomUserExists,
        (400, 1009): ZoomUserInAnotherAccount,
        (404, 3001): ZoomMeetingNotFound,
        (404, 3301): ZoomRecordingNotFound,
        (404, 4130): ZoomGroupNotFound,
        (401, 124): ZoomAuthError,
        (400, 200): ZoomPermissionDenied,
        (400, 300): ZoomInvalidRequest,
        (404, 9999): ZoomNotFound,
        (503, 9999): ZoomUnavailable,
    }
    for (status, code), kind in cases.items():
        error = error_for(status, {"code": code, "message": "m"}, "fallback")
        assert type(error) is kind, (status, code)
        assert (error.status, error.code, error.message) == (status, code, "m")
    assert error_for(502, None, "Bad Gateway").message == "Bad Gateway"


# --------------------------------------------------------------------------- recordings, reports, UUIDs


def test_uuids_beginning_with_a_slash_or_holding_a_double_slash_are_double_encoded() -> None:
    assert encode_meeting_id(85746065) == "85746065"
    assert encode_meeting_id("gm8s9L+PTEC+FG3sFbd1Cw==") == "gm8s9L%2BPTEC%2BFG3sFbd1Cw%3D%3D"
    assert encode_meeting_id("/ajXp112QmuoKj4854875==") == "%252FajXp112QmuoKj4854875%253D%253D"
    assert encode_meeting_id("ab//cd==") == "ab%252F%252Fcd%253D%253D"
    assert encode_meeting_id("ab/cd==") == "ab%2Fcd%3D%3D"


@pytest.mark.parametrize(
    "uuid", ["/ajXp112QmuoKj4854875==", "Kd8//mQ+2TuSsyXz6jRbQw==", "plainUUIDxyz+w=="]
)
async def test_recordings_and_reports_reach_instances_whatever_their_uuid(
    zoom: ZoomClient, double: ZoomDouble, clock: Clock, uuid: str
) -> None:
    host = double.add_user("teacher@example.edu")
    meeting = await zoom.create_meeting(
        host.id, ZoomMeetingFields(topic="Lab", start_time=clock.utc() - timedelta(days=1))
    )
    double.hold_meeting(
        meeting.id, uuid=uuid, participants=[{"name": "Ada", "user_email": "ada@example.edu"}]
    )
    recording = await zoom.get_recordings(uuid)
    assert recording.uuid == uuid and recording.meeting_id == meeting.id
    people = [p async for p in zoom.list_participants(uuid)]
    assert [p.user_email for p in people] == ["ada@example.edu"]
    for request in api_requests(double)[1:]:
        assert f"/{encode_meeting_id(uuid)}/" in request.raw_path


async def test_a_uuid_encoded_once_reaches_zoom_only_without_leading_or_double_slash(
    http: httpx.AsyncClient, double: ZoomDouble, zoom: ZoomClient
) -> None:
    host = double.add_user("teacher@example.edu")
    meeting = await zoom.create_meeting(host.id, ZoomMeetingFields(topic="Lab"))
    for uuid in ("/ajXp112QmuoKj4854875==", "Kd8//mQ+2TuSsyXz6jRbQw==", "Xy7/mQ+2TuSsyXz6jRbQw=="):
        double.hold_meeting(meeting.id, uuid=uuid)
    token = api_requests(double)[0].headers["authorization"]

    async def once(uuid: str) -> httpx.Response:
        path = quote(uuid, safe="")
        return await http.get(
            f"https://api.zoom.us/v2/meetings/{path}/recordings", headers={"Authorization": token}
        )

    # Zoom's front end collapses the decoded "//": the request names another instance.
    for uuid in ("/ajXp112QmuoKj4854875==", "Kd8//mQ+2TuSsyXz6jRbQw=="):
        response = await once(uuid)
        assert (response.status_code, response.json()["code"]) == (404, 3301)
    # A single slash inside survives one encoding, as Zoom's rule implies.
    response = await once("Xy7/mQ+2TuSsyXz6jRbQw==")
    assert (response.status_code, response.json()["uuid"]) == (200, "Xy7/mQ+2TuSsyXz6jRbQw==")


async def test_recordings_have_files_with_play_and_download_links(
    zoom: ZoomClient, double: ZoomDouble, clock: Clock
) -> None:
    host = double.add_user("teacher@example.edu")
    meeting = await zoom.create_meeting(
        host.id, ZoomMeetingFields(topic="Lab", start_time=clock.utc() - timedelta(hours=3))
    )
    double.hold_meeting(meeting.id, recorded=False)
    latest = double.hold_meeting(meeting.id, start_time=clock.utc() - timedelta(hours=1))
    recording = await zoom.get_recordings(meeting.id)  # a meeting number: its latest instance
    assert recording.uuid == latest.uuid
    assert [(f.file_type, f.recording_type) for f in recording.files] == [
        ("MP4", "shared_screen_with_speaker_view"),
        ("M4A", "audio_only"),
    ]
    assert all(f.play_url and f.download_url and f.file_size for f in recording.files)
    assert recording.total_size == sum(f.file_size or 0 for f in recording.files)


async def test_deleted_recording_answers_recording_not_found_3301(
    zoom: ZoomClient, double: ZoomDouble, clock: Clock
) -> None:
    host = double.add_user("teacher@example.edu")
    meeting = await zoom.create_meeting(host.id, ZoomMeetingFields(topic="Lab"))
    instance = double.hold_meeting(meeting.id)
    await zoom.delete_recordings(instance.uuid)
    delete = double.requests_for("recordingDelete")[0]
    assert (delete.status, delete.query) == (204, (("action", "trash"),))
    with pytest.raises(ZoomRecordingNotFound) as caught:
        await zoom.get_recordings(instance.uuid)
    assert (caught.value.status, caught.value.code) == (404, 3301)
    with pytest.raises(ZoomRecordingNotFound):
        await zoom.delete_recordings(instance.uuid, trash=False)


async def test_user_recordings_are_listed_in_month_windows_and_pages(
    http: httpx.AsyncClient, double: ZoomDouble, clock: Clock, waits: list[float]
) -> None:
    zoom = make_client(http, clock, waits, settings=replace(SETTINGS, page_size=2))
    host = double.add_user("teacher@example.edu")
    meeting = await zoom.create_meeting(host.id, ZoomMeetingFields(topic="Lab"))
    days = [datetime(2029, 11, d, 15, tzinfo=UTC) for d in (2, 5, 9)] + [
        datetime(2029, 12, 20, 15, tzinfo=UTC)
    ]
    for day in days:
        double.hold_meeting(meeting.id, start_time=day)
    found = [
        r
        async for r in zoom.list_user_recordings(
            host.id, from_date=date(2029, 11, 1), to_date=date(2029, 12, 31)
        )
    ]
    assert sorted(r.start_time for r in found if r.start_time) == days
    windows = [
        (dict(r.query)["from"], dict(r.query)["to"]) for r in double.requests_for("recordingsList")
    ]
    assert windows == [
        ("2029-11-01", "2029-11-30"),
        ("2029-11-01", "2029-11-30"),
        ("2029-12-01", "2029-12-30"),
        ("2029-12-31", "2029-12-31"),
    ]


async def test_participants_report_is_read_over_several_pages(
    http: httpx.AsyncClient, double: ZoomDouble, clock: Clock, waits: list[float]
) -> None:
    zoom = make_client(http, clock, waits, settings=replace(SETTINGS, page_size=2))
    host = double.add_user("teacher@example.edu")
    meeting = await zoom.create_meeting(host.id, ZoomMeetingFields(topic="Lab"))
    start = clock.utc() - timedelta(hours=2)
    people = [
        {
            "name": f"Student {n}",
            "user_email": f"s{n}@example.edu",
            "join_time": start,
            "leave_time": start + timedelta(minutes=10 * n + 5),
        }
        for n in range(5)
    ]
    instance = double.hold_meeting(meeting.id, start_time=start, participants=people)
    report = [p async for p in zoom.list_participants(instance.uuid)]
    assert [(p.name, p.duration) for p in report] == [
        (f"Student {n}", 600 * n + 300) for n in range(5)
    ]
    assert report[0].join_time == start.replace(microsecond=0)
    assert len(double.requests_for("reportMeetingParticipants")) == 3


async def test_report_of_an_unknown_meeting_raises_meeting_not_found(zoom: ZoomClient) -> None:
    with pytest.raises(ZoomMeetingNotFound):
        [p async for p in zoom.list_participants(12345678901)]


async def test_past_instances_list_the_uuid_of_each_held_occurrence(
    zoom: ZoomClient, double: ZoomDouble, clock: Clock
) -> None:
    host = double.add_user("teacher@example.edu")
    meeting = await zoom.create_meeting(host.id, weekly_fields())
    first = double.hold_meeting(meeting.id, start_time=datetime(2030, 1, 7, 9, tzinfo=UTC))
    second = double.hold_meeting(meeting.id, start_time=datetime(2030, 1, 9, 9, tzinfo=UTC))
    instances = await zoom.past_instances(meeting.id)
    assert [(i.uuid, i.start_time) for i in instances] == [
        (first.uuid, first.start_time),
        (second.uuid, second.start_time),
    ]


# --------------------------------------------------------------------------- the double's schema checks


async def test_the_double_refuses_a_misspelt_request_field(
    http: httpx.AsyncClient, double: ZoomDouble, zoom: ZoomClient
) -> None:
    host = double.add_user("teacher@example.edu")
    await zoom.get_user(host.id)
    token = api_requests(double)[0].headers["authorization"]
    response = await http.post(
        f"https://api.zoom.us/v2/users/{host.id}/meetings",
        json={"topic": "x", "settings": {"alternate_hosts": "ta@example.edu"}},
        headers={"Authorization": token},
    )
    assert response.status_code == 400
    assert response.json() == {
        "code": 300,
        "message": "Validation Failed.",
        "errors": [
            {"field": "settings.alternate_hosts", "message": "property not in Zoom's document"}
        ],
    }
    assert double.violations == [
        "POST /users/{userId}/meetings request body.settings.alternate_hosts: property not in Zoom's document"
    ]
    assert double.meetings == {}
    double.violations.clear()


@pytest.mark.parametrize(
    ("method", "path", "body", "complaint"),
    [
        (
            "POST",
            "/users",
            {"user_info": {"email": "a@b.cd", "type": 1}},
            "body.action: required property missing",
        ),
        (
            "POST",
            "/users",
            {"action": "invite", "user_info": {"email": "a@b.cd", "type": 1}},
            "'invite' is not one of",
        ),
        (
            "POST",
            "/users",
            {"action": "create", "user_info": {"email": "a@b.cd", "type": "1"}},
            "expected integer, got string",
        ),
        (
            "POST",
            "/users",
            {"action": "create", "user_info": {"email": "a@b.cd"}},
            "user_info.type: required property missing",
        ),
        (
            "PATCH",
            "/meetings/not-a-number",
            {"topic": "x"},
            "path meetingId: 'not-a-number' is not a integer",
        ),
        ("GET", "/users/x/meetings?type=soon", None, "query type: 'soon' is not one of"),
        (
            "GET",
            "/users/x/meetings?page_size=301",
            None,
            "query page_size: 301 is above the maximum 300",
        ),
        ("GET", "/users/x/token?kind=zak", None, "query kind: parameter not in Zoom's document"),
        ("PUT", "/users/x", {"type": 2}, "method not allowed"),
        ("GET", "/users/x/webinars/y", None, "unknown path"),
    ],
)
async def test_the_double_refuses_requests_outside_zooms_document(
    http: httpx.AsyncClient,
    double: ZoomDouble,
    zoom: ZoomClient,
    method: str,
    path: str,
    body: Any,
    complaint: str,
) -> None:
    double.add_user("teacher@example.edu")
    await zoom.get_user("teacher@example.edu")
    token = api_requests(double)[0].headers["authorization"]
    response = await http.request(
        method, "https://api.zoom.us/v2" + path, json=body, headers={"Authorization": token}
    )
    assert response.status_code in (400, 404)
    assert len(double.violations) == 1 and complaint in double.violations[0], double.violations
    double.violations.clear()


async def test_the_double_refuses_requests_without_a_valid_token(
    http: httpx.AsyncClient, double: ZoomDouble
) -> None:
    host = double.add_user("teacher@example.edu")
    for headers in ({}, {"Authorization": "Bearer made-up"}):
        response = await http.get(f"https://api.zoom.us/v2/users/{host.id}", headers=headers)
        assert (response.status_code, response.json()) == (
            401,
            {"code": 124, "message": "Invalid access token."},
        )


async def test_the_double_raises_when_its_own_answer_breaks_zooms_document(
    zoom: ZoomClient, double: ZoomDouble, monkeypatch: pytest.MonkeyPatch
) -> None:
    host = double.add_user("teacher@example.edu")
    original = double._user_json

    def broken(user: Any) -> dict[str, Any]:
        return {**original(user), "type": "Licensed"}

    monkeypatch.setattr(double, "_user_json", broken)
    with pytest.raises(SchemaViolation, match=r"response body.type: expected integer, got string"):
        await zoom.get_user(host.id)


def test_the_checker_reports_each_kind_of_response_problem() -> None:
    checker = ZoomApiChecker()
    meeting = checker.operation("meeting")
    body = {
        "id": "85746065",
        "status": "finished",
        "topic": 7,
        "mystery": True,
        "settings": {"audio": "loud"},
    }
    problems = checker.check_response(meeting, 200, json.dumps(body).encode(), "application/json")
    assert sorted(p.split("response ")[1] for p in problems) == [
        "body.id: expected integer, got string '85746065'",
        "body.mystery: property not in Zoom's document",
        "body.settings.audio: 'loud' is not one of ['both', 'telephony', 'voip', 'thirdParty']",
        "body.status: 'finished' is not one of ['waiting', 'started']",
        "body.topic: expected string, got integer 7",
    ]
    assert checker.check_response(meeting, 201, b"{}", "application/json") == [
        "GET /meetings/{meetingId}: status 201 is not documented"
    ]
    update = checker.operation("meetingUpdate")
    assert checker.check_response(update, 204, b"", None) == []
    assert checker.check_response(update, 204, b"{}", None) != []
    assert (
        "error code 1005 is not documented"
        in checker.check_response(
            update, 404, b'{"code": 1005, "message": "x"}', "application/json"
        )[0]
    )
    assert (
        checker.check_response(update, 404, b'{"code": 3001, "message": "x"}', "application/json")
        == []
    )
    assert (
        checker.check_response(update, 401, b'{"code": 124, "message": "x"}', "application/json")
        == []
    )


@pytest.mark.parametrize("tolerance", sorted(TOLERANCES))
def test_every_tolerated_gap_is_needed(tolerance: str) -> None:
    """Without each named tolerance, something real Zoom does fails the check."""
    lenient = ZoomApiChecker()
    if tolerance == "parameter-style-casing":
        with pytest.raises(ValueError, match="style='SIMPLE'"):
            ZoomApiChecker(tolerances=set(TOLERANCES) - {tolerance})
        return
    strict = ZoomApiChecker(tolerances=set(TOLERANCES) - {tolerance})
    body: Any

    def request(checker: ZoomApiChecker, method: str, segments: list[str], body: Any) -> list[str]:
        return checker.check_request(
            method, segments, [], json.dumps(body).encode(), "application/json"
        ).violations

    if tolerance == "create-meeting-response-fields":
        created = json.dumps({"id": 1, "uuid": "u==", "host_id": "h", "status": "waiting"}).encode()
        op = "meetingCreate"
        assert strict.check_response(strict.operation(op), 201, created, "application/json")
        assert not lenient.check_response(lenient.operation(op), 201, created, "application/json")
    elif tolerance == "retired-user-type-3":
        body = {"type": 3}
        assert request(strict, "PATCH", ["users", "u"], body)
        assert not request(lenient, "PATCH", ["users", "u"], body)
    elif tolerance == "weekly-days-list":
        body = {"topic": "t", "type": 8, "recurrence": {"type": 2, "weekly_days": "2,4"}}
        assert request(strict, "POST", ["users", "u", "meetings"], body)
        assert not request(lenient, "POST", ["users", "u", "meetings"], body)
        bad = {"topic": "t", "type": 8, "recurrence": {"type": 2, "weekly_days": "2,9"}}
        assert request(lenient, "POST", ["users", "u", "meetings"], bad)
    elif tolerance == "local-start-time":
        body = {"topic": "t", "start_time": "2030-01-07T10:00:00", "timezone": "Europe/Paris"}
        assert request(strict, "POST", ["users", "u", "meetings"], body)
        assert not request(lenient, "POST", ["users", "u", "meetings"], body)
    elif tolerance == "array-maximum":
        body = {"members": [{"id": str(n)} for n in range(31)]}
        assert not request(strict, "POST", ["groups", "g", "members"], body)
        assert request(lenient, "POST", ["groups", "g", "members"], body) == [
            "POST /groups/{groupId}/members request body.members: more than 30 items"
        ]
    elif tolerance == "common-errors":
        expired = b'{"code": 124, "message": "Access token is expired."}'
        assert strict.check_response(strict.operation("user"), 401, expired, "application/json")
        assert not lenient.check_response(
            lenient.operation("user"), 401, expired, "application/json"
        )
    else:  # pragma: no cover - a new tolerance needs a case here
        pytest.fail(f"no test for tolerance {tolerance}")


def test_vendored_subset_is_cut_faithfully_from_zooms_document() -> None:
    if not REFERENCE_SPEC.exists():
        pytest.skip(f"Zoom's document is not at {REFERENCE_SPEC}")
    assert subset_from_file(REFERENCE_SPEC) == load_subset()
    assert load_subset()["x-source"]["copied_from"] == "shared/reference/zoom-meeting-api-spec.json"
    assert SUBSET_PATH.stat().st_size < 150_000
