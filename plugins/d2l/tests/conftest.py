"""Fixtures for the D2L plugin's tests: the tool with only this plugin installed.

Every launch test runs on SQLite, and on PostgreSQL too when ``LTIPRO_TEST_DATABASE_URL``
is set (``.ci/run`` sets it). Fixture names carry the plugin's name so they never shadow
the core's fixtures when every test suite runs in one pytest session.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from ltipro.storage.schema import metadata
from ltipro.testing.harness import ToolHarness, prepare_database

PG_URL = os.environ.get("LTIPRO_TEST_DATABASE_URL")
BACKENDS = ["sqlite", *(["postgresql"] if PG_URL else [])]


def _sync(url: str) -> str:
    return make_url(url).set(drivername="postgresql+psycopg").render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def d2l_pg_database() -> Iterator[str | None]:
    """A throwaway PostgreSQL database for this plugin's tests, migrated once."""
    if not PG_URL:
        yield None
        return
    name = f"ltipro_d2l_{os.getpid()}_{secrets.token_hex(3)}"
    admin = create_engine(_sync(PG_URL), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    try:
        prepare_database(url)
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=BACKENDS)
def d2l_database_url(
    request: pytest.FixtureRequest, ltipro_database_url: str, d2l_pg_database: str | None
) -> str:
    """A migrated, empty database on each backend under test."""
    if request.param == "sqlite":
        return ltipro_database_url
    assert d2l_pg_database is not None
    engine = create_engine(_sync(d2l_pg_database))
    with engine.begin() as conn:
        names = ", ".join(f'"{t.name}"' for t in metadata.sorted_tables)
        conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    engine.dispose()
    return d2l_pg_database


@pytest.fixture
async def d2l_harness(d2l_database_url: str, tmp_path: Path) -> AsyncIterator[ToolHarness]:
    """The tool with the D2L plugin (and the built-in generic one) loaded and enabled."""
    async with ToolHarness(
        database_url=d2l_database_url, instance=tmp_path / "instance", plugins=["d2l"]
    ) as harness:
        yield harness
