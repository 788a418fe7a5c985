"""A small Canvas REST API client over the core's :class:`~ltipro.lmsapi.LmsApi`.

Every Canvas call of the plugin goes through :class:`CanvasClient`, which

- finds Canvas's address (the ``api_base_url`` setting, else the course's domain) and
  checks every URL with ``api.check_url`` before calling it;
- authorises each request with the right token (:func:`ltipro_canvas.oauth.access_token`:
  the meeting host's own grant, else the admin token) and, when Canvas says the token is
  no longer valid (``401`` with ``WWW-Authenticate``), refreshes it once and tries again;
- sends parameters the way Canvas documents them, as form fields with Rails-style
  brackets (``calendar_event[child_event_data][0][context_code]``, ``context_codes[]``);
- follows ``Link: <...>; rel="next"`` pagination
  (https://developerdocs.instructure.com/services/canvas/basics/file.pagination);
- turns failures into the core's errors: Canvas's throttling answer
  (``403 Forbidden (Rate Limit Exceeded)``, with ``X-Rate-Limit-Remaining`` and
  ``X-Request-Cost``: https://developerdocs.instructure.com/services/canvas/basics/file.throttling)
  and ``429`` into :class:`LmsThrottled`, ``5xx`` and network failures into
  :class:`LmsUnavailable`, refused tokens into :class:`LmsNotAuthorized`, ``404`` into
  :class:`LmsNotFound`, other ``4xx`` into :class:`LmsRequestRefused`.

Use it from any Canvas hook::

    client = CanvasClient(api, course)
    sections = await client.get_all(f"/api/v1/courses/{client.course_id}/sections")
    await client.post("/api/v1/conversations", {"recipients": ["course_3"], "body": "..."})
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any
from urllib.parse import urlencode, urlsplit

import httpx

from ltipro.context import CourseIdentifiers
from ltipro.lmsapi import (
    DEFAULT_THROTTLE_WAIT,
    LmsApi,
    LmsNotAuthorized,
    LmsNotConfigured,
    LmsThrottled,
    raise_for_lms_status,
    transport_error,
)
from ltipro_canvas.oauth import Grant, access_token, refreshed_token
from ltipro_canvas.settings import api_base_url

LMS = "Canvas"
PER_PAGE = 100
# Enough for 10,000 items at 100 a page; a listing longer than that is a runaway loop.
MAX_PAGES = 100
# Canvas's bucket leaks about 10 units a second (lib/canvas/request_throttle.rb, "outflow").
THROTTLE_OUTFLOW = 10.0
MIN_THROTTLE_WAIT = 1.0
MAX_THROTTLE_WAIT = 120.0
RATE_LIMITED = "Rate Limit Exceeded"

Params = Mapping[str, Any] | Sequence[tuple[str, Any]] | None


def form_pairs(data: Params, prefix: str = "") -> list[tuple[str, str]]:
    """Nested data as the ``name[key][sub]=value`` pairs Canvas (Rails) reads.

    Mappings nest with ``[key]``, lists repeat ``name[]``, booleans become ``true`` and
    ``false`` and ``None`` values are left out. A sequence of pairs passes through as is
    (flattened the same way), for a caller that needs an exact order.
    """
    pairs: list[tuple[str, str]] = []
    items: Iterable[tuple[str, Any]]
    if data is None:
        return pairs
    items = data.items() if isinstance(data, Mapping) else data
    for key, value in items:
        name = f"{prefix}[{key}]" if prefix else str(key)
        pairs.extend(_pairs(name, value))
    return pairs


def _pairs(name: str, value: Any) -> list[tuple[str, str]]:
    if value is None:
        return []
    if isinstance(value, Mapping):
        return form_pairs(value, name)
    if isinstance(value, (list, tuple)):
        out: list[tuple[str, str]] = []
        for item in value:
            out.extend(_pairs(f"{name}[]", item))
        return out
    if isinstance(value, bool):
        return [(name, "true" if value else "false")]
    return [(name, str(value))]


def throttle_wait(response: httpx.Response) -> float:
    """Seconds to wait after a throttled answer, from what Canvas said.

    ``Retry-After`` when present; else the time the bucket needs to leak enough for one
    more request of the cost Canvas reported (``X-Request-Cost`` less
    ``X-Rate-Limit-Remaining``, at :data:`THROTTLE_OUTFLOW` units a second); else the
    core's default.
    """
    retry_after = response.headers.get("Retry-After")
    if retry_after:
        try:
            return max(0.0, float(retry_after))
        except ValueError:
            pass
    remaining = _number(response.headers.get("X-Rate-Limit-Remaining"))
    if remaining is None:
        return DEFAULT_THROTTLE_WAIT
    cost = _number(response.headers.get("X-Request-Cost")) or 0.0
    # Canvas also charges a pre-flight penalty per request in flight (50 units by default).
    deficit = max(cost, 1.0) + 50.0 - remaining
    return min(MAX_THROTTLE_WAIT, max(MIN_THROTTLE_WAIT, deficit / THROTTLE_OUTFLOW))


def _number(text: str | None) -> float | None:
    try:
        return float(text) if text is not None else None
    except ValueError:
        return None


class QuotaGate:
    """Which Canvas tokens were just throttled, and until when, in this process.

    Canvas's quota is per access token. Once one call with a token is throttled, every
    other call with it would be refused too until the bucket has leaked: without this
    gate, each job throttled together comes back, calls, and is refused again, spending
    Canvas's quota and our CPU on answers known in advance. A call whose token is gated
    is refused here, with the time left, without reaching Canvas. Only a fingerprint of
    the token is kept. ``clock`` is seconds on a monotonic scale (tests move it).
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._until: dict[str, float] = {}

    @staticmethod
    def key(base_url: str, token: str) -> str:
        return base_url + " " + hashlib.sha256(token.encode()).hexdigest()[:24]

    def wait_left(self, key: str) -> float:
        until = self._until.get(key)
        if until is None:
            return 0.0
        left = until - self.clock()
        if left <= 0:
            self._until.pop(key, None)
            return 0.0
        return left

    def close(self, key: str, seconds: float) -> None:
        until = self.clock() + seconds
        if until > self._until.get(key, 0.0):
            self._until[key] = until

    def clear(self) -> None:
        self._until.clear()


#: The process's gate (one per process: workers in other processes learn from Canvas).
QUOTA_GATE = QuotaGate()


def is_throttled(response: httpx.Response) -> bool:
    """Canvas's own throttling answer (403 with "Rate Limit Exceeded"), or a plain 429."""
    if response.status_code == 429:
        return True
    return response.status_code == 403 and RATE_LIMITED in response.text


class CanvasClient:
    """Calls Canvas's REST API for one course (or, without a course, one Canvas).

    ``course`` gives the Canvas course id (:attr:`course_id`) and, when the
    ``api_base_url`` setting is empty, the domain. Methods take paths
    (``/api/v1/calendar_events``) or absolute URLs on the same Canvas, and return the
    decoded JSON answer. They raise :mod:`ltipro.lmsapi` errors only.
    """

    def __init__(
        self,
        api: LmsApi,
        course: CourseIdentifiers | None = None,
        *,
        base_url: str | None = None,
    ) -> None:
        self.api = api
        self.course = course
        self.base_url = (base_url or api_base_url(api.settings, _domain(course))).rstrip("/")

    # -- the course ----------------------------------------------------------------------

    @property
    def course_id(self) -> str:
        """Canvas's numeric course id, or :class:`LmsNotConfigured` saying how to get it."""
        course_id = self.course.lms_course_id if self.course else None
        if not course_id:
            raise LmsNotConfigured(
                "the course has no Canvas course id: launches must carry "
                "canvas_course_id=$Canvas.course.id (add it to the developer key's custom "
                "fields), then open the tool from the course once"
            )
        return str(course_id)

    @property
    def course_code(self) -> str:
        """The course's context code, ``course_<id>``."""
        return f"course_{self.course_id}"

    # -- calls -----------------------------------------------------------------------------

    async def get(self, path: str, params: Params = None) -> Any:
        return _json(await self.request("GET", path, params=params))

    async def post(self, path: str, data: Params = None) -> Any:
        return _json(await self.request("POST", path, data=data))

    async def put(self, path: str, data: Params = None) -> Any:
        return _json(await self.request("PUT", path, data=data))

    async def delete(self, path: str, params: Params = None) -> Any:
        return _json(await self.request("DELETE", path, params=params))

    async def get_all(
        self, path: str, params: Params = None, *, per_page: int = PER_PAGE
    ) -> list[Any]:
        """Every item of a paginated listing, following ``Link: rel="next"`` to the end."""
        items: list[Any] = []
        first = form_pairs(params)
        if not any(name == "per_page" for name, _ in first):
            first.append(("per_page", str(per_page)))
        url: str | None = path
        query: list[tuple[str, str]] | None = first
        for _ in range(MAX_PAGES):
            if url is None:
                return items
            response = await self.request("GET", url, params=query)
            page = _json(response)
            if not isinstance(page, list):
                raise LmsNotAuthorized(
                    f"{LMS} answered GET {urlsplit(url).path} with {type(page).__name__}, "
                    "not a list: is the API address a Canvas?"
                )
            items.extend(page)
            url = _next_link(response)
            query = None  # the next link carries the whole query
        raise LmsNotConfigured(
            f"{LMS} kept paginating {path} past {MAX_PAGES} pages; the listing was stopped"
        )

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Params = None,
        data: Params = None,
    ) -> httpx.Response:
        """Send one authorised request and return Canvas's successful answer."""
        url = await self._url(path)
        grant = await access_token(self.api, self.base_url)
        gate = QuotaGate.key(self.base_url, grant.token)
        wait = QUOTA_GATE.wait_left(gate)
        if wait > 0:
            raise LmsThrottled(
                f"{LMS}'s rate limit for this token was exceeded moments ago; not calling "
                f"again for {wait:.1f} s",
                wait,
            )
        response = await self._send(method, url, grant, params, data)
        if response.status_code == 401 and _token_refused(response) and grant.subject:
            renewed = await refreshed_token(self.api, self.base_url, grant)
            if renewed is not None:
                grant = renewed
                response = await self._send(method, url, grant, params, data)
        self._raise_for(response, grant)
        return response

    async def _send(
        self, method: str, url: str, grant: Grant, params: Params, data: Params
    ) -> httpx.Response:
        headers = {"Authorization": f"Bearer {grant.token}", "Accept": "application/json"}
        body = None
        if data is not None:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            body = urlencode(form_pairs(data)).encode()
        query = httpx.QueryParams(urlencode(form_pairs(params))) if params is not None else None
        try:
            return await self.api.http.request(
                method, url, params=query, content=body, headers=headers
            )
        except httpx.HTTPError as exc:
            raise transport_error(exc, LMS) from exc

    async def _url(self, path: str) -> str:
        if path.startswith("/"):
            url = self.base_url + path
        else:
            url = path
            if _origin(url) != _origin(self.base_url):
                raise LmsNotAuthorized(
                    f"{LMS} pointed to {_origin(url)}, another host than {self.base_url}; "
                    "the tool does not follow it"
                )
        return await self.api.check_url(url)

    def _raise_for(self, response: httpx.Response, grant: Grant) -> None:
        if 200 <= response.status_code < 300:
            return
        where = f"{LMS} answered {response.status_code} to {response.request.method} " + (
            response.request.url.path
        )
        if is_throttled(response):
            wait = throttle_wait(response)
            QUOTA_GATE.close(QuotaGate.key(self.base_url, grant.token), wait)
            remaining = response.headers.get("X-Rate-Limit-Remaining")
            extra = f", {remaining} of the quota left" if remaining is not None else ""
            raise LmsThrottled(f"{where}: rate limit exceeded{extra}", wait)
        if response.status_code == 401 and not _token_refused(response):
            # Canvas answers 401 without WWW-Authenticate when the token is fine but its
            # user may not do this (not a teacher of the course, say).
            who = "the admin access token's user" if grant.subject is None else grant.subject
            raise LmsNotAuthorized(
                f"{where}: the Canvas user ({who}) may not do this; the meeting's host must "
                "teach the course in Canvas, or the admin_access_token must belong to an "
                "account admin"
            )
        if response.status_code == 401:
            whose = (
                "the Canvas admin access token (setting admin_access_token)"
                if grant.subject is None
                else f"the Canvas authorisation of user {grant.subject}"
            )
            raise LmsNotAuthorized(
                f"{where}: {whose} is not valid any more; connect Canvas again from the "
                "tool's meetings page (or set a new admin_access_token)"
            )
        raise_for_lms_status(response, LMS)


def _json(response: httpx.Response) -> Any:
    if not response.content:
        return None
    try:
        return response.json()
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise LmsNotAuthorized(
            f"{LMS} answered {response.request.method} {response.request.url.path} with "
            "something other than JSON: is the API address a Canvas?"
        ) from exc


def _next_link(response: httpx.Response) -> str | None:
    link = response.links.get("next")
    url = link.get("url") if link else None
    return url or None


def _token_refused(response: httpx.Response) -> bool:
    # Canvas sets WWW-Authenticate only when the token itself is the problem (expired,
    # revoked, unknown), not when the user merely lacks a permission.
    return "www-authenticate" in response.headers


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def _domain(course: CourseIdentifiers | None) -> str | None:
    return getattr(course, "domain", None) if course is not None else None


__all__ = [
    "CanvasClient",
    "form_pairs",
    "is_throttled",
    "throttle_wait",
]
