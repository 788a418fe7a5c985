"""Fixtures for the core's tests: every test runs on SQLite, and on PostgreSQL too when
``LTIPRO_TEST_DATABASE_URL`` is set (``.ci/run`` sets it). The databases come from
ltipro's pytest plugin (``ltipro.testing.pytest_plugin``), as the plugins' tests do."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from ltipro.testing.harness import ToolHarness


@pytest.fixture(scope="session")
def pg_database(ltipro_postgres_database: str | None) -> str | None:
    """A throwaway PostgreSQL database for this test session, migrated once."""
    return ltipro_postgres_database


@pytest.fixture
def database_url(ltipro_backend_database_url: str) -> str:
    """A migrated, empty database on each backend under test."""
    return ltipro_backend_database_url


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
