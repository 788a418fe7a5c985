"""The meetings' tables (migrations 0003 and 0004), on the core's metadata."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Boolean,
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

meetings = Table(
    "meetings",
    metadata,
    Column("id", Integer, primary_key=True),
    # What pages and the API call a meeting: not guessable, not a row number.
    Column("uid", String(32), nullable=False, unique=True),
    Column(
        "credential_id", Integer, ForeignKey("credentials.id", ondelete="CASCADE"), nullable=False
    ),
    Column("course_id", Integer, ForeignKey("courses.id", ondelete="CASCADE"), nullable=False),
    Column("provider", String(50), nullable=False),
    Column("provider_meeting_id", String(255), nullable=False),
    Column("topic", String(300), nullable=False),
    Column("agenda", Text, nullable=False, default=""),
    Column("start_time", DateTime(timezone=True), nullable=False),
    Column("duration", Integer, nullable=False),
    Column("timezone", String(64), nullable=False),
    Column("recurrence", JSON),
    Column("join_url", Text, nullable=False),
    # The host as the LMS knows them, and their account at the provider.
    Column("host_user_id", String(255), nullable=False),
    Column("host_name", String(255)),
    Column("host_email", String(320), nullable=False),
    Column("host_role", String(20), nullable=False),
    Column("host_account_id", String(255), nullable=False),
    # Sections or groups the meeting is for (empty: the whole course).
    Column("audience", JSON, nullable=False, default=list),
    Column("source", String(20), nullable=False, default="tool"),
    # The alternative hosts the tool last gave the provider (0004), so a launch changes
    # the meeting only when the course's instructors changed.
    Column("alternative_hosts", JSON),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint(
        "credential_id", "provider", "provider_meeting_id", name="uq_meetings_provider_meeting"
    ),
)
Index("ix_meetings_course_start", meetings.c.course_id, meetings.c.start_time)

published_recordings = Table(
    "published_recordings",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("meeting_id", Integer, ForeignKey("meetings.id", ondelete="CASCADE"), nullable=False),
    Column("recording_id", String(255), nullable=False),
    Column("published_at", DateTime(timezone=True), nullable=False),
    Column("published_by", String(255), nullable=False),
    UniqueConstraint("meeting_id", "recording_id", name="uq_published_recordings_meeting_rec"),
)

# Instructors who launched in a course (0004): the alternative hosts of its meetings.
course_instructors = Table(
    "course_instructors",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("course_id", Integer, ForeignKey("courses.id", ondelete="CASCADE"), nullable=False),
    Column("user_id", String(255), nullable=False),
    Column("email", String(320), nullable=False),
    Column("provider_user_id", String(255)),
    # Zoom makes only licensed users of the same account alternative hosts.
    Column("eligible", Boolean, nullable=False, default=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("course_id", "user_id", name="uq_course_instructors_course_user"),
)

# A course whose instructors published every recording at once (0004).
course_recordings_published = Table(
    "course_recordings_published",
    metadata,
    Column(
        "course_id",
        Integer,
        ForeignKey("courses.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("published_at", DateTime(timezone=True), nullable=False),
    Column("published_by", String(255), nullable=False),
)

# What the provider told the tool about a meeting through its webhooks (0004):
# ``meeting.ended`` and ``recording.completed`` of each held session.
meeting_events = Table(
    "meeting_events",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("meeting_id", Integer, ForeignKey("meetings.id", ondelete="CASCADE"), nullable=False),
    Column("event", String(50), nullable=False),
    Column("instance_id", String(255), nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("meeting_id", "event", "instance_id", name="uq_meeting_events_instance"),
)
