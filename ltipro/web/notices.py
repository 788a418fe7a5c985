"""Notices LMS plugins put on the course's meetings page (the ``page_notices`` hook).

A plugin uses them for what only the person looking can do, such as authorising the tool
to use their LMS account so the meetings they schedule reach the course calendar. The
page must never depend on them: the plugin gets a short time to answer, and a slow or
failing plugin is logged and left out, so the meetings page is shown all the same.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from ltipro.calendar.runtime import course_lms
from ltipro.extension import PageContext, PageNotice

if TYPE_CHECKING:
    from ltipro.meetings.service import CourseMeetings

log = logging.getLogger(__name__)

HOOK = "page_notices"
#: How long the meetings page waits for a plugin's notices.
NOTICE_WAIT_SECONDS = 2.0
MAX_NOTICES = 3


def page_context(service: CourseMeetings) -> PageContext:
    """The meetings page's reader, as ``page_notices`` sees them."""
    session = service.session
    return PageContext(
        launch=session.context,
        role="instructor" if service.role == "instructor" else "student",
        may_schedule=service.may_schedule,
        calendar_sync=service.options.calendar_sync,
    )


def is_tool_path(url: str) -> bool:
    """A path of the tool itself: a notice's form carries the session field only there."""
    return url.startswith("/") and not url.startswith("//") and "\\" not in url


def _usable(answer: Any, lms: str) -> list[PageNotice]:
    notices: list[PageNotice] = []
    for item in answer if isinstance(answer, list | tuple) else ():
        if not isinstance(item, PageNotice):
            log.warning("page_notices of %s answered %r, which is no PageNotice", lms, item)
        elif not is_tool_path(item.action_url) or item.method not in ("post", "get"):
            log.warning("page_notices of %s: %r is not a path of the tool", lms, item.action_url)
        else:
            notices.append(item)
    return notices[:MAX_NOTICES]


async def page_notices(service: CourseMeetings, *, wait: float | None = None) -> list[PageNotice]:
    """The course's LMS plugin's notices for this page; none when it cannot say in time."""
    wait = NOTICE_WAIT_SECONDS if wait is None else wait
    if service.tool is None or service.session.context.anonymous:
        return []
    lms_name = service.session.context.lms
    plugins = service.tool.plugins
    if not lms_name or plugins.plugin(lms_name) is None or not plugins.implements(lms_name, HOOK):
        return []  # most LMSs have no notices: no need to read the course's settings
    try:
        async with asyncio.timeout(wait):
            lms = await course_lms(service.tool, service.course_id, user_id=service.user_id)
            if lms is None or not lms.implements(HOOK):
                return []
            answer = await lms.tool.plugins.call_lms(
                lms.lms, HOOK, context=page_context(service), settings=lms.settings, api=lms.api
            )
    except TimeoutError:
        log.warning("page_notices of %s took longer than %s s; left out", lms_name, wait)
        return []
    except Exception:
        log.exception("page_notices of %s failed; the meetings page is shown without", lms_name)
        return []
    return _usable(answer, lms.lms)


__all__ = ["NOTICE_WAIT_SECONDS", "page_context", "page_notices"]
