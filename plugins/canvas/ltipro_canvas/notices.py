"""The "Connect Canvas" notice on the course's meetings page.

Calendar sync calls Canvas as each meeting's host (:mod:`ltipro_canvas.oauth`), so an
instructor who schedules meetings must authorise the tool once. The meetings page tells
them so, with a button, when that authorisation is what is missing: the credential syncs
calendars, the API developer key is configured, no admin token stands in for everyone,
and this person has no grant yet. Students never see it.

The button posts the page's session field to ``/plugins/canvas/oauth/start`` in a new
window: Canvas's sign-in page refuses to be framed inside Canvas. After the callback the
grant is stored, and the notice is gone the next time the page is shown.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ltipro.extension import PageContext, PageNotice
from ltipro.hookspecs import hookimpl
from ltipro.lmsapi import LmsApi
from ltipro_canvas.oauth import START_PATH
from ltipro_canvas.settings import admin_token, client_credentials

NOTICE_KEY = "canvas-connect"
CONNECT_TEXT = "Connect Canvas so the meetings you schedule appear in the course calendar"
CONNECT_LABEL = "Connect Canvas"


def wants_connect(context: PageContext, settings: Mapping[str, Any]) -> bool:
    """Whether this person could connect Canvas and calendar sync would use their grant."""
    return (
        context.role == "instructor"
        and context.may_schedule
        and context.calendar_sync
        and client_credentials(settings) is not None
        and admin_token(settings) is None
    )


@hookimpl
async def page_notices(
    context: PageContext, settings: Mapping[str, Any], api: LmsApi
) -> list[PageNotice] | None:
    """ "Connect Canvas" for an instructor whose meetings cannot reach the calendar yet."""
    if not wants_connect(context, settings) or not api.user_id:
        return None
    if await api.tokens.get(api.user_id) is not None:
        return None
    return [
        PageNotice(
            CONNECT_TEXT,
            CONNECT_LABEL,
            START_PATH,
            method="post",
            new_window=True,
            key=NOTICE_KEY,
        )
    ]
