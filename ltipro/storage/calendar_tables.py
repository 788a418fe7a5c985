"""The calendar sync's tables (migration 0006), on the core's metadata.

``lms_tokens`` keeps the OAuth and API tokens LMS plugins obtain (encrypted at rest);
``calendar_events`` records which LMS calendar event the tool made for which meeting
occurrence; ``calendar_locks`` lets one sync at a time work on a meeting's events.
:mod:`ltipro.calendar` is the only code that reads or writes them.
"""

from __future__ import annotations

from sqlalchemy import (
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from ltipro.storage.schema import metadata

lms_tokens = Table(
    "lms_tokens",
    metadata,
    Column("id", Integer, primary_key=True),
    Column(
        "credential_id", Integer, ForeignKey("credentials.id", ondelete="CASCADE"), nullable=False
    ),
    # NULL: the credential's token, for every platform of it.
    Column("platform_id", Integer, ForeignKey("platforms.id", ondelete="CASCADE")),
    Column("plugin", String(50), nullable=False),
    # Whose token: "app" for the plugin's own, an LMS user id for a per-user grant.
    Column("subject", String(255), nullable=False),
    # The token as JSON, encrypted with the tool's secret key.
    Column("token", Text, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint(
        "credential_id", "platform_id", "plugin", "subject", name="uq_lms_tokens_scope_subject"
    ),
)

calendar_events = Table(
    "calendar_events",
    metadata,
    Column("id", Integer, primary_key=True),
    # The meeting's uid as text, not a foreign key: the row must outlive the meeting so
    # the sync that follows a delete still knows which events to remove.
    Column("meeting_uid", String(32), nullable=False),
    Column("course_id", Integer, ForeignKey("courses.id", ondelete="CASCADE"), nullable=False),
    Column(
        "credential_id", Integer, ForeignKey("credentials.id", ondelete="CASCADE"), nullable=False
    ),
    # ltipro:<meeting uid>:<occurrence start, UTC, YYYYMMDDTHHMMZ>: one event per occurrence.
    Column("marker", String(100), nullable=False, unique=True),
    Column("lms", String(50), nullable=False),
    Column("event_id", String(255), nullable=False),
    # A hash of what was last sent, so an unchanged occurrence is not sent again.
    Column("fingerprint", String(64), nullable=False),
    Column("synced_at", DateTime(timezone=True), nullable=False),
)
Index("ix_calendar_events_meeting_uid", calendar_events.c.meeting_uid)
Index("ix_calendar_events_course_id", calendar_events.c.course_id)

calendar_locks = Table(
    "calendar_locks",
    metadata,
    Column("meeting_uid", String(32), primary_key=True),
    # The job (or reconcile run) that holds the meeting, and until when: a holder that
    # dies leaves a lock that simply runs out.
    Column("holder", String(255), nullable=False),
    Column("locked_until", DateTime(timezone=True), nullable=False),
)
