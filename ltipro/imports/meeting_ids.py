"""Meeting IDs as spreadsheets leave them: cleaned where every digit survived, flagged where not.

A Zoom meeting ID is a 9 to 11 digit number. People copy it as Zoom shows it
(``812 3456 7890``) or with dashes, and a spreadsheet that reads the column as a number
may write it back in scientific notation. Excel keeps six significant digits in its
general format (``8.12346E+10``): the last digits are gone and no cleaning can bring them
back, so such a value is flagged with what to do instead. A value written with all its
digits (``8.1234567890E+10``, ``81234567890.0``) is turned back into the ID.

Values that are not numbers at all (a Jitsi room name) are kept as they are, trimmed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# Spaces of every kind, and the dashes and dots people group digits with.
_GROUPING = re.compile(r"[\s\u00a0\u2007\u202f\-\u2010\u2011\u2012\u2013\u2014.]")
_DIGITS_GROUPED = re.compile(r"\d[\d\s\u00a0\u2007\u202f\-\u2010\u2011\u2012\u2013\u2014]*\d")
# 8.12346E+10, 8,12346E+10 (a decimal comma), 8E+10, 8.1234567890e10
_SCIENTIFIC = re.compile(r"([1-9])(?:[.,](\d*))?[eE]\+?(\d{1,3})")
_WHOLE_FLOAT = re.compile(r"(\d+)[.,]0+")
MAX_LENGTH = 255

FIX_HINT = (
    "Format the Meeting ID column as Text in the spreadsheet, type or paste the IDs "
    "again, and export the file once more."
)


@dataclass(frozen=True)
class MeetingIdReading:
    """What a Meeting ID cell says: ``value`` when usable, else ``error`` for the admin.

    ``cleaned`` tells that the cell was not already in the plain form (so the preview can
    show the admin what was read from it).
    """

    raw: str
    value: str | None
    error: str | None = None
    cleaned: bool = False


def read_meeting_id(cell: str) -> MeetingIdReading:
    """Read one Meeting ID cell; see the module docstring for what is recognised."""
    raw = cell
    text = cell.strip().strip("\u200b\ufeff").strip()
    if text.startswith("'"):  # a spreadsheet's "keep this as text" mark
        text = text[1:].strip()
    if not text:
        return MeetingIdReading(raw, None, "The Meeting ID is empty.")
    if len(text) > MAX_LENGTH:
        return MeetingIdReading(
            raw, None, f"The Meeting ID is longer than {MAX_LENGTH} characters."
        )
    if text.isdigit():
        return MeetingIdReading(raw, text)
    scientific = _SCIENTIFIC.fullmatch(text)
    if scientific:
        return _scientific(raw, scientific)
    whole = _WHOLE_FLOAT.fullmatch(text)
    if whole:
        return MeetingIdReading(raw, whole.group(1), cleaned=True)
    if _DIGITS_GROUPED.fullmatch(text) or (
        re.fullmatch(r"[\d\s.\-\u00a0\u2007\u202f\u2010-\u2014]+", text)
        and sum(c.isdigit() for c in text) >= 6
    ):
        digits = _GROUPING.sub("", text)
        if digits.isdigit():
            return MeetingIdReading(raw, digits, cleaned=True)
    # Not a number: a room name or another provider's ID, used as it is.
    return MeetingIdReading(raw, text, cleaned=text != raw)


def _scientific(raw: str, match: re.Match[str]) -> MeetingIdReading:
    lead, fraction, exponent = match.group(1), match.group(2) or "", int(match.group(3))
    if len(fraction) > exponent:
        return MeetingIdReading(
            raw, None, f"{raw.strip()} is not a whole number, so it is no Meeting ID."
        )
    if len(fraction) < exponent:
        kept = 1 + len(fraction)
        total = exponent + 1
        return MeetingIdReading(
            raw,
            None,
            f"The spreadsheet turned this Meeting ID into {raw.strip()}, keeping only {kept} "
            f"of its {total} digits: the rest are lost. {FIX_HINT}",
        )
    return MeetingIdReading(raw, lead + fraction, cleaned=True)
