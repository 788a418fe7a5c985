"""What a meeting looks like in an LMS calendar: one event per occurrence, each with a marker.

Domain rules only: no database, web or HTTP imports. The sync job and reconciliation both
compute the events a meeting should have here, so they never disagree about it.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from ltipro.extension import CalendarEvent
from ltipro.meetings.model import Meeting, occurrences
from ltipro.providers.base import Recurrence

# How far ahead a meeting's occurrences go into the calendar, and how many at most: an
# open-ended series would otherwise fill calendars for years.
HORIZON = timedelta(days=365)
MAX_EVENTS = 100

MARKER = re.compile(r"ltipro:(?P<uid>[A-Za-z0-9_-]{1,32}):(?P<start>\d{8}T\d{4}Z)")
_MARKER_TIME = "%Y%m%dT%H%MZ"
_WEEKDAYS = ("Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday")


def marker(meeting_uid: str, start: datetime) -> str:
    """``ltipro:<meeting uid>:<occurrence start, UTC, YYYYMMDDTHHMMZ>``."""
    return f"ltipro:{meeting_uid}:{start.astimezone(UTC).strftime(_MARKER_TIME)}"


@dataclass(frozen=True)
class ParsedMarker:
    meeting_uid: str
    start: datetime


def parse_marker(text: str | None) -> ParsedMarker | None:
    """The meeting and occurrence a marker names, or ``None`` for anything else."""
    if not text:
        return None
    match = MARKER.fullmatch(text.strip())
    if match is None:
        return None
    try:
        start = datetime.strptime(match["start"], _MARKER_TIME).replace(tzinfo=UTC)
    except ValueError:
        return None
    return ParsedMarker(match["uid"], start)


def describe_recurrence(recurrence: Recurrence | None, timezone: str) -> str | None:
    """The series in words, for the event's text (LMS calendars get single events)."""
    if recurrence is None:
        return None
    every = max(1, recurrence.repeat_interval)
    unit = {"daily": "day", "weekly": "week", "monthly": "month"}.get(recurrence.type, "time")
    text = f"Every {unit}" if every == 1 else f"Every {every} {unit}s"
    if recurrence.type == "weekly" and recurrence.weekly_days:
        text += " on " + ", ".join(_WEEKDAYS[d - 1] for d in recurrence.weekly_days if 1 <= d <= 7)
    if recurrence.type == "monthly" and recurrence.monthly_day:
        text += f" on day {recurrence.monthly_day}"
    if recurrence.end_times:
        text += f", {recurrence.end_times} times"
    elif recurrence.end_date_time:
        end = recurrence.end_date_time.astimezone(ZoneInfo(timezone))
        text += f", until {end:%Y-%m-%d}"
    return text


def desired_events(meeting: Meeting, now: datetime) -> dict[str, CalendarEvent]:
    """The events the meeting should have, by marker: its occurrences not yet over.

    Occurrences that ended are left out (their events stay as history); those further
    than :data:`HORIZON` ahead, and any beyond the first :data:`MAX_EVENTS`, are added by
    later syncs as time goes on. Times are given in the meeting's own time zone.
    """
    zone = ZoneInfo(meeting.timezone)
    length = timedelta(minutes=meeting.duration)
    series = describe_recurrence(meeting.recurrence, meeting.timezone)
    out: dict[str, CalendarEvent] = {}
    for start in occurrences(meeting.start_time, meeting.recurrence, meeting.timezone):
        if start + length <= now:
            continue
        if start > now + HORIZON or len(out) >= MAX_EVENTS:
            break
        key = marker(meeting.uid, start)
        out[key] = CalendarEvent(
            marker=key,
            title=meeting.topic,
            start=start.astimezone(zone),
            end=(start + length).astimezone(zone),
            timezone=meeting.timezone,
            join_url=meeting.join_url,
            description=meeting.agenda,
            recurrence=series,
            audience=meeting.audience,
        )
    return out


def fingerprint(event: CalendarEvent) -> str:
    """A hash of everything the LMS is told about an event: equal means nothing to send."""
    data = {
        "title": event.title,
        "start": event.start.astimezone(UTC).isoformat(),
        "end": event.end.astimezone(UTC).isoformat(),
        "timezone": event.timezone,
        "join_url": event.join_url,
        "description": event.description,
        "recurrence": event.recurrence,
        "audience": sorted(a.key for a in event.audience),
    }
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


def looks_the_same(
    event: CalendarEvent, title: str, start: datetime | None, end: datetime | None
) -> bool:
    """Whether an event found in an LMS calendar shows what ``event`` says (reconcile)."""
    if start is None or end is None:
        return False
    return (
        title == event.title
        and start.astimezone(UTC) == event.start.astimezone(UTC)
        and end.astimezone(UTC) == event.end.astimezone(UTC)
    )
