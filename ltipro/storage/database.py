"""The database engine: SQLite by default, PostgreSQL in production, both async."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, overload

from sqlalchemy import event, exc
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine


class DatabaseURLError(ValueError):
    """The database URL names a database the tool does not support."""


def async_url(url: str) -> str:
    """The SQLAlchemy async form of a database URL an admin gives.

    ``sqlite:///path`` runs on aiosqlite; ``postgresql://`` (or ``postgres://``) on
    psycopg 3, which serves both the async app and the synchronous migrations.
    """
    try:
        parsed = make_url(url)
    except Exception as exc:
        raise DatabaseURLError(f"LTIPRO_DATABASE_URL is not a database URL: {url!r}") from exc
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return str(parsed.set(drivername="sqlite+aiosqlite"))
    if backend in ("postgresql", "postgres"):
        return parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
    raise DatabaseURLError(
        f"LTIPRO_DATABASE_URL must be a sqlite:/// or postgresql:// URL (got {parsed.drivername})"
    )


def is_sqlite(engine: AsyncEngine) -> bool:
    return engine.dialect.name == "sqlite"


def create_engine(url: str, **kwargs: Any) -> AsyncEngine:
    """An async engine for ``url``, with SQLite set up for several concurrent users."""
    full = async_url(url)
    parsed = make_url(full)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(full, connect_args={"timeout": 30}, **kwargs)

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            # WAL lets readers go on while one writer writes; foreign keys are off by default.
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        return engine
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 10)
    engine = create_async_engine(full, **kwargs)
    if not kwargs.get("pool_pre_ping"):
        ping_idle_connections(engine)
    return engine


# A pooled connection unused for longer than this is pinged before it is handed out.
IDLE_PING_AFTER = 5.0


def ping_idle_connections(engine: AsyncEngine, idle: float = IDLE_PING_AFTER) -> None:
    """Ping a pooled connection on checkout only when it sat idle for ``idle`` seconds.

    SQLAlchemy's ``pool_pre_ping`` pings on every checkout: three round trips to
    PostgreSQL each time (autocommit on, ``SELECT 1``, autocommit off), a fifth of a
    launch's CPU under load. A connection used a moment ago is almost surely alive; one
    that sat in the pool is the kind a database restart or an idle timeout killed, so
    those are checked and replaced. A connection that dies between two quick uses fails
    its statement instead, which SQLAlchemy reports as a disconnect and answers by
    replacing every pooled connection, so one request sees the error, not a series.
    """
    dialect = engine.sync_engine.dialect

    @event.listens_for(engine.sync_engine, "checkin")
    def _checked_in(_dbapi_connection: Any, record: Any) -> None:
        if record is not None:
            record.info["ltipro_checked_in"] = time.monotonic()

    @event.listens_for(engine.sync_engine, "checkout")
    def _checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        last = record.info.get("ltipro_checked_in")
        if last is not None and time.monotonic() - last < idle:
            return
        try:
            alive = dialect.do_ping(dbapi_connection)
        except Exception as error:
            raise exc.DisconnectionError(f"pooled connection is gone: {error}") from error
        if not alive:  # pragma: no cover - psycopg raises rather than answering False
            raise exc.DisconnectionError("pooled connection did not answer a ping")


@overload
def stored_utc(value: datetime) -> datetime: ...
@overload
def stored_utc(value: None) -> None: ...
def stored_utc(value: datetime | None) -> datetime | None:
    """A time read back from the database, as an aware UTC datetime.

    SQLite hands back naive datetimes; everything the tool stores is UTC.
    """
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)
