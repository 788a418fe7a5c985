"""The calendar feeds' table (migration 0008), on the core's metadata.

One row per feed: a course's (``scope`` ``course:<id>``) or one user's across the
courses of a credential (``user:<LMS user id>``). The feed's URL carries a token the
database never holds: the row keeps a random salt, from which the token is derived with
a key of the tool's secret key (so the meetings page can show the link again), and the
SHA-256 of the token, by which a request finds its feed. A copy of the database alone
therefore opens no feed. :mod:`ltipro.calendar.ical` and :mod:`ltipro.web.feeds` are the
only code that reads or writes it.
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
    UniqueConstraint,
)

from ltipro.storage.schema import launch_log, metadata

feed_tokens = Table(
    "feed_tokens",
    metadata,
    Column("id", Integer, primary_key=True),
    Column(
        "credential_id", Integer, ForeignKey("credentials.id", ondelete="CASCADE"), nullable=False
    ),
    # "course:<courses.id>" or "user:<LMS user id>": one live feed per scope.
    Column("scope", String(300), nullable=False),
    # Set for a course feed, so the feed goes with its course.
    Column("course_id", Integer, ForeignKey("courses.id", ondelete="CASCADE")),
    # Set for a user feed: the LMS user id, as launches name the user.
    Column("user_id", String(255)),
    Column("salt", String(64), nullable=False),
    # Hex SHA-256 of the token in the URL: how a request finds its feed.
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    # Who made (or last reset) the link: an LMS user id.
    Column("created_by", String(255)),
    UniqueConstraint("credential_id", "scope", name="uq_feed_tokens_credential_scope"),
)

# A user's feed gathers the courses the launch log shows them launching in; calendar
# programs fetch it every hour, so that lookup must not scan a credential's whole log.
Index("ix_launch_log_credential_user", launch_log.c.credential_id, launch_log.c.user_id)
