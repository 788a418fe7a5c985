"""Meetings in Brightspace course calendars, through the LE calendar API.

Routes (https://docs.valence.desire2learn.com/res/calendar.html), all under
``/d2l/api/le/(version)/(orgUnitId)/``:

- ``POST calendar/event/`` creates an event from a ``Calendar.EventData`` block and
  answers the ``Calendar.EventDataInfo`` of the new event (its ``CalendarEventId``);
- ``PUT calendar/event/(eventId)`` replaces an event's properties;
- ``DELETE calendar/event/(eventId)`` removes it;
- ``GET calendar/events/?startDateTime=&endDateTime=`` lists the course's events in a
  window: a bare array on older versions, an ``ObjectListPage`` (``Objects`` and a
  ``Next`` URL) on newer ones. Brightspace answers an empty list when a bound is
  missing, so both are always sent.

Times are ``UTCDateTime`` values, ``yyyy-MM-ddTHH:mm:ss.fffZ``: Brightspace shows each
person the event in their own time zone, so no zone travels with the event. Collections
end with ``/`` and single items do not; Brightspace answers 404 to the other form.

The org unit is the course's ``lms_course_id``: the plugin reads it from the custom
parameter ``org_unit_id={OrgUnitId}`` where an admin added one, else from the LTI context
id, which Brightspace sets to the course offering's org unit id, else from the org unit
in the launch's service URLs. Usually nothing needs adding in Brightspace for it.

Each event carries the meeting's marker as the last line of its description
(``[ltipro:...]``), which Brightspace keeps as it was written, so a retried create finds
the event it already made and reconciliation recognises the tool's events.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode, urlsplit

import httpx

from ltipro.context import CourseIdentifiers
from ltipro.extension import CalendarEvent, LmsCalendarEvent
from ltipro.hookspecs import hookimpl
from ltipro.lmsapi import (
    LmsApi,
    LmsNotAuthorized,
    LmsNotConfigured,
    LmsNotFound,
    LmsUnavailable,
    parse_lms_time,
    raise_for_lms_status,
    read_marker,
    transport_error,
)
from ltipro_d2l.oauth import access_token
from ltipro_d2l.settings import D2lConfig, config_from

LMS = "Brightspace"
#: How far around an occurrence's start a create looks for an event it already made.
MARKER_WINDOW = timedelta(days=1)
#: A guard against a ``Next`` link that never ends.
MAX_PAGES = 50

# REPEAT_T None (1): the core sends each occurrence of a recurring meeting on its own.
REPEAT_NONE = 1
# VISIBILITY_T Visible (1).
VISIBLE = 1
_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def utc_datetime(value: datetime) -> str:
    """A ``UTCDateTime`` as Brightspace wants it: milliseconds and ``Z``."""
    moment = value.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def org_unit(course: CourseIdentifiers) -> str:
    """The course's Brightspace org unit id, the one every calendar route names."""
    value = (course.lms_course_id or "").strip()
    if not value.isdigit():
        raise LmsNotConfigured(
            f"the course {course.context_id!r} has no Brightspace org unit id: launch the tool "
            "from the course once (Brightspace sends it as the LTI context id), or add the "
            "custom parameter org_unit_id={OrgUnitId} to the tool's deployment"
        )
    return value


def event_group(event: CalendarEvent) -> int | None:
    """The Brightspace group an event is for, when it is for exactly one group.

    A Brightspace event has one ``GroupId``; a meeting for sections, or for several
    groups, goes to the whole course calendar, with its audience named in the text.
    """
    groups = [a for a in event.audience if a.kind == "group" and a.id.isdigit()]
    if len(event.audience) == 1 and len(groups) == 1:
        return int(groups[0].id)
    return None


def event_description(event: CalendarEvent) -> str:
    lines = []
    if event.description:
        lines.append(event.description.strip())
    if event.recurrence:
        lines.append(f"Part of a recurring meeting: {event.recurrence}")
    if event.audience and event_group(event) is None:
        lines.append("For: " + ", ".join(a.name for a in event.audience))
    lines.append(f"Join: {event.join_url}")
    lines.append(f"[{event.marker}]")
    return "\n\n".join(lines)


def event_data(event: CalendarEvent) -> dict[str, Any]:
    """The ``Calendar.EventData`` block of one occurrence of a meeting."""
    end = utc_datetime(event.end)
    return {
        "Title": event.title,
        "Description": event_description(event),
        "StartDateTime": utc_datetime(event.start),
        "EndDateTime": end,
        "StartDay": None,
        "EndDay": None,
        "IsAllDayEvent": False,
        "GroupId": event_group(event),
        "RecurrenceInfo": {
            "RepeatType": REPEAT_NONE,
            "RepeatEvery": 1,
            "RepeatOnInfo": dict.fromkeys(_DAYS, False),
            "RepeatUntilDate": end,
        },
        "LocationId": None,
        "LocationName": "",
        "AssociatedEntity": None,
        "HasVisibilityRestrictions": False,
        "VisibilityRestrictions": {
            "Type": VISIBLE,
            "Range": None,
            "HiddenRangeUnitType": None,
            "StartDate": None,
            "EndDate": None,
        },
    }


# -- one authorised call -----------------------------------------------------------------------


async def _call(
    api: LmsApi,
    config: D2lConfig,
    method: str,
    url: str,
    *,
    body: Mapping[str, Any] | None = None,
) -> httpx.Response:
    """One API call with the tool's token; a refused token is refreshed once and retried."""
    await api.check_url(url)
    token = await access_token(api, config)
    for attempt in range(2):
        headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = "application/json"
        try:
            response = await api.http.request(
                method,
                url,
                headers=headers,
                content=json.dumps(body).encode() if body is not None else None,
            )
        except httpx.HTTPError as exc:
            raise transport_error(exc, LMS) from exc
        if response.status_code != 401 or attempt:
            return response
        # Brightspace refused a token our clock still thought valid (revoked, or clocks
        # apart): refresh it once.
        token = await access_token(api, config, stale=token)
    return response  # pragma: no cover - the loop always returns


def _check(response: httpx.Response, what: str) -> None:
    if response.status_code == 403:
        raise LmsNotAuthorized(
            f"{LMS} answered 403 to {what}: the account the tool was connected with may not "
            "manage this course's calendar (give its role the calendar permissions in the "
            "course, or connect with another account)"
        )
    raise_for_lms_status(response, LMS)


def _json(response: httpx.Response, what: str) -> Any:
    try:
        return response.json()
    except ValueError:
        raise LmsUnavailable(f"{LMS} answered {what} with something that is not JSON") from None


def _config(course: CourseIdentifiers, settings: Mapping[str, Any], api: LmsApi) -> D2lConfig:
    return config_from(settings, issuer=api.issuer, domain=course.domain or None)


def _event_id(info: Any) -> str:
    if isinstance(info, dict) and isinstance(info.get("CalendarEventId"), int):
        return str(info["CalendarEventId"])
    raise LmsUnavailable(f"{LMS} answered an event without a CalendarEventId")


# -- listing ----------------------------------------------------------------------------------


async def list_events(
    api: LmsApi, config: D2lConfig, unit: str, start: datetime, end: datetime
) -> list[dict[str, Any]]:
    """Every ``Calendar.EventDataInfo`` of the org unit in ``[start, end)``, all pages."""
    query = urlencode({"startDateTime": utc_datetime(start), "endDateTime": utc_datetime(end)})
    url: str | None = f"{config.le_base}/{unit}/calendar/events/?{query}"
    base = urlsplit(config.base_url)
    found: list[dict[str, Any]] = []
    for _ in range(MAX_PAGES):
        if url is None:
            break
        response = await _call(api, config, "GET", url)
        _check(response, "listing calendar events")
        page = _json(response, "listing calendar events")
        if isinstance(page, list):
            objects, url = page, None
        elif isinstance(page, dict) and isinstance(page.get("Objects"), list):
            objects = page["Objects"]
            following = page.get("Next")
            url = following if isinstance(following, str) and following else None
            if url is not None and urlsplit(url).netloc != base.netloc:
                # A Next link elsewhere would carry the token to another host.
                raise LmsUnavailable(f"{LMS} answered a Next link on another host")
        else:
            raise LmsUnavailable(f"{LMS} answered the event list in an unknown shape")
        found.extend(e for e in objects if isinstance(e, dict))
    return found


def _as_lms_event(info: Mapping[str, Any]) -> LmsCalendarEvent | None:
    if not isinstance(info.get("CalendarEventId"), int):
        return None
    return LmsCalendarEvent(
        id=str(info["CalendarEventId"]),
        title=str(info.get("Title") or ""),
        start=parse_lms_time(info.get("StartDateTime")),
        end=parse_lms_time(info.get("EndDateTime")),
        marker=read_marker(info.get("Description")),
    )


# -- the hooks --------------------------------------------------------------------------------


@hookimpl
async def calendar_create_event(
    course: CourseIdentifiers, event: CalendarEvent, settings: Mapping[str, Any], api: LmsApi
) -> str:
    """Create the occurrence's event, unless an event with its marker exists already."""
    config = _config(course, settings, api)
    unit = org_unit(course)
    nearby = await list_events(
        api, config, unit, event.start - MARKER_WINDOW, event.start + MARKER_WINDOW
    )
    for info in nearby:
        if read_marker(info.get("Description")) == event.marker and isinstance(
            info.get("CalendarEventId"), int
        ):
            return str(info["CalendarEventId"])
    url = f"{config.le_base}/{unit}/calendar/event/"
    response = await _call(api, config, "POST", url, body=event_data(event))
    _check(response, "creating a calendar event")
    return _event_id(_json(response, "creating a calendar event"))


@hookimpl
async def calendar_update_event(
    course: CourseIdentifiers,
    event_id: str,
    event: CalendarEvent,
    settings: Mapping[str, Any],
    api: LmsApi,
) -> str:
    """Replace the event's properties (PUT); a deleted event raises ``LmsNotFound``."""
    config = _config(course, settings, api)
    unit = org_unit(course)
    if not event_id.isdigit():
        raise LmsNotFound(f"{event_id!r} is not a Brightspace calendar event id")
    url = f"{config.le_base}/{unit}/calendar/event/{event_id}"
    response = await _call(api, config, "PUT", url, body=event_data(event))
    _check(response, "updating a calendar event")
    return event_id


@hookimpl
async def calendar_delete_event(
    course: CourseIdentifiers, event_id: str, settings: Mapping[str, Any], api: LmsApi
) -> bool:
    """Delete the event; one already gone counts as deleted."""
    config = _config(course, settings, api)
    unit = org_unit(course)
    if not event_id.isdigit():
        return True  # never a Brightspace event id, so nothing there to delete
    url = f"{config.le_base}/{unit}/calendar/event/{event_id}"
    response = await _call(api, config, "DELETE", url)
    if response.status_code == 404:
        return True
    _check(response, "deleting a calendar event")
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
    config = _config(course, settings, api)
    infos = await list_events(api, config, org_unit(course), start, end)
    return [e for e in (_as_lms_event(info) for info in infos) if e is not None]
