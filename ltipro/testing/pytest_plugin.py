"""pytest fixtures for ltipro plugins (registered through the ``pytest11`` entry point).

``ltipro_harness`` gives a test the tool in-process, with the plugins under test loaded
and a simulated platform registered; see :class:`ltipro.testing.ToolHarness`.
:func:`harness_fixture` makes such a fixture for a plugin's conftest, run on each
database backend under test: SQLite, and PostgreSQL too when ``LTIPRO_TEST_DATABASE_URL``
names a server the tests may create a database on (``ltipro_backend_database_url``).
The ``ltipro_conformance_*`` fixtures give the conformance suite
(:mod:`ltipro.testing.conformance`) its databases. Databases are made once per test
session; each test gets a copy (SQLite) or the emptied database (PostgreSQL).
"""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from ltipro.testing.harness import ToolHarness, prepare_database

#: The environment variable naming the PostgreSQL server the tests may use.
POSTGRES_ENV = "LTIPRO_TEST_DATABASE_URL"


def database_backends() -> list[str]:
    """The database backends tests run on: SQLite, and PostgreSQL when it is configured."""
    return ["sqlite", *(["postgresql"] if os.environ.get(POSTGRES_ENV) else [])]


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


# -- PostgreSQL -----------------------------------------------------------------------------


def sync_postgres_url(url: str) -> str:
    """A PostgreSQL URL for SQLAlchemy's synchronous psycopg driver."""
    from sqlalchemy.engine import make_url

    return make_url(url).set(drivername="postgresql+psycopg").render_as_string(hide_password=False)


@contextmanager
def postgres_database(
    server_url: str, prefix: str, plugin_locations: Sequence[str] = ()
) -> Iterator[str]:
    """A new database on the PostgreSQL server, migrated, dropped when the block ends.

    Its name starts with ``prefix`` and carries the process id and a random part, so
    test runs that share the server never meet.
    """
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    name = f"{prefix}_{os.getpid()}_{secrets.token_hex(3)}"
    admin = create_engine(sync_postgres_url(server_url), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    database = make_url(server_url).set(database=name).render_as_string(hide_password=False)
    try:
        prepare_database(database, plugin_locations)
        yield database
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def empty_postgres_database(url: str) -> None:
    """Empty every table but Alembic's, so a test starts from a migrated, empty database."""
    from sqlalchemy import create_engine, inspect, text

    engine = create_engine(sync_postgres_url(url))
    try:
        with engine.begin() as conn:
            names = [t for t in inspect(conn).get_table_names() if t != "alembic_version"]
            if names:
                quoted = ", ".join(f'"{t}"' for t in names)
                conn.execute(text(f"TRUNCATE {quoted} RESTART IDENTITY CASCADE"))
    finally:
        engine.dispose()


@pytest.fixture(scope="session")
def ltipro_postgres_database() -> Iterator[str | None]:
    """A throwaway PostgreSQL database with the core's migrations applied, or ``None``.

    Made on the server ``LTIPRO_TEST_DATABASE_URL`` names, when it is set, once per test
    session, and dropped at its end.
    """
    url = os.environ.get(POSTGRES_ENV)
    if not url:
        yield None
        return
    with postgres_database(url, "ltipro_test") as database:
        yield database


@pytest.fixture(params=database_backends())
def ltipro_backend_database_url(
    request: pytest.FixtureRequest, ltipro_database_url: str, ltipro_postgres_database: str | None
) -> str:
    """A migrated, empty database on each backend under test."""
    if request.param == "sqlite":
        return ltipro_database_url
    assert ltipro_postgres_database is not None
    empty_postgres_database(ltipro_postgres_database)
    return ltipro_postgres_database


def harness_fixture(*plugins: str) -> Callable[..., Any]:
    """A fixture giving the tool with ``plugins`` (and the built-in ones) loaded and enabled,
    on each database backend under test. Assign it in a conftest under the fixture's name::

        canvas_harness = harness_fixture("canvas")
    """

    async def harness(
        ltipro_backend_database_url: str, tmp_path: Path
    ) -> AsyncIterator[ToolHarness]:
        async with ToolHarness(
            database_url=ltipro_backend_database_url,
            instance=tmp_path / "instance",
            plugins=list(plugins),
        ) as tool:
            yield tool

    harness.__doc__ = (
        f"The tool with {', '.join(plugins) or 'no'} plugin(s) (and the built-in ones) loaded "
        "and enabled, on each database backend under test."
    )
    return pytest.fixture(harness)


# -- the conformance suite's databases ------------------------------------------------------


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
    url = os.environ.get(POSTGRES_ENV)
    if not url:
        yield None
        return
    with postgres_database(url, "ltipro_conformance", _installed_migrations()) as database:
        yield database
