"""The small helpers every LMS plugin shares: the marker in an event's text, LMS times."""

from __future__ import annotations

from datetime import UTC, datetime

from ltipro.calendar.events import marker
from ltipro.lmsapi import marker_tag, parse_lms_time, read_marker

MARKER = marker("a1b2c3", datetime(2026, 12, 1, 15, 30, tzinfo=UTC))


def test_a_marker_written_by_a_plugin_is_read_back_from_plain_text_and_html() -> None:
    assert read_marker(f"Office hours\nJoin: https://x\n{marker_tag(MARKER)}") == MARKER
    html = f"<p>Office hours</p><p>{marker_tag(MARKER).replace(':', '&#58;')}</p>"
    assert read_marker(html) == MARKER


def test_the_last_marker_counts_and_text_without_one_has_none() -> None:
    other = marker("zz9", datetime(2027, 1, 5, 9, 0, tzinfo=UTC))
    assert read_marker(f"[{MARKER}] copied\n[{other}]") == other
    for text in (None, 5, "", "no marker", "[ltipro:broken]", "ltipro:a1b2c3:20261201T1530Z"):
        assert read_marker(text) is None


def test_lms_times_become_aware_utc_and_nonsense_becomes_none() -> None:
    expected = datetime(2026, 12, 1, 15, 30, tzinfo=UTC)
    assert parse_lms_time("2026-12-01T15:30:00Z") == expected
    assert parse_lms_time("2026-12-01T15:30:00.000Z") == expected
    assert parse_lms_time("2026-12-01T10:30:00-05:00") == expected
    assert parse_lms_time("2026-12-01T15:30:00") == expected  # no offset: UTC
    for value in (None, "", "yesterday", 1733067000, "2026-13-01T00:00:00Z"):
        assert parse_lms_time(value) is None
