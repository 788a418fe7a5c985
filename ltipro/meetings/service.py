"""A course's meetings for the person using the tool: list, schedule, edit, delete,
start and join, with the credential's rules and the provider behind them."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ltipro.calendar.notify import (
    ALL_RECORDINGS,
    enqueue_meeting_notice,
    enqueue_recording_notice,
)
from ltipro.calendar.sync import enqueue_calendar_sync
from ltipro.extension import Audience
from ltipro.meetings import rules
from ltipro.meetings.audiences import CourseAudiences, course_audiences
from ltipro.meetings.model import (
    FormError,
    Meeting,
    MeetingForm,
    launch_sections,
    may_manage,
    may_manage_recordings,
    may_schedule,
    may_see,
    may_see_attendance,
    may_start,
)
from ltipro.meetings.repository import InTransaction, MeetingsRepository
from ltipro.options import CredentialOptions
from ltipro.providers.base import (
    Attendee,
    Feature,
    HeldInstance,
    MeetingsProvider,
    NotSupported,
    Person,
    ProviderError,
    Recording,
)
from ltipro.sessions import Session
from ltipro.storage.repository import Credential

log = logging.getLogger(__name__)


class MeetingError(Exception):
    """Something the user asked that the rules refuse; ``status`` is a 4xx."""

    def __init__(self, code: str, message: str, status: int = 403) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


@dataclass(frozen=True)
class RecordingView:
    """A recording as one person may see it: its meeting, and whether students see it."""

    meeting: Meeting
    recording: Recording
    published: bool


@dataclass(frozen=True)
class AttendanceReport:
    """Who attended one held session of a meeting."""

    meeting: Meeting
    instance: HeldInstance
    attendees: list[Attendee]


async def sync_alternative_hosts(
    repo: MeetingsRepository,
    provider: MeetingsProvider,
    options: CredentialOptions,
    course_id: int,
    now: datetime | None = None,
) -> int:
    """Give the course's upcoming meetings its eligible instructors as alternative hosts.

    Only meetings whose alternative hosts differ from what the tool last set are changed,
    so a launch that changes nothing calls the provider not at all. Returns how many
    meetings changed. Imported meetings always get them, whatever the option says: their
    host is the provider user who made them, so without alternative hosts no one in the
    course could start them.
    """
    if not provider.has(Feature.ALTERNATIVE_HOSTS):
        return 0
    now = now or datetime.now(UTC)
    instructors = await repo.eligible_instructors(course_id)
    changed = 0
    for meeting in await repo.for_course(course_id):
        if meeting.is_past(now):
            continue
        if meeting.source != "import" and not rules.hosts_get_alternatives(
            options, meeting.host_role
        ):
            continue
        wanted = rules.alternative_hosts(instructors, meeting.host_email)
        if wanted == (meeting.alternative_hosts or ()):
            continue
        try:
            await provider.set_alternative_hosts(meeting.provider_meeting_id, wanted)
        except ProviderError as exc:
            log.warning("alternative hosts of meeting %s: %s", meeting.uid, exc.message)
            continue
        await repo.change(meeting, {"alternative_hosts": wanted})
        changed += 1
    return changed


@dataclass
class CourseMeetings:
    """The meetings of the session's course, as the session's user may see and use them."""

    session: Session
    credential: Credential
    course_id: int
    provider: MeetingsProvider
    repo: MeetingsRepository
    # The tool, to reach the course's LMS (its sections and groups); None in unit tests.
    tool: Any = None
    _audiences: CourseAudiences | None = field(default=None, repr=False)

    @classmethod
    async def open(
        cls,
        tool: Any,
        session: Session,
        credential: Credential | None = None,
        course_id: int | None = None,
    ) -> CourseMeetings:
        """The session's course; ``credential`` is the session's, when already read, and
        ``course_id`` the course's id when the launch has just recorded it."""
        if session.context.course is None:
            raise MeetingError(
                "no_course",
                "The tool was opened outside a course, so it has no meetings to show.",
                status=400,
            )
        if credential is None or credential.id != session.credential_id:
            credential = await tool.repo.credential_by_id(session.credential_id)
        repo = MeetingsRepository(tool.repo.engine)
        if course_id is None:
            course_id = await repo.course_id(
                credential.id, session.context.domain, session.context.course.context_id
            )
        if course_id is None:
            raise MeetingError("no_course", "This course is not known to the tool.", status=404)
        provider = await tool.providers.for_credential(tool, credential)
        return cls(session, credential, course_id, provider, repo, tool=tool)

    # -- who ------------------------------------------------------------------------------

    @property
    def role(self) -> str:
        return self.session.identity.role

    @property
    def options(self) -> CredentialOptions:
        return self.credential.options

    @property
    def user_id(self) -> str | None:
        return self.session.context.user_id

    @property
    def person(self) -> Person:
        context = self.session.context
        return Person(
            email=self.session.identity.email,
            name=context.name,
            given_name=context.given_name,
            family_name=context.family_name,
            user_id=context.user_id,
        )

    @property
    def may_schedule(self) -> bool:
        return not self.session.context.anonymous and may_schedule(
            self.role, self.credential.options
        )

    def may_see(self, meeting: Meeting) -> bool:
        """Whether the meeting is listed for this person (its sections and groups)."""
        return may_see(
            meeting, self.role, self.user_id, launch_sections(self.session.context.attributes)
        )

    def may_manage(self, meeting: Meeting) -> bool:
        return may_manage(meeting, self.role, self.user_id, self.credential.options)

    def may_start(self, meeting: Meeting) -> bool:
        return may_start(meeting, self.user_id)

    def may_see_attendance(self, meeting: Meeting) -> bool:
        return self.provider.has(Feature.ATTENDANCE) and may_see_attendance(
            meeting, self.role, self.options
        )

    @property
    def may_manage_recordings(self) -> bool:
        return may_manage_recordings(self.role)

    @property
    def may_see_recordings(self) -> bool:
        """Instructors always; students as the recording link option allows."""
        if not self.provider.has(Feature.RECORDINGS):
            return False
        return self.may_manage_recordings or self.options.recording_link_for_students != "off"

    # -- reading ----------------------------------------------------------------------------

    async def all(self) -> list[Meeting]:
        return [m for m in await self.repo.for_course(self.course_id) if self.may_see(m)]

    async def split(
        self, now: datetime | None = None, meetings: list[Meeting] | None = None
    ) -> tuple[list[Meeting], list[Meeting]]:
        """(upcoming, previous): upcoming soonest first, previous latest first.

        ``meetings`` is the course's meetings when the caller has just read them.
        """
        now = now or datetime.now(UTC)
        if meetings is None:
            meetings = await self.all()
        upcoming = sorted(
            (m for m in meetings if not m.is_past(now)), key=lambda m: m.next_start(now)
        )
        previous = sorted(
            (m for m in meetings if m.is_past(now)), key=lambda m: m.end_time, reverse=True
        )
        return upcoming, previous

    async def meeting(self, uid: str) -> Meeting:
        found = await self.repo.get(self.credential.id, self.course_id, uid)
        if found is None or not self.may_see(found):
            raise MeetingError("no_meeting", "There is no such meeting in this course.", status=404)
        return found

    # -- sections and groups ----------------------------------------------------------------

    @property
    def may_choose_audience(self) -> bool:
        """Instructors hold meetings for sections and groups; students host for the course."""
        return self.may_schedule and self.role == "instructor"

    async def audiences(self) -> CourseAudiences:
        """The course's sections and groups, as its LMS lists them (cached briefly)."""
        if self._audiences is None:
            if self.tool is None:
                return CourseAudiences(reason="The course's LMS cannot be reached.")
            self._audiences = await course_audiences(
                self.tool, self.course_id, user_id=self.user_id, lms=self.session.context.lms
            )
        return self._audiences

    async def _chosen_audience(
        self, keys: tuple[str, ...], current: tuple[Audience, ...] = ()
    ) -> tuple[Audience, ...]:
        """The sections and groups chosen, each one the LMS listed for this course.

        Those the meeting is already for stay accepted (a section the LMS no longer
        lists, or an LMS that cannot answer now, does not block editing the topic).
        """
        kept = {a.key: a for a in current}
        if all(key in kept for key in keys):
            return tuple(kept[key] for key in keys)
        if not self.may_choose_audience:
            raise FormError({"audience": "Only instructors hold meetings for sections or groups."})
        choices = await self.audiences()
        if not choices.available:
            raise FormError({"audience": choices.reason})
        chosen: list[Audience] = []
        for key in keys:
            found = choices.find(key) or kept.get(key)
            if found is None:
                raise FormError({"audience": "Choose sections or groups of this course."})
            chosen.append(found)
        return tuple(chosen)

    # -- changing -----------------------------------------------------------------------------

    def _form(self, data: Mapping[str, Any]) -> MeetingForm:
        return MeetingForm.parse(data, self.session.identity.timezone, datetime.now(UTC))

    async def schedule(self, data: Mapping[str, Any]) -> Meeting:
        if not self.may_schedule:
            raise MeetingError(
                "not_allowed", "Only instructors can schedule meetings in this course."
            )
        form = self._form(data)
        audience = await self._chosen_audience(form.audience)
        if not self.session.identity.email:
            raise MeetingError(
                "no_email", "The tool needs your email address to make you a meeting host.", 400
            )
        host = await self.provider.host_account(self.person, role=self.role, options=self.options)
        alternative = await self._alternative_hosts(self.role, host.email)
        created = await self.provider.create_meeting(
            host, form.spec(alternative, self._tracking_fields())
        )
        try:
            return await self.repo.add(
                credential_id=self.credential.id,
                course_id=self.course_id,
                provider=self.provider.name,
                provider_meeting_id=created.id,
                topic=form.topic,
                agenda=form.agenda,
                start_time=form.start_time,
                duration=form.duration,
                timezone=form.timezone,
                recurrence=form.recurrence,
                join_url=created.join_url,
                host_user_id=self.user_id or "",
                host_name=self.session.context.name,
                host_email=host.email,
                host_role=self.role,
                host_account_id=host.id,
                audience=audience,
                source="tool",
                alternative_hosts=alternative,
                in_transaction=self._with_notice(self._calendar_sync()),
            )
        except Exception:
            # The provider holds a meeting the tool could not record: remove it again.
            await self.provider.delete_meeting(created.id)
            raise

    async def update(self, uid: str, data: Mapping[str, Any]) -> Meeting:
        meeting = await self.meeting(uid)
        if not self.may_manage(meeting):
            raise MeetingError("not_allowed", "You cannot change this meeting.")
        form = self._form(data)
        audience = await self._chosen_audience(form.audience, meeting.audience)
        alternative = await self._alternative_hosts(meeting.host_role, meeting.host_email)
        await self.provider.update_meeting(
            meeting.provider_meeting_id, form.spec(alternative, self._tracking_fields())
        )
        changes: dict[str, Any] = {} if alternative is None else {"alternative_hosts": alternative}
        return await self.repo.change(
            meeting,
            changes
            | {
                "topic": form.topic,
                "agenda": form.agenda,
                "start_time": form.start_time,
                "duration": form.duration,
                "timezone": form.timezone,
                "recurrence": form.recurrence,
                "audience": audience,
            },
            in_transaction=self._calendar_sync(),
        )

    async def delete(self, uid: str) -> None:
        meeting = await self.meeting(uid)
        if not self.may_manage(meeting):
            raise MeetingError("not_allowed", "You cannot delete this meeting.")
        await self.provider.delete_meeting(meeting.provider_meeting_id)
        await self.repo.remove(meeting, in_transaction=self._calendar_sync(meeting))

    def _with_notice(self, first: InTransaction) -> InTransaction:
        """``first``, then the course's notice of a new meeting (when the credential
        notifies courses), in the same transaction as the meeting."""

        async def enqueue(conn: Any, uid: str) -> None:
            await first(conn, uid)
            await enqueue_meeting_notice(
                conn,
                uid,
                credential_id=self.credential.id,
                course_id=self.course_id,
                options=self.options,
                by=self.user_id,
            )

        return enqueue

    def _recording_notice(self, recording_id: str) -> InTransaction:
        """The course's notice of a published recording (``*``: all of them), written
        with the publication."""

        async def enqueue(conn: Any, uid: str) -> None:
            await enqueue_recording_notice(
                conn,
                uid,
                recording_id,
                credential_id=self.credential.id,
                course_id=self.course_id,
                options=self.options,
                by=self.user_id,
            )

        return enqueue

    def _calendar_sync(self, deleted: Meeting | None = None) -> InTransaction:
        """The course calendar follows each change: its job is committed with the change."""

        async def enqueue(conn: Any, uid: str) -> None:
            await enqueue_calendar_sync(conn, deleted or uid, self.credential.id, self.course_id)

        return enqueue

    async def start_url(self, uid: str) -> str:
        """The host's start link: made when the host asks, shown to no one else."""
        meeting = await self.meeting(uid)
        if not self.may_start(meeting):
            raise MeetingError("not_host", "Only the meeting's host can start it.")
        host = await self.provider.host_account(self.person)
        return await self.provider.start_url(meeting.provider_meeting_id, host)

    async def join_url(self, uid: str) -> str:
        meeting = await self.meeting(uid)
        return await self.provider.join_url(
            meeting.provider_meeting_id,
            meeting.join_url,
            self.person,
            host=self.may_start(meeting),
            options=self.options,
        )

    def calendar_join_url(self, meeting: Meeting) -> str:
        """The link LMS calendars and invitations carry: never one that signs anyone in,
        since everyone who reads the calendar could follow it."""
        return meeting.join_url

    # -- options that shape meetings ------------------------------------------------------

    async def _alternative_hosts(self, host_role: str, host_email: str) -> tuple[str, ...] | None:
        if not self.provider.has(Feature.ALTERNATIVE_HOSTS):
            return None
        if not rules.hosts_get_alternatives(self.options, host_role):
            return None
        return rules.alternative_hosts(
            await self.repo.eligible_instructors(self.course_id), host_email
        )

    def _tracking_fields(self) -> tuple[tuple[str, str], ...] | None:
        if not self.provider.has(Feature.TRACKING_FIELDS):
            return None
        return rules.tracking_values(self.options, self.session.context.attributes)

    # -- attendance -------------------------------------------------------------------------

    async def attendance(self, uid: str, instance_id: str | None = None) -> list[AttendanceReport]:
        """The attendance of each held session of a meeting (or of one of them)."""
        meeting = await self.meeting(uid)
        if not self.options.attendance_report:
            raise MeetingError("no_reports", "Attendance reports are turned off for this tool.")
        if not self.provider.has(Feature.ATTENDANCE):
            raise NotSupported(Feature.ATTENDANCE)
        if not self.may_see_attendance(meeting):
            raise MeetingError("not_allowed", "Only instructors see attendance reports.")
        instances = await self.provider.held_instances(meeting.provider_meeting_id)
        if instance_id is not None:
            instances = [i for i in instances if i.id == instance_id]
            if not instances:
                raise MeetingError("no_session", "This meeting has no such session.", status=404)
        return [
            AttendanceReport(meeting, instance, await self.provider.attendance(instance.id))
            for instance in instances
        ]

    # -- recordings ---------------------------------------------------------------------------

    async def recordings(self, uid: str | None = None) -> list[RecordingView]:
        """The recordings this person may see: of one meeting, or of the whole course."""
        if not self.may_see_recordings:
            return []
        now = datetime.now(UTC)
        chosen = [await self.meeting(uid)] if uid else await self.all()
        chosen = [m for m in chosen if m.has_started(now)]
        published = await self.repo.published([m.id for m in chosen])
        publish_all = await self.repo.publishes_all(self.course_id)
        views: list[RecordingView] = []
        for meeting in chosen:
            for recording in await self.provider.recordings(meeting.provider_meeting_id):
                shown = publish_all or (meeting.id, recording.id) in published
                if self.may_manage_recordings or rules.students_see_recording(self.options, shown):
                    views.append(RecordingView(meeting, recording, shown))
        views.sort(key=lambda v: v.recording.start_time or v.meeting.start_time, reverse=True)
        return views

    async def publishes_all(self) -> bool:
        return await self.repo.publishes_all(self.course_id)

    def _recordings_manager(self) -> None:
        if not self.may_manage_recordings:
            raise MeetingError("not_allowed", "Only instructors manage recordings.")
        if not self.provider.has(Feature.RECORDINGS):
            raise NotSupported(Feature.RECORDINGS)

    async def _own_recording(self, uid: str, recording_id: str) -> Meeting:
        # The id must name a recording of this meeting: never act on another's recording.
        meeting = await self.meeting(uid)
        held = await self.provider.recordings(meeting.provider_meeting_id)
        if recording_id not in {r.id for r in held}:
            raise MeetingError("no_recording", "This meeting has no such recording.", status=404)
        return meeting

    async def publish(self, uid: str, recording_id: str, on: bool = True) -> Meeting:
        """Publish one recording to the course's students (or withdraw it)."""
        self._recordings_manager()
        meeting = await self._own_recording(uid, recording_id)
        await self.repo.publish(
            meeting,
            recording_id,
            self.user_id or "",
            on,
            in_transaction=self._recording_notice(recording_id) if on else None,
        )
        return meeting

    async def publish_all(self, on: bool = True) -> None:
        """Publish every recording of the course, those to come too (or stop)."""
        self._recordings_manager()
        await self.repo.publish_all(
            self.course_id,
            self.user_id or "",
            on,
            in_transaction=self._recording_notice(ALL_RECORDINGS) if on else None,
        )

    async def delete_recording(self, uid: str, recording_id: str) -> Meeting:
        """Delete a recording (to the provider's trash); instructors only."""
        self._recordings_manager()
        meeting = await self._own_recording(uid, recording_id)
        await self.provider.delete_recording(meeting.provider_meeting_id, recording_id)
        await self.repo.publish(meeting, recording_id, self.user_id or "", False)
        return meeting


__all__ = [
    "AttendanceReport",
    "CourseMeetings",
    "FormError",
    "MeetingError",
    "ProviderError",
    "RecordingView",
    "sync_alternative_hosts",
]
