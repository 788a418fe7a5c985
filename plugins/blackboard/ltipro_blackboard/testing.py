"""A stateful test double of Blackboard Learn's REST API: the OAuth token and calendar items.

Route an ``httpx.AsyncClient`` to it (``httpx.ASGITransport(app=double)``, or
:class:`ltipro.testing.transport.RoutingTransport` under the site's host)::

    learn = LearnDouble()
    learn.add_course("_122_1", uuid="6c19281a08504db5a447b511f00c0c7b")
    key, secret = learn.add_app()

What it follows:

* Basic authentication (https://docs.anthology.com/docs/blackboard/rest-apis/getting-started/basic-authentication,
  blackboard/blackboard.github.io ``rest-apis/learn/getting-started/basic-authentication.md``):
  ``POST /learn/api/public/v1/oauth2/token`` with ``grant_type=client_credentials`` in an
  ``application/x-www-form-urlencoded`` body and the key and secret as HTTP Basic; the
  answer ``{"access_token", "token_type": "bearer", "expires_in": 3600}``; one token per
  application and site, so asking again before it expires returns the same token with a
  new expiry. API calls take ``Authorization: Bearer``.
* Calendar items (https://docs.anthology.com/docs/blackboard/rest-apis/hands-on/calendar-apis
  and the Learn REST reference, CalendarApi): ``GET/POST /learn/api/public/v1/calendars/items``,
  ``GET/PATCH/DELETE .../items/{calendarItemType}/{calendarItemId}``; the list takes
  ``courseId``, ``type``, ``since``, ``until`` (ISO 8601; two weeks by default, at most 16
  weeks apart), ``offset``, ``limit`` and pages with ``paging.nextPage``; ``title`` at
  most 255 characters, ``location`` at most 1024; ``GradebookColumn`` items are read-only,
  ``Personal`` items need three-legged OAuth; ``course.calendar-entry.CREATE`` /
  ``MODIFY`` / ``VIEW`` entitlements of the integration's user; the course calendar must
  be on and the course must not be an organization; ``DELETE`` answers ``204``; times come
  back in UTC with milliseconds and ``Z``.
* Courses: ``GET /learn/api/public/v3/courses/{courseId}`` with the primary key or the
  ``uuid:``, ``courseId:`` and ``externalId:`` forms, and ``fields``.
* Rate limits (``rest-apis/learn/admin/groups-quotas-rates.md``): ``X-Rate-Limit-Limit``,
  ``-Remaining`` and ``-Reset`` on every answer.

Assumed where the documents show no example: errors are ``{"status", "message"}``
(``{"error", "error_description"}`` at the token endpoint, as OAuth 2 has it), a bad key
or secret is ``401 invalid_client``, an unknown field in a body is ``400``, an unknown or
mistyped item is ``404``, and ``limit`` defaults to 100.

On demand: :meth:`throttle_next` (429 with ``Retry-After``), :meth:`fail_next` (any
status, or a timeout), :meth:`revoke_tokens` (issued tokens stop working: 401).
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import secrets
import time
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit

import httpx

from ltipro.testing.asgi import read_request, send_response

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

LEARN_URL = "https://learn.example.edu"
TOKEN_PATH = "/learn/api/public/v1/oauth2/token"
ITEMS_PATH = "/learn/api/public/v1/calendars/items"
COURSES_PATH = "/learn/api/public/v3/courses/"
ITEM_TYPES = ("Course", "GradebookColumn", "Institution", "OfficeHours", "Personal")
ITEM_FIELDS = {"type", "calendarId", "title", "description", "location", "start", "end"}
ITEM_FIELDS |= {"disableResizing", "recurrence", "modified", "dynamicCalendarItemProps"}
CALENDAR_ENTITLEMENTS = frozenset(
    {
        "course.calendar-entry.CREATE",
        "course.calendar-entry.MODIFY",
        "course.calendar-entry.DELETE",
        "course.calendar-entry.VIEW",
    }
)
MAX_SPAN = timedelta(weeks=16)
DEFAULT_SPAN = timedelta(weeks=2)


def learn_time(moment: datetime) -> str:
    utc = moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def parse_learn_time(value: str) -> datetime:
    """ISO 8601 as Learn reads it; no zone means UTC."""
    text = value.strip().replace("Z", "+00:00").replace(" ", "+")
    moment = datetime.fromisoformat(text)
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


class ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class App:
    key: str
    secret: str
    entitlements: frozenset[str]
    user_id: str = "_7_1"


@dataclass
class Course:
    id: str
    uuid: str
    course_id: str
    external_id: str
    name: str
    organization: bool = False
    calendar_enabled: bool = True


@dataclass
class Item:
    id: str
    type: str
    calendarId: str
    calendarName: str
    title: str
    description: str | None
    location: str | None
    start: datetime
    end: datetime
    modified: datetime
    createdByUserId: str
    color: str = "#670033"
    disableResizing: bool = False

    def json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": self.id,
            "type": self.type,
            "calendarId": self.calendarId,
            "calendarName": self.calendarName,
            "title": self.title,
        }
        if self.description is not None:
            body["description"] = self.description
        if self.location is not None:
            body["location"] = self.location
        body.update(
            start=learn_time(self.start),
            end=learn_time(self.end),
            modified=learn_time(self.modified),
            color=self.color,
            disableResizing=self.disableResizing,
            createdByUserId=self.createdByUserId,
        )
        return body


@dataclass
class Fault:
    status: int = 503
    body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)
    path: str | None = None
    method: str | None = None
    times: int = 1
    timeout: bool = False


@dataclass(frozen=True)
class Recorded:
    """A request as the double saw it, and its answer."""

    method: str
    path: str
    query: Mapping[str, str]
    headers: Mapping[str, str]
    body: Any
    status: int
    answer: Any


class LearnDouble:
    """A Learn site's REST API (see the module docstring)."""

    def __init__(
        self,
        learn_url: str = LEARN_URL,
        *,
        clock: Callable[[], float] = time.time,
        token_lifetime: int = 3600,
        daily_limit: int = 10_000,
        latency: float = 0.0,
    ) -> None:
        self.host = (urlsplit(learn_url).hostname or "").lower()
        self.clock = clock
        self.token_lifetime = token_lifetime
        self.daily_limit = daily_limit
        self.latency = latency
        self.apps: dict[str, App] = {}
        self.tokens: dict[str, tuple[str, float]] = {}  # token -> (app key, expires at)
        self.courses: dict[str, Course] = {}
        self.items: dict[str, Item] = {}
        self.faults: list[Fault] = []
        self.requests: list[Recorded] = []
        self.token_requests = 0
        self.calls_today = 0
        self._ids = itertools.count(91_571)

    # -- set-up ------------------------------------------------------------------------

    def add_app(
        self,
        key: str | None = None,
        secret: str | None = None,
        *,
        entitlements: frozenset[str] = CALENDAR_ENTITLEMENTS,
    ) -> tuple[str, str]:
        """A REST application allowed on the site, whose Learn user has ``entitlements``."""
        app = App(
            key or "d128e50d-c91e-47d3-a97e-9d0c8a77fb5e",
            secret or secrets.token_urlsafe(24),
            frozenset(entitlements),
        )
        self.apps[app.key] = app
        return app.key, app.secret

    def add_course(
        self,
        course_id: str,
        *,
        uuid: str | None = None,
        name: str = "Course One",
        external_id: str | None = None,
        organization: bool = False,
        calendar_enabled: bool = True,
    ) -> Course:
        course = Course(
            course_id,
            uuid or secrets.token_hex(16),
            f"COURSE{course_id.strip('_').split('_')[0]}",
            external_id or f"EXT-{course_id}",
            name,
            organization,
            calendar_enabled,
        )
        self.courses[course.id] = course
        return course

    def add_item(
        self, course_id: str, title: str, start: datetime, end: datetime, description: str = ""
    ) -> Item:
        """A course item an instructor made in Learn itself."""
        course = self.courses[course_id]
        item = Item(
            f"_{next(self._ids)}_1",
            "Course",
            course.id,
            f"{course.course_id}: {course.name}",
            title,
            description,
            None,
            start.astimezone(UTC),
            end.astimezone(UTC),
            datetime.fromtimestamp(self.clock(), UTC),
            "_3_1",
        )
        self.items[item.id] = item
        return item

    def fail_next(
        self,
        status: int = 503,
        *,
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        path: str | None = None,
        method: str | None = None,
        times: int = 1,
        timeout: bool = False,
    ) -> None:
        """Answer the next matching request(s) (``path`` prefix, ``method``) with this."""
        payload = (
            body
            if body is not None
            else json.dumps({"status": status, "message": "Service Unavailable"}).encode()
        )
        self.faults.append(
            Fault(status, payload, dict(headers or {}), path, method, times, timeout)
        )

    def throttle_next(
        self, retry_after: str | None = "30", *, path: str | None = None, times: int = 1
    ) -> None:
        headers = {"Retry-After": retry_after} if retry_after is not None else {}
        self.fail_next(
            429,
            body=json.dumps({"status": 429, "message": "Too Many Requests"}).encode(),
            headers=headers,
            path=path,
            times=times,
        )

    def revoke_tokens(self) -> None:
        """Every issued token stops working (the integration was switched off and on)."""
        self.tokens.clear()

    def api_requests(self) -> list[Recorded]:
        return [r for r in self.requests if r.path != TOKEN_PATH]

    def course_items(self, course_id: str) -> list[Item]:
        return [i for i in self.items.values() if i.calendarId == course_id]

    # -- ASGI --------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = await read_request(scope, receive, send)
        if request is None:
            return
        headers, raw = request
        if self.latency:
            await asyncio.sleep(self.latency)
        method = scope["method"]
        raw_path = (scope.get("raw_path") or scope["path"].encode()).decode("latin-1")
        query = dict(parse_qsl(scope.get("query_string", b"").decode(), keep_blank_values=True))
        status, answer, extra = self._handle(method, raw_path, query, headers, raw)
        payload = answer if isinstance(answer, bytes) else json.dumps(answer).encode()
        if status == 204:
            payload = b""
        try:
            body: Any = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode("utf-8", "replace")
        self.requests.append(
            Recorded(method, unquote(raw_path), query, headers, body, status, answer)
        )
        if payload and "content-type" not in extra:
            extra = {**extra, "content-type": "application/json"}
        await send_response(send, status, payload, extra)

    def _handle(
        self,
        method: str,
        raw_path: str,
        query: Mapping[str, str],
        headers: Mapping[str, str],
        raw: bytes,
    ) -> tuple[int, Any, dict[str, str]]:
        if headers.get("host", "").split(":")[0].lower() != self.host:
            return 404, {"status": 404, "message": "Not Found"}, {}
        path = unquote(raw_path)
        fault = self._take_fault(method, path)
        if fault is not None:
            if fault.timeout:
                raise httpx.ReadTimeout("the Learn double timed out on purpose")
            return fault.status, fault.body, dict(fault.headers)
        if path == TOKEN_PATH:
            self.token_requests += 1
            return self._token(method, headers, raw)
        self.calls_today += 1
        limits = {
            "X-Rate-Limit-Limit": str(self.daily_limit),
            "X-Rate-Limit-Remaining": str(max(0, self.daily_limit - self.calls_today)),
            "X-Rate-Limit-Reset": str(int(self.clock()) + 86_400),
        }
        try:
            app = self._authorised(headers)
            status, answer = self._api(app, method, path, query, headers, raw)
        except ApiError as exc:
            status, answer = exc.status, {"status": exc.status, "message": exc.message}
        return status, answer, limits

    def _take_fault(self, method: str, path: str) -> Fault | None:
        for fault in self.faults:
            if (fault.path is None or path.startswith(fault.path)) and (
                fault.method is None or fault.method == method
            ):
                fault.times -= 1
                if fault.times <= 0:
                    self.faults.remove(fault)
                return fault
        return None

    # -- the token endpoint ------------------------------------------------------------

    def _token(
        self, method: str, headers: Mapping[str, str], raw: bytes
    ) -> tuple[int, Any, dict[str, str]]:
        no_store = {"Cache-Control": "no-store", "Pragma": "no-cache"}
        if method != "POST":
            return 405, {"status": 405, "message": "Method Not Allowed"}, {}
        if not headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
            return 400, _oauth("invalid_request", "form-encoded body expected"), no_store
        form = dict(parse_qsl(raw.decode(), keep_blank_values=True))
        if form.get("grant_type") != "client_credentials":
            return (
                400,
                _oauth("unsupported_grant_type", "grant_type must be client_credentials"),
                no_store,
            )
        key, secret = _basic(headers.get("authorization", ""))
        app = self.apps.get(key)
        if app is None or not secrets.compare_digest(app.secret, secret):
            return 401, _oauth("invalid_client", "Invalid client credentials"), no_store
        now = self.clock()
        token = next(
            (t for t, (k, until) in self.tokens.items() if k == app.key and until > now), None
        )
        token = token or secrets.token_urlsafe(24)
        self.tokens[token] = (app.key, now + self.token_lifetime)
        answer = {"access_token": token, "token_type": "bearer", "expires_in": self.token_lifetime}
        return 200, answer, no_store

    def _authorised(self, headers: Mapping[str, str]) -> App:
        auth = headers.get("authorization", "")
        token = auth[7:].strip() if auth.lower().startswith("bearer ") else ""
        issued = self.tokens.get(token)
        if issued is None or issued[1] <= self.clock():
            raise ApiError(401, "Bearer token is invalid")
        return self.apps[issued[0]]

    # -- the API -----------------------------------------------------------------------

    def _api(
        self,
        app: App,
        method: str,
        path: str,
        query: Mapping[str, str],
        headers: Mapping[str, str],
        raw: bytes,
    ) -> tuple[int, Any]:
        if path.startswith(COURSES_PATH) and path.count("/") == 6:
            if method != "GET":
                raise ApiError(405, "Method Not Allowed")
            return 200, self._course(path[len(COURSES_PATH) :], query)
        if path == ITEMS_PATH:
            if method == "GET":
                return 200, self._list(app, query)
            if method == "POST":
                return 201, self._create(app, _json_body(headers, raw))
            raise ApiError(405, "Method Not Allowed")
        if path.startswith(ITEMS_PATH + "/") and path.count("/") == 8:
            if method not in ("GET", "PATCH", "DELETE"):
                raise ApiError(405, "Method Not Allowed")
            item_type, item_id = path[len(ITEMS_PATH) + 1 :].split("/")
            item = self.items.get(item_id)
            if item is None or item.type != item_type:
                raise ApiError(404, f"Calendar item {item_id} of type {item_type} not found")
            if method == "GET":
                self._require(app, "course.calendar-entry.VIEW", item)
                return 200, item.json()
            if method == "PATCH":
                return 200, self._update(app, item, _json_body(headers, raw))
            self._require(app, "course.calendar-entry.MODIFY", item)  # DELETE
            del self.items[item.id]
            return 204, b""
        raise ApiError(404, f"No API resource at {path}")

    def _course(self, ref: str, query: Mapping[str, str]) -> dict[str, Any]:
        kind, _, value = ref.partition(":") if ":" in ref else ("", "", ref)
        found = None
        for course in self.courses.values():
            if (kind, value) in (
                ("", course.id),
                ("uuid", course.uuid),
                ("courseId", course.course_id),
                ("externalId", course.external_id),
            ):
                found = course
        if found is None:
            raise ApiError(404, f"Course {ref} not found")
        full = {
            "id": found.id,
            "uuid": found.uuid,
            "externalId": found.external_id,
            "courseId": found.course_id,
            "name": found.name,
            "organization": found.organization,
        }
        wanted = [f for f in query.get("fields", "").split(",") if f]
        return {k: v for k, v in full.items() if not wanted or k in wanted}

    def _require(self, app: App, entitlement: str, item: Item | None = None) -> None:
        if entitlement not in app.entitlements:
            raise ApiError(403, f"User is not authorized: {entitlement} is required")
        if item is not None and item.type == "Course":
            course = self.courses.get(item.calendarId)
            if course is not None and not course.calendar_enabled:
                raise ApiError(403, "The course calendar is not enabled")

    def _list(self, app: App, query: Mapping[str, str]) -> dict[str, Any]:
        self._require(app, "course.calendar-entry.VIEW")
        try:
            since = parse_learn_time(query["since"]) if query.get("since") else None
            until = parse_learn_time(query["until"]) if query.get("until") else None
            offset = int(query.get("offset") or 0)
            limit = int(query.get("limit") or 100)
        except ValueError as exc:
            raise ApiError(400, f"Invalid query parameter: {exc}") from None
        if since is None and until is None:
            since = datetime.fromtimestamp(self.clock(), UTC)
        if since is None:
            assert until is not None
            since = until - DEFAULT_SPAN
        if until is None:
            until = since + DEFAULT_SPAN
        if until - since > MAX_SPAN:
            raise ApiError(400, "Maximum timespan between since and until is 16 weeks")
        if limit < 1 or offset < 0:
            raise ApiError(400, "Invalid paging parameters")
        kind = query.get("type")
        if kind is not None and kind not in ITEM_TYPES:
            raise ApiError(400, f"Invalid type {kind}")
        course_id = query.get("courseId")
        if course_id is not None and course_id not in self.courses:
            raise ApiError(404, f"Course {course_id} not found")
        found = sorted(
            (
                i
                for i in self.items.values()
                if (course_id is None or i.calendarId == course_id)
                and (kind is None or i.type == kind)
                and i.end >= since
                and i.start <= until
            ),
            key=lambda i: (i.start, i.id),
        )
        page = found[offset : offset + limit]
        answer: dict[str, Any] = {"results": [i.json() for i in page]}
        if offset + limit < len(found):
            following = {**query, "offset": str(offset + limit), "limit": str(limit)}
            answer["paging"] = {"nextPage": f"{ITEMS_PATH}?{urlencode(following)}"}
        return answer

    def _check_fields(self, body: Mapping[str, Any]) -> None:
        unknown = sorted(set(body) - ITEM_FIELDS)
        if unknown:
            raise ApiError(400, f"Unrecognized field(s): {', '.join(unknown)}")
        title = body.get("title")
        if "title" in body and (not isinstance(title, str) or not title.strip()):
            raise ApiError(400, "title is required")
        if isinstance(title, str) and len(title) > 255:
            raise ApiError(400, "Title length cannot exceed 255 characters")
        location = body.get("location")
        if isinstance(location, str) and len(location) > 1024:
            raise ApiError(400, "Location cannot exceed 1024 characters")

    def _times(
        self, body: Mapping[str, Any], item: Item | None = None
    ) -> tuple[datetime, datetime]:
        try:
            start = parse_learn_time(body["start"]) if "start" in body else None
            end = parse_learn_time(body["end"]) if "end" in body else None
        except (TypeError, ValueError, AttributeError):
            raise ApiError(400, "start and end must be ISO 8601 date-times") from None
        start = start or (item.start if item else None)
        end = end or (item.end if item else None)
        if start is None or end is None:
            raise ApiError(400, "start and end are required")
        if end < start:
            raise ApiError(400, "The end date must be after the start date")
        return start, end

    def _create(self, app: App, body: Mapping[str, Any]) -> dict[str, Any]:
        self._check_fields(body)
        for required in ("type", "calendarId", "title", "start", "end"):
            if required not in body:
                raise ApiError(400, f"{required} is required")
        kind = body["type"]
        if kind not in ITEM_TYPES:
            raise ApiError(400, f"Invalid type {kind}")
        if kind == "GradebookColumn":
            raise ApiError(400, "GradebookColumn calendar items are read-only")
        if kind == "Personal":
            raise ApiError(403, "Personal calendar items need three-legged OAuth")
        if kind != "Course":
            raise ApiError(400, f"Creating {kind} items is not emulated")
        self._require(app, "course.calendar-entry.CREATE")
        course = self.courses.get(str(body["calendarId"]))
        if course is None:
            raise ApiError(404, f"Course {body['calendarId']} not found")
        if course.organization:
            raise ApiError(400, "The specified courseId must not be for an organization")
        if not course.calendar_enabled:
            raise ApiError(403, "The course calendar is not enabled")
        start, end = self._times(body)
        item = Item(
            f"_{next(self._ids)}_1",
            "Course",
            course.id,
            f"{course.course_id}: {course.name}",
            body["title"],
            body.get("description"),
            body.get("location"),
            start,
            end,
            datetime.fromtimestamp(self.clock(), UTC),
            app.user_id,
        )
        self.items[item.id] = item
        return item.json()

    def _update(self, app: App, item: Item, body: Mapping[str, Any]) -> dict[str, Any]:
        self._require(app, "course.calendar-entry.MODIFY", item)
        self._check_fields(body)
        if "type" in body and body["type"] != item.type:
            raise ApiError(400, "The type of a calendar item cannot change")
        if "calendarId" in body and body["calendarId"] != item.calendarId:
            raise ApiError(400, "A calendar item cannot move to another calendar")
        item.start, item.end = self._times(body, item)
        for name in ("title", "description", "location"):
            if name in body:
                setattr(item, name, body[name])
        item.modified = datetime.fromtimestamp(self.clock(), UTC)
        return item.json()


def _oauth(error: str, description: str) -> dict[str, str]:
    return {"error": error, "error_description": description}


def _basic(header: str) -> tuple[str, str]:
    if not header.lower().startswith("basic "):
        return "", ""
    try:
        key, _, secret = base64.b64decode(header[6:].strip()).decode().partition(":")
    except (ValueError, UnicodeDecodeError):
        return "", ""
    return key, secret


def _json_body(headers: Mapping[str, str], raw: bytes) -> Mapping[str, Any]:
    if not headers.get("content-type", "").startswith("application/json"):
        raise ApiError(415, "Content-Type must be application/json")
    try:
        body = json.loads(raw)
    except ValueError:
        raise ApiError(400, "The body is not valid JSON") from None
    if not isinstance(body, dict):
        raise ApiError(400, "The body must be a JSON object")
    return body


__all__ = ["CALENDAR_ENTITLEMENTS", "LEARN_URL", "Course", "Item", "LearnDouble", "Recorded"]
