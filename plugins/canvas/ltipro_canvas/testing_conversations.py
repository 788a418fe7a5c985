"""A stateful test double of Canvas's course sections, groups and Conversations endpoints.

Built from Canvas's public API documentation and its source, and kept to what they say:

- Sections: ``GET /api/v1/courses/:course_id/sections``
  (https://developerdocs.instructure.com/services/canvas/resources/sections).
- Groups: ``GET /api/v1/courses/:course_id/groups``
  (https://developerdocs.instructure.com/services/canvas/resources/groups).
- Conversations: ``POST /api/v1/conversations``, ``GET /api/v1/conversations``,
  ``GET /api/v1/conversations/batches``, ``GET /api/v1/conversations/:id``
  (https://developerdocs.instructure.com/services/canvas/resources/conversations; the
  refusals follow ``ConversationsController#create`` in instructure/canvas-lms).
- Pagination: ``per_page`` (default 10, at most 100) and ``page``, with a ``Link`` header
  of ``current``, ``next``, ``prev``, ``first`` and ``last`` URLs
  (https://developerdocs.instructure.com/services/canvas/basics/file.pagination).

What it refuses, as Canvas does: a missing or unknown bearer token (``401`` with
``WWW-Authenticate``), a user outside the course (``401`` "user not authorized to
perform that action", without ``WWW-Authenticate``), an unknown course (``404``), a
conversation without ``recipients[]`` or ``body``, recipients that name nobody
(``section_<id>``, ``group_<id>``, ``course_<id>``, ``course_<id>_students`` and user ids
are the forms Canvas reads), a ``context_code`` that is not one of the sender's courses
or groups, a whole-course recipient from someone who may not message the whole course
(only teachers here), a subject over 255 characters, and more than 100 recipients unless
``group_conversation`` and ``bulk_message`` are both true.

It models what :class:`ltipro_canvas.testing.CanvasDouble` (calendar events, OAuth,
throttling) does not need: who is enrolled in which section and who belongs to which
group, since that decides who receives a message. Use it alone, or in front of that
double (``fallback``) so one host serves both; the paths it serves are answered here and
every other path by the fallback::

    double = CanvasCourseDouble(fallback=calendar_double)
    course = double.add_course(12, "Biology")
    teacher = double.add_user(1, "Ada", token="t-1")
    double.enrol(teacher, course, "teacher")

Every request is recorded in :attr:`CanvasCourseDouble.requests` with its form fields
in order, for tests that check the exact call. :meth:`fail_next` answers the next
matching request with any status, and :meth:`lose_next_answer` performs the next
matching request and then drops the connection (Canvas did it, the caller never heard).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route

MAX_PER_PAGE = 100
DEFAULT_PER_PAGE = 10
MAX_GROUP_CONVERSATION = 100  # Conversation.max_group_conversation_size
SUBJECT_MAX = 255
CONTEXT = re.compile(r"\A(course|section|group)_(\d+)(?:_([a-z]+))?\Z")


@dataclass
class CanvasUser:
    id: int
    name: str


@dataclass
class CanvasSection:
    id: int
    name: str
    course_id: int


@dataclass
class CanvasGroup:
    id: int
    name: str
    course_id: int
    members: set[int] = field(default_factory=set)


@dataclass
class CanvasCourse:
    id: int
    name: str
    sections: list[CanvasSection] = field(default_factory=list)
    groups: list[CanvasGroup] = field(default_factory=list)
    # user id -> (role, section id); role is "teacher", "ta" or "student"
    enrolments: dict[int, tuple[str, int]] = field(default_factory=dict)


@dataclass
class CanvasMessage:
    id: int
    author_id: int
    body: str
    created_at: datetime


@dataclass
class CanvasConversation:
    id: int
    subject: str
    sender_id: int
    participants: list[int]
    context_code: str | None
    tags: set[str]
    messages: list[CanvasMessage]
    # Made by a batch: Canvas adds it with update_for_sender false, so it is in the
    # sender's "sent" scope but not in their inbox.
    from_batch: bool = False


@dataclass
class CanvasBatch:
    id: int
    sender_id: int
    subject: str
    message: CanvasMessage
    recipients: list[int]
    context_code: str | None
    tags: set[str]
    done: bool = False


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the double received it: form fields in the order they were sent."""

    method: str
    path: str
    query: list[tuple[str, str]]
    form: list[tuple[str, str]]
    user_id: int | None


@dataclass
class _Failure:
    method: str
    path: str
    status: int
    body: Any
    headers: dict[str, str]
    lose_answer: bool = False


def _errors(message: str, status: int, **headers: str) -> JSONResponse:
    return JSONResponse({"errors": [{"message": message}]}, status_code=status, headers=headers)


def _attribute_error(attribute: str, message: str) -> JSONResponse:
    return JSONResponse([{"attribute": attribute, "message": message}], status_code=400)


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "on", "t")


class CanvasCourseDouble:
    """Canvas's sections, groups and Conversations, for one or more courses."""

    def __init__(
        self,
        *,
        fallback: Any = None,
        now: Callable[[], datetime] | None = None,
        deliver_batches_at_once: bool = True,
    ) -> None:
        self.users: dict[int, CanvasUser] = {}
        self.tokens: dict[str, int] = {}
        self.courses: dict[int, CanvasCourse] = {}
        self.conversations: list[CanvasConversation] = []
        self.batches: list[CanvasBatch] = []
        self.requests: list[RecordedRequest] = []
        self.deliver_batches_at_once = deliver_batches_at_once
        self.now = now or (lambda: datetime.now(UTC))
        self._ids = itertools.count(1000)
        self._failures: list[_Failure] = []
        routes: list[BaseRoute] = [
            Route("/api/v1/courses/{course_id:int}/sections", self._sections, methods=["GET"]),
            Route("/api/v1/courses/{course_id:int}/groups", self._groups, methods=["GET"]),
            Route("/api/v1/conversations/batches", self._batches, methods=["GET"]),
            Route("/api/v1/conversations/{id:int}", self._conversation, methods=["GET"]),
            Route("/api/v1/conversations", self._list, methods=["GET"]),
            Route("/api/v1/conversations", self._create, methods=["POST"]),
        ]
        if fallback is not None:
            routes.append(Mount("/", app=fallback))
        self.app = Starlette(routes=routes)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.app(scope, receive, send)

    # -- arranging the world ---------------------------------------------------------------

    def add_course(self, course_id: int, name: str, *, section: str | None = None) -> CanvasCourse:
        """A course with its default section (Canvas makes one named after the course)."""
        course = CanvasCourse(course_id, name)
        self.courses[course_id] = course
        self.add_section(course, section or name)
        return course

    def add_section(self, course: CanvasCourse, name: str, section_id: int | None = None) -> int:
        ident = section_id or next(self._ids)
        course.sections.append(CanvasSection(ident, name, course.id))
        return ident

    def add_group(
        self,
        course: CanvasCourse,
        name: str,
        members: Sequence[int] = (),
        group_id: int | None = None,
    ) -> int:
        ident = group_id or next(self._ids)
        course.groups.append(CanvasGroup(ident, name, course.id, set(members)))
        return ident

    def add_user(self, user_id: int, name: str, *, token: str | None = None) -> int:
        self.users[user_id] = CanvasUser(user_id, name)
        if token:
            self.tokens[token] = user_id
        return user_id

    def enrol(
        self, user_id: int, course: CanvasCourse, role: str = "student", section: int | None = None
    ) -> None:
        course.enrolments[user_id] = (role, section or course.sections[0].id)

    def fail_next(
        self,
        method: str,
        path: str,
        status: int,
        body: Any = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        """Answer the next ``method path`` request with ``status`` (and do nothing)."""
        self._failures.append(_Failure(method, path, status, body, dict(headers or {})))

    def lose_next_answer(self, method: str, path: str) -> None:
        """Carry out the next ``method path`` request, then drop the connection."""
        self._failures.append(_Failure(method, path, 0, None, {}, lose_answer=True))

    def deliver_batches(self) -> None:
        """Finish the asynchronous conversation batches (Canvas's background job)."""
        for batch in self.batches:
            if not batch.done:
                self._deliver(batch)

    def inbox(self, user_id: int) -> list[CanvasConversation]:
        """The conversations a user received (not those they sent)."""
        return [
            c for c in self.conversations if user_id in c.participants and c.sender_id != user_id
        ]

    def sent_by(self, user_id: int) -> list[CanvasConversation]:
        return [c for c in self.conversations if c.sender_id == user_id]

    # -- plumbing ----------------------------------------------------------------------------

    async def _begin(self, request: Request) -> tuple[int | None, Response | None, bool]:
        """Record the request; (user, refusal, lose the answer)."""
        form: list[tuple[str, str]] = []
        if request.method in ("POST", "PUT"):
            raw = (await request.body()).decode()
            form = parse_qsl(raw, keep_blank_values=True)
        header = request.headers.get("authorization", "")
        token = header[7:].strip() if header.lower().startswith("bearer ") else ""
        user_id = self.tokens.get(token)
        self.requests.append(
            RecordedRequest(
                request.method,
                request.url.path,
                parse_qsl(request.url.query, keep_blank_values=True),
                form,
                user_id,
            )
        )
        for failure in self._failures:
            if failure.method == request.method and failure.path == request.url.path:
                self._failures.remove(failure)
                if failure.lose_answer:
                    return user_id, None, True
                if failure.body is None:
                    return (
                        user_id,
                        Response(status_code=failure.status, headers=failure.headers),
                        False,
                    )
                return (
                    user_id,
                    JSONResponse(failure.body, status_code=failure.status, headers=failure.headers),
                    False,
                )
        realm = {"WWW-Authenticate": 'Bearer realm="canvas-lms"'}
        if not token:
            return None, _errors("user authorization required", 401, **realm), False
        if user_id is None:
            return None, _errors("Invalid access token.", 401, **realm), False
        return user_id, None, False

    def _course_for(
        self, course_id: int, user_id: int
    ) -> tuple[CanvasCourse | None, Response | None]:
        course = self.courses.get(course_id)
        if course is None:
            return None, _errors("The specified resource does not exist.", 404)
        if user_id not in course.enrolments:
            return None, _unauthorized()
        return course, None

    def _page(self, request: Request, items: list[dict[str, Any]]) -> Response:
        query = dict(parse_qsl(request.url.query))
        try:
            per_page = min(MAX_PER_PAGE, max(1, int(query.get("per_page", DEFAULT_PER_PAGE))))
            page = max(1, int(query.get("page", 1)))
        except ValueError:
            return _errors("invalid page or per_page", 400)
        last = max(1, -(-len(items) // per_page))
        chunk = items[(page - 1) * per_page : page * per_page]
        base = str(request.url.replace(query=""))

        def link(number: int, rel: str) -> str:
            params = {k: v for k, v in query.items() if k not in ("page", "per_page")}
            params.update(page=str(number), per_page=str(per_page))
            return f'<{base}?{urlencode(params)}>; rel="{rel}"'

        links = [link(page, "current")]
        if page < last:
            links.append(link(page + 1, "next"))
        if page > 1:
            links.append(link(page - 1, "prev"))
        links += [link(1, "first"), link(last, "last")]
        return JSONResponse(chunk, headers={"Link": ",".join(links)})

    # -- sections and groups -------------------------------------------------------------------

    async def _sections(self, request: Request) -> Response:
        user_id, refusal, lose = await self._begin(request)
        if refusal is not None or user_id is None:
            return refusal or _unauthorized()
        course, refusal = self._course_for(request.path_params["course_id"], user_id)
        if course is None:
            return refusal or _unauthorized()
        items = [
            {
                "id": s.id,
                "name": s.name,
                "sis_section_id": None,
                "integration_id": None,
                "sis_import_id": None,
                "course_id": course.id,
                "sis_course_id": None,
                "start_at": None,
                "end_at": None,
                "restrict_enrollments_to_section_dates": None,
                "nonxlist_course_id": None,
            }
            for s in course.sections
        ]
        return self._answer(self._page(request, items), lose, request)

    async def _groups(self, request: Request) -> Response:
        user_id, refusal, lose = await self._begin(request)
        if refusal is not None or user_id is None:
            return refusal or _unauthorized()
        course, refusal = self._course_for(request.path_params["course_id"], user_id)
        if course is None:
            return refusal or _unauthorized()
        items = [
            {
                "id": g.id,
                "name": g.name,
                "description": None,
                "is_public": False,
                "followed_by_user": False,
                "join_level": "invitation_only",
                "members_count": len(g.members),
                "avatar_url": None,
                "context_type": "Course",
                "course_id": course.id,
                "role": None,
                "group_category_id": 1,
                "sis_group_id": None,
                "sis_import_id": None,
                "storage_quota_mb": 50,
            }
            for g in course.groups
        ]
        return self._answer(self._page(request, items), lose, request)

    # -- conversations -----------------------------------------------------------------------

    def _context(self, code: str) -> tuple[str, CanvasCourse, Any] | None:
        match = CONTEXT.match(code)
        if not match:
            return None
        kind, ident = match.group(1), int(match.group(2))
        for course in self.courses.values():
            if kind == "course" and course.id == ident:
                return kind, course, course
            for section in course.sections:
                if kind == "section" and section.id == ident:
                    return kind, course, section
            for group in course.groups:
                if kind == "group" and group.id == ident:
                    return kind, course, group
        return None

    def _people(self, code: str, sender: int) -> list[int] | None:
        """The users a recipient entry names, or ``None`` when it names nothing."""
        if code.isdigit():
            return [int(code)] if int(code) in self.users else None
        found = self._context(code)
        match = CONTEXT.match(code)
        if found is None or match is None:
            return None
        kind, course, thing = found
        suffix = match.group(3)
        if suffix not in (None, "students", "teachers", "tas", "observers"):
            return None
        if sender not in course.enrolments:
            return None
        roles = {"students": "student", "teachers": "teacher", "tas": "ta"}

        def wanted(role: str) -> bool:
            return suffix is None or roles.get(suffix) == role

        if kind == "course":
            return [u for u, (role, _) in course.enrolments.items() if wanted(role)]
        if kind == "section":
            return [
                u
                for u, (role, sec) in course.enrolments.items()
                if sec == thing.id and wanted(role)
            ]
        return sorted(thing.members)

    async def _create(self, request: Request) -> Response:
        sender, refusal, lose = await self._begin(request)
        if refusal is not None or sender is None:
            return refusal or _unauthorized()
        form = self.requests[-1].form
        values: dict[str, str] = {}
        for name, value in form:
            values.setdefault(name, value)
        entries = [v for name, v in form if name == "recipients[]" and v.strip()]
        if not entries:
            return _attribute_error("recipients", "blank")
        people: list[int] = []
        for entry in entries:
            found = self._people(entry.strip(), sender)
            for person in found or ():
                if person != sender and person not in people:
                    people.append(person)
        if not people:
            return _attribute_error("recipients", "invalid")
        body = values.get("body", "")
        if not body.strip():
            return _attribute_error("body", "blank")
        context_code = values.get("context_code") or None
        tags: set[str] = set()
        if context_code:
            found_context = self._context(context_code)
            if found_context is None or found_context[0] == "section":
                return _attribute_error("context_code", "invalid")
            _, course, _ = found_context
            if sender not in course.enrolments:
                return _attribute_error("context_code", "invalid")
            tags.add(f"course_{course.id}")
        for entry in entries:
            found_context = self._context(entry)
            if found_context is None:
                continue
            tags.add(f"course_{found_context[1].id}")
            match = CONTEXT.match(entry)
            whole_course = match is not None and match.group(3) in (None, "students", "observers")
            # Messaging a whole course needs the send_messages_all right: teachers here.
            role = found_context[1].enrolments.get(sender, ("", 0))[0]
            if found_context[0] == "course" and whole_course and role != "teacher":
                return _attribute_error("recipients", "restricted by role")
        subject = values.get("subject", "")
        if len(subject) > SUBJECT_MAX:
            return JSONResponse(
                {"errors": {"subject": [{"attribute": "subject", "type": "too_long"}]}},
                status_code=400,
            )
        group = _truthy(values.get("group_conversation"))
        bulk = group and _truthy(values.get("bulk_message"))
        batch_private = not group and len(people) > 1
        if not (bulk or _truthy(values.get("force_new"))) and len(people) > MAX_GROUP_CONVERSATION:
            return _attribute_error("recipients", "too many for group conversation")
        message = CanvasMessage(next(self._ids), sender, body, self.now())
        if bulk or batch_private:
            batch = CanvasBatch(
                next(self._ids), sender, subject, message, people, context_code, tags
            )
            self.batches.append(batch)
            if values.get("mode") == "async":
                if self.deliver_batches_at_once:
                    self._deliver(batch)
                response: Response = JSONResponse(
                    [], status_code=202, headers={"X-Conversation-Batch-Id": str(batch.id)}
                )
                return self._answer(response, lose, request)
            made = self._deliver(batch)
            return self._answer(
                JSONResponse([self._json(c, sender) for c in made], status_code=201), lose, request
            )
        conversation = CanvasConversation(
            next(self._ids), subject, sender, [sender, *people], context_code, tags, [message]
        )
        self.conversations.append(conversation)
        return self._answer(
            JSONResponse([self._json(conversation, sender)], status_code=201), lose, request
        )

    def _deliver(self, batch: CanvasBatch) -> list[CanvasConversation]:
        made = []
        for person in batch.recipients:
            message = CanvasMessage(
                next(self._ids), batch.sender_id, batch.message.body, batch.message.created_at
            )
            conversation = CanvasConversation(
                next(self._ids),
                batch.subject,
                batch.sender_id,
                [batch.sender_id, person],
                batch.context_code,
                set(batch.tags),
                [message],
                from_batch=True,
            )
            self.conversations.append(conversation)
            made.append(conversation)
        batch.done = True
        return made

    def _json(
        self, conversation: CanvasConversation, viewer: int, *, messages: bool = False
    ) -> dict[str, Any]:
        last = conversation.messages[-1]
        data: dict[str, Any] = {
            "id": conversation.id,
            "subject": conversation.subject,
            "workflow_state": "read",
            "last_message": last.body[:100],
            "last_message_at": last.created_at.isoformat().replace("+00:00", "Z"),
            "message_count": len(conversation.messages),
            "subscribed": True,
            "private": len(conversation.participants) == 2,
            "starred": False,
            "properties": ["last_author"] if last.author_id == viewer else [],
            "audience": [p for p in conversation.participants if p != viewer],
            "audience_contexts": {"courses": {}, "groups": {}},
            "avatar_url": "https://canvas.instructure.com/images/messages/avatar-group-50.png",
            "participants": [
                {"id": p, "name": self.users[p].name if p in self.users else str(p)}
                for p in conversation.participants
            ],
            "visible": True,
            "context_name": None,
        }
        if messages:
            data["messages"] = [
                {
                    "id": m.id,
                    "created_at": m.created_at.isoformat().replace("+00:00", "Z"),
                    "body": m.body,
                    "author_id": m.author_id,
                    "generated": False,
                    "media_comment": None,
                    "forwarded_messages": [],
                    "attachments": [],
                }
                for m in reversed(conversation.messages)
            ]
        return data

    async def _list(self, request: Request) -> Response:
        user, refusal, lose = await self._begin(request)
        if refusal is not None or user is None:
            return refusal or _unauthorized()
        query = self.requests[-1].query
        scope = dict(query).get("scope")
        filters = {v for k, v in query if k in ("filter[]", "filter")}
        if scope == "sent":
            chosen = self.sent_by(user)
        else:
            chosen = [
                c
                for c in self.conversations
                if user in c.participants and not (c.from_batch and c.sender_id == user)
            ]
        if filters:
            chosen = [c for c in chosen if c.tags & filters or f"user_{c.sender_id}" in filters]
        newest = sorted(chosen, key=lambda c: (c.messages[-1].created_at, c.id), reverse=True)
        return self._answer(
            self._page(request, [self._json(c, user) for c in newest]), lose, request
        )

    async def _conversation(self, request: Request) -> Response:
        user, refusal, lose = await self._begin(request)
        if refusal is not None or user is None:
            return refusal or _unauthorized()
        ident = request.path_params["id"]
        for conversation in self.conversations:
            if conversation.id == ident and user in conversation.participants:
                return self._answer(
                    JSONResponse(self._json(conversation, user, messages=True)), lose, request
                )
        return _errors("The specified resource does not exist.", 404)

    async def _batches(self, request: Request) -> Response:
        user, refusal, lose = await self._begin(request)
        if refusal is not None or user is None:
            return refusal or _unauthorized()
        running = [
            {
                "id": b.id,
                "subject": b.subject,
                "workflow_state": "sending",
                "completion": 0.0,
                "tags": sorted(b.tags),
                "message": {
                    "id": b.message.id,
                    "created_at": b.message.created_at.isoformat().replace("+00:00", "Z"),
                    "body": b.message.body,
                    "author_id": b.message.author_id,
                    "generated": False,
                    "media_comment": None,
                    "forwarded_messages": [],
                    "attachments": [],
                },
            }
            for b in self.batches
            if b.sender_id == user and not b.done
        ]
        return self._answer(self._page(request, running), lose, request)

    @staticmethod
    def _answer(response: Response, lose: bool, request: Request) -> Response:
        if lose:
            # The work is done; the caller never hears of it.
            raise httpx.ReadTimeout("the answer was lost on the way back")
        return response


def _unauthorized() -> JSONResponse:
    return JSONResponse(
        {
            "status": "unauthorized",
            "errors": [{"message": "user not authorized to perform that action"}],
        },
        status_code=401,
    )


__all__ = [
    "CanvasBatch",
    "CanvasConversation",
    "CanvasCourse",
    "CanvasCourseDouble",
    "RecordedRequest",
]
