"""What an LMS plugin gets to call its LMS's REST API: the :class:`LmsApi` handle.

The core passes an :class:`LmsApi` to every hook that talks to an LMS (calendar sync,
course audiences, course notifications). It carries the shared HTTP client, the plugin's
effective settings for the course's credential and platform (secrets decrypted), a
token store scoped to that credential, platform and plugin (tokens encrypted at rest),
and the URL rule every outgoing call follows::

    @hookimpl
    async def calendar_delete_event(course, event_id, settings, api):
        url = await api.check_url(f"https://{course.domain}/api/v1/calendar_events/{event_id}")
        response = await api.http.delete(url, headers=await bearer(api))
        if response.status_code == 404:
            return True  # already gone
        raise_for_lms_status(response, "Canvas")
        return True

Failures are told to the core with the exceptions below, which decide what the job queue
does next: :class:`LmsThrottled` waits as long as the LMS asked, :class:`LmsUnavailable`
retries with backoff, :class:`LmsNotAuthorized` and :class:`LmsRequestRefused` stop at
once (trying again cannot help until someone changes something) and the job goes to the
dead letters with the message, which the admin reads in the console.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import httpx

from ltipro.jobs.handlers import retry_after_seconds
from ltipro.lti.keys import Resolver, UnsafeURL, resolve_public, system_resolver

# -- errors a plugin raises ---------------------------------------------------------------


class LmsApiError(Exception):
    """A call to an LMS's API failed; ``str(error)`` is written for the admin."""

    #: Whether trying the same call again later can succeed by itself.
    retryable = False


class LmsThrottled(LmsApiError):
    """The LMS asked to slow down (HTTP 429, Canvas's ``403 Rate Limit Exceeded``)."""

    retryable = True

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = max(0.0, float(retry_after))


class LmsUnavailable(LmsApiError):
    """The LMS did not answer properly (5xx, a timeout, a dropped connection)."""

    retryable = True


class LmsNotAuthorized(LmsApiError):
    """The tool has no working credentials for this LMS: missing, revoked or refused."""


class LmsNotFound(LmsApiError):
    """The LMS does not know what was asked for (a course, an event)."""


class LmsRequestRefused(LmsApiError):
    """The LMS refused the request itself (4xx other than the above)."""


class LmsNotConfigured(LmsNotAuthorized):
    """A setting the call needs is empty or wrong (the API URL, a course id)."""


class LmsNotSetUp(LmsNotConfigured):
    """The installation has not set this LMS's API up at all: no key, token or connection.

    Calendar sync is on by default, and an installation that never gave a plugin its API
    credentials should not collect a dead letter for every meeting change: the core
    records such a sync as skipped, with this message, and goes on. Raise it only when
    nothing at all is configured; a key that is set but refused is
    :class:`LmsNotAuthorized`, which an admin must see.
    """


# Seconds to wait on a throttling answer that does not say how long.
DEFAULT_THROTTLE_WAIT = 30.0


def raise_for_lms_status(response: httpx.Response, lms: str) -> None:
    """Turn an unsuccessful answer into the matching :class:`LmsApiError`; 2xx passes.

    ``429`` is throttling (its ``Retry-After`` honoured), ``5xx`` unavailability, ``401``
    and ``403`` missing authorisation, ``404`` not found, anything else a refusal. A plugin
    whose LMS signals throttling differently (Canvas's ``403``) checks for that first.
    """
    status = response.status_code
    if 200 <= status < 300:
        return
    detail = _detail(response)
    where = f"{lms} answered {status} to {response.request.method} {_path(response)}"
    if status == 429:
        wait = retry_after_seconds(
            response.headers.get("Retry-After"), default=DEFAULT_THROTTLE_WAIT
        )
        raise LmsThrottled(f"{where}: too many requests{detail}", wait)
    if status >= 500:
        raise LmsUnavailable(f"{where}{detail}")
    if status in (401, 403):
        raise LmsNotAuthorized(f"{where}: the tool is not authorised{detail}")
    if status == 404:
        raise LmsNotFound(f"{where}: not found{detail}")
    raise LmsRequestRefused(f"{where}{detail}")


def transport_error(exc: httpx.HTTPError, lms: str) -> LmsUnavailable:
    """A timeout or connection failure, as the error a plugin raises."""
    kind = "timed out" if isinstance(exc, httpx.TimeoutException) else "could not be reached"
    return LmsUnavailable(f"{lms} {kind}: {exc.__class__.__name__}")


def _path(response: httpx.Response) -> str:
    return response.request.url.path


def _detail(response: httpx.Response) -> str:
    text = response.text.strip().replace("\n", " ")
    return f" ({text[:200]})" if text else ""


# -- the tool's marker in LMS events -------------------------------------------------------

# ``ltipro:<meeting uid>:<occurrence start, UTC>`` in square brackets, as plugins write it.
_MARKER_IN_TEXT = re.compile(r"\[(ltipro:[A-Za-z0-9_.\-]+:[0-9]{8}T[0-9]{4}Z)\]")


def marker_tag(marker: str) -> str:
    """How a plugin writes the marker into an event's text: ``[ltipro:...]``, last."""
    return f"[{marker}]"


def read_marker(text: Any) -> str | None:
    """The tool's marker in an event's text, or ``None`` for events the tool did not make.

    HTML entities are decoded first (Canvas and Moodle keep descriptions as HTML); when an
    editor pasted the marker twice, the last one counts.
    """
    if not isinstance(text, str) or "ltipro" not in text:
        return None
    found = _MARKER_IN_TEXT.findall(html.unescape(text))
    return found[-1] if found else None


def parse_lms_time(value: Any) -> datetime | None:
    """An ISO 8601 time from an LMS (``Z`` or an offset) as an aware UTC time, or ``None``.

    A time without an offset is taken as UTC, as every LMS API here sends UTC.
    """
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC)


# -- tokens --------------------------------------------------------------------------------


@dataclass(frozen=True)
class StoredToken:
    """An OAuth token (or an API token with no expiry) kept for a plugin."""

    access_token: str
    refresh_token: str | None = None
    expires_at: datetime | None = None
    scope: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    def expired(self, *, leeway: float = 60.0, now: datetime | None = None) -> bool:
        """Whether the access token is (about to be) past its expiry."""
        if self.expires_at is None:
            return False
        moment = now or datetime.now(UTC)
        return self.expires_at - timedelta(seconds=leeway) <= moment

    @classmethod
    def from_oauth(cls, body: Mapping[str, Any], *, now: datetime | None = None) -> StoredToken:
        """From an OAuth 2 token answer (RFC 6749, section 5.1)."""
        access = body.get("access_token")
        if not isinstance(access, str) or not access:
            raise LmsNotAuthorized("the LMS's token answer has no access_token")
        expires_in = body.get("expires_in")
        expires_at = None
        if isinstance(expires_in, (int, float)) and not isinstance(expires_in, bool):
            expires_at = (now or datetime.now(UTC)) + timedelta(seconds=float(expires_in))
        refresh = body.get("refresh_token")
        scope = body.get("scope")
        return cls(
            access_token=access,
            refresh_token=refresh if isinstance(refresh, str) and refresh else None,
            expires_at=expires_at,
            scope=scope if isinstance(scope, str) else None,
        )


class TokenStore(Protocol):
    """Tokens of one plugin for one credential and platform, by subject.

    The subject names whose token it is: ``"app"`` for the plugin's own, an LMS user id
    for a per-user authorisation (Canvas). Values are encrypted at rest.
    """

    async def get(self, subject: str) -> StoredToken | None: ...

    async def put(self, subject: str, token: StoredToken) -> None: ...

    async def delete(self, subject: str) -> None: ...

    async def subjects(self) -> list[str]: ...


class MemoryTokenStore:
    """A :class:`TokenStore` in a dictionary, for tests and one-off scripts."""

    def __init__(self, tokens: Mapping[str, StoredToken] | None = None) -> None:
        self.tokens: dict[str, StoredToken] = dict(tokens or {})

    async def get(self, subject: str) -> StoredToken | None:
        return self.tokens.get(subject)

    async def put(self, subject: str, token: StoredToken) -> None:
        self.tokens[subject] = token

    async def delete(self, subject: str) -> None:
        self.tokens.pop(subject, None)

    async def subjects(self) -> list[str]:
        return sorted(self.tokens)


# -- the handle ----------------------------------------------------------------------------


@dataclass
class LmsApi:
    """Everything a hook needs to call its LMS for one course.

    ``settings`` are the plugin's effective settings (platform value over credential
    value over default). ``issuer`` is the LTI 1.3 platform's issuer when the course's
    platform is known. ``user_id`` is the LMS user the call is made for (a meeting's
    host), for plugins whose LMS authorises per user. ``allow_private_urls`` mirrors
    ``LTIPRO_ALLOW_PRIVATE_URLS`` (and development mode).
    """

    http: httpx.AsyncClient
    settings: Mapping[str, Any]
    tokens: TokenStore
    credential_id: int | None = None
    platform_id: int | None = None
    issuer: str | None = None
    user_id: str | None = None
    allow_private_urls: bool = False
    resolver: Resolver = system_resolver

    async def check_url(self, url: str) -> str:
        """Return ``url`` if the tool may call it: public ``https://``, unless allowed.

        Raises :class:`LmsNotConfigured` with a message for the admin otherwise, so a
        setting or a launch claim cannot turn the tool against its own network.
        """
        try:
            await resolve_public(url, allow_private=self.allow_private_urls, resolver=self.resolver)
        except UnsafeURL as exc:
            raise LmsNotConfigured(
                f"the LMS address is refused: {exc} (the tool only calls public https:// "
                f"addresses; LTIPRO_ALLOW_PRIVATE_URLS=1 allows others for test set-ups)"
            ) from exc
        except ValueError as exc:
            raise LmsNotConfigured(f"the LMS address {url[:200]!r} is not a valid URL") from exc
        return url


__all__ = [
    "DEFAULT_THROTTLE_WAIT",
    "LmsApi",
    "LmsApiError",
    "LmsNotAuthorized",
    "LmsNotConfigured",
    "LmsNotFound",
    "LmsNotSetUp",
    "LmsRequestRefused",
    "LmsThrottled",
    "LmsUnavailable",
    "MemoryTokenStore",
    "StoredToken",
    "TokenStore",
    "marker_tag",
    "parse_lms_time",
    "raise_for_lms_status",
    "read_marker",
    "transport_error",
]
