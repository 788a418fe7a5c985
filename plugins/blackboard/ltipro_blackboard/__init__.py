"""ltipro-blackboard: launches from Blackboard Learn, in LTI 1.3 and LTI 1.1.

What Learn does differently from plain LTI, and how this plugin reads it:

- Every Learn site signs LTI 1.3 launches as ``https://blackboard.com``; users, courses
  and contexts are opaque UUIDs. The LMS domain is the site's host (return URL,
  ``tool_platform.url``), never the shared issuer.
- Learn's own course key (``_122_1``, the course's primary key) is the LMS course id: from
  a custom parameter (``course_pk=@X@course.pk_string@X@``), else from the course's
  service URLs (line items, names and roles, groups, ``course_id=`` in the return URL),
  else the LTI 1.1 ``context_id``, which is that key.
- A placement's role mapping often sends Course Builders and Teaching Assistants as
  ``Instructor``. The course role letter from ``course_role=@X@membership.role@X@``
  (P Instructor, T Teaching Assistant, B Course Builder, G Grader, S Student, U Guest)
  replaces the course roles, so the credential's instructor roles can tell them apart;
  institution and system roles are kept.
- A template variable Learn cannot fill comes back literally (``@X@membership.role@X@``)
  and counts as absent.
"""

from __future__ import annotations

import re
from dataclasses import replace

from ltipro.context import LTI13, CourseIdentifiers, LaunchContext, LaunchMessage
from ltipro.extension import CustomParameter, ExampleLaunch, LmsDetails
from ltipro.hookspecs import hookimpl
from ltipro.lti.claims import (
    custom_parameter_key,
    custom_scalar,
    custom_value,
    id_history,
    raw_roles_with_extensions,
    readable_role,
    service_urls,
    standard_course_identifiers,
    standard_launch_context,
    with_roles,
)
from ltipro_blackboard.calendar import calendar_create_event as calendar_create_event
from ltipro_blackboard.calendar import calendar_delete_event as calendar_delete_event
from ltipro_blackboard.calendar import calendar_list_events as calendar_list_events
from ltipro_blackboard.calendar import calendar_update_event as calendar_update_event
from ltipro_blackboard.examples import EXAMPLES
from ltipro_blackboard.registration import registration_artifacts as registration_artifacts
from ltipro_blackboard.settings import plugin_settings as plugin_settings

NAME = "blackboard"
TITLE = "Blackboard Learn"
ISSUER = "https://blackboard.com"
COURSE_KEY_PARAMETERS = ("course_pk", "course_pk_string", "course_key")
ROLE_PARAMETERS = ("course_role", "membership_role")
USERNAME_PARAMETERS = ("username", "user_name", "usernamelti")
HISTORY_PARAMETER = "context_id_history"

# Learn's course role ids (course_users.role) and the names ltipro gives them.
ROLE_LETTERS = {
    "P": "Instructor",
    "T": "Teaching Assistant",
    "B": "Course Builder",
    "G": "Grader",
    "S": "Learner",
    "U": "Guest",
}

_COURSE_KEY = re.compile(r"^_\d+_\d+$")
_COURSE_KEY_IN_URL = re.compile(r"(?:/courses/|/namesandroles/|[?&]course_id=)(_\d+_\d+)")
_CONTEXT_SCOPED = re.compile(
    r"^(http://purl\.imsglobal\.org/vocab/lis/v2/membership|urn:lti:role:|[A-Za-z]+$)"
)

WHERE_TO_ADD = (
    "In Learn, open Administrator Panel > Integrations > LTI Tool Providers, choose the "
    "tool's Manage Placements (or Edit for the tool itself) and add the line to Custom "
    "Parameters. Learn fills @X@...@X@ template variables and $ variables at each launch."
)

# Learn's template variables (and the LTI $ variables it supports) for the attributes
# admins most often map to tracking fields and groups.
VARIABLES: dict[str, str] = {
    "course_id": "@X@course.id@X@",
    "course_name": "@X@course.name@X@",
    "course_pk": "@X@course.pk_string@X@",
    "course_batch_uid": "@X@course.batch_uid@X@",
    "course_sis_id": "@X@course.batch_uid@X@",
    "course_role": "@X@membership.role@X@",
    "username": "@X@user.id@X@",
    "user_batch_uid": "@X@user.batch_uid@X@",
    "user_sis_id": "@X@user.batch_uid@X@",
    "student_id": "@X@user.student_id@X@",
    "institution_role": "@X@user.institution_role@X@",
    "secondary_institution_roles": "@X@user.secondary_institution_role@X@",
    "system_role": "@X@user.role@X@",
    "locale": "@X@user.locale@X@",
    "email": "$Person.email.primary",
    "context_id_history": "$Context.id.history",
}


@hookimpl
def lms_details() -> LmsDetails:
    """Learn, as the core and the admin see it."""
    return LmsDetails(
        name=NAME,
        title=TITLE,
        product_family_codes=("BlackboardLearn",),
        missing_email_help=(
            "Learn sends email addresses only when the tool is allowed to receive them. In "
            "Administrator Panel > Integrations > LTI Tool Providers, edit the tool (or its "
            'domain configuration) and under User Fields to Send tick "Email Address"; '
            "the user's account must also have an email address."
        ),
        lms_course_id_parameter="course_pk=@X@course.pk_string@X@",
    )


@hookimpl
def identify_lms(message: LaunchMessage) -> str | None:
    """Learn by its product family code, or failing one by its issuer or ``ext_lms``."""
    code = (message.product_family_code or "").strip().lower()
    if code:
        return NAME if code == "blackboardlearn" else None
    if message.version == LTI13:
        issuer = message.issuer or message.claims.get("iss")
        return NAME if issuer == ISSUER else None
    lms = message.claims.get("ext_lms")
    return NAME if isinstance(lms, str) and lms.startswith("bb-") else None


def _custom_any_case(message: LaunchMessage, names: tuple[str, ...]) -> str | None:
    """A custom parameter whose name matches one of ``names`` regardless of case."""
    wanted = {n.lower(): n for n in names}
    found = {k.lower(): k for k in message.custom if k.lower() in wanted}
    return custom_value(message, *(found[n] for n in names if n in found))


def course_role_letter(message: LaunchMessage) -> str | None:
    """The course role letter the admin asked Learn for, when it is one Learn defines."""
    letter = custom_value(message, *ROLE_PARAMETERS)
    return letter.upper() if letter and letter.upper() in ROLE_LETTERS else None


@hookimpl
def launch_context(message: LaunchMessage) -> LaunchContext:
    """The standard context with Learn's role letters and the username custom parameter."""
    context = standard_launch_context(message, lms=NAME)
    context = with_roles(context, raw_roles_with_extensions(message))
    letter = course_role_letter(message)
    if letter:
        # The letter is Learn's own course role: it replaces the course roles the
        # placement mapped (often Instructor for everyone who teaches).
        kept = [
            name
            for raw in context.raw_roles
            if not _CONTEXT_SCOPED.match(raw) and (name := readable_role(raw))
        ]
        roles = dict.fromkeys([ROLE_LETTERS[letter], *kept])
        context = replace(context, roles=tuple(roles))
    username = _custom_any_case(message, USERNAME_PARAMETERS)
    return replace(context, username=username or context.username)


def course_key(message: LaunchMessage, context_id: str) -> str | None:
    """Learn's course primary key (``_122_1``)."""
    value = custom_value(message, *COURSE_KEY_PARAMETERS)
    if value and _COURSE_KEY.match(value):
        return value
    for url in service_urls(message):
        match = _COURSE_KEY_IN_URL.search(url)
        if match:
            return match.group(1)
    # In LTI 1.1, Learn's context_id is the course key itself.
    return context_id if _COURSE_KEY.match(context_id) else None


@hookimpl
def course_identifiers(message: LaunchMessage) -> CourseIdentifiers | None:
    """The LTI context, Learn's course key and the courses this one was copied from."""
    course = standard_course_identifiers(message)
    if course is None:
        return None
    history = id_history(custom_scalar(message, HISTORY_PARAMETER))
    return replace(
        course,
        lms_course_id=course_key(message, course.context_id),
        history=tuple(h for h in history if h != course.context_id),
    )


@hookimpl
def custom_parameter(attribute: str) -> CustomParameter | None:
    """The custom parameter a Learn admin adds so ``attribute`` arrives in launches."""
    key = custom_parameter_key(attribute)
    if not key:
        return None
    variable = VARIABLES.get(key)
    if variable is None:
        return CustomParameter(
            name=key,
            value="<a Learn template variable (@X@...@X@), or a fixed value>",
            help=(
                f"ltipro knows no Learn variable for {attribute!r}. Learn's template "
                'variables are listed under "Dynamic Rendering with Template Variables" '
                "in its developer documentation; otherwise type a fixed value. " + WHERE_TO_ADD
            ),
        )
    return CustomParameter(name=key, value=variable, help=WHERE_TO_ADD)


@hookimpl
def example_launches() -> list[ExampleLaunch]:
    """Learn launches as Learn sends them: instructor, TA, student and admin, 1.3 and 1.1."""
    return list(EXAMPLES)
