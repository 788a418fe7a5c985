"""iCalendar feeds of meetings: the RFC 5545 text, and the revocable tokens that name feeds.

A feed is read by calendar programs (Google Calendar, Outlook, Apple Calendar,
Thunderbird) that subscribe to its URL and fetch it again every few hours, whatever the
LMS. Each meeting occurrence is one ``VEVENT``: a recurring meeting is expanded into its
occurrences with :func:`ltipro.meetings.model.occurrences`, the same computation the
meetings page and the LMS calendar sync use, rather than written as an ``RRULE``, so
every calendar shows exactly the times the tool shows, across daylight-saving changes
and whatever RRULE subset a client understands.

A feed's URL holds a token. The database keeps a random salt and the token's SHA-256:
the token is ``HMAC-SHA256(key, salt)`` with a key derived from ``LTIPRO_SECRET_KEY``, so
the page can show the link again, while a copy of the database alone opens no feed. A
request is matched by the hash of what it presents, so comparing tokens takes the same
time whatever they share. Resetting a feed gives it a new salt: the old link stops working.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import and_, delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from ltipro import __version__
from ltipro.crypto import derive_key
from ltipro.meetings.model import Meeting, may_see, occurrences
from ltipro.storage.database import stored_utc
from ltipro.storage.feed_tables import feed_tokens
from ltipro.storage.meetings_tables import meetings
from ltipro.storage.schema import courses, launch_log

COURSE = "course"
USER = "user"
# Feeds show meetings as a student sees them (identity roles are "instructor" or "student").
STUDENT = "student"
# RFC 5545 3.1: lines longer than 75 octets are folded.
MAX_LINE_OCTETS = 75
# How far back a feed keeps occurrences: enough for "what did I miss", small enough to
# keep a long-running course's feed short.
KEEP_PAST = timedelta(days=90)
# A token is 32 bytes of HMAC, base64url without padding.
TOKEN = re.compile(r"[A-Za-z0-9_-]{43}")

# -- RFC 5545 text -------------------------------------------------------------------------


def escape_text(value: str) -> str:
    """A TEXT value (RFC 5545 3.3.11): backslash, semicolon, comma and newlines escaped."""
    value = value.replace("\r\n", "\n").replace("\r", "\n")
    value = value.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,")
    # Control characters other than newline and tab are not allowed in TEXT.
    value = "".join(c for c in value if c in "\n\t" or (ord(c) >= 0x20 and ord(c) != 0x7F))
    return value.replace("\n", "\\n")


def fold(line: str) -> str:
    """One content line folded at 75 octets, never inside a UTF-8 character (RFC 5545 3.1).

    Each continuation starts with a space, which counts towards its 75 octets.
    """
    data = line.encode()
    if len(data) <= MAX_LINE_OCTETS:
        return line
    parts: list[str] = []
    start = 0
    limit = MAX_LINE_OCTETS
    while start < len(data):
        end = min(start + limit, len(data))
        # Step back off UTF-8 continuation bytes (0b10xxxxxx) so a character stays whole.
        while end < len(data) and data[end] & 0xC0 == 0x80:
            end -= 1
        parts.append(data[start:end].decode())
        start = end
        limit = MAX_LINE_OCTETS - 1
    return "\r\n ".join(parts)


def utc_stamp(value: datetime) -> str:
    """A DATE-TIME in UTC form (``19980119T070000Z``)."""
    return value.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


@dataclass(frozen=True)
class FeedMeeting:
    """A meeting as a feed shows it: with its course's title and when it last changed."""

    meeting: Meeting
    course_title: str
    updated_at: datetime


def event_uid(meeting: Meeting, start: datetime, host: str) -> str:
    """The UID of one occurrence: the same in every fetch, so calendars update in place.

    A one-time meeting is one event whatever its time (an edit moves it); an occurrence
    of a recurring meeting is named by its start, as the LMS calendar marker is.
    """
    if meeting.recurrence is None:
        return f"{meeting.uid}@{host}"
    return f"{meeting.uid}-{start.astimezone(UTC).strftime('%Y%m%dT%H%MZ')}@{host}"


def _description(item: FeedMeeting) -> str:
    meeting = item.meeting
    lines = []
    if meeting.agenda:
        lines += [meeting.agenda, ""]
    # The stored join link: a feed travels, so it never carries a link that signs anyone
    # in, and never the host's start link.
    lines.append(f"Join: {meeting.join_url}")
    if item.course_title:
        lines.append(f"Course: {item.course_title}")
    if meeting.audience:
        lines.append("For: " + ", ".join(a.name for a in meeting.audience))
    if meeting.host_name:
        lines.append(f"Host: {meeting.host_name}")
    return "\n".join(lines)


def render_calendar(
    name: str,
    items: Iterable[FeedMeeting],
    *,
    host: str,
    now: datetime,
    keep_past: timedelta = KEEP_PAST,
) -> str:
    """The whole ``VCALENDAR`` of a feed, CRLF line ends, folded, events in time order."""
    events: list[tuple[datetime, str, list[str]]] = []
    since = now - keep_past
    for item in items:
        meeting = item.meeting
        length = timedelta(minutes=meeting.duration)
        stamp = utc_stamp(item.updated_at)
        for start in occurrences(meeting.start_time, meeting.recurrence, meeting.timezone):
            if start + length < since:
                continue
            uid = event_uid(meeting, start, host)
            events.append(
                (
                    start,
                    uid,
                    [
                        "BEGIN:VEVENT",
                        f"UID:{escape_text(uid)}",
                        f"DTSTAMP:{stamp}",
                        f"LAST-MODIFIED:{stamp}",
                        f"DTSTART:{utc_stamp(start)}",
                        f"DTEND:{utc_stamp(start + length)}",
                        f"SUMMARY:{escape_text(meeting.topic)}",
                        f"DESCRIPTION:{escape_text(_description(item))}",
                        f"LOCATION:{escape_text(meeting.join_url)}",
                        f"URL:{meeting.join_url}",
                        "STATUS:CONFIRMED",
                        "TRANSP:OPAQUE",
                        "END:VEVENT",
                    ],
                )
            )
    events.sort(key=lambda e: (e[0], e[1]))
    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        f"PRODID:-//ltipro//ltipro {__version__}//EN",
        "CALSCALE:GREGORIAN",
        "METHOD:PUBLISH",
        f"NAME:{escape_text(name)}",
        f"X-WR-CALNAME:{escape_text(name)}",
        # RFC 7986 and its older spelling: how often a subscriber should fetch again.
        "REFRESH-INTERVAL;VALUE=DURATION:PT1H",
        "X-PUBLISHED-TTL:PT1H",
    ]
    for _, _, event in events:
        lines += event
    lines.append("END:VCALENDAR")
    return "".join(fold(line) + "\r\n" for line in lines)


# -- feed tokens ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Feed:
    """A live feed: whose it is, and the token of its URL."""

    id: int
    kind: str  # COURSE or USER
    credential_id: int
    course_id: int | None
    user_id: str | None
    token: str
    created_at: datetime


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def course_scope(course_id: int) -> str:
    return f"{COURSE}:{course_id}"


def user_scope(user_id: str) -> str:
    return f"{USER}:{user_id}"


class FeedTokens:
    """The feeds' tokens: made when first shown, found by hash, reset to revoke."""

    def __init__(self, engine: AsyncEngine, secret_key: str) -> None:
        self.engine = engine
        self._key = derive_key(secret_key, "calendar-feed-tokens")

    def _token(self, salt: str) -> str:
        mac = hmac.new(self._key, salt.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()

    def _feed(self, row: object, token: str) -> Feed:
        m = row._mapping  # type: ignore[attr-defined]
        created = stored_utc(m["created_at"])
        assert created is not None
        return Feed(
            id=m["id"],
            kind=COURSE if m["course_id"] is not None else USER,
            credential_id=m["credential_id"],
            course_id=m["course_id"],
            user_id=m["user_id"],
            token=token,
            created_at=created,
        )

    async def course_feed(self, credential_id: int, course_id: int, by: str | None) -> Feed:
        """The course's feed, made on first use."""
        return await self._get_or_make(
            credential_id, course_scope(course_id), course_id=course_id, user_id=None, by=by
        )

    async def user_feed(self, credential_id: int, user_id: str) -> Feed:
        """The user's own feed of every course they launched in, made on first use."""
        return await self._get_or_make(
            credential_id, user_scope(user_id), course_id=None, user_id=user_id, by=user_id
        )

    async def reset_course_feed(self, credential_id: int, course_id: int, by: str | None) -> Feed:
        """A new link for the course's feed; the old one answers 404 from now on."""
        return await self._reset(
            credential_id, course_scope(course_id), course_id=course_id, user_id=None, by=by
        )

    async def reset_user_feed(self, credential_id: int, user_id: str) -> Feed:
        return await self._reset(
            credential_id, user_scope(user_id), course_id=None, user_id=user_id, by=user_id
        )

    async def find(self, token: str) -> Feed | None:
        """The live feed whose URL carries ``token``, or ``None`` (unknown or reset).

        The lookup is by the token's SHA-256, so its time does not depend on how much of
        a real token a guess shares.
        """
        digest = token_hash(token)
        if not TOKEN.fullmatch(token):
            return None
        async with self.engine.connect() as conn:
            row = (
                await conn.execute(select(feed_tokens).where(feed_tokens.c.token_hash == digest))
            ).first()
        if row is None or not hmac.compare_digest(row.token_hash, digest):
            return None
        return self._feed(row, token)

    async def _read(self, credential_id: int, scope: str) -> Feed | None:
        async with self.engine.connect() as conn:
            row = (
                await conn.execute(
                    select(feed_tokens).where(
                        and_(
                            feed_tokens.c.credential_id == credential_id,
                            feed_tokens.c.scope == scope,
                        )
                    )
                )
            ).first()
        if row is None:
            return None
        token = self._token(row.salt)
        if not hmac.compare_digest(token_hash(token), row.token_hash):
            # Made under another LTIPRO_SECRET_KEY: its link cannot be shown again.
            return None
        return self._feed(row, token)

    async def _get_or_make(
        self,
        credential_id: int,
        scope: str,
        *,
        course_id: int | None,
        user_id: str | None,
        by: str | None,
    ) -> Feed:
        found = await self._read(credential_id, scope)
        if found is not None:
            return found
        return await self._reset(credential_id, scope, course_id=course_id, user_id=user_id, by=by)

    async def _reset(
        self,
        credential_id: int,
        scope: str,
        *,
        course_id: int | None,
        user_id: str | None,
        by: str | None,
    ) -> Feed:
        salt = secrets.token_urlsafe(32)
        token = self._token(salt)
        values = {
            "salt": salt,
            "token_hash": token_hash(token),
            "created_at": datetime.now(UTC),
            "created_by": by,
        }
        where = and_(feed_tokens.c.credential_id == credential_id, feed_tokens.c.scope == scope)
        for _ in range(2):
            try:
                async with self.engine.begin() as conn:
                    changed = await conn.execute(update(feed_tokens).where(where).values(values))
                    if not changed.rowcount:
                        await conn.execute(
                            insert(feed_tokens).values(
                                credential_id=credential_id,
                                scope=scope,
                                course_id=course_id,
                                user_id=user_id,
                                **values,
                            )
                        )
                break
            except IntegrityError:
                # Another request made this feed at the same moment: use theirs.
                found = await self._read(credential_id, scope)
                if found is not None:
                    return found
        found = await self._read(credential_id, scope)
        assert found is not None
        return found

    async def remove_course_feed(self, credential_id: int, course_id: int) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(
                delete(feed_tokens).where(
                    and_(
                        feed_tokens.c.credential_id == credential_id,
                        feed_tokens.c.scope == course_scope(course_id),
                    )
                )
            )


# -- what a feed holds ------------------------------------------------------------------------


async def _feed_meetings(
    engine: AsyncEngine, course_ids: Sequence[int], user_id: str | None = None
) -> list[FeedMeeting]:
    from ltipro.meetings.repository import _meeting as meeting_from_row

    if not course_ids:
        return []
    async with engine.connect() as conn:
        rows = (
            await conn.execute(
                select(meetings, courses.c.title.label("course_title"))
                .join(courses, courses.c.id == meetings.c.course_id)
                .where(meetings.c.course_id.in_(list(course_ids)))
                .order_by(meetings.c.start_time, meetings.c.id)
            )
        ).all()
    out = []
    for row in rows:
        meeting = meeting_from_row(row)
        # As a student sees the listing when the tool does not know their sections: a
        # feed has no launch to say which sections its reader is in.
        if not may_see(meeting, STUDENT, user_id, None):
            continue
        updated = stored_utc(row.updated_at)
        assert updated is not None
        out.append(FeedMeeting(meeting, row.course_title or "", updated))
    return out


async def course_meetings(engine: AsyncEngine, feed: Feed) -> tuple[str, list[FeedMeeting]]:
    """A course feed's name and meetings: every meeting of the course, as students see them."""
    assert feed.course_id is not None
    async with engine.connect() as conn:
        row = (
            await conn.execute(
                select(courses.c.title, courses.c.label).where(
                    and_(
                        courses.c.id == feed.course_id,
                        courses.c.credential_id == feed.credential_id,
                    )
                )
            )
        ).first()
    if row is None:
        return "Meetings", []
    title = row.title or row.label or "Course"
    return f"{title}: meetings", await _feed_meetings(engine, [feed.course_id])


async def user_courses(engine: AsyncEngine, credential_id: int, user_id: str) -> list[int]:
    """The courses of a credential the user launched the tool in, by the launch log."""
    async with engine.connect() as conn:
        rows = (
            await conn.execute(
                select(courses.c.id)
                .join(
                    launch_log,
                    and_(
                        launch_log.c.credential_id == courses.c.credential_id,
                        launch_log.c.domain == courses.c.domain,
                        launch_log.c.context_id == courses.c.context_id,
                    ),
                )
                .where(
                    and_(
                        courses.c.credential_id == credential_id,
                        launch_log.c.user_id == user_id,
                        launch_log.c.outcome == "ok",
                    )
                )
                .distinct()
            )
        ).all()
    return sorted(int(r.id) for r in rows)


async def user_meetings(engine: AsyncEngine, feed: Feed) -> tuple[str, list[FeedMeeting]]:
    """A user feed's name and meetings: those of every course the user launched in."""
    assert feed.user_id is not None
    course_ids = await user_courses(engine, feed.credential_id, feed.user_id)
    return "My meetings", await _feed_meetings(engine, course_ids, feed.user_id)
