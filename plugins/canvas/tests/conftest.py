"""Fixtures for the Canvas plugin's tests: the tool with only this plugin installed.

Every launch test runs on SQLite, and on PostgreSQL too when ``LTIPRO_TEST_DATABASE_URL``
is set (``.ci/run`` sets it); the databases come from ltipro's pytest plugin. Fixture
names carry the plugin's name so they never shadow the core's fixtures when every test
suite runs in one pytest session.
"""

from __future__ import annotations

from ltipro.testing.pytest_plugin import harness_fixture

#: The tool with the Canvas plugin (and the built-in generic one) loaded and enabled.
canvas_harness = harness_fixture("canvas")
