"""Zoom webhooks: signatures accepted and refused, the URL validation challenge, events."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime

import pytest

from ltipro.providers.zoom.webhooks import (
    MeetingEnded,
    OtherEvent,
    RecordingCompleted,
    UrlValidation,
    WebhookRejected,
    receive,
    signature_for,
    url_validation_response,
)
from ltipro.testing.zoom_double import HeldInstance, ZoomDouble, sign_webhook

SECRET = "webhook-secret-token-1"
NOW = 1_900_000_000


def signed(
    document: dict[str, object], *, timestamp: int = NOW, secret: str = SECRET
) -> tuple[bytes, dict[str, str]]:
    return sign_webhook(secret, document, timestamp=timestamp)


@pytest.fixture
def double() -> ZoomDouble:
    return ZoomDouble(clock=lambda: float(NOW))


def held(double: ZoomDouble, uuid: str = "4444AAAiAAAAAiAiAiiAii==") -> HeldInstance:
    """A meeting of the double's state, held for 55 minutes with a cloud recording."""
    host = double.add_user("teacher@example.edu")
    meeting = double.add_meeting(
        host,
        topic="Biology 101",
        start_time=datetime(2030, 3, 1, 14, tzinfo=UTC),
        timezone="Europe/Paris",
    )
    return double.hold_meeting(meeting.id, uuid=uuid, minutes=55)


def test_signature_is_hmac_sha256_of_v0_timestamp_and_raw_body() -> None:
    body = b'{"event":"meeting.ended","payload":{}}'
    expected = hmac.new(SECRET.encode(), b"v0:1658940994:" + body, hashlib.sha256).hexdigest()
    assert signature_for(SECRET, "1658940994", body) == f"v0={expected}"


def test_recording_completed_with_a_valid_signature_is_parsed(double: ZoomDouble) -> None:
    instance = held(double)
    document = double.recording_completed_event(instance)
    body, headers = signed(document)
    event = receive(SECRET, body, headers, now=NOW)
    assert isinstance(event, RecordingCompleted)
    assert (event.meeting_id, event.meeting_uuid, event.topic) == (
        instance.meeting_id,
        "4444AAAiAAAAAiAiAiiAii==",
        "Biology 101",
    )
    assert event.account_id == double.account_id
    assert event.download_token == document["download_token"]
    assert event.event_ts == NOW * 1000
    assert [f.file_type for f in event.recording.files] == ["MP4", "M4A"]
    assert all(f.play_url and f.download_url for f in event.recording.files)
    assert event.recording.start_time == datetime(2030, 3, 1, 14, tzinfo=UTC)


def test_meeting_ended_is_parsed_with_its_string_meeting_id(double: ZoomDouble) -> None:
    instance = held(double, uuid="/slashy//uuid==")
    body, headers = signed(double.meeting_ended_event(instance))
    event = receive(SECRET, body, headers, now=NOW)
    assert isinstance(event, MeetingEnded)
    assert (event.meeting_id, event.meeting_uuid) == (instance.meeting_id, "/slashy//uuid==")
    assert (event.start_time, event.end_time) == (
        datetime(2030, 3, 1, 14, tzinfo=UTC),
        datetime(2030, 3, 1, 14, 55, tzinfo=UTC),
    )
    host = double.user_by_email("teacher@example.edu")
    assert host is not None and event.host_id == instance.host_id == host.id


def test_headers_are_matched_without_regard_to_case() -> None:
    body, headers = signed({"event": "meeting.started", "payload": {"object": {}}})
    shouted = {key.upper(): value for key, value in headers.items()}
    event = receive(SECRET, body, shouted, now=NOW)
    assert isinstance(event, OtherEvent) and event.event == "meeting.started"


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ("tampered body", "does not match"),
        ("wrong secret", "does not match"),
        ("no signature", "not signed"),
        ("no timestamp", "not signed"),
        ("bad timestamp", "not a Unix time"),
        ("signature of another timestamp", "does not match"),
    ],
)
def test_requests_not_signed_by_zoom_are_refused_with_401(change: str, reason: str) -> None:
    body, headers = signed(
        {"event": "meeting.ended", "payload": {"object": {"uuid": "u==", "id": 1}}}
    )
    if change == "tampered body":
        body = body.replace(b'"id":1', b'"id":2')
    elif change == "wrong secret":
        body, headers = signed(json.loads(body), secret="another-secret")
    elif change == "no signature":
        del headers["x-zm-signature"]
    elif change == "no timestamp":
        del headers["x-zm-request-timestamp"]
    elif change == "bad timestamp":
        headers["x-zm-request-timestamp"] = "yesterday"
    else:
        headers["x-zm-request-timestamp"] = str(NOW + 1)
    with pytest.raises(WebhookRejected, match=reason) as caught:
        receive(SECRET, body, headers, now=NOW)
    assert caught.value.status == 401


@pytest.mark.parametrize(
    ("age", "accepted"),
    [(0, True), (300, True), (-300, True), (301, False), (-301, False), (86400, False)],
)
def test_old_or_future_timestamps_are_refused(age: int, accepted: bool) -> None:
    body, headers = signed({"event": "meeting.started", "payload": {}}, timestamp=NOW - age)
    if accepted:
        assert isinstance(receive(SECRET, body, headers, now=NOW), OtherEvent)
    else:
        with pytest.raises(WebhookRejected, match="too old") as caught:
            receive(SECRET, body, headers, now=NOW)
        assert caught.value.status == 401


def test_an_empty_secret_verifies_nothing() -> None:
    body, headers = signed({"event": "meeting.started", "payload": {}}, secret="")
    with pytest.raises(WebhookRejected, match="not configured"):
        receive("", body, headers, now=NOW)


def test_url_validation_challenge_is_answered_with_the_hmac_of_the_plain_token() -> None:
    body, headers = signed(
        {
            "event": "endpoint.url_validation",
            "payload": {"plainToken": "qgg8vlvZRS6UYooatFL8Aw"},
            "event_ts": 1654503849680,
        }
    )
    outcome = receive(SECRET, body, headers, now=NOW)
    assert isinstance(outcome, UrlValidation)
    expected = hmac.new(SECRET.encode(), b"qgg8vlvZRS6UYooatFL8Aw", hashlib.sha256).hexdigest()
    assert outcome.response == {"plainToken": "qgg8vlvZRS6UYooatFL8Aw", "encryptedToken": expected}
    assert url_validation_response(SECRET, "qgg8vlvZRS6UYooatFL8Aw") == outcome.response


def test_an_unsigned_validation_challenge_is_refused() -> None:
    body = json.dumps(
        {"event": "endpoint.url_validation", "payload": {"plainToken": "qgg8vlvZRS6UYooatFL8Aw"}}
    ).encode()
    with pytest.raises(WebhookRejected) as caught:
        receive(SECRET, body, {}, now=NOW)
    assert caught.value.status == 401


def test_the_challenge_cannot_be_used_to_sign_a_forged_event() -> None:
    forged = '{"event":"recording.completed","payload":{}}'
    body, headers = signed(
        {"event": "endpoint.url_validation", "payload": {"plainToken": f"v0:{NOW}:{forged}"}}
    )
    with pytest.raises(WebhookRejected, match="plainToken") as caught:
        receive(SECRET, body, headers, now=NOW)
    assert caught.value.status == 400


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"not json", "not JSON"),
        (b"[1, 2]", "not a JSON object"),
        (b'{"payload": {}}', "not a Zoom event"),
        (b'{"event": "meeting.ended", "payload": {"object": {"id": 1}}}', "uuid"),
        (
            b'{"event": "meeting.ended", "payload": {"object": {"id": "x1", "uuid": "u=="}}}',
            "meeting number",
        ),
        (b'{"event": "endpoint.url_validation", "payload": {}}', "plainToken"),
    ],
)
def test_signed_but_malformed_bodies_are_refused_with_400(body: bytes, reason: str) -> None:
    headers = {
        "x-zm-request-timestamp": str(NOW),
        "x-zm-signature": signature_for(SECRET, str(NOW), body),
    }
    with pytest.raises(WebhookRejected, match=reason) as caught:
        receive(SECRET, body, headers, now=NOW)
    assert caught.value.status == 400


def test_other_events_are_kept_whole() -> None:
    document = {
        "event": "meeting.participant_joined",
        "event_ts": 5,
        "payload": {"object": {"id": "1"}},
    }
    body, headers = signed(document)
    event = receive(SECRET, body, headers, now=NOW)
    assert isinstance(event, OtherEvent)
    assert (event.event, event.payload, event.event_ts, event.raw) == (
        "meeting.participant_joined",
        document["payload"],
        5,
        document,
    )
