"""meeting import batches and their rows

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-27 15:45:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "import_batches",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("credential_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("file_name", sa.String(length=255), nullable=False),
        sa.Column("created_by", sa.String(length=255), nullable=False),
        sa.Column("notify", sa.String(length=320), nullable=True),
        sa.Column("total_rows", sa.Integer(), nullable=False),
        sa.Column("checked_rows", sa.Integer(), nullable=False),
        sa.Column("error_rows", sa.Integer(), nullable=False),
        sa.Column("summary", sa.JSON(), nullable=False),
        sa.Column("message", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("applied_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("applied_by", sa.String(length=255), nullable=True),
        sa.Column("undone_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("undone_by", sa.String(length=255), nullable=True),
        sa.ForeignKeyConstraint(
            ["credential_id"],
            ["credentials.id"],
            name=op.f("fk_import_batches_credential_id_credentials"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_import_batches")),
    )
    with op.batch_alter_table("import_batches", schema=None) as batch_op:
        batch_op.create_index(
            "ix_import_batches_credential_created", ["credential_id", "id"], unique=False
        )
    op.create_table(
        "import_rows",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("batch_id", sa.Integer(), nullable=False),
        sa.Column("row_number", sa.Integer(), nullable=False),
        sa.Column("meeting_id_cell", sa.String(length=1000), nullable=False),
        sa.Column("meeting_id", sa.String(length=255), nullable=True),
        sa.Column("context_id", sa.String(length=1000), nullable=False),
        sa.Column("domain", sa.String(length=1000), nullable=False),
        sa.Column("lms_course_id", sa.String(length=1000), nullable=True),
        sa.Column("action", sa.String(length=10), nullable=False),
        sa.Column("errors", sa.JSON(), nullable=False),
        sa.Column("notes", sa.JSON(), nullable=False),
        sa.Column("course_state", sa.String(length=10), nullable=True),
        sa.Column("details", sa.JSON(), nullable=True),
        sa.Column("course_id", sa.Integer(), nullable=True),
        sa.Column("course_created", sa.Boolean(), nullable=False),
        sa.Column("meeting_row_id", sa.Integer(), nullable=True),
        sa.Column("meeting_uid", sa.String(length=32), nullable=True),
        sa.Column("undone_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("undone_by", sa.String(length=255), nullable=True),
        sa.ForeignKeyConstraint(
            ["batch_id"],
            ["import_batches.id"],
            name=op.f("fk_import_rows_batch_id_import_batches"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["course_id"],
            ["courses.id"],
            name=op.f("fk_import_rows_course_id_courses"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["meeting_row_id"],
            ["meetings.id"],
            name=op.f("fk_import_rows_meeting_row_id_meetings"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_import_rows")),
        sa.UniqueConstraint("batch_id", "row_number", name="uq_import_rows_batch_row"),
    )


def downgrade() -> None:
    op.drop_table("import_rows")
    with op.batch_alter_table("import_batches", schema=None) as batch_op:
        batch_op.drop_index("ix_import_batches_credential_created")
    op.drop_table("import_batches")
