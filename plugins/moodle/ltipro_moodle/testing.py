"""A stateful test double of Moodle's REST web services, for the calendar functions.

Route an ``httpx.AsyncClient`` to it (``httpx.ASGITransport(app=double)``, or
:class:`ltipro.testing.transport.RoutingTransport` under the site's host) and the Moodle
plugin cannot tell it from a Moodle site::

    moodle = MoodleDouble()
    token = moodle.add_token(courses={2})
    moodle.add_course(2)

What it follows, from Moodle's own documentation and code:

* https://docs.moodle.org/dev/Web_services and https://docs.moodle.org/en/Using_web_services:
  one entry point, ``/webservice/rest/server.php``, taking ``wstoken``, ``wsfunction``
  and ``moodlewsrestformat`` from the query string or a POSTed form, and the function's
  parameters PHP-style (``events[0][name]``); without ``moodlewsrestformat=json`` the
  answer is XML. A bare ``403`` when the REST protocol is switched off
  (``webservice/rest/server.php``).
* moodle/moodle ``webservice/rest/locallib.php``: errors are HTTP 200 with
  ``{"exception", "errorcode", "message"}`` (``debuginfo`` only in debug mode):
  ``invalidtoken`` ("Invalid token - token not found"), ``accessexception`` ("Access
  control exception") for a function outside the token's service,
  ``invalidparameter`` ("Invalid parameter value detected") for parameters that do not
  match the function's description, ``invalidrecord`` for unknown records.
* moodle/moodle ``calendar/externallib.php`` (the functions' parameter descriptions are
  checked exactly: required keys, unexpected keys, integer and boolean values):
  ``core_calendar_create_calendar_events`` answers ``{"events", "warnings"}`` and puts
  an event the user may not create into ``warnings`` (``nopermissions``), not into an
  exception; ``core_calendar_delete_calendar_events`` needs ``eventid`` *and* ``repeat``,
  answers ``null``, and fails as a whole (one transaction) with ``invalidrecord`` when
  an event does not exist; ``core_calendar_get_calendar_events`` takes
  ``events[courseids]`` and ``options[timestart|timeend|userevents|siteevents|ignorehidden]``
  and warns ``nopermissions`` for courses the user cannot see.

Assumed where Moodle's code depends on site configuration: the token's user either has
``moodle/calendar:manageentries`` at system level (``manager=True``) or in the courses
given; descriptions come back as stored (no text filters); an unknown course on create
is the ``invalidrecord`` error of its context lookup.

On demand it fails like the network in front of Moodle: :meth:`fail_next` (any status,
or a timeout), :meth:`throttle_next` (429 with ``Retry-After`` from a proxy), or answers
with any Moodle exception (:meth:`exception_next`).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import secrets
import time
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx

from ltipro.testing.asgi import read_request, send_response

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

SITE_URL = "https://moodle.example.edu"
SERVER_PATH = "/webservice/rest/server.php"
CALENDAR_FUNCTIONS = frozenset(
    {
        "core_calendar_create_calendar_events",
        "core_calendar_delete_calendar_events",
        "core_calendar_get_calendar_events",
    }
)
# Functions the site knows (any other name is not in external_functions).
KNOWN_FUNCTIONS = CALENDAR_FUNCTIONS | {
    "core_webservice_get_site_info",
    "core_calendar_update_event_start_day",
    "core_calendar_submit_create_update_form",
}
FORMATS = {0, 1, 2, 4}  # FORMAT_MOODLE, FORMAT_HTML, FORMAT_PLAIN, FORMAT_MARKDOWN


class InvalidParameter(Exception):
    """``invalid_parameter_exception``; the text is Moodle's ``debuginfo``."""


class MoodleError(Exception):
    """Any other Moodle exception, answered as ``{"exception", "errorcode", "message"}``."""

    def __init__(self, exception: str, errorcode: str, message: str) -> None:
        super().__init__(message)
        self.exception = exception
        self.errorcode = errorcode
        self.message = message


# -- the functions' parameter descriptions (external_function_parameters) -------------------

REQUIRED = object()


@dataclass(frozen=True)
class Value:
    """``external_value``: a scalar of ``kind`` (int, bool, text, raw, format)."""

    kind: str
    default: Any = REQUIRED


@dataclass(frozen=True)
class Multiple:
    """``external_multiple_structure``."""

    item: Any
    default: Any = REQUIRED


@dataclass(frozen=True)
class Single:
    """``external_single_structure``."""

    keys: Mapping[str, Any]
    default: Any = REQUIRED


PARAMETERS: dict[str, Single] = {
    "core_calendar_create_calendar_events": Single(
        {
            "events": Multiple(
                Single(
                    {
                        "name": Value("text"),
                        "description": Value("raw", None),
                        "format": Value("format", 1),
                        "courseid": Value("int", 0),
                        "groupid": Value("int", 0),
                        "repeats": Value("int", 0),
                        "eventtype": Value("text", "user"),
                        "timestart": Value("int", None),  # time() when left out
                        "timeduration": Value("int", 0),
                        "visible": Value("int", 1),
                        "sequence": Value("int", 1),
                    }
                )
            )
        }
    ),
    "core_calendar_delete_calendar_events": Single(
        {"events": Multiple(Single({"eventid": Value("int"), "repeat": Value("bool")}))}
    ),
    "core_calendar_get_calendar_events": Single(
        {
            "events": Single(
                {
                    "eventids": Multiple(Value("int"), []),
                    "courseids": Multiple(Value("int"), []),
                    "groupids": Multiple(Value("int"), []),
                    "categoryids": Multiple(Value("int"), []),
                },
                {},
            ),
            "options": Single(
                {
                    "userevents": Value("bool", True),
                    "siteevents": Value("bool", True),
                    "timestart": Value("int", 0),
                    "timeend": Value("int", 0),
                    "ignorehidden": Value("bool", True),
                },
                {},
            ),
        }
    ),
}

_INT = re.compile(r"^-?\d+$")
_BOOL = {"1": True, "true": True, "yes": True, "on": True, "0": False, "false": False}
_BOOL |= {"no": False, "off": False, "": False}


def _as_list(value: Any, where: str) -> list[Any]:
    if isinstance(value, dict) and all(_INT.match(k) for k in value):
        return [value[k] for k in sorted(value, key=int)]
    raise InvalidParameter(f"{where}Only arrays accepted. The bad value is: '{value}'")


def validate(spec: Any, value: Any, where: str = "") -> Any:
    """Clean ``value`` as ``external_api::validate_parameters`` does, or refuse it."""
    if isinstance(spec, Value):
        if not isinstance(value, str):
            raise InvalidParameter(f"{where}Invalid external api parameter: array given")
        if spec.kind in ("int", "format"):
            if not _INT.match(value.strip()):
                raise InvalidParameter(
                    f'{where}Invalid external api parameter: the value is "{value}", the '
                    'server was expecting "int" type'
                )
            number = int(value)
            if spec.kind == "format" and number not in FORMATS:
                raise InvalidParameter(f"{where}Invalid format: {number}")
            return number
        if spec.kind == "bool":
            if value.strip().lower() not in _BOOL:
                raise InvalidParameter(
                    f'{where}Invalid external api parameter: the value is "{value}", the '
                    'server was expecting "bool" type'
                )
            return _BOOL[value.strip().lower()]
        if spec.kind == "text":
            return re.sub(r"<[^>]*>", "", value)  # PARAM_TEXT strips tags
        return value
    if isinstance(spec, Multiple):
        return [validate(spec.item, v, where) for v in _as_list(value, where)]
    if not isinstance(value, dict):
        raise InvalidParameter(f"{where}Only arrays accepted. The bad value is: '{value}'")
    unexpected = sorted(set(value) - set(spec.keys))
    if unexpected:
        raise InvalidParameter(
            f"{where}Unexpected keys ({', '.join(unexpected)}) detected in parameter array."
        )
    cleaned: dict[str, Any] = {}
    for key, inner in spec.keys.items():
        if key in value:
            cleaned[key] = validate(inner, value[key], f"{where}{key} => ")
        elif inner.default is REQUIRED:
            raise InvalidParameter(f"{where}Missing required key in single structure: {key}")
        elif isinstance(inner, Single):
            # validate_parameters() validates a missing structure's default too.
            cleaned[key] = validate(inner, dict(inner.default), f"{where}{key} => ")
        else:
            cleaned[key] = inner.default
    return cleaned


def unflatten(fields: list[tuple[str, str]]) -> dict[str, Any]:
    """PHP's reading of ``a[b][0]=v`` form fields into nested arrays (dicts here)."""
    root: dict[str, Any] = {}
    for name, value in fields:
        match = re.match(r"^([^\[]+)((?:\[[^\]]*\])*)$", name)
        if not match:
            continue
        keys = [match.group(1), *re.findall(r"\[([^\]]*)\]", match.group(2))]
        node = root
        for key in keys[:-1]:
            child = node.get(key)
            if not isinstance(child, dict):
                child = node[key] = {}
            node = child
        node[keys[-1]] = value
    return root


# -- state ----------------------------------------------------------------------------------


@dataclass
class Token:
    """A web-service token: its user, its service's functions, where it may manage events."""

    token: str
    user_id: int
    functions: frozenset[str] = CALENDAR_FUNCTIONS
    manager: bool = False
    courses: frozenset[int] = frozenset()
    valid_until: float | None = None


@dataclass
class Event:
    """A row of Moodle's ``event`` table, as the web services return it."""

    id: int
    name: str
    description: str | None
    format: int
    courseid: int
    groupid: int
    userid: int
    repeatid: int
    modulename: str
    instance: int
    eventtype: str
    timestart: int
    timeduration: int
    visible: int
    uuid: str
    sequence: int
    timemodified: int
    subscriptionid: int | None = None


@dataclass
class Fault:
    status: int = 503
    body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)
    function: str | None = None
    times: int = 1
    timeout: bool = False
    exception: tuple[str, str, str] | None = None


@dataclass(frozen=True)
class Call:
    """A request as the double saw it and what it answered."""

    method: str
    path: str
    params: Mapping[str, Any]
    function: str | None
    status: int
    answer: Any


class MoodleDouble:
    """A Moodle site's REST web-service entry point (see the module docstring)."""

    def __init__(
        self,
        site_url: str = SITE_URL,
        *,
        clock: Callable[[], float] = time.time,
        debug: bool = False,
        latency: float = 0.0,
    ) -> None:
        parts = urlsplit(site_url)
        self.host = (parts.hostname or "").lower()
        self.path = parts.path.rstrip("/") + SERVER_PATH
        self.clock = clock
        self.debug = debug
        self.latency = latency
        self.rest_enabled = True
        self.tokens: dict[str, Token] = {}
        self.courses: set[int] = {1}  # course 1 is the site (SITEID)
        self.events: dict[int, Event] = {}
        self.faults: list[Fault] = []
        self.calls: list[Call] = []
        self.refused: list[str] = []  # debuginfo of every invalidparameter answer
        self._ids = itertools.count(101)

    # -- set-up ------------------------------------------------------------------------

    def add_course(self, course_id: int) -> None:
        self.courses.add(course_id)

    def add_token(
        self,
        token: str | None = None,
        *,
        user_id: int = 2,
        functions: frozenset[str] = CALENDAR_FUNCTIONS,
        manager: bool = False,
        courses: set[int] | frozenset[int] = frozenset(),
        valid_until: float | None = None,
    ) -> str:
        """A token of an external service with ``functions``, for a user who may manage
        calendar entries site-wide (``manager``) or in ``courses``."""
        value = token or secrets.token_hex(16)
        self.tokens[value] = Token(
            value, user_id, frozenset(functions), manager, frozenset(courses), valid_until
        )
        return value

    def fail_next(
        self,
        status: int = 503,
        *,
        body: bytes = b"",
        headers: Mapping[str, str] | None = None,
        function: str | None = None,
        times: int = 1,
        timeout: bool = False,
    ) -> None:
        """Answer the next matching call(s) with ``status`` (or time out) instead."""
        self.faults.append(
            Fault(status, body, dict(headers or {}), function, times, timeout=timeout)
        )

    def throttle_next(
        self, retry_after: str | None = "30", *, function: str | None = None, times: int = 1
    ) -> None:
        """A 429 from a proxy in front of Moodle (Moodle itself never throttles)."""
        headers = {"Retry-After": retry_after} if retry_after is not None else {}
        self.fail_next(
            429,
            body=b"<html><body>Too Many Requests</body></html>",
            headers={"content-type": "text/html", **headers},
            function=function,
            times=times,
        )

    def exception_next(
        self, exception: str, errorcode: str, message: str, *, function: str | None = None
    ) -> None:
        """Answer the next matching call with this Moodle exception."""
        self.faults.append(Fault(200, function=function, exception=(exception, errorcode, message)))

    def add_event(
        self,
        course_id: int,
        name: str,
        timestart: int,
        *,
        timeduration: int = 3600,
        description: str = "",
        user_id: int = 3,
    ) -> Event:
        """A course event someone made in Moodle itself (not through the tool)."""
        event = Event(
            id=next(self._ids),
            name=name,
            description=description,
            format=1,
            courseid=course_id,
            groupid=0,
            userid=user_id,
            repeatid=0,
            modulename="",
            instance=0,
            eventtype="course",
            timestart=timestart,
            timeduration=timeduration,
            visible=1,
            uuid="",
            sequence=1,
            timemodified=int(self.clock()),
        )
        self.events[event.id] = event
        return event

    def calls_to(self, function: str) -> list[Call]:
        return [c for c in self.calls if c.function == function]

    def course_events(self, course_id: int) -> list[Event]:
        return [e for e in self.events.values() if e.courseid == course_id]

    # -- ASGI --------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = await read_request(scope, receive, send)
        if request is None:
            return
        headers, body = request
        if self.latency:
            await asyncio.sleep(self.latency)
        fields = parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
        if scope["method"] == "POST" and headers.get("content-type", "").startswith(
            "application/x-www-form-urlencoded"
        ):
            fields += parse_qsl(body.decode("utf-8"), keep_blank_values=True)
        params = unflatten(fields)
        function = params.get("wsfunction") if isinstance(params.get("wsfunction"), str) else None
        status, payload, extra, answer = self._handle(scope, headers, params, function)
        self.calls.append(Call(scope["method"], scope["path"], params, function, status, answer))
        await send_response(send, status, payload, extra)

    def _handle(
        self,
        scope: Scope,
        headers: Mapping[str, str],
        params: dict[str, Any],
        function: str | None,
    ) -> tuple[int, bytes, dict[str, str], Any]:
        host = headers.get("host", "").split(":")[0].lower()
        if host != self.host or scope["path"] != self.path:
            return 404, b"<html><body>Not Found</body></html>", {"content-type": "text/html"}, None
        if scope["method"] not in ("GET", "POST"):
            return 405, b"", {"allow": "GET, POST"}, None
        fault = self._take_fault(function)
        if fault is not None:
            if fault.timeout:
                raise httpx.ReadTimeout("the Moodle double timed out on purpose")
            if fault.exception is not None:
                return self._json(self._error(MoodleError(*fault.exception)), params)
            return fault.status, fault.body, dict(fault.headers), None
        if not self.rest_enabled:
            return 403, b"", {}, None
        try:
            result = self._run(params, function)
        except InvalidParameter as exc:
            self.refused.append(str(exc))
            error = MoodleError(
                "invalid_parameter_exception",
                "invalidparameter",
                "Invalid parameter value detected",
            )
            return self._json(self._error(error, debuginfo=str(exc)), params)
        except MoodleError as exc:
            return self._json(self._error(exc), params)
        return self._json(result, params)

    def _json(
        self, answer: Any, params: Mapping[str, Any]
    ) -> tuple[int, bytes, dict[str, str], Any]:
        if params.get("moodlewsrestformat") != "json":
            # The default format is XML; the plugin must never get it.
            xml = '<?xml version="1.0" encoding="UTF-8" ?>\n<RESPONSE></RESPONSE>\n'
            return 200, xml.encode(), {"content-type": "application/xml; charset=utf-8"}, answer
        payload = json.dumps(answer).encode()
        return 200, payload, {"content-type": "application/json"}, answer

    def _error(self, exc: MoodleError, debuginfo: str | None = None) -> dict[str, Any]:
        answer = {"exception": exc.exception, "errorcode": exc.errorcode, "message": exc.message}
        if self.debug and debuginfo:
            answer["debuginfo"] = debuginfo
        return answer

    def _take_fault(self, function: str | None) -> Fault | None:
        for fault in self.faults:
            if fault.function is None or fault.function == function:
                fault.times -= 1
                if fault.times <= 0:
                    self.faults.remove(fault)
                return fault
        return None

    def _run(self, params: dict[str, Any], function: str | None) -> Any:
        token = self.tokens.get(str(params.get("wstoken") or ""))
        if token is None:
            raise MoodleError("moodle_exception", "invalidtoken", "Invalid token - token not found")
        if token.valid_until is not None and token.valid_until < self.clock():
            raise MoodleError(
                "moodle_exception", "invalidtimedtoken", "Invalid token - token expired"
            )
        if not function:
            raise InvalidParameter("Missing function name")
        if function not in KNOWN_FUNCTIONS:
            raise MoodleError(
                "dml_missing_record_exception",
                "invalidrecord",
                "Can't find data record in database table external_functions.",
            )
        if function not in token.functions:
            raise MoodleError(
                "webservice_access_exception", "accessexception", "Access control exception"
            )
        spec = PARAMETERS.get(function)
        if spec is None:
            raise MoodleError("coding_exception", "codingerror", f"{function} is not emulated")
        arguments = {
            k: v
            for k, v in params.items()
            if k not in ("wstoken", "wsfunction", "moodlewsrestformat")
        }
        cleaned = validate(spec, arguments)
        handler = getattr(self, "_" + function.removeprefix("core_calendar_"))
        return handler(token, cleaned)

    # -- the functions -----------------------------------------------------------------

    def _may_manage(self, token: Token, course_id: int) -> bool:
        return token.manager or course_id in token.courses

    def _create_calendar_events(self, token: Token, params: dict[str, Any]) -> dict[str, Any]:
        created: list[Event] = []
        warnings = []
        for data in params["events"]:
            if data["eventtype"] == "course":
                if data["courseid"] not in self.courses:
                    raise MoodleError(
                        "dml_missing_record_exception",
                        "invalidrecord",
                        "Can't find data record in database table course.",
                    )
                if not self._may_manage(token, data["courseid"]):
                    warnings.append(
                        {
                            "item": data["name"],
                            "warningcode": "nopermissions",
                            "message": "you do not have permissions to create this event",
                        }
                    )
                    continue
            elif data["eventtype"] != "user":
                raise MoodleError(
                    "coding_exception", "codingerror", f"eventtype {data['eventtype']} not emulated"
                )
            now = int(self.clock())
            event = Event(
                id=next(self._ids),
                name=data["name"],
                description=data["description"],
                format=data["format"],
                courseid=data["courseid"] if data["eventtype"] == "course" else 0,
                groupid=data["groupid"],
                userid=token.user_id,
                repeatid=0,
                modulename="",
                instance=0,
                eventtype=data["eventtype"],
                timestart=data["timestart"] if data["timestart"] is not None else now,
                timeduration=data["timeduration"],
                visible=data["visible"],
                uuid="",
                sequence=data["sequence"],
                timemodified=now,
            )
            created.append(event)
        # One transaction: nothing is stored unless every event passed.
        for event in created:
            self.events[event.id] = event
        return {"events": [asdict(e) for e in created], "warnings": warnings}

    def _delete_calendar_events(self, token: Token, params: dict[str, Any]) -> None:
        doomed = []
        for data in params["events"]:
            event = self.events.get(data["eventid"])
            if event is None:
                raise MoodleError(
                    "dml_missing_record_exception",
                    "invalidrecord",
                    "Can't find data record in database table event.",
                )
            if not self._may_manage(token, event.courseid) and event.userid != token.user_id:
                raise MoodleError(
                    "moodle_exception",
                    "nopermissions",
                    "Sorry, but you do not currently have permissions to do that (Delete event).",
                )
            doomed.append(event.id)
        for event_id in doomed:
            self.events.pop(event_id, None)
        return None

    def _get_calendar_events(self, token: Token, params: dict[str, Any]) -> dict[str, Any]:
        options = params["options"]
        courses: list[int] = []
        warnings = []
        for course_id in params["events"]["courseids"]:
            if token.manager or course_id in token.courses:
                courses.append(course_id)
            else:
                warnings.append(
                    {
                        "item": "course",
                        "itemid": course_id,
                        "warningcode": "nopermissions",
                        "message": "No access rights in course context",
                    }
                )
        if options["siteevents"]:
            courses.append(1)
        start = options["timestart"] or 0
        end = options["timeend"] or 2**63 - 1  # 0 and null mean no end
        found = []
        for event in self.events.values():
            wanted = (
                (event.eventtype == "course" and event.courseid in courses)
                or (
                    options["userevents"]
                    and event.eventtype == "user"
                    and event.userid == token.user_id
                )
                or event.id in params["events"]["eventids"]
            )
            if not wanted or (options["ignorehidden"] and not event.visible):
                continue
            # calendar_get_legacy_events(..., $withduration = true)
            overlaps = (
                event.timestart >= start or event.timestart + event.timeduration > start
            ) and event.timestart <= end
            if overlaps or event.id in params["events"]["eventids"]:
                found.append(asdict(event))
        found.sort(key=lambda e: (e["timestart"], e["id"]))
        return {"events": found, "warnings": warnings}


__all__ = ["SITE_URL", "Call", "Event", "MoodleDouble", "Token"]
