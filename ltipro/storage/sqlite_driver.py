"""SQLite through aiosqlite, one trip to its thread per statement.

aiosqlite runs every call on a sqlite3 connection in a thread of its own, and
SQLAlchemy's adapter makes four such calls per statement: open a cursor, execute, fetch
the rows, close the cursor. Each trip is a queue hand-off and a wake-up of the event
loop, and they cost far more than SQLite's own work (a launch made 47 of them for 10
statements). The cursor here does all four in one trip; everything else (connections,
transactions, errors, the pool) is SQLAlchemy's aiosqlite dialect unchanged.
"""

from __future__ import annotations

import collections
import sqlite3
from typing import Any

import aiosqlite
from sqlalchemy.dialects.sqlite.aiosqlite import (
    AsyncAdapt_aiosqlite_connection,
    AsyncAdapt_aiosqlite_cursor,
    AsyncAdapt_aiosqlite_dbapi,
)
from sqlalchemy.util import EMPTY_DICT
from sqlalchemy.util.concurrency import await_

_Outcome = tuple[Any, list[Any] | None, int, int | None]


def _run(connection: sqlite3.Connection, operation: str, parameters: Any, many: bool) -> _Outcome:
    """On aiosqlite's thread: the statement, its rows, and what the cursor says of it."""
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


class OneTripCursor(AsyncAdapt_aiosqlite_cursor):
    """A buffered cursor whose statements each cost one trip to aiosqlite's thread."""

    __slots__ = ("_arraysize", "_description", "_lastrowid", "_rowcount")

    def __init__(self, adapt_connection: Any) -> None:
        # No aiosqlite cursor is opened (that alone was a trip): each statement opens
        # and closes a sqlite3 cursor on the thread.
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
        async with self._adapt_connection._execute_mutex:
            outcome: _Outcome = await self._connection._execute(
                _run, self._connection._conn, operation, parameters, many
            )
        self._description, rows, self._rowcount, self._lastrowid = outcome
        self._rows = collections.deque(rows or ())


class _Connection(AsyncAdapt_aiosqlite_connection):
    __slots__ = ()
    _cursor_cls = OneTripCursor


class OneTripDbapi(AsyncAdapt_aiosqlite_dbapi):
    """SQLAlchemy's aiosqlite adapter module, handing out :class:`OneTripCursor` s.

    Given to ``create_async_engine(..., module=OneTripDbapi.load())``.
    """

    def connect(self, *arg: Any, **kw: Any) -> AsyncAdapt_aiosqlite_connection:
        adapted = super().connect(*arg, **kw)
        return _Connection(self, adapted._connection)

    @classmethod
    def load(cls) -> OneTripDbapi:
        return cls(aiosqlite, sqlite3)
