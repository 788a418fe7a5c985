"""The Canvas client: tokens (whose, refreshed when), throttling, failures, pagination."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from ltipro_canvas.api import QUOTA_GATE, CanvasClient, form_pairs, throttle_wait
from ltipro_canvas.testing import CanvasDouble, canvas_api, canvas_http, canvas_settings

from ltipro.context import CourseIdentifiers
from ltipro.lmsapi import (
    LmsApi,
    LmsNotAuthorized,
    LmsNotConfigured,
    LmsNotFound,
    LmsThrottled,
    LmsUnavailable,
    MemoryTokenStore,
    StoredToken,
)

COURSE = CourseIdentifiers("ctx-1", lms_course_id="3", domain="canvas.test")
HOST_LTI_ID = "e77934e7-4e98-4055-b4b4-3a8431e4f22a"  # the host's LTI user id (their sub)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def canvas(clock: Clock) -> CanvasDouble:
    double = CanvasDouble(clock=clock)
    double.add_course("3", sections=["31"], groups=["41"], teachers=["7"])
    return double


@pytest.fixture
async def http(canvas: CanvasDouble) -> AsyncIterator[httpx.AsyncClient]:
    async with canvas_http(canvas) as client:
        yield client


def connected(canvas: CanvasDouble, *, expired: bool = False) -> MemoryTokenStore:
    """The host's grant as the OAuth callback stores it."""
    access, refresh = canvas.issue_token("7")
    expires = datetime.now(UTC) + (timedelta(seconds=-5) if expired else timedelta(hours=1))
    token = StoredToken(access, refresh, expires, extra={"canvas_user_id": "7"})
    return MemoryTokenStore({HOST_LTI_ID: token})


def token_requests(canvas: CanvasDouble) -> list[str]:
    return [dict(r.form)["grant_type"] for r in canvas.requests if r.path == "/login/oauth2/token"]


# -- whose token -------------------------------------------------------------------------


async def test_the_hosts_own_grant_is_used_first(
    canvas: CanvasDouble, http: httpx.AsyncClient
) -> None:
    tokens = connected(canvas)
    admin, _ = canvas.issue_token("99", expires_in=None)
    settings = canvas_settings(canvas, admin_access_token=admin)
    api = canvas_api(canvas, http, user_id=HOST_LTI_ID, tokens=tokens, settings=settings)
    await CanvasClient(api, COURSE).get("/api/v1/courses/3/sections")
    stored = tokens.tokens[HOST_LTI_ID]
    assert canvas.requests[-1].token == stored.access_token


async def test_without_a_grant_the_admin_token_is_used(
    canvas: CanvasDouble, http: httpx.AsyncClient
) -> None:
    admin, _ = canvas.issue_token("7", expires_in=None)
    settings = canvas_settings(canvas, admin_access_token=admin)
    api = canvas_api(canvas, http, user_id="someone-else", settings=settings)
    sections = await CanvasClient(api, COURSE).get_all("/api/v1/courses/3/sections")
    assert [s["id"] for s in sections] == [31]
    assert canvas.requests[-1].token == admin


async def test_without_any_token_the_message_says_how_to_connect(
    canvas: CanvasDouble, http: httpx.AsyncClient
) -> None:
    api = canvas_api(canvas, http, user_id=HOST_LTI_ID)
    with pytest.raises(LmsNotAuthorized, match="Connect Canvas") as caught:
        await CanvasClient(api, COURSE).get("/api/v1/courses/3/sections")
    assert "admin_access_token" in str(caught.value)
    assert canvas.requests == []


# -- refreshing ------------------------------------------------------------------------------


async def test_an_expired_grant_is_refreshed_before_the_call_and_kept(
    canvas: CanvasDouble, http: httpx.AsyncClient
) -> None:
    tokens = connected(canvas, expired=True)
    old = tokens.tokens[HOST_LTI_ID]
    api = canvas_api(canvas, http, user_id=HOST_LTI_ID, tokens=tokens)
    await CanvasClient(api, COURSE).get("/api/v1/courses/3/groups")

    assert token_requests(canvas) == ["refresh_token"]
    refresh = next(r for r in canvas.requests if r.path == "/login/oauth2/token")
    assert dict(refresh.form) == {
        "grant_type": "refresh_token",
        "refresh_token": old.refresh_token,
        "client_id": canvas.client_id,
        "client_secret": canvas.client_secret,
    }
    new = tokens.tokens[HOST_LTI_ID]
    assert new.access_token != old.access_token
    assert new.refresh_token == old.refresh_token  # Canvas keeps the refresh token
    assert new.expires_at is not None and not new.expired()
    assert new.extra == {"canvas_user_id": "7"}
    assert canvas.requests[-1].token == new.access_token


async def test_many_calls_at_once_refresh_the_grant_only_once(
    canvas: CanvasDouble, http: httpx.AsyncClient
) -> None:
    tokens = connected(canvas, expired=True)
    api = canvas_api(canvas, http, user_id=HOST_LTI_ID, tokens=tokens)
    client = CanvasClient(api, COURSE)
    await asyncio.gather(*(client.get("/api/v1/courses/3/groups") for _ in range(8)))
    assert token_requests(canvas) == ["refresh_token"]
    assert len(canvas.api_requests()) == 8
    assert {r.status for r in canvas.api_requests()} == {200}


async def test_a_token_canvas_refuses_is_refreshed_once_and_the_call_repeated(
    canvas: CanvasDouble, http: httpx.AsyncClient
) -> None:
    tokens = connected(canvas)
    del canvas.tokens[tokens.tokens[HOST_LTI_ID].access_token]  # Canvas dropped it early
    api = canvas_api(canvas, http, user_id=HOST_LTI_ID, tokens=tokens)
    groups = await CanvasClient(api, COURSE).get("/api/v1/courses/3/groups")
    assert [g["id"] for g in groups] == [41]
    assert [r.status for r in canvas.api_requests()] == [401, 200]
    assert token_requests(canvas) == ["refresh_token"]


async def test_a_revoked_grant_is_forgotten_and_the_host_told_to_connect_again(
    canvas: CanvasDouble, http: httpx.AsyncClient
) -> None:
    tokens = connected(canvas)
    canvas.revoke("7")
    api = canvas_api(canvas, http, user_id=HOST_LTI_ID, tokens=tokens)
    with pytest.raises(LmsNotAuthorized, match="Connect Canvas"):
        await CanvasClient(api, COURSE).get("/api/v1/courses/3/groups")
    assert tokens.tokens == {}
    assert token_requests(canvas) == ["refresh_token"]


async def test_a_wrong_developer_key_secret_names_the_settings_to_check(
    canvas: CanvasDouble, http: httpx.AsyncClient
) -> None:
    tokens = connected(canvas, expired=True)
    settings = canvas_settings(canvas, api_client_secret="not-the-secret")
    api = canvas_api(canvas, http, user_id=HOST_LTI_ID, tokens=tokens, settings=settings)
    with pytest.raises(LmsNotConfigured, match="api_client_secret"):
        await CanvasClient(api, COURSE).get("/api/v1/courses/3/groups")
    assert HOST_LTI_ID in tokens.tokens  # the grant itself is not at fault


async def test_a_bad_admin_token_is_not_refreshed_and_says_so(
    canvas: CanvasDouble, http: httpx.AsyncClient
) -> None:
    api = canvas_api(canvas, http, settings=canvas_settings(canvas, admin_access_token="nope"))
    with pytest.raises(LmsNotAuthorized, match="admin_access_token"):
        await CanvasClient(api, COURSE).get("/api/v1/courses/3/groups")
    assert token_requests(canvas) == []


async def test_a_user_who_may_not_manage_the_course_is_told_apart_from_a_bad_token(
    canvas: CanvasDouble, http: httpx.AsyncClient
) -> None:
    student, _ = canvas.issue_token("55", expires_in=None)
    api = canvas_api(canvas, http, settings=canvas_settings(canvas, admin_access_token=student))
    with pytest.raises(LmsNotAuthorized, match="may not do this"):
        await CanvasClient(api, COURSE).get("/api/v1/courses/3/groups")
    assert token_requests(canvas) == []


# -- throttling and failures -------------------------------------------------------------------


@pytest.fixture
def admin_api(canvas: CanvasDouble, http: httpx.AsyncClient) -> LmsApi:
    admin, _ = canvas.issue_token("7", expires_in=None)
    api: LmsApi = canvas_api(
        canvas, http, settings=canvas_settings(canvas, admin_access_token=admin)
    )
    return api


async def test_canvas_403_rate_limit_exceeded_is_throttling_with_a_wait_from_the_quota(
    canvas: CanvasDouble, admin_api: LmsApi, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(QUOTA_GATE, "clock", lambda: clock.now)
    canvas.throttle_like_canvas(maximum=120.0, outflow=10.0, up_front_cost=50.0, cost=30.0)
    client = CanvasClient(admin_api, COURSE)
    for _ in range(3):  # the bucket fills by 30 a request: 30, 60, 90
        await client.get("/api/v1/courses/3/groups")
    assert canvas.requests[-1].status == 200
    with pytest.raises(LmsThrottled, match="rate limit exceeded") as caught:
        await client.get("/api/v1/courses/3/groups")  # 90 + 50 up front > 120
    assert canvas.requests[-1].status == 403
    # 30 left, 51 needed (1 + the pre-flight 50): 21 units at 10 a second.
    assert caught.value.retry_after == pytest.approx(2.1)
    clock.now += caught.value.retry_after
    assert await client.get("/api/v1/courses/3/groups")


async def test_the_throttled_answer_is_read_as_canvas_sends_it() -> None:
    request = httpx.Request("GET", "https://canvas.test/api/v1/courses")
    throttled = httpx.Response(
        403,
        content=b"403 Forbidden (Rate Limit Exceeded)",
        headers={"X-Rate-Limit-Remaining": "-12.5", "X-Request-Cost": "0"},
        request=request,
    )
    assert throttle_wait(throttled) == pytest.approx((1 + 50 + 12.5) / 10)
    unknown = httpx.Response(403, content=b"403 Forbidden (Rate Limit Exceeded)", request=request)
    assert throttle_wait(unknown) == 30.0
    assert throttle_wait(httpx.Response(429, headers={"Retry-After": "7"}, request=request)) == 7


async def test_429_with_retry_after_is_throttling_for_that_long(
    canvas: CanvasDouble, admin_api: LmsApi
) -> None:
    canvas.fail_next(429, headers={"Retry-After": "7"})
    with pytest.raises(LmsThrottled) as caught:
        await CanvasClient(admin_api, COURSE).get("/api/v1/courses/3/groups")
    assert caught.value.retry_after == 7


async def test_5xx_and_timeouts_are_unavailability(canvas: CanvasDouble, admin_api: LmsApi) -> None:
    client = CanvasClient(admin_api, COURSE)
    canvas.fail_next(502)
    with pytest.raises(LmsUnavailable, match="502"):
        await client.get("/api/v1/courses/3/groups")
    canvas.fail_next(timeout=True)
    with pytest.raises(LmsUnavailable, match="timed out"):
        await client.get("/api/v1/courses/3/groups")
    assert await client.get("/api/v1/courses/3/groups")


async def test_a_plain_403_is_not_taken_for_throttling(
    canvas: CanvasDouble, admin_api: LmsApi
) -> None:
    canvas.fail_next(403, body=b'{"errors":[{"message":"forbidden"}]}')
    with pytest.raises(LmsNotAuthorized):
        await CanvasClient(admin_api, COURSE).get("/api/v1/courses/3/groups")


async def test_a_missing_course_is_not_found(canvas: CanvasDouble, admin_api: LmsApi) -> None:
    with pytest.raises(LmsNotFound):
        await CanvasClient(admin_api, COURSE).get("/api/v1/courses/404/groups")


# -- pagination and parameters -------------------------------------------------------------


async def test_get_all_follows_next_links_and_nothing_else(
    canvas: CanvasDouble, admin_api: LmsApi
) -> None:
    canvas.add_course("8", sections=[str(n) for n in range(1, 8)], teachers=["7"])
    sections = await CanvasClient(admin_api, COURSE).get_all(
        "/api/v1/courses/8/sections", per_page=3
    )
    assert [s["id"] for s in sections] == list(range(1, 8))
    assert [dict(r.query).get("page") for r in canvas.api_requests()] == [None, "2", "3"]


async def test_a_next_link_to_another_host_is_not_followed(
    canvas: CanvasDouble, admin_api: LmsApi
) -> None:
    async def evil(request: object) -> tuple[int, object, dict[str, str]]:
        return 200, [1], {"link": '<https://evil.example/api/v1/x>; rel="next"'}

    canvas.route("GET", r"/api/v1/evil", evil)
    with pytest.raises(LmsNotAuthorized, match=r"evil\.example"):
        await CanvasClient(admin_api, COURSE).get_all("/api/v1/evil")


def test_parameters_are_nested_the_way_canvas_reads_them() -> None:
    pairs = form_pairs(
        {
            "calendar_event": {
                "child_event_data": {"0": {"context_code": "course_section_1"}},
                "all_day": False,
                "skipped": None,
            },
            "context_codes": ["course_1", "group_2"],
        }
    )
    assert pairs == [
        ("calendar_event[child_event_data][0][context_code]", "course_section_1"),
        ("calendar_event[all_day]", "false"),
        ("context_codes[]", "course_1"),
        ("context_codes[]", "group_2"),
    ]


async def test_the_client_is_usable_without_a_course_for_account_calls(
    canvas: CanvasDouble, admin_api: LmsApi
) -> None:
    client = CanvasClient(admin_api, base_url="https://canvas.test/")
    assert client.base_url == "https://canvas.test"
    with pytest.raises(LmsNotConfigured):
        _ = client.course_id
    assert await client.get("/api/v1/courses/3/sections")
    moved = replace(admin_api, settings={**admin_api.settings, "api_base_url": None})
    with pytest.raises(LmsNotConfigured, match="api_base_url"):
        CanvasClient(moved)


async def test_after_a_throttled_answer_the_token_rests_without_asking_canvas_again(
    canvas: CanvasDouble, admin_api: LmsApi, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(QUOTA_GATE, "clock", lambda: clock.now)
    canvas.throttle_like_canvas(maximum=120.0, outflow=10.0, up_front_cost=50.0, cost=30.0)
    client = CanvasClient(admin_api, COURSE)
    for _ in range(3):
        await client.get("/api/v1/courses/3/groups")
    with pytest.raises(LmsThrottled) as first:
        await client.get("/api/v1/courses/3/groups")
    sent = len(canvas.requests)
    clock.now += 1.0
    with pytest.raises(LmsThrottled, match="not calling again") as gated:
        await client.get("/api/v1/courses/3/sections")
    assert len(canvas.requests) == sent  # known in advance: Canvas was not asked
    assert gated.value.retry_after == pytest.approx(first.value.retry_after - 1.0)
    clock.now += gated.value.retry_after
    assert await client.get("/api/v1/courses/3/groups")
    assert len(canvas.requests) == sent + 1
