"""The database engine: SQLite by default, PostgreSQL in production, both async."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, overload

from sqlalchemy import event, exc
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from ltipro.storage.sqlite_driver import OneTripDbapi


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


# PostgreSQL: seconds to wait for a pooled connection, and for a new one to be set up.
POOL_TIMEOUT = 10.0
CONNECT_TIMEOUT = 10


def create_engine(url: str, **kwargs: Any) -> AsyncEngine:
    """An async engine for ``url``, with SQLite set up for several concurrent users."""
    full = async_url(url)
    parsed = make_url(full)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        # Statements run on the event loop's thread and must never wait there for a lock,
        # not even the pragmas below: one that finds SQLite busy runs again on
        # aiosqlite's thread, which waits (ltipro.storage.sqlite_driver).
        engine = create_async_engine(
            full,
            module=OneTripDbapi.load(),
            connect_args={"timeout": 0, "check_same_thread": False},
            **kwargs,
        )

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            # WAL lets readers go on while one writer writes; foreign keys are off by default.
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=0")
            cursor.close()

        refuse_nul_characters(engine)
        return engine
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 10)
    # A request waits this long for a pooled connection, then gets the lost-database 503.
    kwargs.setdefault("pool_timeout", POOL_TIMEOUT)
    if "connect_timeout" not in parsed.query:
        # psycopg's own default is 130 s: a server that accepts the connection and then
        # says nothing would hold whoever asked (a request, a worker) that long.
        connect_args = dict(kwargs.pop("connect_args", {}))
        connect_args.setdefault("connect_timeout", CONNECT_TIMEOUT)
        kwargs["connect_args"] = connect_args
    engine = create_async_engine(full, **kwargs)
    if not kwargs.get("pool_pre_ping"):
        ping_idle_connections(engine)
    refuse_nul_characters(engine)
    return engine


class UnstorableText(ValueError):
    """Text holding a NUL character, which PostgreSQL cannot store in a text column.

    Whoever sent it (a form, the API, a CSV cell, an LMS claim) gets a 400 naming the
    problem rather than a 500 from the driver; SQLite refuses it too, so both databases
    behave alike.
    """


def _holds_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, Mapping):
        return any(_holds_nul(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return any(_holds_nul(v) for v in value)
    return False


def refuse_nul_characters(engine: AsyncEngine) -> None:
    """Refuse a statement whose parameters hold a NUL character, before it is sent.

    Raised before anything reaches the database, so the transaction it was part of is
    rolled back whole: nothing is half written.
    """

    @event.listens_for(engine.sync_engine, "before_cursor_execute")
    def _refuse(
        _conn: Any, _cursor: Any, _statement: str, parameters: Any, _context: Any, _many: bool
    ) -> None:
        if _holds_nul(parameters):
            raise UnstorableText(
                "The text sent contains a NUL character (\\0), which cannot be stored."
            )


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


def autocommits(engine: AsyncEngine) -> bool:
    """Whether single statements run in autocommit mode on this database.

    On PostgreSQL a statement outside a transaction is its own transaction: one round
    trip, where ``BEGIN``, the statement and ``COMMIT`` (or ``ROLLBACK``) cost three.
    SQLite's statements cost microseconds and its transactions nothing on the wire, so
    it keeps the explicit ones.
    """
    return engine.dialect.name == "postgresql"


# What a shared block's connection lets join it.
READS = "reads"  # connect() calls: a shared_reads block
STATEMENTS = "statements"  # connect() and autocommit() calls: a shared_statements block
WRITES = "writes"  # every call: a shared_transaction block


class _Shared:
    """The connection a shared block checked out, while the block is open."""

    __slots__ = ("connection", "engine", "joins")

    def __init__(self, engine: AsyncEngine, connection: AsyncConnection, joins: str) -> None:
        self.engine = engine
        self.connection: AsyncConnection | None = connection
        self.joins = joins


_shared: ContextVar[_Shared | None] = ContextVar("ltipro_shared_transaction", default=None)


def _current(engine: AsyncEngine, *accepted: str) -> AsyncConnection | None:
    """The enclosing block's connection, when a call of a kind in ``accepted`` may join it."""
    shared = _shared.get()
    if shared is None or shared.engine is not engine or shared.joins not in accepted:
        return None
    return shared.connection  # None once the block has ended (a task that outlived it)


@asynccontextmanager
async def _autocommit_connection(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A connection whose statements commit one by one (``engine.begin()`` on SQLite)."""
    if not autocommits(engine):
        async with engine.begin() as connection:
            yield connection
        return
    async with engine.connect() as connection:
        await connection.execution_options(isolation_level="AUTOCOMMIT")
        yield connection


@asynccontextmanager
async def shared_transaction(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """One pool checkout and one transaction for the statements run inside the block.

    Each repository or store call otherwise checks a connection out of the pool and ends
    its own transaction: on PostgreSQL a ``COMMIT`` or ``ROLLBACK`` round trip each, plus
    the pool's bookkeeping. Calls written with :func:`begin` and :func:`connect` join the
    block's transaction instead; its writes commit together when the block ends, or none
    of them when it raises. A block nested in another joins the outer one.

    Only for a few statements run one after another with nothing else awaited between
    them: on SQLite the first write takes the database's write lock until the block ends.
    Calls that manage their own transaction (the store's ``take``, ``take_if`` and
    ``add_once``) never join one, and must not be called inside a block after a write.
    """
    joined = _current(engine, WRITES)
    if joined is not None:
        yield joined
        return
    async with engine.begin() as connection, sharing(engine, connection):
        yield connection


@asynccontextmanager
async def shared_reads(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """One pool checkout for the reads inside the block.

    Like :func:`shared_transaction` for :func:`connect` calls (reads), which join it.
    On PostgreSQL the connection is in autocommit mode: each read is one round trip,
    with no ``BEGIN`` before or ``ROLLBACK`` after (under PostgreSQL's default isolation
    each statement sees its own snapshot either way). On SQLite the block's transaction
    is rolled back. :func:`begin` and :func:`autocommit` calls (writes) do not join it:
    they check out a connection and commit on their own. Inside a
    :func:`shared_transaction` or :func:`shared_statements` block it joins that one.
    """
    joined = _current(engine, READS, STATEMENTS, WRITES)
    if joined is not None:
        yield joined
        return
    # On PostgreSQL no transaction at all: each read one round trip, no BEGIN or ROLLBACK.
    opened = _autocommit_connection(engine) if autocommits(engine) else engine.connect()
    async with opened as connection, sharing(engine, connection, joins=READS):
        yield connection


@asynccontextmanager
async def shared_statements(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """One pool checkout for reads and single-statement writes that need no transaction
    in common (a login's registration read and its state's insert).

    :func:`connect` and :func:`autocommit` calls inside join it. On PostgreSQL its
    connection is in autocommit mode, so each statement is one round trip and commits by
    itself; on SQLite it is a :func:`shared_transaction` (nothing on the wire to save,
    and one checkout less). :func:`begin` calls (several statements that must commit
    together) do not join it on PostgreSQL. Inside a :func:`shared_transaction` it joins
    that one.
    """
    joined = _current(engine, WRITES)
    if joined is not None:
        yield joined
        return
    if not autocommits(engine):
        async with shared_transaction(engine) as connection:
            yield connection
        return
    async with _autocommit_connection(engine) as connection:
        async with sharing(engine, connection, joins=STATEMENTS):
            yield connection


@asynccontextmanager
async def sharing(
    engine: AsyncEngine, connection: AsyncConnection, *, joins: str = WRITES
) -> AsyncIterator[None]:
    """Inside the block, calls on ``engine`` join ``connection`` and its transaction,
    which the caller ends: every call for :data:`WRITES`, :func:`connect` calls for
    :data:`READS`, :func:`connect` and :func:`autocommit` calls for :data:`STATEMENTS`."""
    shared = _Shared(engine, connection, joins)
    token = _shared.set(shared)
    try:
        yield
    finally:
        shared.connection = None
        _shared.reset(token)


@asynccontextmanager
async def begin(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """``engine.begin()``, or the enclosing :func:`shared_transaction`'s connection."""
    joined = _current(engine, WRITES)
    if joined is not None:
        yield joined
        return
    async with engine.begin() as connection:
        yield connection


@asynccontextmanager
async def autocommit(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A connection for one statement that commits by itself (an insert, an update).

    It joins an enclosing :func:`shared_transaction` (and commits with it) or
    :func:`shared_statements` block; otherwise, on PostgreSQL, the statement runs in
    autocommit mode (one round trip instead of three), on SQLite in ``engine.begin()``.
    Only for a single statement: several that must commit together use :func:`begin`.
    """
    joined = _current(engine, STATEMENTS, WRITES)
    if joined is not None:
        yield joined
        return
    async with _autocommit_connection(engine) as connection:
        yield connection


def own_autocommit(engine: AsyncEngine) -> AbstractAsyncContextManager[AsyncConnection]:
    """Like :func:`autocommit`, but never joining an enclosing block: for a statement
    whose outcome must be decided (committed) on its own, such as a nonce's insert."""
    return _autocommit_connection(engine)


@asynccontextmanager
async def connect(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """``engine.connect()`` (for reads), or the enclosing :func:`shared_transaction`'s,
    :func:`shared_reads`' or :func:`shared_statements`' connection."""
    joined = _current(engine, READS, STATEMENTS, WRITES)
    if joined is not None:
        yield joined
        return
    async with engine.connect() as connection:
        yield connection


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
