"""pytest fixtures for ltipro plugins (registered through the ``pytest11`` entry point).

``ltipro_harness`` gives a test the tool in-process, with the plugins under test loaded
and a simulated platform registered; see :class:`ltipro.testing.ToolHarness`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
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
