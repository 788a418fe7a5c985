"""docs/deploy.md gives only real commands and real variables.

Every ``ltipro ...`` command in its shell and unit-file examples is parsed by the real
command-line parser, and every ``LTIPRO_*`` variable it names is one the configuration
page documents (and so one the code reads: tests/test_configuration_docs.py).
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from ltipro.cli import build_parser

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "docs" / "deploy.md"
CONFIGURATION = ROOT / "docs" / "configuration.md"
BLOCK = re.compile(r"^```(?P<lang>\w*)\n(?P<body>.*?)^```", re.M | re.S)
COMMAND_LANGS = {"sh", "ini"}
SEPARATORS = re.compile(r";|&&|\|\|?")


def commands_in(text: str) -> list[str]:
    """The ``ltipro`` commands of the page's shell and unit-file blocks, as written."""
    found: list[str] = []
    for block in BLOCK.finditer(text):
        if block["lang"] not in COMMAND_LANGS:
            continue
        for line in block["body"].splitlines():
            for part in SEPARATORS.split(line):
                words = part.strip().removeprefix("ExecStart=").strip("'\"").split()
                if words and words[0] == "exec":
                    words = words[1:]
                if words and (words[0] == "ltipro" or words[0].endswith("/bin/ltipro")):
                    found.append(" ".join(["ltipro", *words[1:]]))
    return found


def parse_problem(command: str) -> str | None:
    """Why the ``ltipro`` parser refuses ``command``, or None when it takes it."""
    parser = build_parser()
    parser.exit_on_error = False
    try:
        parser.parse_args(shlex.split(command)[1:])
    except SystemExit as exc:
        return f"{command!r} is refused by the parser (exit {exc.code})"
    except Exception as exc:
        return f"{command!r} is refused by the parser: {exc}"
    return None


def test_the_page_shows_the_commands_a_production_set_up_needs() -> None:
    commands = commands_in(DEPLOY.read_text())
    for needed in (
        "ltipro init",
        "ltipro db upgrade",
        "ltipro serve --host 127.0.0.1 --port 8000 --workers 4",
        "ltipro worker --concurrency 4",
        "ltipro keys rotate",
    ):
        assert needed in commands, f"docs/deploy.md does not show `{needed}`"


def test_every_ltipro_command_on_the_page_is_accepted_by_the_parser(
    capsys: pytest.CaptureFixture[str],
) -> None:
    commands = commands_in(DEPLOY.read_text())
    assert len(commands) >= 10
    problems = [p for p in map(parse_problem, commands) if p]
    assert not problems, problems


def test_the_check_catches_a_command_that_does_not_exist(
    capsys: pytest.CaptureFixture[str],
) -> None:
    page = "```sh\nltipro keys shred\nExecStart=/opt/x/bin/ltipro serve --workerz 2\n```\n"
    commands = commands_in(page)
    assert commands == ["ltipro keys shred", "ltipro serve --workerz 2"]
    assert all(parse_problem(c) for c in commands)


def test_every_variable_on_the_page_is_documented_in_the_configuration_table() -> None:
    table = set(re.findall(r"^\|\s*`(LTIPRO_[A-Z0-9_]+)`\s*\|", CONFIGURATION.read_text(), re.M))
    named = set(re.findall(r"\bLTIPRO_[A-Z0-9]+(?:_[A-Z0-9]+)*\b", DEPLOY.read_text()))
    assert {"LTIPRO_REDIS_URL", "LTIPRO_METRICS_DIR", "LTIPRO_LOG_FORMAT"} <= named
    assert named <= table, f"not in docs/configuration.md: {sorted(named - table)}"


def test_the_endpoints_and_metrics_on_the_page_are_the_ones_the_app_serves() -> None:
    from ltipro import observability
    from ltipro.web.app import core_routes

    text = DEPLOY.read_text()
    paths = {getattr(route, "path", "") for route in core_routes()}
    for endpoint in ("/healthz", "/readyz", "/metrics"):
        assert endpoint in paths and f"`{endpoint}`" in text
    documented = set(re.findall(r"^\| `(ltipro_[a-z_]+)`", text, re.M))
    served = set(observability.REGISTRY.metrics) | {"ltipro_jobs", "ltipro_metrics_database_up"}
    assert documented == served
