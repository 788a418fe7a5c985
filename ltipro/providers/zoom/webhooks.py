"""Zoom webhooks: signature verification, the URL validation challenge, event parsing.

Pure functions over the raw body and headers, so any web layer can mount them::

    try:
        outcome = receive(secret, raw_body, request.headers)
    except WebhookRejected as refused:
        return JSONResponse({"error": refused.message}, status_code=refused.status)
    if isinstance(outcome, UrlValidation):
        return JSONResponse(outcome.response)
    ...  # RecordingCompleted, MeetingEnded or OtherEvent

Zoom's rules ("Using webhooks", developers.zoom.us/docs/api/webhooks):

* Every request carries ``x-zm-request-timestamp`` (Unix seconds) and ``x-zm-signature``:
  ``v0=`` + hex HMAC-SHA256, keyed with the app's secret token, of
  ``v0:{timestamp}:{raw body}``. The raw bytes are signed, so verify before parsing.
* ``endpoint.url_validation`` (sent when the endpoint is saved and every 72 hours)
  carries ``payload.plainToken``; the answer is 200 ``{"plainToken": ...,
  "encryptedToken": hex HMAC-SHA256 of plainToken}``.

Zoom signs the validation request like any other (its sample receiver, zoom/webhook-sample
``index.js``, checks ``x-zm-signature`` before answering the challenge).

Two choices here go beyond the guide. Timestamps older (or further ahead) than five
minutes are refused, so a captured request cannot be replayed later. The validation
challenge is answered only when the request itself is signed and its token looks like
Zoom's: the answer is an HMAC of a caller-chosen string under the same key as event
signatures, so answering unsigned challenges would sign ``v0:{ts}:{forged event}`` for
anyone who asked.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ltipro.providers.zoom.models import ZoomRecording, parse_time

SIGNATURE_HEADER = "x-zm-signature"
TIMESTAMP_HEADER = "x-zm-request-timestamp"
DEFAULT_TOLERANCE = 300.0  # seconds a signed request stays acceptable
# Zoom's plain tokens are short random strings ("qgg8vlvZRS6UYooatFL8Aw" in its guide);
# base64 characters only, so nothing shaped like "v0:{ts}:{body}" is ever signed back.
PLAIN_TOKEN = re.compile(r"^[A-Za-z0-9_\-+/=]{8,128}$")


class WebhookRejected(Exception):
    """A webhook request to refuse: ``status`` (401 or 400) and a plain ``message``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def sign(secret: str, message: str) -> str:
    """Hex HMAC-SHA256 of ``message`` keyed with the webhook secret token."""
    return hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()


def signature_for(secret: str, timestamp: str, body: bytes) -> str:
    """The ``x-zm-signature`` value Zoom sends for ``body`` at ``timestamp``."""
    mac = hmac.new(secret.encode(), b"v0:" + timestamp.encode() + b":" + body, hashlib.sha256)
    return "v0=" + mac.hexdigest()


def verify_signature(
    secret: str,
    body: bytes,
    timestamp: str | None,
    signature: str | None,
    *,
    now: float | None = None,
    tolerance: float = DEFAULT_TOLERANCE,
) -> None:
    """Raise :class:`WebhookRejected` unless Zoom signed ``body`` recently with ``secret``."""
    if not secret:
        raise WebhookRejected(401, "The Zoom webhook secret token is not configured.")
    if not timestamp or not signature:
        raise WebhookRejected(401, "The request is not signed by Zoom (signature headers missing).")
    if not re.fullmatch(r"\d{1,12}", timestamp.strip()):
        raise WebhookRejected(401, "The request's timestamp header is not a Unix time.")
    age = (time.time() if now is None else now) - int(timestamp)
    if abs(age) > tolerance:
        raise WebhookRejected(401, "The request's signature is too old (or from the future).")
    expected = signature_for(secret, timestamp.strip(), body)
    if not hmac.compare_digest(expected.encode(), signature.strip().encode()):
        raise WebhookRejected(401, "The request's signature does not match the secret token.")


def url_validation_response(secret: str, plain_token: str) -> dict[str, str]:
    """The answer to an ``endpoint.url_validation`` challenge."""
    return {"plainToken": plain_token, "encryptedToken": sign(secret, plain_token)}


@dataclass(frozen=True)
class UrlValidation:
    """Zoom checking the endpoint: answer 200 with ``response`` as JSON."""

    plain_token: str
    response: Mapping[str, str]


@dataclass(frozen=True)
class RecordingCompleted:
    """``recording.completed``: a meeting instance's cloud recording is ready.

    ``recording`` has the files with their play and download links. ``download_token``
    (when Zoom includes it) authorises downloading the files for 24 hours without an
    access token.
    """

    account_id: str | None
    meeting_id: int
    meeting_uuid: str
    host_id: str | None
    host_email: str | None
    topic: str
    recording: ZoomRecording
    download_token: str | None
    event_ts: int | None
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False)


@dataclass(frozen=True)
class MeetingEnded:
    """``meeting.ended``: an instance of a meeting ended (its participants report follows)."""

    account_id: str | None
    meeting_id: int
    meeting_uuid: str
    host_id: str | None
    topic: str
    start_time: datetime | None
    end_time: datetime | None
    duration: int | None
    event_ts: int | None
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False)


@dataclass(frozen=True)
class OtherEvent:
    """An event this module does not parse; kept whole for whoever wants it."""

    event: str
    payload: Mapping[str, Any]
    event_ts: int | None
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False)


WebhookEvent = RecordingCompleted | MeetingEnded | OtherEvent


def _meeting_number(value: Any) -> int:
    # Webhook objects carry the meeting id as a string in some events, a number in others.
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    raise WebhookRejected(400, "The event's payload.object.id is not a meeting number.")


def parse_event(document: Mapping[str, Any]) -> WebhookEvent:
    """The typed event for a decoded (and already verified) webhook body."""
    event = document.get("event")
    payload = document.get("payload")
    if not isinstance(event, str) or not isinstance(payload, Mapping):
        raise WebhookRejected(400, "The body is not a Zoom event (event and payload are required).")
    ts = document.get("event_ts")
    event_ts = ts if isinstance(ts, int) and not isinstance(ts, bool) else None
    if event not in ("recording.completed", "meeting.ended"):
        return OtherEvent(event=event, payload=payload, event_ts=event_ts, raw=document)
    obj = payload.get("object")
    if not isinstance(obj, Mapping) or not isinstance(obj.get("uuid"), str):
        raise WebhookRejected(400, f"The {event} event has no payload.object with a uuid.")
    account = payload.get("account_id")
    account_id = str(account) if account else None
    if event == "recording.completed":
        token = document.get("download_token")
        return RecordingCompleted(
            account_id=account_id,
            meeting_id=_meeting_number(obj.get("id")),
            meeting_uuid=obj["uuid"],
            host_id=str(obj["host_id"]) if obj.get("host_id") else None,
            host_email=str(obj["host_email"]) if obj.get("host_email") else None,
            topic=str(obj.get("topic", "")),
            recording=ZoomRecording.from_api(obj),
            download_token=token if isinstance(token, str) else None,
            event_ts=event_ts,
            raw=document,
        )
    duration = obj.get("duration")
    return MeetingEnded(
        account_id=account_id,
        meeting_id=_meeting_number(obj.get("id")),
        meeting_uuid=obj["uuid"],
        host_id=str(obj["host_id"]) if obj.get("host_id") else None,
        topic=str(obj.get("topic", "")),
        start_time=parse_time(obj.get("start_time")),
        end_time=parse_time(obj.get("end_time")),
        duration=duration if isinstance(duration, int) and not isinstance(duration, bool) else None,
        event_ts=event_ts,
        raw=document,
    )


def receive(
    secret: str,
    body: bytes,
    headers: Mapping[str, str],
    *,
    now: float | None = None,
    tolerance: float = DEFAULT_TOLERANCE,
) -> UrlValidation | WebhookEvent:
    """Verify and interpret one webhook request (raw body, headers in any case)."""
    lowered = {key.lower(): value for key, value in headers.items()}
    verify_signature(
        secret,
        body,
        lowered.get(TIMESTAMP_HEADER),
        lowered.get(SIGNATURE_HEADER),
        now=now,
        tolerance=tolerance,
    )
    try:
        document = json.loads(body)
    except ValueError as exc:
        raise WebhookRejected(400, "The body is not JSON.") from exc
    if not isinstance(document, Mapping):
        raise WebhookRejected(400, "The body is not a JSON object.")
    if document.get("event") == "endpoint.url_validation":
        payload = document.get("payload")
        plain = payload.get("plainToken") if isinstance(payload, Mapping) else None
        if not isinstance(plain, str) or not PLAIN_TOKEN.match(plain):
            raise WebhookRejected(400, "The validation request has no usable plainToken.")
        return UrlValidation(plain_token=plain, response=url_validation_response(secret, plain))
    return parse_event(document)
