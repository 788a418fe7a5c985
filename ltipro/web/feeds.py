"""Calendar feeds: ``GET /feeds/{token}.ics``, and the links on the meetings page.

A course's feed and each user's own feed are iCalendar documents at unguessable URLs
(:mod:`ltipro.calendar.ical`), so anyone can subscribe in the calendar program they use,
whatever their LMS. Fetching a feed needs no session: the URL is the credential, which is
why an instructor can reset the course's link (and each user their own), revoking the
old one at once. An unknown and a revoked token get the same 404.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response

from ltipro.calendar.ical import (
    COURSE,
    Feed,
    FeedTokens,
    course_meetings,
    render_calendar,
    user_meetings,
)
from ltipro.meetings.service import CourseMeetings, MeetingError
from ltipro.tool import Tool

# Calendar programs fetch every few hours; five minutes of caching in the subscriber's
# own client is harmless and spares the database a burst of refreshes. Never a shared
# cache: the URL is a secret.
CACHE_CONTROL = "private, max-age=300"
NOT_FOUND = "There is no calendar feed at this address. Its link may have been reset."


def feed_tokens(tool: Tool) -> FeedTokens:
    return FeedTokens(tool.repo.engine, tool.settings.secret_key)


def feed_url(tool: Tool, feed: Feed) -> str:
    return tool.settings.url(f"/feeds/{feed.token}.ics")


def _not_found() -> Response:
    return PlainTextResponse(
        NOT_FOUND,
        status_code=404,
        headers={"Cache-Control": "no-store", "X-Robots-Tag": "noindex, nofollow"},
    )


async def feed(request: Request) -> Response:
    """``GET /feeds/{token}.ics``: the feed, as ``text/calendar``; no session needed."""
    tool: Tool = request.app.state.tool
    token = str(request.path_params.get("token", ""))
    found = await feed_tokens(tool).find(token)
    if found is None:
        return _not_found()
    engine = tool.repo.engine
    if found.kind == COURSE:
        name, items = await course_meetings(engine, found)
    else:
        name, items = await user_meetings(engine, found)
    host = urlsplit(tool.settings.base_url).hostname or "ltipro"
    body = render_calendar(name, items, host=host, now=datetime.now(UTC)).encode()
    etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
    headers = {
        "Cache-Control": CACHE_CONTROL,
        "ETag": etag,
        "Content-Disposition": 'inline; filename="meetings.ics"',
        # The URL is the key: keep it out of search engines (every page already sends
        # Referrer-Policy: no-referrer).
        "X-Robots-Tag": "noindex, nofollow",
    }
    if etag in [t.strip() for t in request.headers.get("if-none-match", "").split(",")]:
        return Response(status_code=304, headers=headers)
    return Response(body, media_type="text/calendar; charset=utf-8", headers=headers)


# -- the links on the meetings page and in the API ----------------------------------------------


def may_reset_course_feed(service: CourseMeetings) -> bool:
    """Instructors reset the course's link: every subscriber then needs the new one."""
    return service.role == "instructor"


async def feed_links(tool: Tool, service: CourseMeetings) -> dict[str, Any]:
    """The feed URLs the meetings page shows (made on first use) and what may be reset."""
    tokens = feed_tokens(tool)
    course = await tokens.course_feed(service.credential.id, service.course_id, service.user_id)
    user_id = service.user_id
    mine = (
        await tokens.user_feed(service.credential.id, user_id)
        if user_id and not service.session.context.anonymous
        else None
    )
    return {
        "course_url": feed_url(tool, course),
        "user_url": feed_url(tool, mine) if mine is not None else None,
        "may_reset_course": may_reset_course_feed(service),
    }


async def reset_feed(tool: Tool, service: CourseMeetings, which: str) -> str:
    """Give the course's feed (``course``) or the user's own (``mine``) a new link.

    The old link answers 404 from now on. Returns what happened, for the page.
    """
    tokens = feed_tokens(tool)
    if which == "course":
        if not may_reset_course_feed(service):
            raise MeetingError("not_allowed", "Only instructors can reset the course's feed link.")
        await tokens.reset_course_feed(service.credential.id, service.course_id, service.user_id)
        return (
            "The course's calendar feed has a new link; the old one no longer works. "
            "Subscribers need the new link."
        )
    if which == "mine":
        if not service.user_id or service.session.context.anonymous:
            raise MeetingError(
                "no_user", "The LMS did not say who you are, so you have no feed of your own.", 400
            )
        await tokens.reset_user_feed(service.credential.id, service.user_id)
        return "Your calendar feed has a new link; the old one no longer works."
    raise MeetingError("no_feed", "There is no such feed.", status=404)


async def _page(request: Request, which: str | None) -> Response:
    """The meetings page with the feed links shown, after a reset when ``which`` says."""
    from ltipro.web import meetings as pages

    tool: Tool = request.app.state.tool
    form = await pages._form(request)
    _, service = await pages._service(request)
    token = pages._token(request, form)
    message = ""
    try:
        if which is not None:
            message = await reset_feed(tool, service, which)
    except MeetingError as exc:
        return await pages.meetings_page(
            request,
            service,
            token,
            error=exc.message,
            error_code=exc.code,
            status_code=exc.status,
            feeds=await feed_links(tool, service),
        )
    return await pages.meetings_page(
        request, service, token, message=message, feeds=await feed_links(tool, service)
    )


async def links_page(request: Request) -> Response:
    """``POST /meetings/feeds``: the meetings page with the calendar feed links.

    The links are shown when asked for, not on every page: most visits do not need them,
    and making them costs the database a read (a write, the first time).
    """
    return await _page(request, None)


async def reset_course_page(request: Request) -> Response:
    """``POST /meetings/feeds/course/reset``: a new course feed link (instructors)."""
    return await _page(request, "course")


async def reset_mine_page(request: Request) -> Response:
    """``POST /meetings/feeds/mine/reset``: a new link for the user's own feed."""
    return await _page(request, "mine")


async def _api(request: Request, which: str | None) -> Response:
    from ltipro.web import meetings as pages

    tool: Tool = request.app.state.tool
    try:
        _, service = await pages._service(request)
        if which is not None:
            await reset_feed(tool, service, which)
        links = await feed_links(tool, service)
    except MeetingError as exc:
        return JSONResponse({"error": exc.code, "message": exc.message}, status_code=exc.status)
    return JSONResponse(
        {
            "course": links["course_url"],
            "mine": links["user_url"],
            "may_reset_course": links["may_reset_course"],
        },
        headers={"Cache-Control": "no-store"},
    )


async def api_feeds(request: Request) -> Response:
    """``GET /api/v1/feeds``: the course's feed URL and the user's own."""
    return await _api(request, None)


async def api_reset_course(request: Request) -> Response:
    """``POST /api/v1/feeds/course/reset`` (instructors)."""
    return await _api(request, "course")


async def api_reset_mine(request: Request) -> Response:
    """``POST /api/v1/feeds/mine/reset``."""
    return await _api(request, "mine")


def _operation(summary: str, extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    error = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    return {
        "summary": summary,
        "security": [{"session": []}],
        "responses": {
            "200": {
                "description": "The feed URLs",
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Feeds"}}},
            },
            "401": {"description": "No valid session", "content": error},
            **(extra or {}),
        },
    }


# Paths relative to the document's server, /api/v1 (added in ltipro.web.api).
OPENAPI_PATHS: dict[str, Any] = {
    "/feeds": {"get": _operation("The course's calendar feed URL and the user's own")},
    "/feeds/course/reset": {
        "post": _operation(
            "A new link for the course's calendar feed; the old one stops working (instructors)",
            {"403": {"description": "Not an instructor"}},
        )
    },
    "/feeds/mine/reset": {
        "post": _operation(
            "A new link for the user's own calendar feed; the old one stops working",
            {"400": {"description": "An anonymous launch has no feed of its own"}},
        )
    },
}

OPENAPI_SCHEMAS: dict[str, Any] = {
    "Feeds": {
        "type": "object",
        "required": ["course", "mine", "may_reset_course"],
        "properties": {
            "course": {
                "type": "string",
                "format": "uri",
                "description": "The course's iCalendar feed (text/calendar), no sign-in needed",
            },
            "mine": {
                "type": ["string", "null"],
                "format": "uri",
                "description": "The user's feed of every course they launched the tool in",
            },
            "may_reset_course": {"type": "boolean"},
        },
    }
}
