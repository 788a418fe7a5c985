"""A launch's database work, the least of it, on each driver and through SQLAlchemy.

Per launch, two transactions and six statements:

- login: ``INSERT`` the state (single use, bound to the nonce it was made with);
- launch: ``DELETE ... RETURNING`` the state (it is used up, and its nonce is read back),
  ``INSERT`` the nonce as used (``ON CONFLICT DO NOTHING``: a replayed id_token finds it),
  upsert the course (``INSERT ... ON CONFLICT DO UPDATE ... RETURNING id``), ``INSERT``
  the session, ``INSERT`` the launch-log entry; one commit.

The same statements on the stdlib ``sqlite3`` module (inline, no thread), on psycopg 3
(async, one connection) and through SQLAlchemy Core async on each database, with the
same tables (made from one ``MetaData``). Indexes: only the primary keys and the course's
unique ``(issuer, context_id)``.
"""

from __future__ import annotations

import json
import secrets
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import (
    BigInteger,
    Column,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    bindparam,
    delete,
    event,
    insert,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.schema import CreateTable

from floorbench import payload

metadata = MetaData()
single_use = Table(
    "single_use",
    metadata,
    Column("token", String(64), primary_key=True),
    Column("kind", String(8), nullable=False),
    Column("value", String(64)),
    Column("expires_at", BigInteger, nullable=False),
)
courses = Table(
    "courses",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("issuer", String(255), nullable=False),
    Column("context_id", String(255), nullable=False),
    Column("title", String(255)),
    Column("label", String(64)),
    Column("last_launch_at", BigInteger),
    UniqueConstraint("issuer", "context_id"),
)
sessions = Table(
    "sessions",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("user_sub", String(255), nullable=False),
    Column("course_id", Integer, ForeignKey("courses.id")),
    Column("data", Text),
    Column("created_at", BigInteger),
    Column("expires_at", BigInteger),
)
launch_log = Table(
    "launch_log",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", BigInteger),
    Column("issuer", String(255)),
    Column("user_sub", String(255)),
    Column("course_id", Integer, ForeignKey("courses.id")),
    Column("message_type", String(64)),
    Column("roles", Text),
)

# The raw statements, "{p}" for the driver's positional placeholder.
RAW = {
    "state": "INSERT INTO single_use (token, kind, value, expires_at) VALUES ({p}, 'state', {p}, {p})",
    "consume": "DELETE FROM single_use WHERE token = {p} AND kind = 'state' AND expires_at > {p} "
    "RETURNING value",
    "nonce": "INSERT INTO single_use (token, kind, value, expires_at) VALUES ({p}, 'nonce', NULL, {p}) "
    "ON CONFLICT (token) DO NOTHING",
    "course": "INSERT INTO courses (issuer, context_id, title, label, last_launch_at) "
    "VALUES ({p}, {p}, {p}, {p}, {p}) ON CONFLICT (issuer, context_id) DO UPDATE SET "
    "title = excluded.title, label = excluded.label, last_launch_at = excluded.last_launch_at "
    "RETURNING id",
    "session": "INSERT INTO sessions (id, user_sub, course_id, data, created_at, expires_at) "
    "VALUES ({p}, {p}, {p}, {p}, {p}, {p})",
    "log": "INSERT INTO launch_log (at, issuer, user_sub, course_id, message_type, roles) "
    "VALUES ({p}, {p}, {p}, {p}, {p}, {p})",
}
STATEMENTS_PER_LAUNCH = 6
TRANSACTIONS_PER_LAUNCH = 2


def raw_sql(placeholder: str) -> dict[str, str]:
    return {name: sql.format(p=placeholder) for name, sql in RAW.items()}


@dataclass(frozen=True)
class LaunchParams:
    """One launch's values, made before the clock starts."""

    state: str
    nonce: str
    session_id: str
    now: int
    user_sub: str
    context_id: str
    title: str
    label: str
    roles: str
    data: str


def launch_params(count: int, *, users: int = 400, course_count: int = 20) -> list[LaunchParams]:
    """``count`` launches by ``users`` people over ``course_count`` courses."""
    now = 1_764_000_000
    found = []
    for i in range(count):
        user = i % users
        course = i % course_count
        found.append(
            LaunchParams(
                state=secrets.token_urlsafe(32),
                nonce=secrets.token_urlsafe(32),
                session_id=secrets.token_urlsafe(32),
                now=now + i,
                user_sub=f"user-{user}",
                context_id=f"course-{course}",
                title=f"Course {course}",
                label=f"C{course}",
                roles=json.dumps(["Instructor" if user % 4 == 0 else "Learner"]),
                data=json.dumps({"user": f"user-{user}", "name": f"User {user}", "locale": "en"}),
            )
        )
    return found


class LaunchStore(Protocol):
    async def launch(self, p: LaunchParams) -> None: ...

    async def close(self) -> None: ...


class LaunchRefused(AssertionError):
    """The statements did not do what a launch needs (a defect of the benchmark)."""


def _check(nonce: str | None, p: LaunchParams, nonce_inserted: int) -> None:
    if nonce != p.nonce or nonce_inserted != 1:
        raise LaunchRefused(f"state or nonce not single use: {nonce!r}, {nonce_inserted}")


def _ddl(dialect: Any) -> list[str]:
    drops = [f"DROP TABLE IF EXISTS {t.name}" for t in reversed(metadata.sorted_tables)]
    creates = [str(CreateTable(t).compile(dialect=dialect)) for t in metadata.sorted_tables]
    return drops + creates


# -- stdlib sqlite3, inline ---------------------------------------------------------------------

SQLITE_PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=NORMAL",
    "PRAGMA foreign_keys=ON",
    "PRAGMA busy_timeout=30000",
)


class SqliteInline:
    """The stdlib module called on the event loop's thread (each call blocks it)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self.sql = raw_sql("?")

    @classmethod
    async def open(cls, path: Path) -> SqliteInline:
        conn = sqlite3.connect(path, timeout=30, check_same_thread=False)
        for pragma in SQLITE_PRAGMAS:
            conn.execute(pragma)
        for statement in _ddl(sqlite.dialect()):
            conn.execute(statement)
        conn.commit()
        return cls(conn)

    async def launch(self, p: LaunchParams) -> None:
        conn, sql = self.conn, self.sql
        conn.execute(sql["state"], (p.state, p.nonce, p.now + 600))
        conn.commit()
        row = conn.execute(sql["consume"], (p.state, p.now)).fetchall()
        nonce = conn.execute(sql["nonce"], (p.nonce, p.now + 3600))
        course_id = conn.execute(
            sql["course"], (payload.ISSUER, p.context_id, p.title, p.label, p.now)
        ).fetchall()[0][0]
        conn.execute(sql["session"], (p.session_id, p.user_sub, course_id, p.data, p.now, p.now))
        conn.execute(
            sql["log"],
            (p.now, payload.ISSUER, p.user_sub, course_id, "LtiResourceLinkRequest", p.roles),
        )
        conn.commit()
        _check(row[0][0] if row else None, p, nonce.rowcount)

    async def close(self) -> None:
        self.conn.close()


# -- psycopg 3, async ---------------------------------------------------------------------------


class PsycopgStore:
    """One psycopg ``AsyncConnection`` (statements prepared after 5 uses, its default)."""

    def __init__(self, conn: Any) -> None:
        self.conn = conn
        self.sql = raw_sql("%s")

    @classmethod
    async def open(cls, url: str) -> PsycopgStore:
        import psycopg

        conn = await psycopg.AsyncConnection.connect(url)
        for statement in _ddl(postgresql.dialect()):
            await conn.execute(statement)
        await conn.commit()
        return cls(conn)

    async def launch(self, p: LaunchParams) -> None:
        conn, sql = self.conn, self.sql
        await conn.execute(sql["state"], (p.state, p.nonce, p.now + 600))
        await conn.commit()
        cur = await conn.execute(sql["consume"], (p.state, p.now))
        row = await cur.fetchone()
        nonce = await conn.execute(sql["nonce"], (p.nonce, p.now + 3600))
        inserted = nonce.rowcount
        cur = await conn.execute(
            sql["course"], (payload.ISSUER, p.context_id, p.title, p.label, p.now)
        )
        course = await cur.fetchone()
        await conn.execute(
            sql["session"], (p.session_id, p.user_sub, course[0], p.data, p.now, p.now)
        )
        await conn.execute(
            sql["log"],
            (p.now, payload.ISSUER, p.user_sub, course[0], "LtiResourceLinkRequest", p.roles),
        )
        await conn.commit()
        _check(row[0] if row else None, p, inserted)

    async def close(self) -> None:
        await self.conn.close()


class PsycopgPipelineStore(PsycopgStore):
    """The fewest round trips: the login's one INSERT in autocommit, the launch pipelined.

    One connection in autocommit mode; the launch's transaction runs in psycopg's pipeline
    mode, so ``BEGIN`` and the statements go out without waiting for each other, except
    where the course's id is needed (one sync) and at the commit.
    """

    @classmethod
    async def open(cls, url: str) -> PsycopgStore:
        import psycopg

        conn = await psycopg.AsyncConnection.connect(url, autocommit=True)
        async with conn.transaction():
            for statement in _ddl(postgresql.dialect()):
                await conn.execute(statement)
        return cls(conn)

    async def launch(self, p: LaunchParams) -> None:
        conn, sql = self.conn, self.sql
        await conn.execute(sql["state"], (p.state, p.nonce, p.now + 600))
        async with conn.pipeline(), conn.transaction():
            consumed = await conn.execute(sql["consume"], (p.state, p.now))
            nonce = await conn.execute(sql["nonce"], (p.nonce, p.now + 3600))
            cur = await conn.execute(
                sql["course"], (payload.ISSUER, p.context_id, p.title, p.label, p.now)
            )
            course = await cur.fetchone()
            await conn.execute(
                sql["session"], (p.session_id, p.user_sub, course[0], p.data, p.now, p.now)
            )
            await conn.execute(
                sql["log"],
                (p.now, payload.ISSUER, p.user_sub, course[0], "LtiResourceLinkRequest", p.roles),
            )
            row = await consumed.fetchone()
        _check(row[0] if row else None, p, nonce.rowcount)


# -- SQLAlchemy Core, async ---------------------------------------------------------------------


def sqla_pg_url(url: str) -> str:
    return make_url(url).set(drivername="postgresql+psycopg").render_as_string(hide_password=False)


class CoreStatements:
    """The same statements as Core constructs, built once (the compiled cache is hit)."""

    def __init__(self, dialect_name: str) -> None:
        dialect_insert = sqlite.insert if dialect_name == "sqlite" else postgresql.insert
        self.state = insert(single_use)
        self.consume = (
            delete(single_use)
            .where(
                single_use.c.token == bindparam("token"),
                single_use.c.kind == "state",
                single_use.c.expires_at > bindparam("now"),
            )
            .returning(single_use.c.value)
        )
        # An INSERT's rowcount is kept only when asked for (SQLAlchemy 2.0.28 and later).
        self.nonce = (
            dialect_insert(single_use)
            .on_conflict_do_nothing(index_elements=["token"])
            .execution_options(preserve_rowcount=True)
        )
        upsert = dialect_insert(courses)
        self.course = upsert.on_conflict_do_update(
            index_elements=["issuer", "context_id"],
            set_={
                "title": upsert.excluded.title,
                "label": upsert.excluded.label,
                "last_launch_at": upsert.excluded.last_launch_at,
            },
        ).returning(courses.c.id)
        self.session = insert(sessions)
        self.log = insert(launch_log)

    @staticmethod
    def state_params(p: LaunchParams) -> dict[str, Any]:
        return {"token": p.state, "kind": "state", "value": p.nonce, "expires_at": p.now + 600}

    @staticmethod
    def nonce_params(p: LaunchParams) -> dict[str, Any]:
        return {"token": p.nonce, "kind": "nonce", "value": None, "expires_at": p.now + 3600}

    @staticmethod
    def course_params(p: LaunchParams) -> dict[str, Any]:
        return {
            "issuer": payload.ISSUER,
            "context_id": p.context_id,
            "title": p.title,
            "label": p.label,
            "last_launch_at": p.now,
        }

    @staticmethod
    def session_params(p: LaunchParams, course_id: int) -> dict[str, Any]:
        return {
            "id": p.session_id,
            "user_sub": p.user_sub,
            "course_id": course_id,
            "data": p.data,
            "created_at": p.now,
            "expires_at": p.now,
        }

    @staticmethod
    def log_params(p: LaunchParams, course_id: int) -> dict[str, Any]:
        return {
            "at": p.now,
            "issuer": payload.ISSUER,
            "user_sub": p.user_sub,
            "course_id": course_id,
            "message_type": "LtiResourceLinkRequest",
            "roles": p.roles,
        }


def _sqlite_pragmas(engine: Any) -> None:
    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        for pragma in SQLITE_PRAGMAS:
            cursor.execute(pragma)
        cursor.close()


class SqlaStore:
    """SQLAlchemy Core async: ``engine.begin()`` per transaction, or one connection held."""

    def __init__(self, engine: AsyncEngine, held: AsyncConnection | None) -> None:
        self.engine = engine
        self.held = held
        self.q = CoreStatements(engine.dialect.name)

    @classmethod
    async def open(cls, url: str, *, hold: bool) -> SqlaStore:
        if url.startswith("sqlite"):
            engine = create_async_engine(url, connect_args={"timeout": 30})
            _sqlite_pragmas(engine.sync_engine)
        else:
            engine = create_async_engine(url)
        async with engine.begin() as conn:
            await conn.run_sync(metadata.drop_all)
            await conn.run_sync(metadata.create_all)
        held = await engine.connect() if hold else None
        return cls(engine, held)

    async def launch(self, p: LaunchParams) -> None:
        if self.held is not None:
            async with self.held.begin():
                await self.held.execute(self.q.state, self.q.state_params(p))
            async with self.held.begin():
                await self._launch(self.held, p)
            return
        async with self.engine.begin() as conn:
            await conn.execute(self.q.state, self.q.state_params(p))
        async with self.engine.begin() as conn:
            await self._launch(conn, p)

    async def _launch(self, conn: AsyncConnection, p: LaunchParams) -> None:
        q = self.q
        row = (await conn.execute(q.consume, {"token": p.state, "now": p.now})).first()
        nonce = await conn.execute(q.nonce, q.nonce_params(p))
        course_id = (await conn.execute(q.course, q.course_params(p))).scalar_one()
        await conn.execute(q.session, q.session_params(p, course_id))
        await conn.execute(q.log, q.log_params(p, course_id))
        _check(row[0] if row else None, p, nonce.rowcount)

    async def close(self) -> None:
        if self.held is not None:
            await self.held.close()
        await self.engine.dispose()


class SqlaSyncStore:
    """SQLAlchemy Core, synchronous, on the stdlib module inline (no thread, no await).

    What SQLAlchemy itself adds on SQLite, apart from aiosqlite's thread.
    """

    def __init__(self, engine: Any) -> None:
        self.engine = engine
        self.q = CoreStatements("sqlite")

    @classmethod
    async def open(cls, path: Path) -> SqlaSyncStore:
        from sqlalchemy import create_engine

        engine = create_engine(f"sqlite:///{path}", connect_args={"timeout": 30})
        _sqlite_pragmas(engine)
        with engine.begin() as conn:
            metadata.drop_all(conn)
            metadata.create_all(conn)
        return cls(engine)

    async def launch(self, p: LaunchParams) -> None:
        q = self.q
        with self.engine.begin() as conn:
            conn.execute(q.state, q.state_params(p))
        with self.engine.begin() as conn:
            row = conn.execute(q.consume, {"token": p.state, "now": p.now}).first()
            nonce = conn.execute(q.nonce, q.nonce_params(p))
            course_id = conn.execute(q.course, q.course_params(p)).scalar_one()
            conn.execute(q.session, q.session_params(p, course_id))
            conn.execute(q.log, q.log_params(p, course_id))
        _check(row[0] if row else None, p, nonce.rowcount)

    async def close(self) -> None:
        self.engine.dispose()
