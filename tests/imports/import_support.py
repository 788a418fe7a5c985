"""What the import tests share: a harness on the Zoom double, meetings at Zoom, files as
spreadsheets write them, a signed-in console and an API client."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from html import unescape
from typing import Any

import httpx
from sqlalchemy import func, select

from ltipro.imports.tables import import_batches
from ltipro.jobs.queue import list_jobs
from ltipro.passwords import hash_password
from ltipro.plugin_settings import set_plugin_settings
from ltipro.storage.admin_repository import AdminRepository
from ltipro.storage.meetings_tables import meetings
from ltipro.storage.schema import courses
from ltipro.testing.harness import TOOL_URL, ToolHarness
from ltipro.testing.zoom_double import ACCOUNT_ID, CLIENT_ID, CLIENT_SECRET, DoubleUser, ZoomDouble

CLAIM = "https://purl.imsglobal.org/spec/lti/claim/"
LIS = "http://purl.imsglobal.org/vocab/lis/v2/"
PASSWORD = "correct horse battery staple"
TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')
DOMAIN = "canvas.example.edu"


async def use_zoom(harness: ToolHarness, latency: float = 0.0) -> ZoomDouble:
    """Route Zoom's hosts to a fresh double and make the credential use it."""
    double = ZoomDouble(latency=latency)
    harness.transport.add("api.zoom.us", double)
    harness.transport.add("zoom.us", double)
    await set_plugin_settings(
        harness.tool,
        harness.credential,
        "providers",
        {
            "provider": "zoom",
            "zoom.account_id": ACCOUNT_ID,
            "zoom.client_id": CLIENT_ID,
            "zoom.client_secret": CLIENT_SECRET,
        },
    )
    return double


def api_user(double: ZoomDouble) -> DoubleUser:
    """The account's user whose script made the meetings (the API user)."""
    found = double.user_by_email("scheduler@example.edu")
    return found or double.add_user("scheduler@example.edu", type=2)


def zoom_meetings(double: ZoomDouble, count: int, topic: str = "Lecture") -> list[int]:
    host = api_user(double)
    start = datetime.now(UTC).replace(microsecond=0, second=0) + timedelta(days=3)
    return [
        double.add_meeting(host, topic=f"{topic} {i + 1}", start_time=start).id
        for i in range(count)
    ]


def other_account_meeting(double: ZoomDouble) -> int:
    """A meeting whose host is a user of another Zoom account (not in this one's users)."""
    stranger = DoubleUser(
        id="other-account-host", email="host@other.example", type=2, status="active"
    )
    return double.add_meeting(stranger, topic="Not ours").id


def csv_bytes(
    rows: Sequence[Sequence[str]],
    header: Sequence[str] = ("Meeting ID", "Context ID", "Domain", "custom_canvas_course_id"),
    delimiter: str = ",",
) -> bytes:
    lines = [delimiter.join(header)] + [delimiter.join(r) for r in rows]
    return ("\r\n".join(lines) + "\r\n").encode()


def teacher(
    user: str = "teacher", course: str = "course-1", domain: str = DOMAIN
) -> dict[str, Any]:
    return {
        "sub": user,
        "name": user.title(),
        "email": f"{user}@example.edu",
        CLAIM + "roles": [LIS + "membership#Instructor"],
        CLAIM + "context": {"id": course, "title": f"Course {course}"},
        CLAIM + "resource_link": {"id": f"link-{course}"},
        CLAIM + "launch_presentation": {"return_url": f"https://{domain}/courses/1"},
    }


async def count(harness: ToolHarness, table: Any, *where: Any) -> int:
    async with harness.tool.repo.engine.connect() as conn:
        query = select(func.count()).select_from(table)
        for clause in where:
            query = query.where(clause)
        return int((await conn.execute(query)).scalar_one())


async def meeting_count(harness: ToolHarness) -> int:
    return await count(harness, meetings)


async def course_count(harness: ToolHarness) -> int:
    return await count(harness, courses)


async def batch_count(harness: ToolHarness) -> int:
    return await count(harness, import_batches)


async def confirm_jobs(harness: ToolHarness) -> list[Any]:
    return [j for j in await list_jobs(harness.tool.repo.engine) if j.kind == "import.confirm"]


class Console:
    """A browser signed in to the admin console."""

    def __init__(self, harness: ToolHarness) -> None:
        self.harness = harness
        self.client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=harness.app, client=("127.0.0.1", 50123)),
            base_url=TOOL_URL,
        )
        self.token = ""

    async def sign_in(
        self, email: str, *, credential_ids: Sequence[int] = (), superuser: bool = False
    ) -> None:
        await AdminRepository(self.harness.tool.repo.engine).create_admin(
            email, hash_password(PASSWORD), superuser=superuser, credential_ids=credential_ids
        )
        page = await self.client.get("/admin/login")
        token = TOKEN.search(page.text)
        assert token
        response = await self.client.post(
            "/admin/login",
            data={"csrf_token": unescape(token[1]), "email": email, "password": PASSWORD},
        )
        assert response.status_code == 303, response.text[-500:]
        home = await self.client.get("/admin/")
        found = TOKEN.search(home.text)
        assert found
        self.token = unescape(found[1])

    async def post(self, path: str, data: dict[str, Any] | None = None, **kwargs: Any) -> Any:
        return await self.client.post(
            path, data={**(data or {}), "csrf_token": self.token}, **kwargs
        )

    async def aclose(self) -> None:
        await self.client.aclose()
