"""Calendar sync for Blackboard Learn: a meeting occurrence as an item of the course calendar.

Learn's calendar items API (since 3400.9.0; application access without a user since
3900.78.0), https://docs.anthology.com/docs/blackboard/rest-apis/hands-on/calendar-apis:

- ``GET /learn/api/public/v1/calendars/items?courseId=&type=Course&since=&until=`` to
  find an item by the tool's marker before creating one, and for reconciliation (at most
  16 weeks per request, so longer windows are asked for in slices; ``paging.nextPage`` is
  followed);
- ``POST /learn/api/public/v1/calendars/items`` with ``type: Course`` and ``calendarId``
  set to the course;
- ``PATCH`` and ``DELETE /learn/api/public/v1/calendars/items/Course/{id}``.

**Which course id.** ``calendarId`` and ``courseId`` take Learn's primary key
(``_122_1``), which the plugin reads from launches into ``lms_course_id`` (the
``course_pk=@X@course.pk_string@X@`` custom parameter, the course's service URLs, or the
LTI 1.1 ``context_id``). When a launch gave none, the LTI 1.3 ``context_id``, which is
the course's UUID in Learn, is turned into the primary key once per call with
``GET /learn/api/public/v3/courses/uuid:{uuid}?fields=id``.

Times are sent as UTC instants (``2026-12-01T15:00:00.000Z``), as Learn returns them;
each viewer sees them in their own zone. The description is plain text whose last line is
``[ltipro:...]``, the marker. Each occurrence of a recurring meeting is an item of its own
(the API's ``recurrence`` is not used, so an occurrence can move alone). A meeting for
chosen sections or groups still becomes a course item: Learn's course calendar has no
per-group items.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, quote, urlsplit

import httpx

from ltipro.context import CourseIdentifiers
from ltipro.extension import CalendarEvent, LmsCalendarEvent
from ltipro.hookspecs import hookimpl
from ltipro.lmsapi import LmsApi, LmsNotFound, LmsRequestRefused, parse_lms_time, read_marker
from ltipro_blackboard.rest import check, request

ITEMS = "/learn/api/public/v1/calendars/items"
COURSES = "/learn/api/public/v3/courses"
TYPE = "Course"
TITLE_LIMIT = 255
# Learn answers at most 16 weeks per request; stay a day inside it.
MAX_WINDOW = timedelta(weeks=16) - timedelta(days=1)
SEARCH_MARGIN = timedelta(days=1)

PRIMARY_KEY = re.compile(r"^_\d+_\d+$")
LEARN_UUID = re.compile(r"^[0-9a-fA-F]{32}$")


def description_text(event: CalendarEvent) -> str:
    """Plain text: the description, the join link, the series, and the marker last."""
    lines = [event.description.strip()] if event.description.strip() else []
    if event.join_url:
        lines.append(f"Join: {event.join_url}")
    if event.recurrence:
        lines.append(event.recurrence)
    lines.append(f"[{event.marker}]")
    return "\n".join(lines)


def learn_time(moment: datetime) -> str:
    """An instant as Learn writes it: ISO 8601 in UTC with milliseconds and ``Z``."""
    if moment.tzinfo is None:
        raise LmsRequestRefused(f"the meeting time {moment.isoformat()} has no time zone")
    utc = moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def item_body(course: str, event: CalendarEvent) -> dict[str, Any]:
    """The calendar item of an occurrence, for POST and PATCH."""
    return {
        "type": TYPE,
        "calendarId": course,
        "title": event.title[:TITLE_LIMIT],
        "description": description_text(event),
        "start": learn_time(event.start),
        "end": learn_time(max(event.end, event.start)),
    }


def item_path(item_id: str) -> str:
    return f"{ITEMS}/{TYPE}/{quote(item_id, safe='')}"


async def course_key(course: CourseIdentifiers, settings: Mapping[str, Any], api: LmsApi) -> str:
    """Learn's primary key of the course (``_122_1``), looked up by UUID when needed."""
    if course.lms_course_id and PRIMARY_KEY.match(course.lms_course_id):
        return course.lms_course_id
    if LEARN_UUID.match(course.context_id):
        response = await request(
            "GET", f"{COURSES}/uuid:{course.context_id}", settings, api, params={"fields": "id"}
        )
        if response.status_code != 404:
            check(response)
            found = response.json().get("id")
            if isinstance(found, str) and PRIMARY_KEY.match(found):
                return found
    raise LmsRequestRefused(
        f"Learn's course key for the course {course.context_id!r} is unknown: add the custom "
        "parameter course_pk=@X@course.pk_string@X@ to the tool's placement in Learn"
    )


def missing_course(response: httpx.Response, course: str) -> None:
    """A 404 on the course's calendar: the course is gone, which retrying cannot fix."""
    if response.status_code == 404:
        raise LmsRequestRefused(
            f"Learn has no course {course} (404 to {response.request.method} "
            f"{response.request.url.path}): the course was deleted or its key is wrong"
        )


async def course_items(
    course: str, start: datetime, end: datetime, settings: Mapping[str, Any], api: LmsApi
) -> list[Mapping[str, Any]]:
    """The course's ``Course`` items between ``start`` and ``end``, in 16-week slices."""
    items: list[Mapping[str, Any]] = []
    seen: set[str] = set()
    since = start
    while since < end:
        until = min(end, since + MAX_WINDOW)
        path, params = (
            ITEMS,
            {
                "courseId": course,
                "type": TYPE,
                "since": learn_time(since),
                "until": learn_time(until),
            },
        )
        while True:
            response = await request("GET", path, settings, api, params=params)
            missing_course(response, course)
            check(response)
            body = response.json()
            for item in body.get("results") or ():
                if isinstance(item, Mapping) and str(item.get("id")) not in seen:
                    seen.add(str(item.get("id")))
                    items.append(item)
            next_page = (body.get("paging") or {}).get("nextPage")
            if not next_page:
                break
            # nextPage is the path and query to ask next, relative to the site.
            parts = urlsplit(next_page)
            path, params = parts.path, dict(parse_qsl(parts.query, keep_blank_values=True))
        since = until
    return [i for i in items if i.get("type") == TYPE and i.get("calendarId") == course]


async def items_with_marker(
    course: str, event: CalendarEvent, settings: Mapping[str, Any], api: LmsApi
) -> list[Mapping[str, Any]]:
    found = await course_items(
        course, event.start - SEARCH_MARGIN, event.end + SEARCH_MARGIN, settings, api
    )
    return [i for i in found if read_marker(i.get("description")) == event.marker]


@hookimpl
async def calendar_create_event(
    course: CourseIdentifiers, event: CalendarEvent, settings: Mapping[str, Any], api: LmsApi
) -> str:
    """The course item of an occurrence: the one carrying its marker, else a new one."""
    key = await course_key(course, settings, api)
    existing = await items_with_marker(key, event, settings, api)
    if existing:
        return str(existing[0]["id"])
    response = await request("POST", ITEMS, settings, api, json=item_body(key, event))
    missing_course(response, key)
    check(response)
    return str(response.json()["id"])


@hookimpl
async def calendar_update_event(
    course: CourseIdentifiers,
    event_id: str,
    event: CalendarEvent,
    settings: Mapping[str, Any],
    api: LmsApi,
) -> str:
    """Change the item in place; an item gone from Learn raises :class:`LmsNotFound`."""
    key = await course_key(course, settings, api)
    response = await request(
        "PATCH", item_path(event_id), settings, api, json=item_body(key, event)
    )
    if response.status_code == 404:
        raise LmsNotFound(f"Learn has no calendar item {event_id} any more")
    check(response)
    return event_id


@hookimpl
async def calendar_delete_event(
    course: CourseIdentifiers, event_id: str, settings: Mapping[str, Any], api: LmsApi
) -> bool:
    """Delete the item; one Learn no longer has counts as deleted."""
    response = await request("DELETE", item_path(event_id), settings, api)
    if response.status_code != 404:
        check(response)
    return True


@hookimpl
async def calendar_list_events(
    course: CourseIdentifiers,
    start: datetime,
    end: datetime,
    settings: Mapping[str, Any],
    api: LmsApi,
) -> list[LmsCalendarEvent]:
    """The course calendar's items between ``start`` and ``end``, markers read back."""
    key = await course_key(course, settings, api)
    return [
        LmsCalendarEvent(
            id=str(item["id"]),
            title=str(item.get("title") or ""),
            start=parse_lms_time(item.get("start")),
            end=parse_lms_time(item.get("end")),
            marker=read_marker(item.get("description")),
        )
        for item in await course_items(key, start, end, settings, api)
    ]
