"""Job kinds and the functions that carry them out.

A handler is an ``async def handler(context: JobContext) -> None`` registered under a kind::

    from ltipro.jobs import JobContext, RetryAfter, job_handler

    @job_handler("calendar.sync")
    async def sync_calendar(context: JobContext) -> None:
        meeting_uid = context.payload["meeting"]
        ...

Returning is success; raising is failure, retried later with backoff. A handler raises
:class:`RetryAfter` when the remote service says when to come back (HTTP ``429`` with
``Retry-After``, Canvas's ``403 Rate Limit Exceeded``), and :class:`PermanentFailure`
when trying again cannot help; the job then goes to the dead letters at once.

Execution is at least once: a worker can die after the handler did its work and before
the job was marked done, and the job then runs again. Every handler must therefore be
idempotent, so that running it twice leaves the same result as running it once. The
job's idempotency key (:attr:`JobContext.key`) is the handle for that: put it on what
the handler creates remotely (an event's marker, a request's idempotency header) and
look for it before creating again.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ltipro.jobs.queue import Job
    from ltipro.tool import Tool

KIND = re.compile(r"[a-z0-9][a-z0-9_.:-]{0,99}")
# A handler that runs longer than this is stopped and the attempt counts as failed: a call
# that hangs would otherwise hold its lease, and a worker's place, for ever.
DEFAULT_TIMEOUT = 600.0
# The longest wait a RetryAfter may ask for; a larger value (a misread header) is cut to it.
MAX_RETRY_AFTER = 86400.0


class RetryAfter(Exception):
    """Raised by a handler to run the job again after ``seconds`` (a throttling signal).

    The attempt counts towards the job's maximum like any failure; the wait is the one
    the remote service asked for rather than the exponential backoff.
    """

    def __init__(self, seconds: float, reason: str = "") -> None:
        seconds = float(seconds)
        if seconds != seconds or seconds < 0:  # NaN or negative: retry as soon as possible
            seconds = 0.0
        self.seconds = min(seconds, MAX_RETRY_AFTER)
        self.reason = reason
        super().__init__(reason or f"retry after {self.seconds:g} seconds")

    @classmethod
    def from_header(
        cls,
        value: str | None,
        *,
        default: float,
        reason: str = "",
        now: datetime | None = None,
    ) -> RetryAfter:
        """From an HTTP ``Retry-After`` value: seconds, or a date; ``default`` otherwise."""
        return cls(retry_after_seconds(value, default=default, now=now), reason)


class PermanentFailure(Exception):
    """Raised by a handler when retrying cannot help: the job is dead at once."""


def retry_after_seconds(value: str | None, *, default: float, now: datetime | None = None) -> float:
    """The wait an HTTP ``Retry-After`` header asks for (RFC 9110, section 10.2.3).

    The header holds either a number of seconds or an HTTP date; anything else, and a
    missing header, gives ``default``.
    """
    if value is None or not value.strip():
        return default
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return default
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


@dataclass(frozen=True)
class JobContext:
    """What a handler receives: the job as claimed, and the tool's shared resources.

    ``tool`` is the running :class:`~ltipro.tool.Tool` (its HTTP client, repository and
    plugins) whenever ``ltipro worker`` or the web app runs the job; it is ``None`` only
    for a worker made without one, as some tests do.
    """

    job: Job
    tool: Tool | None
    worker_id: str

    @property
    def key(self) -> str:
        """The job's idempotency key: unique for its kind, the same on every attempt."""
        return self.job.key

    @property
    def payload(self) -> Any:
        return self.job.payload

    @property
    def attempt(self) -> int:
        """Which attempt this is, from 1; more than 1 means an earlier one may have done part."""
        return self.job.attempts


Handler = Callable[[JobContext], Awaitable[None]]


@dataclass(frozen=True)
class Registration:
    kind: str
    handler: Handler
    timeout: float


class HandlerConflict(ValueError):
    """Two different handlers were registered for one kind."""


class JobHandlers:
    """The job kinds a worker can run, each with its handler.

    A worker claims only jobs whose kind it has a handler for, so a process without some
    plugin leaves that plugin's jobs to the processes that have it.
    """

    def __init__(self) -> None:
        self._registrations: dict[str, Registration] = {}

    def register(self, kind: str, handler: Handler, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        """Register ``handler`` for ``kind``; another handler for the same kind is an error."""
        if not KIND.fullmatch(kind):
            raise ValueError(
                f"a job kind is 1 to 100 lowercase letters, digits, '.', '_', ':' or '-' "
                f"(got {kind!r})"
            )
        if timeout <= 0:
            raise ValueError(f"a handler's timeout must be positive (got {timeout})")
        known = self._registrations.get(kind)
        if known is not None and known.handler is not handler:
            raise HandlerConflict(
                f"the job kind {kind!r} already has a handler ({_name(known.handler)}); "
                f"{_name(handler)} cannot take it too"
            )
        self._registrations[kind] = Registration(kind, handler, timeout)

    def unregister(self, kind: str) -> None:
        """Forget ``kind``'s handler (a plugin unloaded in a test, say)."""
        self._registrations.pop(kind, None)

    def __call__(
        self, kind: str, *, timeout: float = DEFAULT_TIMEOUT
    ) -> Callable[[Handler], Handler]:
        """``@registry("kind")``: register the decorated function and return it unchanged."""

        def decorate(handler: Handler) -> Handler:
            self.register(kind, handler, timeout=timeout)
            return handler

        return decorate

    def get(self, kind: str) -> Registration | None:
        return self._registrations.get(kind)

    def kinds(self) -> list[str]:
        """The registered kinds, sorted."""
        return sorted(self._registrations)

    def __contains__(self, kind: object) -> bool:
        return kind in self._registrations

    def __iter__(self) -> Iterator[str]:
        return iter(self.kinds())

    def __len__(self) -> int:
        return len(self._registrations)


def _name(handler: Handler) -> str:
    module = getattr(handler, "__module__", "?")
    return f"{module}.{getattr(handler, '__qualname__', repr(handler))}"


#: The handlers of this process: the core's and those every loaded plugin registered.
registry = JobHandlers()


def job_handler(kind: str, *, timeout: float = DEFAULT_TIMEOUT) -> Callable[[Handler], Handler]:
    """Decorator registering a handler for ``kind`` in the process's registry.

    The registration happens when the module is imported, so a plugin's handlers are
    known to every process that loads the plugin (its entry-point module, or a module
    that one imports)::

        @job_handler("canvas.conversation", timeout=60)
        async def notify_course(context: JobContext) -> None: ...
    """
    return registry(kind, timeout=timeout)


def register_handler(kind: str, handler: Handler, *, timeout: float = DEFAULT_TIMEOUT) -> None:
    """Register ``handler`` for ``kind`` in the process's registry (the decorator's form)."""
    registry.register(kind, handler, timeout=timeout)
