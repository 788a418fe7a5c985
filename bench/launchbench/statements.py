"""Database work per launch, counted exactly: statements, pool checkouts, driver calls.

CPU time on a shared machine moves by a fifth from one run to the next; these counts do
not move at all, and the profile shows that they decide most of a launch's cost. The
tool runs in-process (:class:`~ltipro.testing.ToolHarness`, every installed plugin, the
same claims as the load generator) on SQLite or on a throwaway PostgreSQL database::

    .venv/bin/python bench/statements.py                  # SQLite
    .venv/bin/python bench/statements.py --postgresql     # and PostgreSQL
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import secrets
import sys
import tempfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import make_url

from launchbench.platform import launch_claims
from ltipro.plugins import Plugins
from ltipro.testing.dbcounts import driver_calls
from ltipro.testing.harness import ToolHarness, prepare_database

DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/postgres"


# The launches counted: ``launch_claims`` numbers, all after the warm-up. Returning
# launches repeat warm-up ones (same users, same courses); first launches bring users the
# tool has not seen (in courses it has): a user's first page makes their calendar feed.
USERS = 400
WARMUP = 100


async def count_launch(
    database_url: str, instance: Path, launches: int
) -> dict[str, dict[str, Any]]:
    """Counts per launch, for returning users and for users' first launches (after a
    hundred launches that warm caches and create the courses and the first users;
    ``launches`` at most a hundred)."""
    plugins = list(Plugins.load(None).lms_names)
    phases = {
        "returning users": range(launches),
        "a user's first launch": range(WARMUP, WARMUP + launches),
    }
    results: dict[str, dict[str, Any]] = {}
    async with ToolHarness(database_url=database_url, instance=instance, plugins=plugins) as h:
        engine = h.tool.repo.engine.sync_engine
        for i in range(WARMUP):
            h.client.cookies.clear()
            response = await h.launch13(launch_claims(i))
            if response.status_code != 200 or "<h1>Meetings" not in response.text:
                raise SystemExit(f"a launch failed: {response.status_code} {response.text[:300]}")
        for phase, numbers in phases.items():
            counts: Counter[str] = Counter()
            statements: list[str] = []

            def on(name: str, counts: Counter[str] = counts) -> Any:
                return lambda *args: counts.update([name])

            def on_statement(
                conn: Any,
                cursor: Any,
                sql: str,
                *args: Any,
                counts: Counter[str] = counts,
                statements: list[str] = statements,
            ) -> None:
                counts["statements"] += 1
                statements.append(" ".join(sql.split())[:90])

            listeners = [
                (engine.pool, "checkout", on("pool checkouts")),
                (engine, "commit", on("commits")),
                (engine, "rollback", on("rollbacks")),
                (engine, "before_cursor_execute", on_statement),
            ]
            for target, name, fn in listeners:
                event.listen(target, name, fn)
            try:
                with driver_calls(counts):
                    for i in numbers:
                        h.client.cookies.clear()
                        await h.launch13(launch_claims(i, users=USERS))
            finally:
                for target, name, fn in listeners:
                    event.remove(target, name, fn)
            results[phase] = {
                "per launch": {k: round(v / launches, 2) for k, v in sorted(counts.items())},
                "statements of one launch": statements[: len(statements) // launches],
            }
    return results


@contextlib.contextmanager
def _throwaway_postgres(admin_url: str) -> Iterator[str]:
    name = f"ltipro_count_{secrets.token_hex(4)}"
    admin = create_engine(
        make_url(admin_url).set(drivername="postgresql+psycopg"), isolation_level="AUTOCOMMIT"
    )
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def report(label: str, results: dict[str, dict[str, Any]]) -> str:
    lines = []
    for phase, result in results.items():
        lines += [f"{label}, {phase}:"]
        lines += [f"  {name}: {value}" for name, value in result["per launch"].items()]
        lines += ["  statements of one launch (login, then launch and first page):"]
        lines += [f"    {sql}" for sql in result["statements of one launch"]]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="bench/statements.py", description="Database work per LTI 1.3 launch, counted."
    )
    parser.add_argument("--launches", type=int, default=20, help="launches counted (default 20)")
    parser.add_argument(
        "--postgresql",
        nargs="?",
        const=DEFAULT_PG,
        metavar="URL",
        help=f"count on a throwaway PostgreSQL database too (server default {DEFAULT_PG})",
    )
    args = parser.parse_args(argv)
    if not 1 <= args.launches <= WARMUP:
        parser.error(f"--launches must be 1..{WARMUP}")
    with tempfile.TemporaryDirectory(prefix="ltipro-count-") as tmp:
        folder = Path(tmp)
        url = f"sqlite:///{folder / 'ltipro.db'}"
        prepare_database(url)
        print(report("SQLite", asyncio.run(count_launch(url, folder / "sqlite", args.launches))))
        if args.postgresql:
            with _throwaway_postgres(args.postgresql) as pg_url:
                prepare_database(pg_url)
                result = asyncio.run(count_launch(pg_url, folder / "pg", args.launches))
                print(report("PostgreSQL", result))
    sys.stdout.flush()
    return 0
