"""Running migrations: the core's and those of every loaded plugin (``ltipro db upgrade``)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from alembic import command
from alembic.config import Config

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(database_url: str, plugin_locations: Sequence[str] = ()) -> Config:
    """An Alembic configuration without an ini file, with every plugin's version folder."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    locations = [str(MIGRATIONS / "versions"), *plugin_locations]
    config.set_main_option("version_locations", " ".join(locations))
    config.set_main_option("path_separator", "space")
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    config.attributes["database_url"] = database_url
    return config


def upgrade(database_url: str, plugin_locations: Sequence[str] = ()) -> None:
    """Bring the database to the newest schema of the core and every plugin."""
    command.upgrade(alembic_config(database_url, plugin_locations), "heads")


def revision(database_url: str, message: str) -> None:
    """Write a new core migration from the difference between schema and database."""
    command.revision(alembic_config(database_url), message=message, autogenerate=True)
