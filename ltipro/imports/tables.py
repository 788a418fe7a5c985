"""The import tables (migration 0007), on the core's metadata.

``import_batches`` is one uploaded file: who, when, which file, its state and the
progress of its checks. ``import_rows`` is each meeting row of it, with what the checks
found and, once applied, the meeting and course it made. Both are kept after an undo,
as the record of what was imported and removed.
"""

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

import_batches = Table(
    "import_batches",
    metadata,
    Column("id", Integer, primary_key=True),
    Column(
        "credential_id", Integer, ForeignKey("credentials.id", ondelete="CASCADE"), nullable=False
    ),
    # checking -> checked -> applying -> applied -> undone; checked again when applying
    # found the provider changed; interrupted when the process checking it stopped.
    Column("status", String(20), nullable=False),
    Column("file_name", String(255), nullable=False),
    # An admin's email, "cli", or "api:<key prefix>" (as the audit log names them).
    Column("created_by", String(255), nullable=False),
    # Who the confirmation email goes to (the confirming admin; empty: the credential's).
    Column("notify", String(320)),
    Column("total_rows", Integer, nullable=False, default=0),
    Column("checked_rows", Integer, nullable=False, default=0),
    Column("error_rows", Integer, nullable=False, default=0),
    Column("summary", JSON, nullable=False, default=dict),
    Column("message", Text),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("applied_at", DateTime(timezone=True)),
    Column("applied_by", String(255)),
    Column("undone_at", DateTime(timezone=True)),
    Column("undone_by", String(255)),
)
Index("ix_import_batches_credential_created", import_batches.c.credential_id, import_batches.c.id)

import_rows = Table(
    "import_rows",
    metadata,
    Column("id", Integer, primary_key=True),
    Column(
        "batch_id", Integer, ForeignKey("import_batches.id", ondelete="CASCADE"), nullable=False
    ),
    Column("row_number", Integer, nullable=False),
    Column("meeting_id_cell", String(1000), nullable=False),
    Column("meeting_id", String(255)),
    Column("context_id", String(1000), nullable=False),
    Column("domain", String(1000), nullable=False),
    Column("lms_course_id", String(1000)),
    # add, skip (already in this course) or error
    Column("action", String(10), nullable=False),
    Column("errors", JSON, nullable=False, default=list),
    Column("notes", JSON, nullable=False, default=list),
    # known (launched), imported (made by an earlier import, not launched yet) or new
    Column("course_state", String(10)),
    # The meeting as the provider described it when checked: what applying records.
    Column("details", JSON),
    Column("course_id", Integer, ForeignKey("courses.id", ondelete="SET NULL")),
    Column("course_created", Boolean, nullable=False, default=False),
    Column("meeting_row_id", Integer, ForeignKey("meetings.id", ondelete="SET NULL")),
    Column("meeting_uid", String(32)),
    Column("undone_at", DateTime(timezone=True)),
    Column("undone_by", String(255)),
    UniqueConstraint("batch_id", "row_number", name="uq_import_rows_batch_row"),
)
