"""Canvas calendar sync: a meeting occurrence as a Canvas calendar event.

Canvas's Calendar Events API
(https://developerdocs.instructure.com/services/canvas/resources/calendar_events):
``POST /api/v1/calendar_events`` with ``calendar_event[context_code]=course_<id>``,
``[title]``, ``[description]`` (HTML), ``[start_at]``, ``[end_at]``, ``[location_name]``,
``[time_zone_edited]``; ``PUT`` and ``DELETE /api/v1/calendar_events/:id``; and
``GET /api/v1/calendar_events?context_codes[]=...&type=event&start_date&end_date``.

How a meeting maps onto Canvas:

- **Whole course**: one event in the course calendar (``course_<id>``).
- **Sections**: one course event with section-level times,
  ``calendar_event[child_event_data][N][context_code]=course_section_<id>``: Canvas shows
  it only to those sections, and it stays one event with one id. Going back to the
  whole course sends ``calendar_event[remove_child_events]`` (what Canvas's own calendar
  sends; spec/apis/v1/calendar_events_api_spec.rb, "should remove all child events").
- **Groups**: Canvas has no child events for groups, so the meeting gets one event in
  each group's calendar (``group_<id>``), plus the course event when sections are chosen
  too. The id handed to the core then names every part, ``<course event id>`` first and
  ``g<group id>:<event id>`` for each group, comma-separated (``"g12:901,g13:902"``);
  update and delete work on every part, and ``calendar_list_events`` joins the parts
  back into the same id.

Every event carries the tool's marker as the last line of its description
(``[ltipro:<meeting uid>:<occurrence>]``); a create first looks for the marker in the
calendars it would write to, in a window around the occurrence, so a retried job never
leaves a second event. Times are sent in UTC (``2026-03-02T15:00:00Z``), with the
meeting's time zone as ``time_zone_edited``.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from ltipro.context import CourseIdentifiers
from ltipro.extension import CalendarEvent, LmsCalendarEvent
from ltipro.hookspecs import hookimpl
from ltipro.lmsapi import LmsApi, LmsNotFound, LmsRequestRefused, parse_lms_time, read_marker
from ltipro_canvas.api import CanvasClient

EVENTS_PATH = "/api/v1/calendar_events"
# How far around an occurrence a create looks for its marker: an edit that moved the
# occurrence by up to a day still finds the event a retried job made.
SEARCH_WINDOW = timedelta(days=1)
# Canvas takes at most 10 context codes per listing.
CONTEXTS_PER_LISTING = 10
# The core keeps event ids in a 255-character column.
MAX_EVENT_ID = 255
MAX_TITLE = 255
COURSE_PART = ""


# -- the event's text --------------------------------------------------------------------


def canvas_time(moment: datetime) -> str:
    """An aware datetime as Canvas takes it: ISO 8601 in UTC, ``2026-03-02T15:00:00Z``."""
    if moment.tzinfo is None:
        raise LmsRequestRefused("a calendar event's times must carry a time zone")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def describe(event: CalendarEvent) -> str:
    """The event's HTML description, the marker as its last line."""
    lines: list[str] = []
    if event.description:
        lines.append("<br>".join(html.escape(line) for line in event.description.splitlines()))
    if event.recurrence:
        lines.append(html.escape(event.recurrence))
    if event.join_url:
        url = html.escape(event.join_url, quote=True)
        lines.append(f'<a href="{url}">Join the meeting</a>')
    lines.append(f"[{html.escape(event.marker)}]")
    return "".join(f"<p>{line}</p>" for line in lines)


def _fields(event: CalendarEvent, sections: Sequence[str]) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "title": event.title[:MAX_TITLE],
        "description": describe(event),
        "start_at": canvas_time(event.start),
        "end_at": canvas_time(event.end),
        "location_name": "Online meeting",
    }
    if event.timezone:
        fields["time_zone_edited"] = event.timezone
    if sections:
        start, end = fields["start_at"], fields["end_at"]
        fields["child_event_data"] = {
            str(n): {"start_at": start, "end_at": end, "context_code": f"course_section_{s}"}
            for n, s in enumerate(sections)
        }
    return fields


# -- where an event goes, and its id -------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """One Canvas calendar a meeting's event goes to: the course's or a group's."""

    part: str  # COURSE_PART or the group id
    context_code: str
    sections: tuple[str, ...] = ()


def targets(client: CanvasClient, event: CalendarEvent) -> list[Target]:
    """The calendars of the event's audience, course first, groups by id."""
    sections = tuple(a.id for a in event.audience if a.kind == "section")
    groups = sorted({a.id for a in event.audience if a.kind == "group"}, key=_id_order)
    out: list[Target] = []
    if sections or not groups:
        out.append(Target(COURSE_PART, client.course_code, sections))
    out.extend(Target(g, f"group_{g}") for g in groups)
    return out


def _id_order(value: str) -> tuple[int, str]:
    return (len(value), value)


def check_fits(wanted: Sequence[Target]) -> None:
    """Refuse, before anything is made, an audience whose event id could not be kept."""
    format_event_id({t.part: "9" * 15 for t in wanted})


def parse_event_id(event_id: str) -> dict[str, str]:
    """``"901"`` or ``"901,g12:902"`` as ``{part: canvas event id}``."""
    parts: dict[str, str] = {}
    for piece in str(event_id).split(","):
        piece = piece.strip()
        group, _, canvas_id = piece.rpartition(":")
        if group and (not group.startswith("g") or len(group) == 1):
            raise LmsRequestRefused(f"{event_id!r} is not an event id of the Canvas plugin")
        key = group[1:] if group else COURSE_PART
        if not canvas_id.isdigit() or key in parts:
            raise LmsRequestRefused(f"{event_id!r} is not an event id of the Canvas plugin")
        parts[key] = canvas_id
    return parts


def format_event_id(parts: Mapping[str, str]) -> str:
    """The id the core keeps for an event made of ``parts`` (course part first)."""
    pieces = [parts[COURSE_PART]] if COURSE_PART in parts else []
    pieces += [f"g{g}:{parts[g]}" for g in sorted(parts, key=_id_order) if g != COURSE_PART]
    text = ",".join(pieces)
    if len(text) > MAX_EVENT_ID:
        raise LmsRequestRefused(
            f"the meeting is for too many Canvas groups ({len(parts)}) to keep track of its "
            "calendar events; schedule it for fewer groups or for sections"
        )
    return text


# -- calls ---------------------------------------------------------------------------------


async def _listing(
    client: CanvasClient, context_codes: Iterable[str], start: datetime, end: datetime
) -> list[dict[str, Any]]:
    codes = list(dict.fromkeys(context_codes))
    found: list[dict[str, Any]] = []
    for n in range(0, len(codes), CONTEXTS_PER_LISTING):
        params: list[tuple[str, Any]] = [
            ("context_codes", codes[n : n + CONTEXTS_PER_LISTING]),
            ("type", "event"),
            ("start_date", canvas_time(start)),
            ("end_date", canvas_time(end)),
        ]
        page = await client.get_all(EVENTS_PATH, params)
        found.extend(e for e in page if isinstance(e, dict))
    return found


def _place(item: Mapping[str, Any]) -> tuple[str, str] | None:
    """``(part, canvas id)`` of a listed event; a section's child event counts as its parent."""
    parent = item.get("parent_event_id")
    event_id = parent if parent is not None else item.get("id")
    if event_id is None:
        return None
    code = item.get("effective_context_code") if parent is not None else None
    code = code or item.get("context_code") or ""
    if isinstance(code, str) and code.startswith("group_"):
        return code.removeprefix("group_"), str(event_id)
    if isinstance(code, str) and code.startswith(("course_", "course_section_")):
        return COURSE_PART, str(event_id)
    return None


def _by_marker(items: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, list[str]]]:
    """Listed events as ``{marker: {part: [canvas ids, lowest first]}}``."""
    out: dict[str, dict[str, list[str]]] = {}
    for item in items:
        marker = read_marker(item.get("description"))
        place = _place(item) if marker else None
        if marker is None or place is None:
            continue
        ids = out.setdefault(marker, {}).setdefault(place[0], [])
        if place[1] not in ids:
            ids.append(place[1])
    for parts in out.values():
        for ids in parts.values():
            ids.sort(key=_id_order)
    return out


async def _existing(
    client: CanvasClient, event: CalendarEvent, wanted: Sequence[Target]
) -> dict[str, str]:
    items = await _listing(
        client,
        (t.context_code for t in wanted),
        min(event.start, event.end) - SEARCH_WINDOW,
        max(event.start, event.end) + SEARCH_WINDOW,
    )
    parts = _by_marker(items).get(event.marker, {})
    return {part: ids[0] for part, ids in parts.items()}


async def _create(client: CanvasClient, event: CalendarEvent, target: Target) -> str:
    fields = {"context_code": target.context_code, **_fields(event, target.sections)}
    made = await client.post(EVENTS_PATH, {"calendar_event": fields})
    if not isinstance(made, dict) or made.get("id") is None:
        raise LmsRequestRefused("Canvas created a calendar event but did not say its id")
    return str(made["id"])


async def _update(client: CanvasClient, canvas_id: str, event: CalendarEvent, t: Target) -> bool:
    """Change one part; ``False`` when Canvas no longer has it."""
    fields = _fields(event, t.sections)
    if t.part == COURSE_PART and not t.sections:
        # An event that had section times goes back to the whole course.
        fields["remove_child_events"] = True
    try:
        await client.put(f"{EVENTS_PATH}/{canvas_id}", {"calendar_event": fields})
    except LmsNotFound:
        return False
    return True


async def _delete(client: CanvasClient, canvas_id: str) -> None:
    try:
        await client.delete(f"{EVENTS_PATH}/{canvas_id}")
    except LmsNotFound:
        pass  # already gone


@hookimpl
async def calendar_create_event(
    course: CourseIdentifiers, event: CalendarEvent, settings: Mapping[str, Any], api: LmsApi
) -> str | None:
    """The Canvas event(s) of one occurrence: found by marker, or created."""
    client = CanvasClient(api, course)
    wanted = targets(client, event)
    check_fits(wanted)
    existing = await _existing(client, event, wanted)
    parts: dict[str, str] = {}
    for target in wanted:
        parts[target.part] = existing.get(target.part) or await _create(client, event, target)
    return format_event_id(parts)


@hookimpl
async def calendar_update_event(
    course: CourseIdentifiers,
    event_id: str,
    event: CalendarEvent,
    settings: Mapping[str, Any],
    api: LmsApi,
) -> str | None:
    """Bring the event(s) in line with the occurrence; :class:`LmsNotFound` when all are gone."""
    client = CanvasClient(api, course)
    current = parse_event_id(event_id)
    wanted = targets(client, event)
    check_fits(wanted)
    kept = [t for t in wanted if t.part in current]
    parts: dict[str, str] = {}
    for target in kept:
        if await _update(client, current[target.part], event, target):
            parts[target.part] = current[target.part]
    if kept and not parts:
        raise LmsNotFound(f"Canvas no longer has the calendar event {event_id}")
    missing = [t for t in wanted if t.part not in parts]
    if missing:
        existing = await _existing(client, event, missing)
        for target in missing:
            found = existing.get(target.part)
            parts[target.part] = found or await _create(client, event, target)
    for part, canvas_id in current.items():
        if part not in parts:
            await _delete(client, canvas_id)
    return format_event_id(parts)


@hookimpl
async def calendar_delete_event(
    course: CourseIdentifiers, event_id: str, settings: Mapping[str, Any], api: LmsApi
) -> bool | None:
    """Delete every part of the event; parts already gone count as deleted."""
    client = CanvasClient(api, course)
    for canvas_id in parse_event_id(event_id).values():
        await _delete(client, canvas_id)
    return True


async def _course_groups(client: CanvasClient) -> list[str]:
    groups = await client.get_all(f"/api/v1/courses/{client.course_id}/groups")
    return [str(g["id"]) for g in groups if isinstance(g, dict) and g.get("id") is not None]


@hookimpl
async def calendar_list_events(
    course: CourseIdentifiers,
    start: datetime,
    end: datetime,
    settings: Mapping[str, Any],
    api: LmsApi,
) -> list[LmsCalendarEvent] | None:
    """The course's (and its groups') events between ``start`` and ``end``.

    Events the tool made are joined per marker into the ids ``calendar_create_event``
    returns; a second event with the same marker in the same calendar is listed on its
    own, so reconciliation sees it as the duplicate it is. Events without a marker are
    listed one by one.
    """
    client = CanvasClient(api, course)
    codes = [client.course_code] + [f"group_{g}" for g in await _course_groups(client)]
    items = await _listing(client, codes, start, end)
    # Lowest id first: the event a create would find is the one kept, later ones are extra.
    items.sort(key=lambda item: _id_order(str(item.get("id"))))
    out: list[LmsCalendarEvent] = []
    joined: dict[str, dict[str, str]] = {}
    details: dict[str, Mapping[str, Any]] = {}
    seen: set[str] = set()
    for item in items:
        # A section's copy counts as its parent (Canvas may list either, or both).
        place = _place(item)
        if place is None:
            continue
        marker = read_marker(item.get("description"))
        if marker is None:
            if place[1] not in seen:
                seen.add(place[1])
                out.append(_listed(item, place[1], None))
            continue
        parts = joined.setdefault(marker, {})
        if place[0] in parts:
            if place[1] != parts[place[0]]:
                out.append(_listed(item, _part_id(place), marker))
            continue
        parts[place[0]] = place[1]
        details.setdefault(marker, item)
    for marker, parts in joined.items():
        out.append(_listed(details[marker], format_event_id(parts), marker))
    return out


def _part_id(place: tuple[str, str]) -> str:
    part, canvas_id = place
    return canvas_id if part == COURSE_PART else f"g{part}:{canvas_id}"


def _listed(item: Mapping[str, Any], event_id: str, marker: str | None) -> LmsCalendarEvent:
    title = item.get("title")
    return LmsCalendarEvent(
        id=event_id,
        title=title if isinstance(title, str) else "",
        start=parse_lms_time(item.get("start_at")),
        end=parse_lms_time(item.get("end_at")),
        marker=marker,
    )
