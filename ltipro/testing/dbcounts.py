"""Counting what the database drivers do: calls, round trips to PostgreSQL, thread hops.

CPU time on a shared machine moves from run to run; these counts do not, and they
explain most of what a request costs. Used by the tests that keep the launch's database
work from growing again and by ``bench/statements.py``.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Iterator
from typing import Any


@contextlib.contextmanager
def driver_calls(counts: Counter[str]) -> Iterator[Counter[str]]:
    """Count, while the block runs, into ``counts``:

    - ``driver calls``: every call into the async drivers (a psycopg operation, a hop to
      aiosqlite's thread);
    - ``round trips``: the psycopg operations that reached PostgreSQL, each counted with
      the ``BEGIN`` psycopg sends before it where it opens a transaction.
    """
    import aiosqlite.core
    import psycopg

    original_wait = psycopg.AsyncConnection.wait
    original_execute = aiosqlite.core.Connection._execute

    def on_the_wire(gen: Any, begins: bool) -> Any:
        # psycopg runs every operation as a generator that yields when it must wait for
        # the socket; one that finishes without yielding (setting autocommit, a rollback
        # with no transaction open) never reached the server. Outside autocommit, the
        # first statement on an idle connection sends its own BEGIN first.
        try:
            item = gen.send(None)
        except StopIteration as stop:
            return stop.value
        counts["round trips"] += 2 if begins else 1
        while True:
            sent = yield item
            try:
                item = gen.send(sent)
            except StopIteration as stop:
                return stop.value

    async def wait(self: Any, gen: Any, *args: Any, **kwargs: Any) -> Any:
        counts["driver calls"] += 1
        idle = self.pgconn.transaction_status == psycopg.pq.TransactionStatus.IDLE
        begins = idle and not self.autocommit and self._pipeline is None
        return await original_wait(self, on_the_wire(gen, begins), *args, **kwargs)

    async def execute(self: Any, fn: Any, *args: Any, **kwargs: Any) -> Any:
        counts["driver calls"] += 1
        return await original_execute(self, fn, *args, **kwargs)

    psycopg.AsyncConnection.wait = wait  # type: ignore[method-assign]
    aiosqlite.core.Connection._execute = execute  # type: ignore[method-assign]
    try:
        yield counts
    finally:
        psycopg.AsyncConnection.wait = original_wait  # type: ignore[method-assign]
        aiosqlite.core.Connection._execute = original_execute  # type: ignore[method-assign]
