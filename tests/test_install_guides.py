"""docs/install/*.md say what the plugins' registration artefacts say.

Each guide is linked from the README, shows the `ltipro platforms config` and
`ltipro platforms add` commands for its LMS, names artefacts the plugin really prints,
lists every custom parameter those artefacts ask for, and gives for each tracking-field
attribute exactly the line the plugin's ``custom_parameter`` hook tells admins to add.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import ltipro_blackboard
import ltipro_canvas
import ltipro_d2l
import ltipro_moodle
import pytest

from ltipro.default_plugins import generic
from ltipro.extension import RegistrationArtifact
from ltipro.registration_artifacts import lending_registration_url
from ltipro.testing.artifacts import read_cartridge

ROOT = Path(__file__).resolve().parent.parent
BASE = "https://tool.example.edu"
GUIDES: dict[str, tuple[str, ModuleType]] = {
    "canvas": ("canvas.md", ltipro_canvas),
    "moodle": ("moodle.md", ltipro_moodle),
    "d2l": ("d2l.md", ltipro_d2l),
    "blackboard": ("blackboard.md", ltipro_blackboard),
    "generic": ("other-lms.md", generic),
}
TRACKING_ROW = re.compile(r"^\| `(?P<attribute>[a-z_]+)` \| `(?P<line>[^`]+)` \|$", re.M)
PRINTED_UNDER = re.compile(r"printed under \*([^*]+)\*")


def guide(lms: str) -> str:
    return (ROOT / "docs" / "install" / GUIDES[lms][0]).read_text()


def artifacts(lms: str) -> list[RegistrationArtifact]:
    hook: Callable[..., list[RegistrationArtifact]] = GUIDES[lms][1].registration_artifacts
    with lending_registration_url(f"{BASE}/lti/register?credential=x"):
        return hook("college", BASE, {})


def custom_lines(lms: str) -> set[str]:
    """Every ``name=value`` custom parameter the LMS's artefacts ask for."""
    lines: set[str] = set()
    for artifact in artifacts(lms):
        if artifact.kind == "xml":
            custom = read_cartridge(artifact.content).custom
            lines |= {f"{name}={value}" for name, value in custom.items()}
        elif artifact.kind == "json":
            custom = json.loads(artifact.content).get("custom_fields", {})
            lines |= {f"{name}={value}" for name, value in custom.items()}
        elif artifact.kind == "values":
            lines |= {
                value
                for line in artifact.content.splitlines()
                for name, _, value in [line.partition(": ")]
                if "custom" in name.lower()
            }
    return lines


def test_the_readme_links_every_install_guide() -> None:
    readme = (ROOT / "README.md").read_text()
    for name, _ in GUIDES.values():
        assert f"(docs/install/{name})" in readme
        assert (ROOT / "docs" / "install" / name).is_file()


@pytest.mark.parametrize("lms", GUIDES)
def test_each_guide_shows_the_commands_for_its_lms(lms: str) -> None:
    text = guide(lms)
    assert f"ltipro platforms config --credential college --lms {lms}" in text
    assert f"ltipro platforms add --credential college --lms {lms}" in text
    assert "ltipro credentials create college --lti11-key" in text or lms == "generic"


@pytest.mark.parametrize("lms", GUIDES)
def test_each_guide_names_only_artefacts_the_plugin_prints(lms: str) -> None:
    titles = [a.title for a in artifacts(lms)]
    named = PRINTED_UNDER.findall(" ".join(guide(lms).split()))
    assert named, "the guide should say which printed artefact each step uses"
    for title in named:
        assert any(t.startswith(title) for t in titles), (title, titles)


@pytest.mark.parametrize("lms", GUIDES)
def test_each_guide_lists_every_custom_parameter_the_artefacts_ask_for(lms: str) -> None:
    text = guide(lms)
    missing = sorted(line for line in custom_lines(lms) if line not in text)
    assert not missing, f"docs/install/{GUIDES[lms][0]} does not mention {missing}"


@pytest.mark.parametrize("lms", [name for name in GUIDES if name != "generic"])
def test_tracking_field_lines_are_the_ones_the_plugin_gives(lms: str) -> None:
    rows = TRACKING_ROW.findall(guide(lms))
    assert len(rows) >= 5
    plugin: Any = GUIDES[lms][1]
    for attribute, line in rows:
        assert plugin.custom_parameter(attribute).line == line
