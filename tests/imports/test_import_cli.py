"""``ltipro meetings import`` and ``ltipro meetings undo`` on an installation whose
credential uses the embedded Jitsi provider (no account, so nothing leaves the machine)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from ltipro.cli import main

BASE_URL = "https://tool.example.edu"


@pytest.fixture
def installation(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, database_url: str) -> Path:
    for name in list(os.environ):
        if name.startswith("LTIPRO_") and not name.startswith("LTIPRO_TEST_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("LTIPRO_INSTANCE", str(tmp_path / "instance"))
    monkeypatch.setenv("LTIPRO_BASE_URL", BASE_URL)
    monkeypatch.setenv("LTIPRO_SECRET_KEY", "cli-import-secret-key-" + "k" * 32)
    monkeypatch.setenv("LTIPRO_DATABASE_URL", database_url)
    monkeypatch.setenv("LTIPRO_PLUGINS", "")
    monkeypatch.chdir(tmp_path)
    assert main(["credentials", "create", "college"]) == 0
    return tmp_path


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    status = main(list(argv))
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return status, out, err


def test_import_dry_run_then_import_then_undo_from_the_command_line(
    installation: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rooms = installation / "rooms.csv"
    rooms.write_bytes(
        b"\xef\xbb\xbfMeeting ID;Context ID;Domain\r\n"
        b"Biology-Office-Hours;bio-101;moodle.example.edu\r\n"
        b"https://meet.jit.si/Chemistry-Lab;chem-201;moodle.example.edu\r\n"
        b";;\r\n"
    )
    status, out, _ = run(
        capsys, "meetings", "import", str(rooms), "--credential", "college", "--dry-run"
    )
    assert status == 0, out
    assert "row 2\tBiology-Office-Hours\tbio-101\tmoodle.example.edu" in out
    assert "New: recorded now, completed on its first launch" in out
    assert "2 to add, 0 already in their course, 0 with errors" in out
    assert "Dry run: nothing was imported" in out

    status, out, _ = run(capsys, "meetings", "import", str(rooms), "--credential", "college")
    assert status == 0 and "Imported. To undo: ltipro meetings undo 2" in out
    # The same file again: both meetings are in their courses already.
    status, out, _ = run(capsys, "meetings", "import", str(rooms), "--credential", "college")
    assert status == 0 and "0 to add, 2 already in their course" in out

    status, out, _ = run(capsys, "meetings", "undo", "2", "--rows", "3", "--dry-run")
    assert status == 0 and "row 3\tChemistry-Lab" in out and "would remove 1 meeting" in out
    status, out, _ = run(capsys, "meetings", "undo", "2")
    assert status == 0 and "Removed 2 meeting(s)" in out
    status, _, err = run(capsys, "meetings", "undo", "2")
    assert status == 2 and "undone already" in err


def test_row_errors_exit_1_and_unreadable_files_are_usage_errors(
    installation: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = installation / "bad.csv"
    bad.write_text("Meeting ID,Context ID,Domain\n8.12346E+10,c1,moodle.example.edu\n")
    status, out, _ = run(capsys, "meetings", "import", str(bad), "--credential", "college")
    assert status == 1 and "row 2" in out and "keeping only 6 of its 11 digits" in out
    assert "Nothing was imported" in out
    wrong = installation / "wrong.csv"
    wrong.write_text("Name,Email\nx,y\n")
    status, _, err = run(capsys, "meetings", "import", str(wrong), "--credential", "college")
    assert status == 2 and err.startswith("ltipro: error: The header row lacks")
    status, _, err = run(capsys, "meetings", "import", "missing.csv", "--credential", "college")
    assert status == 2 and "cannot read missing.csv" in err
    status, _, err = run(capsys, "meetings", "undo", "999")
    assert status == 2 and "no import batch 999" in err


def test_every_process_the_command_line_starts_can_send_the_confirmation() -> None:
    # In a fresh interpreter: what `ltipro worker` has loaded when it claims jobs.
    code = (
        "from ltipro.cli import build_parser; build_parser(); "
        "from ltipro.jobs.handlers import registry; print('import.confirm' in registry)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "True", done.stderr
