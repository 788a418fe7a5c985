"""SQLite through aiosqlite, with statements run where they cost least.

aiosqlite runs every call on a sqlite3 connection in a thread of its own, and
SQLAlchemy's adapter makes four such calls per statement: open a cursor, execute, fetch
the rows, close the cursor. Each trip is a queue hand-off and a wake-up of the event
loop, and it costs far more than SQLite's own work (a launch made 47 of them for 10
statements, about a third of its CPU).

Here a statement, a commit or a rollback runs on the event loop's thread, at once, with
SQLite told not to wait for a lock (``busy_timeout`` 0): almost every statement takes
microseconds. Only when SQLite answers "busy" — another connection (another request of
this process, or another worker) holds the write lock — is it run again on aiosqlite's
thread, which does wait (up to :data:`WAIT_MS`), so the event loop never blocks on a
lock: the request holding it goes on and releases it. A statement SQLite refused as busy
did nothing, so running it again is what SQLite's own busy handler would have done.
Everything else (connecting, closing, errors, the pool) is SQLAlchemy's aiosqlite
dialect unchanged.
"""

from __future__ import annotations

import collections
import sqlite3
from collections.abc import Callable
from typing import Any, TypeVar, cast

import aiosqlite
from sqlalchemy.dialects.sqlite.aiosqlite import (
    AsyncAdapt_aiosqlite_connection,
    AsyncAdapt_aiosqlite_cursor,
    AsyncAdapt_aiosqlite_dbapi,
)
from sqlalchemy.util import EMPTY_DICT
from sqlalchemy.util.concurrency import await_

# How long a statement that met a lock waits for it on aiosqlite's thread.
WAIT_MS = 30_000

_Outcome = tuple[Any, list[Any] | None, int, int | None]
_T = TypeVar("_T")


def _run(connection: sqlite3.Connection, operation: str, parameters: Any, many: bool) -> _Outcome:
    """The statement, its rows, and what the cursor says of it."""
    cursor = connection.cursor()
    try:
        if many:
            cursor.executemany(operation, parameters)
        elif parameters is None:
            cursor.execute(operation)
        else:
            cursor.execute(operation, parameters)
        description = cursor.description
        rows = cursor.fetchall() if description else None
        return description, rows, cursor.rowcount, cursor.lastrowid
    finally:
        cursor.close()


def is_busy(error: BaseException) -> bool:
    """SQLite refused because another connection holds a lock it needs."""
    code = getattr(error, "sqlite_errorcode", None)
    return (
        isinstance(error, sqlite3.OperationalError)
        and code is not None
        and (code & 0xFF == sqlite3.SQLITE_BUSY)
    )


def _waiting(connection: sqlite3.Connection, call: Callable[[], _T]) -> _T:
    """On aiosqlite's thread: ``call()``, letting SQLite wait for the lock."""
    connection.execute(f"PRAGMA busy_timeout={WAIT_MS}")
    try:
        return call()
    finally:
        connection.execute("PRAGMA busy_timeout=0")


async def _inline_or_waiting(adapted: aiosqlite.Connection, call: Callable[[], _T]) -> _T:
    """``call()`` here and now; on aiosqlite's thread if SQLite is busy."""
    try:
        return call()
    except sqlite3.OperationalError as error:
        if not is_busy(error):
            raise
    return await adapted._execute(_waiting, adapted._conn, call)


class OneTripCursor(AsyncAdapt_aiosqlite_cursor):
    """A buffered cursor whose statements run inline (or in one trip when SQLite is busy)."""

    __slots__ = ("_arraysize", "_description", "_lastrowid", "_rowcount")

    def __init__(self, adapt_connection: Any) -> None:
        # No aiosqlite cursor is opened (that alone was a trip): each statement opens
        # and closes a sqlite3 cursor.
        self._adapt_connection = adapt_connection
        self._connection = adapt_connection._connection
        self._cursor = None  # type: ignore[assignment]
        self._soft_closed_memoized = EMPTY_DICT
        self._rows = collections.deque()
        self._description: Any = None
        self._rowcount = -1
        self._lastrowid: int | None = None
        self._arraysize = 1

    @property
    def description(self) -> Any:
        return self._description

    @property
    def rowcount(self) -> int:
        return self._rowcount

    @property
    def lastrowid(self) -> int:
        return self._lastrowid  # type: ignore[return-value]

    @property
    def arraysize(self) -> int:
        return self._arraysize

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        self._arraysize = value

    async def _async_soft_close(self) -> None:
        return None  # the rows are already here and the sqlite3 cursor closed

    def close(self) -> None:
        self._rows.clear()

    def execute(self, operation: Any, parameters: Any = None) -> Any:
        try:
            await_(self._statement(operation, parameters, many=False))
        except Exception as error:
            self._adapt_connection._handle_exception(error)

    def executemany(self, operation: Any, seq_of_parameters: Any) -> Any:
        try:
            await_(self._statement(operation, seq_of_parameters, many=True))
        except Exception as error:
            self._adapt_connection._handle_exception(error)

    async def _statement(self, operation: str, parameters: Any, *, many: bool) -> None:
        adapted = cast(aiosqlite.Connection, self._connection)
        connection = adapted._conn
        async with self._adapt_connection._execute_mutex:
            if many:
                # Many rows (an import, a batch of jobs) may take a while: on the thread,
                # where the event loop goes on meanwhile.
                outcome: _Outcome = await adapted._execute(
                    _waiting, connection, lambda: _run(connection, operation, parameters, True)
                )
            else:
                outcome = await _inline_or_waiting(
                    adapted, lambda: _run(connection, operation, parameters, False)
                )
        self._description, rows, self._rowcount, self._lastrowid = outcome
        self._rows = collections.deque(rows or ())


class _Connection(AsyncAdapt_aiosqlite_connection):
    __slots__ = ()
    _cursor_cls = OneTripCursor

    def commit(self) -> None:
        self._end(lambda connection: connection.commit)

    def rollback(self) -> None:
        self._end(lambda connection: connection.rollback)

    def _end(self, method: Callable[[sqlite3.Connection], Callable[[], None]]) -> None:
        adapted = cast(aiosqlite.Connection, self._connection)
        connection = adapted._connection
        if connection is None:  # closed already: nothing to end
            return
        try:
            await_(_inline_or_waiting(adapted, method(connection)))
        except Exception as error:
            self._handle_exception(error)


class OneTripDbapi(AsyncAdapt_aiosqlite_dbapi):
    """SQLAlchemy's aiosqlite adapter module, with statements run inline.

    Given to ``create_async_engine(..., module=OneTripDbapi.load())``; the connections
    must be opened with ``check_same_thread=False`` (they are used on the event loop's
    thread and on aiosqlite's) and ``PRAGMA busy_timeout=0`` (an inline statement must
    not wait for a lock).
    """

    def connect(self, *arg: Any, **kw: Any) -> AsyncAdapt_aiosqlite_connection:
        adapted = super().connect(*arg, **kw)
        return _Connection(self, adapted._connection)

    @classmethod
    def load(cls) -> OneTripDbapi:
        return cls(aiosqlite, sqlite3)
