"""Reading import files as Excel and LibreOffice write them, Meeting IDs a spreadsheet
mangled, the row and size limits, and CSV exports that no spreadsheet runs as formulas."""

from __future__ import annotations

import asyncio
import csv
import io
import re
from pathlib import Path

import pytest

from ltipro.imports.checks import local_checks, provider_checks
from ltipro.imports.csvfile import ImportFileError, read_file
from ltipro.imports.meeting_ids import read_meeting_id
from ltipro.meetings.rules import FORMULA_START, csv_text
from ltipro.options import CredentialOptions
from ltipro.providers.base import MeetingsProvider, ProviderError, ProviderMeeting

FIXTURES = Path(__file__).parent / "fixtures"
ROOT = Path(__file__).resolve().parents[2]


def read(name: str, max_rows: int = 1000) -> list[tuple[int, str, str, str, str]]:
    parsed = read_file((FIXTURES / name).read_bytes(), max_rows=max_rows)
    return [(r.number, r.meeting_id, r.context_id, r.domain, r.lms_course_id) for r in parsed.rows]


def test_excel_csv_utf8_with_bom_crlf_and_trailing_empty_rows() -> None:
    parsed = read_file((FIXTURES / "excel_utf8_bom_crlf.csv").read_bytes(), max_rows=1000)
    assert parsed.delimiter == "," and parsed.encoding == "utf-8"
    assert [(r.number, r.meeting_id, r.lms_course_id) for r in parsed.rows] == [
        (2, "812 3456 7890", "1041"),
        (3, "812-3456-7891", "1042"),
        (4, "81234567892", "1041"),
    ]
    assert parsed.rows[0].context_id == "4dde05e8ca1973bcca9bffc13e1548820eee93a3"
    assert parsed.ignored_columns == ("Title",)
    checks = local_checks(parsed.rows, CredentialOptions())
    assert [c.meeting_id for c in checks] == ["81234567890", "81234567891", "81234567892"]
    assert all(c.ok for c in checks)


def test_excel_in_a_semicolon_locale_with_the_windows_code_page_and_scientific_ids() -> None:
    parsed = read_file((FIXTURES / "excel_semicolon_locale.csv").read_bytes(), max_rows=1000)
    assert parsed.delimiter == ";" and parsed.encoding == "windows-1252"
    checks = local_checks(parsed.rows, CredentialOptions())
    assert checks[0].meeting_id == "81234567893" and checks[0].ok  # every digit survived
    assert "Meeting ID read as 81234567893." in checks[0].notes
    assert checks[1].meeting_id is None  # 8,12346E+10: five digits are gone
    assert "keeping only 6 of its 11 digits" in checks[1].errors[0]
    assert "Format the Meeting ID column as Text" in checks[1].errors[0]
    assert checks[2].meeting_id == "81234567895"
    assert [c.domain for c in checks] == ["moodle.example.fr"] * 3


def test_libreoffice_quoted_fields_blank_lines_and_header_spellings() -> None:
    assert read("libreoffice_quoted.csv") == [
        (2, "81234567896", "ctx-2001", "d2l.example.edu", ""),
        (4, "81234567897", "ctx-2002", "d2l.example.edu", ""),
        (5, "  81234567898 ", "ctx-2003", "https://D2L.Example.edu/d2l/home", ""),
    ]
    parsed = read_file((FIXTURES / "libreoffice_quoted.csv").read_bytes(), max_rows=1000)
    checks = local_checks(parsed.rows, CredentialOptions(approved_domains=("d2l.example.edu",)))
    assert [c.meeting_id for c in checks][2] == "81234567898"
    assert checks[2].domain == "d2l.example.edu" and checks[2].ok


@pytest.mark.parametrize(
    ("cell", "value"),
    [
        ("81234567890", "81234567890"),
        ("812 3456 7890", "81234567890"),
        ("812-3456-7890", "81234567890"),
        ("812\u00a03456\u00a07890", "81234567890"),
        ("8.1234567890E+10", "81234567890"),
        ("8,1234567890E+10", "81234567890"),
        ("81234567890.0", "81234567890"),
        ("'81234567890", "81234567890"),
        ("9.87654321E+8", "987654321"),
        ("Physics-Room_2", "Physics-Room_2"),
    ],
)
def test_meeting_ids_are_cleaned_where_every_digit_survived(cell: str, value: str) -> None:
    reading = read_meeting_id(cell)
    assert (reading.value, reading.error) == (value, None)


@pytest.mark.parametrize("cell", ["8.12346E+10", "8,12346E+10", "8E+10", "1.2E+9"])
def test_meeting_ids_with_lost_digits_are_flagged_not_guessed(cell: str) -> None:
    reading = read_meeting_id(cell)
    assert reading.value is None and reading.error and "lost" in reading.error


def test_a_missing_column_is_named_with_the_template_header() -> None:
    with pytest.raises(ImportFileError) as caught:
        read_file(b"Meeting ID,Course\r\n81234567890,x\r\n", max_rows=10)
    assert '"Context ID", "Domain"' in caught.value.message
    assert "Meeting ID, Context ID, Domain, custom_canvas_course_id" in caught.value.message


def test_a_file_over_the_row_limit_is_refused_whole_with_its_count() -> None:
    rows = "".join(f"8123456{i:04d},c{i},lms.example.edu\r\n" for i in range(12))
    data = b"Meeting ID,Context ID,Domain\r\n" + rows.encode() + b",,\r\n" * 5
    assert len(read_file(data, max_rows=12).rows) == 12  # trailing empty rows do not count
    with pytest.raises(ImportFileError) as caught:
        read_file(data, max_rows=11)
    assert caught.value.code == "too_many_rows" and caught.value.status == 413
    assert "has 12 meeting rows; at most 11" in caught.value.message
    assert "Nothing was imported" in caught.value.message


@pytest.mark.parametrize(
    ("data", "code", "words"),
    [
        (b"", "invalid_file", "empty"),
        (b"\r\n,,\r\n", "invalid_file", "empty"),
        (b"Meeting ID,Context ID,Domain\r\n", "invalid_file", "no meeting rows"),
        (b"PK\x03\x04\x00\x00binary", "invalid_file", "binary"),
        (b"Meeting ID,Context ID,Domain\r\n" + b"1" * 3000, "file_too_large", "bytes"),
    ],
)
def test_files_that_cannot_be_imported_say_why(data: bytes, code: str, words: str) -> None:
    with pytest.raises(ImportFileError) as caught:
        read_file(data, max_rows=10, max_bytes=2000)
    assert caught.value.code == code and words in caught.value.message


def test_utf16_unicode_text_from_excel_is_read_with_tabs() -> None:
    text = "Meeting ID\tContext ID\tDomain\r\n81234567890\tc1\tlms.example.edu\r\n"
    parsed = read_file(text.encode("utf-16"), max_rows=10)
    assert parsed.delimiter == "\t" and parsed.rows[0].meeting_id == "81234567890"


class SlowProvider(MeetingsProvider):
    """Counts how many lookups run at once."""

    name = "slow"
    title = "Slow"

    def __init__(self) -> None:
        self.running = 0
        self.most = 0

    async def get_meeting(self, meeting_id: str) -> ProviderMeeting:
        self.running += 1
        self.most = max(self.most, self.running)
        await asyncio.sleep(0.001)
        self.running -= 1
        if meeting_id.endswith("9"):
            raise ProviderError("meeting_not_found", "gone", status=404)
        return ProviderMeeting(meeting_id, "https://x/j", "t", None, 60, "UTC")

    async def host_account(self, person, *, role=None, options=None):  # type: ignore[no-untyped-def]
        raise NotImplementedError

    async def create_meeting(self, host, spec):  # type: ignore[no-untyped-def]
        raise NotImplementedError

    async def update_meeting(self, meeting_id, spec):  # type: ignore[no-untyped-def]
        raise NotImplementedError

    async def delete_meeting(self, meeting_id):  # type: ignore[no-untyped-def]
        raise NotImplementedError

    async def join_url(self, meeting_id, stored_join_url, person, *, host, options=None):  # type: ignore[no-untyped-def]
        raise NotImplementedError


async def test_the_provider_is_asked_with_bounded_concurrency_and_progress_is_reported() -> None:
    data = "Meeting ID,Context ID,Domain\n" + "".join(
        f"{81234560000 + i},c{i},lms.example.edu\n" for i in range(40)
    )
    checks = local_checks(read_file(data.encode(), max_rows=100).rows, CredentialOptions())
    provider = SlowProvider()
    seen: list[int] = []

    async def progress(done: int) -> None:
        seen.append(done)

    await provider_checks(checks, provider, concurrency=8, progress=progress)
    assert provider.most == 8
    assert seen[0] == 0 and seen[-1] == 40 and seen == sorted(seen)
    assert sum(1 for c in checks if c.errors) == 4  # ...09, ...19, ...29, ...39


def test_exported_csv_cells_never_start_a_formula() -> None:
    cells = ["=1+1", "+SUM(A1)", "-2+3", "@cmd", "\tx", "\rx", "plain", '=HYPERLINK("http://x")']
    text = csv_text(["Row", *cells], [[1, *cells]])
    for row in csv.reader(io.StringIO(text)):
        for cell in row:
            assert not cell.startswith(FORMULA_START), cell
    assert "'=1+1" in text and "plain" in text


def test_every_csv_the_tool_exports_goes_through_the_one_safe_helper() -> None:
    writers = [
        str(path.relative_to(ROOT))
        for path in [*(ROOT / "ltipro").rglob("*.py"), *(ROOT / "plugins").rglob("*.py")]
        if re.search(r"csv\.(writer|DictWriter)\(", path.read_text())
    ]
    assert writers == ["ltipro/meetings/rules.py"], writers
