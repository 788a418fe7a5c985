"""A stateful test double of Canvas's REST API and OAuth 2 endpoints, for tests and benchmarks.

Route an ``httpx.AsyncClient`` to it and the Canvas plugin cannot tell it from Canvas::

    canvas = CanvasDouble()
    canvas.add_course("3", sections=["31", "32"], groups=["41"], teachers=["7"])
    token = canvas.issue_token("7")
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=canvas))

(or register it with :class:`ltipro.testing.transport.RoutingTransport` for its host,
``canvas.test`` by default). It follows Canvas's public documentation:

- Calendar Events API
  (https://developerdocs.instructure.com/services/canvas/resources/calendar_events, and
  the ``@API`` comments of ``app/controllers/calendar_events_api_controller.rb`` in
  instructure/canvas-lms): ``POST /api/v1/calendar_events`` (``calendar_event[context_code]``
  required: without it, or with an unknown context, Canvas answers 404 like any missing
  record), ``GET``, ``PUT`` and ``DELETE /api/v1/calendar_events/:id``, and the listing
  ``GET /api/v1/calendar_events`` with ``context_codes[]``, ``type``, ``start_date``,
  ``end_date`` (an unparsable date is a 400 naming it), ``all_events`` and
  ``undated``; section times with ``child_event_data`` (sections of the course only) and
  ``remove_child_events``; group calendars (``group_<id>``). Deleted events answer 404.
- Pagination (https://developerdocs.instructure.com/services/canvas/basics/file.pagination):
  ``per_page`` defaults to 10 and is capped at 100; ``Link`` headers with ``current``,
  ``next``, ``first`` and ``last``.
- Throttling (https://developerdocs.instructure.com/services/canvas/basics/file.throttling):
  with :meth:`throttle_like_canvas`, a leaky bucket per access token. Each request costs
  its processing time (``X-Request-Cost``), a request in flight holds a pre-flight
  penalty, the bucket leaks at ``outflow`` units a second, and a request that would
  overflow it is refused with ``403`` and the body ``403 Forbidden (Rate Limit
  Exceeded)``. Every answer then carries ``X-Rate-Limit-Remaining``.
- OAuth 2 (https://developerdocs.instructure.com/services/canvas/oauth/oauth_endpoints):
  ``GET /login/oauth2/auth`` (the double plays the user: it approves as
  :attr:`signed_in_user`, or answers ``error=access_denied`` when :attr:`deny` is set) and
  ``POST /login/oauth2/token`` with ``authorization_code`` (the ``redirect_uri`` must be
  the one the code was issued for) and ``refresh_token`` (the answer has no new refresh
  token; tokens last ``expires_in`` 3600 seconds).
- Authentication (https://developerdocs.instructure.com/services/canvas/oauth): a missing
  token is ``401 user authorization required``; an unknown, revoked or expired one is
  ``401 Invalid access token.`` *with* ``WWW-Authenticate``; a valid token of a user who
  may not do the thing is ``401 user not authorized to perform that action`` *without*
  it, which is how a client tells the two apart.

Awkward answers on demand: :meth:`fail_next` (any status, or a network timeout),
:attr:`latency` (seconds per API request, for benchmarks), :meth:`expire_tokens`,
:meth:`revoke`. Behaviour no public document states exactly is marked "assumed".
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import secrets
import time
from collections.abc import Awaitable, Callable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, urlencode

import httpx

from ltipro.testing.asgi import read_request, send_response

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
Handler = Callable[["CanvasRequest"], Awaitable[tuple[int, Any, dict[str, str]]]]

HOST = "canvas.test"
CLIENT_ID = "10000000000042"
CLIENT_SECRET = "api-key-secret-42"
TOKEN_LIFETIME = 3600
NOT_FOUND = {"errors": [{"message": "The specified resource does not exist."}]}
UNAUTHENTICATED = {
    "status": "unauthenticated",
    "errors": [{"message": "user authorization required"}],
}
INVALID_TOKEN = {"errors": [{"message": "Invalid access token."}]}
UNAUTHORIZED = {
    "status": "unauthorized",
    "errors": [{"message": "user not authorized to perform that action"}],
}
RATE_LIMITED_BODY = b"403 Forbidden (Rate Limit Exceeded)"
DEFAULT_PER_PAGE = 10
MAX_PER_PAGE = 100

_ISO = re.compile(r"^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


# -- parameters as Rails reads them ------------------------------------------------------


def rails_params(pairs: Sequence[tuple[str, str]]) -> dict[str, Any]:
    """``a[b][c]=1&d[]=2`` as ``{"a": {"b": {"c": "1"}}, "d": ["2"]}`` (Rack's nesting)."""
    out: dict[str, Any] = {}
    for name, value in pairs:
        keys = re.findall(r"[^\[\]]+|\[\]", name.replace("][", "]["))
        if not keys:
            continue
        node: Any = out
        for n, key in enumerate(keys):
            last = n == len(keys) - 1
            nxt = keys[n + 1] if not last else None
            if key == "[]":
                if not isinstance(node, list):
                    break
                if last:
                    node.append(value)
                else:
                    node.append({})
                    node = node[-1]
                continue
            if not isinstance(node, dict):
                break
            if last:
                node[key] = value
            else:
                node = node.setdefault(key, [] if nxt == "[]" else {})
    return out


def parse_time(value: Any) -> datetime | None:
    """A Canvas DateTime parameter (ISO 8601); no offset is read as UTC (assumed: the
    user's Canvas time zone is UTC)."""
    if not isinstance(value, str) or not _ISO.match(value.strip()):
        raise ValueError(value)
    text = value.strip().replace("Z", "+00:00")
    moment = datetime.fromisoformat(text)
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC)


def iso(moment: datetime | None) -> str | None:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if moment else None


# -- state ----------------------------------------------------------------------------------


@dataclass
class Course:
    id: str
    name: str
    sections: dict[str, str] = field(default_factory=dict)
    groups: dict[str, str] = field(default_factory=dict)
    teachers: set[str] = field(default_factory=set)
    deleted: bool = False


@dataclass
class Token:
    user_id: str
    expires_at: float | None
    refresh_token: str | None
    revoked: bool = False


@dataclass
class Fault:
    """An answer given instead of the real one, ``times`` times, to matching requests."""

    status: int = 500
    body: bytes = b'{"errors":[{"message":"An error occurred."}]}'
    headers: Mapping[str, str] = field(default_factory=dict)
    method: str | None = None
    path: str | None = None  # a prefix of the path
    times: int = 1
    timeout: bool = False


@dataclass(frozen=True)
class RecordedRequest:
    """A request as the double saw it, with its answer's status."""

    method: str
    path: str
    query: tuple[tuple[str, str], ...]
    form: tuple[tuple[str, str], ...]
    params: Mapping[str, Any]
    token: str | None
    status: int
    started: float
    finished: float


@dataclass
class Bucket:
    """One access token's leaky bucket (lib/canvas/request_throttle.rb, simplified)."""

    count: float = 0.0
    touched: float = 0.0


@dataclass
class CanvasRequest:
    """What a handler gets: the parsed request and who made it."""

    method: str
    path: str
    query: list[tuple[str, str]]
    form: list[tuple[str, str]]
    params: dict[str, Any]
    user_id: str | None
    match: re.Match[str] | None = None


class CanvasDouble:
    """Canvas's calendar, course, OAuth and throttling behaviour as one ASGI app."""

    def __init__(
        self,
        *,
        host: str = HOST,
        client_id: str = CLIENT_ID,
        client_secret: str = CLIENT_SECRET,
        clock: Callable[[], float] = time.monotonic,
        latency: float = 0.0,
    ) -> None:
        self.host = host
        self.client_id = client_id
        self.client_secret = client_secret
        self.clock = clock
        self.latency = latency
        self.courses: dict[str, Course] = {}
        self.users: dict[str, str] = {}
        self.admins: set[str] = set()
        self.tokens: dict[str, Token] = {}
        self.refresh_tokens: dict[str, str] = {}
        self.codes: dict[str, tuple[str, str]] = {}
        self.events: dict[int, dict[str, Any]] = {}
        self.requests: list[RecordedRequest] = []
        self.faults: list[Fault] = []
        self.signed_in_user: str | None = None
        self.deny = False
        self.throttle: dict[str, float] | None = None
        self.buckets: dict[str, Bucket] = {}
        self.in_flight = 0
        self.max_in_flight = 0
        self._ids = itertools.count(1001)
        self._routes: list[tuple[str, re.Pattern[str], Handler]] = []
        self.route("GET", r"/api/v1/calendar_events", self._list_events)
        self.route("POST", r"/api/v1/calendar_events", self._create_event)
        self.route("GET", r"/api/v1/calendar_events/(?P<id>\d+)", self._show_event)
        self.route("PUT", r"/api/v1/calendar_events/(?P<id>\d+)", self._update_event)
        self.route("DELETE", r"/api/v1/calendar_events/(?P<id>\d+)", self._delete_event)
        self.route("GET", r"/api/v1/courses/(?P<id>\d+)/sections", self._list_sections)
        self.route("GET", r"/api/v1/courses/(?P<id>\d+)/groups", self._list_groups)

    # -- set-up --------------------------------------------------------------------------

    def route(self, method: str, pattern: str, handler: Handler) -> None:
        """Serve another API endpoint (another test's double builds on this one)."""
        self._routes.append((method, re.compile(pattern + r"\Z"), handler))

    def add_user(self, user_id: str, name: str | None = None, *, admin: bool = False) -> str:
        self.users[user_id] = name or f"User {user_id}"
        if admin:
            self.admins.add(user_id)
        return user_id

    def add_course(
        self,
        course_id: str,
        *,
        name: str | None = None,
        sections: Sequence[str] = (),
        groups: Sequence[str] = (),
        teachers: Sequence[str] = (),
    ) -> Course:
        course = Course(
            course_id,
            name or f"Course {course_id}",
            sections={s: f"Section {s}" for s in sections},
            groups={g: f"Group {g}" for g in groups},
            teachers=set(teachers),
        )
        for teacher in teachers:
            self.users.setdefault(teacher, f"User {teacher}")
        self.courses[course_id] = course
        return course

    def issue_token(
        self, user_id: str, *, expires_in: int | None = TOKEN_LIFETIME, refresh: bool = True
    ) -> tuple[str, str | None]:
        """A new access token (and refresh token) for a user, as the token endpoint makes."""
        self.users.setdefault(user_id, f"User {user_id}")
        access = secrets.token_urlsafe(24)
        refresh_token = secrets.token_urlsafe(24) if refresh else None
        expires = self.clock() + expires_in if expires_in is not None else None
        self.tokens[access] = Token(user_id, expires, refresh_token)
        if refresh_token is not None:
            self.refresh_tokens[refresh_token] = user_id
        return access, refresh_token

    def expire_tokens(self) -> None:
        """Every access token expires now (refresh tokens keep working)."""
        for token in self.tokens.values():
            token.expires_at = self.clock() - 1

    def revoke(self, user_id: str) -> None:
        """The user removes the tool from Canvas: every token and refresh token stops."""
        for token in self.tokens.values():
            if token.user_id == user_id:
                token.revoked = True
        for refresh, owner in list(self.refresh_tokens.items()):
            if owner == user_id:
                del self.refresh_tokens[refresh]

    def throttle_like_canvas(
        self,
        *,
        maximum: float = 700.0,
        outflow: float = 10.0,
        up_front_cost: float = 50.0,
        cost: float | None = None,
    ) -> None:
        """Throttle each token with Canvas's leaky bucket (``cost`` None: the latency)."""
        self.throttle = {
            "maximum": maximum,
            "outflow": outflow,
            "up_front": up_front_cost,
            "cost": -1.0 if cost is None else cost,
        }

    def fail_next(
        self,
        status: int = 500,
        *,
        times: int = 1,
        method: str | None = None,
        path: str | None = None,
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: bool = False,
    ) -> None:
        fault = Fault(status=status, method=method, path=path, times=times, timeout=timeout)
        if body is not None:
            fault.body = body
        if headers:
            fault.headers = dict(headers)
        self.faults.append(fault)

    # -- reading the state ---------------------------------------------------------------

    def events_in(self, context_code: str, *, deleted: bool = False) -> list[dict[str, Any]]:
        """The top-level events of a calendar (course or group), oldest id first."""
        return [
            e
            for _, e in sorted(self.events.items())
            if e["context_code"] == context_code
            and e["parent_event_id"] is None
            and (deleted or e["workflow_state"] == "active")
        ]

    def api_requests(self, method: str | None = None) -> list[RecordedRequest]:
        return [
            r
            for r in self.requests
            if r.path.startswith("/api/") and (method is None or r.method == method)
        ]

    # -- ASGI ----------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = await read_request(scope, receive, send)
        if request is None:
            return
        headers, body = request
        status, payload, extra = await self._handle(scope, headers, body)
        await send_response(send, status, payload, extra)

    async def _handle(
        self, scope: Scope, headers: Mapping[str, str], body: bytes
    ) -> tuple[int, bytes, dict[str, str]]:
        started = self.clock()
        method = scope["method"]
        path = scope["path"]
        query = parse_qsl(scope.get("query_string", b"").decode(), keep_blank_values=True)
        form: list[tuple[str, str]] = []
        params: dict[str, Any] = rails_params(query)
        content_type = headers.get("content-type", "")
        if body and content_type.startswith("application/json"):
            try:
                decoded = json.loads(body)
            except ValueError:
                return self._record(
                    method,
                    path,
                    query,
                    form,
                    {},
                    None,
                    started,
                    400,
                    {"errors": [{"message": "invalid JSON"}]},
                    {},
                )
            if isinstance(decoded, dict):
                params.update(decoded)
        elif body:
            form = parse_qsl(body.decode(), keep_blank_values=True)
            params.update(rails_params(form))
        auth = headers.get("authorization", "")
        token = auth[7:].strip() if auth.lower().startswith("bearer ") else None

        fault = self._fault(method, path)
        if fault is not None:
            if fault.timeout:
                raise httpx.ReadTimeout("the Canvas double timed out on purpose")
            status = fault.status
            self.requests.append(
                RecordedRequest(
                    method,
                    path,
                    tuple(query),
                    tuple(form),
                    params,
                    token,
                    status,
                    started,
                    self.clock(),
                )
            )
            return status, fault.body, {"content-type": "application/json", **fault.headers}

        if path == "/login/oauth2/token":
            status, payload, extra = self._token_endpoint(method, params)
            return self._record(
                method, path, query, form, params, None, started, status, payload, extra
            )
        if path == "/login/oauth2/auth":
            status, payload, extra = self._authorize(method, params)
            return self._record(
                method, path, query, form, params, None, started, status, payload, extra
            )
        if not path.startswith("/api/v1/"):
            return self._record(
                method, path, query, form, params, token, started, 404, NOT_FOUND, {}
            )

        # Authentication comes before throttling: Canvas throttles per token.
        if token is None:
            return self._record(
                method, path, query, form, params, None, started, 401, UNAUTHENTICATED, {}
            )
        known = self.tokens.get(token)
        if (
            known is None
            or known.revoked
            or (known.expires_at is not None and known.expires_at <= self.clock())
        ):
            return self._record(
                method,
                path,
                query,
                form,
                params,
                token,
                started,
                401,
                INVALID_TOKEN,
                {"www-authenticate": 'Bearer realm="canvas-lms"'},
            )

        bucket = self._bucket(token)
        throttle = self.throttle
        if throttle is not None and bucket.count + throttle["up_front"] > throttle["maximum"]:
            remaining = throttle["maximum"] - bucket.count
            self.requests.append(
                RecordedRequest(
                    method,
                    path,
                    tuple(query),
                    tuple(form),
                    params,
                    token,
                    403,
                    started,
                    self.clock(),
                )
            )
            return (
                403,
                RATE_LIMITED_BODY,
                {
                    "content-type": "text/plain",
                    "x-rate-limit-remaining": f"{remaining:.1f}",
                    "x-request-cost": "0",
                },
            )
        if throttle is not None:
            bucket.count += throttle["up_front"]
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.latency:
                await asyncio.sleep(self.latency)
            request = CanvasRequest(method, path, query, form, params, known.user_id)
            status, payload, extra = await self._dispatch(request)
        finally:
            self.in_flight -= 1
        extra = dict(extra)
        if throttle is not None:
            self._leak(bucket)
            cost = throttle["cost"] if throttle["cost"] >= 0 else self.latency + 0.01
            bucket.count = max(0.0, bucket.count - throttle["up_front"]) + cost
            extra["x-request-cost"] = f"{cost:.4f}"
            extra["x-rate-limit-remaining"] = f"{throttle['maximum'] - bucket.count:.1f}"
        return self._record(
            method, path, query, form, params, token, started, status, payload, extra
        )

    def _bucket(self, token: str) -> Bucket:
        bucket = self.buckets.setdefault(token, Bucket(touched=self.clock()))
        self._leak(bucket)
        return bucket

    def _leak(self, bucket: Bucket) -> None:
        now = self.clock()
        if self.throttle is not None:
            bucket.count = max(
                0.0, bucket.count - self.throttle["outflow"] * (now - bucket.touched)
            )
        bucket.touched = now

    def _record(
        self,
        method: str,
        path: str,
        query: Sequence[tuple[str, str]],
        form: Sequence[tuple[str, str]],
        params: Mapping[str, Any],
        token: str | None,
        started: float,
        status: int,
        payload: Any,
        extra: Mapping[str, str],
    ) -> tuple[int, bytes, dict[str, str]]:
        self.requests.append(
            RecordedRequest(
                method,
                path,
                tuple(query),
                tuple(form),
                params,
                token,
                status,
                started,
                self.clock(),
            )
        )
        headers = dict(extra)
        if isinstance(payload, bytes):
            return status, payload, headers
        headers.setdefault("content-type", "application/json; charset=utf-8")
        return status, json.dumps(payload).encode(), headers

    def _fault(self, method: str, path: str) -> Fault | None:
        for fault in self.faults:
            if fault.method not in (None, method):
                continue
            if fault.path is not None and not path.startswith(fault.path):
                continue
            fault.times -= 1
            if fault.times <= 0:
                self.faults.remove(fault)
            return fault
        return None

    async def _dispatch(self, request: CanvasRequest) -> tuple[int, Any, dict[str, str]]:
        for method, pattern, handler in self._routes:
            match = pattern.match(request.path)
            if match and method == request.method:
                request.match = match
                return await handler(request)
        # Rails answers an unrouted method or path like a missing record.
        return 404, NOT_FOUND, {}

    # -- OAuth -----------------------------------------------------------------------------

    def _authorize(self, method: str, params: Mapping[str, Any]) -> tuple[int, Any, dict[str, str]]:
        if method != "GET":
            return 404, NOT_FOUND, {}
        redirect_uri = params.get("redirect_uri")
        if params.get("client_id") != self.client_id or not isinstance(redirect_uri, str):
            return 400, {"error": "invalid_client", "error_description": "unknown client"}, {}
        if params.get("response_type") != "code":
            return 400, {"error": "unsupported_response_type"}, {}
        state = params.get("state")
        answer: dict[str, str] = {}
        if self.deny or self.signed_in_user is None:
            answer["error"] = "access_denied"
        else:
            code = secrets.token_urlsafe(16)
            self.codes[code] = (self.signed_in_user, redirect_uri)
            answer["code"] = code
        if isinstance(state, str):
            answer["state"] = state
        separator = "&" if "?" in redirect_uri else "?"
        return 302, b"", {"location": f"{redirect_uri}{separator}{urlencode(answer)}"}

    def _token_endpoint(
        self, method: str, params: Mapping[str, Any]
    ) -> tuple[int, Any, dict[str, str]]:
        if method != "POST":
            return 404, NOT_FOUND, {}
        if (
            params.get("client_id") != self.client_id
            or params.get("client_secret") != self.client_secret
        ):
            return 401, {"error": "invalid_client", "error_description": "unknown client"}, {}
        grant = params.get("grant_type")
        if grant == "authorization_code":
            issued = self.codes.pop(str(params.get("code")), None)
            if issued is None or issued[1] != params.get("redirect_uri"):
                return (
                    400,
                    {
                        "error": "invalid_grant",
                        "error_description": "authorization_code not found",
                    },
                    {},
                )
            user_id = issued[0]
            access, refresh = self.issue_token(user_id)
            return 200, self._token_body(user_id, access, refresh), {}
        if grant == "refresh_token":
            owner = self.refresh_tokens.get(str(params.get("refresh_token")))
            if owner is None:
                return (
                    400,
                    {
                        "error": "invalid_grant",
                        "error_description": "refresh_token not found",
                    },
                    {},
                )
            access = secrets.token_urlsafe(24)
            self.tokens[access] = Token(owner, self.clock() + TOKEN_LIFETIME, None)
            return 200, self._token_body(owner, access, None), {}
        return 400, {"error": "unsupported_grant_type"}, {}

    def _token_body(self, user_id: str, access: str, refresh: str | None) -> dict[str, Any]:
        body: dict[str, Any] = {
            "access_token": access,
            "token_type": "Bearer",
            "user": {
                "id": int(user_id) if user_id.isdigit() else user_id,
                "name": self.users.get(user_id, ""),
                "global_id": f"1000000000{user_id}",
            },
            "expires_in": TOKEN_LIFETIME,
        }
        if refresh is not None:
            body["refresh_token"] = refresh
        return body

    # -- contexts and permissions ------------------------------------------------------------

    def _context(self, code: Any) -> tuple[Course, str | None] | None:
        """``(course, group id or None)`` for a course or group context code."""
        if not isinstance(code, str):
            return None
        if code.startswith("course_") and not code.startswith("course_section_"):
            course = self.courses.get(code.removeprefix("course_"))
            return (course, None) if course and not course.deleted else None
        if code.startswith("group_"):
            group = code.removeprefix("group_")
            for course in self.courses.values():
                if group in course.groups and not course.deleted:
                    return course, group
        return None

    def _may_manage(self, user_id: str | None, course: Course) -> bool:
        return user_id in self.admins or user_id in course.teachers

    def _event_json(self, event: Mapping[str, Any]) -> dict[str, Any]:
        children = [
            self._event_json(self.events[c])
            for c in event["child_ids"]
            if self.events[c]["workflow_state"] == "active"
        ]
        body = {k: v for k, v in event.items() if k != "child_ids"}
        body["start_at"] = iso(event["start_at"])
        body["end_at"] = iso(event["end_at"])
        body["created_at"] = iso(event["created_at"])
        body["updated_at"] = iso(event["updated_at"])
        body["child_events_count"] = len(children)
        body["child_events"] = children
        body["hidden"] = bool(children)
        body["url"] = f"https://{self.host}/api/v1/calendar_events/{event['id']}"
        return body

    # -- calendar events ------------------------------------------------------------------

    def _event_fields(
        self, data: Mapping[str, Any], course: Course | None
    ) -> tuple[dict[str, Any], dict[str, Any] | None, Any]:
        """The changed fields, or ``(_, errors, _)``; and the child event data, if any."""
        fields: dict[str, Any] = {}
        errors: dict[str, Any] = {}
        for key in ("title", "description", "location_name", "location_address"):
            if key in data:
                value = data[key]
                if not isinstance(value, str):
                    errors[key] = [{"attribute": key, "type": "invalid", "message": "invalid"}]
                    continue
                if key == "title" and len(value) > 255:
                    errors[key] = [{"attribute": key, "type": "too_long", "message": "too_long"}]
                fields[key] = value
        for key in ("start_at", "end_at"):
            if key in data and data[key] not in ("", None):
                try:
                    fields[key] = parse_time(data[key])
                except ValueError:
                    errors[key] = [{"attribute": key, "type": "invalid", "message": "invalid"}]
        if "time_zone_edited" in data:
            fields["time_zone_edited"] = data["time_zone_edited"]
        children = data.get("child_event_data")
        if children is not None:
            if not isinstance(children, Mapping) or course is None:
                errors["child_event_data"] = [{"message": "Invalid child event context"}]
            else:
                for child in children.values():
                    code = child.get("context_code") if isinstance(child, Mapping) else None
                    section = (
                        code.removeprefix("course_section_") if isinstance(code, str) else None
                    )
                    if (
                        not isinstance(code, str)
                        or not code.startswith("course_section_")
                        or section not in course.sections
                    ):
                        errors["child_event_data"] = [{"message": "Invalid child event context"}]
                        break
                    try:
                        parse_time(child.get("start_at"))
                        parse_time(child.get("end_at"))
                    except ValueError:
                        errors["child_event_data"] = [
                            {"message": "Invalid child event start_at or end_at"}
                        ]
                        break
        return fields, (errors or None), children

    async def _create_event(self, request: CanvasRequest) -> tuple[int, Any, dict[str, str]]:
        data = request.params.get("calendar_event")
        if not isinstance(data, Mapping):
            return 404, NOT_FOUND, {}
        found = self._context(data.get("context_code"))
        if found is None:
            return 404, NOT_FOUND, {}
        course, group = found
        if not self._may_manage(request.user_id, course):
            return 401, UNAUTHORIZED, {}
        fields, errors, children = self._event_fields(data, course if group is None else None)
        start, end = fields.get("start_at"), fields.get("end_at")
        if errors is None and start and end and end < start:
            # Assumed: Canvas refuses an event that ends before it starts.
            errors = {"end_at": [{"attribute": "end_at", "type": "invalid", "message": "invalid"}]}
        if errors is not None:
            return 400, {"errors": errors}, {}
        event = self._new_event(str(data["context_code"]), course, group, fields)
        if children:
            self._set_children(event, children)
        return 201, self._event_json(event), {}

    def _new_event(
        self,
        context_code: str,
        course: Course,
        group: str | None,
        fields: Mapping[str, Any],
        parent: int | None = None,
    ) -> dict[str, Any]:
        now = datetime.now(UTC)
        event_id = next(self._ids)
        event: dict[str, Any] = {
            "id": event_id,
            "title": fields.get("title", ""),
            "description": fields.get("description"),
            "location_name": fields.get("location_name"),
            "location_address": fields.get("location_address"),
            "start_at": fields.get("start_at"),
            "end_at": fields.get("end_at") or fields.get("start_at"),
            "context_code": context_code,
            "effective_context_code": None,
            "context_name": course.groups[group] if group else course.name,
            "all_context_codes": context_code,
            "workflow_state": "active",
            "parent_event_id": parent,
            "all_day": False,
            "type": "event",
            "html_url": f"https://{self.host}/calendar?event_id={event_id}",
            "created_at": now,
            "updated_at": now,
            "child_ids": [],
        }
        self.events[event_id] = event
        return event

    def _set_children(self, event: dict[str, Any], children: Mapping[str, Any]) -> None:
        for old in event["child_ids"]:
            self.events[old]["workflow_state"] = "deleted"
        event["child_ids"] = []
        course = self.courses[event["context_code"].removeprefix("course_")]
        for child in children.values():
            section = child["context_code"].removeprefix("course_section_")
            made = self._new_event(
                child["context_code"],
                course,
                None,
                {
                    "title": event["title"],
                    "description": event["description"],
                    "location_name": event["location_name"],
                    "start_at": parse_time(child["start_at"]),
                    "end_at": parse_time(child["end_at"]),
                },
                parent=event["id"],
            )
            made["context_name"] = course.sections[section]
            made["effective_context_code"] = event["context_code"]
            event["child_ids"].append(made["id"])
        event["all_context_codes"] = ",".join(
            [event["context_code"]] + [self.events[c]["context_code"] for c in event["child_ids"]]
        )

    def _active(self, request: CanvasRequest) -> dict[str, Any] | None:
        assert request.match is not None
        event = self.events.get(int(request.match["id"]))
        if event is None or event["workflow_state"] != "active":
            return None  # assumed: a deleted event is gone for the API
        return event

    def _course_of(self, event: Mapping[str, Any]) -> Course:
        code = event["effective_context_code"] or event["context_code"]
        found = self._context(code)
        assert found is not None
        return found[0]

    async def _show_event(self, request: CanvasRequest) -> tuple[int, Any, dict[str, str]]:
        event = self._active(request)
        if event is None:
            return 404, NOT_FOUND, {}
        return 200, self._event_json(event), {}

    async def _update_event(self, request: CanvasRequest) -> tuple[int, Any, dict[str, str]]:
        event = self._active(request)
        if event is None:
            return 404, NOT_FOUND, {}
        course = self._course_of(event)
        if not self._may_manage(request.user_id, course):
            return 401, UNAUTHORIZED, {}
        data = request.params.get("calendar_event")
        if not isinstance(data, Mapping):
            return 400, {"errors": {"calendar_event": [{"message": "missing"}]}}, {}
        is_course = event["context_code"].startswith("course_")
        fields, errors, children = self._event_fields(data, course if is_course else None)
        if errors is not None:
            return 400, {"errors": errors}, {}
        code = data.get("context_code")
        if code is not None and code != event["context_code"]:
            if event["child_ids"]:
                return (
                    400,
                    {"message": "Cannot move events with section-specific times between calendars"},
                    {},
                )
            if self._context(code) is None:
                return 404, NOT_FOUND, {}
            event["context_code"] = code
        start = fields.get("start_at", event["start_at"])
        end = fields.get("end_at", event["end_at"])
        if start and end and end < start:
            return (
                400,
                {
                    "errors": {
                        "end_at": [{"attribute": "end_at", "type": "invalid", "message": "invalid"}]
                    }
                },
                {},
            )
        event.update(fields)
        event["updated_at"] = datetime.now(UTC)
        # Canvas reads booleans Rails-style: "1" and "true" (its own UI sends "1").
        if str(data.get("remove_child_events", "")).lower() in ("1", "true"):
            for old in event["child_ids"]:
                self.events[old]["workflow_state"] = "deleted"
            event["child_ids"] = []
            event["all_context_codes"] = event["context_code"]
        if children:
            self._set_children(event, children)
        for child_id in event["child_ids"]:
            child = self.events[child_id]
            for key in ("title", "description", "location_name"):
                child[key] = event[key]
        return 200, self._event_json(event), {}

    async def _delete_event(self, request: CanvasRequest) -> tuple[int, Any, dict[str, str]]:
        event = self._active(request)
        if event is None:
            return 404, NOT_FOUND, {}
        if not self._may_manage(request.user_id, self._course_of(event)):
            return 401, UNAUTHORIZED, {}
        event["workflow_state"] = "deleted"
        event["cancel_reason"] = request.params.get("cancel_reason")
        for child_id in event["child_ids"]:
            self.events[child_id]["workflow_state"] = "deleted"
        return 200, self._event_json(event), {}

    async def _list_events(self, request: CanvasRequest) -> tuple[int, Any, dict[str, str]]:
        params = request.params
        codes = params.get("context_codes") or []
        if not isinstance(codes, list):
            codes = [codes]
        all_events = str(params.get("all_events", "")).lower() == "true"
        undated = str(params.get("undated", "")).lower() == "true"
        errors: dict[str, str] = {}
        start = end = None
        if not all_events and not undated:
            start, end = self._dates(params, errors)
        if errors:
            return 400, {"errors": errors}, {}
        if params.get("type", "event") != "event":
            return self._page(request, [])
        # Only calendars the user may see; others are left out silently, as Canvas does.
        visible: set[str] = set()
        for code in codes:
            found = self._context(code)
            if found and (self._may_manage(request.user_id, found[0])):
                visible.add(code)
        chosen = []
        for event in self.events.values():
            if event["workflow_state"] != "active":
                continue
            home = event["effective_context_code"] or event["context_code"]
            if home not in visible:
                continue
            if undated:
                if event["start_at"] is not None:
                    continue
            elif not all_events:
                if event["start_at"] is None or start is None or end is None:
                    continue
                if event["start_at"] > end or (event["end_at"] or event["start_at"]) < start:
                    continue
            chosen.append(event)
        chosen.sort(key=lambda e: (e["start_at"] or datetime.min.replace(tzinfo=UTC), e["id"]))
        return self._page(request, [self._event_json(e) for e in chosen])

    def _dates(
        self, params: Mapping[str, Any], errors: dict[str, str]
    ) -> tuple[datetime | None, datetime | None]:
        today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        values: dict[str, datetime] = {}
        for key in ("start_date", "end_date"):
            raw = params.get(key)
            if raw in (None, ""):
                continue
            try:
                moment = parse_time(raw)
            except ValueError:
                errors[key] = f"Invalid date or invalid datetime for {key}"
                continue
            assert moment is not None
            if isinstance(raw, str) and _DATE.match(raw) and key == "end_date":
                moment += timedelta(days=1, microseconds=-1)  # a date means its whole day
            values[key] = moment
        start = values.get("start_date", today)
        end = values.get("end_date", start.replace(hour=23, minute=59, second=59))
        return start, max(end, start)

    # -- courses ---------------------------------------------------------------------------

    async def _list_sections(self, request: CanvasRequest) -> tuple[int, Any, dict[str, str]]:
        assert request.match is not None
        course = self.courses.get(request.match["id"])
        if course is None or course.deleted:
            return 404, NOT_FOUND, {}
        if not self._may_manage(request.user_id, course):
            return 401, UNAUTHORIZED, {}
        items = [
            {"id": int(s) if s.isdigit() else s, "name": n, "course_id": int(course.id)}
            for s, n in course.sections.items()
        ]
        return self._page(request, items)

    async def _list_groups(self, request: CanvasRequest) -> tuple[int, Any, dict[str, str]]:
        assert request.match is not None
        course = self.courses.get(request.match["id"])
        if course is None or course.deleted:
            return 404, NOT_FOUND, {}
        if not self._may_manage(request.user_id, course):
            return 401, UNAUTHORIZED, {}
        items = [
            {
                "id": int(g) if g.isdigit() else g,
                "name": n,
                "context_type": "Course",
                "course_id": int(course.id),
            }
            for g, n in course.groups.items()
        ]
        return self._page(request, items)

    def _page(self, request: CanvasRequest, items: list[Any]) -> tuple[int, Any, dict[str, str]]:
        try:
            per_page = int(request.params.get("per_page", DEFAULT_PER_PAGE))
            page = int(request.params.get("page", 1))
        except (TypeError, ValueError):
            return 400, {"errors": [{"message": "invalid page or per_page"}]}, {}
        per_page = max(1, min(per_page, MAX_PER_PAGE))
        page = max(1, page)
        last = max(1, -(-len(items) // per_page))
        chunk = items[(page - 1) * per_page : page * per_page]
        base = [(k, v) for k, v in request.query if k not in ("page", "per_page")]

        def link(n: int, rel: str) -> str:
            query = urlencode([*base, ("page", str(n)), ("per_page", str(per_page))])
            return f'<https://{self.host}{request.path}?{query}>; rel="{rel}"'

        links = [link(page, "current")]
        if page < last:
            links.append(link(page + 1, "next"))
        if page > 1:
            links.append(link(page - 1, "prev"))
        links += [link(1, "first"), link(last, "last")]
        return 200, chunk, {"link": ",".join(links)}


__all__ = [
    "CLIENT_ID",
    "CLIENT_SECRET",
    "HOST",
    "PUBLIC_ADDRESS",
    "CanvasDouble",
    "CanvasRequest",
    "Course",
    "RecordedRequest",
    "canvas_api",
    "canvas_http",
    "canvas_settings",
    "parse_time",
    "public_resolver",
    "rails_params",
]


# -- wiring the plugin to the double ---------------------------------------------------------

#: What test hosts resolve to: a public address, so ``api.check_url`` runs its real rule.
PUBLIC_ADDRESS = "93.184.215.14"


async def public_resolver(host: str) -> list[str]:
    return [PUBLIC_ADDRESS]


def canvas_http(double: CanvasDouble) -> httpx.AsyncClient:
    """An HTTP client whose every request reaches ``double`` (close it after use)."""
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=double))


def canvas_settings(double: CanvasDouble, **overrides: Any) -> dict[str, Any]:
    """The plugin's settings pointing at the double, with its developer key."""
    settings: dict[str, Any] = {
        "api_client_id": double.client_id,
        "api_client_secret": double.client_secret,
        "admin_access_token": None,
        "api_base_url": f"https://{double.host}",
    }
    settings.update(overrides)
    return settings


def canvas_api(
    double: CanvasDouble,
    http: httpx.AsyncClient,
    *,
    user_id: str | None = None,
    tokens: Any = None,
    settings: Mapping[str, Any] | None = None,
) -> Any:
    """An :class:`~ltipro.lmsapi.LmsApi` for hooks under test, calling ``double``."""
    from ltipro.lmsapi import LmsApi, MemoryTokenStore

    return LmsApi(
        http=http,
        settings=dict(settings) if settings is not None else canvas_settings(double),
        tokens=tokens if tokens is not None else MemoryTokenStore(),
        credential_id=1,
        platform_id=None,
        user_id=user_id,
        resolver=public_resolver,
    )
