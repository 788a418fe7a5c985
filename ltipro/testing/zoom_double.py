"""A stateful Zoom API test double: the API, the S2S OAuth token endpoint, and Zoom's quirks.

Route an ``httpx.AsyncClient`` to it and the Zoom client cannot tell it from Zoom::

    double = ZoomDouble()
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=double))
    host = double.add_user("teacher@example.edu", type=2)

(or register it with :class:`ltipro.testing.RoutingTransport` for both ``api.zoom.us``
and ``zoom.us``). What it does:

* Keeps state: users (and emails held by other Zoom accounts), meetings with their
  occurrences, held instances with participants and cloud recordings, groups and their
  members, tracking fields, issued access tokens. A deleted meeting answers 404 with code
  3001 afterwards, a deleted recording 404 with code 3301.
* Checks every API request it receives and every response it sends against Zoom's
  OpenAPI document (:mod:`ltipro.testing.zoom_openapi`). A request Zoom's document does
  not allow is refused (400 code 300, or 404 for a path Zoom does not have) and recorded
  in :attr:`ZoomDouble.violations`; a response of its own that breaks the document raises
  :class:`SchemaViolation`, since that is a bug in the double.
* Refuses what Zoom refuses: no or unknown bearer token (401, code 124 "Invalid access
  token."), an expired one (401, code 124 "Access token is expired."), wrong app
  credentials at the token endpoint, requests to a host it does not serve (so the Zoom for
  Government URLs are really exercised).
* Produces the awkward answers on demand: :meth:`fail_next` (any status and code, or a
  timeout), :meth:`rate_limit_next` (429 with or without ``Retry-After``),
  :meth:`expire_tokens`, the per-host daily create/update limit
  (:attr:`daily_meeting_limit`), ``latency`` for benchmarks.

Zoom behaviour that no document states exactly is marked "assumed" where it is emulated.
"""

from __future__ import annotations

import asyncio
import base64
import calendar
import copy
import hashlib
import hmac
import itertools
import json
import re
import secrets
import time
from collections.abc import Awaitable, Callable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, unquote
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import httpx

from ltipro.providers.zoom.client import ZOOM_API_BASE_URL, ZOOM_OAUTH_TOKEN_URL
from ltipro.testing.asgi import read_request, send_response
from ltipro.testing.zoom_openapi import SchemaViolation, ZoomApiChecker

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

# The credentials of the double's default Server-to-Server OAuth app.
ACCOUNT_ID = "acct-test-1"
CLIENT_ID = "client-test-1"
CLIENT_SECRET = "secret-test-1"

DAILY_LIMIT_MESSAGE = (
    "You have exceeded the daily rate limit ({limit}) of Meeting Create/Update API requests "
    "permitted for this particular user. You may resume these requests at GMT 00:00:00."
)
PER_SECOND_MESSAGE = (
    "You have reached the maximum per-second rate limit for this API. Try again later."
)
RECORDING_FILE_TYPES = (
    ("MP4", "MP4", "shared_screen_with_speaker_view"),
    ("M4A", "M4A", "audio_only"),
)


def _now_utc(clock: Callable[[], float]) -> datetime:
    return datetime.fromtimestamp(clock(), UTC)


def _zoom_time(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _zone(name: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def _uuid() -> str:
    """A meeting-instance UUID as Zoom makes them: 16 random bytes in base64."""
    return base64.b64encode(secrets.token_bytes(16)).decode()


def _user_id() -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(16)).decode().rstrip("=")


@dataclass
class DoubleUser:
    id: str
    email: str
    type: int
    status: str
    first_name: str = ""
    last_name: str = ""
    display_name: str = ""
    timezone: str = "UTC"
    pmi: int = 0
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    group_ids: list[str] = field(default_factory=list)
    login_types: list[int] = field(default_factory=lambda: [100])  # 100 email, 101 SSO


@dataclass
class DoubleMeeting:
    id: int
    uuid: str
    host_id: str
    host_email: str
    topic: str
    type: int
    start_time: datetime
    duration: int
    timezone: str
    agenda: str
    password: str
    settings: dict[str, Any]
    recurrence: dict[str, Any] | None
    tracking_fields: list[dict[str, Any]]
    created_at: datetime
    zak: str
    deleted_occurrences: set[str] = field(default_factory=set)
    occurrence_changes: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass
class HeldInstance:
    """One held instance of a meeting, with its report and (maybe) cloud recording."""

    uuid: str
    meeting_id: int
    host_id: str
    topic: str
    start_time: datetime
    end_time: datetime
    participants: list[dict[str, Any]] = field(default_factory=list)
    recording_files: list[dict[str, Any]] | None = None
    recording_password: str = ""

    @property
    def duration(self) -> int:
        return max(1, int((self.end_time - self.start_time).total_seconds() // 60))


@dataclass
class Fault:
    """An answer to give instead of the real one, ``times`` times.

    ``operation`` limits it to one operationId (``meetingCreate``...) or ``"token"`` for
    the token endpoint; ``timeout`` raises ``httpx.ReadTimeout`` out of the app, which
    ``httpx.ASGITransport`` passes to the client as if the network had timed out.
    """

    status: int = 500
    code: int | None = None
    message: str = ""
    headers: Mapping[str, str] = field(default_factory=dict)
    operation: str | None = None
    times: int = 1
    timeout: bool = False
    body: bytes | None = None


@dataclass(frozen=True)
class RecordedRequest:
    """A request as the double saw it (``raw_path`` still percent-encoded) and its answer."""

    method: str
    host: str
    raw_path: str
    query: tuple[tuple[str, str], ...]
    headers: Mapping[str, str]
    body: bytes
    operation_id: str | None
    status: int
    response: bytes


class ZoomDouble:
    """The Zoom API and token endpoint as one ASGI app (see the module docstring)."""

    def __init__(
        self,
        *,
        account_id: str = ACCOUNT_ID,
        client_id: str = CLIENT_ID,
        client_secret: str = CLIENT_SECRET,
        api_base_url: str = ZOOM_API_BASE_URL,
        oauth_token_url: str = ZOOM_OAUTH_TOKEN_URL,
        token_lifetime: int = 3600,
        clock: Callable[[], float] = time.time,
        latency: float = 0.0,
        daily_meeting_limit: int = 100,
        daily_limit_headers: bool = True,
        on_prem_allowed: bool = False,
        checker: ZoomApiChecker | None = None,
    ) -> None:
        api = httpx.URL(api_base_url)
        oauth = httpx.URL(oauth_token_url)
        self.api_host = api.host
        self.api_prefix = api.path.rstrip("/")
        self.oauth_host = oauth.host
        self.oauth_path = oauth.path
        self.web_host = oauth.host  # join and start links live on the web host
        self.account_id = account_id
        self.apps: dict[str, tuple[str, str]] = {account_id: (client_id, client_secret)}
        self.token_lifetime = token_lifetime
        self.clock = clock
        self.latency = latency
        self.daily_meeting_limit = daily_meeting_limit
        self.daily_limit_headers = daily_limit_headers
        self.on_prem_allowed = on_prem_allowed
        self.checker = checker or _default_checker()
        # state
        self.users: dict[str, DoubleUser] = {}
        self.external_emails: set[str] = set()
        self.meetings: dict[int, DoubleMeeting] = {}
        self.deleted_meetings: dict[int, DoubleMeeting] = {}
        self.instances: list[HeldInstance] = []
        self.groups: dict[str, str] = {}  # id -> name
        self.managed_domains: dict[str, str] = {}  # associated domain -> status
        self.tracking_fields: list[dict[str, Any]] = []
        self.tokens: dict[str, tuple[str, float]] = {}  # token -> (account id, expires at)
        self.faults: list[Fault] = []
        self.requests: list[RecordedRequest] = []
        self.violations: list[str] = []
        self.token_requests = 0
        self._meeting_numbers = itertools.count(81_000_000_001)
        self._daily: dict[tuple[str, date], int] = {}
        self._page_tokens: dict[str, int] = {}

    # ------------------------------------------------------------------ test set-up

    def add_app(self, account_id: str, client_id: str, client_secret: str) -> None:
        """Another account's Server-to-Server OAuth app that may ask for tokens."""
        self.apps[account_id] = (client_id, client_secret)

    def add_user(
        self,
        email: str,
        *,
        type: int = 2,
        status: str = "active",
        first_name: str = "",
        last_name: str = "",
        timezone: str = "UTC",
        sso: bool = False,
    ) -> DoubleUser:
        """A user of the account (type 1 Basic, 2 Licensed; 3 On-prem if allowed);
        ``sso`` makes them a single sign-on user (login type 101)."""
        user = DoubleUser(
            id=_user_id(),
            email=email,
            type=type,
            status=status,
            first_name=first_name,
            last_name=last_name,
            display_name=f"{first_name} {last_name}".strip(),
            timezone=timezone,
            login_types=[101] if sso else [100],
            pmi=int("9" + "".join(secrets.choice("0123456789") for _ in range(9))),
            created_at=_now_utc(self.clock),
        )
        self.users[user.id] = user
        return user

    def add_managed_domain(self, domain: str, status: str = "verified") -> None:
        """An associated (managed) domain of the account: ``autoCreate`` adds its users."""
        self.managed_domains[domain.lower()] = status

    def add_external_user(self, email: str) -> None:
        """An email that an active user of another Zoom account holds (create: 1009)."""
        self.external_emails.add(email.lower())

    def add_group(self, name: str) -> str:
        group_id = _user_id()
        self.groups[group_id] = name
        return group_id

    def add_tracking_field(
        self,
        name: str,
        *,
        required: bool = False,
        visible: bool = True,
        recommended_values: Sequence[str] = (),
    ) -> str:
        field_id = _user_id()[:13]
        self.tracking_fields.append(
            {
                "id": field_id,
                "field": name,
                "required": required,
                "visible": visible,
                "recommended_values": list(recommended_values),
            }
        )
        return field_id

    def add_meeting(
        self,
        host: DoubleUser,
        *,
        topic: str = "Zoom Meeting",
        start_time: datetime | None = None,
        duration: int = 60,
        timezone: str | None = None,
    ) -> DoubleMeeting:
        """A scheduled meeting put straight into the state (no daily limit, no checks)."""
        meeting = self._new_meeting(host)
        meeting.topic = topic
        meeting.duration = duration
        if start_time is not None:
            meeting.start_time = start_time.astimezone(UTC)
        if timezone is not None:
            meeting.timezone = timezone
        self.meetings[meeting.id] = meeting
        return meeting

    def _new_meeting(self, host: DoubleUser) -> DoubleMeeting:
        now = _now_utc(self.clock).replace(microsecond=0)
        return DoubleMeeting(
            id=next(self._meeting_numbers),
            uuid=_uuid(),
            host_id=host.id,
            host_email=host.email,
            topic="Zoom Meeting",
            type=2,
            start_time=now,
            duration=60,
            timezone=host.timezone,
            agenda="",
            password=secrets.token_urlsafe(6)[:8],
            settings={
                "host_video": False,
                "participant_video": False,
                "join_before_host": False,
                "mute_upon_entry": False,
                "waiting_room": True,
                "approval_type": 2,
                "audio": "voip",
                "auto_recording": "none",
                "alternative_hosts": "",
                "alternative_hosts_email_notification": True,
                "meeting_authentication": False,
            },
            recurrence=None,
            tracking_fields=[],
            created_at=now,
            zak=secrets.token_urlsafe(24),
        )

    def hold_meeting(
        self,
        meeting_id: int,
        *,
        uuid: str | None = None,
        start_time: datetime | None = None,
        minutes: int = 50,
        participants: Sequence[Mapping[str, Any]] = (),
        recorded: bool = True,
    ) -> HeldInstance:
        """Record that an instance of a meeting was held (it may since have been deleted).

        ``participants`` are ``{"name", "user_email", "join_time", "leave_time"}``
        (datetimes) and become the participants report; ``recorded`` adds a cloud
        recording with a video and an audio file. ``uuid`` may be given to test UUIDs
        that begin with ``/`` or contain ``//``.
        """
        meeting = self.meetings.get(meeting_id) or self.deleted_meetings.get(meeting_id)
        if meeting is None:
            raise KeyError(f"no meeting {meeting_id}")
        begin = start_time or meeting.start_time
        end = begin + timedelta(minutes=minutes)
        instance = HeldInstance(
            uuid=uuid or _uuid(),
            meeting_id=meeting_id,
            host_id=meeting.host_id,
            topic=meeting.topic,
            start_time=begin,
            end_time=end,
            recording_password=secrets.token_urlsafe(6),
        )
        for person in participants:
            joined = person.get("join_time") or begin
            left = person.get("leave_time") or end
            instance.participants.append(
                {
                    "id": person.get("id", _user_id()),
                    "user_id": str(person.get("user_id", secrets.randbelow(10**8))),
                    "name": person.get("name", ""),
                    "user_email": person.get("user_email", ""),
                    "join_time": _zoom_time(joined),
                    "leave_time": _zoom_time(left),
                    "duration": int((left - joined).total_seconds()),
                    "status": "in_meeting",
                }
            )
        if recorded:
            instance.recording_files = []
            for file_type, extension, recording_type in RECORDING_FILE_TYPES:
                file_id = secrets.token_hex(16)
                instance.recording_files.append(
                    {
                        "id": file_id,
                        "meeting_id": instance.uuid,
                        "recording_start": _zoom_time(begin),
                        "recording_end": _zoom_time(end),
                        "file_type": file_type,
                        "file_extension": extension,
                        "file_size": 1_000_000 + secrets.randbelow(10**7),
                        "play_url": f"https://{self.web_host}/rec/play/{file_id}",
                        "download_url": f"https://{self.web_host}/rec/download/{file_id}",
                        "status": "completed",
                        "recording_type": recording_type,
                    }
                )
        self.instances.append(instance)
        return instance

    def expire_tokens(self) -> None:
        """Make every issued access token expired (the next API call answers code 124)."""
        for token, (account, _) in list(self.tokens.items()):
            self.tokens[token] = (account, self.clock() - 1)

    def fail_next(
        self,
        status: int = 503,
        *,
        code: int | None = None,
        message: str = "",
        headers: Mapping[str, str] | None = None,
        operation: str | None = None,
        times: int = 1,
        timeout: bool = False,
        body: bytes | None = None,
    ) -> None:
        """Answer the next matching request(s) with this error instead."""
        self.faults.append(
            Fault(
                status=status,
                code=code,
                message=message,
                headers=dict(headers or {}),
                operation=operation,
                times=times,
                timeout=timeout,
                body=body,
            )
        )

    def rate_limit_next(
        self, *, retry_after: str | None = None, operation: str | None = None, times: int = 1
    ) -> None:
        """A per-second 429 for the next matching request(s), ``Retry-After`` if given."""
        headers = {"X-RateLimit-Category": "Light", "X-RateLimit-Type": "QPS"}
        if retry_after is not None:
            headers["Retry-After"] = retry_after
        self.fail_next(
            429,
            code=429,
            message=PER_SECOND_MESSAGE,
            headers=headers,
            operation=operation,
            times=times,
        )

    def requests_for(self, operation_id: str) -> list[RecordedRequest]:
        return [r for r in self.requests if r.operation_id == operation_id]

    def user_by_email(self, email: str) -> DoubleUser | None:
        for user in self.users.values():
            if user.email.lower() == email.lower():
                return user
        return None

    # ------------------------------------------------------------------ webhooks

    def recording_completed_event(self, instance: HeldInstance) -> dict[str, Any]:
        """The ``recording.completed`` body Zoom would send for a held instance."""
        return {
            "event": "recording.completed",
            "event_ts": int(self.clock() * 1000),
            "payload": {
                "account_id": self.account_id,
                "object": self._recording_json(instance),
            },
            "download_token": secrets.token_urlsafe(32),
        }

    def meeting_ended_event(self, instance: HeldInstance) -> dict[str, Any]:
        """The ``meeting.ended`` body Zoom would send (its ``id`` is a string there)."""
        meeting = (
            self.meetings.get(instance.meeting_id) or self.deleted_meetings[instance.meeting_id]
        )
        return {
            "event": "meeting.ended",
            "event_ts": int(self.clock() * 1000),
            "payload": {
                "account_id": self.account_id,
                "object": {
                    "id": str(instance.meeting_id),
                    "uuid": instance.uuid,
                    "host_id": instance.host_id,
                    "topic": instance.topic,
                    "type": meeting.type,
                    "start_time": _zoom_time(instance.start_time),
                    "end_time": _zoom_time(instance.end_time),
                    "timezone": meeting.timezone,
                    "duration": meeting.duration,
                },
            },
        }

    # ------------------------------------------------------------------ ASGI

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = await read_request(scope, receive, send)
        if request is None:
            return
        headers, body = request
        host = headers.get("host", "").split(":")[0].lower()
        raw_path = scope.get("raw_path") or scope["path"].encode()
        raw = raw_path.decode("latin-1")
        query = tuple(
            parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
        )
        if self.latency:
            await asyncio.sleep(self.latency)
        method = scope["method"]
        operation_id: str | None = None
        if host == self.oauth_host and raw == self.oauth_path:
            operation_id = "token"
            status, payload, extra = self._token_endpoint(method, headers, query, body)
        elif host == self.api_host and (
            raw == self.api_prefix or raw.startswith(self.api_prefix + "/")
        ):
            status, payload, extra, operation_id = self._api(
                method, raw[len(self.api_prefix) :], query, headers, body
            )
        else:
            self.violations.append(f"{method} https://{host}{raw}: not a host and path Zoom serves")
            status, payload, extra = 404, b"Not Found", {"content-type": "text/plain"}
        self.requests.append(
            RecordedRequest(method, host, raw, query, headers, body, operation_id, status, payload)
        )
        await send_response(send, status, payload, extra)

    # ------------------------------------------------------------------ token endpoint

    def _token_endpoint(
        self, method: str, headers: Mapping[str, str], query: Sequence[tuple[str, str]], body: bytes
    ) -> tuple[int, bytes, dict[str, str]]:
        self.token_requests += 1
        fault = self._take_fault("token")
        if fault is not None:
            return self._fault_answer(fault)
        if method != "POST":
            return _oauth_error(405, "Method not allowed", "invalid_request")
        params = dict(query)
        if body and headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
            params.update(parse_qsl(body.decode()))
        if params.get("grant_type") != "account_credentials":
            return _oauth_error(400, "unsupported grant type", "unsupported_grant_type")
        client_id, client_secret = _basic_auth(headers.get("authorization", ""))
        account_id = params.get("account_id", "")
        known = [acct for acct, app in self.apps.items() if app == (client_id, client_secret)]
        if not known:
            return _oauth_error(400, "Invalid client_id or client_secret", "invalid_client")
        if account_id not in known:
            # Assumed: Zoom's wording for an account id the app does not belong to.
            return _oauth_error(400, "Invalid account_id", "invalid_request")
        token = "eyJ" + secrets.token_urlsafe(48)
        self.tokens[token] = (account_id, self.clock() + self.token_lifetime)
        answer = {
            "access_token": token,
            "token_type": "bearer",
            "expires_in": self.token_lifetime,
            "scope": "meeting:read:admin meeting:write:admin user:read:admin user:write:admin "
            "recording:read:admin recording:write:admin report:read:admin group:write:admin "
            "tracking_fields:read:admin",
            "api_url": f"https://{self.api_host}",
        }
        return 200, json.dumps(answer).encode(), {"content-type": "application/json"}

    # ------------------------------------------------------------------ API dispatch

    def _api(
        self,
        method: str,
        raw_path: str,
        query: Sequence[tuple[str, str]],
        headers: Mapping[str, str],
        body: bytes,
    ) -> tuple[int, bytes, dict[str, str], str | None]:
        # Zoom decodes a path twice: once in front, where runs of "/" then collapse into
        # one (so a single-encoded UUID that begins with "/" or holds "//" loses a
        # character and names another instance), and once more per parameter (so
        # "%252F" arrives as "/"). This is why its reference asks for double encoding.
        front = re.sub("/+", "/", unquote(raw_path)).strip("/")
        segments = [unquote(part) for part in front.split("/")]
        auth = headers.get("authorization", "")
        token = auth[7:].strip() if auth.lower().startswith("bearer ") else ""
        issued = self.tokens.get(token)
        if issued is None:
            return (*_error(401, 124, "Invalid access token."), None)
        if issued[1] <= self.clock():
            return (*_error(401, 124, "Access token is expired."), None)
        checked = self.checker.check_request(
            method, segments, query, body, headers.get("content-type")
        )
        operation = checked.operation
        if operation is None:
            self.violations.extend(checked.violations)
            return (*_error(404, 404, "No API route matches this path."), None)
        fault = self._take_fault(operation.operation_id)
        if fault is not None:
            answer = self._fault_answer(fault)
            if not fault.timeout and fault.body is None:
                self._check_response(operation, *answer)
            return (*answer, operation.operation_id)
        if checked.violations:
            self.violations.extend(checked.violations)
            errors = [
                {
                    "field": v.split(": ", 1)[0].rsplit(" ", 1)[-1].removeprefix("body."),
                    "message": v.split(": ", 1)[-1],
                }
                for v in checked.violations
            ]
            answer = _error(400, 300, "Validation Failed.", errors=errors)
            self._check_response(operation, *answer)
            return (*answer, operation.operation_id)
        handler = getattr(self, f"_op_{operation.operation_id}")
        status, payload = handler(checked.path_params, checked.query, checked.body)
        if status == 204:
            answer = (204, b"", {})
        elif isinstance(payload, bytes):
            answer = (status, payload, {"content-type": "application/json"})
        else:
            answer = (
                status,
                json.dumps(payload).encode(),
                {"content-type": "application/json;charset=UTF-8"},
            )
        # Only the per-host daily limit answers 429 from a handler.
        if status == 429 and self.daily_limit_headers:
            midnight = datetime.combine(
                _now_utc(self.clock).date() + timedelta(days=1), datetime.min.time(), UTC
            )
            answer[2].update(
                {
                    "X-RateLimit-Category": "Medium",
                    "X-RateLimit-Type": "Daily-limit",
                    "Retry-After": _zoom_time(midnight),
                }
            )
        self._check_response(operation, *answer)
        return (*answer, operation.operation_id)

    def _check_response(
        self, operation: Any, status: int, payload: bytes, headers: Mapping[str, str]
    ) -> None:
        problems = self.checker.check_response(
            operation, status, payload, headers.get("content-type")
        )
        if problems:
            raise SchemaViolation(
                "the Zoom double answered outside Zoom's document: " + "; ".join(problems)
            )

    def _take_fault(self, operation_id: str) -> Fault | None:
        for fault in self.faults:
            if fault.operation is None and operation_id == "token":
                continue  # API faults do not hit the token endpoint unless asked
            if fault.operation in (None, operation_id):
                fault.times -= 1
                if fault.times <= 0:
                    self.faults.remove(fault)
                return fault
        return None

    def _fault_answer(self, fault: Fault) -> tuple[int, bytes, dict[str, str]]:
        if fault.timeout:
            raise httpx.ReadTimeout("the Zoom double was told to time out")
        headers = dict(fault.headers)
        if fault.body is not None:
            return fault.status, fault.body, headers
        if fault.status >= 500 and fault.code is None:
            headers.setdefault("content-type", "text/html")
            return fault.status, b"<html><body>Service Unavailable</body></html>", headers
        status, payload, base = _error(
            fault.status, fault.code or fault.status, fault.message or "Error"
        )
        return status, payload, {**base, **headers}

    # ------------------------------------------------------------------ lookups

    def _user(self, ref: str) -> DoubleUser | None:
        return self.users.get(ref) or self.user_by_email(ref)

    def _meeting(self, ref: Any) -> DoubleMeeting | None:
        return self.meetings.get(ref) if isinstance(ref, int) else None

    def _instance(self, ref: str) -> HeldInstance | None:
        if ref.isdigit():  # a meeting number: its latest instance
            held = [i for i in self.instances if i.meeting_id == int(ref)]
            return max(held, key=lambda i: i.start_time) if held else None
        return next((i for i in self.instances if i.uuid == ref), None)

    def _count_daily(self, host: DoubleUser) -> bool:
        """Count one create/update for the host; False once over the daily limit."""
        key = (host.id, _now_utc(self.clock).date())
        self._daily[key] = self._daily.get(key, 0) + 1
        return self._daily[key] <= self.daily_meeting_limit

    def _daily_limit_error(self) -> tuple[int, dict[str, Any]]:
        return 429, {
            "code": 429,
            "message": DAILY_LIMIT_MESSAGE.format(limit=self.daily_meeting_limit),
        }

    def _page(self, items: list[Any], query: Mapping[str, Any]) -> tuple[list[Any], str, int]:
        size = int(query.get("page_size", 30))
        start = 0
        token = query.get("next_page_token")
        if token:
            start = self._page_tokens.pop(token, len(items))
        chunk = items[start : start + size]
        next_token = ""
        if start + size < len(items):
            next_token = secrets.token_urlsafe(24)
            self._page_tokens[next_token] = start + size
        return chunk, next_token, size

    # ------------------------------------------------------------------ users

    def _user_json(self, user: DoubleUser) -> dict[str, Any]:
        return {
            "id": user.id,
            "email": user.email,
            "first_name": user.first_name,
            "last_name": user.last_name,
            "display_name": user.display_name,
            "type": user.type,
            "status": user.status,
            "account_id": self.account_id,
            "timezone": user.timezone,
            "pmi": user.pmi,
            "use_pmi": False,
            "role_name": "Member",
            "language": "en-US",
            "created_at": _zoom_time(user.created_at),
            "user_created_at": _zoom_time(user.created_at),
            "group_ids": list(user.group_ids),
            "personal_meeting_url": f"https://{self.web_host}/j/{user.pmi}",
            "verified": 1,
            "login_types": list(user.login_types),
        }

    def _op_user(
        self, path: Mapping[str, Any], query: Mapping[str, Any], body: Any
    ) -> tuple[int, Any]:
        user = self._user(path["userId"])
        if user is None:
            return _fail(404, 1001, f"User does not exist: {path['userId']}.")
        return 200, self._user_json(user)

    def _op_userCreate(
        self, path: Mapping[str, Any], query: Mapping[str, Any], body: Any
    ) -> tuple[int, Any]:
        info = body["user_info"] if "user_info" in body else None
        if info is None:
            return _fail(400, 300, "Validation Failed.")
        email = info["email"]
        if self.user_by_email(email) is not None:
            return _fail(409, 1005, f'Email "{email}" has already been used.')
        if email.lower() in self.external_emails:
            return _fail(400, 1009, f"The user {email} already holds an active account.")
        if info["type"] == 3 and not self.on_prem_allowed:
            return _fail(400, 300, "Your account can't set user type as On-prem.")
        if info["type"] == 99 and body["action"] != "ssoCreate":
            return _fail(
                400, 300, "Only ssoCreate can create a user of type None."
            )  # assumed wording
        user = self.add_user(
            email,
            type=info["type"],
            status="pending" if body["action"] == "create" else "active",
            first_name=info.get("first_name", ""),
            last_name=info.get("last_name", ""),
        )
        return 201, {
            "id": user.id,
            "email": user.email,
            "first_name": user.first_name,
            "last_name": user.last_name,
            "type": user.type,
        }

    def _op_userUpdate(
        self, path: Mapping[str, Any], query: Mapping[str, Any], body: Any
    ) -> tuple[int, Any]:
        user = self._user(path["userId"])
        if user is None:
            return _fail(404, 1001, f"User does not exist: {path['userId']}")
        if body.get("type") == 3 and not self.on_prem_allowed:
            return _fail(400, 300, "Your account can't set user type as On-prem.")
        for key in ("type", "first_name", "last_name", "display_name", "timezone"):
            if key in body:
                setattr(user, key, body[key])
        return 204, None

    def _op_userToken(
        self, path: Mapping[str, Any], query: Mapping[str, Any], body: Any
    ) -> tuple[int, Any]:
        user = self._user(path["userId"])
        if user is None:
            return _fail(404, 1001, f"User does not exist: {path['userId']}")
        prefix = "zak-" if query.get("type") == "zak" else "tok-"
        return 200, {"token": prefix + user.id + "-" + secrets.token_urlsafe(24)}

    def _op_groupMembersCreate(
        self, path: Mapping[str, Any], query: Mapping[str, Any], body: Any
    ) -> tuple[int, Any]:
        group_id = path["groupId"]
        if group_id not in self.groups:
            return _fail(404, 4130, f"A group with this {group_id} does not exist.")
        added: list[str] = []
        for member in body.get("members", []):
            # An id wins over an email, as Zoom's reference says; unknown users are skipped
            # (assumed: Zoom's answer for them is not documented).
            user = self.users.get(member.get("id", "")) or self.user_by_email(
                member.get("email", "")
            )
            if user is not None:
                if group_id not in user.group_ids:
                    user.group_ids.append(group_id)
                added.append(user.id)
        return 201, {"ids": ",".join(added), "added_at": _zoom_time(_now_utc(self.clock))}

    def _op_accountManagedDomain(
        self, path: Mapping[str, Any], query: Mapping[str, Any], body: Any
    ) -> tuple[int, Any]:
        if path["accountId"] not in ("me", self.account_id):
            return _fail(404, 2001, f"Account does not exist: {path['accountId']}.")
        domains = [{"domain": d, "status": st} for d, st in sorted(self.managed_domains.items())]
        return 200, {"total_records": len(domains), "domains": domains}

    def _op_trackingfieldList(
        self, path: Mapping[str, Any], query: Mapping[str, Any], body: Any
    ) -> tuple[int, Any]:
        return 200, {
            "total_records": len(self.tracking_fields),
            "tracking_fields": self.tracking_fields,
        }

    # ------------------------------------------------------------------ meetings

    def _occurrences(self, meeting: DoubleMeeting) -> list[tuple[str, datetime]]:
        """(occurrence_id, start) of a recurring meeting, at most 50 as Zoom shows."""
        rule = meeting.recurrence
        if meeting.type != 8 or not rule:
            return []
        zone = _zone(meeting.timezone)
        first = meeting.start_time.astimezone(zone)
        interval = max(1, int(rule.get("repeat_interval", 1)))
        limit = min(int(rule.get("end_times", 1)) if "end_date_time" not in rule else 50, 50)
        until = (
            datetime.fromisoformat(rule["end_date_time"].replace("Z", "+00:00"))
            if "end_date_time" in rule
            else None
        )
        starts: list[datetime] = []

        def at(day: date) -> datetime:
            return datetime.combine(day, first.timetz().replace(tzinfo=None), zone)

        def add(candidate: datetime) -> bool:
            if candidate < first:
                return True
            if (until and candidate > until) or len(starts) >= limit:
                return False
            starts.append(candidate)
            return True

        if rule["type"] == 1:
            for step in itertools.count():
                if not add(at(first.date() + timedelta(days=step * interval))):
                    break
        elif rule["type"] == 2:
            days = sorted({int(d) for d in str(rule.get("weekly_days", "1")).split(",")})
            sunday = first.date() - timedelta(days=(first.isoweekday() % 7))
            for week in itertools.count():
                base = sunday + timedelta(weeks=week * interval)
                if not all(add(at(base + timedelta(days=d - 1))) for d in days):
                    break
        else:
            for step in itertools.count():
                month_index = first.month - 1 + step * interval
                year, month = first.year + month_index // 12, month_index % 12 + 1
                day = self._monthly_day(rule, year, month)
                if day is None:
                    if step > 600:
                        break
                    continue
                if not add(at(date(year, month, day))):
                    break
        return [(str(int(start.timestamp() * 1000)), start.astimezone(UTC)) for start in starts]

    @staticmethod
    def _monthly_day(rule: Mapping[str, Any], year: int, month: int) -> int | None:
        last = calendar.monthrange(year, month)[1]
        if "monthly_week" in rule and "monthly_week_day" in rule:
            weekday = (int(rule["monthly_week_day"]) - 2) % 7  # Zoom 1=Sunday -> Python 6
            days = [d for d in range(1, last + 1) if date(year, month, d).weekday() == weekday]
            week = int(rule["monthly_week"])
            return days[-1] if week == -1 else (days[week - 1] if week <= len(days) else None)
        day = int(rule.get("monthly_day", 1))
        return day if day <= last else None

    def _settings_json(
        self, meeting: DoubleMeeting, operation_id: str, status: str
    ) -> dict[str, Any]:
        schema = self.checker.operation(operation_id).responses[status]["content"][
            "application/json"
        ]["schema"]
        allowed = schema["properties"]["settings"]["properties"]
        return {k: v for k, v in meeting.settings.items() if k in allowed}

    def _meeting_json(
        self,
        meeting: DoubleMeeting,
        operation_id: str,
        status: str,
        occurrence_id: str | None = None,
    ) -> dict[str, Any]:
        start = meeting.start_time
        duration = meeting.duration
        agenda = meeting.agenda
        occurrences = [
            (oid, when)
            for oid, when in self._occurrences(meeting)
            if oid not in meeting.deleted_occurrences
        ]
        if occurrence_id is not None:
            for oid, when in occurrences:
                if oid == occurrence_id:
                    start = when
            changes = meeting.occurrence_changes.get(occurrence_id, {})
            start = changes.get("start_time", start)
            duration = changes.get("duration", duration)
            agenda = changes.get("agenda", agenda)
        data: dict[str, Any] = {
            "uuid": meeting.uuid,
            "id": meeting.id,
            "host_id": meeting.host_id,
            "host_email": meeting.host_email,
            "topic": meeting.topic,
            "type": meeting.type,
            "status": "waiting",
            "start_time": _zoom_time(start),
            "duration": duration,
            "timezone": meeting.timezone,
            "agenda": agenda,
            "created_at": _zoom_time(meeting.created_at),
            "start_url": f"https://{self.web_host}/s/{meeting.id}?zak={meeting.zak}",
            "join_url": f"https://{self.web_host}/j/{meeting.id}?pwd={meeting.password}",
            "password": meeting.password,
            "h323_password": meeting.password,
            "pre_schedule": False,
            "settings": self._settings_json(meeting, operation_id, status),
        }
        if meeting.tracking_fields:
            data["tracking_fields"] = [dict(t, visible=True) for t in meeting.tracking_fields]
        if meeting.recurrence:
            data["recurrence"] = meeting.recurrence
        if occurrences:
            data["occurrences"] = [
                {
                    "occurrence_id": oid,
                    "start_time": _zoom_time(
                        meeting.occurrence_changes.get(oid, {}).get("start_time", when)
                    ),
                    "duration": meeting.occurrence_changes.get(oid, {}).get(
                        "duration", meeting.duration
                    ),
                    "status": "available",
                }
                for oid, when in occurrences
            ]
        return data

    def _apply(self, meeting: DoubleMeeting, body: Mapping[str, Any]) -> tuple[int, Any] | None:
        """Apply a create/update body to a meeting; an error answer when Zoom would refuse."""
        if "start_time" in body:
            meeting.start_time = _parse_start(
                body["start_time"], body.get("timezone", meeting.timezone)
            )
        for key in ("topic", "duration", "timezone", "agenda", "password", "type"):
            if key in body:
                setattr(meeting, key, body[key])
        if "recurrence" in body:
            meeting.recurrence = dict(body["recurrence"])
        if "tracking_fields" in body:
            meeting.tracking_fields = [
                {"field": t["field"], "value": t.get("value", "")} for t in body["tracking_fields"]
            ]
        if "settings" in body:
            meeting.settings.update(body["settings"])
        if meeting.type == 8:
            rule = meeting.recurrence
            if not rule:
                return _fail(
                    400,
                    300,
                    "Validation Failed.",
                    errors=[
                        {"field": "recurrence", "message": "Required for a recurring meeting."}
                    ],
                )
            if "end_times" in rule and "end_date_time" in rule:
                return _fail(
                    400,
                    300,
                    "Validation Failed.",
                    errors=[
                        {
                            "field": "recurrence.end_times",
                            "message": "Cannot be used with end_date_time.",
                        }
                    ],
                )
            if rule["type"] == 2 and not rule.get("weekly_days"):
                rule["weekly_days"] = str(
                    meeting.start_time.astimezone(_zone(meeting.timezone)).isoweekday() % 7 + 1
                )
        return None

    def _op_meetingCreate(
        self, path: Mapping[str, Any], query: Mapping[str, Any], body: Any
    ) -> tuple[int, Any]:
        host = self._user(path["userId"])
        if host is None:
            return _fail(
                404, 1001, f"User {path['userId']} not exist or not belong to this account."
            )
        if not self._count_daily(host):
            return self._daily_limit_error()
        meeting = self._new_meeting(host)
        refused = self._apply(meeting, body or {})
        if refused:
            return refused
        self.meetings[meeting.id] = meeting
        return 201, self._meeting_json(meeting, "meetingCreate", "201")

    def _op_meeting(
        self, path: Mapping[str, Any], query: Mapping[str, Any], body: Any
    ) -> tuple[int, Any]:
        meeting = self._meeting(path["meetingId"])
        if meeting is None:
            return _fail(404, 3001, f"Meeting {path['meetingId']} is not found or has expired.")
        occurrence = query.get("occurrence_id")
        if occurrence is not None and occurrence not in {
            oid for oid, _ in self._occurrences(meeting)
        }:
            return _fail(404, 3001, f"Meeting {path['meetingId']} is not found or has expired.")
        return 200, self._meeting_json(meeting, "meeting", "200", occurrence)

    def _op_meetingUpdate(
        self, path: Mapping[str, Any], query: Mapping[str, Any], body: Any
    ) -> tuple[int, Any]:
        meeting = self._meeting(path["meetingId"])
        if meeting is None:
            return _fail(
                404, 3001, f"A meeting with this {path['meetingId']} is not found or has expired."
            )
        if not self._count_daily(self.users[meeting.host_id]):
            return self._daily_limit_error()
        occurrence = query.get("occurrence_id")
        if occurrence is not None:
            if occurrence not in {oid for oid, _ in self._occurrences(meeting)}:
                return _fail(400, 3000, "Cannot access meeting information.")
            changes = meeting.occurrence_changes.setdefault(occurrence, {})
            if "start_time" in body:
                changes["start_time"] = _parse_start(
                    body["start_time"], body.get("timezone", meeting.timezone)
                )
            for key in ("duration", "agenda"):
                if key in body:
                    changes[key] = body[key]
            return 204, None
        # Zoom validates before it saves: change a copy, keep it only when valid.
        candidate = copy.deepcopy(meeting)
        refused = self._apply(candidate, body or {})
        if refused:
            return refused
        self.meetings[meeting.id] = candidate
        return 204, None

    def _op_meetingDelete(
        self, path: Mapping[str, Any], query: Mapping[str, Any], body: Any
    ) -> tuple[int, Any]:
        meeting = self._meeting(path["meetingId"])
        if meeting is None:
            return _fail(
                404, 3001, f"Meeting with this {path['meetingId']} is not found or has expired."
            )
        occurrence = query.get("occurrence_id")
        if occurrence is not None:
            if occurrence not in {oid for oid, _ in self._occurrences(meeting)}:
                return _fail(400, 3000, "Invalid occurrence_id.")
            meeting.deleted_occurrences.add(occurrence)
            return 204, None
        self.deleted_meetings[meeting.id] = self.meetings.pop(meeting.id)
        return 204, None

    def _op_meetings(
        self, path: Mapping[str, Any], query: Mapping[str, Any], body: Any
    ) -> tuple[int, Any]:
        host = self._user(path["userId"])
        if host is None:
            return _fail(
                404, 1001, f"User {path['userId']} not exist or not belong to this account."
            )
        now = _now_utc(self.clock)
        kind = query.get("type", "scheduled")
        held = {i.meeting_id for i in self.instances}
        chosen: list[DoubleMeeting] = []
        for meeting in sorted(self.meetings.values(), key=lambda m: m.start_time):
            if meeting.host_id != host.id:
                continue
            starts = [when for _, when in self._occurrences(meeting)] or [meeting.start_time]
            ends_last = max(starts) + timedelta(minutes=meeting.duration)
            if kind in ("upcoming", "upcoming_meetings") and ends_last < now:
                continue
            if kind == "previous_meetings" and meeting.id not in held and min(starts) >= now:
                continue
            if kind == "live":
                continue  # nothing is ever in progress in the double
            chosen.append(meeting)
        page, next_token, size = self._page(chosen, query)
        items = []
        for meeting in page:
            full = self._meeting_json(meeting, "meeting", "200")
            items.append(
                {
                    key: full[key]
                    for key in (
                        "uuid",
                        "id",
                        "host_id",
                        "topic",
                        "type",
                        "start_time",
                        "duration",
                        "timezone",
                        "agenda",
                        "created_at",
                        "join_url",
                    )
                }
            )
        return 200, {
            "page_size": size,
            "total_records": len(chosen),
            "next_page_token": next_token,
            "meetings": items,
        }

    def _op_pastMeetings(
        self, path: Mapping[str, Any], query: Mapping[str, Any], body: Any
    ) -> tuple[int, Any]:
        number = path["meetingId"]
        if number not in self.meetings and number not in self.deleted_meetings:
            return _fail(404, 3001, f"Meeting {number} not found or has expired.")  # assumed code
        held = sorted(
            (i for i in self.instances if i.meeting_id == number), key=lambda i: i.start_time
        )
        return 200, {
            "meetings": [{"uuid": i.uuid, "start_time": _zoom_time(i.start_time)} for i in held]
        }

    # ------------------------------------------------------------------ recordings and reports

    def _recording_json(self, instance: HeldInstance, *, listed: bool = False) -> dict[str, Any]:
        files = instance.recording_files or []
        data = {
            "uuid": instance.uuid,
            "id": instance.meeting_id,
            "account_id": self.account_id,
            "host_id": instance.host_id,
            "topic": instance.topic,
            "type": "2",
            "start_time": _zoom_time(instance.start_time),
            "duration": instance.duration,
            "total_size": sum(int(f["file_size"]) for f in files),
            "recording_count": len(files),
            "recording_play_passcode": secrets.token_urlsafe(24),
            "recording_files": files,
        }
        if not listed:  # the per-user list has no password field
            data["password"] = instance.recording_password
        return data

    def _op_recordingGet(
        self, path: Mapping[str, Any], query: Mapping[str, Any], body: Any
    ) -> tuple[int, Any]:
        instance = self._instance(path["meetingId"])
        if instance is None or not instance.recording_files:
            return _fail(404, 3301, "There is no recording for this meeting.")
        return 200, self._recording_json(instance)

    def _op_recordingDelete(
        self, path: Mapping[str, Any], query: Mapping[str, Any], body: Any
    ) -> tuple[int, Any]:
        instance = self._instance(path["meetingId"])
        if instance is None or not instance.recording_files:
            return _fail(404, 3301, "There is no recording for this meeting.")
        instance.recording_files = None
        return 204, None

    def _op_recordingsList(
        self, path: Mapping[str, Any], query: Mapping[str, Any], body: Any
    ) -> tuple[int, Any]:
        host = self._user(path["userId"])
        if host is None:
            return _fail(
                404,
                1001,
                f"User {path['userId']} does not exist, or does not belong to this account.",
            )
        today = _now_utc(self.clock).date()
        first = date.fromisoformat(query["from"]) if "from" in query else today
        last = date.fromisoformat(query["to"]) if "to" in query else today
        found = [
            i
            for i in sorted(self.instances, key=lambda i: i.start_time, reverse=True)
            if i.host_id == host.id
            and i.recording_files
            and first <= i.start_time.astimezone(UTC).date() <= last
        ]
        page, next_token, size = self._page(found, query)
        return 200, {
            "from": first.isoformat(),
            "to": last.isoformat(),
            "page_size": size,
            "total_records": len(found),
            "next_page_token": next_token,
            "meetings": [self._recording_json(i, listed=True) for i in page],
        }

    def _op_reportMeetingParticipants(
        self, path: Mapping[str, Any], query: Mapping[str, Any], body: Any
    ) -> tuple[int, Any]:
        instance = self._instance(path["meetingId"])
        if instance is None:
            return _fail(404, 3001, f"Meeting {path['meetingId']} not found or has expired.")
        page, next_token, size = self._page(instance.participants, query)
        return 200, {
            "page_count": max(1, -(-len(instance.participants) // size)),
            "page_size": size,
            "total_records": len(instance.participants),
            "next_page_token": next_token,
            "participants": page,
        }


# ---------------------------------------------------------------------- answers and parsing


_CHECKER: list[ZoomApiChecker] = []


def _default_checker() -> ZoomApiChecker:
    # Building the checker parses and patches the document: do it once per process.
    if not _CHECKER:
        _CHECKER.append(ZoomApiChecker())
    return _CHECKER[0]


def _fail(status: int, code: int, message: str, **extra: Any) -> tuple[int, dict[str, Any]]:
    return status, {"code": code, "message": message, **extra}


def _error(status: int, code: int, message: str, **extra: Any) -> tuple[int, bytes, dict[str, str]]:
    body = json.dumps({"code": code, "message": message, **extra}).encode()
    return status, body, {"content-type": "application/json;charset=UTF-8"}


def _oauth_error(status: int, reason: str, error: str) -> tuple[int, bytes, dict[str, str]]:
    return (
        status,
        json.dumps({"reason": reason, "error": error}).encode(),
        {"content-type": "application/json"},
    )


def _basic_auth(header: str) -> tuple[str, str]:
    if not header.lower().startswith("basic "):
        return "", ""
    try:
        decoded = base64.b64decode(header[6:].strip()).decode()
    except (ValueError, UnicodeDecodeError):
        return "", ""
    client_id, _, secret = decoded.partition(":")
    return client_id, secret


def _parse_start(value: str, timezone: str | None) -> datetime:
    """A request start_time: UTC (``Z``), with an offset, or local time in ``timezone``."""
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=_zone(timezone))
    return parsed.astimezone(UTC)


def sign_webhook(
    secret: str, document: Mapping[str, Any], *, timestamp: int | None = None
) -> tuple[bytes, dict[str, str]]:
    """A webhook body and the headers Zoom would send with it, signed with ``secret``."""
    body = json.dumps(document, separators=(",", ":")).encode()
    ts = str(int(time.time()) if timestamp is None else timestamp)
    mac = hmac.new(secret.encode(), b"v0:" + ts.encode() + b":" + body, hashlib.sha256).hexdigest()
    return body, {
        "content-type": "application/json; charset=utf-8",
        "x-zm-request-timestamp": ts,
        "x-zm-signature": f"v0={mac}",
    }
