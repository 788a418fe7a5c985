"""Small typed views of Zoom's JSON, and the fields a caller sends to create or update.

Each view keeps the decoded JSON it came from in ``raw``, so a caller who needs a field the
view does not name still has it. Times are timezone-aware ``datetime`` objects (Zoom sends
UTC, ``2024-05-01T14:00:00Z``); meeting ids are ints (Zoom's "meeting number", int64),
meeting UUIDs are strings that change for every instance of a meeting.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import IntEnum, StrEnum
from typing import Any
from zoneinfo import ZoneInfo


class UserType(IntEnum):
    """Zoom user types. 3 (On-prem) is retired but still reported by some accounts."""

    BASIC = 1
    LICENSED = 2
    ON_PREM = 3
    NONE = 99  # only with ssoCreate


class CreateAction(StrEnum):
    """How ``POST /users`` creates a user.

    ``create`` sends an activation email (the user is ``pending`` until they accept);
    ``autoCreate`` creates an active user without email, for a domain the account manages;
    ``custCreate`` creates a user without a password who can only host through the API
    (needs Zoom's ISV plan); ``ssoCreate`` pre-provisions a user who signs in with SSO.
    """

    CREATE = "create"
    AUTO_CREATE = "autoCreate"
    CUST_CREATE = "custCreate"
    SSO_CREATE = "ssoCreate"


class MeetingType(IntEnum):
    INSTANT = 1
    SCHEDULED = 2
    RECURRING_NO_FIXED_TIME = 3
    RECURRING_FIXED_TIME = 8


class RecurrenceType(IntEnum):
    DAILY = 1
    WEEKLY = 2
    MONTHLY = 3


class MeetingListType(StrEnum):
    """Which of a host's meetings ``GET /users/{userId}/meetings`` lists."""

    SCHEDULED = "scheduled"  # unexpired: previous, live and upcoming
    LIVE = "live"
    UPCOMING = "upcoming"  # upcoming, including live
    PREVIOUS = "previous_meetings"


def parse_time(value: Any) -> datetime | None:
    """A Zoom timestamp (``...Z`` or with an offset) as an aware datetime; None if absent."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def zoom_time(value: datetime) -> str:
    """An aware datetime in the UTC form Zoom documents, ``yyyy-MM-ddTHH:mm:ssZ``."""
    if value.tzinfo is None:
        raise ValueError("Zoom times must be timezone-aware datetimes")
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _str(data: Mapping[str, Any], key: str) -> str | None:
    value = data.get(key)
    return str(value) if value is not None and value != "" else None


def _int(data: Mapping[str, Any], key: str) -> int | None:
    value = data.get(key)
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    return None


def split_hosts(value: str | None) -> tuple[str, ...]:
    """Zoom's ``alternative_hosts`` string (``;`` separated; ``,`` seen too) as a tuple."""
    if not value:
        return ()
    return tuple(part.strip() for part in value.replace(",", ";").split(";") if part.strip())


@dataclass(frozen=True)
class ZoomUser:
    """A user of the account (``GET /users/{userId}``, or what ``POST /users`` returned)."""

    id: str
    email: str
    type: int
    status: str | None = None  # "pending" until a "create"d user accepts, then "active"
    first_name: str | None = None
    last_name: str | None = None
    display_name: str | None = None
    account_id: str | None = None
    timezone: str | None = None
    group_ids: tuple[str, ...] = ()
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> ZoomUser:
        groups = data.get("group_ids")
        return cls(
            id=str(data.get("id", "")),
            email=str(data.get("email", "")),
            type=_int(data, "type") or 0,
            status=_str(data, "status"),
            first_name=_str(data, "first_name"),
            last_name=_str(data, "last_name"),
            display_name=_str(data, "display_name"),
            account_id=_str(data, "account_id"),
            timezone=_str(data, "timezone"),
            group_ids=tuple(str(g) for g in groups) if isinstance(groups, list) else (),
            raw=data,
        )

    @property
    def pending(self) -> bool:
        return self.status == "pending"


@dataclass(frozen=True)
class ZoomRecurrence:
    """How a recurring meeting repeats (Zoom's ``recurrence`` object).

    ``weekly_days`` counts 1 = Sunday ... 7 = Saturday. End either after ``end_times``
    occurrences (at most 60) or at ``end_date_time``, not both.
    """

    type: RecurrenceType
    repeat_interval: int = 1
    weekly_days: tuple[int, ...] = ()
    monthly_day: int | None = None
    monthly_week: int | None = None  # -1 = last week, 1-4
    monthly_week_day: int | None = None  # 1 = Sunday ... 7 = Saturday
    end_times: int | None = None
    end_date_time: datetime | None = None

    def __post_init__(self) -> None:
        if self.end_times is not None and self.end_date_time is not None:
            raise ValueError("a recurrence ends after end_times or at end_date_time, not both")
        if any(not 1 <= day <= 7 for day in self.weekly_days):
            raise ValueError("weekly_days are 1 (Sunday) to 7 (Saturday)")

    def to_api(self) -> dict[str, Any]:
        data: dict[str, Any] = {"type": int(self.type), "repeat_interval": self.repeat_interval}
        if self.weekly_days:
            data["weekly_days"] = ",".join(str(day) for day in self.weekly_days)
        for key in ("monthly_day", "monthly_week", "monthly_week_day", "end_times"):
            value = getattr(self, key)
            if value is not None:
                data[key] = value
        if self.end_date_time is not None:
            data["end_date_time"] = zoom_time(self.end_date_time)
        return data

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> ZoomRecurrence:
        days = str(data.get("weekly_days") or "")
        return cls(
            type=RecurrenceType(_int(data, "type") or 1),
            repeat_interval=_int(data, "repeat_interval") or 1,
            weekly_days=tuple(int(d) for d in days.split(",") if d.strip().isdigit()),
            monthly_day=_int(data, "monthly_day"),
            monthly_week=_int(data, "monthly_week"),
            monthly_week_day=_int(data, "monthly_week_day"),
            end_times=_int(data, "end_times") if data.get("end_date_time") is None else None,
            end_date_time=parse_time(data.get("end_date_time")),
        )


@dataclass(frozen=True)
class ZoomOccurrence:
    """One occurrence of a recurring meeting; ``occurrence_id`` is what update/delete take."""

    occurrence_id: str
    start_time: datetime | None
    duration: int | None
    status: str | None

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> ZoomOccurrence:
        return cls(
            occurrence_id=str(data.get("occurrence_id", "")),
            start_time=parse_time(data.get("start_time")),
            duration=_int(data, "duration"),
            status=_str(data, "status"),
        )


@dataclass(frozen=True)
class ZoomMeeting:
    """A meeting, from create, get or list (a list item carries fewer fields).

    ``start_url`` starts the meeting as its host and is valid for two hours (90 days for
    custCreate hosts); it is for the host only and must never reach anyone else.
    """

    id: int
    topic: str
    type: int
    uuid: str | None = None
    start_time: datetime | None = None
    duration: int | None = None
    timezone: str | None = None
    agenda: str | None = None
    join_url: str | None = None
    start_url: str | None = field(default=None, repr=False)
    host_id: str | None = None
    host_email: str | None = None
    status: str | None = None  # "waiting" or "started"
    password: str | None = field(default=None, repr=False)
    recurrence: ZoomRecurrence | None = None
    occurrences: tuple[ZoomOccurrence, ...] = ()
    alternative_hosts: tuple[str, ...] = ()
    tracking_fields: tuple[tuple[str, str], ...] = ()
    created_at: datetime | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> ZoomMeeting:
        found = data.get("settings")
        settings: Mapping[str, Any] = found if isinstance(found, Mapping) else {}
        recurrence = data.get("recurrence")
        occurrences = data.get("occurrences")
        tracking = data.get("tracking_fields")
        return cls(
            id=_int(data, "id") or 0,
            topic=str(data.get("topic", "")),
            type=_int(data, "type") or 0,
            uuid=_str(data, "uuid"),
            start_time=parse_time(data.get("start_time")),
            duration=_int(data, "duration"),
            timezone=_str(data, "timezone"),
            agenda=_str(data, "agenda"),
            join_url=_str(data, "join_url"),
            start_url=_str(data, "start_url"),
            host_id=_str(data, "host_id"),
            host_email=_str(data, "host_email"),
            status=_str(data, "status"),
            password=_str(data, "password"),
            recurrence=ZoomRecurrence.from_api(recurrence)
            if isinstance(recurrence, Mapping)
            else None,
            occurrences=tuple(
                ZoomOccurrence.from_api(o) for o in occurrences or () if isinstance(o, Mapping)
            ),
            alternative_hosts=split_hosts(settings.get("alternative_hosts")),
            tracking_fields=tuple(
                (str(t.get("field", "")), str(t.get("value", "")))
                for t in tracking or ()
                if isinstance(t, Mapping)
            ),
            created_at=parse_time(data.get("created_at")),
            raw=data,
        )

    @property
    def recurring(self) -> bool:
        return self.type in (MeetingType.RECURRING_FIXED_TIME, MeetingType.RECURRING_NO_FIXED_TIME)


@dataclass(frozen=True)
class ZoomMeetingFields:
    """What to set when creating or updating a meeting; ``None`` leaves a field alone.

    ``start_time`` must be timezone-aware; it is sent in UTC with ``timezone`` naming the
    zone the meeting belongs to (Zoom shows times and expands recurrences in it; when
    ``timezone`` is None and ``start_time`` carries a ``ZoneInfo``, that zone's name is
    used). ``alternative_hosts`` become ``settings.alternative_hosts`` (emails or user ids,
    ``;``-separated; an empty sequence clears them). ``tracking_fields`` are (field, value)
    pairs. ``settings`` adds other documented meeting settings as they are.
    """

    topic: str | None = None
    start_time: datetime | None = None
    duration: int | None = None
    timezone: str | None = None
    agenda: str | None = None
    type: MeetingType | None = None
    recurrence: ZoomRecurrence | None = None
    password: str | None = None
    alternative_hosts: Sequence[str] | None = None
    tracking_fields: Sequence[tuple[str, str]] | None = None
    settings: Mapping[str, Any] | None = None

    def to_api(self, *, creating: bool) -> dict[str, Any]:
        """The JSON body for ``POST /users/{id}/meetings`` or ``PATCH /meetings/{id}``."""
        body: dict[str, Any] = {}
        if self.topic is not None:
            body["topic"] = self.topic
        meeting_type = self.type
        if meeting_type is None and self.recurrence is not None:
            meeting_type = MeetingType.RECURRING_FIXED_TIME
        if meeting_type is None and creating:
            meeting_type = MeetingType.SCHEDULED
        if meeting_type is not None:
            body["type"] = int(meeting_type)
        if self.start_time is not None:
            body["start_time"] = zoom_time(self.start_time)
        timezone = self.timezone
        if (
            timezone is None
            and self.start_time is not None
            and isinstance(self.start_time.tzinfo, ZoneInfo)
        ):
            timezone = self.start_time.tzinfo.key
        if timezone is not None:
            body["timezone"] = timezone
        if self.duration is not None:
            body["duration"] = self.duration
        if self.agenda is not None:
            body["agenda"] = self.agenda
        if self.password is not None:
            body["password"] = self.password
        if self.recurrence is not None:
            body["recurrence"] = self.recurrence.to_api()
        if self.tracking_fields is not None:
            body["tracking_fields"] = [{"field": f, "value": v} for f, v in self.tracking_fields]
        settings: dict[str, Any] = dict(self.settings or {})
        if self.alternative_hosts is not None:
            settings["alternative_hosts"] = ";".join(self.alternative_hosts)
        if settings:
            body["settings"] = settings
        return body


@dataclass(frozen=True)
class ZoomRecordingFile:
    """One file of a cloud recording. ``play_url`` opens Zoom's player, ``download_url``
    needs the account's access token (or the meeting's ``download_access_token``)."""

    id: str
    file_type: str | None
    file_extension: str | None
    recording_type: str | None
    recording_start: datetime | None
    recording_end: datetime | None
    file_size: int | None
    play_url: str | None
    download_url: str | None
    status: str | None
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> ZoomRecordingFile:
        size = data.get("file_size")
        return cls(
            id=str(data.get("id", "")),
            file_type=_str(data, "file_type"),
            file_extension=_str(data, "file_extension"),
            recording_type=_str(data, "recording_type"),
            recording_start=parse_time(data.get("recording_start")),
            recording_end=parse_time(data.get("recording_end")),
            file_size=int(size)
            if isinstance(size, int | float) and not isinstance(size, bool)
            else None,
            play_url=_str(data, "play_url"),
            download_url=_str(data, "download_url"),
            status=_str(data, "status"),
            raw=data,
        )


@dataclass(frozen=True)
class ZoomRecording:
    """The cloud recording of one meeting instance (``uuid``) with its files."""

    uuid: str
    meeting_id: int
    topic: str
    host_id: str | None
    start_time: datetime | None
    duration: int | None
    total_size: int | None
    share_url: str | None
    files: tuple[ZoomRecordingFile, ...]
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> ZoomRecording:
        files = data.get("recording_files")
        return cls(
            uuid=str(data.get("uuid", "")),
            meeting_id=_int(data, "id") or 0,
            topic=str(data.get("topic", "")),
            host_id=_str(data, "host_id"),
            start_time=parse_time(data.get("start_time")),
            duration=_int(data, "duration"),
            total_size=_int(data, "total_size"),
            share_url=_str(data, "share_url"),
            files=tuple(
                ZoomRecordingFile.from_api(f) for f in files or () if isinstance(f, Mapping)
            ),
            raw=data,
        )


@dataclass(frozen=True)
class ZoomParticipant:
    """One attendance record of a past meeting instance (a person who rejoined has several)."""

    id: str | None
    name: str
    user_email: str | None
    join_time: datetime | None
    leave_time: datetime | None
    duration: int  # seconds
    status: str | None
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> ZoomParticipant:
        return cls(
            id=_str(data, "id"),
            name=str(data.get("name", "")),
            user_email=_str(data, "user_email"),
            join_time=parse_time(data.get("join_time")),
            leave_time=parse_time(data.get("leave_time")),
            duration=_int(data, "duration") or 0,
            status=_str(data, "status"),
            raw=data,
        )


@dataclass(frozen=True)
class ZoomPastInstance:
    """One held instance of a meeting: its UUID (for reports and recordings) and start."""

    uuid: str
    start_time: datetime | None

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> ZoomPastInstance:
        return cls(uuid=str(data.get("uuid", "")), start_time=parse_time(data.get("start_time")))


@dataclass(frozen=True)
class ZoomTrackingField:
    """A tracking field defined on the account; meetings set values for it by ``field``."""

    id: str
    field: str
    required: bool
    visible: bool
    recommended_values: tuple[str, ...]

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> ZoomTrackingField:
        values = data.get("recommended_values")
        return cls(
            id=str(data.get("id", "")),
            field=str(data.get("field", "")),
            required=bool(data.get("required", False)),
            visible=bool(data.get("visible", True)),
            recommended_values=tuple(str(v) for v in values) if isinstance(values, list) else (),
        )
