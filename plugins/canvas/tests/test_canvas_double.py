"""The Canvas double refuses what Canvas refuses, and throttles and paginates like Canvas."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from ltipro_canvas.testing import CanvasDouble, canvas_http, rails_params

BASE = "https://canvas.test"


class Clock:
    def __init__(self) -> None:
        self.now = 500.0

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
        token, _ = canvas.issue_token("7", expires_in=None)
        client.headers["Authorization"] = f"Bearer {token}"
        yield client


def event(**fields: str) -> dict[str, str]:
    base = {
        "calendar_event[context_code]": "course_3",
        "calendar_event[title]": "Lab",
        "calendar_event[start_at]": "2026-03-02T15:00:00Z",
        "calendar_event[end_at]": "2026-03-02T16:00:00Z",
    }
    base.update({f"calendar_event[{k}]": v for k, v in fields.items()})
    return base


async def test_authentication_failures_answer_as_canvas_does(canvas: CanvasDouble) -> None:
    async with canvas_http(canvas) as client:
        anonymous = await client.get(f"{BASE}/api/v1/courses/3/sections")
        assert anonymous.status_code == 401
        assert "www-authenticate" not in anonymous.headers
        assert anonymous.json()["errors"][0]["message"] == "user authorization required"

        bad = await client.get(
            f"{BASE}/api/v1/courses/3/sections", headers={"Authorization": "Bearer nope"}
        )
        assert bad.status_code == 401
        assert bad.headers["www-authenticate"] == 'Bearer realm="canvas-lms"'
        assert bad.json() == {"errors": [{"message": "Invalid access token."}]}

        student, _ = canvas.issue_token("55")
        refused = await client.get(
            f"{BASE}/api/v1/courses/3/sections", headers={"Authorization": f"Bearer {student}"}
        )
        assert refused.status_code == 401 and "www-authenticate" not in refused.headers
        assert refused.json()["status"] == "unauthorized"


async def test_an_expired_token_is_refused_until_refreshed(
    canvas: CanvasDouble, clock: Clock
) -> None:
    access, refresh = canvas.issue_token("7")
    async with canvas_http(canvas) as client:
        clock.now += 3601
        expired = await client.get(
            f"{BASE}/api/v1/courses/3/groups", headers={"Authorization": f"Bearer {access}"}
        )
        assert expired.status_code == 401 and "www-authenticate" in expired.headers
        renewed = await client.post(
            f"{BASE}/login/oauth2/token",
            data={
                "grant_type": "refresh_token",
                "refresh_token": str(refresh),
                "client_id": canvas.client_id,
                "client_secret": canvas.client_secret,
            },
        )
        body = renewed.json()
        assert renewed.status_code == 200 and "refresh_token" not in body
        assert body["expires_in"] == 3600 and body["user"]["id"] == 7
        ok = await client.get(
            f"{BASE}/api/v1/courses/3/groups",
            headers={"Authorization": f"Bearer {body['access_token']}"},
        )
        assert ok.status_code == 200


async def test_a_create_without_or_with_an_unknown_context_is_not_found(
    http: httpx.AsyncClient,
) -> None:
    missing = {k: v for k, v in event().items() if "context_code" not in k}
    for data in (missing, event(context_code="course_999"), event(context_code="user_7x")):
        answer = await http.post(f"{BASE}/api/v1/calendar_events", data=data)
        assert answer.status_code == 404
        assert answer.json() == {"errors": [{"message": "The specified resource does not exist."}]}


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"start_at": "next tuesday"}, "start_at"),
        ({"end_at": "2026-03-02T14:00:00Z"}, "end_at"),
        ({"title": "x" * 256}, "title"),
        ({"child_event_data][0][context_code": "course_section_99"}, "child_event_data"),
    ],
)
async def test_malformed_events_are_refused_with_canvas_error_json(
    http: httpx.AsyncClient, canvas: CanvasDouble, fields: dict[str, str], field: str
) -> None:
    data = event(**fields)
    if field == "child_event_data":
        data["calendar_event[child_event_data][0][start_at]"] = "2026-03-02T15:00:00Z"
        data["calendar_event[child_event_data][0][end_at]"] = "2026-03-02T16:00:00Z"
    answer = await http.post(f"{BASE}/api/v1/calendar_events", data=data)
    assert answer.status_code == 400
    assert field in answer.json()["errors"]
    assert canvas.events_in("course_3") == []


async def test_deleted_events_are_gone_and_section_events_cannot_change_calendar(
    http: httpx.AsyncClient,
) -> None:
    data = event()
    data["calendar_event[child_event_data][0][context_code]"] = "course_section_31"
    data["calendar_event[child_event_data][0][start_at]"] = "2026-03-02T15:00:00Z"
    data["calendar_event[child_event_data][0][end_at]"] = "2026-03-02T16:00:00Z"
    made = (await http.post(f"{BASE}/api/v1/calendar_events", data=data)).json()
    assert made["child_events_count"] == 1 and made["hidden"] is True
    url = f"{BASE}/api/v1/calendar_events/{made['id']}"
    moved = await http.put(url, data={"calendar_event[context_code]": "group_41"})
    assert moved.status_code == 400
    assert "section-specific times" in moved.json()["message"]
    deleted = await http.request("DELETE", url, data={"cancel_reason": "Snow day"})
    assert deleted.status_code == 200 and deleted.json()["workflow_state"] == "deleted"
    assert (await http.put(url, data={"calendar_event[title]": "x"})).status_code == 404
    assert (await http.get(url)).status_code == 404
    assert (await http.delete(url)).status_code == 404


async def test_the_listing_checks_dates_and_pages_ten_at_a_time_by_default(
    http: httpx.AsyncClient,
) -> None:
    for n in range(12):
        answer = await http.post(
            f"{BASE}/api/v1/calendar_events",
            data=event(start_at=f"2026-03-02T{n:02d}:00:00Z", end_at=f"2026-03-02T{n:02d}:30:00Z"),
        )
        assert answer.status_code == 201
    bad = await http.get(
        f"{BASE}/api/v1/calendar_events",
        params={"context_codes[]": "course_3", "start_date": "soon"},
    )
    assert bad.status_code == 400
    assert bad.json() == {
        "errors": {"start_date": "Invalid date or invalid datetime for start_date"}
    }
    params = {"context_codes[]": "course_3", "start_date": "2026-03-02", "end_date": "2026-03-02"}
    first = await http.get(f"{BASE}/api/v1/calendar_events", params=params)
    assert len(first.json()) == 10
    assert 'rel="next"' in first.headers["link"] and 'rel="last"' in first.headers["link"]
    second = await http.get(first.links["next"]["url"])
    assert len(second.json()) == 2 and "next" not in second.links
    # Another course's calendar is left out silently, as Canvas does.
    other = await http.get(
        f"{BASE}/api/v1/calendar_events", params={**params, "context_codes[]": "course_99"}
    )
    assert other.json() == []
    # Without a date, only today's events.
    today = await http.get(f"{BASE}/api/v1/calendar_events", params={"context_codes[]": "course_3"})
    assert today.json() == []


async def test_the_leaky_bucket_refuses_then_drains_over_time(
    canvas: CanvasDouble, http: httpx.AsyncClient, clock: Clock
) -> None:
    canvas.throttle_like_canvas(maximum=100.0, outflow=10.0, up_front_cost=50.0, cost=40.0)
    first = await http.get(f"{BASE}/api/v1/courses/3/groups")
    assert first.headers["x-request-cost"] == "40.0000"
    assert first.headers["x-rate-limit-remaining"] == "60.0"
    await http.get(f"{BASE}/api/v1/courses/3/groups")  # 80 in the bucket
    refused = await http.get(f"{BASE}/api/v1/courses/3/groups")
    assert refused.status_code == 403
    assert refused.text == "403 Forbidden (Rate Limit Exceeded)"
    assert refused.headers["x-rate-limit-remaining"] == "20.0"
    clock.now += 3.0  # 30 units leak away
    assert (await http.get(f"{BASE}/api/v1/courses/3/groups")).status_code == 200


async def test_the_authorization_page_refuses_unknown_clients_and_checks_the_redirect(
    canvas: CanvasDouble,
) -> None:
    canvas.signed_in_user = "7"
    async with canvas_http(canvas) as client:
        unknown = await client.get(
            f"{BASE}/login/oauth2/auth",
            params={"client_id": "1", "response_type": "code", "redirect_uri": "https://t/cb"},
        )
        assert unknown.status_code == 400
        approved = await client.get(
            f"{BASE}/login/oauth2/auth",
            params={
                "client_id": canvas.client_id,
                "response_type": "code",
                "redirect_uri": "https://t/cb",
                "state": "s1",
            },
        )
        assert approved.status_code == 302
        code = httpx.URL(approved.headers["location"]).params["code"]
        wrong = await client.post(
            f"{BASE}/login/oauth2/token",
            data={
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": "https://elsewhere/cb",
                "client_id": canvas.client_id,
                "client_secret": canvas.client_secret,
            },
        )
        assert wrong.status_code == 400 and wrong.json()["error"] == "invalid_grant"


def test_parameters_are_read_with_rails_nesting() -> None:
    assert rails_params(
        [
            ("calendar_event[child_event_data][0][start_at]", "a"),
            ("context_codes[]", "course_1"),
            ("context_codes[]", "group_2"),
            ("title", "t"),
        ]
    ) == {
        "calendar_event": {"child_event_data": {"0": {"start_at": "a"}}},
        "context_codes": ["course_1", "group_2"],
        "title": "t",
    }
