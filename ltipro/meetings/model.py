"""Meetings as the tool keeps them, the schedule form, and who may do what.

Domain rules only: nothing here imports the web framework, the database or httpx.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from ltipro.extension import Audience
from ltipro.options import CredentialOptions, valid_timezone
from ltipro.providers.base import MeetingSpec, Recurrence

MAX_TOPIC = 200
MAX_AGENDA = 2000
MAX_DURATION = 24 * 60
MAX_OCCURRENCES = 60  # Zoom's limit for recurring meetings, and a sane one for others
WEEKDAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")  # Zoom counts 1 = Sunday
MAX_AUDIENCE = 50  # sections and groups one meeting is for
_AUDIENCE_KEY = re.compile(r"(section|group):([A-Za-z0-9._~-]{1,100})")


@dataclass(frozen=True)
class Meeting:
    """A course meeting the tool holds (its provider holds the room)."""

    id: int
    uid: str
    credential_id: int
    course_id: int
    provider: str
    provider_meeting_id: str
    topic: str
    agenda: str
    start_time: datetime
    duration: int
    timezone: str
    recurrence: Recurrence | None
    join_url: str
    host_user_id: str
    host_name: str | None
    host_email: str
    host_role: str
    host_account_id: str
    # The sections and groups the meeting is for; empty for the whole course.
    audience: tuple[Audience, ...] = ()
    source: str = "tool"
    alternative_hosts: tuple[str, ...] | None = None  # as last given to the provider

    @property
    def end_time(self) -> datetime:
        """When the last occurrence ends."""
        starts = occurrences(self.start_time, self.recurrence, self.timezone)
        return starts[-1] + timedelta(minutes=self.duration)

    def is_past(self, now: datetime) -> bool:
        return self.end_time <= now

    def next_start(self, now: datetime) -> datetime:
        """The start of the next (or current) occurrence."""
        for start in occurrences(self.start_time, self.recurrence, self.timezone):
            if start + timedelta(minutes=self.duration) > now:
                return start
        return self.start_time

    def hosted_by(self, user_id: str | None) -> bool:
        return user_id is not None and self.host_user_id == user_id

    def has_started(self, now: datetime) -> bool:
        """Whether its first occurrence has begun (so sessions may have been held)."""
        return self.start_time <= now


def occurrences(start: datetime, recurrence: Recurrence | None, timezone: str) -> list[datetime]:
    """Every start of a meeting, in order, as aware UTC datetimes.

    Recurrence is computed in the meeting's time zone, so a weekly 9:00 meeting stays at
    9:00 local time across a daylight-saving change.
    """
    if recurrence is None:
        return [start]
    zone = ZoneInfo(timezone)
    local = start.astimezone(zone)
    limit = recurrence.end_times or MAX_OCCURRENCES
    until = recurrence.end_date_time
    out: list[datetime] = []
    step = max(1, recurrence.repeat_interval)
    day = local.date()
    guard = 0
    while len(out) < min(limit, MAX_OCCURRENCES) and guard < 4000:
        guard += 1
        candidate = datetime.combine(day, local.timetz().replace(tzinfo=None), zone)
        if candidate >= local and _matches(recurrence, day, local.date(), step):
            if until is not None and candidate > until:
                break
            out.append(candidate.astimezone(UTC))
        day += timedelta(days=1)
    return out or [start]


def _matches(recurrence: Recurrence, day: date, first: date, step: int) -> bool:
    if recurrence.type == "daily":
        return (day - first).days % step == 0
    if recurrence.type == "weekly":
        weekday = (day.isoweekday() % 7) + 1  # Sunday = 1
        days = recurrence.weekly_days or ((first.isoweekday() % 7) + 1,)
        weeks = ((day - first).days + (first.isoweekday() % 7)) // 7
        return weekday in days and weeks % step == 0
    if recurrence.type == "monthly":
        months = (day.year - first.year) * 12 + day.month - first.month
        return day.day == (recurrence.monthly_day or first.day) and months % step == 0
    return False


def audience_to_json(audience: tuple[Audience, ...]) -> list[dict[str, str]]:
    """A meeting's audience as its JSON column keeps it: kind, LMS id and name of each.

    The name is kept with the id so listings never ask the LMS what a section is called.
    """
    return [{"kind": a.kind, "id": a.id, "name": a.name} for a in audience]


def audience_from_json(value: Any) -> tuple[Audience, ...]:
    """A meeting's audience from its JSON column, in either form the column has held.

    Rows written before audiences were checked against the LMS hold plain strings:
    ``section:<id>`` and ``group:<id>`` keep their meaning (the id stands in for the
    name), and any other free text is read as a named group, which every member of the
    course sees (see :func:`may_see`), as they did when it was written.
    """
    if not isinstance(value, (list, tuple)):
        return ()
    out: list[Audience] = []
    for entry in value:
        if isinstance(entry, Mapping):
            kind, ident = str(entry.get("kind") or ""), str(entry.get("id") or "")
            name = str(entry.get("name") or ident)
            if kind in ("section", "group") and ident:
                out.append(Audience("section" if kind == "section" else "group", ident, name))
        elif isinstance(entry, str) and entry.strip():
            match = _AUDIENCE_KEY.fullmatch(entry.strip())
            if match:
                kind, ident = match.group(1), match.group(2)
                label = f"{kind.capitalize()} {ident}"
                out.append(Audience("section" if kind == "section" else "group", ident, label))
            else:
                out.append(Audience("group", entry.strip(), entry.strip()))
    return tuple(out)


def recurrence_to_json(recurrence: Recurrence | None) -> dict[str, Any] | None:
    if recurrence is None:
        return None
    return {
        "type": recurrence.type,
        "repeat_interval": recurrence.repeat_interval,
        "weekly_days": list(recurrence.weekly_days),
        "monthly_day": recurrence.monthly_day,
        "end_times": recurrence.end_times,
        "end_date_time": recurrence.end_date_time.isoformat() if recurrence.end_date_time else None,
    }


def recurrence_from_json(data: Mapping[str, Any] | None) -> Recurrence | None:
    if not data:
        return None
    end = data.get("end_date_time")
    return Recurrence(
        type=str(data["type"]),
        repeat_interval=int(data.get("repeat_interval") or 1),
        weekly_days=tuple(int(d) for d in data.get("weekly_days") or ()),
        monthly_day=data.get("monthly_day"),
        end_times=data.get("end_times"),
        end_date_time=datetime.fromisoformat(end) if end else None,
    )


class FormError(ValueError):
    """The schedule form has mistakes: ``errors`` maps each field to its message."""

    def __init__(self, errors: Mapping[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = dict(errors)


@dataclass(frozen=True)
class MeetingForm:
    """What the schedule and edit forms (and the JSON API) submit, checked."""

    topic: str
    start_time: datetime
    duration: int
    timezone: str
    agenda: str = ""
    recurrence: Recurrence | None = None
    # Keys (``section:<id>``, ``group:<id>``) as submitted; the service checks them
    # against the sections and groups the LMS lists for the course.
    audience: tuple[str, ...] = field(default_factory=tuple)

    def spec(
        self,
        alternative_hosts: tuple[str, ...] | None = None,
        tracking_fields: tuple[tuple[str, str], ...] | None = None,
    ) -> MeetingSpec:
        return MeetingSpec(
            topic=self.topic,
            start_time=self.start_time,
            duration=self.duration,
            timezone=self.timezone,
            agenda=self.agenda,
            recurrence=self.recurrence,
            alternative_hosts=alternative_hosts,
            tracking_fields=tracking_fields,
        )

    @classmethod
    def parse(cls, data: Mapping[str, Any], default_timezone: str, now: datetime) -> MeetingForm:
        """Read and check submitted fields; raise :class:`FormError` naming each mistake.

        ``start`` is either ``date`` + ``time`` fields (the page's form, in the chosen
        time zone) or an ISO 8601 ``start_time`` (the API; naive means the time zone).
        """
        errors: dict[str, str] = {}
        topic = _text(data.get("topic")).strip()
        if not topic:
            errors["topic"] = "Give the meeting a topic."
        elif len(topic) > MAX_TOPIC:
            errors["topic"] = f"The topic is at most {MAX_TOPIC} characters."
        agenda = _text(data.get("agenda")).strip()
        if len(agenda) > MAX_AGENDA:
            errors["agenda"] = f"The description is at most {MAX_AGENDA} characters."
        for name, value in (("topic", topic), ("agenda", agenda)):
            if name not in errors and _CONTROL.search(value):
                errors[name] = "Remove the control characters (such as NUL) from this text."
        timezone = _text(data.get("timezone")).strip() or default_timezone
        if not valid_timezone(timezone):
            errors["timezone"] = "Choose a time zone from the list."
            timezone = default_timezone
        start = _start(data, timezone, errors)
        if start is not None and start < now - timedelta(minutes=5) and "start" not in errors:
            errors["start"] = "The meeting cannot start in the past."
        duration = _integer(data.get("duration"), "duration", errors, default=60)
        if duration is not None and not 1 <= duration <= MAX_DURATION:
            errors["duration"] = f"The duration is 1 to {MAX_DURATION} minutes."
        recurrence = _recurrence(data, start, timezone, errors)
        audience = _audience(data.get("audience"), errors)
        if errors:
            raise FormError(errors)
        assert start is not None and duration is not None
        return cls(
            topic=topic,
            start_time=start,
            duration=duration,
            timezone=timezone,
            agenda=agenda,
            recurrence=recurrence,
            audience=audience,
        )


# C0 control characters other than tab, line feed and carriage return: no one types them,
# and PostgreSQL cannot store NUL at all.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (list, tuple)):
        return str(value[0]) if value else ""
    return str(value)


def _list(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return [str(v) for v in value]
    return [v for v in str(value).split(",")]


def _audience(value: Any, errors: dict[str, str]) -> tuple[str, ...]:
    """The submitted audience keys, in order, without repeats.

    The form sends one ``audience`` field per ticked box; the API a list of keys. An
    entry the API gives as ``{"kind": ..., "id": ...}`` is taken as its key too.
    """
    entries = value if isinstance(value, (list, tuple)) else _list(value)
    keys: list[str] = []
    for entry in entries:
        if isinstance(entry, Mapping):
            entry = f"{entry.get('kind')}:{entry.get('id')}"
        text = str(entry).strip()
        if not text:
            continue
        if not _AUDIENCE_KEY.fullmatch(text):
            errors["audience"] = "Choose sections or groups from the list."
            return ()
        if text not in keys:
            keys.append(text)
    if len(keys) > MAX_AUDIENCE:
        errors["audience"] = f"Choose at most {MAX_AUDIENCE} sections and groups."
        return ()
    return tuple(keys)


def _integer(
    value: Any, name: str, errors: dict[str, str], default: int | None = None
) -> int | None:
    text = _text(value).strip()
    if not text:
        return default
    if isinstance(value, bool) or not re.fullmatch(r"-?\d{1,6}", text):
        errors[name] = "Give a whole number."
        return None
    return int(text)


def _start(data: Mapping[str, Any], timezone: str, errors: dict[str, str]) -> datetime | None:
    zone = ZoneInfo(timezone)
    iso = _text(data.get("start_time")).strip()
    try:
        if iso:
            parsed = datetime.fromisoformat(iso.replace("Z", "+00:00"))
            if parsed.tzinfo is None:
                parsed = parsed.replace(tzinfo=zone)
            return parsed.astimezone(UTC)
        day = _text(data.get("date")).strip()
        clock = _text(data.get("time")).strip()
        if not day or not clock:
            errors["start"] = "Give the date and time the meeting starts."
            return None
        parsed = datetime.combine(date.fromisoformat(day), datetime.strptime(clock, "%H:%M").time())
        return parsed.replace(tzinfo=zone).astimezone(UTC)
    except (ValueError, OverflowError):
        errors["start"] = "The start is not a date and time the tool understands."
        return None


def _recurrence(
    data: Mapping[str, Any], start: datetime | None, timezone: str, errors: dict[str, str]
) -> Recurrence | None:
    kind = _text(data.get("repeat")).strip().lower()
    if kind in ("", "none", "no"):
        return None
    if kind not in ("daily", "weekly", "monthly"):
        errors["repeat"] = "Repeat is none, daily, weekly or monthly."
        return None
    interval = _integer(data.get("repeat_interval"), "repeat_interval", errors, default=1)
    if interval is not None and not 1 <= interval <= (90 if kind == "daily" else 12):
        errors["repeat_interval"] = "Repeat every 1 to 12 weeks or months, or 1 to 90 days."
    end_times = _integer(data.get("end_times"), "end_times", errors, default=None)
    end_date_text = _text(data.get("end_date")).strip()
    end_date_time: datetime | None = None
    if end_date_text:
        try:
            end_day = date.fromisoformat(end_date_text)
            end_date_time = datetime.combine(
                end_day, datetime.max.time().replace(microsecond=0), ZoneInfo(timezone)
            ).astimezone(UTC)
        except ValueError:
            errors["end_date"] = "The end date is not a date."
    if end_times is None and end_date_time is None:
        end_times = 10
    if end_times is not None and not 1 <= end_times <= MAX_OCCURRENCES:
        errors["end_times"] = f"A meeting repeats 1 to {MAX_OCCURRENCES} times."
    if end_date_time is not None and start is not None and end_date_time < start:
        errors["end_date"] = "The repeats must end after the first meeting."
    weekly_days: tuple[int, ...] = ()
    if kind == "weekly":
        chosen = [d.strip().lower()[:3] for d in _list(data.get("weekly_days"))]
        if any(d not in WEEKDAYS for d in chosen):
            errors["weekly_days"] = "Choose days of the week."
        weekly_days = tuple(sorted({WEEKDAYS.index(d) + 1 for d in chosen if d in WEEKDAYS}))
    monthly_day = None
    if kind == "monthly" and start is not None:
        monthly_day = start.astimezone(ZoneInfo(timezone)).day
    return Recurrence(
        type=kind,
        repeat_interval=interval or 1,
        weekly_days=weekly_days,
        monthly_day=monthly_day,
        end_times=end_times if end_date_time is None else None,
        end_date_time=end_date_time,
    )


# -- who may do what ----------------------------------------------------------------------


def may_schedule(role: str, options: CredentialOptions) -> bool:
    """Instructors schedule; students too where the credential lets students host."""
    return role == "instructor" or options.students_may_host


# Launch attributes that list the LMS section ids of the person launching. Canvas fills
# either with ``$Canvas.course.sectionIds`` when the admin adds it as a custom field.
SECTION_ATTRIBUTES = ("custom_canvas_section_ids", "custom_section_ids")


def launch_sections(attributes: Mapping[str, str]) -> frozenset[str] | None:
    """The section ids the launch says its user belongs to; ``None`` when it does not say.

    An empty value is an answer (in no section); an absent one is not.
    """
    for name in SECTION_ATTRIBUTES:
        value = attributes.get(name)
        if value is not None:
            return frozenset(s.strip() for s in value.split(",") if s.strip())
    return None


def may_see(
    meeting: Meeting, role: str, user_id: str | None, sections: frozenset[str] | None
) -> bool:
    """Whether someone finds a meeting in the course's listing.

    Instructors see every meeting and hosts their own. A meeting for the whole course is
    everyone's. One for sections is shown to the members of those sections when the
    launch says which sections the person is in (``sections``), and to everyone when it
    does not: hiding a meeting from someone it is for is worse than showing it to a few
    it is not for. LMSs do not say at launch which groups someone is in, so a meeting
    for any group is shown to everyone too. This is a convenience of the listing, not
    access control: the join link is the provider's to guard.
    """
    if role == "instructor" or not meeting.audience or meeting.hosted_by(user_id):
        return True
    if sections is None or any(a.kind == "group" for a in meeting.audience):
        return True
    return any(a.kind == "section" and a.id in sections for a in meeting.audience)


def may_manage(
    meeting: Meeting, role: str, user_id: str | None, options: CredentialOptions
) -> bool:
    """Instructors manage every meeting of their course; a student only their own."""
    if role == "instructor":
        return True
    return options.students_may_host and meeting.hosted_by(user_id)


def may_start(meeting: Meeting, user_id: str | None) -> bool:
    """Only the host starts a meeting as host: the start link signs in as them."""
    return meeting.hosted_by(user_id)


def may_see_attendance(meeting: Meeting, role: str, options: CredentialOptions) -> bool:
    """Attendance reports, when on, are for instructors: a student sees none, not even of
    a meeting they hosted."""
    return options.attendance_report and role == "instructor"


def may_manage_recordings(role: str) -> bool:
    """Instructors publish and delete recordings, those of student-hosted meetings too."""
    return role == "instructor"
