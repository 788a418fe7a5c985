"""Course notifications: tell a course in its LMS that a meeting was scheduled or a
recording published (job kind ``course.notify``).

Only when the credential's option "Notify the course in the LMS" (``notify_course``) is
on. The job is enqueued in the transaction of the change (the new meeting, the published
recording), and its idempotency key names the effect, not the request: one notice per
meeting, one per published recording, one per "publish all" of a course. Publishing again
after a withdrawal, or a double click, therefore notifies nobody a second time.

The handler builds the notice from what is stored when it runs (a meeting deleted or a
recording withdrawn meanwhile is no longer announced) and calls the LMS hook
``notify_course`` through :func:`ltipro.calendar.runtime.course_lms`, on behalf of the
person who made the change (Canvas sends a conversation as the user who authorised the
tool). The notice's ``key`` is the job's, so a plugin that can look for a message it
already sent makes a retried job harmless at the LMS too. LMS errors are mapped like the
calendar sync's: throttling waits as asked, an unavailable LMS is retried with backoff,
and a refusal (not authorised, not found, refused) makes the job dead for an admin to read.
"""

from __future__ import annotations

import logging
from typing import Any, Final
from zoneinfo import ZoneInfo

import httpx
from sqlalchemy import and_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from ltipro.calendar.runtime import course_lms
from ltipro.calendar.sync import job_error
from ltipro.extension import CourseNotice
from ltipro.jobs import Job, JobContext, PermanentFailure, enqueue, job_handler
from ltipro.lmsapi import LmsApiError
from ltipro.meetings.model import Meeting
from ltipro.options import CredentialOptions
from ltipro.storage.meetings_tables import (
    course_recordings_published,
    meetings,
    published_recordings,
)
from ltipro.storage.repository import NotFound

log = logging.getLogger(__name__)

KIND = "course.notify"
MEETING_SCHEDULED: Final = "meeting_scheduled"
RECORDING_PUBLISHED: Final = "recording_published"
ALL_RECORDINGS = "*"
# The job's key must fit the queue's 255 characters whatever a provider's recording ids are.
MAX_PART = 100
HOOK = "notify_course"


# -- enqueueing, in the transaction of the change -------------------------------------------


def _part(value: str) -> str:
    return value if len(value) <= MAX_PART else value[:MAX_PART]


async def enqueue_meeting_notice(
    conn: AsyncConnection,
    uid: str,
    *,
    credential_id: int,
    course_id: int,
    options: CredentialOptions,
    by: str | None,
) -> Job | None:
    """Announce a newly scheduled meeting to its course, when the credential wants it."""
    if not options.notify_course:
        return None
    return await enqueue(
        conn,
        KIND,
        {
            "notice": MEETING_SCHEDULED,
            "meeting": uid,
            "credential": credential_id,
            "course": course_id,
            "by": by,
        },
        key=f"{KIND}:meeting:{_part(uid)}",
        credential_id=credential_id,
    )


async def enqueue_recording_notice(
    conn: AsyncConnection,
    uid: str,
    recording_id: str,
    *,
    credential_id: int,
    course_id: int,
    options: CredentialOptions,
    by: str | None,
) -> Job | None:
    """Announce a published recording (``recording_id`` ``*``: every recording of the
    course, for "publish all"), when the credential wants it."""
    if not options.notify_course:
        return None
    subject = f"course:{course_id}" if recording_id == ALL_RECORDINGS else _part(uid)
    return await enqueue(
        conn,
        KIND,
        {
            "notice": RECORDING_PUBLISHED,
            "meeting": uid,
            "recording": recording_id,
            "credential": credential_id,
            "course": course_id,
            "by": by,
        },
        key=f"{KIND}:recording:{subject}:{_part(recording_id)}",
        credential_id=credential_id,
    )


# -- the notices --------------------------------------------------------------------------------


def _when(meeting: Meeting) -> str:
    local = meeting.start_time.astimezone(ZoneInfo(meeting.timezone))
    return f"{local.strftime('%A %d %B %Y, %H:%M')} ({meeting.timezone})"


def meeting_notice(meeting: Meeting, key: str) -> CourseNotice:
    """The notice of a scheduled meeting: what, when, and the plain join link.

    Never a link that signs anyone in, nor the host's start link: the message is read by
    the whole course (or the sections and groups the meeting is for).
    """
    host = meeting.host_name or "Your instructor"
    lines = [f"{host} scheduled “{meeting.topic}”.", "", f"When: {_when(meeting)}"]
    lines.append(f"Duration: {meeting.duration} minutes")
    if meeting.recurrence is not None:
        lines.append(f"Repeats: {meeting.recurrence.type}")
    if meeting.agenda:
        lines += ["", meeting.agenda]
    lines += ["", f"Join: {meeting.join_url}"]
    return CourseNotice(
        kind=MEETING_SCHEDULED,
        subject=f"New meeting: {meeting.topic}",
        body="\n".join(lines),
        url=meeting.join_url,
        key=key,
        audience=tuple(meeting.audience),
    )


def recording_notice(meeting: Meeting | None, key: str, *, course_title: str = "") -> CourseNotice:
    """The notice of a published recording, or of every recording (``meeting`` ``None``)."""
    if meeting is None:
        title = course_title or "this course"
        return CourseNotice(
            kind=RECORDING_PUBLISHED,
            subject="Meeting recordings available",
            body=(
                f"The cloud recordings of the meetings of {title} are now available to "
                "students, and those to come will be too. Open the meetings tool in the "
                "course to watch them."
            ),
            url="",
            key=key,
        )
    return CourseNotice(
        kind=RECORDING_PUBLISHED,
        subject=f"Recording available: {meeting.topic}",
        body=(
            f"A recording of “{meeting.topic}” ({_when(meeting)}) is now available to "
            "students. Open the meetings tool in the course to watch it."
        ),
        url="",
        key=key,
        audience=tuple(meeting.audience),
    )


# -- the job ------------------------------------------------------------------------------------


async def _meeting(tool: Any, uid: str, course_id: int) -> Meeting | None:
    from ltipro.meetings.repository import _meeting as meeting_from_row

    async with tool.repo.engine.connect() as conn:
        row = (
            await conn.execute(
                select(meetings).where(
                    and_(meetings.c.uid == uid, meetings.c.course_id == course_id)
                )
            )
        ).first()
    return meeting_from_row(row) if row is not None else None


async def _still_published(tool: Any, meeting: Meeting | None, recording: str, course: int) -> bool:
    async with tool.repo.engine.connect() as conn:
        everything = (
            await conn.execute(
                select(course_recordings_published.c.course_id).where(
                    course_recordings_published.c.course_id == course
                )
            )
        ).first()
        if recording == ALL_RECORDINGS or everything is not None:
            return everything is not None
        assert meeting is not None
        row = (
            await conn.execute(
                select(published_recordings.c.id).where(
                    and_(
                        published_recordings.c.meeting_id == meeting.id,
                        published_recordings.c.recording_id == recording,
                    )
                )
            )
        ).first()
    return row is not None


async def build_notice(tool: Any, payload: dict[str, Any], key: str) -> CourseNotice | None:
    """The notice a job sends, from what is stored now; ``None`` when there is none left."""
    kind = payload.get("notice")
    course_id = int(payload["course"])
    uid = str(payload.get("meeting") or "")
    if kind == MEETING_SCHEDULED:
        meeting = await _meeting(tool, uid, course_id)
        return meeting_notice(meeting, key) if meeting is not None else None
    if kind == RECORDING_PUBLISHED:
        recording = str(payload.get("recording") or "")
        meeting = None if recording == ALL_RECORDINGS else await _meeting(tool, uid, course_id)
        if recording != ALL_RECORDINGS and meeting is None:
            return None
        if not await _still_published(tool, meeting, recording, course_id):
            return None
        if meeting is None:
            lms = await course_lms(tool, course_id)
            title = (lms.course.title or lms.course.label or "") if lms else ""
            return recording_notice(None, key, course_title=title)
        return recording_notice(meeting, key)
    raise PermanentFailure(f"the job's payload names no notice the tool knows: {kind!r}")


@job_handler(KIND, timeout=120)
async def notify(context: JobContext) -> None:
    """Handler of ``course.notify``: send one notice to the course; safe to run again."""
    tool = context.tool
    if tool is None:
        raise PermanentFailure("course.notify needs the running tool")
    payload: dict[str, Any] = context.payload if isinstance(context.payload, dict) else {}
    try:
        credential_id = int(payload["credential"])
        course_id = int(payload["course"])
    except (KeyError, TypeError, ValueError):
        raise PermanentFailure(f"the job's payload is not a notice: {payload!r}") from None
    try:
        credential = await tool.repo.credential_by_id(credential_id)
    except NotFound:
        return  # the credential is gone, and its courses with it
    if not credential.options.notify_course:
        log.info("notice %s not sent: course notifications were turned off", context.key)
        return
    notice = await build_notice(tool, payload, context.key)
    if notice is None:
        log.info("notice %s not sent: what it announced is gone", context.key)
        return
    by = payload.get("by")
    lms = await course_lms(tool, course_id, user_id=str(by) if by else None)
    if lms is None or lms.credential.id != credential_id:
        log.info("notice %s not sent: the course's LMS cannot be reached", context.key)
        return
    if not lms.implements(HOOK):
        log.info("notice %s not sent: %s cannot send messages", context.key, lms.lms)
        return
    try:
        sent = await lms.call(HOOK, notice=notice)
    except LmsApiError as exc:
        raise job_error(exc) from exc
    except httpx.HTTPError:
        raise  # a plugin's unwrapped transport error: retried with backoff
    if sent is None:
        log.info("notice %s not sent: %s cannot send messages", context.key, lms.lms)
    else:
        log.info("notice %s sent to course %s through %s", context.key, course_id, lms.lms)


__all__ = [
    "KIND",
    "build_notice",
    "enqueue_meeting_notice",
    "enqueue_recording_notice",
    "meeting_notice",
    "notify",
    "recording_notice",
]
