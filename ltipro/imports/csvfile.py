"""Reading an import file as spreadsheet programs write it.

Excel's "CSV UTF-8" starts with a byte order mark and ends lines with CRLF; Excel in a
locale whose decimal mark is a comma separates fields with ``;``; its plain "CSV" is in
the Windows code page; LibreOffice quotes text fields; every one of them may leave empty
rows at the end. All of these are read. Header names are matched without regard to case,
spaces, ``_`` or ``-``, so ``Meeting ID``, ``meeting_id`` and ``MEETINGID`` are one column.

A file that cannot be read at all (not text, no header row, a missing column, too many
rows, too large) raises :class:`ImportFileError` with a message for the admin; each row's
own mistakes are for the checks that follow (:mod:`ltipro.imports.checks`).
"""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass, field

# Column keys, and the header names (normalised) that mean them.
MEETING_ID = "meeting_id"
CONTEXT_ID = "context_id"
DOMAIN = "domain"
LMS_COURSE_ID = "lms_course_id"
COLUMNS: dict[str, tuple[str, ...]] = {
    MEETING_ID: ("meetingid", "meetingnumber", "zoommeetingid"),
    CONTEXT_ID: ("contextid", "lticontextid"),
    DOMAIN: ("domain", "lmsdomain"),
    LMS_COURSE_ID: ("customcanvascourseid", "canvascourseid", "lmscourseid"),
}
REQUIRED = (MEETING_ID, CONTEXT_ID, DOMAIN)
# The template's header: what the console's "Download a CSV template" gives.
TEMPLATE_HEADER = ("Meeting ID", "Context ID", "Domain", "custom_canvas_course_id")
HEADER_TITLES = dict(
    zip((MEETING_ID, CONTEXT_ID, DOMAIN, LMS_COURSE_ID), TEMPLATE_HEADER, strict=True)
)

DELIMITERS = (",", ";", "\t")
DEFAULT_MAX_BYTES = 2 * 1024 * 1024
MAX_CELL = 1000


class ImportFileError(ValueError):
    """The file as a whole cannot be imported; the message says why and what to do.

    ``code`` is stable for scripts (``invalid_file``, ``too_many_rows``,
    ``file_too_large``); ``status`` is the HTTP status the API answers with.
    """

    def __init__(self, message: str, code: str = "invalid_file", status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.status = status


@dataclass(frozen=True)
class FileRow:
    """One data row: ``number`` is the row number a spreadsheet shows (the header is 1)."""

    number: int
    meeting_id: str
    context_id: str
    domain: str
    lms_course_id: str
    extra_cells: int = 0


@dataclass(frozen=True)
class ImportFile:
    """A file read: its rows (blank rows left out) and what was noticed on the way."""

    rows: list[FileRow]
    delimiter: str
    encoding: str
    ignored_columns: tuple[str, ...] = ()
    notes: tuple[str, ...] = field(default_factory=tuple)


def normalise_header(name: str) -> str:
    return "".join(c for c in name.strip().strip("\ufeff").lower() if c.isalnum())


def decode(data: bytes) -> tuple[str, str]:
    """The file's text and the encoding it was in: UTF-8 (with or without a byte order
    mark), UTF-16 with its mark (Excel's "Unicode text"), else the Windows code page."""
    if data.startswith(codecs.BOM_UTF16_LE) or data.startswith(codecs.BOM_UTF16_BE):
        try:
            return data.decode("utf-16"), "utf-16"
        except UnicodeDecodeError:
            raise ImportFileError("The file says it is UTF-16 text but is not.") from None
    try:
        return data.decode("utf-8-sig"), "utf-8"
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("cp1252"), "windows-1252"
    except UnicodeDecodeError:
        raise ImportFileError(
            "The file is not text in a known encoding: save it from the spreadsheet as "
            '"CSV UTF-8 (Comma delimited)".'
        ) from None


def _columns(header: Sequence[str]) -> dict[str, int]:
    found: dict[str, int] = {}
    for index, name in enumerate(header):
        key = normalise_header(name)
        for column, names in COLUMNS.items():
            if key in names and column not in found:
                found[column] = index
    return found


def _sniff(text: str) -> str:
    """The delimiter whose reading of the first row finds the most known columns."""
    first = next((line for line in text.splitlines() if line.strip()), "")
    best, best_count = ",", -1
    for delimiter in DELIMITERS:
        try:
            header = next(csv.reader([first], delimiter=delimiter), [])
        except csv.Error:
            continue
        count = len(_columns(header))
        if count > best_count:
            best, best_count = delimiter, count
    return best


def read_file(data: bytes, *, max_rows: int, max_bytes: int = DEFAULT_MAX_BYTES) -> ImportFile:
    """Read an uploaded file; raise :class:`ImportFileError` when it cannot be imported."""
    if len(data) > max_bytes:
        raise ImportFileError(
            f"The file is {len(data):,} bytes; an import file is at most {max_bytes:,} bytes. "
            "Split it into smaller files.",
            "file_too_large",
            413,
        )
    if not data.strip(b"\r\n\t \xef\xbb\xbf"):
        raise ImportFileError("The file is empty: it needs a header row and a row per meeting.")
    if b"\x00" in data and not data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise ImportFileError(
            "The file is not a CSV text file (it holds binary data). Save the spreadsheet "
            'as "CSV UTF-8 (Comma delimited)" and upload that.'
        )
    text, encoding = decode(data)
    delimiter = _sniff(text)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        records = list(reader)
    except csv.Error as exc:
        raise ImportFileError(f"The file is not valid CSV: {exc}.") from None
    # Leading blank rows are skipped; the header is the first row that holds something.
    start = next((i for i, r in enumerate(records) if any(c.strip() for c in r)), None)
    if start is None:
        raise ImportFileError("The file is empty: it needs a header row and a row per meeting.")
    header = records[start]
    columns = _columns(header)
    missing = [HEADER_TITLES[c] for c in REQUIRED if c not in columns]
    if missing:
        names = ", ".join(f'"{name}"' for name in missing)
        seen = ", ".join(f'"{h.strip()}"' for h in header if h.strip()) or "nothing"
        raise ImportFileError(
            f"The header row lacks the column{'s' if len(missing) > 1 else ''} {names} "
            f"(it has {seen}). Start from the CSV template: its first row is "
            + ", ".join(TEMPLATE_HEADER)
            + "."
        )
    known = set(columns.values())
    ignored = tuple(h.strip() for i, h in enumerate(header) if i not in known and h.strip())
    rows: list[FileRow] = []
    for offset, record in enumerate(records[start + 1 :], start=start + 2):
        if not any(cell.strip() for cell in record):
            continue  # blank rows, and the empty rows spreadsheets leave at the end

        def cell(column: str, record: list[str] = record) -> str:
            index = columns.get(column)
            value = record[index] if index is not None and index < len(record) else ""
            return value[:MAX_CELL]

        rows.append(
            FileRow(
                number=offset,
                meeting_id=cell(MEETING_ID),
                context_id=cell(CONTEXT_ID).strip(),
                domain=cell(DOMAIN).strip(),
                lms_course_id=cell(LMS_COURSE_ID).strip(),
                extra_cells=max(0, len(record) - len(header)),
            )
        )
        if len(rows) > max_rows:
            break
    if len(rows) > max_rows:
        total = sum(1 for r in records[start + 1 :] if any(c.strip() for c in r))
        raise ImportFileError(
            f"The file has {total:,} meeting rows; at most {max_rows:,} are imported from one "
            f"file. Nothing was imported: split it into files of at most {max_rows:,} rows.",
            "too_many_rows",
            413,
        )
    if not rows:
        raise ImportFileError("The file has a header row but no meeting rows.")
    notes = []
    if ignored:
        notes.append("Columns the import does not use were ignored: " + ", ".join(ignored) + ".")
    return ImportFile(rows, delimiter, encoding, ignored, tuple(notes))
