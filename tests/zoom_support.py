"""Launching the tool against the Zoom API double: the credential set to Zoom, options set,
people launching from a course and using its pages with their session token."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import update

from ltipro.plugin_settings import set_plugin_settings
from ltipro.storage.meetings_tables import meetings
from ltipro.testing.harness import ToolHarness
from ltipro.testing.zoom_double import (
    ACCOUNT_ID,
    CLIENT_ID,
    CLIENT_SECRET,
    RecordedRequest,
    ZoomDouble,
)

CLAIM = "https://purl.imsglobal.org/spec/lti/claim/"
LIS = "http://purl.imsglobal.org/vocab/lis/v2/"
WEBHOOK_SECRET = "webhook-secret-token-0123456789"


def person(
    user: str,
    role: str = "Learner",
    course: str = "bio-101",
    domain: str = "example.edu",
    **custom: str,
) -> dict[str, Any]:
    """LTI 1.3 claims of someone in a course; ``custom`` become custom parameters."""
    claims: dict[str, Any] = {
        "sub": user,
        "name": user.title(),
        "given_name": user.title(),
        "family_name": "Tester",
        "email": f"{user}@{domain}",
        CLAIM + "roles": [LIS + f"membership#{role}"],
        CLAIM + "context": {"id": course, "title": f"Course {course}"},
        CLAIM + "resource_link": {"id": f"link-{course}"},
    }
    if custom:
        claims[CLAIM + "custom"] = dict(custom)
    return claims


def teacher(name: str = "teacher", **custom: str) -> dict[str, Any]:
    return person(name, "Instructor", **custom)


def student(name: str = "student", **custom: str) -> dict[str, Any]:
    return person(name, "Learner", **custom)


def tomorrow(hour: int = 10) -> dict[str, str]:
    day = (datetime.now(UTC) + timedelta(days=1)).date()
    return {"date": day.isoformat(), "time": f"{hour:02d}:00", "timezone": "UTC"}


class Browser:
    """One person's launched page: post its forms with the session token it carries."""

    def __init__(self, harness: ToolHarness, page: httpx.Response) -> None:
        self.harness = harness
        self.page = page
        self.token = harness.session_token(page)

    async def post(self, path: str, **fields: Any) -> httpx.Response:
        self.harness.client.cookies.clear()
        response = await self.harness.client.post(path, data={"session": self.token, **fields})
        if response.status_code < 300 and "text/html" in response.headers.get("content-type", ""):
            self.page = response
        return response

    async def api(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        self.harness.client.cookies.clear()
        headers = {"Authorization": f"Bearer {self.token}"}
        return await self.harness.client.request(method, path, headers=headers, **kwargs)

    async def schedule(self, topic: str = "Office hours", **extra: str) -> str:
        before = set(self.meeting_ids())
        response = await self.post(
            "/meetings/schedule", topic=topic, duration="45", **(tomorrow() | extra)
        )
        assert response.status_code == 200, re.findall(
            r"(?:field-error|flash bad)[^>]*>([^<]*)", response.text
        )
        (uid,) = set(self.meeting_ids()) - before
        return uid

    def meeting_ids(self) -> list[str]:
        return re.findall(r'<tr data-meeting="([^"]+)">', self.page.text)


class ZoomCourse:
    """A harness whose credential uses Zoom, answered by the double."""

    def __init__(self, harness: ToolHarness, double: ZoomDouble) -> None:
        self.harness = harness
        self.double = double

    async def options(self, **changes: Any) -> None:
        credential = await self.harness.refresh_credential()
        await self.harness.tool.repo.set_options(credential, credential.options.updated(changes))

    async def launch(self, claims: dict[str, Any], status: int = 200) -> Browser:
        page = await self.harness.launch13(claims)
        assert page.status_code == status, page.text[-1500:]
        return Browser(self.harness, page)

    def calls(self, operation: str) -> list[RecordedRequest]:
        return self.double.requests_for(operation)

    def bodies(self, operation: str) -> list[dict[str, Any]]:
        return [json.loads(r.body) for r in self.calls(operation) if r.body]

    def forget_requests(self) -> None:
        self.double.requests.clear()

    async def move_to_past(self, uid: str, days: int = 2) -> datetime:
        """Make a scheduled meeting one that started ``days`` ago (in the tool)."""
        start = (datetime.now(UTC) - timedelta(days=days)).replace(microsecond=0)
        async with self.harness.tool.repo.engine.begin() as conn:
            await conn.execute(
                update(meetings).where(meetings.c.uid == uid).values(start_time=start)
            )
        return start

    async def zoom_id(self, uid: str) -> int:
        async with self.harness.tool.repo.engine.connect() as conn:
            row = (await conn.execute(meetings.select().where(meetings.c.uid == uid))).one()
        return int(row.provider_meeting_id)


async def use_zoom(harness: ToolHarness, **settings: str) -> ZoomCourse:
    """Route Zoom's hosts to a fresh double and make the credential use it."""
    double = ZoomDouble()
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
            "zoom.webhook_secret_token": WEBHOOK_SECRET,
            **settings,
        },
    )
    return ZoomCourse(harness, double)
