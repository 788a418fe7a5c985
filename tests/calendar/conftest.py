"""Fixtures of the calendar tests: ``world`` (see ``calendar_world.py``)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from calendar_world import COURSE, DOMAIN, LMS_COURSE, World
from memory_lms import NAME, TOKEN, MemoryLmsPlugin, NoCalendarPlugin, install
from sqlalchemy import select

from ltipro.calendar.runtime import token_store
from ltipro.lmsapi import StoredToken
from ltipro.storage.schema import courses
from ltipro.testing.harness import ToolHarness


@pytest.fixture
async def world(database_url: str, tmp_path: Path) -> AsyncIterator[World]:
    async with ToolHarness(
        database_url=database_url,
        instance=tmp_path / "instance",
        plugins=[],
        extra_plugins=[(NAME, MemoryLmsPlugin()), ("plainlms", NoCalendarPlugin())],
        lms=NAME,
    ) as harness:
        service = install(harness.transport)
        await harness.tool.repo.record_course(
            harness.credential.id,
            lms=NAME,
            domain=DOMAIN,
            context_id=COURSE,
            lms_course_id=LMS_COURSE,
            title="Biology 101",
            label="BIO101",
            history=[],
            platform_id=harness.registration.id,
        )
        async with harness.tool.repo.engine.connect() as conn:
            course_id = (
                await conn.execute(select(courses.c.id).where(courses.c.context_id == COURSE))
            ).scalar_one()
        await token_store(harness.tool, harness.credential.id, harness.registration.id, NAME).put(
            "app", StoredToken(TOKEN)
        )
        yield World(harness, service, course_id)
