"""docs/options.md covers every option and names only tests that exist."""

from __future__ import annotations

import re
from pathlib import Path

from ltipro.options import OPTION_NAMES

ROOT = Path(__file__).resolve().parent.parent
DOC = (ROOT / "docs" / "options.md").read_text()


def test_every_option_is_described_in_the_options_page() -> None:
    missing = [name for name in OPTION_NAMES if f"`{name}`" not in DOC]
    assert not missing, f"describe these options in docs/options.md: {missing}"


def test_every_test_the_options_page_names_exists() -> None:
    named = set(re.findall(r"`(test_[a-z0-9_]+)`", DOC))
    defined = {
        match
        for path in (ROOT / "tests").glob("test_*.py")
        for match in re.findall(r"^(?:async )?def (test_[a-z0-9_]+)", path.read_text(), re.M)
    }
    assert len(named) > 30  # the page names the proof of each option
    assert named <= defined, f"docs/options.md names tests that do not exist: {named - defined}"
