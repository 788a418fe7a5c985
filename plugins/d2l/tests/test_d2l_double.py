"""The Brightspace double refuses what Brightspace refuses, so the plugin's tests mean something.

Raw HTTP against the double (``ltipro_d2l.testing``), no plugin code in between.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from ltipro_d2l.testing import (
    CLIENT_ID,
    CLIENT_SECRET,
    BrightspaceDouble,
    OAuthApp,
    callback_query,
)

from ltipro.testing.transport import RoutingTransport

HOST = "school.brightspace.com"
ORG_UNIT = 522938
EVENTS = f"https://{HOST}/d2l/api/le/1.82/{ORG_UNIT}/calendar/events/"
EVENT = f"https://{HOST}/d2l/api/le/1.82/{ORG_UNIT}/calendar/event/"
TOKEN_URL = "https://auth.brightspace.com/core/connect/token"
REDIRECT = "https://tool.test/plugins/d2l/oauth/callback"
DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def event_data(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "Title": "Office hours",
        "Description": "",
        "StartDateTime": "2026-03-02T15:00:00.000Z",
        "EndDateTime": "2026-03-02T16:00:00.000Z",
        "StartDay": None,
        "EndDay": None,
        "GroupId": None,
        "RecurrenceInfo": {
            "RepeatType": 1,
            "RepeatEvery": 1,
            "RepeatOnInfo": dict.fromkeys(DAYS, False),
            "RepeatUntilDate": "2026-03-02T16:00:00.000Z",
        },
        "LocationId": None,
        "LocationName": "",
        "VisibilityRestrictions": {
            "Type": 1,
            "Range": None,
            "HiddenRangeUnitType": None,
            "StartDate": None,
            "EndDate": None,
        },
    }
    data.update(changes)
    return data


@pytest.fixture
def double() -> BrightspaceDouble:
    brightspace = BrightspaceDouble(host=HOST, app=OAuthApp(CLIENT_ID, CLIENT_SECRET, REDIRECT))
    brightspace.add_org_unit(ORG_UNIT, "Calculus I")
    return brightspace


@pytest.fixture
async def http(double: BrightspaceDouble) -> Any:
    transport = RoutingTransport({"auth.brightspace.com": double, HOST: double})
    async with httpx.AsyncClient(transport=transport) as client:
        yield client


@pytest.fixture
def bearer(double: BrightspaceDouble) -> dict[str, str]:
    return {"Authorization": f"Bearer {double.issue_tokens()['access_token']}"}


async def test_api_calls_without_a_valid_bearer_token_are_refused(
    double: BrightspaceDouble, http: httpx.AsyncClient, bearer: dict[str, str]
) -> None:
    assert (await http.get(EVENTS)).status_code == 401
    assert (await http.get(EVENTS, headers={"Authorization": "Bearer nope"})).status_code == 401
    double.expire_access_tokens()
    assert (await http.get(EVENTS, headers=bearer)).status_code == 401


async def test_a_token_without_the_core_scope_is_forbidden(
    double: BrightspaceDouble, http: httpx.AsyncClient
) -> None:
    token = double.issue_tokens(scope="calendar:access:read")["access_token"]
    answer = await http.get(EVENTS, headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 403


@pytest.mark.parametrize(
    ("method", "url"),
    [
        ("POST", EVENT.rstrip("/")),  # a collection route without its slash
        ("GET", EVENTS.rstrip("/")),
        ("GET", f"https://{HOST}/d2l/api/le/9.99/{ORG_UNIT}/calendar/events/"),
        ("GET", f"https://{HOST}/d2l/api/le/1.82/404404/calendar/events/"),
    ],
)
async def test_routes_brightspace_does_not_have_answer_404(
    http: httpx.AsyncClient, bearer: dict[str, str], method: str, url: str
) -> None:
    answer = await http.request(method, url, headers=bearer, json=event_data())
    assert answer.status_code == 404


async def test_the_wrong_method_is_refused(http: httpx.AsyncClient, bearer: dict[str, str]) -> None:
    assert (await http.put(EVENT, headers=bearer, json=event_data())).status_code == 405


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"Title": ""}, "Title is required"),
        ({"StartDateTime": "2026-03-02T15:00:00Z"}, "UTCDateTime"),
        ({"StartDateTime": "2026-03-02T15:00:00.000+01:00"}, "UTCDateTime"),
        ({"EndDateTime": "2026-03-02T14:00:00.000Z"}, "before StartDateTime"),
        ({"StartDay": "2026-03-02T00:00:00.000"}, "StartDateTime and EndDateTime, or StartDay"),
        ({"GroupId": 12}, "GroupId 12"),
        ({"RecurrenceInfo": {"RepeatType": 0}}, "REPEAT_T"),
        ({"VisibilityRestrictions": {"Type": 9}}, "VISIBILITY_T"),
    ],
)
async def test_event_data_brightspace_would_refuse_is_a_400(
    double: BrightspaceDouble,
    http: httpx.AsyncClient,
    bearer: dict[str, str],
    changes: dict[str, Any],
    problem: str,
) -> None:
    answer = await http.post(EVENT, headers=bearer, json=event_data(**changes))
    assert answer.status_code == 400
    assert problem in answer.json()["detail"]
    assert double.events == {}


async def test_a_missing_field_is_named(http: httpx.AsyncClient, bearer: dict[str, str]) -> None:
    data = event_data()
    del data["RecurrenceInfo"], data["LocationName"]
    answer = await http.post(EVENT, headers=bearer, json=data)
    assert answer.status_code == 400
    assert answer.json()["detail"] == "missing fields: RecurrenceInfo, LocationName"


async def test_a_created_event_answers_its_event_data_info(
    double: BrightspaceDouble, http: httpx.AsyncClient, bearer: dict[str, str]
) -> None:
    answer = await http.post(EVENT, headers=bearer, json=event_data())
    assert answer.status_code == 200
    info = answer.json()
    assert info["OrgUnitId"] == ORG_UNIT
    assert info["OrgUnitName"] == "Calculus I"
    assert info["IsAllDayEvent"] is False
    assert info["IsRecurring"] is False
    assert info["HasVisibilityRestrictions"] is False
    fetched = await http.get(f"{EVENT}{info['CalendarEventId']}", headers=bearer)
    assert fetched.json() == info
    assert int(answer.headers["x-rate-limit-remaining"]) < double.credits + 2


async def test_the_event_list_is_empty_without_both_window_bounds(
    double: BrightspaceDouble, http: httpx.AsyncClient, bearer: dict[str, str]
) -> None:
    double.add_event(ORG_UNIT)
    answer = await http.get(EVENTS, headers=bearer)
    assert answer.json() == {"Next": None, "Objects": []}
    windowed = await http.get(
        EVENTS,
        headers=bearer,
        params={
            "startDateTime": "2026-03-02T00:00:00.000Z",
            "endDateTime": "2026-03-03T00:00:00.000Z",
        },
    )
    assert len(windowed.json()["Objects"]) == 1


async def test_a_refresh_token_works_once_then_answers_invalid_grant(
    double: BrightspaceDouble, http: httpx.AsyncClient
) -> None:
    first = double.issue_tokens()["refresh_token"]
    form = {"grant_type": "refresh_token", "refresh_token": first}
    rotated = await http.post(TOKEN_URL, data=form, auth=(CLIENT_ID, CLIENT_SECRET))
    assert rotated.status_code == 200
    assert rotated.json()["refresh_token"] != first

    reused = await http.post(TOKEN_URL, data=form, auth=(CLIENT_ID, CLIENT_SECRET))
    assert (reused.status_code, reused.json()) == (400, {"error": "invalid_grant"})

    newer = {"grant_type": "refresh_token", "refresh_token": rotated.json()["refresh_token"]}
    assert (await http.post(TOKEN_URL, data=newer, auth=(CLIENT_ID, CLIENT_SECRET))).is_success


async def test_the_token_endpoint_refuses_a_wrong_secret_and_an_unknown_grant(
    double: BrightspaceDouble, http: httpx.AsyncClient
) -> None:
    refresh = double.issue_tokens()["refresh_token"]
    form = {"grant_type": "refresh_token", "refresh_token": refresh}
    wrong = await http.post(TOKEN_URL, data=form, auth=(CLIENT_ID, "guess"))
    assert wrong.json() == {"error": "invalid_client"}
    odd = await http.post(
        TOKEN_URL, data={"grant_type": "password"}, auth=(CLIENT_ID, CLIENT_SECRET)
    )
    assert odd.json() == {"error": "unsupported_grant_type"}


async def test_an_authorisation_code_works_once_and_only_with_its_redirect_uri(
    http: httpx.AsyncClient,
) -> None:
    consent = await http.get(
        "https://auth.brightspace.com/oauth2/auth",
        params={
            "response_type": "code",
            "client_id": CLIENT_ID,
            "redirect_uri": REDIRECT,
            "scope": "core:*:*",
            "state": "s1",
        },
    )
    assert consent.status_code == 302
    back = callback_query(consent.headers["location"])
    assert back["state"] == "s1"
    form = {"grant_type": "authorization_code", "code": back["code"], "redirect_uri": REDIRECT}

    elsewhere = {**form, "redirect_uri": "https://evil.example/cb"}
    refused = await http.post(TOKEN_URL, data=elsewhere, auth=(CLIENT_ID, CLIENT_SECRET))
    assert refused.json() == {"error": "invalid_grant"}
    # The refused attempt spent the code (RFC 6749 10.5: a code is used once at most).
    again = await http.post(TOKEN_URL, data=form, auth=(CLIENT_ID, CLIENT_SECRET))
    assert again.json() == {"error": "invalid_grant"}


async def test_the_consent_page_never_redirects_to_an_unregistered_uri(
    http: httpx.AsyncClient,
) -> None:
    answer = await http.get(
        "https://auth.brightspace.com/oauth2/auth",
        params={
            "response_type": "code",
            "client_id": CLIENT_ID,
            "redirect_uri": "https://evil.example/cb",
            "scope": "core:*:*",
        },
    )
    assert answer.status_code == 400
    assert "location" not in answer.headers


async def test_a_user_who_refuses_consent_is_sent_back_with_access_denied(
    double: BrightspaceDouble, http: httpx.AsyncClient
) -> None:
    double.consent = "deny"
    answer = await http.get(
        "https://auth.brightspace.com/oauth2/auth",
        params={
            "response_type": "code",
            "client_id": CLIENT_ID,
            "redirect_uri": REDIRECT,
            "scope": "core:*:*",
            "state": "s2",
        },
    )
    assert callback_query(answer.headers["location"]) == {
        "error": "access_denied",
        "state": "s2",
    }
