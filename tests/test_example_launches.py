"""Every installed LMS plugin's example launches, complete, with every plugin loaded at
once: each launch must reach its own LMS's plugin and come out with the right role."""

from __future__ import annotations

from importlib.metadata import entry_points
from pathlib import Path

import pytest

from ltipro.extension import ExampleLaunch
from ltipro.plugins import ENTRY_POINT_GROUP, Plugins
from ltipro.testing.harness import ToolHarness

INSTALLED = sorted({ep.name for ep in entry_points(group=ENTRY_POINT_GROUP)})


def _examples() -> list[ExampleLaunch]:
    plugins = Plugins.load(INSTALLED)
    found: list[ExampleLaunch] = []
    for _name, answer in plugins.broadcast_sync("example_launches"):
        found.extend(answer)
    return sorted(found, key=lambda e: (e.lms, e.name))


EXAMPLES = _examples()


def test_every_installed_lms_plugin_offers_example_launches() -> None:
    lms_with_examples = {e.lms for e in EXAMPLES}
    assert set(INSTALLED) <= lms_with_examples
    assert "generic" in lms_with_examples


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda e: f"{e.lms}-{e.name}-{e.version}")
async def test_example_launch_reaches_its_own_plugin(
    example: ExampleLaunch, database_url: str, tmp_path: Path
) -> None:
    async with ToolHarness(
        database_url=database_url, instance=tmp_path / "instance", plugins=INSTALLED
    ) as harness:
        claims = dict(example.claims)
        if example.version == "1.3":
            page = await harness.launch13(claims)
        else:
            page = await harness.launch11(claims)
        assert page.status_code == 200, page.text[-1000:]
        me = await harness.me(page)
        assert me["lms"] == example.lms
        assert me["lti_version"] == example.version
        expected_role = "student" if example.role == "student" else "instructor"
        assert me["role"] == expected_role
