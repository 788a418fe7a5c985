"""What ``course_lms`` reads to reach a course's LMS, and in how many trips.

Every calendar sync job (and every course notice) starts with it: the course, its
credential and its platform in one joined statement, then the LMS plugin's settings, on
one pool checkout in one transaction. What it hands back is what the four separate reads
it replaces handed back: no platform, a deleted platform, a plugin not installed or
turned off, and the settings' precedence (platform over credential over default, secrets
decrypted).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from calendar_world import DOMAIN, World
from memory_lms import NAME
from sqlalchemy import delete, event, select
from sqlalchemy.ext.asyncio import AsyncEngine

from ltipro.calendar.runtime import course_lms
from ltipro.extension import LmsDetails, SettingSpec
from ltipro.hookspecs import hookimpl
from ltipro.plugin_settings import set_plugin_settings
from ltipro.storage.schema import courses, platforms, plugin_settings
from ltipro.testing.harness import ToolHarness


@dataclass
class Trips:
    statements: list[str] = field(default_factory=list)
    checkouts: int = 0
    transactions: int = 0
    commits: int = 0


@contextmanager
def trips(engine: AsyncEngine) -> Iterator[Trips]:
    """The statements, pool checkouts, transactions and commits inside the block."""
    seen = Trips()
    sync = engine.sync_engine

    def statement(conn: Any, cursor: Any, sql: str, *args: Any) -> None:
        seen.statements.append(" ".join(sql.split()))

    def checkout(*args: Any) -> None:
        seen.checkouts += 1

    def begin(*args: Any) -> None:
        seen.transactions += 1

    def commit(*args: Any) -> None:
        seen.commits += 1

    listeners = [
        (sync, "before_cursor_execute", statement),
        (sync.pool, "checkout", checkout),
        (sync, "begin", begin),
        (sync, "commit", commit),
    ]
    for target, name, fn in listeners:
        event.listen(target, name, fn)
    try:
        yield seen
    finally:
        for target, name, fn in listeners:
            event.remove(target, name, fn)


async def record(harness: ToolHarness, context_id: str, **values: Any) -> int:
    values.setdefault("lms", NAME)
    return await harness.tool.repo.record_course(
        harness.credential.id,
        domain=DOMAIN,
        context_id=context_id,
        lms_course_id="99",
        title=context_id,
        label=None,
        history=["old-context"],
        **values,
    )


async def test_course_lms_reads_the_course_and_the_settings_in_one_checkout(
    world: World,
) -> None:
    with trips(world.engine) as seen:
        lms = await course_lms(world.tool, world.course_id, user_id="teacher-1")
    assert lms is not None
    # One statement for the course, its credential and its platform, one for the
    # plugin's settings: on one connection, in one transaction, nothing committed.
    assert len(seen.statements) == 2, seen.statements
    joined, settings = seen.statements
    assert "FROM courses JOIN credentials" in joined
    assert "LEFT OUTER JOIN platforms" in joined
    assert "FROM plugin_settings" in settings
    assert seen.checkouts == 1
    assert seen.transactions == 1
    assert seen.commits == 0

    # And it is the course, its credential and its platform that came back.
    assert lms.course_id == world.course_id and lms.lms == NAME
    assert lms.course.context_id == "bio-101" and lms.course.lms_course_id == "4242"
    assert lms.course.title == "Biology 101" and lms.course.label == "BIO101"
    assert lms.course.domain == DOMAIN and lms.course.history == ()
    assert lms.credential.id == world.credential_id
    assert lms.credential.name == world.harness.credential.name
    assert lms.credential.enabled_plugins == world.harness.credential.enabled_plugins
    assert lms.platform_id == world.harness.registration.id
    assert lms.api.platform_id == world.harness.registration.id
    assert lms.api.issuer == world.harness.registration.issuer
    assert lms.api.credential_id == world.credential_id


async def test_a_course_whose_plugin_is_missing_or_off_stops_after_one_read(
    world: World,
) -> None:
    gone = await record(world.harness, "gone-lms", lms="uninstalled")
    with trips(world.engine) as seen:
        assert await course_lms(world.tool, gone) is None
    assert len(seen.statements) == 1 and seen.checkouts == 1

    with trips(world.engine) as seen:
        assert await course_lms(world.tool, 99999) is None
    assert len(seen.statements) == 1 and seen.checkouts == 1

    credential = await world.harness.refresh_credential()
    await world.tool.repo.set_enabled_plugins(credential, ["plainlms"])
    with trips(world.engine) as seen:
        assert await course_lms(world.tool, world.course_id) is None
    assert len(seen.statements) == 1  # the settings of a plugin turned off are not read


async def test_a_course_without_a_platform_gets_the_credentials_settings(world: World) -> None:
    credential = await world.harness.refresh_credential()
    platform_id = world.harness.registration.id
    await set_plugin_settings(world.tool, credential, NAME, {"api_url": "https://cred.test"})
    await set_plugin_settings(
        world.tool, credential, NAME, {"api_url": "https://platform.test"}, platform_id=platform_id
    )
    # An LTI 1.1 launch names no platform.
    lti11 = await record(world.harness, "lti11-course")
    lms = await course_lms(world.tool, lti11)
    assert lms is not None
    assert lms.platform_id is None and lms.api.platform_id is None and lms.api.issuer is None
    assert lms.api.tokens.platform_id is None
    assert lms.settings == {"api_url": "https://cred.test"}
    assert lms.course.history == ("old-context",)

    with_platform = await course_lms(world.tool, world.course_id)
    assert with_platform is not None
    assert with_platform.settings == {"api_url": "https://platform.test"}

    # A platform deleted since: the course keeps no platform, and neither does its LMS.
    async with world.engine.begin() as conn:
        await conn.execute(delete(platforms).where(platforms.c.id == platform_id))
        named = (
            await conn.execute(select(courses.c.platform_id).where(courses.c.id == world.course_id))
        ).scalar_one()
    assert named is None
    orphan = await course_lms(world.tool, world.course_id)
    assert orphan is not None
    assert orphan.platform_id is None and orphan.api.issuer is None
    assert orphan.settings == {"api_url": "https://cred.test"}


SETLMS = "setlms"


class SettingsLmsPlugin:
    """An LMS plugin with settings at every level, one of them secret."""

    @hookimpl
    def lms_details(self) -> LmsDetails:
        return LmsDetails(name=SETLMS, title="Settings LMS")

    @hookimpl
    def plugin_settings(self) -> list[SettingSpec]:
        return [
            SettingSpec(SETLMS, "api_url", "API URL", scope="platform", default="https://d.test"),
            SettingSpec(SETLMS, "region", "Region", scope="platform", default="eu"),
            SettingSpec(SETLMS, "page_size", "Page size", default=50, validate=int),
            SettingSpec(SETLMS, "client_secret", "Client secret", secret=True),
        ]


@pytest.fixture
async def settings_lms(database_url: str, tmp_path: Path) -> AsyncIterator[ToolHarness]:
    async with ToolHarness(
        database_url=database_url,
        instance=tmp_path / "instance",
        plugins=[],
        extra_plugins=[(SETLMS, SettingsLmsPlugin())],
        lms=SETLMS,
    ) as harness:
        yield harness


async def test_platform_settings_override_the_credentials_and_secrets_come_decrypted(
    settings_lms: ToolHarness,
) -> None:
    harness = settings_lms
    tool = harness.tool
    credential = harness.credential
    platform_id = harness.registration.id
    await set_plugin_settings(
        tool, credential, SETLMS, {"region": "us", "api_url": "https://cred.test"}
    )
    await set_plugin_settings(tool, credential, SETLMS, {"client_secret": "s3cret"})
    await set_plugin_settings(
        tool, credential, SETLMS, {"api_url": "https://platform.test"}, platform_id=platform_id
    )
    # Another platform's value is not this course's.
    await harness.use_platform("https://other.test", "other-client", "dep-2", lms=SETLMS)
    other = [p for p in await tool.repo.list_platforms() if p.issuer == "https://other.test"]
    await set_plugin_settings(tool, credential, SETLMS, {"region": "ap"}, platform_id=other[0].id)
    course_id = await record(harness, "settings-course", lms=SETLMS, platform_id=platform_id)

    lms = await course_lms(tool, course_id)
    assert lms is not None
    assert lms.settings == {
        "api_url": "https://platform.test",  # the platform's, over the credential's
        "region": "us",  # the credential's, over the default
        "page_size": 50,  # the default
        "client_secret": "s3cret",  # decrypted
    }
    assert lms.api.settings == lms.settings
    # The secret is stored encrypted all the same.
    async with tool.repo.engine.connect() as conn:
        stored = (
            await conn.execute(
                select(plugin_settings.c.value).where(plugin_settings.c.key == "client_secret")
            )
        ).scalar_one()
    assert "s3cret" not in str(stored)
