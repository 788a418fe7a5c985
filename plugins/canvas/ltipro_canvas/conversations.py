"""Course notices as Canvas Conversations: the course's Inbox message when a meeting is
scheduled or a recording published.

One call sends a notice (https://developerdocs.instructure.com/services/canvas/resources/conversations,
"Create a conversation")::

    POST /api/v1/conversations
      recipients[]=course_12        (or section_34 / group_56 for each chosen audience)
      subject=...  body=...
      group_conversation=true  bulk_message=true
      mode=async  context_code=course_12

Recipients are Canvas's context codes: ``course_<id>`` for the whole course, and for a
meeting held for sections or groups ``section_<id>`` and ``group_<id>`` (the forms Canvas's
address book accepts, ``MESSAGEABLE_USER_CONTEXT_REGEX`` in Canvas's ``User`` model).
Canvas requires ``group_conversation`` and ``bulk_message`` both true for a context of
more than 100 people; together they send each recipient a conversation of their own
(Canvas's "send an individual message to each recipient"), so no student sees another's
reply. ``mode=async`` lets Canvas deliver a large class in the background (it answers
``202`` at once) instead of holding the request open.

Idempotency. Canvas takes no idempotency key, so the job that sends a notice could send
it twice if it is retried after Canvas accepted the message but its answer was lost (a
timeout after the request was through, a worker killed at that moment). To make that
unlikely the body ends with the notice's marker line ``[ltipro:<key>]`` and, before
sending, the plugin looks for it among the sender's conversation batches still being
delivered (``GET /api/v1/conversations/batches``) and the newest conversations they
sent in the course (``GET /api/v1/conversations?scope=sent&filter[]=course_<id>``,
opening at most :data:`CHECK_CANDIDATES` whose subject is the notice's). Bulk messages
are in the sender's ``sent`` scope although not in their inbox: Canvas stamps the
author's ``visible_last_authored_at`` on every message (``Conversation#update_participants``),
while ``update_for_sender: false`` only leaves their ``last_message_at`` alone. A notice
found there counts as sent. A second copy remains possible only when the first one's
conversations have already been pushed out of that recent list, which takes many more
messages from the same sender in the course than a retry's few minutes allow.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ltipro.context import CourseIdentifiers
from ltipro.extension import Audience, CourseNotice
from ltipro.hookspecs import hookimpl
from ltipro.lmsapi import LmsApi
from ltipro_canvas.api import CanvasClient

SUBJECT_MAX = 255  # Canvas's limit on a conversation's subject
RECENT_SENT = 50  # sent conversations looked through for an earlier copy of a notice
CHECK_CANDIDATES = 3  # of those, how many with the notice's subject are opened


def marker(notice: CourseNotice) -> str:
    """The last line of a notice's body, by which a retry recognises it was sent."""
    return f"[ltipro:{notice.key}]"


def subject(notice: CourseNotice) -> str:
    return " ".join(notice.subject.split())[:SUBJECT_MAX] or "Meeting notice"


def body(notice: CourseNotice) -> str:
    """The notice's text, its link (when the text does not carry it), and its marker."""
    parts = [notice.body.strip()]
    if notice.url and notice.url not in notice.body:
        parts.append(notice.url)
    parts.append(marker(notice))
    return "\n\n".join(p for p in parts if p)


def recipients(client: CanvasClient, audience: tuple[Audience, ...]) -> list[str]:
    """Canvas context codes: the course, or each chosen section and group."""
    if not audience:
        return [client.course_code]
    return [f"{a.kind}_{a.id}" for a in audience]


async def already_sent(client: CanvasClient, notice: CourseNotice) -> bool:
    """Whether the sender's recent Canvas messages already hold this notice."""
    mark = marker(notice)
    for batch in _items(await client.get("/api/v1/conversations/batches")):
        message = batch.get("message")
        if isinstance(message, Mapping) and mark in str(message.get("body") or ""):
            return True
    sent = await client.get(
        "/api/v1/conversations",
        {"scope": "sent", "filter": [client.course_code], "per_page": RECENT_SENT},
    )
    wanted = subject(notice)
    candidates = [c for c in _items(sent) if c.get("subject") == wanted and c.get("id")]
    for conversation in candidates[:CHECK_CANDIDATES]:
        detail = await client.get(
            f"/api/v1/conversations/{conversation['id']}", {"auto_mark_as_read": False}
        )
        messages = detail.get("messages") if isinstance(detail, Mapping) else None
        for message in _items(messages):
            if mark in str(message.get("body") or ""):
                return True
    return False


def _items(value: Any) -> list[Mapping[str, Any]]:
    if not isinstance(value, list):
        return []
    return [item for item in value if isinstance(item, Mapping)]


async def send_notice(client: CanvasClient, notice: CourseNotice) -> bool:
    """Send ``notice`` to the course (or its chosen sections and groups), once."""
    if await already_sent(client, notice):
        return True
    await client.post(
        "/api/v1/conversations",
        [
            ("recipients", recipients(client, notice.audience)),
            ("subject", subject(notice)),
            ("body", body(notice)),
            ("group_conversation", True),
            ("bulk_message", True),
            ("mode", "async"),
            ("context_code", client.course_code),
        ],
    )
    return True


@hookimpl
async def notify_course(
    course: CourseIdentifiers, notice: CourseNotice, settings: Mapping[str, Any], api: LmsApi
) -> bool | None:
    """Send a course notice to the Canvas Inbox of the course's members."""
    return await send_notice(CanvasClient(api, course), notice)
