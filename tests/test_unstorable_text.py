"""Text with a NUL character is refused with a 4xx on both databases, never a 500.

PostgreSQL cannot store NUL in a text column; SQLite can. The tool refuses it on both, in
the meetings form where people type, and for every statement as a last line of defence.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import insert, select

from ltipro.storage.database import UnstorableText
from ltipro.storage.meetings_tables import meetings
from ltipro.storage.schema import launch_log
from ltipro.testing.harness import ToolHarness
from tests.test_meetings import TEACHER, launch


async def test_a_topic_with_a_nul_character_is_a_field_error_and_nothing_is_stored(
    harness: ToolHarness,
) -> None:
    teacher = await launch(harness, TEACHER)
    start = (datetime.now(UTC) + timedelta(days=2)).replace(microsecond=0)
    body = {"topic": "Office\x00hours", "start_time": start.isoformat(), "duration": 30}
    created = await teacher.api("POST", "/api/v1/meetings", json=body)
    assert created.status_code == 422
    assert "control characters" in created.json()["fields"]["topic"]
    assert await harness.tool.repo.count(meetings) == 0


async def test_a_patch_with_a_nul_character_changes_nothing(harness: ToolHarness) -> None:
    teacher = await launch(harness, TEACHER)
    start = (datetime.now(UTC) + timedelta(days=2)).replace(microsecond=0)
    body = {"topic": "Office hours", "start_time": start.isoformat(), "duration": 30}
    uid = (await teacher.api("POST", "/api/v1/meetings", json=body)).json()["id"]
    changed = await teacher.api("PATCH", f"/api/v1/meetings/{uid}", json={"agenda": "a\x00"})
    assert changed.status_code == 422
    shown = await teacher.api("GET", f"/api/v1/meetings/{uid}")
    assert shown.json()["agenda"] == ""


async def test_the_database_layer_refuses_nul_and_rolls_the_whole_transaction_back(
    harness: ToolHarness,
) -> None:
    engine = harness.tool.repo.engine
    row = {"at": datetime.now(UTC), "outcome": "ok", "user_id": "first"}
    with pytest.raises(UnstorableText):
        async with engine.begin() as conn:
            await conn.execute(insert(launch_log).values(**row))
            await conn.execute(insert(launch_log).values(**{**row, "user_id": "se\x00cond"}))
    async with engine.connect() as conn:
        users = (await conn.execute(select(launch_log.c.user_id))).scalars().all()
    assert "first" not in users
