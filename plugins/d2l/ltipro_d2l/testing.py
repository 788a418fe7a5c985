"""A stateful test double of Brightspace: its OAuth 2.0 service and the LE calendar API.

Route an ``httpx`` client to it (with :class:`ltipro.testing.RoutingTransport`, for both
``auth.brightspace.com`` and the Brightspace instance's host) and the plugin cannot tell
it from Brightspace::

    double = BrightspaceDouble(host="school.brightspace.com")
    double.add_org_unit(522938, "Calculus I", groups={7001: "Lab A"})
    transport.add(double.auth_host, double)
    transport.add(double.host, double)

Built from Brightspace's public documentation:

- OAuth 2.0, https://docs.valence.desire2learn.com/basic/oauth2.html: the authorisation
  code grant at ``https://auth.brightspace.com/oauth2/auth`` and the token endpoint
  ``https://auth.brightspace.com/core/connect/token`` (client credentials by HTTP Basic
  or in the form), access tokens that expire (``expires_in``), and refresh tokens that
  rotate: each refresh answers a new refresh token and the old one is refused with
  ``invalid_grant`` from then on (D2L's "How to obtain an OAuth 2.0 refresh token" and
  the API authentication guide: "Use the Refresh Token to get a new Access Token (and a
  new Refresh Token)"). An unknown client is ``invalid_client``; a code is single use,
  short-lived and bound to its redirect URI (RFC 6749, section 4.1.3).
- Scopes, the scopes table linked from the OAuth 2.0 page above: the calendar event
  routes have no scope of their own, so a token needs ``core:*:*``.
- Calendar, https://docs.valence.desire2learn.com/res/calendar.html:
  ``POST (orgUnitId)/calendar/event/`` with a ``Calendar.EventData`` block answering
  ``Calendar.EventDataInfo``; ``GET/PUT/DELETE (orgUnitId)/calendar/event/(eventId)``;
  ``GET (orgUnitId)/calendar/events/`` with ``startDateTime``/``endDateTime``. REPEAT_T,
  VISIBILITY_T and HIDDENUNIT_T values as documented there.
- API conventions, https://docs.valence.desire2learn.com/basic/conventions.html:
  ``UTCDateTime`` is ``yyyy-MM-ddTHH:mm:ss.fffZ`` and ``LocalDateTime`` the same without
  ``Z``; an ``ObjectListPage`` is ``{"Next": <url>|null, "Objects": [...]}``; collection
  routes end with ``/`` and item routes do not (the other form is a 404); error bodies
  may be RFC 7807 problem details.
- Rate limiting, https://docs.valence.desire2learn.com/basic/apicall.html#rate-limiting:
  a credit bucket reported in ``X-Rate-Limit-Remaining`` (and ``X-Request-Cost``,
  ``X-Rate-Limit-Reset``); when it is empty, 429 with ``Retry-After`` in seconds.

Brightspace behaviour no document states exactly is marked "observed" (seen in published
client code against live instances) or "assumed":

- observed: the event list answers ``200 []`` when a window bound is missing, and newer
  LE versions answer it as an ``ObjectListPage`` where older ones answered a bare array
  (``list_shape``);
- assumed: a 401 for a missing, unknown or expired bearer token, and a 403 for a token
  without the scope or an account without the course's calendar permission.

Faults on demand: :meth:`fail_next` (any status, or a timeout), :meth:`throttle_next`
(429 with ``Retry-After``), :meth:`expire_access_tokens`, :meth:`revoke` (the admin
removed the app's authorisation). Every request is recorded in :attr:`requests`.
"""

from __future__ import annotations

import base64
import itertools
import json
import re
import secrets
import time
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import httpx

from ltipro.testing.asgi import read_request, send_response

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

AUTH_HOST = "auth.brightspace.com"
CLIENT_ID = "0c9c5a4e-6c1f-4f0b-9c3e-2b7d41f0d2a1"
CLIENT_SECRET = "brightspace-secret-test"
CORE_SCOPE = "core:*:*"
SUPPORTED_LE_VERSIONS = ("1.74", "1.79", "1.82", "1.85", "1.90", "1.95")

UTC_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
LOCAL_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}$")
REPEAT_TYPES = {1, 2, 3, 4, 5}  # None, Daily, Weekly, Monthly, Yearly
VISIBILITY_TYPES = {1, 2, 3, 4, 5}  # Visible, HiddenUntil, HiddenStarting, VisibleBetween, Hidden
HIDDEN_UNITS = {1, 2, 3}  # Days, Hours, Minutes
DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
# The Calendar.EventData fields a create or update must carry.
REQUIRED_FIELDS = (
    "Title",
    "Description",
    "StartDateTime",
    "EndDateTime",
    "StartDay",
    "EndDay",
    "GroupId",
    "RecurrenceInfo",
    "LocationId",
    "LocationName",
    "VisibilityRestrictions",
)


@dataclass
class OAuthApp:
    """An OAuth 2.0 app registered under Manage Extensibility > OAuth 2.0."""

    client_id: str
    client_secret: str
    redirect_uri: str
    scope: str = CORE_SCOPE
    refresh_tokens: bool = True  # "Enable refresh tokens"


@dataclass
class Grant:
    client_id: str
    scope: str
    user: str
    expires_at: float = 0.0
    redirect_uri: str = ""


@dataclass
class OrgUnit:
    id: int
    name: str
    code: str
    groups: dict[int, str] = field(default_factory=dict)
    calendar_managers: bool = True  # whether the service account may manage its calendar


@dataclass
class Fault:
    status: int = 503
    times: int = 1
    timeout: bool = False
    headers: Mapping[str, str] = field(default_factory=dict)
    where: str = "api"  # "api" or "token"


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    host: str
    path: str
    query: tuple[tuple[str, str], ...]
    headers: Mapping[str, str]
    body: bytes
    status: int

    def json(self) -> Any:
        return json.loads(self.body)


class BrightspaceDouble:
    """Brightspace's authentication service and one instance's LE API as one ASGI app."""

    def __init__(
        self,
        *,
        host: str = "school.brightspace.com",
        app: OAuthApp | None = None,
        access_token_lifetime: int = 3600,
        clock: Callable[[], float] = time.time,
        list_shape: str = "page",
        page_size: int = 100,
        rate_limit_credits: int = 10_000,
        user: str = "svc-ltipro",
    ) -> None:
        self.host = host.lower()
        self.auth_host = AUTH_HOST
        self.apps: dict[str, OAuthApp] = {}
        self.add_app(
            app
            or OAuthApp(
                CLIENT_ID, CLIENT_SECRET, "https://tool.example.edu/plugins/d2l/oauth/callback"
            )
        )
        self.access_token_lifetime = access_token_lifetime
        self.clock = clock
        self.list_shape = list_shape
        self.page_size = page_size
        self.credits = rate_limit_credits
        self.user = user
        self.consent = "approve"  # what the signed-in Brightspace user answers
        self.org_units: dict[int, OrgUnit] = {}
        self.events: dict[int, dict[str, Any]] = {}
        self.codes: dict[str, Grant] = {}
        self.access_tokens: dict[str, Grant] = {}
        self.refresh_tokens: dict[str, Grant] = {}
        self.used_refresh_tokens: set[str] = set()
        self.faults: list[Fault] = []
        self.requests: list[RecordedRequest] = []
        self.token_requests: list[dict[str, str]] = []
        self._event_ids = itertools.count(48_001)

    # ------------------------------------------------------------------ set-up

    def add_app(self, app: OAuthApp) -> OAuthApp:
        self.apps[app.client_id] = app
        return app

    def add_org_unit(
        self,
        org_unit_id: int,
        name: str,
        code: str = "",
        *,
        groups: Mapping[int, str] | None = None,
    ) -> OrgUnit:
        unit = OrgUnit(org_unit_id, name, code or f"OU-{org_unit_id}", dict(groups or {}))
        self.org_units[org_unit_id] = unit
        return unit

    def issue_tokens(self, client_id: str = CLIENT_ID, scope: str = CORE_SCOPE) -> dict[str, Any]:
        """Tokens as an authorisation would have issued them (for tests that start connected)."""
        return self._issue(Grant(client_id, scope, self.user))

    def add_event(self, org_unit_id: int, **fields: Any) -> dict[str, Any]:
        """An event made in Brightspace by someone else (not through the API under test)."""
        data = {
            "Title": "Office hours",
            "Description": "",
            "StartDateTime": "2026-03-02T15:00:00.000Z",
            "EndDateTime": "2026-03-02T16:00:00.000Z",
            "StartDay": None,
            "EndDay": None,
            "GroupId": None,
            "RecurrenceInfo": {
                "RepeatType": 1,
                "RepeatEvery": 1,
                "RepeatOnInfo": dict.fromkeys(DAYS, False),
                "RepeatUntilDate": "2026-03-02T16:00:00.000Z",
            },
            "LocationId": None,
            "LocationName": "",
            "VisibilityRestrictions": _visible(),
            **fields,
        }
        return self._store_event(self.org_units[org_unit_id], None, data)

    def events_in(self, org_unit_id: int) -> list[dict[str, Any]]:
        return [e for e in self.events.values() if e["OrgUnitId"] == org_unit_id]

    def fail_next(
        self,
        status: int = 503,
        *,
        times: int = 1,
        timeout: bool = False,
        where: str = "api",
        headers: Mapping[str, str] | None = None,
    ) -> None:
        """Answer the next ``times`` API (or token endpoint) requests with ``status``."""
        self.faults.append(Fault(status, times, timeout, dict(headers or {}), where))

    def throttle_next(self, retry_after: int = 30, *, times: int = 1, where: str = "api") -> None:
        """Empty the rate-limit bucket for the next request(s): 429 with ``Retry-After``."""
        headers = {
            "Retry-After": str(retry_after),
            "X-Rate-Limit-Remaining": "0",
            "X-Rate-Limit-Reset": str(retry_after),
        }
        self.fail_next(429, times=times, headers=headers, where=where)

    def expire_access_tokens(self) -> None:
        for grant in self.access_tokens.values():
            grant.expires_at = self.clock() - 1

    def revoke(self) -> None:
        """The admin (or the user) removed the app's authorisation in Brightspace."""
        self.used_refresh_tokens.update(self.refresh_tokens)
        self.refresh_tokens.clear()
        self.access_tokens.clear()

    def api_requests(self, method: str | None = None) -> list[RecordedRequest]:
        return [
            r
            for r in self.requests
            if r.host == self.host and (method is None or r.method == method)
        ]

    # ------------------------------------------------------------------ ASGI

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = await read_request(scope, receive, send)
        if request is None:
            return
        headers, body = request
        host = headers.get("host", "").split(":")[0].lower()
        path = scope["path"]
        query = tuple(
            parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
        )
        method = scope["method"]
        if host == self.auth_host and path == "/core/connect/token":
            status, payload, extra = self._token_endpoint(method, headers, body)
        elif host == self.auth_host and path == "/oauth2/auth":
            status, payload, extra = self._authorize(method, dict(query))
        elif host == self.host and path.startswith("/d2l/api/"):
            status, payload, extra = self._api(method, path, dict(query), headers, body)
        else:
            status, payload, extra = 404, b"Not Found", {"content-type": "text/plain"}
        self.requests.append(RecordedRequest(method, host, path, query, headers, body, status))
        await send_response(send, status, payload, extra)

    def _take_fault(self, where: str) -> Fault | None:
        for fault in self.faults:
            if fault.where == where:
                fault.times -= 1
                if fault.times <= 0:
                    self.faults.remove(fault)
                if fault.timeout:
                    raise httpx.ReadTimeout("the Brightspace double was told to time out")
                return fault
        return None

    # ------------------------------------------------------------------ OAuth 2.0

    def _authorize(
        self, method: str, query: Mapping[str, str]
    ) -> tuple[int, bytes, dict[str, str]]:
        """The consent page: answers at once as :attr:`consent` says the user would."""
        if method != "GET":
            return 405, b"Method Not Allowed", {"content-type": "text/plain"}
        app = self.apps.get(query.get("client_id", ""))
        # RFC 6749, 4.1.2.1: a bad client or redirect URI is never redirected to.
        if app is None or query.get("redirect_uri") != app.redirect_uri:
            return (
                400,
                b"<html><body>Invalid client or redirect URI</body></html>",
                {"content-type": "text/html"},
            )
        state = query.get("state")
        back: dict[str, str] = {} if state is None else {"state": state}
        requested = query.get("scope", "").split()
        if query.get("response_type") != "code":
            back["error"] = "unsupported_response_type"
        elif not requested or not set(requested) <= set(app.scope.split()):
            back["error"] = "invalid_scope"
        elif self.consent != "approve":
            back["error"] = "access_denied"
        else:
            code = secrets.token_urlsafe(24)
            self.codes[code] = Grant(
                app.client_id, " ".join(requested), self.user, self.clock() + 300, app.redirect_uri
            )
            back["code"] = code
        return 302, b"", {"location": f"{app.redirect_uri}?{urlencode(back)}"}

    def _token_endpoint(
        self, method: str, headers: Mapping[str, str], body: bytes
    ) -> tuple[int, bytes, dict[str, str]]:
        fault = self._take_fault("token")
        if fault is not None:
            return _fault_answer(fault)
        if method != "POST":
            return _oauth_error(405, "invalid_request")
        if not headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
            return _oauth_error(400, "invalid_request", "the body must be form encoded")
        form = dict(parse_qsl(body.decode(), keep_blank_values=True))
        self.token_requests.append(form)
        client_id, secret = _basic(headers.get("authorization", ""))
        client_id = client_id or form.get("client_id", "")
        secret = secret or form.get("client_secret", "")
        app = self.apps.get(client_id)
        if app is None or not secrets.compare_digest(app.client_secret, secret):
            return _oauth_error(400, "invalid_client")
        grant_type = form.get("grant_type")
        if grant_type == "authorization_code":
            grant = self.codes.pop(form.get("code", ""), None)
            if (
                grant is None
                or grant.client_id != client_id
                or grant.expires_at <= self.clock()
                or form.get("redirect_uri") != grant.redirect_uri
            ):
                return _oauth_error(400, "invalid_grant")
            return 200, json.dumps(self._issue(grant)).encode(), _json_headers()
        if grant_type == "refresh_token":
            presented = form.get("refresh_token", "")
            grant = self.refresh_tokens.get(presented)
            if grant is None or grant.client_id != client_id:
                return _oauth_error(400, "invalid_grant")
            asked = form.get("scope", "").split()
            if asked and not set(asked) <= set(grant.scope.split()):
                return _oauth_error(400, "invalid_scope")
            # Rotation: the presented refresh token is spent.
            del self.refresh_tokens[presented]
            self.used_refresh_tokens.add(presented)
            return 200, json.dumps(self._issue(grant)).encode(), _json_headers()
        return _oauth_error(400, "unsupported_grant_type")

    def _issue(self, grant: Grant) -> dict[str, Any]:
        access = "eyJ" + secrets.token_urlsafe(40)
        self.access_tokens[access] = Grant(
            grant.client_id, grant.scope, grant.user, self.clock() + self.access_token_lifetime
        )
        answer: dict[str, Any] = {
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": self.access_token_lifetime,
            "scope": grant.scope,
        }
        if self.apps[grant.client_id].refresh_tokens:
            refresh = "rt." + secrets.token_urlsafe(32)
            self.refresh_tokens[refresh] = Grant(grant.client_id, grant.scope, grant.user)
            answer["refresh_token"] = refresh
        return answer

    # ------------------------------------------------------------------ the LE API

    def _api(
        self,
        method: str,
        path: str,
        query: Mapping[str, str],
        headers: Mapping[str, str],
        body: bytes,
    ) -> tuple[int, bytes, dict[str, str]]:
        auth = headers.get("authorization", "")
        token = auth[7:].strip() if auth.lower().startswith("bearer ") else ""
        grant = self.access_tokens.get(token)
        if grant is None or grant.expires_at <= self.clock():
            return 401, b"", {"www-authenticate": 'Bearer error="invalid_token"'}
        fault = self._take_fault("api")
        if fault is not None:
            return _fault_answer(fault)
        self.credits -= 1
        if self.credits < 0:
            self.credits = 0
            return 429, b"", {"retry-after": "60", "x-rate-limit-remaining": "0"}
        rate = {"x-rate-limit-remaining": str(self.credits), "x-request-cost": "1"}
        match = re.fullmatch(
            r"/d2l/api/le/(?P<version>[^/]+)/(?P<ou>\d+)/calendar/(?P<rest>.*)", path
        )
        if match is None or match["version"] not in SUPPORTED_LE_VERSIONS:
            return _problem(404, "Not Found", "no such route", rate)
        if CORE_SCOPE not in grant.scope.split():
            return _problem(403, "Forbidden", "insufficient_scope", rate)
        unit = self.org_units.get(int(match["ou"]))
        if unit is None:
            return _problem(404, "Not Found", "org unit not found", rate)
        if not unit.calendar_managers:
            return _problem(403, "Forbidden", "not authorized to manage this calendar", rate)
        rest = match["rest"]
        if rest == "event/" and method == "POST":
            return self._create(unit, headers, body, rate)
        if rest == "events/" and method == "GET":
            return self._list(unit, match["version"], query, rate)
        item = re.fullmatch(r"event/(\d+)", rest)
        if item is not None and method in ("GET", "PUT", "DELETE"):
            event = self.events.get(int(item[1]))
            if event is None or event["OrgUnitId"] != unit.id:
                return _problem(404, "Not Found", "event not found", rate)
            if method == "GET":
                return 200, json.dumps(event).encode(), {**_json_headers(), **rate}
            if method == "DELETE":
                del self.events[event["CalendarEventId"]]
                return 200, b"", rate
            return self._update(unit, event, headers, body, rate)
        if rest in ("event/", "events/") or item is not None:
            return _problem(405, "Method Not Allowed", f"{method} is not allowed here", rate)
        return _problem(404, "Not Found", "no such route", rate)

    def _create(
        self, unit: OrgUnit, headers: Mapping[str, str], body: bytes, rate: Mapping[str, str]
    ) -> tuple[int, bytes, dict[str, str]]:
        data, problem = self._event_data(unit, headers, body)
        if problem is not None:
            return _problem(400, "Bad Request", problem, rate)
        event = self._store_event(unit, None, data)
        return 200, json.dumps(event).encode(), {**_json_headers(), **rate}

    def _update(
        self,
        unit: OrgUnit,
        event: dict[str, Any],
        headers: Mapping[str, str],
        body: bytes,
        rate: Mapping[str, str],
    ) -> tuple[int, bytes, dict[str, str]]:
        data, problem = self._event_data(unit, headers, body)
        if problem is not None:
            return _problem(400, "Bad Request", problem, rate)
        updated = self._store_event(unit, event["CalendarEventId"], data)
        return 200, json.dumps(updated).encode(), {**_json_headers(), **rate}

    def _event_data(
        self, unit: OrgUnit, headers: Mapping[str, str], body: bytes
    ) -> tuple[dict[str, Any], str | None]:
        if not headers.get("content-type", "").startswith("application/json"):
            return {}, "the body must be JSON (Content-Type: application/json)"
        try:
            data = json.loads(body)
        except ValueError:
            return {}, "the body is not valid JSON"
        if not isinstance(data, dict):
            return {}, "the body must be a Calendar.EventData object"
        missing = [name for name in REQUIRED_FIELDS if name not in data]
        if missing:
            return {}, f"missing fields: {', '.join(missing)}"
        if not isinstance(data["Title"], str) or not data["Title"].strip():
            return {}, "Title is required"
        if not isinstance(data["Description"], str):
            return {}, "Description must be a string"
        timed = [data["StartDateTime"], data["EndDateTime"]]
        days = [data["StartDay"], data["EndDay"]]
        if all(v is not None for v in timed) and all(v is None for v in days):
            if not all(isinstance(v, str) and UTC_DATETIME.match(v) for v in timed):
                return {}, "StartDateTime and EndDateTime must be UTCDateTime values"
            if _utc(timed[1]) < _utc(timed[0]):
                return {}, "EndDateTime is before StartDateTime"
        elif all(v is None for v in timed) and all(v is not None for v in days):
            if not all(isinstance(v, str) and LOCAL_DATETIME.match(v) for v in days):
                return {}, "StartDay and EndDay must be LocalDateTime values"
        else:
            return {}, "give StartDateTime and EndDateTime, or StartDay and EndDay"
        group = data["GroupId"]
        if group is not None and (not isinstance(group, int) or group not in unit.groups):
            return {}, f"GroupId {group!r} is not a group of org unit {unit.id}"
        problem = _check_recurrence(data["RecurrenceInfo"]) or _check_visibility(
            data["VisibilityRestrictions"]
        )
        if problem:
            return {}, problem
        if data["LocationId"] is not None and not isinstance(data["LocationId"], int):
            return {}, "LocationId must be a number or null"
        if not isinstance(data["LocationName"], str):
            return {}, "LocationName must be a string"
        return data, None

    def _store_event(
        self, unit: OrgUnit, event_id: int | None, data: Mapping[str, Any]
    ) -> dict[str, Any]:
        number = event_id if event_id is not None else next(self._event_ids)
        recurring = data["RecurrenceInfo"]["RepeatType"] != 1
        visibility = data["VisibilityRestrictions"]
        entity = data.get("AssociatedEntity")
        event = {
            "CalendarEventId": number,
            "OrgUnitId": unit.id,
            "Title": data["Title"],
            "Description": data["Description"],
            "StartDateTime": data["StartDateTime"],
            "EndDateTime": data["EndDateTime"],
            "IsAllDayEvent": data["StartDay"] is not None,
            "StartDay": data["StartDay"],
            "EndDay": data["EndDay"],
            "GroupId": data["GroupId"],
            "IsRecurring": recurring,
            "RecurrenceInfo": data["RecurrenceInfo"],
            "LocationId": data["LocationId"],
            "LocationName": data["LocationName"],
            "OrgUnitName": unit.name,
            "OrgUnitCode": unit.code,
            "IsAssociatedWithEntity": entity is not None,
            "AssociatedEntity": entity,
            "HasVisibilityRestrictions": visibility["Type"] != 1,
            "VisibilityRestrictions": visibility,
            "CalendarEventViewUrl": (
                f"https://{self.host}/d2l/le/calendar/{unit.id}/event/{number}/detailsview"
            ),
            "EventType": 1,
            "Presenters": [],
        }
        self.events[number] = event
        return event

    def _list(
        self, unit: OrgUnit, version: str, query: Mapping[str, str], rate: Mapping[str, str]
    ) -> tuple[int, bytes, dict[str, str]]:
        start, end = query.get("startDateTime"), query.get("endDateTime")
        if not start or not end:
            # Observed: without both bounds Brightspace answers an empty list, not a 400.
            matching: list[dict[str, Any]] = []
        elif not (UTC_DATETIME.match(start) and UTC_DATETIME.match(end)):
            return _problem(
                400, "Bad Request", "startDateTime and endDateTime are UTCDateTime", rate
            )
        else:
            low, high = _utc(start), _utc(end)
            matching = [
                e
                for e in sorted(self.events.values(), key=lambda e: e["CalendarEventId"])
                if e["OrgUnitId"] == unit.id and _overlaps(e, low, high)
            ]
        if self.list_shape == "array":
            return 200, json.dumps(matching).encode(), {**_json_headers(), **rate}
        bookmark = query.get("bookmark", "")
        offset = int(bookmark) if bookmark.isdigit() else 0
        page = matching[offset : offset + self.page_size]
        following = None
        if offset + self.page_size < len(matching):
            params = {**query, "bookmark": str(offset + self.page_size)}
            following = (
                f"https://{self.host}/d2l/api/le/{version}/{unit.id}/calendar/events/"
                f"?{urlencode(params)}"
            )
        answer = {"Next": following, "Objects": page}
        return 200, json.dumps(answer).encode(), {**_json_headers(), **rate}


# -- helpers --------------------------------------------------------------------------------


def _visible() -> dict[str, Any]:
    return {
        "Type": 1,
        "Range": None,
        "HiddenRangeUnitType": None,
        "StartDate": None,
        "EndDate": None,
    }


def _utc(value: str) -> datetime:
    return datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


def _overlaps(event: Mapping[str, Any], low: datetime, high: datetime) -> bool:
    if event["StartDateTime"] is None:
        begin = datetime.fromisoformat(event["StartDay"]).replace(tzinfo=UTC)
        finish = datetime.fromisoformat(event["EndDay"]).replace(tzinfo=UTC)
    else:
        begin, finish = _utc(event["StartDateTime"]), _utc(event["EndDateTime"])
    if event["IsRecurring"]:
        finish = max(finish, _utc(event["RecurrenceInfo"]["RepeatUntilDate"]))
    return begin < high and finish >= low


def _check_recurrence(info: Any) -> str | None:
    if not isinstance(info, dict):
        return "RecurrenceInfo must be a Calendar.RecurrenceInfo object"
    if info.get("RepeatType") not in REPEAT_TYPES:
        return "RecurrenceInfo.RepeatType must be a REPEAT_T value (1 to 5)"
    every = info.get("RepeatEvery")
    if not isinstance(every, int) or isinstance(every, bool) or every < 1:
        return "RecurrenceInfo.RepeatEvery must be a positive number"
    days = info.get("RepeatOnInfo")
    if not isinstance(days, dict) or not all(isinstance(days.get(d), bool) for d in DAYS):
        return "RecurrenceInfo.RepeatOnInfo must name every day with true or false"
    until = info.get("RepeatUntilDate")
    if not isinstance(until, str) or not UTC_DATETIME.match(until):
        return "RecurrenceInfo.RepeatUntilDate must be a UTCDateTime"
    if info["RepeatType"] == 3 and not any(days[d] for d in DAYS):
        return "a weekly event must repeat on at least one day"
    return None


def _check_visibility(info: Any) -> str | None:
    if not isinstance(info, dict):
        return "VisibilityRestrictions must be a Calendar.VisibilityInfo object"
    if info.get("Type") not in VISIBILITY_TYPES:
        return "VisibilityRestrictions.Type must be a VISIBILITY_T value (1 to 5)"
    unit = info.get("HiddenRangeUnitType")
    if unit is not None and unit not in HIDDEN_UNITS:
        return "VisibilityRestrictions.HiddenRangeUnitType must be a HIDDENUNIT_T value"
    for name in ("StartDate", "EndDate"):
        value = info.get(name)
        if value is not None and (not isinstance(value, str) or not UTC_DATETIME.match(value)):
            return f"VisibilityRestrictions.{name} must be a UTCDateTime or null"
    return None


def _basic(header: str) -> tuple[str, str]:
    if not header.lower().startswith("basic "):
        return "", ""
    try:
        user, _, password = base64.b64decode(header[6:].strip()).decode().partition(":")
    except ValueError:
        return "", ""
    return user, password


def _json_headers() -> dict[str, str]:
    return {"content-type": "application/json; charset=utf-8"}


def _oauth_error(
    status: int, error: str, description: str = ""
) -> tuple[int, bytes, dict[str, str]]:
    body: dict[str, str] = {"error": error}
    if description:
        body["error_description"] = description
    return status, json.dumps(body).encode(), _json_headers()


def _problem(
    status: int, title: str, detail: str, extra: Mapping[str, str]
) -> tuple[int, bytes, dict[str, str]]:
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail}
    return (
        status,
        json.dumps(body).encode(),
        {"content-type": "application/problem+json", **extra},
    )


def _fault_answer(fault: Fault) -> tuple[int, bytes, dict[str, str]]:
    return fault.status, b"", {k.lower(): v for k, v in fault.headers.items()}


def callback_query(location: str) -> dict[str, str]:
    """The query of a redirect ``Location`` as a dictionary."""
    return dict(parse_qsl(urlsplit(location).query))


__all__ = [
    "AUTH_HOST",
    "CLIENT_ID",
    "CLIENT_SECRET",
    "CORE_SCOPE",
    "BrightspaceDouble",
    "OAuthApp",
    "OrgUnit",
    "RecordedRequest",
    "callback_query",
]
