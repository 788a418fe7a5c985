"""A small LMS for the calendar tests: a REST calendar service and the plugin that calls it.

The service keeps each course's events in memory and behaves as the LMS calendar APIs
the real plugins talk to do (Canvas ``/api/v1/calendar_events``, Moodle's calendar web
services, Brightspace ``/calendar/event/``, Blackboard ``/calendars/items``): events are
created with ``POST``, changed with ``PUT``, removed with ``DELETE`` and listed by time
range; it takes no idempotency key, so the plugin finds its own events by the marker it
writes as the description's last line, as the real plugins do. It refuses what those APIs
refuse: a request without the bearer token (401), a wrong method (405), an event without
a title or with an end before its start (400), an unknown event (404).

:class:`Faults` makes it fail the way LMSs fail: ``503``, ``429`` with ``Retry-After``,
time-outs, slow answers, an answer lost after the event was made, and a worker killed
right after the LMS made an event.

The ``memlms`` plugin implements the LMS hooks with ``api.http`` and the
:mod:`ltipro.lmsapi` errors, like an installed plugin, and is registered in the harness
for each test.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ltipro.context import CourseIdentifiers, LaunchContext, LaunchMessage
from ltipro.extension import CalendarEvent, LmsCalendarEvent, LmsDetails, SettingSpec
from ltipro.hookspecs import hookimpl
from ltipro.lmsapi import (
    LmsApi,
    LmsNotAuthorized,
    raise_for_lms_status,
    transport_error,
)
from ltipro.lti.claims import standard_course_identifiers, standard_launch_context

NAME = "memlms"
HOST = "calendar.memlms.test"
API_URL = f"https://{HOST}"
TOKEN = "memlms-app-token"


class WorkerKilled(BaseException):
    """Stands for the worker process dying (SIGKILL): nothing after it runs."""


@dataclass
class Faults:
    """What the next requests meet, in order: ``"503"``, ``"429"``, ``"timeout"``,
    ``"lost"`` (done, answer lost), ``"kill"`` (done, then the worker dies)."""

    queue: list[str] = field(default_factory=list)
    retry_after: int = 7
    delay: float = 0.0  # every answer takes this long (a slow LMS)
    only: str | None = None  # the faults meet only requests of this method

    def next(self, method: str) -> str | None:
        if self.queue and (self.only is None or self.only == method):
            return self.queue.pop(0)
        return None


class CalendarService:
    """The LMS's calendar: events by course, the requests received, and its faults."""

    def __init__(self) -> None:
        self.events: dict[str, dict[str, dict[str, Any]]] = {}
        self.requests: list[tuple[str, str]] = []
        self.faults = Faults()
        self._ids = itertools.count(1001)
        self.app = Starlette(
            routes=[
                Route("/courses/{course}/events", self.list_or_create, methods=["GET", "POST"]),
                Route(
                    "/courses/{course}/events/{event_id}",
                    self.change_or_delete,
                    methods=["PUT", "DELETE"],
                ),
            ]
        )

    # -- what tests look at ---------------------------------------------------------------

    def course_events(self, course: str) -> list[dict[str, Any]]:
        return sorted(self.events.get(course, {}).values(), key=lambda e: (e["start"], e["id"]))

    def markers(self, course: str) -> list[str]:
        return sorted(marker_of(e["description"]) or "" for e in self.course_events(course))

    def add_raw(self, course: str, **event: Any) -> str:
        """An event put into the calendar behind the tool's back (drift, for reconcile)."""
        event_id = str(next(self._ids))
        self.events.setdefault(course, {})[event_id] = {"id": event_id, **event}
        return event_id

    # -- the API ------------------------------------------------------------------------------

    def _authorised(self, request: Request) -> bool:
        return request.headers.get("authorization") == f"Bearer {TOKEN}"

    async def list_or_create(self, request: Request) -> Response:
        if not self._authorised(request):
            return JSONResponse({"errors": [{"message": "Invalid access token."}]}, 401)
        course = request.path_params["course"]
        calendar = self.events.setdefault(course, {})
        if request.method == "GET":
            found = list(calendar.values())
            start, end = request.query_params.get("start"), request.query_params.get("end")
            if start and end:
                found = [e for e in found if start <= e["start"] < end]
            return JSONResponse(sorted(found, key=lambda e: e["id"]))
        try:
            body = await request.json()
        except json.JSONDecodeError:
            return JSONResponse({"error": "the body is not JSON"}, 400)
        problem = _invalid(body)
        if problem:
            return JSONResponse({"error": problem}, 400)
        event_id = str(next(self._ids))
        calendar[event_id] = {"id": event_id, **_fields(body)}
        return JSONResponse(calendar[event_id], 201)

    async def change_or_delete(self, request: Request) -> Response:
        if not self._authorised(request):
            return JSONResponse({"errors": [{"message": "Invalid access token."}]}, 401)
        calendar = self.events.setdefault(request.path_params["course"], {})
        event_id = request.path_params["event_id"]
        if event_id not in calendar:
            return JSONResponse({"error": "not found"}, 404)
        if request.method == "DELETE":
            del calendar[event_id]
            return Response(status_code=204)
        body = await request.json()
        problem = _invalid(body)
        if problem:
            return JSONResponse({"error": problem}, 400)
        calendar[event_id] = {"id": event_id, **_fields(body)}
        return JSONResponse(calendar[event_id])


def _invalid(body: Any) -> str | None:
    if not isinstance(body, Mapping):
        return "an event is a JSON object"
    for name in ("title", "start", "end", "description"):
        if not isinstance(body.get(name), str):
            return f"{name} is required"
    if not body["title"].strip():
        return "title is required"
    if body["end"] < body["start"]:
        return "the event ends before it starts"
    return None


def _fields(body: Mapping[str, Any]) -> dict[str, Any]:
    keep = ("title", "start", "end", "description", "timezone", "join_url", "audience")
    return {k: body.get(k) for k in keep}


class FaultyTransport(httpx.ASGITransport):
    """The service's transport, meeting the faults the service has queued."""

    def __init__(self, service: CalendarService) -> None:
        super().__init__(app=service.app)
        self.service = service

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        faults = self.service.faults
        self.service.requests.append((request.method, request.url.path))
        if faults.delay:
            await asyncio.sleep(faults.delay)
        fault = faults.next(request.method)
        if fault == "503":
            return httpx.Response(503, text="Service Unavailable", request=request)
        if fault == "429":
            headers = {"Retry-After": str(faults.retry_after)}
            return httpx.Response(429, headers=headers, text="Too Many Requests", request=request)
        if fault == "timeout":
            raise httpx.ReadTimeout("timed out", request=request)
        response = await super().handle_async_request(request)
        if fault == "lost":
            raise httpx.RemoteProtocolError("connection closed before the answer", request=request)
        if fault == "kill":
            raise WorkerKilled()
        return response


def install(transport: Any) -> CalendarService:
    """Serve a new calendar service on the harness's outbound transport."""
    service = CalendarService()
    transport.apps[HOST] = FaultyTransport(service)
    return service


# -- the plugin ------------------------------------------------------------------------------


def marker_of(description: str | None) -> str | None:
    """The tool's marker: the description's last line, ``[ltipro:...]``."""
    lines = (description or "").strip().splitlines()
    if lines and lines[-1].startswith("[ltipro:") and lines[-1].endswith("]"):
        return lines[-1][1:-1]
    return None


def _course_key(course: CourseIdentifiers) -> str:
    return course.lms_course_id or course.context_id


async def _request(api: LmsApi, method: str, path: str, **kwargs: Any) -> httpx.Response:
    token = await api.tokens.get("app")
    if token is None:
        raise LmsNotAuthorized("memlms: no API token is stored for this credential")
    url = await api.check_url(f"{api.settings['api_url']}{path}")
    try:
        return await api.http.request(
            method, url, headers={"Authorization": f"Bearer {token.access_token}"}, **kwargs
        )
    except httpx.HTTPError as exc:
        raise transport_error(exc, "memlms") from exc


def _body(event: CalendarEvent) -> dict[str, Any]:
    text = "\n".join(p for p in (event.description, event.recurrence or "", event.join_url) if p)
    return {
        "title": event.title,
        "start": event.start.astimezone(UTC).isoformat(),
        "end": event.end.astimezone(UTC).isoformat(),
        "timezone": event.timezone,
        "join_url": event.join_url,
        "audience": [a.key for a in event.audience],
        "description": f"{text}\n[{event.marker}]",
    }


class MemoryLmsPlugin:
    """The ``memlms`` plugin: launches read as standard LTI, calendar through the service."""

    @hookimpl
    def lms_details(self) -> LmsDetails:
        return LmsDetails(name=NAME, title="Memory LMS", product_family_codes=(NAME,))

    @hookimpl
    def launch_context(self, message: LaunchMessage) -> LaunchContext:
        return standard_launch_context(message, lms=NAME)

    @hookimpl
    def course_identifiers(self, message: LaunchMessage) -> CourseIdentifiers | None:
        # The LMS's own course id arrives as a custom parameter, as Canvas's does.
        course = standard_course_identifiers(message)
        if course is None:
            return None
        return replace(course, lms_course_id=message.custom.get("course_id") or None)

    @hookimpl
    def plugin_settings(self) -> list[SettingSpec]:
        return [SettingSpec(NAME, "api_url", "Calendar API URL", scope="platform", default=API_URL)]

    @hookimpl
    async def calendar_create_event(
        self, course: CourseIdentifiers, event: CalendarEvent, api: LmsApi
    ) -> str | None:
        if course.lms_course_id is None:
            return None  # as Canvas without custom_canvas_course_id: no calendar to write to
        path = f"/courses/{_course_key(course)}/events"
        # No idempotency key: look for an event carrying the marker at the same time first.
        start = event.start.astimezone(UTC)
        window = {"start": start.isoformat(), "end": (start + timedelta(minutes=1)).isoformat()}
        found = await _request(api, "GET", path, params=window)
        raise_for_lms_status(found, "memlms")
        for existing in found.json():
            if marker_of(existing["description"]) == event.marker:
                return str(existing["id"])
        made = await _request(api, "POST", path, json=_body(event))
        raise_for_lms_status(made, "memlms")
        return str(made.json()["id"])

    @hookimpl
    async def calendar_update_event(
        self, course: CourseIdentifiers, event_id: str, event: CalendarEvent, api: LmsApi
    ) -> str:
        path = f"/courses/{_course_key(course)}/events/{event_id}"
        response = await _request(api, "PUT", path, json=_body(event))
        raise_for_lms_status(response, "memlms")
        return event_id

    @hookimpl
    async def calendar_delete_event(
        self, course: CourseIdentifiers, event_id: str, api: LmsApi
    ) -> bool:
        path = f"/courses/{_course_key(course)}/events/{event_id}"
        response = await _request(api, "DELETE", path)
        if response.status_code == 404:
            return True
        raise_for_lms_status(response, "memlms")
        return True

    @hookimpl
    async def calendar_list_events(
        self, course: CourseIdentifiers, start: datetime, end: datetime, api: LmsApi
    ) -> list[LmsCalendarEvent]:
        path = f"/courses/{_course_key(course)}/events"
        params = {
            "start": start.astimezone(UTC).isoformat(),
            "end": end.astimezone(UTC).isoformat(),
        }
        response = await _request(api, "GET", path, params=params)
        raise_for_lms_status(response, "memlms")
        return [
            LmsCalendarEvent(
                id=str(e["id"]),
                title=e["title"],
                start=datetime.fromisoformat(e["start"]),
                end=datetime.fromisoformat(e["end"]),
                marker=marker_of(e["description"]),
            )
            for e in response.json()
        ]


class NoCalendarPlugin:
    """An LMS plugin without calendar hooks (``plainlms``)."""

    @hookimpl
    def lms_details(self) -> LmsDetails:
        return LmsDetails(name="plainlms", title="Plain LMS")

    @hookimpl
    def launch_context(self, message: LaunchMessage) -> LaunchContext:
        return standard_launch_context(message, lms="plainlms")
