"""``PATCH /api/v1/meetings/{uid}`` changes what it is sent and keeps everything else,
the recurrence and the sections and groups included."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from ltipro.testing.harness import ToolHarness

CLAIM = "https://purl.imsglobal.org/spec/lti/claim/"
TEACHER: dict[str, Any] = {
    "sub": "teacher",
    "name": "Teacher",
    "email": "teacher@example.edu",
    CLAIM + "roles": ["http://purl.imsglobal.org/vocab/lis/v2/membership#Instructor"],
    CLAIM + "context": {"id": "bio-101", "title": "Biology"},
    CLAIM + "resource_link": {"id": "link-bio"},
}


async def api(harness: ToolHarness, token: str, method: str, path: str, **kw: Any) -> Any:
    harness.client.cookies.clear()
    return await harness.client.request(
        method, path, headers={"Authorization": f"Bearer {token}"}, **kw
    )


async def test_a_patch_that_does_not_mention_the_recurrence_keeps_it(harness: ToolHarness) -> None:
    page = await harness.launch13(TEACHER)
    token = harness.session_token(page)
    start = (datetime.now(UTC) + timedelta(days=3)).replace(hour=9, minute=0, microsecond=0)
    weekly = await api(
        harness,
        token,
        "POST",
        "/api/v1/meetings",
        json={
            "topic": "Seminar",
            "start_time": start.isoformat(),
            "timezone": "Europe/Paris",
            "repeat": "weekly",
            "weekly_days": ["mon", "wed"],
            "end_times": 4,
        },
    )
    assert weekly.status_code == 201, weekly.text
    until = await api(
        harness,
        token,
        "POST",
        "/api/v1/meetings",
        json={
            "topic": "Daily stand-up",
            "start_time": start.isoformat(),
            "timezone": "America/Chicago",
            "repeat": "daily",
            "repeat_interval": 2,
            "end_date": (start + timedelta(days=20)).date().isoformat(),
        },
    )
    assert until.status_code == 201, until.text
    for created in (weekly.json(), until.json()):
        changed = await api(
            harness, token, "PATCH", f"/api/v1/meetings/{created['id']}", json={"duration": 30}
        )
        assert changed.status_code == 200, changed.text
        body = changed.json()
        assert body["duration"] == 30
        assert body["recurrence"] == created["recurrence"]
        assert body["start_time"] == created["start_time"]
    stopped = await api(
        harness,
        token,
        "PATCH",
        f"/api/v1/meetings/{weekly.json()['id']}",
        json={"repeat": "none"},
    )
    assert stopped.json()["recurrence"] is None
