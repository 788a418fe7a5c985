"""An async client for the Zoom REST API v2, for a Server-to-Server OAuth app.

::

    settings = ZoomSettings(account_id="...", client_id="...", client_secret="...")
    async with httpx.AsyncClient() as http:
        zoom = ZoomClient(settings, http)
        host = await zoom.get_user("teacher@example.edu")
        meeting = await zoom.create_meeting(host.id, ZoomMeetingFields(topic="Week 1", ...))

What it takes care of, so callers do not:

* Access tokens (:mod:`ltipro.providers.zoom.auth`): cached per account, refreshed early
  and by one caller at a time; a 401 (code 124, "Invalid access token." or "Access token
  is expired.") refreshes the token and retries the request once.
* Rate limits: a 429 waits ``Retry-After`` when Zoom sends it (seconds, an HTTP date, or
  the ISO time Zoom's rate-limit page shows, ``2020-05-31T00:00:00Z``) and backs off
  exponentially with jitter when it does not, a bounded number of times. Daily limits are
  raised at once as :class:`ZoomDailyLimit`: only the next UTC day clears them.
* 5xx answers and timeouts are retried (bounded, with backoff) for idempotent calls only:
  a create that timed out may have happened.
* Pagination with ``next_page_token``: list calls are async iterators.
* Meeting UUIDs that begin with ``/`` or contain ``//`` are double URL-encoded in paths,
  as Zoom's reference requires for every operation taking a meeting UUID.
* Zoom for Government: set ``api_base_url`` and ``oauth_token_url`` to
  :data:`ZOOM_GOV_API_BASE_URL` and :data:`ZOOM_GOV_OAUTH_TOKEN_URL`.

Errors are the typed exceptions of :mod:`ltipro.providers.zoom.errors`.
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import random
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from urllib.parse import quote

import httpx

from ltipro.providers.zoom.auth import ZoomCredentials, ZoomTokenCache
from ltipro.providers.zoom.errors import (
    ZoomDailyLimit,
    ZoomError,
    ZoomRateLimited,
    ZoomUnavailable,
    ZoomUserNotFound,
    error_for,
)
from ltipro.providers.zoom.models import (
    CreateAction,
    MeetingListType,
    UserType,
    ZoomMeeting,
    ZoomMeetingFields,
    ZoomParticipant,
    ZoomPastInstance,
    ZoomRecording,
    ZoomTrackingField,
    ZoomUser,
)

logger = logging.getLogger("ltipro.zoom")

ZOOM_API_BASE_URL = "https://api.zoom.us/v2"
ZOOM_OAUTH_TOKEN_URL = "https://zoom.us/oauth/token"
ZOOM_GOV_API_BASE_URL = "https://api.zoomgov.com/v2"
ZOOM_GOV_OAUTH_TOKEN_URL = "https://zoomgov.com/oauth/token"

# Zoom lists at most 300 records a page (page_size maximum in its reference).
MAX_PAGE_SIZE = 300
# Group membership additions take at most 30 members a call.
MAX_GROUP_MEMBERS = 30
# Zoom's per-user recording list takes a date range of at most a month.
MAX_RECORDING_RANGE = timedelta(days=30)

Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True)
class ZoomSettings:
    """One Zoom account's API settings.

    ``max_rate_limit_retries`` bounds the waits after 429s; a ``Retry-After`` longer than
    ``max_retry_wait`` seconds is not waited for (the caller gets :class:`ZoomRateLimited`
    with ``retry_after`` set and can tell the user when to try again).
    ``max_server_error_retries`` bounds retries of idempotent calls after 5xx or timeouts.
    Backoff waits ``backoff_base * 2**(n-1)`` seconds (at most ``backoff_cap``), scaled by
    a random factor between 0.5 and 1 so that workers do not retry in step.
    """

    account_id: str
    client_id: str
    client_secret: str
    api_base_url: str = ZOOM_API_BASE_URL
    oauth_token_url: str = ZOOM_OAUTH_TOKEN_URL
    timeout: float = 15.0
    max_rate_limit_retries: int = 3
    max_server_error_retries: int = 2
    max_retry_wait: float = 60.0
    backoff_base: float = 0.5
    backoff_cap: float = 8.0
    page_size: int = MAX_PAGE_SIZE

    def __post_init__(self) -> None:
        if not 1 <= self.page_size <= MAX_PAGE_SIZE:
            raise ValueError(f"page_size must be between 1 and {MAX_PAGE_SIZE}")
        for url in (self.api_base_url, self.oauth_token_url):
            if not url.startswith(("https://", "http://")):
                raise ValueError(f"{url!r} is not an http(s) URL")

    @property
    def credentials(self) -> ZoomCredentials:
        return ZoomCredentials(
            account_id=self.account_id,
            client_id=self.client_id,
            client_secret=self.client_secret,
            oauth_token_url=self.oauth_token_url,
        )

    def __repr__(self) -> str:  # keep the secret out of logs
        return (
            f"ZoomSettings(account_id={self.account_id!r}, client_id={self.client_id!r}, "
            f"api_base_url={self.api_base_url!r}, oauth_token_url={self.oauth_token_url!r})"
        )


def encode_meeting_id(meeting: int | str) -> str:
    """A meeting id or UUID as a path segment.

    Zoom's rule (in the description of every meeting-UUID parameter of its reference): a
    UUID that begins with ``/`` or contains ``//`` must be double encoded, e.g.
    ``/ajXp112QmuoKj4854875==`` becomes ``%252FajXp112QmuoKj4854875%253D%253D``. Other
    values are encoded once.
    """
    text = str(meeting)
    once = quote(text, safe="")
    if text.startswith("/") or "//" in text:
        return quote(once, safe="")
    return once


def _segment(value: int | str) -> str:
    return quote(str(value), safe="")


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delta-seconds, an HTTP date, or an
    ISO 8601 time (the form in Zoom's rate-limit documentation). None when unreadable."""
    if not value:
        return None
    text = value.strip()
    if re.fullmatch(r"\d+(\.\d+)?", text):
        return float(text)
    when: datetime | None = None
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError):
            return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


def _next_utc_midnight(now: datetime) -> datetime:
    return datetime.combine(now.astimezone(UTC).date() + timedelta(days=1), time(0), tzinfo=UTC)


def _json(response: httpx.Response) -> Any:
    if not response.content:
        return None
    try:
        return response.json()
    except ValueError:
        return None


class ZoomClient:
    """Zoom REST API v2 calls for one account, over an ``httpx.AsyncClient`` you own.

    ``tokens`` is the token cache; pass one shared instance so that every client of the
    same account reuses its token (a private cache is made when omitted). ``sleep``,
    ``jitter`` (a number in [0, 1)) and ``now`` are injectable so that tests see the
    waits without waiting.
    """

    def __init__(
        self,
        settings: ZoomSettings,
        http: httpx.AsyncClient,
        *,
        tokens: ZoomTokenCache | None = None,
        sleep: Sleep = asyncio.sleep,
        jitter: Callable[[], float] = random.random,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.settings = settings
        self.http = http
        self.tokens = tokens or ZoomTokenCache(timeout=settings.timeout)
        self._credentials = settings.credentials
        self._sleep = sleep
        self._jitter = jitter
        self._now = now

    # ------------------------------------------------------------------ transport

    def _backoff(self, attempt: int) -> float:
        delay = min(self.settings.backoff_cap, self.settings.backoff_base * 2 ** (attempt - 1))
        return delay * (0.5 + 0.5 * self._jitter())

    async def _call(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        idempotent: bool | None = None,
    ) -> httpx.Response:
        """Send one API request with auth, retries and error mapping; a 2xx response."""
        if idempotent is None:
            idempotent = method in ("GET", "HEAD", "PUT", "DELETE")
        url = self.settings.api_base_url.rstrip("/") + path
        query = {k: v for k, v in (params or {}).items() if v is not None}
        rejected: str | None = None
        refreshed = False
        rate_limited = 0
        failed = 0
        while True:
            token = await self.tokens.token(self.http, self._credentials, rejected=rejected)
            try:
                response = await self.http.request(
                    method,
                    url,
                    params=query or None,
                    json=json,
                    headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
                    timeout=self.settings.timeout,
                )
            except httpx.TransportError as exc:
                what = (
                    "did not answer in time"
                    if isinstance(exc, httpx.TimeoutException)
                    else "could not be reached"
                )
                if idempotent and failed < self.settings.max_server_error_retries:
                    failed += 1
                    delay = self._backoff(failed)
                    logger.info(
                        "Zoom %s %s %s; retry %d in %.2fs", method, path, what, failed, delay
                    )
                    await self._sleep(delay)
                    continue
                raise ZoomUnavailable(f"Zoom {what} ({method} {path})") from exc
            status = response.status_code
            if status < 400:
                return response
            body = _json(response)
            if status == 401 and not refreshed:
                # An expired or revoked token (code 124): one new token, one more try.
                refreshed = True
                rejected = token
                continue
            if status == 429:
                error = self._rate_limit_error(response, body)
                if isinstance(error, ZoomDailyLimit):
                    raise error
                if rate_limited < self.settings.max_rate_limit_retries and (
                    error.retry_after is None or error.retry_after <= self.settings.max_retry_wait
                ):
                    rate_limited += 1
                    delay = (
                        error.retry_after
                        if error.retry_after is not None
                        else self._backoff(rate_limited)
                    )
                    logger.info("Zoom %s %s rate limited; wait %.2fs", method, path, delay)
                    await self._sleep(delay)
                    continue
                raise error
            if status >= 500 and idempotent and failed < self.settings.max_server_error_retries:
                failed += 1
                delay = self._backoff(failed)
                logger.info(
                    "Zoom %s %s answered %d; retry %d in %.2fs", method, path, status, failed, delay
                )
                await self._sleep(delay)
                continue
            raise error_for(status, body, f"{response.reason_phrase} ({method} {path})")

    def _rate_limit_error(self, response: httpx.Response, body: Any) -> ZoomRateLimited:
        raw: Mapping[str, Any] = body if isinstance(body, Mapping) else {}
        message = str(raw.get("message") or "Too many requests to Zoom")
        now = self._now()
        retry_after = parse_retry_after(response.headers.get("Retry-After"), now)
        limit_type = response.headers.get("X-RateLimit-Type", "").lower()
        if limit_type == "daily-limit" or "daily rate limit" in message.lower():
            resets_at = (
                now + timedelta(seconds=retry_after)
                if retry_after is not None
                else _next_utc_midnight(now)
            )
            return ZoomDailyLimit(
                message,
                raw=raw,
                retry_after=(resets_at - now).total_seconds(),
                per_user="user" in message.lower(),
                resets_at=resets_at,
            )
        return ZoomRateLimited(message, raw=raw, retry_after=retry_after)

    async def _get(self, path: str, params: Mapping[str, Any] | None = None) -> Mapping[str, Any]:
        body = _json(await self._call("GET", path, params=params))
        if not isinstance(body, Mapping):
            raise ZoomError(f"Zoom answered GET {path} without a JSON object", status=200)
        return body

    async def _pages(
        self, path: str, key: str, params: Mapping[str, Any] | None = None
    ) -> AsyncIterator[Mapping[str, Any]]:
        next_page: str | None = None
        seen: set[str] = set()
        while True:
            query = {**(params or {}), "page_size": self.settings.page_size}
            if next_page:
                query["next_page_token"] = next_page
            body = await self._get(path, query)
            for item in body.get(key) or ():
                if isinstance(item, Mapping):
                    yield item
            next_page = body.get("next_page_token") or None
            if not next_page:
                return
            if next_page in seen:  # a token handed out twice would loop forever
                raise ZoomError(f"Zoom repeated a page token listing {path}", status=200)
            seen.add(next_page)

    # ------------------------------------------------------------------ users

    async def get_user(self, user: str) -> ZoomUser:
        """A user of the account by id or email (:class:`ZoomUserNotFound` when none)."""
        return ZoomUser.from_api(await self._get(f"/users/{_segment(user)}"))

    async def find_user(self, email: str) -> ZoomUser | None:
        """The account's user with this email, or None.

        A user of another Zoom account is not visible: Zoom answers 1001 for them, so
        None here does not mean the email is free (creating may answer 1009).
        """
        try:
            return await self.get_user(email)
        except ZoomUserNotFound:
            return None

    async def create_user(
        self,
        email: str,
        *,
        action: CreateAction = CreateAction.CREATE,
        type: UserType = UserType.BASIC,
        first_name: str | None = None,
        last_name: str | None = None,
        display_name: str | None = None,
        password: str | None = None,
    ) -> ZoomUser:
        """Add a user to the account (``POST /users``).

        Raises :class:`ZoomUserExists` (1005) when the account already has the email and
        :class:`ZoomUserInAnotherAccount` (1009) when another account holds it. The
        returned user carries the fields Zoom's answer has (id, email, type, names); its
        ``status`` is ``pending`` for ``create`` (awaiting the activation email).
        """
        info: dict[str, Any] = {"email": email, "type": int(type)}
        for key, value in (
            ("first_name", first_name),
            ("last_name", last_name),
            ("display_name", display_name),
            ("password", password),
        ):
            if value is not None:
                info[key] = value
        response = await self._call(
            "POST", "/users", json={"action": str(action), "user_info": info}
        )
        body = _json(response)
        user = ZoomUser.from_api(body if isinstance(body, Mapping) else {})
        # Zoom's answer has no status: a "create"d user waits for the activation email.
        return replace(user, status="pending" if action == CreateAction.CREATE else "active")

    async def update_user_type(self, user: str, type: UserType) -> None:
        """Change a user's type (Basic, Licensed, On-prem where the account still has it)."""
        await self._call(
            "PATCH", f"/users/{_segment(user)}", json={"type": int(type)}, idempotent=True
        )

    async def zak_token(self, user: str, *, ttl: int | None = None) -> str:
        """The user's Zoom Access Key (``GET /users/{id}/token?type=zak``).

        A ZAK starts meetings as that user (``zak=`` on a start or join link, or in the
        Meeting SDK). It expires after two hours by default (90 days for custCreate users)
        and is a host credential: never send it to anyone but that host.
        """
        body = await self._get(f"/users/{_segment(user)}/token", {"type": "zak", "ttl": ttl})
        token = body.get("token")
        if not isinstance(token, str) or not token:
            raise ZoomError("Zoom answered the ZAK request without a token", status=200, raw=body)
        return token

    async def managed_domains(self, account: str = "me") -> list[tuple[str, str]]:
        """The account's associated (managed) domains as (domain, status) pairs.

        A user whose email is in a ``verified`` one can be added with ``autoCreate``,
        without the activation email ``create`` sends.
        """
        body = await self._get(f"/accounts/{_segment(account)}/managed_domains")
        return [
            (str(d.get("domain", "")).lower(), str(d.get("status", "")))
            for d in body.get("domains") or ()
            if isinstance(d, Mapping) and d.get("domain")
        ]

    async def add_group_members(self, group_id: str, members: Sequence[str]) -> None:
        """Add users (emails, or user ids) to a group, 30 a call as Zoom allows."""
        entries = [{"email": m} if "@" in m else {"id": m} for m in members]
        for start in range(0, len(entries), MAX_GROUP_MEMBERS):
            chunk = entries[start : start + MAX_GROUP_MEMBERS]
            await self._call(
                "POST", f"/groups/{_segment(group_id)}/members", json={"members": chunk}
            )

    # ------------------------------------------------------------------ meetings

    async def create_meeting(self, user: str, fields: ZoomMeetingFields) -> ZoomMeeting:
        """Schedule a meeting hosted by ``user`` (id or email).

        Counts toward the host's daily limit of meeting creates and updates
        (:class:`ZoomDailyLimit`). Never retried after a 5xx or timeout, since the
        meeting may exist; list the host's meetings to find out.
        """
        if not fields.topic:
            raise ValueError("a new meeting needs a topic")
        response = await self._call(
            "POST", f"/users/{_segment(user)}/meetings", json=fields.to_api(creating=True)
        )
        body = _json(response)
        if not isinstance(body, Mapping):
            raise ZoomError(
                "Zoom created the meeting but answered without it", status=response.status_code
            )
        return ZoomMeeting.from_api(body)

    async def get_meeting(
        self,
        meeting_id: int,
        *,
        occurrence_id: str | None = None,
        show_previous_occurrences: bool = False,
    ) -> ZoomMeeting:
        """A meeting by its number; a fresh ``start_url`` comes with it for the host."""
        params: dict[str, Any] = {"occurrence_id": occurrence_id}
        if show_previous_occurrences:
            params["show_previous_occurrences"] = "true"
        return ZoomMeeting.from_api(await self._get(f"/meetings/{_segment(meeting_id)}", params))

    async def update_meeting(
        self, meeting_id: int, fields: ZoomMeetingFields, *, occurrence_id: str | None = None
    ) -> None:
        """Change a meeting (or one occurrence of it); Zoom answers 204 with no body.

        The body sets absolute values, so a retry after a 5xx cannot apply twice.
        """
        body = fields.to_api(creating=False)
        if not body:
            return
        await self._call(
            "PATCH",
            f"/meetings/{_segment(meeting_id)}",
            params={"occurrence_id": occurrence_id},
            json=body,
            idempotent=True,
        )

    async def delete_meeting(
        self,
        meeting_id: int,
        *,
        occurrence_id: str | None = None,
        cancel_meeting_reminder: bool | None = None,
    ) -> None:
        """Delete a meeting, or one occurrence; :class:`ZoomMeetingNotFound` if it is gone."""
        params: dict[str, Any] = {"occurrence_id": occurrence_id}
        if cancel_meeting_reminder is not None:
            params["cancel_meeting_reminder"] = "true" if cancel_meeting_reminder else "false"
        await self._call("DELETE", f"/meetings/{_segment(meeting_id)}", params=params)

    async def list_meetings(
        self,
        user: str,
        type: MeetingListType = MeetingListType.UPCOMING,
        *,
        from_date: date | None = None,
        to_date: date | None = None,
    ) -> AsyncIterator[ZoomMeeting]:
        """The host's meetings of one kind, every page (list items lack start_url)."""
        params: dict[str, Any] = {
            "type": str(type),
            "from": from_date.isoformat() if from_date else None,
            "to": to_date.isoformat() if to_date else None,
        }
        async for item in self._pages(f"/users/{_segment(user)}/meetings", "meetings", params):
            yield ZoomMeeting.from_api(item)

    async def past_instances(self, meeting_id: int) -> list[ZoomPastInstance]:
        """The held instances of a meeting (one per held occurrence of a recurring meeting)."""
        body = await self._get(f"/past_meetings/{_segment(meeting_id)}/instances")
        return [
            ZoomPastInstance.from_api(m)
            for m in body.get("meetings") or ()
            if isinstance(m, Mapping)
        ]

    async def list_tracking_fields(self) -> list[ZoomTrackingField]:
        """The tracking fields defined on the account."""
        body = await self._get("/tracking_fields")
        return [
            ZoomTrackingField.from_api(t)
            for t in body.get("tracking_fields") or ()
            if isinstance(t, Mapping)
        ]

    # ------------------------------------------------------------------ recordings and reports

    async def get_recordings(self, meeting: int | str) -> ZoomRecording:
        """The cloud recording of a meeting instance (UUID), or of its latest instance (id).

        :class:`ZoomRecordingNotFound` (3301) when there is none. ``play_url`` and
        ``download_url`` of each file are what a page links to.
        """
        return ZoomRecording.from_api(
            await self._get(f"/meetings/{encode_meeting_id(meeting)}/recordings")
        )

    async def delete_recordings(self, meeting: int | str, *, trash: bool = True) -> None:
        """Delete every file of a meeting instance's recording (to the trash by default)."""
        await self._call(
            "DELETE",
            f"/meetings/{encode_meeting_id(meeting)}/recordings",
            params={"action": "trash" if trash else "delete"},
        )

    async def list_user_recordings(
        self, user: str, *, from_date: date, to_date: date
    ) -> AsyncIterator[ZoomRecording]:
        """A host's cloud recordings of meetings held between two dates (UTC, inclusive).

        Zoom answers for at most a month per request, so a longer range is asked for in
        consecutive windows of 30 days (oldest window first; within a window, in the order
        Zoom lists them).
        """
        if to_date < from_date:
            raise ValueError("to_date is before from_date")
        start = from_date
        while start <= to_date:
            end = min(to_date, start + MAX_RECORDING_RANGE - timedelta(days=1))
            params = {"from": start.isoformat(), "to": end.isoformat()}
            async for item in self._pages(
                f"/users/{_segment(user)}/recordings", "meetings", params
            ):
                yield ZoomRecording.from_api(item)
            start = end + timedelta(days=1)

    async def list_participants(self, meeting: int | str) -> AsyncIterator[ZoomParticipant]:
        """The participants report of a past meeting instance (UUID) or its latest (id).

        Zoom's report needs a paid plan and answers for meetings held in the past year.
        """
        async for item in self._pages(
            f"/report/meetings/{encode_meeting_id(meeting)}/participants", "participants"
        ):
            yield ZoomParticipant.from_api(item)


__all__ = [
    "ZOOM_API_BASE_URL",
    "ZOOM_GOV_API_BASE_URL",
    "ZOOM_GOV_OAUTH_TOKEN_URL",
    "ZOOM_OAUTH_TOKEN_URL",
    "ZoomClient",
    "ZoomSettings",
    "encode_meeting_id",
    "parse_retry_after",
]
