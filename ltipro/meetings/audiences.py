"""The sections and groups a course's meetings can be for, as the course's LMS lists them.

The schedule form offers them, and a meeting may only be for those the LMS listed. The
LMS is asked through its plugin's ``course_audiences`` hook; its answer is kept a few
minutes in the tool's shared store (database or Redis), so opening the meetings page
does not call the LMS each time and every worker process shares the answer.

When the LMS cannot tell (the plugin has no answer, the tool is not authorised, the LMS
does not respond), meetings are for the whole course and the form says why in one line.
A failure is remembered for a minute only, and for the person who met it only: with a
per-user LMS authorisation (Canvas) a colleague's call may well succeed.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from dataclasses import dataclass
from typing import Any

from ltipro.calendar.runtime import CourseLms, course_lms
from ltipro.extension import Audience
from ltipro.lmsapi import (
    LmsApiError,
    LmsNotAuthorized,
    LmsNotFound,
    LmsThrottled,
    LmsUnavailable,
)

log = logging.getLogger(__name__)

CACHE_KIND = "course_audiences"
CACHE_SECONDS = 300
FAILURE_CACHE_SECONDS = 60
# A page waits at most this long for the LMS; a slower LMS counts as not answering.
LMS_WAIT_SECONDS = 8.0

_ID = re.compile(r"[A-Za-z0-9._~-]{1,100}")
_WHOLE_COURSE = "so meetings are for the whole course"


@dataclass(frozen=True)
class CourseAudiences:
    """What the LMS said: the course's sections and groups, or why it could not say."""

    audiences: tuple[Audience, ...] = ()
    available: bool = False
    reason: str = ""

    @property
    def sections(self) -> tuple[Audience, ...]:
        return tuple(a for a in self.audiences if a.kind == "section")

    @property
    def groups(self) -> tuple[Audience, ...]:
        return tuple(a for a in self.audiences if a.kind == "group")

    def find(self, key: str) -> Audience | None:
        """The section or group with this key (``section:12``), if the LMS listed it."""
        for audience in self.audiences:
            if audience.key == key:
                return audience
        return None

    def to_json(self) -> str:
        return json.dumps(
            {
                "available": self.available,
                "reason": self.reason,
                "audiences": [[a.kind, a.id, a.name] for a in self.audiences],
            }
        )

    @classmethod
    def from_json(cls, text: str) -> CourseAudiences:
        data = json.loads(text)
        return cls(
            audiences=tuple(
                Audience("section" if kind == "section" else "group", str(ident), str(name))
                for kind, ident, name in data.get("audiences") or ()
            ),
            available=bool(data.get("available")),
            reason=str(data.get("reason") or ""),
        )


def unavailable(reason: str) -> CourseAudiences:
    return CourseAudiences(available=False, reason=reason)


def _checked(answer: Any) -> tuple[Audience, ...]:
    """The plugin's answer without entries the tool could not store or show."""
    out: list[Audience] = []
    seen: set[str] = set()
    for item in answer:
        if not isinstance(item, Audience) or item.kind not in ("section", "group"):
            continue
        if not _ID.fullmatch(item.id) or item.key in seen:
            continue
        seen.add(item.key)
        out.append(Audience(item.kind, item.id, (item.name or item.id).strip()[:255]))
    return tuple(out)


def failure_reason(exc: BaseException, lms: str) -> str:
    """One line for the schedule form, saying why the LMS gave no sections and groups."""
    if isinstance(exc, LmsNotAuthorized):
        return (
            f"{lms} has not authorised the tool to read this course's sections and groups "
            f"(your {lms} admin can), {_WHOLE_COURSE}."
        )
    if isinstance(exc, (LmsThrottled, LmsUnavailable, TimeoutError)):
        return (
            f"{lms} did not answer when asked for this course's sections and groups, "
            f"{_WHOLE_COURSE}; try again in a few minutes."
        )
    if isinstance(exc, LmsNotFound):
        return f"{lms} does not know this course's sections and groups, {_WHOLE_COURSE}."
    return f"{lms} could not list this course's sections and groups, {_WHOLE_COURSE}."


async def _cached(store: Any, key: str) -> CourseAudiences | None:
    try:
        text = await store.peek(CACHE_KIND, key)
        return CourseAudiences.from_json(text) if text else None
    except Exception:  # a cache that cannot be read is a cache miss, never a failed page
        log.warning("course audiences: cache read failed", exc_info=True)
        return None


async def _remember(store: Any, key: str, answer: CourseAudiences, seconds: int) -> None:
    try:
        await store.take(CACHE_KIND, key)  # drop an expired entry the backend still holds
        await store.put(CACHE_KIND, key, answer.to_json(), seconds)
    except Exception:  # another worker stored the same answer first, or the store is down
        log.debug("course audiences: cache write skipped", exc_info=True)


def _not_told(lms_title: str) -> CourseAudiences:
    return unavailable(
        f"{lms_title} does not tell the tool about sections and groups, {_WHOLE_COURSE}."
    )


async def course_audiences(
    tool: Any,
    course_id: int,
    *,
    user_id: str | None = None,
    lms: str | None = None,
) -> CourseAudiences:
    """The sections and groups of course ``course_id`` (the tool's course row id).

    ``user_id`` is the LMS user asking (their authorisation is used where the LMS
    authorises per user). ``lms``, the launch's LMS plugin, when known, answers at once
    for a plugin without the hook (no database, no LMS).
    """
    if lms is not None and not _implements(tool, lms):
        return _not_told(str(tool.plugins.title(lms)))
    course_key = str(course_id)
    user_key = f"{course_id}:{user_id or ''}"
    for key in (course_key, user_key):
        found = await _cached(tool.store, key)
        if found is not None:
            return found
    answer, lasting = await _ask_lms(tool, course_id, user_id)
    if lasting:
        await _remember(tool.store, course_key, answer, CACHE_SECONDS)
    else:
        await _remember(tool.store, user_key, answer, FAILURE_CACHE_SECONDS)
    return answer


async def _ask_lms(tool: Any, course_id: int, user_id: str | None) -> tuple[CourseAudiences, bool]:
    """The LMS's answer, and whether it holds for everyone in the course for a while."""
    lms_title = "The LMS"
    try:
        async with asyncio.timeout(LMS_WAIT_SECONDS):
            lms = await course_lms(tool, course_id, user_id=user_id)
            if lms is None:
                reason = f"The tool cannot reach this course's LMS, {_WHOLE_COURSE}."
                return unavailable(reason), True
            lms_title = _title(tool, lms)
            answer = await lms.call("course_audiences")
    except (LmsApiError, TimeoutError) as exc:
        log.info("course %s: no sections and groups from the LMS: %s", course_id, exc)
        return unavailable(failure_reason(exc, lms_title)), False
    except Exception:  # a plugin's bug must not take the meetings page down with it
        log.exception("course %s: the LMS plugin failed to list audiences", course_id)
        return unavailable(failure_reason(RuntimeError(), lms_title)), False
    if answer is None:
        return _not_told(lms_title), True
    if not isinstance(answer, (list, tuple)):
        log.error("course %s: course_audiences answered %r, not a list", course_id, answer)
        return unavailable(failure_reason(RuntimeError(), lms_title)), False
    return CourseAudiences(audiences=_checked(answer), available=True), True


def _implements(tool: Any, lms: str) -> bool:
    try:
        return bool(tool.plugins.implements(lms, "course_audiences"))
    except Exception:  # the plugin is not loaded here: let the course's record decide
        return True


def _title(tool: Any, lms: CourseLms) -> str:
    return str(tool.plugins.title(lms.lms))
