"""Shared transactions: the statements of a block commit together or not at all, on each
backend, and the launch writes its session and its log entry that way."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import func, select

from ltipro.sessions import SESSION_KIND
from ltipro.storage.schema import launch_log, protocol_state
from ltipro.testing.harness import ToolHarness

STUDENT: dict[str, Any] = {
    "sub": "student-7",
    "email": "grace@example.edu",
    "https://purl.imsglobal.org/spec/lti/claim/roles": [
        "http://purl.imsglobal.org/vocab/lis/v2/membership#Learner"
    ],
    "https://purl.imsglobal.org/spec/lti/claim/context": {"id": "course-9", "title": "Compilers"},
    "https://purl.imsglobal.org/spec/lti/claim/resource_link": {"id": "link-9"},
}


async def _stored(harness: ToolHarness) -> tuple[int, int]:
    """(protocol-store entries of kind ``test``, launch-log entries), read on a connection
    of its own."""
    async with harness.tool.repo.engine.connect() as conn:
        entries = (
            await conn.execute(
                select(func.count())
                .select_from(protocol_state)
                .where(protocol_state.c.kind == "test")
            )
        ).scalar_one()
        logged = (await conn.execute(select(func.count()).select_from(launch_log))).scalar_one()
    return int(entries), int(logged)


async def test_the_writes_of_a_block_are_seen_only_once_it_ends(harness: ToolHarness) -> None:
    tool = harness.tool
    async with tool.repo.transaction():
        await tool.store.put("test", "one", "1", ttl=60)
        await tool.repo.log_launch(outcome="ok", lti_version="1.3")
        # Read back on the block's own connection: there.
        assert await tool.store.peek("test", "one") == "1"
        assert await _stored(harness) == (0, 0)  # not yet committed for anyone else
    assert await _stored(harness) == (1, 1)


async def test_a_block_that_raises_keeps_none_of_its_writes(harness: ToolHarness) -> None:
    tool = harness.tool
    with pytest.raises(RuntimeError):
        async with tool.repo.transaction():
            await tool.store.put("test", "one", "1", ttl=60)
            await tool.repo.log_launch(outcome="ok", lti_version="1.3")
            raise RuntimeError("failed after both writes")
    assert await _stored(harness) == (0, 0)


async def test_a_nested_block_joins_the_outer_one(harness: ToolHarness) -> None:
    tool = harness.tool
    with pytest.raises(RuntimeError):
        async with tool.repo.transaction() as outer:
            async with tool.repo.transaction() as inner:
                assert inner is outer
                await tool.store.put("test", "one", "1", ttl=60)
            assert await _stored(harness) == (0, 0)  # the inner block did not commit
            raise RuntimeError("the outer block fails")
    assert await _stored(harness) == (0, 0)


async def test_a_task_that_outlives_the_block_uses_a_connection_of_its_own(
    harness: ToolHarness,
) -> None:
    tool = harness.tool
    go = asyncio.Event()

    async def later() -> None:
        await go.wait()
        await tool.store.put("test", "later", "1", ttl=60)

    async with tool.repo.transaction():
        task = asyncio.create_task(later())  # inherits the block's context
        await tool.store.put("test", "one", "1", ttl=60)
    go.set()
    await task
    assert await _stored(harness) == (2, 0)


async def test_a_launch_that_cannot_log_keeps_no_session(
    harness: ToolHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The session and the "ok" log entry are one transaction: a failure writing the
    entry leaves no session behind that no browser could ever use."""
    repo = harness.tool.repo
    original = repo.log_launch

    async def log_then_fail(**values: Any) -> None:
        await original(**values)
        if values.get("outcome") == "ok":
            raise RuntimeError("the launch log is unavailable")

    monkeypatch.setattr(repo, "log_launch", log_then_fail)
    with pytest.raises(RuntimeError):
        await harness.launch13(STUDENT)
    async with repo.engine.connect() as conn:
        sessions = (
            await conn.execute(
                select(func.count())
                .select_from(protocol_state)
                .where(protocol_state.c.kind == SESSION_KIND)
            )
        ).scalar_one()
    assert sessions == 0
    assert [r.outcome for r in await repo.recent_launches()] == []
