"""Fixtures for the core's tests: every test runs on SQLite, and on PostgreSQL too when
``LTIPRO_TEST_DATABASE_URL`` is set (``.ci/run`` sets it)."""

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
REDIS_URL = os.environ.get("LTIPRO_TEST_REDIS_URL")
BACKENDS = ["sqlite", *(["postgresql"] if PG_URL else [])]


def _sync_pg(url: str) -> str:
    return make_url(url).set(drivername="postgresql+psycopg").render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str | None]:
    """A throwaway PostgreSQL database for this test session, migrated once."""
    if not PG_URL:
        yield None
        return
    name = f"ltipro_test_{os.getpid()}_{secrets.token_hex(3)}"
    admin = create_engine(_sync_pg(PG_URL), isolation_level="AUTOCOMMIT")
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


def _truncate(url: str) -> None:
    engine = create_engine(_sync_pg(url))
    with engine.begin() as conn:
        names = ", ".join(f'"{t.name}"' for t in metadata.sorted_tables)
        conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    engine.dispose()


@pytest.fixture(params=BACKENDS)
def database_url(
    request: pytest.FixtureRequest, ltipro_database_url: str, pg_database: str | None
) -> str:
    """A migrated, empty database on each backend under test."""
    if request.param == "sqlite":
        return ltipro_database_url
    assert pg_database is not None
    _truncate(pg_database)
    return pg_database


@pytest.fixture
def plugin_names() -> list[str]:
    """The installed plugins the core's tests load (tests never load plugins by accident)."""
    return []


@pytest.fixture
async def harness(
    database_url: str, tmp_path: Path, plugin_names: list[str]
) -> AsyncIterator[ToolHarness]:
    async with ToolHarness(
        database_url=database_url, instance=tmp_path / "instance", plugins=plugin_names
    ) as h:
        yield h
