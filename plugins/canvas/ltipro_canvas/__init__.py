"""ltipro-canvas: launches from Canvas LMS, in LTI 1.3 and LTI 1.1.

What Canvas does differently from plain LTI, and how this plugin reads it:

- A teaching assistant arrives with two roles, ``membership#Instructor`` and the
  sub-role ``membership/Instructor#TeachingAssistant``. Both are kept: the context shows
  ``Instructor`` and ``Teaching Assistant``, and the credential's instructor roles decide.
- Canvas's own numeric ids come only as custom fields (``canvas_course_id``,
  ``canvas_user_id``, ``canvas_user_login_id``, ``canvas_api_domain``), sent
  automatically in LTI 1.1 and asked for in the LTI 1.3 developer key's custom fields.
  Without them the course id is read from Canvas's service URLs (``/courses/3/...``).
- A variable Canvas cannot resolve is sent literally (``$Canvas.course.id``); that is
  treated as absent everywhere.
- Hosted Canvas signs every school's launches with one issuer,
  ``https://canvas.instructure.com``, so the LMS domain is ``canvas_api_domain`` (the
  school's Canvas host), not the issuer.
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
    service_urls,
    standard_course_identifiers,
    standard_launch_context,
    with_roles,
)
from ltipro.utils import normalize_domain
from ltipro_canvas.audiences import course_audiences as course_audiences
from ltipro_canvas.calendar import calendar_create_event as calendar_create_event
from ltipro_canvas.calendar import calendar_delete_event as calendar_delete_event
from ltipro_canvas.calendar import calendar_list_events as calendar_list_events
from ltipro_canvas.calendar import calendar_update_event as calendar_update_event
from ltipro_canvas.conversations import notify_course as notify_course
from ltipro_canvas.examples import EXAMPLES
from ltipro_canvas.notices import page_notices as page_notices
from ltipro_canvas.oauth import plugin_routes as plugin_routes
from ltipro_canvas.registration import registration_artifacts as registration_artifacts
from ltipro_canvas.settings import plugin_settings as plugin_settings

NAME = "canvas"
TITLE = "Canvas"

# Instructure-hosted Canvas uses these issuers for every school (production, beta, test).
HOSTED_ISSUERS = (
    "https://canvas.instructure.com",
    "https://canvas.beta.instructure.com",
    "https://canvas.test.instructure.com",
)
PLACEMENT_CLAIM = "https://www.instructure.com/placement"

# The custom fields ltipro asks Canvas for (LTI 1.1 sends the first four by itself).
COURSE_ID = "canvas_course_id"
USER_ID = "canvas_user_id"
LOGIN_ID = "canvas_user_login_id"
API_DOMAIN = "canvas_api_domain"
HISTORY_PARAMETERS = (
    "context_id_history",  # $Context.id.history
    "canvas_context_id_history",
    "canvas_previous_context_ids",  # $Canvas.course.previousContextIds
    "canvas_previous_context_ids_recursive",  # $Canvas.course.previousContextIds.recursive
)

_COURSE_IN_URL = re.compile(r"/courses/(\d+)(?=[/?#]|$)")

WHERE_TO_ADD = (
    "In Canvas, open Admin > Developer Keys, edit the tool's LTI key and add the line to "
    "Custom Fields (LTI 1.1: the app's configuration under Settings > Apps). Canvas "
    "replaces the $ variable with the value at each launch."
)

# Canvas substitution variables for the attributes admins most often map to tracking
# fields and groups (Canvas's "LTI Variable Substitutions" documentation lists them all).
VARIABLES: dict[str, str] = {
    "account_name": "$Canvas.account.name",
    "account_id": "$Canvas.account.id",
    "account_sis_id": "$Canvas.account.sisSourceId",
    "root_account_id": "$Canvas.root_account.id",
    "root_account_name": "$Canvas.root_account.name",
    "course_id": "$Canvas.course.id",
    "canvas_course_id": "$Canvas.course.id",
    "course_name": "$Canvas.course.name",
    "course_sis_id": "$Canvas.course.sisSourceId",
    "course_start": "$Canvas.course.startAt",
    "course_end": "$Canvas.course.endAt",
    "term_name": "$Canvas.term.name",
    "term_start": "$Canvas.term.startAt",
    "section_ids": "$Canvas.course.sectionIds",
    "canvas_section_ids": "$Canvas.course.sectionIds",
    "section_sis_ids": "$Canvas.course.sectionSisSourceIds",
    "user_id": "$Canvas.user.id",
    "canvas_user_id": "$Canvas.user.id",
    "user_login_id": "$Canvas.user.loginId",
    "canvas_user_login_id": "$Canvas.user.loginId",
    "username": "$Canvas.user.loginId",
    "user_sis_id": "$Canvas.user.sisSourceId",
    "email": "$Person.email.primary",
    "person_address_timezone": "$Person.address.timezone",
    "timezone": "$Person.address.timezone",
    "membership_roles": "$Canvas.membership.roles",
    "canvas_api_domain": "$Canvas.api.domain",
    "context_id_history": "$Context.id.history",
    "canvas_previous_context_ids": "$Canvas.course.previousContextIds",
}


@hookimpl
def lms_details() -> LmsDetails:
    """Canvas, as the core and the admin see it."""
    return LmsDetails(
        name=NAME,
        title=TITLE,
        product_family_codes=("canvas",),
        missing_email_help=(
            "Canvas only shares email addresses with tools whose privacy level allows it. "
            "For LTI 1.3, edit the tool's developer key in Admin > Developer Keys and set "
            "the privacy level to Public (or include the email claim); for LTI 1.1, set "
            "the app's privacy to Public or Email Only. The user must also have an email "
            "address in Canvas."
        ),
        lms_course_id_parameter=f"{COURSE_ID}=$Canvas.course.id",
    )


def _guid_says_canvas(message: LaunchMessage) -> bool:
    # Canvas instance GUIDs end in ":canvas-lms" (LTI 1.1 field, LTI 1.3 tool_platform.guid).
    if message.version == LTI13:
        platform = message.claim("tool_platform")
        guid = platform.get("guid") if isinstance(platform, dict) else None
    else:
        guid = message.claims.get("tool_consumer_instance_guid")
    return isinstance(guid, str) and guid.endswith("canvas-lms")


@hookimpl
def identify_lms(message: LaunchMessage) -> str | None:
    """Canvas by its product family code, or failing one by what only Canvas sends."""
    code = (message.product_family_code or "").strip().lower()
    if code:
        return NAME if code == "canvas" else None
    if message.version == LTI13:
        issuer = message.issuer or message.claims.get("iss")
        if issuer in HOSTED_ISSUERS or PLACEMENT_CLAIM in message.claims:
            return NAME
    # Canvas resolves its own variables; another LMS would send "$Canvas..." literally.
    if custom_value(message, COURSE_ID, API_DOMAIN, USER_ID) is not None:
        return NAME
    return NAME if _guid_says_canvas(message) else None


@hookimpl
def launch_context(message: LaunchMessage) -> LaunchContext:
    """The standard context plus Canvas's login id, API domain and LTI 1.1 ``ext_roles``."""
    context = standard_launch_context(message, lms=NAME)
    context = with_roles(context, raw_roles_with_extensions(message))
    domain = normalize_domain(custom_value(message, API_DOMAIN)) or context.domain
    username = custom_value(message, LOGIN_ID)
    return replace(context, domain=domain, username=username or context.username)


def lms_course_id(message: LaunchMessage) -> str | None:
    """Canvas's numeric course id: the custom field, else from Canvas's service URLs."""
    value = custom_value(message, COURSE_ID)
    if value is not None:
        return value
    for url in service_urls(message):
        match = _COURSE_IN_URL.search(url)
        if match:
            return match.group(1)
    return None


@hookimpl
def course_identifiers(message: LaunchMessage) -> CourseIdentifiers | None:
    """The LTI context, Canvas's course id and the courses this one was copied from."""
    course = standard_course_identifiers(message)
    if course is None:
        return None
    history = id_history(*(custom_scalar(message, name) for name in HISTORY_PARAMETERS))
    return replace(
        course,
        lms_course_id=lms_course_id(message),
        history=tuple(h for h in history if h != course.context_id),
    )


@hookimpl
def custom_parameter(attribute: str) -> CustomParameter | None:
    """The custom field a Canvas admin adds so ``attribute`` arrives in launches."""
    key = custom_parameter_key(attribute)
    if not key:
        return None
    variable = VARIABLES.get(key)
    if variable is None:
        return CustomParameter(
            name=key,
            value="<a Canvas substitution variable, or a fixed value>",
            help=(
                f"ltipro knows no Canvas variable for {attribute!r}. Pick one from Canvas's "
                "LTI variable substitution list (they start with $) or type a fixed value. "
                + WHERE_TO_ADD
            ),
        )
    return CustomParameter(name=key, value=variable, help=WHERE_TO_ADD)


@hookimpl
def example_launches() -> list[ExampleLaunch]:
    """Canvas launches as Canvas sends them: teacher, TA, student and admin, 1.3 and 1.1."""
    return list(EXAMPLES)
