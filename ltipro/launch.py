"""Steps 3 to 5 of a launch, the same for LTI 1.3 and 1.1.

validated message → which LMS (every plugin asked) → is its plugin enabled for the
credential → the LMS's plugin builds the launch context → the credential's identity
options → course recorded → the user's meetings account (provisioning, upgrade, groups,
alternative hosts) → session opened.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import Any

from ltipro.context import CourseIdentifiers, LaunchContext, LaunchMessage
from ltipro.identity import Identity, apply_options
from ltipro.lti.errors import LaunchError
from ltipro.meetings.launch_steps import imported_meetings_question, prepare_for_meetings
from ltipro.sessions import Session
from ltipro.storage.repository import Credential
from ltipro.tool import Tool

log = logging.getLogger(__name__)

DEEP_LINKING_SETTINGS = "https://purl.imsglobal.org/spec/lti-dl/claim/deep_linking_settings"


@dataclass(frozen=True)
class LaunchResult:
    session: Session
    token: str
    credential: Credential
    # The course's row, as recording it returned it (``None`` outside a course).
    course_id: int | None = None

    @property
    def context(self) -> LaunchContext:
        return self.session.context

    @property
    def identity(self) -> Identity:
        return self.session.identity


async def check_enabled(tool: Tool, lms: str, credential: Credential) -> None:
    """Refuse the launch when the credential has the LMS's plugin turned off."""
    if lms not in credential.enabled_plugins:
        title = tool.plugins.title(lms)
        raise LaunchError(
            "plugin_disabled",
            f"Launches from {title} are turned off in this tool's configuration.",
            status=403,
            hint=(
                f"The {lms!r} plugin is not enabled for credential {credential.name!r}: "
                f"`ltipro plugins enable --credential {credential.name} {lms}`."
            ),
        )


async def build_context(tool: Tool, lms: str, message: LaunchMessage) -> LaunchContext:
    """Ask the LMS's plugin for the launch context and the course identifiers."""
    try:
        context = await tool.plugins.call_lms(lms, "launch_context", message=message)
        course = await tool.plugins.call_lms(lms, "course_identifiers", message=message)
    except LaunchError:
        raise
    except Exception as exc:
        # A plugin tripping over claims it did not expect is the LMS's data, not a crash.
        log.exception("the %s plugin failed to read a launch", lms)
        raise LaunchError(
            "unreadable_claims",
            f"The {tool.plugins.title(lms)} launch carries data the tool cannot read.",
            hint=f"The {lms!r} plugin failed on this launch: {type(exc).__name__}: {exc}",
        ) from exc
    if not isinstance(context, LaunchContext):
        raise LaunchError(
            "unreadable_claims",
            f"The {lms!r} plugin did not produce a launch context.",
        )
    if isinstance(course, CourseIdentifiers):
        context = replace(context, course=course)
    return context


async def complete_launch(
    tool: Tool,
    message: LaunchMessage,
    credential: Credential,
    platform_id: int | None,
) -> LaunchResult:
    """Everything after validation; raises :class:`LaunchError` to refuse."""
    lms = await tool.plugins.identify(message)
    try:
        await check_enabled(tool, lms, credential)
        context = await build_context(tool, lms, message)
        identity = apply_options(context, credential.options, tool.plugins.details.get(lms))
    except LaunchError as error:
        error.lms = error.lms or lms
        raise
    course_id: int | None = None
    has_imported: bool | None = None
    if context.course is not None:
        # What the meetings step needs to know about the course comes back with its write.
        question = imported_meetings_question(credential, context, identity)
        course_id, answer = await tool.repo.record_course_asking(
            question,
            credential.id,
            lms=lms,
            domain=context.domain,
            context_id=context.course.context_id,
            lms_course_id=context.course.lms_course_id,
            title=context.course.title,
            label=context.course.label,
            history=context.course.history,
            platform_id=platform_id,
        )
        if question is not None:
            has_imported = bool(answer)
    try:
        await prepare_for_meetings(
            tool, credential, context, identity, course_id=course_id, has_imported=has_imported
        )
    except LaunchError as error:
        error.lms = error.lms or lms
        raise
    deep_link: dict[str, Any] | None = None
    if context.message_type == "LtiDeepLinkingRequest":
        settings = message.claims.get(DEEP_LINKING_SETTINGS) or {}
        deep_link = {
            "return_url": settings.get("deep_link_return_url"),
            "data": settings.get("data"),
            "issuer": message.issuer,
            "client_id": message.client_id,
            "deployment_id": message.deployment_id,
            "accept_multiple": settings.get("accept_multiple"),
        }
    # The session and the launch's log entry are written in one transaction: both or
    # neither, in one pool checkout (the session joins it where it lives in the database).
    async with tool.repo.transaction():
        session, token = await tool.sessions.open(
            credential_id=credential.id,
            platform_id=platform_id,
            context=context,
            identity=identity,
            deep_link=deep_link,
        )
        await tool.repo.log_launch(
            credential_id=credential.id,
            lti_version=message.version,
            lms=lms,
            outcome="ok",
            issuer=message.issuer,
            client_id=message.client_id,
            deployment_id=message.deployment_id,
            user_id=context.user_id,
            context_id=context.course.context_id if context.course else None,
            domain=context.domain,
        )
    return LaunchResult(session=session, token=token, credential=credential, course_id=course_id)
