"""What the Zoom API can answer besides success, as exceptions a caller can catch by kind.

Zoom answers an error with an HTTP status and a JSON body ``{"code": N, "message": ...}``
where ``code`` is Zoom's own number. The numbers used here are the ones Zoom lists in the
error sections of its API reference (copied in ``ltipro/testing/data/
zoom-openapi-subset.json`` as ``x-error-codes``):

* 124 (401): invalid or expired access token.
* 300 (400): validation failed (``errors`` lists the fields).
* 1001 (404): user does not exist; 1010 (400): user not found on (does not belong to)
  this account.
* 1005 (409, create user): the email is already used by a user of this account.
* 1009 (400, create user): "The user {email} already holds an active account": the email
  belongs to another Zoom account. Zoom's staff explained it on zoom/api-v1 issue #7
  ("that email address is already associated with another Zoom account and is marked as
  active"); it cannot be added without that account's admin removing the user first.
* 3001 (404): meeting not found or expired; 3301 (404): no recording for this meeting;
  4130 (404): group does not exist.
* 429: rate limits. The per-host daily limit on meeting creates and updates (100 a day,
  reset at 00:00 UTC) answers ``{"code": 429, "message": "You have exceeded the daily rate
  limit (100) of Meeting Create/Update API requests permitted for this particular user.
  You may resume these requests at GMT 00:00:00."}`` (quoted by Zoom's staff on the
  developer forum, thread "Zoom API Create Meeting API Rate Limit - Sample error when
  breaching limit"); per-second limits say "You have reached the maximum per-second rate
  limit for this API. Try again later.". Zoom's rate-limit page adds the headers
  ``X-RateLimit-Type`` (``QPS`` or ``Daily-limit``) and ``Retry-After``, though the forum
  thread shows daily-limit answers without them, so the message is checked too.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

# Zoom's error codes, by the names the client uses.
INVALID_TOKEN = 124
VALIDATION_FAILED = 300
NO_PERMISSION = 200
USER_NOT_FOUND = 1001
EMAIL_IN_THIS_ACCOUNT = 1005
EMAIL_IN_ANOTHER_ACCOUNT = 1009
USER_NOT_IN_ACCOUNT = 1010
MEETING_NOT_FOUND = 3001
NO_RECORDING = 3301
GROUP_NOT_FOUND = 4130
RATE_LIMITED = 429


class ZoomError(Exception):
    """Zoom refused or failed a request.

    ``status`` is the HTTP status (0 when no answer came), ``code`` Zoom's numeric error
    code when the body had one, ``message`` Zoom's message (or ours when Zoom gave none).
    ``raw`` is the decoded error body.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int = 0,
        code: int | None = None,
        raw: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code
        self.raw: Mapping[str, Any] = raw or {}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(status={self.status}, code={self.code}, message={self.message!r})"

    def __str__(self) -> str:
        prefix = f"Zoom {self.status}" if self.status else "Zoom"
        if self.code is not None:
            prefix += f" (code {self.code})"
        return f"{prefix}: {self.message}"


class ZoomAuthError(ZoomError):
    """The credentials were refused, or a fresh access token was refused too.

    Raised for token endpoint failures (wrong client id or secret, wrong account id) and
    for a 401 that persists after one token refresh. An admin has to fix the credential.
    """


class ZoomPermissionDenied(ZoomError):
    """Code 200: the app lacks a scope or the account lacks the feature or plan."""


class ZoomInvalidRequest(ZoomError):
    """Code 300 and other 400s: Zoom refused the request's content.

    ``errors`` holds Zoom's per-field complaints (``[{"field": ..., "message": ...}]``).
    """

    @property
    def errors(self) -> Sequence[Mapping[str, Any]]:
        found = self.raw.get("errors")
        return found if isinstance(found, list) else []


class ZoomNotFound(ZoomError):
    """Something the request names does not exist (base of the specific not-found errors)."""


class ZoomUserNotFound(ZoomNotFound):
    """Code 1001 (user does not exist) or 1010 (user not in this account)."""


class ZoomMeetingNotFound(ZoomNotFound):
    """Code 3001: the meeting does not exist, was deleted, or has expired."""


class ZoomRecordingNotFound(ZoomNotFound):
    """Code 3301: the meeting has no cloud recording (never recorded, or deleted)."""


class ZoomGroupNotFound(ZoomNotFound):
    """Code 4130: the group does not exist."""


class ZoomUserExists(ZoomError):
    """Code 1005: a user of this account already has this email (perhaps still pending)."""


class ZoomUserInAnotherAccount(ZoomError):
    """Code 1009: the email belongs to an active user of another Zoom account.

    The user cannot be created or managed from this account; the launch tells the user
    to sign in with the account's SSO or ask to be moved into the account.
    """


class ZoomRateLimited(ZoomError):
    """HTTP 429 that retries did not get past.

    ``retry_after`` is how many seconds Zoom asked to wait (None when it did not say).
    """

    def __init__(
        self,
        message: str,
        *,
        status: int = 429,
        code: int | None = RATE_LIMITED,
        raw: Mapping[str, Any] | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, status=status, code=code, raw=raw)
        self.retry_after = retry_after


class ZoomDailyLimit(ZoomRateLimited):
    """A daily limit: waiting seconds will not help, only the next UTC day.

    ``per_user`` is True for the per-host limit on meeting creates and updates (100 a day
    for one host), False for an account's daily quota of a rate-limit category.
    ``resets_at`` is when Zoom said requests may resume (next 00:00 UTC when it did not).
    """

    def __init__(
        self,
        message: str,
        *,
        raw: Mapping[str, Any] | None = None,
        retry_after: float | None = None,
        per_user: bool = True,
        resets_at: datetime | None = None,
    ) -> None:
        super().__init__(message, raw=raw, retry_after=retry_after)
        self.per_user = per_user
        self.resets_at = resets_at


class ZoomUnavailable(ZoomError):
    """Zoom answered 5xx, or did not answer in time, after the retries allowed."""


_BY_CODE: dict[int, type[ZoomError]] = {
    INVALID_TOKEN: ZoomAuthError,
    NO_PERMISSION: ZoomPermissionDenied,
    VALIDATION_FAILED: ZoomInvalidRequest,
    USER_NOT_FOUND: ZoomUserNotFound,
    USER_NOT_IN_ACCOUNT: ZoomUserNotFound,
    EMAIL_IN_THIS_ACCOUNT: ZoomUserExists,
    EMAIL_IN_ANOTHER_ACCOUNT: ZoomUserInAnotherAccount,
    MEETING_NOT_FOUND: ZoomMeetingNotFound,
    NO_RECORDING: ZoomRecordingNotFound,
    GROUP_NOT_FOUND: ZoomGroupNotFound,
}


def error_for(status: int, body: Any, fallback: str) -> ZoomError:
    """The typed error for a non-2xx answer other than 429 (which the client handles)."""
    raw: Mapping[str, Any] = body if isinstance(body, Mapping) else {}
    code = raw.get("code") if isinstance(raw.get("code"), int) else None
    message = raw.get("message") if isinstance(raw.get("message"), str) else None
    text = message or fallback
    if status >= 500:
        return ZoomUnavailable(text, status=status, code=code, raw=raw)
    if code is not None and code in _BY_CODE:
        return _BY_CODE[code](text, status=status, code=code, raw=raw)
    if status == 401:
        return ZoomAuthError(text, status=status, code=code, raw=raw)
    if status == 403:
        return ZoomPermissionDenied(text, status=status, code=code, raw=raw)
    if status == 404:
        return ZoomNotFound(text, status=status, code=code, raw=raw)
    if status == 400:
        return ZoomInvalidRequest(text, status=status, code=code, raw=raw)
    return ZoomError(text, status=status, code=code, raw=raw)
