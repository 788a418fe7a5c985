"""The iCalendar text rules on their own: TEXT escaping, 75-octet folding, UTC times."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from ical_check import parse, unescape_text, unfold

from ltipro.calendar.ical import FeedMeeting, escape_text, fold, render_calendar, utc_stamp
from ltipro.meetings.model import Meeting

NOW = datetime(2027, 1, 10, 12, 0, tzinfo=UTC)


def meeting(topic: str, agenda: str = "", **extra: object) -> Meeting:
    values: dict[str, object] = {
        "id": 1,
        "uid": "m1",
        "credential_id": 1,
        "course_id": 1,
        "provider": "jitsi",
        "provider_meeting_id": "room",
        "topic": topic,
        "agenda": agenda,
        "start_time": NOW + timedelta(days=1),
        "duration": 30,
        "timezone": "Europe/Paris",
        "recurrence": None,
        "join_url": "https://meet.jit.si/room",
        "host_user_id": "t",
        "host_name": "Tea Cher",
        "host_email": "t@example.edu",
        "host_role": "instructor",
        "host_account_id": "t",
    }
    values.update(extra)
    return Meeting(**values)  # type: ignore[arg-type]


def test_text_escaping_round_trips_every_special_character() -> None:
    raw = 'a,b;c\\d\ne\r\nf "quoted" :colon'
    escaped = escape_text(raw)
    assert escaped == 'a\\,b\\;c\\\\d\\ne\\nf "quoted" :colon'
    assert unescape_text(escaped) == raw.replace("\r\n", "\n")
    assert escape_text("bell\x07 and tab\t") == "bell and tab\t"


def test_folding_keeps_lines_within_75_octets_and_characters_whole() -> None:
    line = "SUMMARY:" + "é" * 60 + "😀" * 20 + "x" * 50
    folded = fold(line)
    physical = folded.encode().split(b"\r\n")
    assert len(physical) > 2
    assert all(len(p) <= 75 for p in physical)
    assert all(p.startswith(b" ") for p in physical[1:])
    assert "".join(p.decode()[1:] if i else p.decode() for i, p in enumerate(physical)) == line
    assert fold("SHORT:" + "x" * 69) == "SHORT:" + "x" * 69  # exactly 75 octets: unfolded


def test_utc_stamps_convert_from_any_offset() -> None:
    eastern = datetime(2027, 7, 1, 9, 30, tzinfo=timezone(timedelta(hours=-4)))
    assert utc_stamp(eastern) == "20270701T133000Z"


def test_a_rendered_calendar_passes_the_strict_reader() -> None:
    long_topic = "Très long sujet, avec; des caractères spéciaux \\ " * 5
    body = render_calendar(
        "Cours: réunions",
        [FeedMeeting(meeting(long_topic, "ligne 1\nligne 2"), "Cours 1", NOW)],
        host="tool.test",
        now=NOW,
    ).encode()
    assert b"\n" not in body.replace(b"\r\n", b"")
    feed = parse(body)
    assert feed.text("X-WR-CALNAME") == "Cours: réunions"
    [event] = feed.events
    assert event.text("SUMMARY") == long_topic
    assert event.time("DTSTAMP") == NOW
    assert event.time("DTSTART") == NOW + timedelta(days=1)
    assert any(line.startswith("DESCRIPTION:ligne 1\\nligne 2") for line in unfold(body))


def test_occurrences_long_past_are_left_out() -> None:
    old = meeting("Old", start_time=NOW - timedelta(days=200))
    recent = meeting("Recent", uid="m2", start_time=NOW - timedelta(days=3))
    items = [FeedMeeting(m, "", NOW) for m in (old, recent)]
    feed = parse(render_calendar("C", items, host="tool.test", now=NOW).encode())
    assert [e.text("SUMMARY") for e in feed.events] == ["Recent"]
