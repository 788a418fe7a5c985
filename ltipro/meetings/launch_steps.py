"""The launch step for meetings: the user's provider account, as the options ask.

Run by :func:`ltipro.launch.complete_launch` once the identity options have decided who
the user is and the course is recorded. It provisions, upgrades and groups the user
(:meth:`MeetingsProvider.prepare_user`), and, where the course's instructors become
alternative hosts, records the instructor and brings the course's meetings up to date.

A user whose email another provider account holds is refused with a
:class:`LaunchError`, which shows the credential's own launch error message and
sign-in URL. Any other provider trouble is logged and the launch goes on: the pages say
what fails when the user tries it.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import Boolean, ColumnElement, text

from ltipro.context import LaunchContext
from ltipro.identity import Identity
from ltipro.imports.batches import SOURCE as IMPORTED
from ltipro.imports.batches import course_has_imported
from ltipro.lti.errors import LaunchError
from ltipro.meetings.repository import MeetingsRepository
from ltipro.meetings.rules import INSTRUCTOR
from ltipro.meetings.service import sync_alternative_hosts
from ltipro.providers.base import Feature, Person, ProviderError, UserOutsideAccount
from ltipro.storage.repository import Credential

log = logging.getLogger(__name__)


def outside_account_error(error: UserOutsideAccount) -> LaunchError:
    """The refusal a user outside the provider account sees (and the launch log keeps)."""
    return LaunchError(
        "user_outside_account",
        error.message,
        status=403,
        hint=(
            "This email belongs to a user of another Zoom account. The user can sign in "
            "to the account this tool uses (the sign-in URL of the credential), or the "
            "other account's administrator can release the user."
        ),
    )


def imported_meetings_question(
    credential: Credential, context: LaunchContext, identity: Identity
) -> ColumnElement[bool] | None:
    """Whether the course holds an imported meeting, as a question on the course's row,
    when this launch needs the answer (an instructor's, the option off); else ``None``.

    Imported meetings get the course's instructors as alternative hosts whatever the
    option says. The launch asks it with the course's write
    (:meth:`~ltipro.storage.repository.Repository.record_course_asking`) and hands the
    answer to :func:`prepare_for_meetings`: no statement of its own.
    """
    if (
        context.anonymous
        or not identity.email
        or identity.role != INSTRUCTOR
        or context.course is None
        or credential.options.auto_populate_alternative_host
    ):
        return None
    return _IMPORTED_MEETING_EXISTS


# Written as SQL: SQLAlchemy's SQLite compiler drops table names inside ``RETURNING``, so
# a correlated ``exists()`` would compare ``course_id`` with the meetings' own ``id``.
_IMPORTED_MEETING_EXISTS: ColumnElement[bool] = (
    text(
        "EXISTS (SELECT 1 FROM meetings WHERE meetings.course_id = courses.id"
        " AND meetings.source = :imported_source)"
    )
    .bindparams(imported_source=IMPORTED)
    .columns(answer=Boolean)
    .scalar_subquery()
)


async def prepare_for_meetings(
    tool: Any,
    credential: Credential,
    context: LaunchContext,
    identity: Identity,
    *,
    course_id: int | None = None,
    has_imported: bool | None = None,
) -> None:
    """Apply the account options to the launching user; see the module docstring.

    ``course_id`` is the course's id when the launch has just recorded it, and
    ``has_imported`` the answer to :func:`imported_meetings_question` when it was asked;
    without them they are read here.
    """
    options = credential.options
    if context.anonymous or not identity.email:
        return
    wants_account = (
        options.auto_provision != "none"
        or options.auto_upgrade != "none"
        or (bool(options.group_rules) and identity.role == INSTRUCTOR)
    )
    wants_alternative = (
        identity.role == INSTRUCTOR
        and context.course is not None
        and (
            options.auto_populate_alternative_host
            # Imported meetings get the course's instructors whatever the option says.
            or (
                has_imported
                if has_imported is not None
                else await course_has_imported(
                    tool.repo.engine, credential.id, context.domain, context.course.context_id
                )
            )
        )
    )
    if not (wants_account or wants_alternative):
        return  # nothing to ask the provider: the launch costs no provider call
    try:
        provider = await tool.providers.for_credential(tool, credential)
    except ProviderError as exc:
        log.warning("credential %s has no usable provider: %s", credential.name, exc.message)
        return
    person = Person(
        email=identity.email,
        name=context.name,
        given_name=context.given_name,
        family_name=context.family_name,
        user_id=context.user_id,
    )
    try:
        account = await provider.prepare_user(person, identity.role, options, context.attributes)
    except UserOutsideAccount as exc:
        raise outside_account_error(exc) from exc
    except ProviderError as exc:
        log.warning("preparing %s at %s failed: %s", identity.email, provider.name, exc.message)
        return
    if not wants_alternative or not provider.has(Feature.ALTERNATIVE_HOSTS):
        return
    assert context.course is not None
    repo = MeetingsRepository(tool.repo.engine)
    if course_id is None:
        course_id = await repo.course_id(credential.id, context.domain, context.course.context_id)
    if course_id is None or not context.user_id:
        return
    await repo.record_instructor(
        course_id,
        context.user_id,
        account.email if account else identity.email,
        account.id if account else None,
        eligible=bool(account and account.licensed and not account.pending),
    )
    await sync_alternative_hosts(repo, provider, options, course_id)
