"""Reaching a course's LMS from a job: the plugin, its settings, its tokens, one call.

Job handlers (calendar sync, course notices) and commands (``ltipro calendar
reconcile``) know a course by its row id. :func:`course_lms` turns that into a
:class:`CourseLms`: the course as the LMS knows it, the LMS plugin that serves it, the
plugin's effective settings for the course's credential and platform, and an
:class:`~ltipro.lmsapi.LmsApi` whose tokens are kept in the database, encrypted::

    lms = await course_lms(tool, course_id, user_id=meeting.host_user_id)
    if lms is None or not lms.implements("calendar_create_event"):
        return  # the course is gone, or its LMS has no calendar the tool can fill
    event_id = await lms.call("calendar_create_event", event=event)
"""

from __future__ import annotations

import json
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import httpx
from sqlalchemy import ColumnElement, Select, and_, bindparam, delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from ltipro.context import CourseIdentifiers
from ltipro.crypto import SecretBox
from ltipro.lmsapi import LmsApi, StoredToken
from ltipro.plugin_settings import effective_settings
from ltipro.storage.calendar_tables import lms_tokens
from ltipro.storage.database import stored_utc
from ltipro.storage.repository import Credential

if TYPE_CHECKING:
    from ltipro.tool import Tool

MAX_SUBJECT_LENGTH = 255

# The token reads of the CourseLms.call under way in this task, as (store, subject),
# since the call began or the LMS last answered it with success: a remembering token
# store serves a remembered token only to a subject's first read among them (see
# DatabaseTokenStore.remembering).
_CALL: ContextVar[set[tuple[int, str]] | None] = ContextVar("ltipro_lms_call", default=None)
_UNREAD = object()


# -- tokens in the database ---------------------------------------------------------------------


def _scope_of(credential_id: Any, plugin: Any, platform_id: Any) -> ColumnElement[bool]:
    """A token store's rows: a credential's and plugin's, on a platform (``None``: none).

    The values may be bound parameters, for statements built once.
    """
    platform = (
        lms_tokens.c.platform_id.is_(None)
        if platform_id is None
        else lms_tokens.c.platform_id == platform_id
    )
    return and_(
        lms_tokens.c.credential_id == credential_id, lms_tokens.c.plugin == plugin, platform
    )


def _newest_token(platform_id: Any) -> Select[Any]:
    """A subject's newest token in a store's scope, with the values as parameters."""
    return (
        select(lms_tokens.c.token)
        .where(
            _scope_of(bindparam("credential_id"), bindparam("plugin"), platform_id),
            lms_tokens.c.subject == bindparam("subject"),
        )
        .order_by(lms_tokens.c.id.desc())
        .limit(1)
    )


# A subject's token in a store's scope, read at every job's first LMS call: built once.
_READ_CREDENTIAL_TOKEN = _newest_token(None)
_READ_PLATFORM_TOKEN = _newest_token(bindparam("platform_id"))


class DatabaseTokenStore:
    """A :class:`~ltipro.lmsapi.TokenStore` on the ``lms_tokens`` table.

    Scoped to one credential, platform (``None``: the credential's own) and plugin, so a
    plugin never sees another's tokens nor another credential's. Each token is stored as
    JSON encrypted with the tool's secret key: a copy of the database alone gives no one
    access to an LMS.
    """

    def __init__(
        self,
        engine: AsyncEngine,
        box: SecretBox,
        *,
        credential_id: int,
        platform_id: int | None,
        plugin: str,
    ) -> None:
        self.engine = engine
        self.box = box
        self.credential_id = credential_id
        self.platform_id = platform_id
        self.plugin = plugin
        self._memo: dict[str, StoredToken | None] | None = None

    def remembering(self) -> DatabaseTokenStore:
        """Keep the tokens read in memory for the life of this store (one job's calls).

        A job calls its LMS several times, and every call reads the plugin's token:
        a database read and a decryption each. Remembering one job's tokens saves all
        but the first, under three rules that keep a plugin's refresh logic as it is:

        - ``put`` and ``delete`` write through, to the database first and then to the
          memory: a token refreshed by one call is the one the next call uses.
        - A remembered token is served only while it has not expired; an expired one is
          read again, so a refresh starts from what the database holds now (another
          process may have refreshed it, and LMSs that rotate refresh tokens accept only
          the newest).
        - It is served only at the first read of the subject within one
          :meth:`CourseLms.call`, or the first since the LMS last answered one of the
          call's requests with success (a create searches for its marker, then posts:
          two requests, one read each). A read after a refused request, or a second
          read with no request answered in between, is a plugin looking again — after
          the LMS refused the token (401), under its refresh lock, after a refused
          refresh — and it always reads the database, exactly as without the memory.
          Reads outside any ``CourseLms.call`` always read the database.
        """
        self._memo = {}
        return self

    def _scope(self) -> ColumnElement[bool]:
        return _scope_of(self.credential_id, self.plugin, self.platform_id)

    @staticmethod
    def _check(subject: str) -> None:
        if not isinstance(subject, str) or not subject or len(subject) > MAX_SUBJECT_LENGTH:
            raise ValueError(f"a token's subject is 1 to {MAX_SUBJECT_LENGTH} characters")

    async def get(self, subject: str) -> StoredToken | None:
        self._check(subject)
        memo = self._memo
        seen = _CALL.get()
        first = seen is not None and (id(self), subject) not in seen
        if seen is not None:
            seen.add((id(self), subject))
        if memo is not None and first:
            # Served from memory only to the first look (since the call began or the LMS
            # last answered it), and only while unexpired: see :meth:`remembering`.
            held = memo.get(subject, _UNREAD)
            if held is None or (isinstance(held, StoredToken) and not held.expired()):
                return held
        token = await self._read(subject)
        if memo is not None:
            memo[subject] = token
        return token

    async def _read(self, subject: str) -> StoredToken | None:
        values = {"credential_id": self.credential_id, "plugin": self.plugin, "subject": subject}
        if self.platform_id is None:
            query = _READ_CREDENTIAL_TOKEN
        else:
            query = _READ_PLATFORM_TOKEN
            values["platform_id"] = self.platform_id
        async with self.engine.connect() as conn:
            row = (await conn.execute(query, values)).first()
        return None if row is None else _token_from_json(self.box.decrypt(row.token))

    async def put(self, subject: str, token: StoredToken) -> None:
        self._check(subject)
        values = {"token": self.box.encrypt(_token_to_json(token)), "updated_at": datetime.now(UTC)}
        where = and_(self._scope(), lms_tokens.c.subject == subject)
        for _ in range(2):
            try:
                async with self.engine.begin() as conn:
                    changed = await conn.execute(update(lms_tokens).where(where).values(values))
                    if not changed.rowcount:
                        await conn.execute(
                            insert(lms_tokens).values(
                                credential_id=self.credential_id,
                                platform_id=self.platform_id,
                                plugin=self.plugin,
                                subject=subject,
                                **values,
                            )
                        )
                break
            except IntegrityError:
                continue  # another process stored it at the same moment: update theirs
        if self._memo is not None:
            self._memo[subject] = token  # written through: the next call uses the new one

    async def delete(self, subject: str) -> None:
        self._check(subject)
        async with self.engine.begin() as conn:
            await conn.execute(
                delete(lms_tokens).where(and_(self._scope(), lms_tokens.c.subject == subject))
            )
        if self._memo is not None:
            self._memo[subject] = None

    async def subjects(self) -> list[str]:
        async with self.engine.connect() as conn:
            rows = (
                await conn.execute(select(lms_tokens.c.subject).distinct().where(self._scope()))
            ).all()
        return sorted(r.subject for r in rows)


async def _answered(response: httpx.Response) -> None:
    """The HTTP client's response hook: a successful answer within an LMS call lets the
    call's next token read be served from memory again (see ``remembering``)."""
    seen = _CALL.get()
    if seen is not None and response.status_code < 400:
        seen.clear()


def _watch_answers(http: httpx.AsyncClient) -> None:
    hooks = http.event_hooks["response"]
    if _answered not in hooks:
        hooks.append(_answered)


def _token_to_json(token: StoredToken) -> str:
    return json.dumps(
        {
            "access_token": token.access_token,
            "refresh_token": token.refresh_token,
            "expires_at": token.expires_at.isoformat() if token.expires_at else None,
            "scope": token.scope,
            "extra": dict(token.extra),
        }
    )


def _token_from_json(text: str) -> StoredToken:
    data = json.loads(text)
    expires = data.get("expires_at")
    return StoredToken(
        access_token=data["access_token"],
        refresh_token=data.get("refresh_token"),
        expires_at=stored_utc(datetime.fromisoformat(expires)) if expires else None,
        scope=data.get("scope"),
        extra=data.get("extra") or {},
    )


def token_store(tool: Tool, credential_id: int, platform_id: int | None, plugin: str) -> Any:
    """The database token store of one plugin for a credential (and platform).

    Also what a plugin's OAuth callback route uses to keep the token it was granted.
    """
    return DatabaseTokenStore(
        tool.repo.engine,
        tool.repo.box,
        credential_id=credential_id,
        platform_id=platform_id,
        plugin=plugin,
    )


# -- a course's LMS -----------------------------------------------------------------------------


@dataclass
class CourseLms:
    """One course's LMS, ready to be called: the plugin, its settings and an API handle."""

    tool: Tool
    course_id: int
    course: CourseIdentifiers
    credential: Credential
    lms: str
    platform_id: int | None
    settings: dict[str, Any]
    api: LmsApi

    def implements(self, hook: str) -> bool:
        """Whether the course's LMS plugin implements ``hook`` itself."""
        return self.tool.plugins.implements(self.lms, hook)

    async def call(self, hook: str, **kwargs: Any) -> Any:
        """Call the LMS hook ``hook`` with ``course``, ``settings`` and ``api`` filled in.

        Returns the plugin's answer, or ``None`` when the plugin does not implement the
        hook. Errors from :mod:`ltipro.lmsapi` pass through for the caller to map.
        """
        if not self.implements(hook):
            return None
        marker = _CALL.set(set())
        try:
            return await self.tool.plugins.call_lms(
                self.lms, hook, course=self.course, settings=self.settings, api=self.api, **kwargs
            )
        finally:
            _CALL.reset(marker)


async def course_lms(tool: Tool, course_id: int, *, user_id: str | None = None) -> CourseLms | None:
    """The LMS of the course with row id ``course_id``, or ``None`` when it cannot be reached.

    ``None`` means there is nothing to call: the course or its credential was deleted,
    its LMS's plugin is not loaded in this process, or the credential has that plugin
    turned off. ``user_id`` is the LMS user the calls are made for (a meeting's host),
    for LMSs that authorise per user.
    """
    # One pool checkout and one transaction for the job's reads (see Repository.reading):
    # the course with its credential and platform in one statement, then the settings.
    async with tool.repo.reading():
        found = await tool.repo.course_with_lms(course_id)
        if found is None:
            return None
        row, credential = found
        lms = row.lms
        if tool.plugins.plugin(lms) is None or lms not in credential.enabled_plugins:
            return None
        platform_id = row.platform__id
        settings = await effective_settings(tool, credential, lms, platform_id)
    course = CourseIdentifiers(
        context_id=row.context_id,
        lms_course_id=row.lms_course_id,
        title=row.title,
        label=row.label,
        history=tuple(row.history or ()),
        domain=row.domain,
    )
    _watch_answers(tool.http)
    api = LmsApi(
        http=tool.http,
        settings=settings,
        # One course_lms serves one job (or one command): its tokens are remembered for
        # that long, read again whenever a plugin looks twice in one call.
        tokens=token_store(tool, credential.id, platform_id, lms).remembering(),
        credential_id=credential.id,
        platform_id=platform_id,
        issuer=row.platform__issuer,
        user_id=user_id,
        allow_private_urls=tool.settings.allow_private_urls,
        resolver=tool.platform_keys.resolver,
    )
    return CourseLms(
        tool=tool,
        course_id=course_id,
        course=course,
        credential=credential,
        lms=lms,
        platform_id=platform_id,
        settings=settings,
        api=api,
    )


__all__ = ["CourseLms", "DatabaseTokenStore", "course_lms", "token_store"]
