"""The ``admin_connections`` hook in the admin console: status on the platforms page, and a
button that starts authorising only for the credential's own admins, with the CSRF token.

The plugin here counts how often its start link is made: never for showing the page,
once per accepted press of the button.
"""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from test_admin_console import Console, make_admin

from ltipro.context import LaunchContext, LaunchMessage
from ltipro.extension import AdminConnection, LmsDetails
from ltipro.hookspecs import hookimpl
from ltipro.lti.claims import standard_launch_context
from ltipro.storage.repository import Credential, Platform
from ltipro.testing.harness import ToolHarness
from ltipro.tool import Tool

START = "https://lms.example.edu/oauth/authorize?one-time=1"


class ConnectingLms:
    """An LMS plugin with a service connection per credential and platform."""

    def __init__(self) -> None:
        self.asked: list[tuple[str, int | None, Mapping[str, Any]]] = []
        self.started: list[tuple[str, int | None]] = []
        self.target = START
        self.fail = False

    @hookimpl
    def lms_details(self) -> LmsDetails:
        return LmsDetails(name="connlms", title="Conn LMS", product_family_codes=("clms",))

    @hookimpl
    def identify_lms(self, message: LaunchMessage) -> str | None:
        return "connlms" if message.product_family_code == "clms" else None

    @hookimpl
    def launch_context(self, message: LaunchMessage) -> LaunchContext:
        return standard_launch_context(message, lms="connlms")

    @hookimpl
    async def admin_connections(
        self,
        tool: Tool,
        credential: Credential,
        platform: Platform | None,
        settings: Mapping[str, Any],
    ) -> list[AdminConnection] | None:
        platform_id = platform.id if platform is not None else None
        self.asked.append((credential.name, platform_id, settings))
        if self.fail:
            raise RuntimeError("the plugin broke")

        async def start() -> str:
            self.started.append((credential.name, platform_id))
            return self.target

        return [
            AdminConnection(
                "service",
                "Conn LMS service account",
                "connected" if platform_id is None else "not_connected",
                detail="Connected on 1 Jan 2026." if platform_id is None else "",
                action_label="Connect Conn LMS",
                start=start,
            ),
            AdminConnection("manual", "Conn LMS by hand", "not_set_up", detail="Set a key."),
        ]


@pytest.fixture
def lms() -> ConnectingLms:
    return ConnectingLms()


@pytest.fixture
async def harness(
    database_url: str, tmp_path: Path, lms: ConnectingLms
) -> AsyncIterator[ToolHarness]:
    async with ToolHarness(
        database_url=database_url,
        instance=tmp_path / "instance",
        plugins=[],
        extra_plugins=[("connlms", lms)],
        lms="connlms",
    ) as h:
        yield h


@pytest.fixture
async def ada(harness: ToolHarness) -> AsyncIterator[Console]:
    """An admin of the credential ``test`` only."""
    await make_admin(harness, "ada@example.edu", [harness.credential])
    browser = Console(harness)
    assert (await browser.sign_in("ada@example.edu")).status_code == 303
    yield browser
    await browser.close()


def platforms_path(harness: ToolHarness) -> str:
    return f"/admin/credentials/{harness.credential.id}/platforms"


def start_path(harness: ToolHarness) -> str:
    return f"/admin/credentials/{harness.credential.id}/connections/start"


def connection_items(html: str) -> dict[tuple[str, str], str]:
    """Each connection on the page, by (connection, platform), with its HTML."""
    items = re.findall(
        r'<li data-connection="([^"]+)" data-platform="([^"]*)">(.*?)</li>', html, re.S
    )
    return {(name, platform): body for name, platform, body in items}


async def test_the_platforms_page_shows_each_connection_and_makes_no_link(
    harness: ToolHarness, ada: Console, lms: ConnectingLms
) -> None:
    page = await ada.get(platforms_path(harness))
    assert page.status_code == 200
    platform = str(harness.registration.id)
    items = connection_items(page.text)
    assert set(items) == {
        ("connlms:service", ""),
        ("connlms:manual", ""),
        ("connlms:service", platform),
        ("connlms:manual", platform),
    }
    assert 'data-status="connected">connected<' in items[("connlms:service", "")]
    assert "Connected on 1 Jan 2026." in items[("connlms:service", "")]
    assert 'data-status="not_connected">not connected<' in items[("connlms:service", platform)]
    assert ">Connect Conn LMS</button>" in items[("connlms:service", platform)]
    assert f'name="platform" value="{platform}"' in items[("connlms:service", platform)]
    assert f'name="csrf_token" value="{ada.token}"' in items[("connlms:service", platform)]
    # Without a start there is no button; and showing the page never made a link.
    assert "<button" not in items[("connlms:manual", platform)]
    assert lms.started == []
    assert START not in page.text
    assert {platform_id for _, platform_id, _ in lms.asked} == {None, harness.registration.id}


async def test_the_button_redirects_to_a_link_made_on_the_press(
    harness: ToolHarness, ada: Console, lms: ConnectingLms
) -> None:
    pressed = await ada.post(
        start_path(harness),
        {"plugin": "connlms", "key": "service", "platform": str(harness.registration.id)},
    )
    assert pressed.status_code == 303
    assert pressed.headers["location"] == START
    assert pressed.headers["cache-control"] == "no-store"
    assert lms.started == [("test", harness.registration.id)]

    again = await ada.post(start_path(harness), {"plugin": "connlms", "key": "service"})
    assert again.status_code == 303
    assert lms.started[-1] == ("test", None)


async def test_without_the_csrf_token_nothing_starts(
    harness: ToolHarness, ada: Console, lms: ConnectingLms
) -> None:
    form = {"plugin": "connlms", "key": "service", "platform": ""}
    missing = await ada.client.post(start_path(harness), data=form)
    wrong = await ada.client.post(start_path(harness), data={**form, "csrf_token": "forged"})
    assert (missing.status_code, wrong.status_code) == (403, 403)
    assert lms.started == []


async def test_without_a_session_nothing_starts(harness: ToolHarness, lms: ConnectingLms) -> None:
    stranger = Console(harness)
    try:
        response = await stranger.client.post(
            start_path(harness), data={"plugin": "connlms", "key": "service"}
        )
    finally:
        await stranger.close()
    assert response.status_code == 403
    assert lms.started == []


async def test_an_admin_of_another_credential_gets_404(
    harness: ToolHarness, lms: ConnectingLms
) -> None:
    other = await harness.tool.repo.create_credential("other", enabled_plugins=["connlms"])
    await make_admin(harness, "bo@example.edu", [other])
    bo = Console(harness)
    try:
        assert (await bo.sign_in("bo@example.edu")).status_code == 303
        response = await bo.post(
            start_path(harness),
            {"plugin": "connlms", "key": "service", "platform": str(harness.registration.id)},
        )
        page = await bo.get(platforms_path(harness))
        # Their own credential cannot reach the other credential's platform either.
        crossed = await bo.post(
            f"/admin/credentials/{other.id}/connections/start",
            {"plugin": "connlms", "key": "service", "platform": str(harness.registration.id)},
        )
    finally:
        await bo.close()
    assert (response.status_code, page.status_code, crossed.status_code) == (404, 404, 404)
    assert lms.started == []


@pytest.mark.parametrize(
    "form",
    [
        {"plugin": "connlms", "key": "nope"},
        {"plugin": "generic", "key": "service"},
        {"plugin": "missing", "key": "service"},
        {"plugin": "connlms", "key": "service", "platform": "99999"},
        {"plugin": "connlms", "key": "service", "platform": "x1"},
        {"plugin": "connlms", "key": ""},
    ],
)
async def test_what_does_not_exist_answers_404(
    harness: ToolHarness, ada: Console, lms: ConnectingLms, form: dict[str, str]
) -> None:
    response = await ada.post(start_path(harness), form)
    assert response.status_code == 404
    assert lms.started == []


async def test_a_connection_without_a_start_answers_409_with_its_detail(
    harness: ToolHarness, ada: Console
) -> None:
    response = await ada.post(start_path(harness), {"plugin": "connlms", "key": "manual"})
    assert response.status_code == 409
    assert "Set a key." in response.text


async def test_a_disabled_plugin_offers_no_connection(
    harness: ToolHarness, ada: Console, lms: ConnectingLms
) -> None:
    await harness.tool.repo.set_enabled_plugins(harness.credential, {"generic"})
    page = await ada.get(platforms_path(harness))
    assert page.status_code == 200
    assert connection_items(page.text) == {}
    response = await ada.post(start_path(harness), {"plugin": "connlms", "key": "service"})
    assert response.status_code == 404
    assert lms.started == []


@pytest.mark.parametrize("target", ["javascript:alert(1)", "//evil.example/x", "", "https:x"])
async def test_a_start_that_makes_no_usable_address_is_a_502_page(
    harness: ToolHarness, ada: Console, lms: ConnectingLms, target: str
) -> None:
    lms.target = target
    response = await ada.post(start_path(harness), {"plugin": "connlms", "key": "service"})
    assert response.status_code == 502
    assert "location" not in response.headers


async def test_a_plugin_that_raises_is_logged_and_the_page_is_shown(
    harness: ToolHarness, ada: Console, lms: ConnectingLms, caplog: pytest.LogCaptureFixture
) -> None:
    lms.fail = True
    with caplog.at_level(logging.ERROR, logger="ltipro.web.admin_connections"):
        page = await ada.get(platforms_path(harness))
    assert page.status_code == 200
    assert "LMS platforms" in page.text
    assert connection_items(page.text) == {}
    assert "the plugin broke" in caplog.text
