"""Reading and writing meetings."""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import and_, bindparam, delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from ltipro.meetings.model import (
    Meeting,
    audience_from_json,
    audience_to_json,
    recurrence_from_json,
    recurrence_to_json,
)
from ltipro.storage.database import connect, stored_utc
from ltipro.storage.meetings_tables import (
    course_instructors,
    course_recordings_published,
    meeting_events,
    meetings,
    published_recordings,
)
from ltipro.storage.schema import courses

# Read on every launch's first page: built once, so its cache key is computed once.
_COURSE_MEETINGS = (
    select(meetings)
    .where(meetings.c.course_id == bindparam("m_course_id"))
    .order_by(meetings.c.start_time, meetings.c.id)
)


def _meeting(row: Any) -> Meeting:
    return Meeting(
        id=row.id,
        uid=row.uid,
        credential_id=row.credential_id,
        course_id=row.course_id,
        provider=row.provider,
        provider_meeting_id=row.provider_meeting_id,
        topic=row.topic,
        agenda=row.agenda or "",
        start_time=stored_utc(row.start_time),
        duration=row.duration,
        timezone=row.timezone,
        recurrence=recurrence_from_json(row.recurrence),
        join_url=row.join_url,
        host_user_id=row.host_user_id,
        host_name=row.host_name,
        host_email=row.host_email,
        host_role=row.host_role,
        host_account_id=row.host_account_id,
        audience=audience_from_json(row.audience),
        source=row.source,
        alternative_hosts=tuple(row.alternative_hosts)
        if row.alternative_hosts is not None
        else None,
    )


# Runs in the transaction of a meeting's write, with the meeting's uid: what must be
# committed with the change or not at all (the calendar sync job).
InTransaction = Callable[[AsyncConnection, str], Awaitable[object]]


class MeetingsRepository:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def course_id(self, credential_id: int, domain: str, context_id: str) -> int | None:
        async with self.engine.connect() as conn:
            row = (
                await conn.execute(
                    select(courses.c.id).where(
                        and_(
                            courses.c.credential_id == credential_id,
                            courses.c.domain == domain,
                            courses.c.context_id == context_id,
                        )
                    )
                )
            ).first()
        return int(row[0]) if row else None

    async def add(self, *, in_transaction: InTransaction | None = None, **values: Any) -> Meeting:
        now = datetime.now(UTC)
        values = dict(values)
        values["recurrence"] = recurrence_to_json(values.get("recurrence"))
        values["audience"] = audience_to_json(tuple(values.get("audience") or ()))
        if values.get("alternative_hosts") is not None:
            values["alternative_hosts"] = list(values["alternative_hosts"])
        values.setdefault("uid", secrets.token_urlsafe(12))
        async with self.engine.begin() as conn:
            await conn.execute(insert(meetings).values(created_at=now, updated_at=now, **values))
            if in_transaction is not None:
                await in_transaction(conn, values["uid"])
        found = await self.get(values["credential_id"], values["course_id"], values["uid"])
        assert found is not None
        return found

    async def get(self, credential_id: int, course_id: int, uid: str) -> Meeting | None:
        """A meeting of this course, or ``None`` (also for another course's meeting)."""
        async with self.engine.connect() as conn:
            row = (
                await conn.execute(
                    select(meetings).where(
                        and_(
                            meetings.c.uid == uid,
                            meetings.c.credential_id == credential_id,
                            meetings.c.course_id == course_id,
                        )
                    )
                )
            ).first()
        return _meeting(row) if row else None

    async def for_course(self, course_id: int) -> list[Meeting]:
        """The course's meetings; joins an enclosing ``shared_reads`` or
        ``shared_transaction`` block (the first page after a launch reads them on the
        connection that read the provider's settings)."""
        async with connect(self.engine) as conn:
            rows = (await conn.execute(_COURSE_MEETINGS, {"m_course_id": course_id})).all()
        return [_meeting(r) for r in rows]

    async def change(
        self,
        meeting: Meeting,
        values: Mapping[str, Any],
        *,
        in_transaction: InTransaction | None = None,
    ) -> Meeting:
        data = dict(values)
        if "recurrence" in data:
            data["recurrence"] = recurrence_to_json(data["recurrence"])
        if "audience" in data:
            data["audience"] = audience_to_json(tuple(data["audience"]))
        if data.get("alternative_hosts") is not None:
            data["alternative_hosts"] = list(data["alternative_hosts"])
        async with self.engine.begin() as conn:
            await conn.execute(
                update(meetings)
                .where(meetings.c.id == meeting.id)
                .values(updated_at=datetime.now(UTC), **data)
            )
            if in_transaction is not None:
                await in_transaction(conn, meeting.uid)
        found = await self.get(meeting.credential_id, meeting.course_id, meeting.uid)
        assert found is not None
        return found

    async def remove(
        self, meeting: Meeting, *, in_transaction: InTransaction | None = None
    ) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(delete(meetings).where(meetings.c.id == meeting.id))
            if in_transaction is not None:
                await in_transaction(conn, meeting.uid)

    async def published(self, meeting_ids: list[int]) -> set[tuple[int, str]]:
        if not meeting_ids:
            return set()
        async with self.engine.connect() as conn:
            rows = (
                await conn.execute(
                    select(
                        published_recordings.c.meeting_id, published_recordings.c.recording_id
                    ).where(published_recordings.c.meeting_id.in_(meeting_ids))
                )
            ).all()
        return {(r.meeting_id, r.recording_id) for r in rows}

    async def by_provider_id(
        self, credential_id: int, provider: str, provider_meeting_id: str
    ) -> Meeting | None:
        """The tool's meeting for a provider's meeting id (webhooks name meetings so)."""
        async with self.engine.connect() as conn:
            row = (
                await conn.execute(
                    select(meetings).where(
                        and_(
                            meetings.c.credential_id == credential_id,
                            meetings.c.provider == provider,
                            meetings.c.provider_meeting_id == provider_meeting_id,
                        )
                    )
                )
            ).first()
        return _meeting(row) if row else None

    # -- publishing recordings --------------------------------------------------------------

    async def publish(
        self,
        meeting: Meeting,
        recording_id: str,
        by: str,
        on: bool,
        *,
        in_transaction: InTransaction | None = None,
    ) -> None:
        """Publish (or withdraw) one recording of a meeting to the course's students."""
        async with self.engine.begin() as conn:
            await conn.execute(
                delete(published_recordings).where(
                    and_(
                        published_recordings.c.meeting_id == meeting.id,
                        published_recordings.c.recording_id == recording_id,
                    )
                )
            )
            if on:
                await conn.execute(
                    insert(published_recordings).values(
                        meeting_id=meeting.id,
                        recording_id=recording_id,
                        published_at=datetime.now(UTC),
                        published_by=by,
                    )
                )
            if in_transaction is not None:
                await in_transaction(conn, meeting.uid)

    async def publishes_all(self, course_id: int) -> bool:
        async with self.engine.connect() as conn:
            row = (
                await conn.execute(
                    select(course_recordings_published.c.course_id).where(
                        course_recordings_published.c.course_id == course_id
                    )
                )
            ).first()
        return row is not None

    async def publish_all(
        self, course_id: int, by: str, on: bool, *, in_transaction: InTransaction | None = None
    ) -> None:
        """Publish every recording of the course, present and future (or stop doing so)."""
        async with self.engine.begin() as conn:
            await conn.execute(
                delete(course_recordings_published).where(
                    course_recordings_published.c.course_id == course_id
                )
            )
            if on:
                await conn.execute(
                    insert(course_recordings_published).values(
                        course_id=course_id, published_at=datetime.now(UTC), published_by=by
                    )
                )
            if in_transaction is not None:
                await in_transaction(conn, "")

    # -- instructors, for alternative hosts -------------------------------------------------

    async def record_instructor(
        self,
        course_id: int,
        user_id: str,
        email: str,
        provider_user_id: str | None,
        eligible: bool,
    ) -> None:
        values = {
            "email": email.lower(),
            "provider_user_id": provider_user_id,
            "eligible": eligible,
            "updated_at": datetime.now(UTC),
        }
        where = and_(
            course_instructors.c.course_id == course_id, course_instructors.c.user_id == user_id
        )
        for _ in range(2):
            try:
                async with self.engine.begin() as conn:
                    changed = await conn.execute(
                        update(course_instructors).where(where).values(values)
                    )
                    if not changed.rowcount:
                        await conn.execute(
                            insert(course_instructors).values(
                                course_id=course_id, user_id=user_id, **values
                            )
                        )
                return
            except IntegrityError:
                continue  # another launch of the same person inserted it: update it

    async def eligible_instructors(self, course_id: int) -> list[str]:
        """Emails of the course's instructors who can be alternative hosts."""
        async with self.engine.connect() as conn:
            rows = (
                await conn.execute(
                    select(course_instructors.c.email)
                    .where(
                        and_(
                            course_instructors.c.course_id == course_id,
                            course_instructors.c.eligible.is_(True),
                        )
                    )
                    .order_by(course_instructors.c.email)
                )
            ).all()
        return [r.email for r in rows]

    # -- webhook events -----------------------------------------------------------------------

    async def record_event(self, meeting: Meeting, event: str, instance_id: str) -> bool:
        """Remember one provider event; False when it was already recorded (a retry)."""
        try:
            async with self.engine.begin() as conn:
                await conn.execute(
                    insert(meeting_events).values(
                        meeting_id=meeting.id,
                        event=event,
                        instance_id=instance_id,
                        received_at=datetime.now(UTC),
                    )
                )
        except IntegrityError:
            return False
        return True

    async def events(self, meeting_ids: list[int]) -> set[tuple[int, str]]:
        """(meeting id, event) pairs the provider reported for these meetings."""
        if not meeting_ids:
            return set()
        async with self.engine.connect() as conn:
            rows = (
                await conn.execute(
                    select(meeting_events.c.meeting_id, meeting_events.c.event).where(
                        meeting_events.c.meeting_id.in_(meeting_ids)
                    )
                )
            ).all()
        return {(r.meeting_id, r.event) for r in rows}
