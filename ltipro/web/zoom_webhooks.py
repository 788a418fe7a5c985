"""``POST /webhooks/zoom/{credential}``: the events a credential's Zoom app sends.

Zoom signs each request with the app's secret token (the credential's
``zoom.webhook_secret_token`` setting); an unsigned, badly signed or stale request is
refused with 401 before its body is read as JSON. The ``endpoint.url_validation``
challenge is answered so that Zoom accepts the endpoint. ``meeting.ended`` and
``recording.completed`` of a meeting the credential holds are recorded: the Previous
meetings tab then marks the meeting as held and its recording as ready. Events about
meetings the tool does not hold, or from another Zoom account, are acknowledged and
ignored, since Zoom retries any answer but a 2xx.
"""

from __future__ import annotations

import logging

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ltipro.meetings.repository import MeetingsRepository
from ltipro.plugin_settings import effective_settings
from ltipro.plugins import PROVIDERS
from ltipro.providers.zoom.webhooks import (
    MeetingEnded,
    RecordingCompleted,
    UrlValidation,
    WebhookRejected,
    receive,
)

log = logging.getLogger(__name__)

MAX_BODY = 1_000_000  # Zoom's events are a few kilobytes; a recording list a few more


def _refuse(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": code, "message": message}, status_code=status)


async def zoom_webhook(request: Request) -> Response:
    """Verify, answer the challenge, and record the meeting events."""
    tool = request.app.state.tool
    credential = await tool.repo.find_credential(request.path_params["credential"])
    if credential is None:
        return _refuse(404, "no_credential", "There is no credential of that name.")
    body = await request.body()
    if len(body) > MAX_BODY:
        return _refuse(413, "too_large", "The event is larger than any Zoom event.")
    settings = await effective_settings(tool, credential, PROVIDERS)
    secret = str(settings.get("zoom.webhook_secret_token") or "")
    try:
        outcome = receive(secret, body, request.headers)
    except WebhookRejected as refused:
        code = "bad_signature" if refused.status == 401 else "bad_event"
        return _refuse(refused.status, code, refused.message)
    if isinstance(outcome, UrlValidation):
        return JSONResponse(dict(outcome.response))
    if not isinstance(outcome, (RecordingCompleted, MeetingEnded)):
        return JSONResponse({"status": "ignored"})
    account = str(settings.get("zoom.account_id") or "")
    if outcome.account_id and account and outcome.account_id != account:
        log.warning("credential %s got an event of Zoom account %s", credential.name, account)
        return JSONResponse({"status": "ignored"})
    repo = MeetingsRepository(tool.repo.engine)
    meeting = await repo.by_provider_id(credential.id, "zoom", str(outcome.meeting_id))
    if meeting is None:
        return JSONResponse({"status": "ignored"})
    event = "recording.completed" if isinstance(outcome, RecordingCompleted) else "meeting.ended"
    recorded = await repo.record_event(meeting, event, outcome.meeting_uuid)
    return JSONResponse({"status": "recorded" if recorded else "duplicate"})
