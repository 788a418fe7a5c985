"""What a launch costs the database driver, counted, and the connection blocks that keep
it low: single statements in autocommit on PostgreSQL, a login's reads and writes on one
connection, and SQLite's statements in one trip to aiosqlite's thread each."""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from typing import Any

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, event, insert, select, update
from sqlalchemy.exc import IntegrityError, OperationalError

from ltipro.storage import sqlite_driver
from ltipro.storage.database import autocommits, create_engine
from ltipro.storage.schema import protocol_state
from ltipro.testing.dbcounts import driver_calls
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


async def _others_see(harness: ToolHarness, key: str) -> bool:
    async with harness.tool.repo.engine.connect() as conn:
        found = (
            await conn.execute(
                select(protocol_state.c.value).where(
                    protocol_state.c.kind == "test", protocol_state.c.key == key
                )
            )
        ).first()
    return found is not None


async def test_a_launch_costs_what_it_is_counted_to_cost(harness: ToolHarness) -> None:
    # Warm up: the course and the tool's key exist, the caches are filled.
    assert (await harness.launch13(STUDENT)).status_code == 200
    harness.client.cookies.clear()
    checkouts = 0

    def counted(*_: Any) -> None:
        nonlocal checkouts
        checkouts += 1

    pool = harness.tool.repo.engine.sync_engine.pool
    event.listen(pool, "checkout", counted)
    try:
        with driver_calls(Counter()) as counts:
            response = await harness.launch13(STUDENT)
    finally:
        event.remove(pool, "checkout", counted)
    assert response.status_code == 200 and "<h1>Meetings" in response.text
    # Login: one checkout (registration, state). Launch: the state taken with its
    # platform, the nonce, the course, the session with its log entry, the first page.
    assert checkouts == 6
    if autocommits(harness.tool.repo.engine):
        # 10 statements; BEGIN and COMMIT only around the two that must decide together.
        assert counts["round trips"] == 14
    else:
        # Every statement, commit and rollback ran on the event loop's thread: SQLite was
        # never busy, so nothing went to aiosqlite's.
        assert counts["driver calls"] == 0


async def test_a_statements_block_shares_one_connection_and_commits_each_write(
    harness: ToolHarness,
) -> None:
    tool = harness.tool
    checkouts = 0

    def counted(*_: Any) -> None:
        nonlocal checkouts
        checkouts += 1

    pool = tool.repo.engine.sync_engine.pool
    event.listen(pool, "checkout", counted)
    try:
        async with tool.repo.statements():
            found = await tool.repo.find_platforms(harness.platform.issuer)
            await tool.store.put("test", "one", "1", ttl=60)
            visible_inside = await _others_see(harness, "one")
            checkouts_inside = checkouts
    finally:
        event.remove(pool, "checkout", counted)
    assert [p.issuer for p in found] == [harness.platform.issuer]
    # The reads and the write used the block's connection (the check above took one more).
    assert checkouts_inside == 2
    # On PostgreSQL the write committed by itself at once; SQLite commits at the block's end.
    assert visible_inside is autocommits(tool.repo.engine)
    assert await _others_see(harness, "one")


async def test_writes_that_must_commit_together_keep_their_transaction_in_a_statements_block(
    harness: ToolHarness,
) -> None:
    tool = harness.tool
    with pytest.raises(RuntimeError):
        async with tool.repo.statements():
            async with tool.repo.transaction():
                await tool.store.put("test", "a", "1", ttl=60)
                await tool.store.put("test", "b", "1", ttl=60)
                raise RuntimeError("failed after both writes")
    assert not await _others_see(harness, "a") and not await _others_see(harness, "b")


async def test_a_single_write_outside_any_block_commits_by_itself(harness: ToolHarness) -> None:
    await harness.tool.store.put("test", "alone", "1", ttl=60)
    assert await _others_see(harness, "alone")
    assert await harness.tool.store.add_once("test-nonce", "n-1", ttl=60)
    assert not await harness.tool.store.add_once("test-nonce", "n-1", ttl=60)


# -- SQLite: statements inline, on aiosqlite's thread only when SQLite is busy -----------

metadata = MetaData()
things = Table(
    "things",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(50), unique=True, nullable=False),
)


async def test_sqlite_statements_return_rows_counts_and_errors_inline(
    tmp_path: Any,
) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'one-trip.db'}")
    try:
        async with engine.begin() as conn:
            await conn.run_sync(metadata.create_all)
        with driver_calls(Counter()) as counts:
            async with engine.begin() as conn:
                made = await conn.execute(insert(things).values(name="a").returning(things.c.id))
                first_id = made.scalar_one()
                await conn.execute(insert(things), [{"name": "b"}, {"name": "c"}])
                changed = await conn.execute(
                    update(things).where(things.c.name != "a").values(name=things.c.name + "!")
                )
                rows = (await conn.execute(select(things.c.name).order_by(things.c.id))).all()
        assert first_id == 1
        assert changed.rowcount == 2
        assert [r.name for r in rows] == ["a", "b!", "c!"]
        # Only the many-row insert went to aiosqlite's thread; the rest ran inline (the
        # stock adapter made four trips per statement, and one per commit and rollback).
        assert counts["driver calls"] == 1

        with pytest.raises(IntegrityError):
            async with engine.begin() as conn:
                await conn.execute(insert(things).values(name="a"))
        with pytest.raises(OperationalError):
            async with engine.connect() as conn:
                await conn.exec_driver_sql("SELECT * FROM no_such_table")
        # The connection is still good after both errors, and nothing half-written stayed.
        async with engine.connect() as conn:
            names = (await conn.execute(select(things.c.name))).scalars().all()
        assert sorted(names) == ["a", "b!", "c!"]
    finally:
        await engine.dispose()


async def test_a_sqlite_writer_that_finds_the_lock_taken_waits_without_blocking_the_loop(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    waited: list[str] = []
    original = sqlite_driver._waiting

    def waiting(connection: Any, call: Any) -> Any:
        waited.append(threading.current_thread().name)
        return original(connection, call)

    monkeypatch.setattr(sqlite_driver, "_waiting", waiting)
    engine = create_engine(f"sqlite:///{tmp_path / 'busy.db'}")
    try:
        async with engine.begin() as conn:
            await conn.run_sync(metadata.create_all)
        holding = asyncio.Event()
        ticks = 0

        async def holder() -> None:
            # Takes SQLite's write lock, then keeps it across awaits for a while.
            async with engine.begin() as conn:
                await conn.execute(insert(things).values(name="first"))
                holding.set()
                await asyncio.sleep(0.3)

        async def ticker() -> None:
            nonlocal ticks
            for _ in range(20):
                await asyncio.sleep(0.01)
                ticks += 1

        async def second_writer() -> None:
            await holding.wait()
            async with engine.begin() as conn:
                await conn.execute(insert(things).values(name="second"))

        await asyncio.wait_for(asyncio.gather(holder(), ticker(), second_writer()), 10)
        # The second writer found SQLite busy and waited on aiosqlite's thread; the event
        # loop went on meanwhile (an inline wait would have stopped the ticker, and the
        # holder could never have committed).
        assert waited and threading.main_thread().name not in waited
        assert ticks == 20
        async with engine.connect() as conn:
            names = (await conn.execute(select(things.c.name).order_by(things.c.id))).all()
        assert [n for (n,) in names] == ["first", "second"]
    finally:
        await engine.dispose()
