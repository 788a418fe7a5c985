"""The course's meetings page and its JSON API.

Every page action is a form post carrying the session token (so the tool works where
the browser refuses its cookie inside the LMS), and answers with the page itself.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response

from ltipro.extension import Audience
from ltipro.meetings.audiences import CourseAudiences
from ltipro.meetings.model import WEEKDAYS, FormError, Meeting
from ltipro.meetings.rules import csv_text
from ltipro.meetings.service import (
    AttendanceReport,
    CourseMeetings,
    MeetingError,
    RecordingView,
)
from ltipro.providers.base import Feature, ProviderError
from ltipro.sessions import FORM_FIELD, Session
from ltipro.web.notices import page_notices
from ltipro.web.security import allow_framing_by
from ltipro.web.session import bearer_token, require_session
from ltipro.web.templating import render

COMMON_TIMEZONES = (
    "UTC",
    "America/New_York",
    "America/Chicago",
    "America/Denver",
    "America/Phoenix",
    "America/Los_Angeles",
    "America/Anchorage",
    "Pacific/Honolulu",
    "America/Toronto",
    "America/Sao_Paulo",
    "Europe/London",
    "Europe/Paris",
    "Europe/Berlin",
    "Africa/Johannesburg",
    "Asia/Kolkata",
    "Asia/Singapore",
    "Asia/Tokyo",
    "Australia/Sydney",
    "Pacific/Auckland",
)


def local_time(value: datetime, timezone: str) -> str:
    """A meeting time as its reader expects it: in their own time zone."""
    return value.astimezone(ZoneInfo(timezone)).strftime("%a %d %b %Y, %H:%M")


def audience_json(audience: Audience) -> dict[str, str]:
    """A section or group for the API: its key is what a meeting's ``audience`` lists."""
    return {"key": audience.key, "kind": audience.kind, "id": audience.id, "name": audience.name}


def audience_label(meeting: Meeting) -> str:
    """The Section/Group column: the names of the sections and groups, or the course."""
    return ", ".join(a.name for a in meeting.audience) or "Whole course"


def meeting_json(meeting: Meeting, service: CourseMeetings, now: datetime) -> dict[str, Any]:
    """A meeting for the API. Never the start link: that is fetched by the host alone."""
    recurrence = meeting.recurrence
    return {
        "id": meeting.uid,
        "topic": meeting.topic,
        "agenda": meeting.agenda,
        "start_time": meeting.start_time.isoformat(),
        "next_start_time": meeting.next_start(now).isoformat(),
        "duration": meeting.duration,
        "timezone": meeting.timezone,
        "recurrence": (
            {
                "type": recurrence.type,
                "repeat_interval": recurrence.repeat_interval,
                "weekly_days": [WEEKDAYS[d - 1] for d in recurrence.weekly_days],
                "end_times": recurrence.end_times,
                "end_date_time": recurrence.end_date_time.isoformat()
                if recurrence.end_date_time
                else None,
            }
            if recurrence
            else None
        ),
        "host": {"name": meeting.host_name, "role": meeting.host_role},
        "audience": [audience_json(a) for a in meeting.audience],
        "provider": meeting.provider,
        "past": meeting.is_past(now),
        "you_host": service.may_start(meeting),
        "you_may_edit": service.may_manage(meeting),
    }


async def _service(request: Request) -> tuple[Session, CourseMeetings]:
    session = await require_session(request)
    return session, await CourseMeetings.open(request.app.state.tool, session)


def _token(request: Request, form: Mapping[str, Any]) -> str:
    token = form.get(FORM_FIELD) or bearer_token(request) or request.cookies.get("ltipro_session")
    return str(token or "")


async def _form(request: Request) -> dict[str, Any]:
    form = await request.form()
    data: dict[str, Any] = {}
    for key, value in form.multi_items():
        if not isinstance(value, str):
            continue
        if key in data:
            existing = data[key]
            data[key] = [*existing, value] if isinstance(existing, list) else [existing, value]
        else:
            data[key] = value
    return data


async def meetings_page(
    request: Request,
    service: CourseMeetings,
    token: str,
    *,
    message: str = "",
    error: str = "",
    form_errors: Mapping[str, str] | None = None,
    form_values: Mapping[str, Any] | None = None,
    editing: Meeting | None = None,
    status_code: int = 200,
    error_code: str = "",
    recordings: list[RecordingView] | None = None,
    attendance: list[AttendanceReport] | None = None,
    tab: str = "upcoming",
    feeds: Mapping[str, Any] | None = None,
    meetings: list[Meeting] | None = None,
) -> Response:
    """The course's meetings page; ``meetings`` is ``service.all()`` when the caller has
    just read it."""
    now = datetime.now(UTC)
    everything = meetings if meetings is not None else await service.all()
    upcoming, previous = await service.split(now, everything)
    # Previous meetings: every meeting with a session that may have been held, so a
    # recurring meeting's earlier occurrences have their reports before the series ends.
    held = sorted(
        (m for m in everything if m.has_started(now)),
        key=lambda m: m.start_time,
        reverse=True,
    )
    events = await service.repo.events([m.id for m in held])
    timezone = service.session.identity.timezone
    zones = list(COMMON_TIMEZONES)
    if timezone not in zones:
        zones.insert(0, timezone)
    provider = service.provider
    values = dict(form_values or {})
    audiences = await service.audiences() if service.may_choose_audience else None
    if editing is not None and not form_values:
        local = editing.start_time.astimezone(ZoneInfo(editing.timezone))
        values = {
            "topic": editing.topic,
            "agenda": editing.agenda,
            "date": local.strftime("%Y-%m-%d"),
            "time": local.strftime("%H:%M"),
            "duration": str(editing.duration),
            "timezone": editing.timezone,
            "repeat": editing.recurrence.type if editing.recurrence else "none",
            "audience": [a.key for a in editing.audience],
        }
    response = render(
        request,
        "meetings.html",
        {
            "service": service,
            "session": service.session,
            "context": service.session.context,
            "identity": service.session.identity,
            "token": token,
            "upcoming": upcoming,
            "previous": previous,
            "held": held,
            "events": events,
            "recordings": recordings,
            "publish_all": await service.publishes_all()
            if recordings is not None and service.may_manage_recordings
            else False,
            "attendance": attendance,
            "tab": tab,
            "error_code": error_code,
            "now": now,
            "local_time": local_time,
            "timezone": timezone,
            "zones": zones,
            "provider": provider,
            "has_recordings": provider.has(Feature.RECORDINGS),
            "has_attendance": provider.has(Feature.ATTENDANCE),
            "missing_features": provider.missing_features(),
            "message": message,
            "error": error,
            "form_errors": dict(form_errors or {}),
            "values": values,
            "editing": editing,
            "weekdays": WEEKDAYS,
            "audiences": audiences,
            "audience_choices": audience_choices(audiences, editing),
            "chosen_audience": _chosen_keys(values.get("audience")),
            "audience_label": audience_label,
            "options": service.credential.options,
            "invitation": lambda m: invitation(m, timezone),
            # The calendar feed links, once asked for (ltipro.web.feeds).
            "feeds": feeds,
            # What the course's LMS plugin asks of this person (ltipro.web.notices).
            "notices": await page_notices(service),
        },
        status_code=status_code,
    )
    allow_framing_by(request, service.credential.options.approved_domains)
    return response


def audience_choices(
    audiences: CourseAudiences | None, editing: Meeting | None
) -> dict[str, list[Audience]]:
    """The sections and groups the form offers: the LMS's, and those the edited meeting
    is already for (a section the LMS no longer lists stays visible, and can be unticked)."""
    listed = list(audiences.audiences) if audiences is not None else []
    keys = {a.key for a in listed}
    extra = [a for a in (editing.audience if editing else ()) if a.key not in keys]
    everything = listed + extra
    return {
        "Sections": [a for a in everything if a.kind == "section"],
        "Groups": [a for a in everything if a.kind == "group"],
    }


def _chosen_keys(value: Any) -> set[str]:
    if value is None:
        return set()
    if isinstance(value, (list, tuple)):
        return {str(v) for v in value}
    return {v.strip() for v in str(value).split(",") if v.strip()}


def invitation(meeting: Meeting, timezone: str) -> str:
    """The text an instructor copies to invite people."""
    when = local_time(meeting.start_time, timezone)
    repeat = f" (repeats {meeting.recurrence.type})" if meeting.recurrence else ""
    return (
        f"{meeting.host_name or 'Your instructor'} invites you to a meeting.\n\n"
        f"Topic: {meeting.topic}\nTime: {when} {timezone}{repeat}\n\n"
        # The stored link: an invitation travels, so it never signs anyone in.
        f"Join: {meeting.join_url}\n"
    )


async def show(request: Request) -> Response:
    """``GET|POST /meetings``: the course's meetings."""
    form = await _form(request) if request.method == "POST" else {}
    _, service = await _service(request)
    return await meetings_page(request, service, _token(request, form))


async def schedule(request: Request) -> Response:
    """``POST /meetings/schedule``."""
    form = await _form(request)
    _, service = await _service(request)
    token = _token(request, form)
    try:
        meeting = await service.schedule(form)
    except FormError as exc:
        return await meetings_page(
            request, service, token, form_errors=exc.errors, form_values=form, status_code=422
        )
    except (MeetingError, ProviderError) as exc:
        return await meetings_page(
            request,
            service,
            token,
            error=exc.message,
            error_code=exc.code,
            form_values=form,
            status_code=exc.status,
        )
    return await meetings_page(request, service, token, message=f"Scheduled “{meeting.topic}”.")


async def edit(request: Request) -> Response:
    """``POST /meetings/{uid}/edit``: the page with the meeting's edit form."""
    form = await _form(request)
    _, service = await _service(request)
    token = _token(request, form)
    try:
        meeting = await service.meeting(request.path_params["uid"])
        if not service.may_manage(meeting):
            raise MeetingError("not_allowed", "You cannot change this meeting.")
    except MeetingError as exc:
        return await meetings_page(
            request, service, token, error=exc.message, error_code=exc.code, status_code=exc.status
        )
    return await meetings_page(request, service, token, editing=meeting)


async def update(request: Request) -> Response:
    """``POST /meetings/{uid}/update``."""
    form = await _form(request)
    _, service = await _service(request)
    token = _token(request, form)
    uid = request.path_params["uid"]
    try:
        meeting = await service.update(uid, form)
    except FormError as exc:
        editing = await service.meeting(uid)
        return await meetings_page(
            request,
            service,
            token,
            form_errors=exc.errors,
            form_values=form,
            editing=editing,
            status_code=422,
        )
    except (MeetingError, ProviderError) as exc:
        return await meetings_page(
            request, service, token, error=exc.message, error_code=exc.code, status_code=exc.status
        )
    return await meetings_page(request, service, token, message=f"Saved “{meeting.topic}”.")


async def delete(request: Request) -> Response:
    """``POST /meetings/{uid}/delete``."""
    form = await _form(request)
    _, service = await _service(request)
    token = _token(request, form)
    try:
        meeting = await service.meeting(request.path_params["uid"])
        await service.delete(meeting.uid)
    except (MeetingError, ProviderError) as exc:
        return await meetings_page(
            request, service, token, error=exc.message, error_code=exc.code, status_code=exc.status
        )
    return await meetings_page(request, service, token, message=f"Deleted “{meeting.topic}”.")


async def start(request: Request) -> Response:
    """``POST /meetings/{uid}/start``: off to the host's start link (in a new window)."""
    await _form(request)
    _, service = await _service(request)
    try:
        url = await service.start_url(request.path_params["uid"])
    except (MeetingError, ProviderError) as exc:
        return await meetings_page(
            request, service, "", error=exc.message, error_code=exc.code, status_code=exc.status
        )
    return RedirectResponse(url, status_code=303, headers={"Cache-Control": "no-store"})


async def join(request: Request) -> Response:
    """``POST /meetings/{uid}/join``: off to the meeting (in a new window)."""
    await _form(request)
    _, service = await _service(request)
    try:
        url = await service.join_url(request.path_params["uid"])
    except (MeetingError, ProviderError) as exc:
        return await meetings_page(
            request, service, "", error=exc.message, error_code=exc.code, status_code=exc.status
        )
    return RedirectResponse(url, status_code=303, headers={"Cache-Control": "no-store"})


# -- JSON API ---------------------------------------------------------------------------------


def _api_error(code: str, message: str, status: int, **extra: Any) -> JSONResponse:
    return JSONResponse({"error": code, "message": message, **extra}, status_code=status)


async def _json_body(request: Request) -> dict[str, Any]:
    try:
        data = json.loads(await request.body() or b"{}")
    except (ValueError, UnicodeDecodeError):
        raise MeetingError("bad_json", "The request body is not JSON.", status=400) from None
    if not isinstance(data, dict):
        raise MeetingError("bad_json", "The request body must be a JSON object.", status=400)
    return data


async def _api(request: Request, action: Any) -> Response:
    try:
        _, service = await _service(request)
        return await action(service)
    except FormError as exc:
        return _api_error("invalid", "The meeting has mistakes.", 422, fields=exc.errors)
    except (MeetingError, ProviderError) as exc:
        return _api_error(exc.code, exc.message, exc.status)


async def api_list(request: Request) -> Response:
    async def action(service: CourseMeetings) -> Response:
        now = datetime.now(UTC)
        upcoming, previous = await service.split(now)
        return JSONResponse(
            {
                "upcoming": [meeting_json(m, service, now) for m in upcoming],
                "previous": [meeting_json(m, service, now) for m in previous],
                "may_schedule": service.may_schedule,
                "provider": {
                    "name": service.provider.name,
                    "title": service.provider.title,
                    "features": sorted(str(f) for f in service.provider.features),
                },
            }
        )

    return await _api(request, action)


async def api_create(request: Request) -> Response:
    async def action(service: CourseMeetings) -> Response:
        meeting = await service.schedule(await _json_body(request))
        return JSONResponse(meeting_json(meeting, service, datetime.now(UTC)), status_code=201)

    return await _api(request, action)


async def api_get(request: Request) -> Response:
    async def action(service: CourseMeetings) -> Response:
        meeting = await service.meeting(request.path_params["uid"])
        return JSONResponse(meeting_json(meeting, service, datetime.now(UTC)))

    return await _api(request, action)


def repeat_fields(meeting: Meeting) -> dict[str, Any]:
    """A meeting's recurrence as the form fields that give it, so a PATCH that does not
    mention the recurrence keeps it."""
    recurrence = meeting.recurrence
    if recurrence is None:
        return {"repeat": "none"}
    fields: dict[str, Any] = {
        "repeat": recurrence.type,
        "repeat_interval": recurrence.repeat_interval,
        "weekly_days": [WEEKDAYS[d - 1] for d in recurrence.weekly_days],
        "end_times": recurrence.end_times,
    }
    if recurrence.end_date_time is not None:
        zone = ZoneInfo(meeting.timezone)
        fields["end_date"] = recurrence.end_date_time.astimezone(zone).date().isoformat()
    return fields


async def api_update(request: Request) -> Response:
    async def action(service: CourseMeetings) -> Response:
        uid = request.path_params["uid"]
        current = await service.meeting(uid)
        changes = await _json_body(request)
        merged = {
            "topic": current.topic,
            "agenda": current.agenda,
            "start_time": current.start_time.isoformat(),
            "duration": current.duration,
            "timezone": current.timezone,
            "audience": [a.key for a in current.audience],
            **repeat_fields(current),
            **changes,
        }
        meeting = await service.update(uid, merged)
        return JSONResponse(meeting_json(meeting, service, datetime.now(UTC)))

    return await _api(request, action)


async def api_delete(request: Request) -> Response:
    async def action(service: CourseMeetings) -> Response:
        await service.delete(request.path_params["uid"])
        return Response(status_code=204)

    return await _api(request, action)


async def api_start(request: Request) -> Response:
    async def action(service: CourseMeetings) -> Response:
        url = await service.start_url(request.path_params["uid"])
        return JSONResponse({"start_url": url}, headers={"Cache-Control": "no-store"})

    return await _api(request, action)


async def api_join(request: Request) -> Response:
    async def action(service: CourseMeetings) -> Response:
        url = await service.join_url(request.path_params["uid"])
        return JSONResponse({"join_url": url}, headers={"Cache-Control": "no-store"})

    return await _api(request, action)


async def api_audiences(request: Request) -> Response:
    """``GET /api/v1/audiences``: the sections and groups a meeting can be for."""

    async def action(service: CourseMeetings) -> Response:
        if not service.may_choose_audience:
            raise MeetingError(
                "not_allowed", "Only instructors hold meetings for sections or groups."
            )
        audiences = await service.audiences()
        return JSONResponse(
            {
                "available": audiences.available,
                "reason": audiences.reason or None,
                "sections": [audience_json(a) for a in audiences.sections],
                "groups": [audience_json(a) for a in audiences.groups],
            },
            headers={"Cache-Control": "no-store"},
        )

    return await _api(request, action)


# -- recordings and attendance: pages -------------------------------------------------------


def recording_json(view: RecordingView) -> dict[str, Any]:
    """A recording with its play and download links, as the person may see it."""
    recording = view.recording
    return {
        "id": recording.id,
        "meeting": view.meeting.uid,
        "topic": view.meeting.topic,
        "start_time": recording.start_time.isoformat() if recording.start_time else None,
        "duration": recording.duration,
        "published": view.published,
        "host_role": view.meeting.host_role,
        "files": [
            {
                "type": f.file_type,
                "play_url": f.play_url,
                "download_url": f.download_url,
                "size": f.size,
            }
            for f in recording.files
        ],
    }


def attendance_json(report: AttendanceReport) -> dict[str, Any]:
    def when(value: datetime | None) -> str | None:
        return value.isoformat() if value else None

    return {
        "id": report.instance.id,
        "start_time": when(report.instance.start_time),
        "attendees": [
            {
                "name": a.name,
                "email": a.email,
                "join_time": when(a.join_time),
                "leave_time": when(a.leave_time),
                "duration": a.duration,
            }
            for a in report.attendees
        ],
    }


def attendance_csv(report: AttendanceReport, timezone: str) -> Response:
    """One session's attendance as a CSV file a spreadsheet opens safely."""
    zone = ZoneInfo(timezone)

    def when(value: datetime | None) -> str:
        return value.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S") if value else ""

    text = csv_text(
        ["Name", "Email", f"Joined ({timezone})", f"Left ({timezone})", "Minutes"],
        (
            [a.name, a.email or "", when(a.join_time), when(a.leave_time), round(a.duration / 60)]
            for a in report.attendees
        ),
    )
    day = report.instance.start_time.strftime("%Y-%m-%d") if report.instance.start_time else "held"
    return Response(
        text,
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="attendance-{report.meeting.uid}-{day}.csv"',
            "Cache-Control": "no-store",
        },
    )


async def _page_action(request: Request, action: Any, **page: Any) -> Response:
    """Run ``action(service, form)`` and show the page; its errors show on the page."""
    form = await _form(request)
    _, service = await _service(request)
    token = _token(request, form)
    try:
        extra = await action(service, form)
    except (MeetingError, ProviderError) as exc:
        return await meetings_page(
            request,
            service,
            token,
            error=exc.message,
            error_code=exc.code,
            status_code=exc.status,
            **page,
        )
    return await meetings_page(request, service, token, **(page | extra))


def _flag(value: Any) -> bool:
    return str(value).strip().lower() in ("1", "true", "yes", "on")


async def recordings_page(request: Request) -> Response:
    """``POST /meetings/recordings``: the page with the Cloud recordings tab filled in."""

    async def action(service: CourseMeetings, form: Mapping[str, Any]) -> dict[str, Any]:
        return {"recordings": await service.recordings()}

    return await _page_action(request, action, tab="recordings")


async def publish_all(request: Request) -> Response:
    """``POST /meetings/recordings/publish-all`` (``published`` = 1 or 0)."""

    async def action(service: CourseMeetings, form: Mapping[str, Any]) -> dict[str, Any]:
        on = _flag(form.get("published", "1"))
        await service.publish_all(on)
        return {
            "recordings": await service.recordings(),
            "message": "Every recording of the course is published to students."
            if on
            else "Students now see only the recordings published one by one.",
        }

    return await _page_action(request, action, tab="recordings")


async def publish(request: Request) -> Response:
    """``POST /meetings/{uid}/recordings/publish`` (``recording_id``, ``published``)."""

    async def action(service: CourseMeetings, form: Mapping[str, Any]) -> dict[str, Any]:
        on = _flag(form.get("published", "1"))
        meeting = await service.publish(
            request.path_params["uid"], str(form.get("recording_id") or ""), on
        )
        verb = "Published" if on else "Withdrew"
        return {
            "recordings": await service.recordings(),
            "message": f"{verb} the recording of “{meeting.topic}”.",
        }

    return await _page_action(request, action, tab="recordings")


async def delete_recording(request: Request) -> Response:
    """``POST /meetings/{uid}/recordings/delete`` (``recording_id``)."""

    async def action(service: CourseMeetings, form: Mapping[str, Any]) -> dict[str, Any]:
        meeting = await service.delete_recording(
            request.path_params["uid"], str(form.get("recording_id") or "")
        )
        return {
            "recordings": await service.recordings(),
            "message": f"Deleted the recording of “{meeting.topic}”.",
        }

    return await _page_action(request, action, tab="recordings")


async def attendance_page(request: Request) -> Response:
    """``POST /meetings/{uid}/attendance``: the Previous meetings tab with the report."""

    async def action(service: CourseMeetings, form: Mapping[str, Any]) -> dict[str, Any]:
        return {"attendance": await service.attendance(request.path_params["uid"])}

    return await _page_action(request, action, tab="previous")


async def attendance_download(request: Request) -> Response:
    """``POST /meetings/{uid}/attendance.csv`` (``session``): one session as CSV."""
    form = await _form(request)
    _, service = await _service(request)
    try:
        reports = await service.attendance(
            request.path_params["uid"], str(form.get("instance") or "")
        )
    except (MeetingError, ProviderError) as exc:
        return await meetings_page(
            request,
            service,
            _token(request, form),
            error=exc.message,
            error_code=exc.code,
            status_code=exc.status,
            tab="previous",
        )
    return attendance_csv(reports[0], service.session.identity.timezone)


# -- recordings and attendance: JSON API ----------------------------------------------------


async def api_recordings(request: Request) -> Response:
    """``GET /api/v1/recordings`` (the course) or ``/api/v1/meetings/{uid}/recordings``."""

    async def action(service: CourseMeetings) -> Response:
        views = await service.recordings(request.path_params.get("uid"))
        body: dict[str, Any] = {"recordings": [recording_json(v) for v in views]}
        if service.may_manage_recordings:
            body["publish_all"] = await service.publishes_all()
        return JSONResponse(body, headers={"Cache-Control": "no-store"})

    return await _api(request, action)


async def api_publish_all(request: Request) -> Response:
    """``POST /api/v1/recordings/publish-all`` with ``{"published": true|false}``."""

    async def action(service: CourseMeetings) -> Response:
        data = await _json_body(request)
        on = data.get("published", True)
        if not isinstance(on, bool):
            raise MeetingError("invalid", "published is true or false.", status=422)
        await service.publish_all(on)
        return JSONResponse({"publish_all": on})

    return await _api(request, action)


def _recording_id(data: Mapping[str, Any]) -> str:
    value = data.get("recording_id")
    if not isinstance(value, str) or not value.strip():
        raise MeetingError("invalid", "recording_id names the recording.", status=422)
    return value


async def api_publish(request: Request) -> Response:
    """``POST /api/v1/meetings/{uid}/recordings/publish`` with ``recording_id``, ``published``."""

    async def action(service: CourseMeetings) -> Response:
        data = await _json_body(request)
        on = data.get("published", True)
        if not isinstance(on, bool):
            raise MeetingError("invalid", "published is true or false.", status=422)
        await service.publish(request.path_params["uid"], _recording_id(data), on)
        return JSONResponse({"recording_id": data["recording_id"], "published": on})

    return await _api(request, action)


async def api_delete_recording(request: Request) -> Response:
    """``POST /api/v1/meetings/{uid}/recordings/delete`` with ``recording_id``."""

    async def action(service: CourseMeetings) -> Response:
        data = await _json_body(request)
        await service.delete_recording(request.path_params["uid"], _recording_id(data))
        return Response(status_code=204)

    return await _api(request, action)


async def api_attendance(request: Request) -> Response:
    """``GET /api/v1/meetings/{uid}/attendance``: every held session's attendance."""

    async def action(service: CourseMeetings) -> Response:
        reports = await service.attendance(request.path_params["uid"])
        return JSONResponse(
            {"sessions": [attendance_json(r) for r in reports]},
            headers={"Cache-Control": "no-store"},
        )

    return await _api(request, action)


async def api_attendance_csv(request: Request) -> Response:
    """``GET /api/v1/meetings/{uid}/attendance.csv?session=ID``: one session as CSV."""

    async def action(service: CourseMeetings) -> Response:
        session_id = request.query_params.get("session", "")
        if not session_id:
            raise MeetingError("invalid", "Name the session: ?session=ID.", status=422)
        reports = await service.attendance(request.path_params["uid"], session_id)
        return attendance_csv(reports[0], service.session.identity.timezone)

    return await _api(request, action)


def _operation(summary: str, ok: str, ok_status: str = "200", body: bool = False) -> dict[str, Any]:
    """One session-authenticated operation of the meetings API, for the OpenAPI document."""
    error = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    operation: dict[str, Any] = {
        "summary": summary,
        "security": [{"session": []}],
        "responses": {
            ok_status: {"description": ok},
            "401": {"description": "No valid session", "content": error},
            "403": {"description": "Not allowed for this user", "content": error},
            "404": {"description": "No such meeting in this course", "content": error},
        },
    }
    if body:
        operation["requestBody"] = {
            "content": {
                "application/json": {"schema": {"$ref": "#/components/schemas/MeetingInput"}}
            }
        }
        operation["responses"]["422"] = {"description": "The meeting has mistakes, per field"}
    return operation


# Paths relative to the document's server, /api/v1.
OPENAPI_PATHS: dict[str, Any] = {
    "/meetings": {
        "get": _operation("The course's upcoming and previous meetings", "meetings"),
        "post": _operation("Schedule a meeting", "the meeting", "201", body=True),
    },
    "/meetings/{uid}": {
        "get": _operation("One meeting of the course", "the meeting"),
        "patch": _operation(
            "Change a meeting (fields not sent keep their value)", "the meeting", body=True
        ),
        "delete": _operation("Delete a meeting", "deleted", "204"),
    },
    "/audiences": {
        "get": _operation(
            "The course's sections and groups a meeting can be for (those who schedule): "
            "`available` is false, with a one-line `reason`, when the LMS cannot tell",
            "sections and groups, each with the `key` a meeting's `audience` lists",
        )
    },
    "/meetings/{uid}/start": {
        "post": _operation("The host's start link (the host only; never cached)", "start_url"),
    },
    "/meetings/{uid}/join": {
        "post": _operation("The caller's own join link", "join_url"),
    },
    "/recordings": {
        "get": _operation(
            "The course's cloud recordings the user may see, with their links",
            "recordings, and publish_all for instructors",
        )
    },
    "/recordings/publish-all": {
        "post": _operation(
            "Publish every recording of the course to students (instructors)",
            "the course's publish_all flag",
        )
    },
    "/meetings/{uid}/recordings": {
        "get": _operation("A meeting's cloud recordings the user may see", "recordings")
    },
    "/meetings/{uid}/recordings/publish": {
        "post": _operation(
            "Publish or withdraw one recording (instructors)", "the recording's published flag"
        )
    },
    "/meetings/{uid}/recordings/delete": {
        "post": _operation("Delete one recording (instructors)", "deleted", "204")
    },
    "/meetings/{uid}/attendance": {
        "get": _operation(
            "Attendance of each held session of a meeting (instructors)",
            "sessions with their attendees",
        )
    },
    "/meetings/{uid}/attendance.csv": {
        "get": _operation("One session's attendance as CSV (instructors)", "text/csv")
    },
}

OPENAPI_SCHEMAS: dict[str, Any] = {
    "MeetingInput": {
        "type": "object",
        "properties": {
            "topic": {"type": "string", "maxLength": 200},
            "agenda": {"type": "string", "maxLength": 2000},
            "start_time": {
                "type": "string",
                "description": "ISO 8601; without an offset it is read in `timezone`",
            },
            "duration": {"type": "integer", "minimum": 1, "maximum": 1440},
            "timezone": {"type": "string", "description": "an IANA time zone name"},
            "repeat": {"type": "string", "enum": ["none", "daily", "weekly", "monthly"]},
            "repeat_interval": {"type": "integer"},
            "weekly_days": {"type": "array", "items": {"type": "string"}},
            "end_times": {"type": "integer", "minimum": 1, "maximum": 60},
            "end_date": {"type": "string", "format": "date"},
            "audience": {
                "type": "array",
                "maxItems": 50,
                "items": {"type": "string", "pattern": "^(section|group):[A-Za-z0-9._~-]+$"},
                "description": "keys of sections and groups from GET /audiences; "
                "empty or absent: the whole course (PATCH without it keeps the meeting's)",
            },
        },
    }
}
