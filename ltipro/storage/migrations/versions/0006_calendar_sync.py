"""calendar sync: LMS tokens, calendar events, per-meeting sync locks, a course's platform

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-27 15:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("courses", schema=None) as batch_op:
        batch_op.add_column(sa.Column("platform_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            op.f("fk_courses_platform_id_platforms"),
            "platforms",
            ["platform_id"],
            ["id"],
            ondelete="SET NULL",
        )

    op.create_table(
        "lms_tokens",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("credential_id", sa.Integer(), nullable=False),
        sa.Column("platform_id", sa.Integer(), nullable=True),
        sa.Column("plugin", sa.String(length=50), nullable=False),
        sa.Column("subject", sa.String(length=255), nullable=False),
        sa.Column("token", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["credential_id"],
            ["credentials.id"],
            name=op.f("fk_lms_tokens_credential_id_credentials"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["platform_id"],
            ["platforms.id"],
            name=op.f("fk_lms_tokens_platform_id_platforms"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lms_tokens")),
        sa.UniqueConstraint(
            "credential_id", "platform_id", "plugin", "subject", name="uq_lms_tokens_scope_subject"
        ),
    )
    op.create_table(
        "calendar_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("meeting_uid", sa.String(length=32), nullable=False),
        sa.Column("course_id", sa.Integer(), nullable=False),
        sa.Column("credential_id", sa.Integer(), nullable=False),
        sa.Column("marker", sa.String(length=100), nullable=False),
        sa.Column("lms", sa.String(length=50), nullable=False),
        sa.Column("event_id", sa.String(length=255), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("synced_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["course_id"],
            ["courses.id"],
            name=op.f("fk_calendar_events_course_id_courses"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["credential_id"],
            ["credentials.id"],
            name=op.f("fk_calendar_events_credential_id_credentials"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_calendar_events")),
        sa.UniqueConstraint("marker", name=op.f("uq_calendar_events_marker")),
    )
    with op.batch_alter_table("calendar_events", schema=None) as batch_op:
        batch_op.create_index("ix_calendar_events_meeting_uid", ["meeting_uid"], unique=False)
        batch_op.create_index("ix_calendar_events_course_id", ["course_id"], unique=False)
    op.create_table(
        "calendar_locks",
        sa.Column("meeting_uid", sa.String(length=32), nullable=False),
        sa.Column("holder", sa.String(length=255), nullable=False),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("meeting_uid", name=op.f("pk_calendar_locks")),
    )


def downgrade() -> None:
    op.drop_table("calendar_locks")
    with op.batch_alter_table("calendar_events", schema=None) as batch_op:
        batch_op.drop_index("ix_calendar_events_course_id")
        batch_op.drop_index("ix_calendar_events_meeting_uid")
    op.drop_table("calendar_events")
    op.drop_table("lms_tokens")
    with op.batch_alter_table("courses", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("fk_courses_platform_id_platforms"), type_="foreignkey")
        batch_op.drop_column("platform_id")
