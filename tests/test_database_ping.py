"""Pooled PostgreSQL connections are pinged when they sat idle, not on every checkout."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from ltipro.storage.database import create_engine, ping_idle_connections


@pytest.fixture
def postgres(pg_database: str | None) -> str:
    if pg_database is None:
        pytest.skip("LTIPRO_TEST_DATABASE_URL is not set: PostgreSQL pooling is not under test")
    return pg_database


async def _backend_pid(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one())


async def _terminate(url: str, pid: int) -> None:
    other = create_engine(url)
    try:
        async with other.connect() as conn:
            await conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    finally:
        await other.dispose()


async def test_a_connection_used_a_moment_ago_is_not_pinged(postgres: str) -> None:
    engine = create_engine(postgres, pool_size=1, max_overflow=0)
    try:
        await _backend_pid(engine)
        pings: list[object] = []
        original = engine.sync_engine.dialect.do_ping
        engine.sync_engine.dialect.do_ping = lambda c: pings.append(c) or original(c)  # type: ignore[method-assign]
        for _ in range(3):
            await _backend_pid(engine)
        assert pings == []
    finally:
        await engine.dispose()


async def test_an_idle_connection_killed_by_the_server_is_replaced_unseen(postgres: str) -> None:
    engine = create_engine(postgres, pool_size=1, max_overflow=0)
    # Every connection counts as idle: the ping runs on each checkout.
    ping_idle_connections(engine, idle=0.0)
    try:
        first = await _backend_pid(engine)
        await _terminate(postgres, first)
        second = await _backend_pid(engine)  # no error: the ping found it dead
        assert second != first
    finally:
        await engine.dispose()


async def test_a_connection_killed_between_quick_uses_fails_once_then_recovers(
    postgres: str,
) -> None:
    engine = create_engine(postgres, pool_size=2, max_overflow=0)
    try:
        first = await _backend_pid(engine)
        await _terminate(postgres, first)
        with pytest.raises(DBAPIError) as failure:
            await _backend_pid(engine)
        assert failure.value.connection_invalidated
        assert await _backend_pid(engine) != first
    finally:
        await engine.dispose()
