"""Short-lived protocol state (OIDC state, nonces) behind one small interface.

Single use must hold across every worker process, so state and nonces live in the
database by default or in Redis (``LTIPRO_REDIS_URL``), never only in one process.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Protocol

from sqlalchemy import and_, bindparam, delete, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from ltipro.storage.database import autocommit, connect, own_autocommit, sharing
from ltipro.storage.schema import protocol_state

# Built once: a statement object reused with new parameters keeps its cache key, so
# SQLAlchemy finds its compiled form without walking the statement again on every call.
_INSERT = insert(protocol_state)
_ENTRY = and_(
    protocol_state.c.kind == bindparam("s_kind"), protocol_state.c.key == bindparam("s_key")
)
_PEEK = select(protocol_state.c.value).where(
    _ENTRY, protocol_state.c.expires_at > bindparam("s_now")
)
_TAKE = (
    delete(protocol_state)
    .where(_ENTRY)
    .returning(protocol_state.c.value, protocol_state.c.expires_at)
)
_DROP_EXPIRED_ENTRY = delete(protocol_state).where(
    _ENTRY, protocol_state.c.expires_at <= bindparam("s_now")
)


class StoreUnavailable(RuntimeError):
    """The store cannot be reached; the request fails cleanly rather than guess.

    The web app answers it with HTTP 503 and ``Retry-After`` (``ltipro.web.app``): a
    launch is refused with the code ``store_unavailable`` and logged, never let through
    without its single-use checks; the JSON API answers ``{"error": "store_unavailable"}``.
    """


class ProtocolStore(Protocol):
    """Single-use values with an expiry."""

    async def put(self, kind: str, key: str, value: str, ttl: int) -> None:
        """Store ``value`` under ``(kind, key)`` for ``ttl`` seconds."""

    async def peek(self, kind: str, key: str) -> str | None:
        """The value, if present and not expired, without consuming it."""

    async def take(self, kind: str, key: str) -> str | None:
        """Consume the value: exactly one caller, in any process, gets it."""

    async def take_if(
        self,
        kind: str,
        key: str,
        spend: Callable[[str], bool],
        then: Callable[[str], Awaitable[None]] | None = None,
    ) -> str | None:
        """The value, consumed when ``spend(value)`` says so, else left in place.

        One look-up where a caller would otherwise peek, decide, then take: of several
        callers in any processes, at most one is told ``spend`` consumed the value.
        ``None`` when there is no unexpired value (an expired one may be dropped).

        ``then(value)``, when given, reads what the value names before the decision is
        committed; a store in the tool's database runs it in the same transaction (its
        reads through :func:`~ltipro.storage.database.connect` cost no connection of
        their own). It must only read. When it raises, nothing is consumed.
        """

    async def add_once(self, kind: str, key: str, ttl: int) -> bool:
        """Record ``key``; ``False`` when it was already recorded and not expired."""

    async def purge_expired(self) -> int:
        """Drop expired entries (where the backend does not expire them itself)."""

    async def close(self) -> None: ...


class DatabaseStore:
    """The store in the ``protocol_state`` table (SQLite or PostgreSQL)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def put(self, kind: str, key: str, value: str, ttl: int) -> None:
        # One statement: joins a shared block (a login's state; a launch's session, in the
        # transaction of its log entry), else commits by itself.
        async with autocommit(self.engine) as conn:
            await conn.execute(
                _INSERT,
                {"kind": kind, "key": key, "value": value, "expires_at": time.time() + ttl},
            )

    async def peek(self, kind: str, key: str) -> str | None:
        async with connect(self.engine) as conn:
            row = (
                await conn.execute(_PEEK, {"s_kind": kind, "s_key": key, "s_now": time.time()})
            ).first()
        return row[0] if row else None

    async def take(self, kind: str, key: str) -> str | None:
        # DELETE ... RETURNING is atomic: of two racing workers only one gets the row.
        async with self.engine.begin() as conn:
            row = (await conn.execute(_TAKE, {"s_kind": kind, "s_key": key})).first()
        if row is None or row.expires_at <= time.time():
            return None
        return str(row.value)

    async def take_if(
        self,
        kind: str,
        key: str,
        spend: Callable[[str], bool],
        then: Callable[[str], Awaitable[None]] | None = None,
    ) -> str | None:
        # The row is deleted first and the deletion rolled back when it is to stay: a
        # racing caller waits on the row (PostgreSQL's row lock, SQLite's write lock, held
        # only while ``then`` reads and ``spend`` decides) and then finds it either gone
        # or still there, never half-decided. One statement where peek-then-take costs two.
        async with self.engine.connect() as conn:
            transaction = await conn.begin()
            row = (await conn.execute(_TAKE, {"s_kind": kind, "s_key": key})).first()
            if row is None or row.expires_at <= time.time():
                await transaction.commit()  # an expired entry goes, as ``take`` drops it
                return None
            value = str(row.value)
            if then is not None:
                async with sharing(self.engine, conn):
                    await then(value)
            if spend(value):
                await transaction.commit()
            else:
                await transaction.rollback()
        return value

    async def add_once(self, kind: str, key: str, ttl: int) -> bool:
        now = time.time()
        for _ in range(2):
            try:
                # Decided on its own, never in an enclosing block: one statement, which
                # on PostgreSQL is one round trip.
                async with own_autocommit(self.engine) as conn:
                    await conn.execute(
                        _INSERT, {"kind": kind, "key": key, "value": "1", "expires_at": now + ttl}
                    )
                return True
            except IntegrityError:
                # Seen before: refuse, unless the old entry has expired and can be dropped.
                async with own_autocommit(self.engine) as conn:
                    result = await conn.execute(
                        _DROP_EXPIRED_ENTRY, {"s_kind": kind, "s_key": key, "s_now": now}
                    )
                if result.rowcount == 0:
                    return False
        return False

    async def purge_expired(self) -> int:
        async with self.engine.begin() as conn:
            result = await conn.execute(
                delete(protocol_state).where(protocol_state.c.expires_at <= time.time())
            )
        return int(result.rowcount or 0)

    async def close(self) -> None:
        return None


class RedisStore:
    """The store in Redis, for deployments with many workers: Redis expires entries itself."""

    def __init__(self, url: str, prefix: str = "ltipro:") -> None:
        import redis.asyncio as redis

        self._redis = redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)
        self._prefix = prefix

    def _key(self, kind: str, key: str) -> str:
        return f"{self._prefix}{kind}:{key}"

    async def _call(self, method: str, *args: object, **kwargs: object) -> object:
        import redis.exceptions

        try:
            return await getattr(self._redis, method)(*args, **kwargs)
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as exc:
            raise StoreUnavailable(f"Redis is unavailable: {exc}") from exc

    async def put(self, kind: str, key: str, value: str, ttl: int) -> None:
        await self._call("set", self._key(kind, key), value, ex=ttl)

    async def peek(self, kind: str, key: str) -> str | None:
        value = await self._call("get", self._key(kind, key))
        return value.decode() if isinstance(value, bytes) else None

    async def take(self, kind: str, key: str) -> str | None:
        value = await self._call("getdel", self._key(kind, key))
        return value.decode() if isinstance(value, bytes) else None

    async def take_if(
        self,
        kind: str,
        key: str,
        spend: Callable[[str], bool],
        then: Callable[[str], Awaitable[None]] | None = None,
    ) -> str | None:
        # Redis round trips are cheap: read, decide, then GETDEL, whose answer says
        # whether this caller or a racing one consumed the value.
        value = await self.peek(kind, key)
        if value is None:
            return None
        if then is not None:
            await then(value)
        if not spend(value):
            return value
        return await self.take(kind, key)

    async def add_once(self, kind: str, key: str, ttl: int) -> bool:
        return bool(await self._call("set", self._key(kind, key), "1", ex=ttl, nx=True))

    async def purge_expired(self) -> int:
        return 0

    async def close(self) -> None:
        await self._redis.aclose()


def open_store(engine: AsyncEngine, redis_url: str | None) -> ProtocolStore:
    """The store the settings ask for: Redis when a URL is given, else the database."""
    if redis_url:
        return RedisStore(redis_url)
    return DatabaseStore(engine)
