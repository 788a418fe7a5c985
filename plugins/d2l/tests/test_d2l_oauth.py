"""Connecting Brightspace: the signed start link, Brightspace's consent, the callback.

Through the whole tool (its app, its database on SQLite and PostgreSQL, its store), with
the Brightspace double answering at ``auth.brightspace.com`` and the instance's host.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import httpx
import pytest
from ltipro_d2l.__main__ import ConnectError, connect_link
from ltipro_d2l.examples import INSTRUCTOR_13
from ltipro_d2l.oauth import COOKIE, SUBJECT, start_url
from ltipro_d2l.testing import CLIENT_ID, CLIENT_SECRET, BrightspaceDouble, OAuthApp
from sqlalchemy import select

from ltipro.calendar.runtime import course_lms, token_store
from ltipro.crypto import Signer
from ltipro.extension import CalendarEvent
from ltipro.plugin_settings import set_plugin_settings
from ltipro.storage.schema import courses
from ltipro.testing.harness import TOOL_URL, ToolHarness

HOST = "school.brightspace.com"
REDIRECT = f"{TOOL_URL}/plugins/d2l/oauth/callback"


@pytest.fixture
async def connected(d2l_harness: ToolHarness) -> tuple[ToolHarness, BrightspaceDouble]:
    """The tool with the d2l plugin configured for a Brightspace served by the double."""
    double = BrightspaceDouble(host=HOST, app=OAuthApp(CLIENT_ID, CLIENT_SECRET, REDIRECT))
    double.add_org_unit(522938, "Calculus I", "MTH-251-01")
    d2l_harness.transport.add(double.auth_host, double)
    d2l_harness.transport.add(HOST, double)
    await set_plugin_settings(
        d2l_harness.tool,
        d2l_harness.credential,
        "d2l",
        {
            "base_url": f"https://{HOST}",
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
        },
    )
    return d2l_harness, double


async def stored(harness: ToolHarness, platform_id: int | None = None) -> Any:
    return await token_store(harness.tool, harness.credential.id, platform_id, "d2l").get(SUBJECT)


def path_and_query(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


async def start(harness: ToolHarness, platform_id: int | None = None) -> httpx.Response:
    link = start_url(harness.tool, harness.credential.id, platform_id)
    return await harness.client.get(path_and_query(link))


async def consent(
    harness: ToolHarness, double: BrightspaceDouble, started: httpx.Response
) -> httpx.Response:
    """The browser follows the redirect to Brightspace, which sends it back to the tool."""
    async with httpx.AsyncClient(transport=harness.transport) as browser:
        answer = await browser.get(started.headers["location"])
    assert answer.status_code == 302, answer.text
    return answer


async def callback(harness: ToolHarness, location: str, cookie: str | None) -> httpx.Response:
    harness.client.cookies.clear()
    if cookie is not None:
        harness.client.cookies.set(COOKIE, cookie)
    return await harness.client.get(path_and_query(location))


# -- the command ------------------------------------------------------------------------------


async def test_connect_prints_the_redirect_uri_and_a_start_link(
    connected: tuple[ToolHarness, BrightspaceDouble],
) -> None:
    harness, _ = connected
    lines = await connect_link(harness.tool, harness.credential.name, None)
    assert lines[0] == f"Redirect URI to register in Brightspace: {REDIRECT}"
    assert lines[2].startswith(f"{TOOL_URL}/plugins/d2l/oauth/start?token=")


async def test_connect_refuses_unknown_credentials_foreign_platforms_and_missing_settings(
    d2l_harness: ToolHarness,
) -> None:
    with pytest.raises(ConnectError, match="no credential named 'nope'"):
        await connect_link(d2l_harness.tool, "nope", None)
    other = await d2l_harness.tool.repo.create_credential("other", enabled_plugins=["d2l"])
    with pytest.raises(ConnectError, match="not registered with credential 'other'"):
        await connect_link(d2l_harness.tool, other.name, d2l_harness.registration.id)
    with pytest.raises(ConnectError, match="client_id and client_secret"):
        await connect_link(d2l_harness.tool, d2l_harness.credential.name, None)


# -- the whole flow ---------------------------------------------------------------------------


async def test_start_sends_the_admin_to_brightspaces_consent_page_with_a_bound_state(
    connected: tuple[ToolHarness, BrightspaceDouble],
) -> None:
    harness, _ = connected
    started = await start(harness)

    assert started.status_code == 303
    target = urlsplit(started.headers["location"])
    assert f"{target.scheme}://{target.netloc}{target.path}" == (
        "https://auth.brightspace.com/oauth2/auth"
    )
    query = dict(parse_qsl(target.query))
    assert {k: v for k, v in query.items() if k != "state"} == {
        "response_type": "code",
        "client_id": CLIENT_ID,
        "redirect_uri": REDIRECT,
        "scope": "core:*:*",
    }
    cookie = started.headers["set-cookie"]
    assert cookie.startswith(f"{COOKIE}=")
    for attribute in ("HttpOnly", "Secure", "SameSite=lax", "Path=/plugins/d2l/oauth/"):
        assert attribute.lower() in cookie.lower()


async def test_the_callback_exchanges_the_code_and_stores_the_token_for_the_credential(
    connected: tuple[ToolHarness, BrightspaceDouble],
) -> None:
    harness, double = connected
    started = await start(harness)
    back = await consent(harness, double, started)

    done = await callback(harness, back.headers["location"], started.cookies[COOKIE])

    assert done.status_code == 200, done.text
    assert "Brightspace is connected" in done.text
    (form,) = double.token_requests
    assert form["grant_type"] == "authorization_code"
    assert form["redirect_uri"] == REDIRECT
    token = await stored(harness)
    assert token.access_token in double.access_tokens
    assert token.refresh_token in double.refresh_tokens
    assert token.expires_at > datetime.now(UTC) + timedelta(minutes=50)


async def test_a_connected_credential_syncs_a_launched_courses_calendar(
    connected: tuple[ToolHarness, BrightspaceDouble],
) -> None:
    harness, double = connected
    started = await start(harness, harness.registration.id)
    back = await consent(harness, double, started)
    assert (await callback(harness, back.headers["location"], started.cookies[COOKIE])).is_success
    page = await harness.launch13(INSTRUCTOR_13)
    assert page.status_code == 200, page.text
    async with harness.tool.repo.engine.connect() as conn:
        course_id = (await conn.execute(select(courses.c.id))).scalar_one()

    lms = await course_lms(harness.tool, course_id)
    assert lms is not None and lms.lms == "d2l"
    start_at = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
    event = CalendarEvent(
        marker="ltipro:m-9:20260302T1500Z",
        title="Calculus office hours",
        start=start_at,
        end=start_at + timedelta(hours=1),
        timezone="UTC",
        join_url="https://meet.example.edu/x",
    )
    event_id = await lms.call("calendar_create_event", event=event)

    # The org unit is the launch's context id, 522938.
    assert [e["CalendarEventId"] for e in double.events_in(522938)] == [int(event_id)]


async def test_a_start_link_works_once(connected: tuple[ToolHarness, BrightspaceDouble]) -> None:
    harness, _ = connected
    link = path_and_query(start_url(harness.tool, harness.credential.id, None))
    assert (await harness.client.get(link)).status_code == 303
    again = await harness.client.get(link)
    assert again.status_code == 400
    assert "used already" in again.text


@pytest.mark.parametrize("token", ["", "garbage", "a.b", "eyJjcmVkZW50aWFsIjoxfQ.AAAA"])
async def test_a_tampered_or_missing_start_link_is_a_400(
    connected: tuple[ToolHarness, BrightspaceDouble], token: str
) -> None:
    harness, _ = connected
    answer = await harness.client.get("/plugins/d2l/oauth/start?" + urlencode({"token": token}))
    assert answer.status_code == 400
    assert "not valid" in answer.text


async def test_an_expired_start_link_is_a_400(
    connected: tuple[ToolHarness, BrightspaceDouble],
) -> None:
    harness, _ = connected
    signer = Signer(harness.tool.settings.secret_key, "d2l-oauth-start")
    token = signer.sign({"credential": harness.credential.id, "platform": None, "nonce": "n"}, -5)
    answer = await harness.client.get("/plugins/d2l/oauth/start?" + urlencode({"token": token}))
    assert answer.status_code == 400


async def test_a_start_link_before_the_app_is_configured_says_what_is_missing(
    d2l_harness: ToolHarness,
) -> None:
    answer = await start(d2l_harness)
    assert answer.status_code == 400
    assert "client_id and client_secret" in answer.text


@pytest.mark.parametrize(
    "state",
    ["", "x", "eyJjcmVkZW50aWFsIjoxfQ.AAAA", "a.b.c"],
)
async def test_a_tampered_callback_state_is_a_400_not_a_500(
    connected: tuple[ToolHarness, BrightspaceDouble], state: str
) -> None:
    harness, double = connected
    started = await start(harness)
    query = urlencode({"code": "whatever", "state": state})
    answer = await callback(harness, f"{REDIRECT}?{query}", started.cookies[COOKIE])
    assert answer.status_code == 400
    assert "not valid" in answer.text
    assert double.token_requests == []
    assert await stored(harness) is None


async def test_a_state_signed_for_another_purpose_is_refused(
    connected: tuple[ToolHarness, BrightspaceDouble],
) -> None:
    harness, double = connected
    started = await start(harness)
    # A valid start link is signed with the same secret key, for another purpose.
    forged = dict(parse_qsl(urlsplit(start_url(harness.tool, harness.credential.id, None)).query))
    query = urlencode({"code": "c", "state": forged["token"]})
    answer = await callback(harness, f"{REDIRECT}?{query}", started.cookies[COOKIE])
    assert answer.status_code == 400
    assert double.token_requests == []


async def test_a_callback_in_another_browser_is_refused(
    connected: tuple[ToolHarness, BrightspaceDouble],
) -> None:
    harness, double = connected
    started = await start(harness)
    back = await consent(harness, double, started)

    without = await callback(harness, back.headers["location"], None)
    other = await callback(harness, back.headers["location"], "another-browsers-cookie")

    assert (without.status_code, other.status_code) == (400, 400)
    assert "same browser" in other.text
    assert double.token_requests == []
    assert await stored(harness) is None


async def test_a_replayed_callback_is_refused(
    connected: tuple[ToolHarness, BrightspaceDouble],
) -> None:
    harness, double = connected
    started = await start(harness)
    back = await consent(harness, double, started)
    location, cookie = back.headers["location"], started.cookies[COOKIE]
    assert (await callback(harness, location, cookie)).status_code == 200

    replay = await callback(harness, location, cookie)

    assert replay.status_code == 400
    assert "used already" in replay.text
    assert len(double.token_requests) == 1


async def test_access_denied_in_brightspace_changes_nothing(
    connected: tuple[ToolHarness, BrightspaceDouble],
) -> None:
    harness, double = connected
    double.consent = "deny"
    started = await start(harness)
    back = await consent(harness, double, started)

    answer = await callback(harness, back.headers["location"], started.cookies[COOKIE])

    assert answer.status_code == 400
    assert "access was denied in Brightspace" in answer.text
    assert double.token_requests == []
    assert await stored(harness) is None


async def test_a_code_brightspace_refuses_is_a_400_with_the_reason(
    connected: tuple[ToolHarness, BrightspaceDouble],
) -> None:
    harness, double = connected
    started = await start(harness)
    back = await consent(harness, double, started)
    location = back.headers["location"]
    double.codes.clear()  # the code expired at Brightspace

    answer = await callback(harness, location, started.cookies[COOKIE])

    assert answer.status_code == 400
    assert "invalid_grant" in answer.text
    assert await stored(harness) is None


async def test_brightspace_unreachable_during_the_callback_is_a_502_page(
    connected: tuple[ToolHarness, BrightspaceDouble],
) -> None:
    harness, double = connected
    started = await start(harness)
    back = await consent(harness, double, started)
    double.fail_next(503, where="token")

    answer = await callback(harness, back.headers["location"], started.cookies[COOKIE])

    assert answer.status_code == 502
    assert "could not be reached" in answer.text
    assert await stored(harness) is None
