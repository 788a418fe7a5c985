"""The reads a launch folds into others: the import check on the course's write, the first
page's reads on one connection, the plugins' setting declarations collected once."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import event, func, select

from ltipro.context import CourseIdentifiers, LaunchContext
from ltipro.extension import SettingSpec
from ltipro.hookspecs import hookimpl
from ltipro.identity import Identity
from ltipro.imports.batches import SOURCE as IMPORTED
from ltipro.meetings.launch_steps import imported_meetings_question
from ltipro.meetings.repository import MeetingsRepository
from ltipro.plugin_settings import declared_settings
from ltipro.plugins import Plugins
from ltipro.storage.schema import launch_log
from ltipro.testing.harness import ToolHarness

INSTRUCTOR: dict[str, Any] = {
    "sub": "teacher-1",
    "email": "ada@example.edu",
    "https://purl.imsglobal.org/spec/lti/claim/roles": [
        "http://purl.imsglobal.org/vocab/lis/v2/membership#Instructor"
    ],
    "https://purl.imsglobal.org/spec/lti/claim/context": {"id": "course-9", "title": "Compilers"},
    "https://purl.imsglobal.org/spec/lti/claim/resource_link": {"id": "link-9"},
}


async def _course(harness: ToolHarness, context_id: str) -> int:
    return await harness.tool.repo.record_course(
        harness.credential.id,
        lms="generic",
        domain="lms.test",
        context_id=context_id,
        lms_course_id=None,
        title=context_id,
        label=None,
        history=(),
    )


async def _meeting(harness: ToolHarness, course_id: int, n: int, source: str) -> int:
    meeting = await MeetingsRepository(harness.tool.repo.engine).add(
        credential_id=harness.credential.id,
        course_id=course_id,
        provider="jitsi",
        provider_meeting_id=f"room-{n}",
        topic=f"Meeting {n}",
        start_time=datetime(2030, 1, 1, 9, tzinfo=UTC),
        duration=30,
        timezone="UTC",
        join_url=f"https://meet.example/room-{n}",
        host_user_id="teacher-1",
        host_email="ada@example.edu",
        host_role="instructor",
        host_account_id="",
        source=source,
    )
    return meeting.id


def _instructor(context_id: str) -> tuple[LaunchContext, Identity]:
    context = LaunchContext(
        lms="generic",
        lti_version="1.3",
        credential="test",
        user_id="teacher-1",
        course=CourseIdentifiers(context_id=context_id),
        domain="lms.test",
        email="ada@example.edu",
    )
    return context, Identity(role="instructor", email="ada@example.edu", timezone="UTC")


async def _asked(harness: ToolHarness, context_id: str) -> tuple[int, Any]:
    context, identity = _instructor(context_id)
    question = imported_meetings_question(harness.credential, context, identity)
    assert question is not None
    return await harness.tool.repo.record_course_asking(
        question,
        harness.credential.id,
        lms="generic",
        domain="lms.test",
        context_id=context_id,
        lms_course_id=None,
        title=context_id,
        label=None,
        history=(),
    )


async def test_the_course_write_answers_whether_the_course_holds_an_imported_meeting(
    harness: ToolHarness,
) -> None:
    # Meeting ids and course ids overlap on purpose: the question must compare the
    # meeting's course with this course, not with the meeting's own id.
    plain = await _course(harness, "plain")
    imported = await _course(harness, "imported")
    other = await _course(harness, "other")
    await _meeting(harness, plain, 1, "tool")
    await _meeting(harness, imported, 2, "tool")
    await _meeting(harness, imported, 3, IMPORTED)
    await _meeting(harness, other, 4, "tool")

    assert await _asked(harness, "imported") == (imported, True)
    assert await _asked(harness, "plain") == (plain, False)
    assert await _asked(harness, "other") == (other, False)
    created, answer = await _asked(harness, "brand-new")  # the INSERT answers it too
    assert created not in (plain, imported, other) and not answer
    # Without a question the write answers nothing, and the row is the same.
    assert await _course(harness, "imported") == imported


def test_only_an_instructor_launch_with_the_option_off_asks_about_imported_meetings(
    harness: ToolHarness,
) -> None:
    credential = harness.credential
    context, identity = _instructor("course-9")
    assert imported_meetings_question(credential, context, identity) is not None
    student = Identity(role="student", email="s@example.edu", timezone="UTC")
    assert imported_meetings_question(credential, context, student) is None
    no_email = Identity(role="instructor", email=None, timezone="UTC")
    assert imported_meetings_question(credential, context, no_email) is None
    anonymous = replace(context, user_id=None)
    assert imported_meetings_question(credential, anonymous, identity) is None
    outside = replace(context, course=None)
    assert imported_meetings_question(credential, outside, identity) is None
    # With the option on every instructor becomes an alternative host: nothing to ask.
    with_option = replace(
        credential, options=replace(credential.options, auto_populate_alternative_host=True)
    )
    assert imported_meetings_question(with_option, context, identity) is None


async def test_reads_in_a_shared_read_block_use_one_connection_and_writes_commit_apart(
    harness: ToolHarness,
) -> None:
    tool = harness.tool
    engine = tool.repo.engine
    checkouts = 0

    def counted(*_: Any) -> None:
        nonlocal checkouts
        checkouts += 1

    event.listen(engine.sync_engine.pool, "checkout", counted)
    try:
        course = await _course(harness, "course-9")
        checkouts = 0
        async with tool.repo.reading():
            await tool.repo.plugin_settings(harness.credential.id, "providers")
            await MeetingsRepository(engine).for_course(course)
        assert checkouts == 1
        # A write inside the block does not join it: it commits on its own connection and
        # stays when the block's read transaction is rolled back.
        async with tool.repo.reading():
            await tool.repo.log_launch(outcome="ok", lti_version="1.3")
        async with engine.connect() as conn:
            logged = (await conn.execute(select(func.count()).select_from(launch_log))).scalar()
        assert logged == 1
        # Inside a shared transaction, a read block joins it (and sees its writes).
        async with tool.repo.transaction():
            await tool.repo.log_launch(outcome="ok", lti_version="1.3")
            async with tool.repo.reading() as conn:
                seen = (await conn.execute(select(func.count()).select_from(launch_log))).scalar()
        assert seen == 2
    finally:
        event.remove(engine.sync_engine.pool, "checkout", counted)


async def test_the_first_page_after_a_launch_lists_the_course_meetings(
    harness: ToolHarness,
) -> None:
    first = await harness.launch13(INSTRUCTOR)
    assert first.status_code == 200 and "<h1>Meetings" in first.text
    course = await _course(harness, "course-9")
    await _meeting(harness, course, 1, "tool")
    harness.client.cookies.clear()
    again = await harness.launch13(INSTRUCTOR)
    assert again.status_code == 200 and "Meeting 1" in again.text


class Declares:
    calls = 0

    @hookimpl
    def plugin_settings(self) -> list[SettingSpec]:
        Declares.calls += 1
        return [SettingSpec("declares", "k", "K")]


class DeclaresToo:
    @hookimpl
    def plugin_settings(self) -> list[SettingSpec]:
        return [SettingSpec("declares_too", "j", "J")]


async def test_declarations_are_collected_once_until_the_plugins_change() -> None:
    Declares.calls = 0
    plugins = Plugins.load((), extra=[("declares", Declares())])
    first = await declared_settings(plugins)
    first["declares"].clear()  # a caller changing its copy changes nothing cached
    second = await declared_settings(plugins)
    assert [s.key for s in second["declares"]] == ["k"]
    assert Declares.calls == 1
    plugins.register(DeclaresToo(), name="declares_too")
    third = await declared_settings(plugins)
    assert set(third) >= {"declares", "declares_too"}
    assert Declares.calls == 2
    # Another plugin set collects its own.
    await declared_settings(Plugins.load((), extra=[("declares", Declares())]))
    assert Declares.calls == 3
