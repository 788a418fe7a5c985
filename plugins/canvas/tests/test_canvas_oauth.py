"""Connecting Canvas: the OAuth routes through the whole tool, and calendar sync with the grant.

The tool runs with the Canvas plugin (on SQLite, and PostgreSQL when configured); the
Canvas double answers for the launches' Canvas host, so the default API address (the
course's domain) is what is exercised.
"""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from ltipro_canvas.examples import STUDENT_13, TEACHER_13
from ltipro_canvas.oauth import FLOW_COOKIE
from ltipro_canvas.testing import CanvasDouble
from sqlalchemy import select

from ltipro.calendar.runtime import course_lms, token_store
from ltipro.context import CLAIM
from ltipro.extension import CalendarEvent
from ltipro.lmsapi import StoredToken
from ltipro.plugin_settings import set_plugin_settings
from ltipro.storage.calendar_tables import lms_tokens
from ltipro.storage.schema import courses
from ltipro.testing.harness import TOOL_URL, ToolHarness
from ltipro.testing.helpers import launch

CANVAS_HOST = "canvas.home.russfeld.me"  # the launches' canvas_api_domain
TEACHER_SUB = TEACHER_13["sub"]
CALLBACK = f"{TOOL_URL}/plugins/canvas/oauth/callback"


@pytest.fixture
async def tool(canvas_harness: ToolHarness) -> AsyncIterator[ToolHarness]:
    yield canvas_harness


@pytest.fixture
def canvas(tool: ToolHarness) -> CanvasDouble:
    double = CanvasDouble(host=CANVAS_HOST)
    double.add_course("3", sections=["31"], teachers=["7"])
    double.add_user("7", "TeacherFirst TeacherLast")
    double.signed_in_user = "7"
    tool.transport.add(CANVAS_HOST, double)
    return double


async def configure(tool: ToolHarness, canvas: CanvasDouble, **extra: str) -> None:
    values = {"api_client_id": canvas.client_id, "api_client_secret": canvas.client_secret}
    await set_plugin_settings(tool.tool, tool.credential, "canvas", {**values, **extra})


async def session_token(tool: ToolHarness, claims: dict[str, object] = TEACHER_13) -> str:
    page = await launch(tool, "1.3", copy.deepcopy(claims))
    assert page.status_code == 200, page.text
    return tool.session_token(page)


async def start(tool: ToolHarness, token: str) -> httpx.Response:
    return await tool.client.get(
        "/plugins/canvas/oauth/start", headers={"Authorization": f"Bearer {token}"}
    )


async def through_canvas(tool: ToolHarness, started: httpx.Response) -> str:
    """The browser at Canvas's authorisation page: where Canvas sends it back to."""
    answer = await tool.outbound.get(started.headers["location"])
    assert answer.status_code == 302
    location = answer.headers["location"]
    assert location.startswith(CALLBACK + "?")
    return location


async def stored_grant(tool: ToolHarness, platform_id: int | None) -> StoredToken | None:
    store = token_store(tool.tool, tool.credential.id, platform_id, "canvas")
    return await store.get(TEACHER_SUB)


async def platform_of(tool: ToolHarness, token: str) -> int | None:
    session = await tool.tool.sessions.load(token)
    assert session is not None
    return session.platform_id


async def test_connecting_canvas_stores_the_hosts_grant_encrypted_under_their_lti_id(
    tool: ToolHarness, canvas: CanvasDouble
) -> None:
    await configure(tool, canvas)
    token = await session_token(tool)
    started = await start(tool, token)
    assert started.status_code == 303
    target = urlsplit(started.headers["location"])
    assert (target.scheme, target.netloc, target.path) == (
        "https",
        CANVAS_HOST,
        "/login/oauth2/auth",
    )
    query = parse_qs(target.query)
    assert query["client_id"] == [canvas.client_id]
    assert query["response_type"] == ["code"]
    assert query["redirect_uri"] == [CALLBACK]
    assert query["state"][0]

    back = await tool.client.get(await through_canvas(tool, started))
    assert back.status_code == 200
    assert 'data-result-code="canvas_connected"' in back.text.replace("'", '"')
    assert "TeacherFirst TeacherLast" in back.text

    exchange = next(r for r in canvas.requests if r.path == "/login/oauth2/token")
    sent = dict(exchange.form)
    assert sent["grant_type"] == "authorization_code"
    assert sent["redirect_uri"] == CALLBACK
    assert (sent["client_id"], sent["client_secret"]) == (canvas.client_id, canvas.client_secret)

    grant = await stored_grant(tool, await platform_of(tool, token))
    assert grant is not None
    assert canvas.tokens[grant.access_token].user_id == "7"
    assert grant.refresh_token and grant.expires_at is not None
    assert grant.extra["canvas_user_id"] == "7"
    async with tool.tool.repo.engine.connect() as conn:
        raw = (await conn.execute(select(lms_tokens.c.token))).scalar_one()
    assert grant.access_token not in raw


async def test_the_hosts_grant_then_syncs_the_course_calendar_as_the_host(
    tool: ToolHarness, canvas: CanvasDouble
) -> None:
    await configure(tool, canvas)
    token = await session_token(tool)
    await tool.client.get(await through_canvas(tool, await start(tool, token)))
    async with tool.tool.repo.engine.connect() as conn:
        course_id = (await conn.execute(select(courses.c.id))).scalar_one()

    lms = await course_lms(tool.tool, course_id, user_id=TEACHER_SUB)
    assert lms is not None
    start_at = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
    event = CalendarEvent(
        marker="ltipro:abc:20260302T1500Z",
        title="Office hours",
        start=start_at,
        end=start_at + timedelta(hours=1),
        timezone="UTC",
        join_url="https://meet.example/j/1",
    )
    event_id = await lms.call("calendar_create_event", event=event)
    [made] = canvas.events_in("course_3")
    assert event_id == str(made["id"])
    grant = await stored_grant(tool, lms.platform_id)
    assert grant is not None
    assert canvas.api_requests("POST")[0].token == grant.access_token


async def test_a_tampered_state_is_refused_with_a_400_page(
    tool: ToolHarness, canvas: CanvasDouble
) -> None:
    await configure(tool, canvas)
    location = await through_canvas(tool, await start(tool, await session_token(tool)))
    query = parse_qs(urlsplit(location).query)
    state = query["state"][0]
    forged = state[:-4] + ("AAAA" if not state.endswith("AAAA") else "BBBB")
    for bad in (forged, "not-a-state", ""):
        page = await tool.client.get(
            "/plugins/canvas/oauth/callback", params={"code": query["code"][0], "state": bad}
        )
        assert page.status_code == 400, page.text
        assert "Start again from the meetings page" in page.text
    assert not [r for r in canvas.requests if r.path == "/login/oauth2/token"]


async def test_a_callback_used_twice_is_refused_the_second_time(
    tool: ToolHarness, canvas: CanvasDouble
) -> None:
    await configure(tool, canvas)
    location = await through_canvas(tool, await start(tool, await session_token(tool)))
    nonce = tool.client.cookies.get(FLOW_COOKIE)
    assert nonce
    assert (await tool.client.get(location)).status_code == 200
    assert tool.client.cookies.get(FLOW_COOKIE) is None  # the flow is over
    tool.client.cookies.set(FLOW_COOKIE, nonce, domain="tool.test", path="/plugins/canvas/oauth")
    again = await tool.client.get(location)
    assert again.status_code == 400
    assert 'data-error-code="canvas_oauth_state_used"' in again.text


async def test_a_callback_in_another_browser_than_the_start_is_refused(
    tool: ToolHarness, canvas: CanvasDouble
) -> None:
    await configure(tool, canvas)
    token = await session_token(tool)
    location = await through_canvas(tool, await start(tool, token))
    tool.client.cookies.clear()  # someone else's browser follows the link
    page = await tool.client.get(location)
    assert page.status_code == 400
    assert 'data-error-code="canvas_oauth_other_browser"' in page.text
    assert not [r for r in canvas.requests if r.path == "/login/oauth2/token"]
    assert await stored_grant(tool, await platform_of(tool, token)) is None


@pytest.mark.parametrize(("launched_as", "connected"), [("7", True), ("8", False)])
async def test_the_canvas_user_who_authorises_must_be_the_one_who_launched(
    tool: ToolHarness, canvas: CanvasDouble, launched_as: str, connected: bool
) -> None:
    await configure(tool, canvas)
    claims = copy.deepcopy(TEACHER_13)
    claims[CLAIM + "custom"] = {"canvas_user_id": launched_as}
    token = await session_token(tool, claims)
    page = await tool.client.get(await through_canvas(tool, await start(tool, token)))
    grant = await stored_grant(tool, await platform_of(tool, token))
    if connected:
        assert page.status_code == 200 and grant is not None
    else:
        assert page.status_code == 403
        assert 'data-error-code="canvas_oauth_other_user"' in page.text
        assert grant is None


async def test_a_user_who_says_no_gets_a_clear_page_and_nothing_is_stored(
    tool: ToolHarness, canvas: CanvasDouble
) -> None:
    await configure(tool, canvas)
    canvas.deny = True
    token = await session_token(tool)
    location = await through_canvas(tool, await start(tool, token))
    assert "error=access_denied" in location
    page = await tool.client.get(location)
    assert page.status_code == 200
    assert "You chose not to let the tool use your Canvas account" in page.text
    assert await stored_grant(tool, await platform_of(tool, token)) is None


async def test_canvas_failing_at_the_code_exchange_is_a_502_page_not_a_crash(
    tool: ToolHarness, canvas: CanvasDouble
) -> None:
    await configure(tool, canvas)
    location = await through_canvas(tool, await start(tool, await session_token(tool)))
    canvas.fail_next(503, path="/login/oauth2/token")
    page = await tool.client.get(location)
    assert page.status_code == 502
    assert "try again" in page.text


async def test_a_code_canvas_does_not_know_is_refused_with_a_400(
    tool: ToolHarness, canvas: CanvasDouble
) -> None:
    await configure(tool, canvas)
    location = await through_canvas(tool, await start(tool, await session_token(tool)))
    canvas.codes.clear()
    page = await tool.client.get(location)
    assert page.status_code == 400
    assert 'data-error-code="canvas_oauth_refused"' in page.text


async def test_only_instructors_connect_canvas(tool: ToolHarness, canvas: CanvasDouble) -> None:
    await configure(tool, canvas)
    page = await start(tool, await session_token(tool, STUDENT_13))
    assert page.status_code == 403
    assert "Only instructors" in page.text


async def test_without_the_api_developer_key_the_page_says_who_must_set_it_up(
    tool: ToolHarness, canvas: CanvasDouble
) -> None:
    page = await start(tool, await session_token(tool))
    assert page.status_code == 409
    assert "api_client_id" in page.text


async def test_starting_without_a_session_is_a_401_page(tool: ToolHarness) -> None:
    page = await tool.client.get("/plugins/canvas/oauth/start")
    assert page.status_code == 401


async def test_the_status_tells_the_meetings_page_whether_to_offer_connect_canvas(
    tool: ToolHarness, canvas: CanvasDouble
) -> None:
    token = await session_token(tool)
    headers = {"Authorization": f"Bearer {token}"}
    before = (await tool.client.get("/plugins/canvas/oauth/status", headers=headers)).json()
    assert (before["connectable"], before["connected"]) == (False, False)

    await configure(tool, canvas)
    ready = (await tool.client.get("/plugins/canvas/oauth/status", headers=headers)).json()
    assert (ready["connectable"], ready["connected"]) == (True, False)
    assert ready["connect_url"] == "/plugins/canvas/oauth/start"

    await tool.client.get(await through_canvas(tool, await start(tool, token)))
    after = (await tool.client.get("/plugins/canvas/oauth/status", headers=headers)).json()
    assert (after["connected"], after["canvas_user"]) == (True, "TeacherFirst TeacherLast")
