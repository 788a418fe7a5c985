"""docs/configuration.md documents every ``LTIPRO_*`` variable the code reads, and no other."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "configuration.md"
# A whole variable name: `LTIPRO_` alone or a prefix such as `LTIPRO_TEST_` is not one.
VARIABLE = re.compile(r"\bLTIPRO_[A-Z0-9]+(?:_[A-Z0-9]+)*\b")
TABLE_ROW = re.compile(r"^\|\s*`(LTIPRO_[A-Z0-9_]+)`\s*\|", re.M)


def sources() -> list[Path]:
    """The core, every plugin, the tests and the scripts that run them."""
    files = [*(ROOT / "ltipro").rglob("*.py"), *(ROOT / "plugins").rglob("*.py")]
    files += [p for p in (ROOT / "tests").rglob("*.py") if p.name != Path(__file__).name]
    files += [p for p in (ROOT / "scripts").glob("*") if p.is_file()]
    files += [ROOT / ".ci" / "run", ROOT / "Makefile"]
    return [p for p in files if p.is_file() and ".venv" not in p.parts]


def variables_in_code() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for path in sources():
        for name in VARIABLE.findall(path.read_text(errors="replace")):
            found.setdefault(name, path)
    return found


def documented() -> list[str]:
    return TABLE_ROW.findall(DOC.read_text())


def test_the_scan_finds_the_variables_the_settings_read() -> None:
    # Guards the test itself: a broken pattern or path would find nothing and pass.
    found = variables_in_code()
    for name in ("LTIPRO_INSTANCE", "LTIPRO_BASE_URL", "LTIPRO_DEV", "LTIPRO_TEST_DATABASE_URL"):
        assert name in found
    assert "LTIPRO_" not in found and "LTIPRO_TEST" not in found


def test_every_variable_the_code_reads_is_in_the_configuration_table() -> None:
    table = set(documented())
    missing = {
        name: str(path.relative_to(ROOT))
        for name, path in variables_in_code().items()
        if name not in table
    }
    assert not missing, f"add these to the table in docs/configuration.md: {missing}"


def test_the_configuration_table_has_no_stale_or_repeated_variables() -> None:
    rows = documented()
    assert len(rows) == len(set(rows)), "a variable has two rows"
    stale = set(rows) - set(variables_in_code())
    assert not stale, f"docs/configuration.md documents variables nothing reads: {stale}"
