"""pytest fixtures for ltipro plugins (registered through the ``pytest11`` entry point).

``ltipro_harness`` gives a test the tool in-process, with the plugins under test loaded
and a simulated platform registered; see :class:`ltipro.testing.ToolHarness`. The
``ltipro_conformance_*`` fixtures give the conformance suite
(:mod:`ltipro.testing.conformance`) its databases, made once per test session.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from ltipro.testing.harness import ToolHarness, prepare_database


@pytest.fixture(scope="session")
def ltipro_template_database(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An SQLite database with every migration applied, made once per test session."""
    path = tmp_path_factory.mktemp("ltipro-db") / "template.db"
    prepare_database(f"sqlite:///{path}")
    return path


@pytest.fixture
def ltipro_database_url(ltipro_template_database: Path, tmp_path: Path) -> str:
    """A fresh copy of the migrated database for one test."""
    import shutil

    target = tmp_path / "ltipro.db"
    shutil.copyfile(ltipro_template_database, target)
    return f"sqlite:///{target}"


@pytest.fixture
def ltipro_plugins() -> list[str]:
    """The installed plugins a test loads; a plugin's conftest overrides this."""
    return []


@pytest.fixture
async def ltipro_harness(
    ltipro_database_url: str, tmp_path: Path, ltipro_plugins: list[str]
) -> AsyncIterator[ToolHarness]:
    async with ToolHarness(
        database_url=ltipro_database_url, instance=tmp_path / "instance", plugins=ltipro_plugins
    ) as harness:
        yield harness


def sync_postgres_url(url: str) -> str:
    """A PostgreSQL URL for SQLAlchemy's synchronous psycopg driver."""
    from sqlalchemy.engine import make_url

    return make_url(url).set(drivername="postgresql+psycopg").render_as_string(hide_password=False)


def _installed_migrations() -> list[str]:
    from ltipro.plugins import Plugins

    plugins = Plugins.load()
    return [location for _, location in plugins.broadcast_sync("plugin_migrations") if location]


@pytest.fixture(scope="session")
def ltipro_conformance_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An SQLite database with the core's and every installed plugin's migrations applied.

    The conformance suite loads every installed plugin in some tests, so their tables
    must exist. Made once per test session; each test gets a copy.
    """
    path = tmp_path_factory.mktemp("ltipro-conformance") / "template.db"
    prepare_database(f"sqlite:///{path}", _installed_migrations())
    return path


@pytest.fixture(scope="session")
def ltipro_conformance_postgres() -> Iterator[str | None]:
    """A throwaway PostgreSQL database with every migration applied, or ``None``.

    Made on the server ``LTIPRO_TEST_DATABASE_URL`` names, when it is set, and dropped at
    the end of the test session.
    """
    url = os.environ.get("LTIPRO_TEST_DATABASE_URL")
    if not url:
        yield None
        return
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    name = f"ltipro_conformance_{os.getpid()}_{secrets.token_hex(3)}"
    admin = create_engine(sync_postgres_url(url), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    database = make_url(url).set(database=name).render_as_string(hide_password=False)
    try:
        prepare_database(database, _installed_migrations())
        yield database
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
