"""The meetings pages end to end in a real browser, the tool in the LMS's course page.

The LMS is the standalone simulator on http://127.0.0.1:P, the tool runs under uvicorn
on http://localhost:Q, and the Zoom API double is served by uvicorn on 127.0.0.1 from a
thread of the test process, so the test can hold meetings and make recordings in it.
Everything is configured the way an admin does it: with the ``ltipro`` command and the
admin console. Links to the meeting servers (a made-up Jitsi server, the double's web
host) are answered by the browser's routing, so nothing leaves the machine.
"""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jwt
import pytest
import pytest_asyncio
from sqlalchemy import create_engine, select, update
from test_third_party_cookies import CHROMIUM, CHROMIUM_ARGS, STEP_TIMEOUT_MS, _browser_available

from ltipro.storage.meetings_tables import meetings
from ltipro.testing.servers import (
    CLI_TIMEOUT,
    ServerError,
    SimulatorConfig,
    ToolConfig,
    cli_command,
    free_port,
    register_platform,
    run_cli,
    running,
    serve_app_in_thread,
    start_simulator,
    start_tool,
)
from ltipro.testing.zoom_double import ACCOUNT_ID, CLIENT_ID, CLIENT_SECRET, ZoomDouble

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]

TEST_TIMEOUT = 60.0
CREDENTIAL = "college"
JITSI_SERVER = "https://meet.example.test"
JITSI_APP_ID = "ltipro-e2e"
JITSI_APP_SECRET = "jitsi-e2e-secret-0123456789abcdef"
ADMIN_EMAIL = "admin@example.edu"
ADMIN_PASSWORD = "correct horse battery staple 42"
INSTRUCTOR = "generic/instructor"
STUDENT = "generic/student"
INSTRUCTOR_EMAIL = "sam.teacher@example.edu"
STUDENT_EMAIL = "alex.student@example.edu"


# -- servers ----------------------------------------------------------------------------------


@dataclass
class Servers:
    """The tool, the LMS simulator and the Zoom double, and how to configure the tool."""

    tool: ToolConfig
    tool_url: str
    lms_url: str
    database_url: str
    zoom: ZoomDouble
    zoom_base: str

    def cli(self, *args: str) -> None:
        """``ltipro ARGS`` against the running installation, as its admin types it."""
        run_cli(self.tool, *args)


def _create_admin(tool: ToolConfig) -> None:
    """``ltipro admins create EMAIL --superuser --password-stdin``, the password piped in."""
    result = subprocess.run(
        [*cli_command(), "admins", "create", ADMIN_EMAIL, "--superuser", "--password-stdin"],
        env=tool.environ(),
        input=ADMIN_PASSWORD + "\n",
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT,
        check=False,
    )
    if result.returncode != 0:
        raise ServerError(f"creating the admin failed:\n{result.stdout}{result.stderr}")


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    _browser_available()
    tmp = tmp_path_factory.mktemp("meetings-e2e")
    tool_port, lms_port, zoom_port = free_port(), free_port(), free_port()
    zoom_base = f"http://127.0.0.1:{zoom_port}"
    database_url = f"sqlite:///{tmp / 'ltipro.db'}"
    tool = ToolConfig(
        instance=tmp / "instance",
        base_url=f"http://localhost:{tool_port}",
        database_url=database_url,
        plugins=("generic",),
    )
    simulator = SimulatorConfig(
        port=lms_port,
        tool_url=tool.base_url,
        key_file=tmp / "platform-key.json",
        client_id="meetings-client",
        deployment_id="meetings-deployment",
        plugins=("generic",),
    )
    double = ZoomDouble(api_base_url=zoom_base + "/v2", oauth_token_url=zoom_base + "/oauth/token")
    lms = start_simulator(simulator, log_dir=tmp, wait=False)
    with running(lms):
        run_cli(tool, "init")
        with start_tool(tool, port=tool_port, log_dir=tmp, wait=False) as process:
            register_platform(
                tool,
                credential=CREDENTIAL,
                issuer=simulator.issuer,
                client_id=simulator.client_id,
                deployment_id=simulator.deployment_id,
            )
            _create_admin(tool)
            with serve_app_in_thread(double, zoom_port, "Zoom double"):
                lms.wait_until_ready()
                process.wait_until_ready()
                yield Servers(
                    tool=tool,
                    tool_url=tool.base_url,
                    lms_url=simulator.issuer,
                    database_url=database_url,
                    zoom=double,
                    zoom_base=zoom_base,
                )


def use_jitsi(servers: Servers) -> None:
    """The embedded provider on a made-up Jitsi server with token authentication."""
    servers.cli(
        "plugins",
        "set",
        "--credential",
        CREDENTIAL,
        "providers",
        "provider=jitsi",
        f"jitsi.server_url={JITSI_SERVER}",
        f"jitsi.app_id={JITSI_APP_ID}",
        f"jitsi.app_secret={JITSI_APP_SECRET}",
    )


def use_zoom(servers: Servers) -> None:
    """The Zoom provider, its API and token endpoint answered by the double."""
    servers.cli(
        "plugins",
        "set",
        "--credential",
        CREDENTIAL,
        "providers",
        "provider=zoom",
        f"zoom.account_id={ACCOUNT_ID}",
        f"zoom.client_id={CLIENT_ID}",
        f"zoom.client_secret={CLIENT_SECRET}",
        f"zoom.api_base_url={servers.zoom_base}/v2",
        f"zoom.oauth_token_url={servers.zoom_base}/oauth/token",
    )


# -- the browser ------------------------------------------------------------------------------


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def playwright(servers: Servers) -> AsyncIterator[Any]:
    from playwright.async_api import async_playwright

    async with async_playwright() as driver:
        yield driver


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def chromium(playwright: Any) -> AsyncIterator[Any]:
    """One Chromium for the module; each person gets a context (a profile) of their own."""
    browser = await playwright.chromium.launch(
        executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True, timeout=STEP_TIMEOUT_MS
    )
    try:
        yield browser
    finally:
        await browser.close()


@dataclass
class Person:
    """Someone's browser window: their own cookies, and the meeting links it was sent to."""

    context: Any
    page: Any
    meeting_links: list[str]
    # Where the tool's Start and Join answers sent the browser (their Location).
    tool_redirects: list[str]

    @property
    def tool(self) -> Any:
        return self.page.frame_locator("iframe[name=tool]")


@pytest_asyncio.fixture(loop_scope="module")
async def people(chromium: Any, tmp_path: Path) -> AsyncIterator[Any]:
    """Open a window for a person; the meeting servers named are answered by the test."""
    opened: list[Person] = []

    async def open_window(*meeting_hosts: str) -> Person:
        context = await chromium.new_context(viewport={"width": 1100, "height": 900})
        context.set_default_timeout(STEP_TIMEOUT_MS)
        links: list[str] = []
        redirects: list[str] = []

        async def meeting_server(route: Any) -> None:
            links.append(route.request.url)
            await route.fulfill(
                status=200, content_type="text/html", body="<title>Meeting</title><h1>Meeting</h1>"
            )

        async def off_to_the_meeting(route: Any) -> None:
            # Chromium follows a redirect without asking the routes again, so the
            # meeting server would be looked up in DNS, which this machine cannot. The
            # tool's real answer is kept: its 303 goes on as a navigation the routes see.
            answer = await route.fetch(max_redirects=0)
            location = answer.headers.get("location", "")
            if answer.status != 303 or not location.startswith(meeting_hosts):
                await route.fulfill(response=answer)
                return
            redirects.append(location)
            script = f"<script>location.replace({json.dumps(location)})</script>"
            await route.fulfill(status=200, content_type="text/html", body=script)

        if meeting_hosts:
            await context.route(re.compile(r"/meetings/[^/]+/(start|join)$"), off_to_the_meeting)
        for host in meeting_hosts:
            await context.route(re.compile("^" + re.escape(host) + "/"), meeting_server)
        page = await context.new_page()
        person = Person(context=context, page=page, meeting_links=links, tool_redirects=redirects)
        opened.append(person)
        return person

    try:
        yield open_window
    finally:
        for index, person in enumerate(opened):
            # Kept for looking at when a test fails.
            await person.page.screenshot(path=str(tmp_path / f"person-{index}.png"))
            await person.context.close()


async def launch(person: Person, servers: Servers, example: str, course: str) -> Any:
    """From the LMS's page, launch the tool into the course page; wait for its session."""
    from playwright.async_api import expect

    page = person.page
    await page.goto(servers.lms_url + "/")
    await page.select_option("#example", example)
    await page.fill("#context_id", course)
    await page.fill("#context_title", f"Course {course}")
    await page.click("button[type=submit]")
    tool = person.tool
    await expect(tool.locator("#api-check")).to_contain_text("Session active for")
    return tool


async def open_popup(person: Person, button: Any) -> str:
    """Click a button that opens a new window; the URL that window was sent to."""
    async with person.page.expect_popup() as popup_info:
        await button.click()
    popup = await popup_info.value
    await popup.wait_for_load_state()
    url: str = popup.url
    await popup.close()
    return url


def room_token(url: str) -> dict[str, Any]:
    """The Jitsi room token a meeting link carries, checked with the app's secret."""
    (token,) = parse_qs(urlsplit(url).query)["jwt"]
    claims: dict[str, Any] = jwt.decode(
        token, JITSI_APP_SECRET, algorithms=["HS256"], audience=JITSI_APP_ID
    )
    return claims


def meeting_row(tool: Any, topic: str) -> Any:
    return tool.locator("#panel-upcoming tr[data-meeting]", has_text=topic)


async def schedule(tool: Any, topic: str, day: str, at: str) -> str:
    """Fill in and send the page's "Schedule a meeting" form; the new meeting's id."""
    from playwright.async_api import expect

    await tool.get_by_text("Schedule a meeting", exact=True).click()
    await tool.get_by_label("Topic").fill(topic)
    await tool.get_by_label("Date").fill(day)
    await tool.get_by_label("Time", exact=True).fill(at)
    await tool.get_by_label("Duration (minutes)").fill("45")
    await tool.get_by_label("Time zone").select_option("UTC")
    await tool.get_by_role("button", name="Schedule", exact=True).click()
    row = meeting_row(tool, topic)
    await expect(row).to_have_count(1)
    uid: str = await row.get_attribute("data-meeting")
    return uid


def in_days(days: int) -> str:
    return (datetime.now(UTC) + timedelta(days=days)).date().isoformat()


# -- tests ------------------------------------------------------------------------------------


async def test_instructor_schedules_edits_and_starts_a_meeting_and_a_student_joins_it(
    servers: Servers, people: Any
) -> None:
    from playwright.async_api import expect

    async with asyncio.timeout(TEST_TIMEOUT):
        use_jitsi(servers)
        teacher = await people(JITSI_SERVER)
        tool = await launch(teacher, servers, INSTRUCTOR, "e2e-jitsi")
        await expect(tool.locator("[data-field=role]")).to_have_text("Instructor")

        day = in_days(3)
        uid = await schedule(tool, "Office hours", day, "10:00")
        row = meeting_row(tool, "Office hours")
        await expect(row.locator("td[data-label=Starts]")).to_contain_text("10:00")

        # Edit: the same form, filled with the meeting, saves a new topic and time.
        await row.get_by_role("button", name="Edit").click()
        await expect(tool.locator("#schedule summary")).to_have_text("Edit “Office hours”")
        await expect(tool.get_by_label("Topic")).to_have_value("Office hours")
        await tool.get_by_label("Topic").fill("Review session")
        await tool.get_by_label("Time", exact=True).fill("14:30")
        await tool.get_by_role("button", name="Save changes").click()
        edited = meeting_row(tool, "Review session")
        await expect(edited).to_have_attribute("data-meeting", uid)
        await expect(edited.locator("td[data-label=Starts]")).to_contain_text("14:30")
        await expect(meeting_row(tool, "Office hours")).to_have_count(0)

        # Start: a new window on the room, the host a moderator by the room token.
        start_url = await open_popup(teacher, edited.get_by_role("button", name="Start"))
        assert start_url.startswith(JITSI_SERVER + "/OfficeHours-"), start_url
        room = urlsplit(start_url).path.lstrip("/")
        host_claims = room_token(start_url)
        assert host_claims["room"] == room
        assert host_claims["moderator"] is True
        assert host_claims["context"]["user"]["email"] == INSTRUCTOR_EMAIL
        # The room keeps its name when the meeting is renamed: links already sent still work.
        assert teacher.tool_redirects == teacher.meeting_links == [start_url]

        # The student sees the meeting and joins the same room, without moderator rights.
        learner = await people(JITSI_SERVER)
        student_tool = await launch(learner, servers, STUDENT, "e2e-jitsi")
        await expect(student_tool.locator("[data-field=role]")).to_have_text("Student")
        await expect(student_tool.get_by_text("Schedule a meeting", exact=True)).to_have_count(0)
        student_row = meeting_row(student_tool, "Review session")
        await expect(student_row.get_by_role("button", name="Start")).to_have_count(0)
        join_url = await open_popup(learner, student_row.get_by_role("button", name="Join"))
        assert urlsplit(join_url).path.lstrip("/") == room
        guest_claims = room_token(join_url)
        assert guest_claims["room"] == room
        assert guest_claims["moderator"] is False
        assert guest_claims["context"]["user"]["moderator"] is False
        assert guest_claims["context"]["user"]["email"] == STUDENT_EMAIL
        assert learner.tool_redirects == learner.meeting_links == [join_url]


def hold_in_the_past(servers: Servers, uid: str, days: int) -> str:
    """Move a meeting the tool scheduled into the past and hold it, recorded, at Zoom.

    The recording's id (the held instance's UUID).
    """
    start = (datetime.now(UTC) - timedelta(days=days)).replace(microsecond=0)
    engine = create_engine(servers.database_url)
    try:
        with engine.begin() as conn:
            conn.execute(update(meetings).where(meetings.c.uid == uid).values(start_time=start))
            number = conn.execute(
                select(meetings.c.provider_meeting_id).where(meetings.c.uid == uid)
            ).scalar_one()
    finally:
        engine.dispose()
    return servers.zoom.hold_meeting(int(number), start_time=start).uuid


async def show_recordings(tool: Any) -> None:
    from playwright.async_api import expect

    await tool.get_by_role("tab", name="Cloud recordings").click()
    await tool.get_by_role("button", name="Show cloud recordings").click()
    await expect(tool.get_by_role("tab", name="Cloud recordings")).to_have_attribute(
        "aria-selected", "true"
    )


async def test_student_sees_only_the_recording_the_instructor_published_in_the_page(
    servers: Servers, people: Any
) -> None:
    from playwright.async_api import expect

    async with asyncio.timeout(TEST_TIMEOUT):
        use_zoom(servers)
        servers.cli(
            "config", "set", "--credential", CREDENTIAL, "recording_link_for_students=published"
        )
        servers.zoom.add_user(INSTRUCTOR_EMAIL, first_name="Sam", last_name="Teacher")
        teacher = await people()
        tool = await launch(teacher, servers, INSTRUCTOR, "e2e-zoom")
        lecture = await schedule(tool, "Lecture one", in_days(1), "09:00")
        seminar = await schedule(tool, "Seminar two", in_days(2), "11:00")
        assert len(servers.zoom.meetings) >= 2
        lecture_rec = hold_in_the_past(servers, lecture, days=3)
        seminar_rec = hold_in_the_past(servers, seminar, days=2)

        await show_recordings(tool)
        rows = tool.locator("#panel-recordings tr[data-recording]")
        await expect(rows).to_have_count(2)
        await expect(tool.locator("#panel-recordings")).to_contain_text(
            "Students see the recordings you publish."
        )
        lecture_row = tool.locator(f'tr[data-recording="{lecture_rec}"]')
        await lecture_row.get_by_role("button", name="Publish").click()
        await expect(
            tool.locator(f'tr[data-recording="{lecture_rec}"] [data-published]')
        ).to_have_count(1)
        await expect(
            tool.locator(f'tr[data-recording="{seminar_rec}"] [data-published]')
        ).to_have_count(0)

        learner = await people()
        student_tool = await launch(learner, servers, STUDENT, "e2e-zoom")
        await show_recordings(student_tool)
        seen = student_tool.locator("#panel-recordings tr[data-recording]")
        await expect(seen).to_have_count(1)
        await expect(seen).to_have_attribute("data-recording", lecture_rec)
        await expect(seen).to_contain_text("Lecture one")
        instance = next(i for i in servers.zoom.instances if i.uuid == lecture_rec)
        for file in instance.recording_files or []:
            await expect(seen.locator(f'a[href="{file["play_url"]}"]')).to_have_count(1)
        await expect(student_tool.get_by_role("button", name="Publish")).to_have_count(0)


async def test_admin_lets_students_host_in_the_console_and_the_next_student_launch_can_schedule(
    servers: Servers, people: Any
) -> None:
    from playwright.async_api import expect

    async with asyncio.timeout(TEST_TIMEOUT):
        use_jitsi(servers)
        servers.cli("config", "set", "--credential", CREDENTIAL, "students_may_host=false")
        learner = await people()
        before = await launch(learner, servers, STUDENT, "e2e-admin")
        await expect(before.locator("[data-field=role]")).to_have_text("Student")
        await expect(before.get_by_text("Schedule a meeting", exact=True)).to_have_count(0)

        admin = await people()
        page = admin.page
        await page.goto(servers.tool_url + "/admin")
        await page.get_by_label("Email").fill(ADMIN_EMAIL)
        await page.get_by_label("Password").fill(ADMIN_PASSWORD)
        await page.get_by_role("button", name=re.compile("sign in", re.I)).click()
        await page.get_by_role("link", name=CREDENTIAL, exact=True).click()
        box = page.locator("#opt-students_may_host")
        await expect(box).not_to_be_checked()
        await box.check()
        await page.get_by_role("button", name="Save configuration").click()
        await expect(page.locator("#opt-students_may_host")).to_be_checked()

        after = await launch(learner, servers, STUDENT, "e2e-admin")
        await expect(after.get_by_text("Schedule a meeting", exact=True)).to_be_visible()
        uid = await schedule(after, "Study group", in_days(4), "16:00")
        row = meeting_row(after, "Study group")
        await expect(row).to_have_attribute("data-meeting", uid)
        await expect(row.locator("td[data-label=Host]")).to_contain_text("(student)")
