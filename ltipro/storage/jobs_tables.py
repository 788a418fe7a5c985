"""The job queue's table (migration 0005), on the core's metadata.

Each row is one side effect to carry out after the request that caused it: written in the
same transaction as the change, claimed by a worker under a lease, retried with backoff
and finally done or dead. :mod:`ltipro.jobs` is the only code that reads or writes it.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
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

jobs = Table(
    "jobs",
    metadata,
    Column("id", Integer, primary_key=True),
    # The registered handler's name, such as "calendar.sync".
    Column("kind", String(100), nullable=False),
    # The idempotency key: a second job with the same kind and key is never created, and
    # the handler receives it so that what it does at the LMS can carry it too.
    Column("key", String(255), nullable=False),
    Column("payload", JSON, nullable=False),
    # queued -> running -> done, or back to queued for a retry, or dead after the last one.
    Column("status", String(10), nullable=False),
    # Attempts started so far, counted when a worker claims the job.
    Column("attempts", Integer, nullable=False, default=0),
    Column("max_attempts", Integer, nullable=False),
    Column("run_after", DateTime(timezone=True), nullable=False),
    # The lease: the worker that holds the job and until when. A worker that dies leaves
    # its lease to expire, and the job is claimed again.
    Column("locked_by", String(255)),
    Column("locked_until", DateTime(timezone=True)),
    Column("last_error", Text),
    # The credential the job works for, so its admins can see and retry it; kept when the
    # credential is deleted, as the audit log is, so the trail outlives it.
    Column("credential_id", Integer, ForeignKey("credentials.id", ondelete="SET NULL")),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("finished_at", DateTime(timezone=True)),
    UniqueConstraint("kind", "key", name="uq_jobs_kind_key"),
    # Ids are never reused, even on SQLite after the newest job is discarded: a job id
    # copied from a listing never names a different job later.
    sqlite_autoincrement=True,
)
# What a worker looks for on every poll: due queued jobs, oldest first.
Index("ix_jobs_status_run_after", jobs.c.status, jobs.c.run_after)
Index("ix_jobs_credential_status", jobs.c.credential_id, jobs.c.status)
