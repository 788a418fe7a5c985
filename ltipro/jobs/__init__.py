"""The durable job queue: every side effect that happens after the request goes through it.

A change and the job that follows from it are written in one database transaction
(:func:`enqueue` takes the caller's connection); workers (``ltipro worker``, or the web app
itself on SQLite) claim due jobs under a lease and run the handler registered for their
kind, at least once, retrying failures with exponential backoff and full jitter and
keeping the jobs that fail every attempt as dead letters for an admin to retry or
discard. See ``docs/jobs.md``.
"""

from ltipro.jobs.handlers import (
    Handler,
    HandlerConflict,
    JobContext,
    JobHandlers,
    PermanentFailure,
    RetryAfter,
    job_handler,
    register_handler,
    registry,
    retry_after_seconds,
)
from ltipro.jobs.queue import (
    DEAD,
    DEFAULT_MAX_ATTEMPTS,
    DONE,
    QUEUED,
    RUNNING,
    STATUSES,
    Job,
    JobNotFound,
    JobStateError,
    NewJob,
    count_jobs,
    dead_jobs,
    discard_job,
    enqueue,
    enqueue_many,
    get_job,
    list_jobs,
    purge_done,
    retry_job,
)
from ltipro.jobs.worker import Backoff, Outcome, Worker

__all__ = [
    "DEAD",
    "DEFAULT_MAX_ATTEMPTS",
    "DONE",
    "QUEUED",
    "RUNNING",
    "STATUSES",
    "Backoff",
    "Handler",
    "HandlerConflict",
    "Job",
    "JobContext",
    "JobHandlers",
    "JobNotFound",
    "JobStateError",
    "NewJob",
    "Outcome",
    "PermanentFailure",
    "RetryAfter",
    "Worker",
    "count_jobs",
    "dead_jobs",
    "discard_job",
    "enqueue",
    "enqueue_many",
    "get_job",
    "job_handler",
    "list_jobs",
    "purge_done",
    "register_handler",
    "registry",
    "retry_after_seconds",
    "retry_job",
]
