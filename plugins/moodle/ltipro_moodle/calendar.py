"""Calendar sync for Moodle: a meeting occurrence as a course event in the course's calendar.

Through three web services that every Moodle since 2.5 has:

- ``core_calendar_get_calendar_events`` (the course's events in a time window) to find
  an event by the tool's marker before creating one, and for reconciliation;
- ``core_calendar_create_calendar_events`` with ``eventtype=course``;
- ``core_calendar_delete_calendar_events`` (``repeat=0``: only that event).

**Updates are a delete and a create**, and the hook returns the new event's id. Moodle
has no web service that edits an event's fields: ``core_calendar_update_event_start_day``
(3.4+) only moves an event to another day, and ``core_calendar_submit_create_update_form``
(3.4+) replays the calendar's web form (a URL-encoded form string whose fields follow the
form class of each Moodle version, with draft-file editor fields), which is brittle and
absent from older sites. The delete comes first because the replacement carries the same
marker: created first, it would be found again by the marker. Every other event carrying
the marker is removed as well, so a retried update still leaves exactly one event. An
event already gone is simply created again (the core would otherwise do the same after
an ``LmsNotFound``).

Times are sent as Unix timestamps (``timestart``) and a duration in seconds
(``timeduration``): instants, so the meeting's time zone needs no translation; Moodle
shows them in each viewer's own zone. The description is HTML (``format=1``) ending in
a paragraph ``[ltipro:...]``, the marker, which Moodle keeps through its text formatting.
A meeting for chosen sections or groups still becomes a course event: the plugin does not
offer Moodle groups as audiences.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from html import escape
from typing import Any

from ltipro.context import CourseIdentifiers
from ltipro.extension import CalendarEvent, LmsCalendarEvent
from ltipro.hookspecs import hookimpl
from ltipro.lmsapi import LmsApi, LmsRequestRefused, read_marker
from ltipro_moodle.webservice import MoodleException, call, refused_warnings

CREATE = "core_calendar_create_calendar_events"
DELETE = "core_calendar_delete_calendar_events"
GET = "core_calendar_get_calendar_events"
FORMAT_HTML = 1
NAME_LIMIT = 255  # the event table's name column
# How far around an occurrence the marker is looked for.
SEARCH_MARGIN = timedelta(days=1)


def description_html(event: CalendarEvent) -> str:
    """The event's HTML description: text, join link, recurrence, then the marker."""
    parts = []
    if event.description:
        parts.append("<p>" + escape(event.description).replace("\n", "<br>") + "</p>")
    if event.join_url:
        url = escape(event.join_url, quote=True)
        parts.append(f'<p><a href="{url}">Join the meeting</a></p>')
    if event.recurrence:
        parts.append(f"<p>{escape(event.recurrence)}</p>")
    parts.append(f"<p>[{escape(event.marker)}]</p>")
    return "\n".join(parts)


def course_id(course: CourseIdentifiers) -> int:
    """Moodle's numeric course id (the LTI context id in Moodle launches)."""
    value = course.lms_course_id or ""
    if not value.isdigit():
        raise LmsRequestRefused(
            f"the course {course.context_id!r} has no Moodle course id (got {value!r}): "
            "only meetings of a Moodle course can be put in its calendar"
        )
    return int(value)


def timestamp(moment: datetime) -> int:
    if moment.tzinfo is None:
        raise LmsRequestRefused(f"the meeting time {moment.isoformat()} has no time zone")
    return int(moment.timestamp())


def event_params(course: int, event: CalendarEvent) -> dict[str, Any]:
    """One entry of ``events`` for ``core_calendar_create_calendar_events``."""
    start = timestamp(event.start)
    return {
        "name": event.title[:NAME_LIMIT],
        "description": description_html(event),
        "format": FORMAT_HTML,
        "courseid": course,
        "eventtype": "course",
        "timestart": start,
        "timeduration": max(0, timestamp(event.end) - start),
        "visible": 1,
    }


async def course_events(
    course: int, start: datetime, end: datetime, settings: Mapping[str, Any], api: LmsApi
) -> list[Mapping[str, Any]]:
    """The course's own events overlapping ``start``..``end`` (hidden ones included)."""
    body = await call(
        GET,
        {
            "events": {"courseids": [course]},
            "options": {
                "userevents": False,
                "siteevents": False,
                "timestart": timestamp(start),
                "timeend": timestamp(end),
                "ignorehidden": False,
            },
        },
        settings,
        api,
    )
    refused_warnings(body, GET)
    events = body.get("events") if isinstance(body, Mapping) else None
    return [
        e
        for e in events or ()
        if isinstance(e, Mapping)
        and str(e.get("courseid")) == str(course)
        and e.get("eventtype") == "course"
    ]


async def events_with_marker(
    course: int, event: CalendarEvent, settings: Mapping[str, Any], api: LmsApi
) -> list[Mapping[str, Any]]:
    found = await course_events(
        course, event.start - SEARCH_MARGIN, event.end + SEARCH_MARGIN, settings, api
    )
    return [e for e in found if read_marker(e.get("description")) == event.marker]


async def create_new(
    course: int, event: CalendarEvent, settings: Mapping[str, Any], api: LmsApi
) -> str:
    body = await call(CREATE, {"events": [event_params(course, event)]}, settings, api)
    refused_warnings(body, CREATE)
    created = body.get("events") if isinstance(body, Mapping) else None
    if not created or "id" not in created[0]:
        raise LmsRequestRefused(f"Moodle answered {CREATE} without creating an event")
    return str(created[0]["id"])


async def delete(event_id: str, settings: Mapping[str, Any], api: LmsApi) -> bool:
    """Delete one event; ``False`` when Moodle has no such event."""
    if not event_id.isdigit():
        raise LmsRequestRefused(f"{event_id!r} is not a Moodle event id")
    try:
        await call(DELETE, {"events": [{"eventid": int(event_id), "repeat": False}]}, settings, api)
    except MoodleException as exc:
        # calendar_event::load() throws dml_missing_record_exception for an unknown id.
        if exc.errorcode == "invalidrecord":
            return False
        raise
    return True


@hookimpl
async def calendar_create_event(
    course: CourseIdentifiers, event: CalendarEvent, settings: Mapping[str, Any], api: LmsApi
) -> str:
    """The course event of an occurrence: the one carrying its marker, else a new one."""
    moodle_course = course_id(course)
    existing = await events_with_marker(moodle_course, event, settings, api)
    if existing:
        return str(existing[0]["id"])
    return await create_new(moodle_course, event, settings, api)


@hookimpl
async def calendar_update_event(
    course: CourseIdentifiers,
    event_id: str,
    event: CalendarEvent,
    settings: Mapping[str, Any],
    api: LmsApi,
) -> str:
    """Replace the event (delete, then create); returns the new event's id."""
    moodle_course = course_id(course)
    await delete(event_id, settings, api)
    for stale in await events_with_marker(moodle_course, event, settings, api):
        await delete(str(stale["id"]), settings, api)
    return await create_new(moodle_course, event, settings, api)


@hookimpl
async def calendar_delete_event(
    course: CourseIdentifiers, event_id: str, settings: Mapping[str, Any], api: LmsApi
) -> bool:
    """Delete the event; one Moodle no longer has counts as deleted."""
    await delete(event_id, settings, api)
    return True


@hookimpl
async def calendar_list_events(
    course: CourseIdentifiers,
    start: datetime,
    end: datetime,
    settings: Mapping[str, Any],
    api: LmsApi,
) -> list[LmsCalendarEvent]:
    """The course's events between ``start`` and ``end``, with the tool's markers read back."""
    found = await course_events(course_id(course), start, end, settings, api)
    return [to_lms_event(e) for e in found]


def to_lms_event(event: Mapping[str, Any]) -> LmsCalendarEvent:
    begin = datetime.fromtimestamp(int(event.get("timestart") or 0), UTC)
    duration = int(event.get("timeduration") or 0)
    return LmsCalendarEvent(
        id=str(event["id"]),
        title=str(event.get("name") or ""),
        start=begin,
        end=begin + timedelta(seconds=duration),
        marker=read_marker(event.get("description")),
    )


__all__ = [
    "calendar_create_event",
    "calendar_delete_event",
    "calendar_list_events",
    "calendar_update_event",
    "description_html",
    "read_marker",
]
