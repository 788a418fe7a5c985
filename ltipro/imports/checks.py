"""The dry run: what importing each row would do, and every mistake with its row number.

Each row is checked on its own (its Meeting ID, Context ID and Domain), against the file
(the same meeting twice), against the tool (the meeting already in a course, the course
known or not) and against the provider (the meeting exists and is the account's own).
The provider is asked with bounded concurrency, so a 1,000-row file neither takes
minutes nor floods the provider's rate limits. Nothing is written here.

Domain rules only: the caller hands in what the tool knows (:class:`Known`) and the
provider; storage and web code stay outside.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ltipro.identity import domain_approved
from ltipro.imports.csvfile import FileRow
from ltipro.imports.meeting_ids import read_meeting_id
from ltipro.meetings.model import recurrence_to_json
from ltipro.options import CredentialOptions
from ltipro.providers.base import MeetingsProvider, ProviderError, ProviderMeeting
from ltipro.utils import normalize_domain

ADD = "add"
SKIP = "skip"
ERROR = "error"
# What the tool knows of a row's course.
KNOWN = "known"  # launched at least once
IMPORTED = "imported"  # made by an earlier import, nobody launched it yet
NEW = "new"  # made when this file is applied; the first launch fills in the rest
COURSE_STATES = {
    KNOWN: "Known course",
    IMPORTED: "Imported earlier, not launched yet",
    NEW: "New: recorded now, completed on its first launch",
}
DEFAULT_CONCURRENCY = 8
MAX_TEXT = 255

Progress = Callable[[int], Awaitable[None]]


@dataclass(frozen=True)
class Association:
    """A meeting the tool already holds: in which course."""

    meeting_id: str
    course_id: int
    context_id: str
    domain: str


@dataclass(frozen=True)
class Known:
    """What the tool holds that the checks compare the file with."""

    associations: Mapping[str, Association]  # by provider meeting id
    courses: Mapping[tuple[str, str], tuple[int, bool]]  # (domain, context) -> (id, launched)


@dataclass
class RowCheck:
    """One row and what importing it would do."""

    number: int
    meeting_id_cell: str
    meeting_id: str | None
    context_id: str
    domain: str
    lms_course_id: str
    action: str = ADD
    errors: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    course_state: str | None = None
    details: dict[str, Any] | None = None

    def fail(self, message: str) -> None:
        self.action = ERROR
        self.errors.append(message)

    @property
    def ok(self) -> bool:
        return not self.errors


def local_checks(rows: Sequence[FileRow], options: CredentialOptions) -> list[RowCheck]:
    """What each row says by itself, and the same meeting twice in the file."""
    checks: list[RowCheck] = []
    first_row: dict[str, int] = {}
    for row in rows:
        reading = read_meeting_id(row.meeting_id)
        domain = normalize_domain(row.domain) if row.domain else ""
        check = RowCheck(
            number=row.number,
            meeting_id_cell=row.meeting_id.strip()[:1000],
            meeting_id=reading.value,
            context_id=row.context_id,
            domain=domain or row.domain,
            lms_course_id=row.lms_course_id,
        )
        if reading.error:
            check.fail(reading.error)
        elif reading.cleaned:
            check.notes.append(f"Meeting ID read as {reading.value}.")
        if not row.context_id:
            check.fail("The Context ID is empty: give the LTI context id of the course.")
        elif len(row.context_id) > MAX_TEXT:
            check.fail(f"The Context ID is longer than {MAX_TEXT} characters.")
        if not row.domain:
            check.fail("The Domain is empty: give the LMS's domain, such as canvas.example.edu.")
        elif not domain or len(domain) > MAX_TEXT:
            check.fail(f"{row.domain!r} is not a domain, such as canvas.example.edu.")
        elif not domain_approved(domain, options):
            check.fail(
                f"{domain} is not an approved domain of this credential (approved: "
                + ", ".join(options.approved_domains)
                + ")."
            )
        if len(row.lms_course_id) > MAX_TEXT:
            check.fail(f"The custom_canvas_course_id is longer than {MAX_TEXT} characters.")
        if row.extra_cells:
            check.notes.append("The row has more cells than the header; the extra were ignored.")
        if check.meeting_id is not None:
            earlier = first_row.get(check.meeting_id)
            if earlier is not None:
                check.fail(
                    f"Meeting {check.meeting_id} is also in row {earlier}: a meeting is "
                    "imported into one course, once."
                )
            else:
                first_row[check.meeting_id] = row.number
        checks.append(check)
    return checks


def tool_checks(checks: Sequence[RowCheck], known: Known) -> None:
    """Meetings the tool already holds, and whether each course is known."""
    for check in checks:
        if check.context_id and check.domain:
            course = known.courses.get((check.domain, check.context_id))
            if course is None:
                check.course_state = NEW
            else:
                check.course_state = KNOWN if course[1] else IMPORTED
        if check.meeting_id is None:
            continue
        held = known.associations.get(check.meeting_id)
        if held is None:
            continue
        if (held.domain, held.context_id) == (check.domain, check.context_id):
            if check.ok:
                check.action = SKIP
                check.notes.append("Already in this course: nothing to do.")
        else:
            check.fail(
                f"Meeting {check.meeting_id} is already in another course (context "
                f"{held.context_id} at {held.domain}). Remove it there first, or leave the "
                "row out."
            )


def meeting_details(meeting: ProviderMeeting) -> dict[str, Any]:
    """What applying records of a provider's meeting, as JSON."""
    return {
        "id": meeting.id,
        "topic": meeting.topic,
        "join_url": meeting.join_url,
        "start_time": meeting.start_time.isoformat() if meeting.start_time else None,
        "duration": meeting.duration,
        "timezone": meeting.timezone,
        "host_id": meeting.host_id,
        "host_email": meeting.host_email,
        "recurrence": recurrence_to_json(meeting.recurrence),
    }


def _provider_error(meeting_id: str, provider: MeetingsProvider, error: ProviderError) -> str:
    title = provider.title or provider.name
    if error.code == "meeting_not_found":
        return (
            f"{title} has no meeting {meeting_id}. Check the ID (a meeting that was deleted, "
            "or ended and did not repeat, is gone)."
        )
    if error.code == "invalid_meeting_id":
        return f"{meeting_id} is not a {title} meeting ID: {error.message}"
    if error.code == "meeting_outside_account":
        return f"Meeting {meeting_id}: {error.message}"
    return f"Meeting {meeting_id} could not be checked: {error.message}"


async def provider_checks(
    checks: Sequence[RowCheck],
    provider: MeetingsProvider,
    *,
    concurrency: int = DEFAULT_CONCURRENCY,
    progress: Progress | None = None,
) -> None:
    """Ask the provider about each row still to import, ``concurrency`` at a time.

    ``progress`` is awaited with the number of rows done so far, as they finish.
    """
    gate = asyncio.Semaphore(max(1, concurrency))
    done = 0
    total_done = sum(1 for c in checks if c.action != ADD or c.meeting_id is None)

    async def one(check: RowCheck) -> None:
        nonlocal done
        assert check.meeting_id is not None
        async with gate:
            try:
                found = await provider.get_meeting(check.meeting_id)
            except ProviderError as exc:
                check.fail(_provider_error(check.meeting_id, provider, exc))
            else:
                check.details = meeting_details(found)
                if found.id != check.meeting_id:
                    check.notes.append(f"{provider.title} calls it {found.id}.")
        done += 1
        if progress is not None:
            await progress(total_done + done)

    todo = [c for c in checks if c.action == ADD and c.meeting_id is not None]
    if progress is not None:
        await progress(total_done)
    await asyncio.gather(*(one(c) for c in todo))


def canonical_ids(checks: Sequence[RowCheck]) -> list[RowCheck]:
    """Rows whose meeting the provider names otherwise (a room's address for its name)
    take the provider's ID; a meeting that two rows name that way is a duplicate too.
    Returns the renamed rows, to be compared with the tool's meetings again."""
    renamed: list[RowCheck] = []
    first: dict[str, int] = {}
    for check in checks:
        if check.details and check.details.get("id") and check.details["id"] != check.meeting_id:
            check.meeting_id = str(check.details["id"])
            renamed.append(check)
        if check.meeting_id is None or check.action == ERROR:
            continue
        earlier = first.setdefault(check.meeting_id, check.number)
        if earlier != check.number:
            check.fail(
                f"Meeting {check.meeting_id} is also in row {earlier}: a meeting is imported "
                "into one course, once."
            )
    return renamed


def summarise(checks: Sequence[RowCheck]) -> dict[str, int]:
    """Counts the preview shows above its table."""
    return {
        "rows": len(checks),
        "add": sum(1 for c in checks if c.action == ADD),
        "skip": sum(1 for c in checks if c.action == SKIP),
        "errors": sum(1 for c in checks if c.action == ERROR),
        "new_courses": len(
            {(c.domain, c.context_id) for c in checks if c.action == ADD and c.course_state == NEW}
        ),
    }


def start_of(details: Mapping[str, Any], fallback: datetime) -> datetime:
    value = details.get("start_time")
    return datetime.fromisoformat(value) if isinstance(value, str) else fallback
