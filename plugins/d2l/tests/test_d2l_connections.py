"""Connecting Brightspace from the admin console: status per credential and platform, and
the "Connect Brightspace" button that makes a one-time start link when it is pressed.

Through the whole tool with the Brightspace double at ``auth.brightspace.com`` and the
school's host; the console is driven as a browser would (cookie, CSRF field).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from html import unescape
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from ltipro_d2l.oauth import COOKIE, SUBJECT
from ltipro_d2l.testing import CLIENT_ID, CLIENT_SECRET, BrightspaceDouble, OAuthApp

from ltipro.calendar.runtime import token_store
from ltipro.jobs import JobContext, JobHandlers, PermanentFailure, Worker, enqueue
from ltipro.lmsapi import StoredToken
from ltipro.passwords import hash_password
from ltipro.plugin_settings import set_plugin_settings
from ltipro.storage.admin_repository import AdminRepository
from ltipro.testing.harness import TOOL_URL, ToolHarness

HOST = "school.brightspace.com"
REDIRECT = f"{TOOL_URL}/plugins/d2l/oauth/callback"
PASSWORD = "correct horse battery staple"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture
async def harness(ltipro_backend_database_url: str, tmp_path: Path) -> AsyncIterator[ToolHarness]:
    """The tool with the d2l plugin; its LTI 1.3 platform registration is Brightspace's."""
    async with ToolHarness(
        database_url=ltipro_backend_database_url,
        instance=tmp_path / "instance",
        plugins=["d2l"],
        lms="d2l",
    ) as tool:
        yield tool


@pytest.fixture
def brightspace(harness: ToolHarness) -> BrightspaceDouble:
    double = BrightspaceDouble(host=HOST, app=OAuthApp(CLIENT_ID, CLIENT_SECRET, REDIRECT))
    harness.transport.add(double.auth_host, double)
    harness.transport.add(HOST, double)
    return double


async def configure(harness: ToolHarness) -> None:
    await set_plugin_settings(
        harness.tool,
        harness.credential,
        "d2l",
        {"base_url": f"https://{HOST}", "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET},
    )


class Admin:
    """A browser signed in to the console."""

    def __init__(self, harness: ToolHarness) -> None:
        self.client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=harness.app), base_url=TOOL_URL
        )
        self.csrf = ""

    async def sign_in(self, email: str) -> None:
        page = await self.client.get("/admin/login")
        token = CSRF.search(page.text)
        assert token
        signed = await self.client.post(
            "/admin/login",
            data={"csrf_token": unescape(token[1]), "email": email, "password": PASSWORD},
        )
        assert signed.status_code == 303
        home = await self.client.get("/admin/")
        found = CSRF.search(home.text)
        assert found
        self.csrf = unescape(found[1])


async def admin_of(harness: ToolHarness, email: str, credential_id: int) -> AsyncIterator[Admin]:
    await AdminRepository(harness.tool.repo.engine).create_admin(
        email, hash_password(PASSWORD), credential_ids=[credential_id]
    )
    browser = Admin(harness)
    await browser.sign_in(email)
    yield browser
    await browser.client.aclose()


@pytest.fixture
async def ada(harness: ToolHarness) -> AsyncIterator[Admin]:
    async for browser in admin_of(harness, "ada@example.edu", harness.credential.id):
        yield browser


def connection(html: str, platform: int | None) -> str:
    """The Brightspace connection's item on the platforms page, for a platform or none."""
    where = "" if platform is None else str(platform)
    found = re.search(
        rf'<li data-connection="d2l:brightspace" data-platform="{where}">(.*?)</li>', html, re.S
    )
    assert found, html
    return found.group(1)


def status_of(item: str) -> str:
    found = re.search(r'data-status="([^"]+)"', item)
    assert found
    return found.group(1)


def page_path(harness: ToolHarness) -> str:
    return f"/admin/credentials/{harness.credential.id}/platforms"


def press_path(harness: ToolHarness) -> str:
    return f"/admin/credentials/{harness.credential.id}/connections/start"


def press_form(admin: Admin, platform: int | None) -> dict[str, str]:
    return {
        "csrf_token": admin.csrf,
        "plugin": "d2l",
        "key": "brightspace",
        "platform": "" if platform is None else str(platform),
    }


def path_and_query(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


async def test_each_level_shows_not_connected_and_a_button_but_no_link(
    harness: ToolHarness, ada: Admin, brightspace: BrightspaceDouble
) -> None:
    await configure(harness)
    page = await ada.client.get(page_path(harness))
    assert page.status_code == 200
    for platform in (None, harness.registration.id):
        item = connection(page.text, platform)
        assert status_of(item) == "not_connected"
        assert ">not connected<" in item
        assert ">Connect Brightspace</button>" in item
    assert "/plugins/d2l/oauth/start" not in page.text


async def test_the_button_leads_through_brightspace_and_the_page_then_says_connected(
    harness: ToolHarness, ada: Admin, brightspace: BrightspaceDouble
) -> None:
    await configure(harness)
    platform = harness.registration.id
    pressed = await ada.client.post(press_path(harness), data=press_form(ada, platform))
    assert pressed.status_code == 303
    link = pressed.headers["location"]
    assert link.startswith(f"{TOOL_URL}/plugins/d2l/oauth/start?token=")

    started = await harness.client.get(path_and_query(link))
    assert started.status_code == 303
    assert started.headers["location"].startswith("https://auth.brightspace.com/oauth2/auth?")
    binding = started.cookies.get(COOKIE) or harness.client.cookies.get(COOKIE)
    assert binding
    async with httpx.AsyncClient(transport=harness.transport) as browser:
        consent = await browser.get(started.headers["location"])
    assert consent.status_code == 302
    harness.client.cookies.clear()
    harness.client.cookies.set(COOKIE, binding)
    back = await harness.client.get(path_and_query(consent.headers["location"]))
    assert back.status_code == 200, back.text

    # The link was for one use: opening it again is refused.
    harness.client.cookies.clear()
    reused = await harness.client.get(path_and_query(link))
    assert reused.status_code == 400
    assert "used already" in reused.text

    page = await ada.client.get(page_path(harness))
    assert status_of(connection(page.text, platform)) == "connected"
    assert ">Reconnect Brightspace</button>" in connection(page.text, platform)
    assert status_of(connection(page.text, None)) == "not_connected"


async def test_each_press_makes_a_fresh_link(harness: ToolHarness, ada: Admin) -> None:
    await configure(harness)
    first = await ada.client.post(press_path(harness), data=press_form(ada, None))
    second = await ada.client.post(press_path(harness), data=press_form(ada, None))
    assert first.status_code == second.status_code == 303
    assert first.headers["location"] != second.headers["location"]


async def test_without_the_oauth_app_the_page_says_not_set_up_and_offers_no_button(
    harness: ToolHarness, ada: Admin
) -> None:
    page = await ada.client.get(page_path(harness))
    item = connection(page.text, None)
    assert status_of(item) == "not_set_up"
    assert "client_id and client_secret" in unescape(item)
    assert "<button" not in item
    pressed = await ada.client.post(press_path(harness), data=press_form(ada, None))
    assert pressed.status_code == 409


async def test_the_press_needs_the_csrf_token_and_an_admin_of_the_credential(
    harness: ToolHarness, ada: Admin
) -> None:
    await configure(harness)
    form = press_form(ada, harness.registration.id)
    forged = await ada.client.post(press_path(harness), data={**form, "csrf_token": "x"})
    assert forged.status_code == 403
    assert "location" not in forged.headers

    other = await harness.tool.repo.create_credential("other", enabled_plugins=["d2l"])
    async for bo in admin_of(harness, "bo@example.edu", other.id):
        refused = await bo.client.post(press_path(harness), data=press_form(bo, None))
        crossed = await bo.client.post(
            f"/admin/credentials/{other.id}/connections/start",
            data=press_form(bo, harness.registration.id),
        )
    assert (refused.status_code, crossed.status_code) == (404, 404)


async def test_a_token_that_cannot_be_renewed_needs_reconnecting(
    harness: ToolHarness, ada: Admin
) -> None:
    await configure(harness)
    store = token_store(harness.tool, harness.credential.id, None, "d2l")
    await store.put(
        SUBJECT,
        StoredToken("old", None, expires_at=datetime.now(UTC) - timedelta(hours=1)),
    )
    item = connection((await ada.client.get(page_path(harness))).text, None)
    assert status_of(item) == "needs_reconnecting"
    assert ">Reconnect Brightspace</button>" in item


async def test_a_connection_brightspace_refused_since_needs_reconnecting(
    harness: ToolHarness, ada: Admin
) -> None:
    await configure(harness)
    platform = harness.registration.id
    connected_at = (datetime.now(UTC) - timedelta(days=1)).isoformat()
    store = token_store(harness.tool, harness.credential.id, platform, "d2l")
    await store.put(
        SUBJECT,
        StoredToken(
            "live",
            "refresh",
            expires_at=datetime.now(UTC) + timedelta(hours=1),
            extra={"connected_at": connected_at},
        ),
    )
    assert status_of(connection((await ada.client.get(page_path(harness))).text, platform)) == (
        "connected"
    )

    # A calendar job died because Brightspace refused the token of this platform.
    async def refused(context: JobContext) -> None:
        raise PermanentFailure(
            "Brightspace no longer accepts the tool's authorisation (invalid_grant): an admin "
            "must connect Brightspace again with `python -m ltipro_d2l connect --credential "
            f"NAME --platform {platform}` (credential id {harness.credential.id})"
        )

    engine = harness.tool.repo.engine
    async with engine.begin() as conn:
        await enqueue(conn, "test.sync", {}, key="k", credential_id=harness.credential.id)
    handlers = JobHandlers()
    handlers.register("test.sync", refused)
    outcome = await Worker(engine, handlers=handlers).run_one()
    assert outcome is not None and outcome.result == "dead"

    page = (await ada.client.get(page_path(harness))).text
    assert status_of(connection(page, platform)) == "needs_reconnecting"
    # The credential's own connection is another one: not affected.
    assert status_of(connection(page, None)) == "not_connected"
