"""The protocol store (OIDC state, nonces, sessions): single use across workers, expiry,
purging, and a clean refusal when Redis cannot be reached.

Every store test runs on SQLite, on PostgreSQL when ``LTIPRO_TEST_DATABASE_URL`` is set
and on Redis when ``LTIPRO_TEST_REDIS_URL`` is set (``redis://127.0.0.1:6379/15``).
"""

from __future__ import annotations

import asyncio
import os
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from sqlalchemy import delete

from ltipro.storage import store as store_module
from ltipro.storage.database import create_engine
from ltipro.storage.schema import launch_log, protocol_state
from ltipro.storage.store import DatabaseStore, ProtocolStore, RedisStore, StoreUnavailable
from ltipro.testing.harness import ToolHarness

PG_URL = os.environ.get("LTIPRO_TEST_DATABASE_URL")
REDIS_URL = os.environ.get("LTIPRO_TEST_REDIS_URL")
DATABASE_BACKENDS = ["sqlite", *(["postgresql"] if PG_URL else [])]
BACKENDS = [*DATABASE_BACKENDS, *(["redis"] if REDIS_URL else [])]
# Nothing listens on port 1: connections are refused at once.
UNREACHABLE_REDIS = "redis://127.0.0.1:1/0"
WORKERS = 3
CALLERS_PER_WORKER = 8


class Clock:
    """The database stores' clock, moved forward by tests instead of waiting."""

    def __init__(self) -> None:
        self.now = time.time()

    def time(self) -> float:
        return self.now


@dataclass
class Backend:
    """Several stores on one backend, as separate worker processes each open their own."""

    name: str
    stores: list[ProtocolStore]
    clock: Clock | None = None
    closers: list[object] = field(default_factory=list)

    @property
    def store(self) -> ProtocolStore:
        return self.stores[0]

    async def advance(self, seconds: float) -> None:
        """Let ``seconds`` pass for the store."""
        if self.clock is not None:
            self.clock.now += seconds
        else:
            # Redis expires keys by its own clock.
            await asyncio.sleep(seconds + 0.1)


@pytest.fixture(params=BACKENDS)
async def backend(
    request: pytest.FixtureRequest,
    ltipro_database_url: str,
    pg_database: str | None,
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[Backend]:
    if request.param == "redis":
        assert REDIS_URL is not None
        prefix = f"ltipro-test:{secrets.token_hex(4)}:"
        stores: list[ProtocolStore] = [RedisStore(REDIS_URL, prefix=prefix) for _ in range(WORKERS)]
        try:
            yield Backend("redis", stores)
        finally:
            import redis.asyncio as redis

            cleaner = redis.from_url(REDIS_URL)
            keys = [key async for key in cleaner.scan_iter(match=prefix + "*")]
            if keys:
                await cleaner.delete(*keys)
            await cleaner.aclose()
            for store in stores:
                await store.close()
        return
    url = ltipro_database_url if request.param == "sqlite" else pg_database
    assert url is not None
    clock = Clock()
    monkeypatch.setattr(store_module, "time", clock)
    engines = [create_engine(url) for _ in range(WORKERS)]
    async with engines[0].begin() as conn:
        await conn.execute(delete(protocol_state))
    try:
        yield Backend(request.param, [DatabaseStore(e) for e in engines], clock)
    finally:
        for engine in engines:
            await engine.dispose()


def _key() -> str:
    return secrets.token_urlsafe(12)


# -- put, peek, take -------------------------------------------------------------------------------------


async def test_peek_reads_without_consuming_and_take_consumes_once(backend: Backend) -> None:
    key = _key()
    await backend.store.put("state", key, "value-1", ttl=60)
    assert await backend.store.peek("state", key) == "value-1"
    assert await backend.stores[1].peek("state", key) == "value-1"
    assert await backend.stores[2].take("state", key) == "value-1"
    assert await backend.store.take("state", key) is None
    assert await backend.store.peek("state", key) is None


async def test_values_are_kept_apart_by_kind_and_key(backend: Backend) -> None:
    key = _key()
    await backend.store.put("state", key, "a state", ttl=60)
    await backend.store.put("session", key, "a session", ttl=60)
    assert await backend.store.peek("nonce", key) is None
    assert await backend.store.peek("state", _key()) is None
    assert await backend.store.take("session", key) == "a session"
    assert await backend.store.peek("state", key) == "a state"


async def test_only_one_of_many_concurrent_takers_gets_the_value(backend: Backend) -> None:
    for round_number in range(3):
        key = _key()
        await backend.store.put("state", key, f"value-{round_number}", ttl=60)
        takes = [
            store.take("state", key) for store in backend.stores for _ in range(CALLERS_PER_WORKER)
        ]
        results = await asyncio.gather(*takes)
        assert [r for r in results if r is not None] == [f"value-{round_number}"]


async def test_an_expired_value_is_neither_peeked_nor_taken(backend: Backend) -> None:
    key, kept = _key(), _key()
    await backend.store.put("state", key, "short", ttl=1)
    await backend.store.put("state", kept, "long", ttl=600)
    assert await backend.store.peek("state", key) == "short"
    await backend.advance(1)
    assert await backend.store.peek("state", key) is None
    assert await backend.store.take("state", key) is None
    assert await backend.store.take("state", kept) == "long"


async def test_take_if_consumes_only_what_the_caller_decides_to_spend(backend: Backend) -> None:
    key = _key()
    await backend.store.put("state", key, "value-1", ttl=60)
    seen: list[str] = []

    def keep(value: str) -> bool:
        seen.append(value)
        return False

    assert await backend.store.take_if("state", key, keep) == "value-1"
    assert await backend.stores[1].peek("state", key) == "value-1"  # left in place
    assert await backend.stores[1].take_if("state", key, lambda value: True) == "value-1"
    assert await backend.store.peek("state", key) is None
    assert await backend.stores[2].take_if("state", key, lambda value: True) is None
    assert seen == ["value-1"]


async def test_take_if_reads_what_the_value_names_and_keeps_it_when_that_fails(
    backend: Backend,
) -> None:
    key = _key()
    await backend.store.put("state", key, "value-1", ttl=60)
    read: list[str] = []

    async def then(value: str) -> None:
        read.append(value)
        raise LookupError("what the value names is gone")

    with pytest.raises(LookupError):
        await backend.store.take_if("state", key, lambda value: True, then=then)
    assert read == ["value-1"]
    assert await backend.stores[1].peek("state", key) == "value-1"  # not consumed

    async def then_ok(value: str) -> None:
        read.append(value)

    assert await backend.store.take_if("state", key, lambda value: True, then=then_ok) == "value-1"
    assert read == ["value-1", "value-1"]
    assert await backend.stores[1].peek("state", key) is None


async def test_take_if_skips_an_expired_value(backend: Backend) -> None:
    key = _key()
    await backend.store.put("state", key, "short", ttl=1)
    await backend.advance(1)
    assert await backend.store.take_if("state", key, lambda value: True) is None


async def test_only_one_of_many_concurrent_take_if_callers_spends_the_value(
    backend: Backend,
) -> None:
    """Some callers keep the value, some spend it: exactly one spender gets it, and a
    keeper running first never hides it from the spenders."""
    for round_number in range(3):
        key = _key()
        await backend.store.put("state", key, f"value-{round_number}", ttl=60)
        spent: list[str] = []

        def spend(value: str, spent: list[str] = spent) -> bool:
            spent.append(value)
            return True

        calls = [
            store.take_if("state", key, (lambda value: False) if i % 2 else spend)
            for store in backend.stores
            for i in range(CALLERS_PER_WORKER)
        ]
        results = await asyncio.gather(*calls)
        assert await backend.store.peek("state", key) is None
        spenders = [r for i, r in enumerate(results) if i % 2 == 0 and r is not None]
        if backend.name != "redis":
            # In the database the decision and the deletion are one step.
            assert spenders == [f"value-{round_number}"]
            assert len(spent) == 1
        else:
            assert len(spenders) == 1


# -- add_once ---------------------------------------------------------------------------------------------


async def test_only_one_of_many_concurrent_adders_wins(backend: Backend) -> None:
    for _ in range(3):
        key = _key()
        adds = [
            store.add_once("nonce", key, ttl=60)
            for store in backend.stores
            for _ in range(CALLERS_PER_WORKER)
        ]
        results = await asyncio.gather(*adds)
        assert results.count(True) == 1
        assert results.count(False) == len(adds) - 1


async def test_add_once_refuses_a_recorded_key_until_it_expires(backend: Backend) -> None:
    key = _key()
    assert await backend.store.add_once("nonce", key, ttl=1) is True
    assert await backend.stores[1].add_once("nonce", key, ttl=1) is False
    assert await backend.store.add_once("nonce", _key(), ttl=1) is True
    await backend.advance(1)
    assert await backend.stores[2].add_once("nonce", key, ttl=60) is True
    assert await backend.store.add_once("nonce", key, ttl=60) is False


# Redis drops an expired key itself: there is no expired entry to race over, or to purge.
@pytest.mark.parametrize("backend", DATABASE_BACKENDS, indirect=True)
async def test_concurrent_adders_of_an_expired_key_still_let_only_one_win(
    backend: Backend,
) -> None:
    key = _key()
    assert await backend.store.add_once("nonce", key, ttl=1) is True
    await backend.advance(5)
    adds = [
        store.add_once("nonce", key, ttl=60)
        for store in backend.stores
        for _ in range(CALLERS_PER_WORKER)
    ]
    assert (await asyncio.gather(*adds)).count(True) == 1


# -- purge_expired -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", DATABASE_BACKENDS, indirect=True)
async def test_purge_expired_drops_expired_entries_only(backend: Backend) -> None:
    old, fresh, nonce = _key(), _key(), _key()
    await backend.store.put("state", old, "old", ttl=10)
    await backend.store.add_once("nonce", nonce, ttl=10)
    await backend.store.put("state", fresh, "fresh", ttl=600)
    await backend.advance(11)
    assert await backend.store.purge_expired() == 2
    assert await backend.store.purge_expired() == 0
    assert await backend.store.peek("state", fresh) == "fresh"


async def test_redis_purge_expired_has_nothing_to_do() -> None:
    store = RedisStore(UNREACHABLE_REDIS)
    try:
        # Redis expires keys itself, so purging never needs the server.
        assert await store.purge_expired() == 0
    finally:
        await store.close()


# -- Redis unreachable ---------------------------------------------------------------------------------------


async def test_every_operation_on_an_unreachable_redis_raises_store_unavailable() -> None:
    store = RedisStore(UNREACHABLE_REDIS)
    try:
        for operation in (
            store.put("state", "k", "v", 60),
            store.peek("state", "k"),
            store.take("state", "k"),
            store.add_once("nonce", "k", 60),
        ):
            with pytest.raises(StoreUnavailable, match="Redis is unavailable"):
                await operation
    finally:
        await store.close()


@pytest.fixture
async def harness_without_store(database_url: str, tmp_path: Path) -> AsyncIterator[ToolHarness]:
    """The tool with its protocol store on a Redis that cannot be reached."""
    async with ToolHarness(
        database_url=database_url,
        instance=tmp_path / "instance",
        plugins=[],
        store=RedisStore(UNREACHABLE_REDIS),
    ) as harness:
        yield harness


TEACHER = {
    "sub": "teacher-1",
    "https://purl.imsglobal.org/spec/lti/claim/roles": [
        "http://purl.imsglobal.org/vocab/lis/v2/membership#Instructor"
    ],
    "https://purl.imsglobal.org/spec/lti/claim/context": {"id": "course-1"},
}


async def test_launch_while_redis_is_unreachable_is_refused_with_a_503_page(
    harness_without_store: ToolHarness,
) -> None:
    harness = harness_without_store
    page = await harness.launch13(TEACHER)
    assert page.status_code == 503
    assert page.headers["retry-after"] == "30"
    assert 'data-error-code="store_unavailable"' in page.text
    assert "Please try again in a minute" in page.text
    assert "127.0.0.1:1" not in page.text  # no connection details for users
    log = await harness.tool.repo.recent_launches()
    assert [(r.outcome, r.code) for r in log] == [("refused", "store_unavailable")]


async def test_lti11_launch_while_redis_is_unreachable_is_refused_with_a_503_page(
    harness_without_store: ToolHarness,
) -> None:
    page = await harness_without_store.launch11(
        {"resource_link_id": "link-1", "user_id": "teacher-1", "roles": "Instructor"}
    )
    assert page.status_code == 503
    assert 'data-error-code="store_unavailable"' in page.text


def _session_token(harness: ToolHarness) -> str:
    """A genuine session token, as a user who launched before Redis went away holds."""
    return harness.tool.sessions.signer.sign({"sid": "session-1"}, 3600)


async def test_api_call_while_redis_is_unreachable_gets_a_503_json_answer(
    harness_without_store: ToolHarness,
) -> None:
    response = await harness_without_store.client.get(
        "/api/v1/me",
        headers={"Authorization": f"Bearer {_session_token(harness_without_store)}"},
    )
    assert response.status_code == 503
    assert response.headers["retry-after"] == "30"
    assert response.json() == {
        "error": "store_unavailable",
        "message": "The tool is briefly unavailable. Please try again in a minute.",
    }
    # Outside a launch, nothing goes into the launch log.
    assert await harness_without_store.tool.repo.count(launch_log) == 0
