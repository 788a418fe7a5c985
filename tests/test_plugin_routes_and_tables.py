"""A plugin's own routes are mounted under /plugins/<name>/, and its own Alembic branch
creates its tables on SQLite and PostgreSQL, through `ltipro db upgrade` too."""

from __future__ import annotations

import importlib
import os
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import make_url

from ltipro.cli import main
from ltipro.storage.migrate import alembic_config, upgrade
from ltipro.testing.harness import SECRET_KEY, ToolHarness

FIXTURES = Path(__file__).parent / "fixtures"
PG_URL = os.environ.get("LTIPRO_TEST_DATABASE_URL")


@pytest.fixture
def sample_plugin(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    monkeypatch.syspath_prepend(str(FIXTURES))
    return importlib.import_module("sample_plugin")


def _sync_url(url: str) -> str:
    parsed = make_url(url)
    if parsed.get_backend_name() == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database with nothing in it: an SQLite file, or a throwaway PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty.db'}"
        return
    if not PG_URL:
        pytest.skip("LTIPRO_TEST_DATABASE_URL is not set")
    name = f"ltipro_plugin_tables_{secrets.token_hex(4)}"
    admin = create_engine(_sync_url(PG_URL), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _tables_and_versions(url: str) -> tuple[set[str], set[str]]:
    engine = create_engine(_sync_url(url))
    try:
        with engine.connect() as conn:
            tables = set(inspect(conn).get_table_names())
            versions = (
                {row[0] for row in conn.execute(text("SELECT version_num FROM alembic_version"))}
                if "alembic_version" in tables
                else set()
            )
    finally:
        engine.dispose()
    return tables, versions


def _missing_heads(versions: set[str], locations: list[str]) -> set[str]:
    """The heads of the core's and the plugins' branches the database has not reached.

    Alembic keeps only the newest revisions in ``alembic_version``: a head another
    branch depends on counts as reached through that branch.
    """
    script = ScriptDirectory.from_config(alembic_config("sqlite://", locations))
    reached: set[str] = set()
    for version in versions:
        reached.update(r.revision for r in script.iterate_revisions(version, "base"))
    return set(script.get_heads()) - reached


# -- routes -------------------------------------------------------------------------------------------


async def test_plugin_routes_are_mounted_under_plugins_and_its_name(
    database_url: str, tmp_path: Path, sample_plugin: ModuleType
) -> None:
    async with ToolHarness(
        database_url=database_url,
        instance=tmp_path / "instance",
        plugins=[],
        extra_plugins=[("sample", sample_plugin)],
    ) as harness:
        response = await harness.client.get("/plugins/sample/hello")
        assert response.status_code == 200
        assert response.json() == {"plugin": "sample", "path": "/plugins/sample/hello"}
        # Only under its own prefix: a plugin cannot take over the core's paths.
        assert (await harness.client.get("/hello")).status_code == 404
        assert (await harness.client.get("/plugins/generic/hello")).status_code == 404


# -- tables ---------------------------------------------------------------------------------------------


def test_plugin_migration_creates_its_table_on_a_new_database(
    empty_database: str, sample_plugin: ModuleType
) -> None:
    location = sample_plugin.plugin_migrations()
    upgrade(empty_database, [location])
    tables, versions = _tables_and_versions(empty_database)
    assert {"sample_notes", "credentials", "plugin_settings"} <= tables
    # Both branches are at their heads: the core's and the plugin's own.
    assert "sample_0001" in versions
    assert _missing_heads(versions, [location]) == set()
    engine = create_engine(_sync_url(empty_database))
    try:
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO credentials (name, options, enabled_plugins, "
                    "auto_approve_registrations, created_at) "
                    "VALUES ('c', '{}', '[]', false, CURRENT_TIMESTAMP)"
                )
            )
            conn.execute(text("INSERT INTO sample_notes (credential_id, body) VALUES (1, 'hi')"))
            assert conn.execute(text("SELECT body FROM sample_notes")).scalar_one() == "hi"
    finally:
        engine.dispose()


def test_plugin_migration_is_added_to_a_database_the_core_already_migrated(
    ltipro_database_url: str, sample_plugin: ModuleType
) -> None:
    tables, versions = _tables_and_versions(ltipro_database_url)
    assert "sample_notes" not in tables and "sample_0001" not in versions
    location = sample_plugin.plugin_migrations()
    upgrade(ltipro_database_url, [location])
    upgrade(ltipro_database_url, [location])  # a second run has nothing left to do
    tables, versions = _tables_and_versions(ltipro_database_url)
    assert "sample_notes" in tables
    assert _missing_heads(versions, [location]) == set()


@pytest.fixture
def installed_sample(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sample_plugin: ModuleType
) -> None:
    """The sample plugin installed as a distribution, with the environment of an instance."""
    info = tmp_path / "site-packages" / "ltipro_sample-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: ltipro-sample\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[ltipro]\nsample = sample_plugin\n")
    monkeypatch.syspath_prepend(str(info.parent))
    monkeypatch.setenv("LTIPRO_INSTANCE", str(tmp_path / "instance"))
    monkeypatch.setenv("LTIPRO_SECRET_KEY", SECRET_KEY)
    monkeypatch.setenv("LTIPRO_BASE_URL", "https://tool.test")


def test_db_upgrade_runs_the_migrations_of_the_loaded_plugins(
    installed_sample: None, empty_database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LTIPRO_DATABASE_URL", empty_database)
    monkeypatch.setenv("LTIPRO_PLUGINS", "sample")
    assert main(["db", "upgrade"]) == 0
    tables, versions = _tables_and_versions(empty_database)
    assert "sample_notes" in tables
    assert "sample_0001" in versions


def test_db_upgrade_leaves_out_the_tables_of_plugins_that_are_not_loaded(
    installed_sample: None,
    ltipro_template_database: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    path = tmp_path / "core-only.db"
    shutil.copyfile(ltipro_template_database, path)
    monkeypatch.setenv("LTIPRO_DATABASE_URL", f"sqlite:///{path}")
    monkeypatch.setenv("LTIPRO_PLUGINS", "")
    assert main(["db", "upgrade"]) == 0
    tables, versions = _tables_and_versions(f"sqlite:///{path}")
    assert "sample_notes" not in tables
    assert "sample_0001" not in versions
