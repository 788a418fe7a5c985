"""Fixtures for the Canvas plugin's tests: the tool with only this plugin installed.

Every launch test runs on SQLite, and on PostgreSQL too when ``LTIPRO_TEST_DATABASE_URL``
is set (``.ci/run`` sets it); the databases come from ltipro's pytest plugin. Fixture
names carry the plugin's name so they never shadow the core's fixtures when every test
suite runs in one pytest session.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from ltipro_canvas.api import QUOTA_GATE

from ltipro.testing.pytest_plugin import harness_fixture

#: The tool with the Canvas plugin (and the built-in generic one) loaded and enabled.
canvas_harness = harness_fixture("canvas")


@pytest.fixture(autouse=True)
def _open_quota_gate() -> Iterator[None]:
    """Each test starts with no Canvas token known to be throttled (the gate is per process)."""
    QUOTA_GATE.clear()
    yield
    QUOTA_GATE.clear()
