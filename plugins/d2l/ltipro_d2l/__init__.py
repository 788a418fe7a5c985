"""ltipro-d2l: launches from D2L Brightspace, in LTI 1.3 and LTI 1.1.

What Brightspace does differently from plain LTI, and how this plugin reads it:

- Its own user data comes in the ``http://www.brightspace.com`` claim (``username``,
  ``org_defined_id``, ``user_id``, ``tenant_id``, ``Context.id.history``), at the top
  level of the ``id_token`` or, in some versions, nested in ``launch_presentation``. In
  LTI 1.1 the same values are the ``ext_d2l_*`` fields (``ext_d2l_username``,
  ``ext_d2l_orgdefinedid``, ``ext_d2l_role``, ``ext_d2l_tenantid``).
- ``sub`` (1.3) and ``user_id`` (1.1) are ``<tenant>_<user id>``: the Brightspace user
  id is read from there when the claim does not carry it.
- Both versions end up with the same attribute names (``ext_d2l_username``,
  ``ext_d2l_orgdefinedid``, ``ext_d2l_user_id``, ``ext_d2l_tenantid``), so a tracking
  field or email rule written for one works for the other.
- The LTI context id is the course's org unit id, the LMS course id.
- LTI 1.1 launches may carry no return URL; the Brightspace host is then read from its
  service URLs.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from ltipro.context import LTI13, CourseIdentifiers, LaunchContext, LaunchMessage
from ltipro.extension import CustomParameter, ExampleLaunch, LmsDetails
from ltipro.hookspecs import hookimpl
from ltipro.lti.claims import (
    custom_parameter_key,
    custom_scalar,
    id_history,
    raw_roles_with_extensions,
    readable_role,
    service_urls,
    standard_course_identifiers,
    standard_launch_context,
    with_roles,
)
from ltipro.utils import first_present, normalize_domain
from ltipro_d2l.calendar import calendar_create_event as calendar_create_event
from ltipro_d2l.calendar import calendar_delete_event as calendar_delete_event
from ltipro_d2l.calendar import calendar_list_events as calendar_list_events
from ltipro_d2l.calendar import calendar_update_event as calendar_update_event
from ltipro_d2l.connections import admin_connections as admin_connections
from ltipro_d2l.examples import EXAMPLES
from ltipro_d2l.oauth import plugin_routes as plugin_routes
from ltipro_d2l.registration import registration_artifacts as registration_artifacts
from ltipro_d2l.settings import plugin_settings as plugin_settings

NAME = "d2l"
TITLE = "D2L Brightspace"
BRIGHTSPACE_CLAIM = "http://www.brightspace.com"
LAUNCH_PRESENTATION = "https://purl.imsglobal.org/spec/lti/claim/launch_presentation"
HISTORY_PARAMETER = "context_id_history"  # $Context.id.history
ORG_UNIT_PARAMETER = "org_unit_id"  # {OrgUnitId}

_TENANT_USER = re.compile(r"^(?P<tenant>.+)_(?P<user>\d+)$")
_ORG_UNIT_IN_URL = re.compile(r"/orgunit/(\d+)(?=[/?#]|$)")

# The claim's fields and the LTI 1.1 names they share.
_SHARED_NAMES = {
    "username": "ext_d2l_username",
    "org_defined_id": "ext_d2l_orgdefinedid",
    "user_id": "ext_d2l_user_id",
    "tenant_id": "ext_d2l_tenantid",
    "link_id": "ext_d2l_link_id",
}

WHERE_TO_ADD = (
    "In Brightspace, open Admin Tools > Manage Extensibility > LTI Advantage, open the "
    "tool's deployment and add the line under Custom Parameters (LTI 1.1: the link's or "
    "the tool provider's Custom Parameters). Brightspace replaces $ variables and "
    "{replacement strings} with the value at each launch."
)

# Brightspace's LTI substitution variables and its own replacement strings for the
# attributes admins most often map to tracking fields and groups.
VARIABLES: dict[str, str] = {
    "org_defined_id": "{OrgDefinedId}",
    "user_org_defined_id": "{OrgDefinedId}",
    "orgdefinedid": "{OrgDefinedId}",
    "username": "$User.username",
    "email": "$Person.email.primary",
    "course_id": "{OrgUnitId}",
    "org_unit_id": "{OrgUnitId}",
    "course_code": "{OrgUnitCode}",
    "org_unit_code": "{OrgUnitCode}",
    "course_name": "{OrgUnitName}",
    "org_unit_name": "{OrgUnitName}",
    "org_name": "{OrgName}",
    "account_name": "{OrgName}",
    "role_name": "{RoleName}",
    "course_sis_id": "$CourseOffering.sourcedId",
    "course_offering_sourcedid": "$CourseOffering.sourcedId",
    "course_template": "$CourseTemplate.title",
    "department": "$CourseTemplate.title",
    "course_template_id": "$CourseTemplate.sourcedId",
    "course_start": "$CourseSection.timeFrame.begin",
    "course_end": "$CourseSection.timeFrame.end",
    "context_id_history": "$Context.id.history",
}


@hookimpl
def lms_details() -> LmsDetails:
    """Brightspace, as the core and the admin see it."""
    return LmsDetails(
        name=NAME,
        title=TITLE,
        product_family_codes=("desire2learn",),
        missing_email_help=(
            "Brightspace sends email addresses only when the tool's security settings "
            "allow it. For LTI 1.3, open Admin Tools > Manage Extensibility > LTI "
            "Advantage, open the tool's deployment and tick Email under Security Settings; "
            'for LTI 1.1, tick "Send user email to tool provider" in the tool provider '
            "or link settings."
        ),
        lms_course_id_parameter="org_unit_id={OrgUnitId}",
    )


def brightspace_claim(message: LaunchMessage) -> Mapping[str, Any]:
    """The ``http://www.brightspace.com`` claim, at the top level or in launch_presentation."""
    if message.version != LTI13:
        return {}
    claim = message.claims.get(BRIGHTSPACE_CLAIM)
    if not isinstance(claim, Mapping):
        presentation = message.claims.get(LAUNCH_PRESENTATION)
        claim = presentation.get(BRIGHTSPACE_CLAIM) if isinstance(presentation, Mapping) else None
    return claim if isinstance(claim, Mapping) else {}


@hookimpl
def identify_lms(message: LaunchMessage) -> str | None:
    """Brightspace by its product family code, or failing one by its own claim or fields."""
    code = (message.product_family_code or "").strip().lower()
    if code:
        return NAME if code == "desire2learn" else None
    if brightspace_claim(message):
        return NAME
    if message.version != LTI13 and any(k.startswith("ext_d2l_") for k in message.claims):
        return NAME
    return None


def d2l_values(message: LaunchMessage) -> dict[str, str]:
    """Brightspace's own values under their LTI 1.1 names, for either version."""
    out: dict[str, str] = {}
    if message.version == LTI13:
        claim = brightspace_claim(message)
        for key, name in _SHARED_NAMES.items():
            raw = claim.get(key)
            value = first_present(raw) if isinstance(raw, (str, int)) else None
            if value is not None:
                out[name] = value
        user_ref = message.claims.get("sub")
    else:
        for key, value in message.claims.items():
            if key.startswith("ext_d2l_") and first_present(value) is not None:
                out[key] = str(value).strip()
        user_ref = message.claims.get("user_id")
    # Brightspace user references are <tenant>_<user id>.
    match = _TENANT_USER.match(user_ref) if isinstance(user_ref, str) else None
    if match:
        out.setdefault("ext_d2l_user_id", match.group("user"))
    return out


def _domain(message: LaunchMessage, context: LaunchContext) -> str:
    if context.domain and context.return_url:
        return context.domain
    for url in service_urls(message):
        domain = normalize_domain(url)
        if domain:
            return domain
    for key in ("ext_tc_profile_url", "lis_outcome_service_url"):
        domain = normalize_domain(str(message.claims.get(key) or ""))
        if domain:
            return domain
    return context.domain


@hookimpl
def launch_context(message: LaunchMessage) -> LaunchContext:
    """The standard context plus Brightspace's username, ids and its LMS host."""
    context = standard_launch_context(message, lms=NAME)
    context = with_roles(context, raw_roles_with_extensions(message))
    values = d2l_values(message)
    if not context.raw_roles and "ext_d2l_role" in values:
        # An LTI 1.1 link set to send no IMS roles still names the Brightspace role.
        role = readable_role(values["ext_d2l_role"])
        context = replace(context, roles=(role,) if role else ())
    attributes = {**context.attributes, **values}
    return replace(
        context,
        username=values.get("ext_d2l_username") or context.username,
        domain=_domain(message, context),
        attributes=attributes,
    )


@hookimpl
def course_identifiers(message: LaunchMessage) -> CourseIdentifiers | None:
    """The LTI context (the org unit), its id, and the courses it was copied from."""
    course = standard_course_identifiers(message)
    if course is None:
        return None
    # The org_unit_id={OrgUnitId} custom parameter, where an admin added it, names the
    # org unit outright; otherwise Brightspace's context id is the org unit id.
    custom = (custom_scalar(message, ORG_UNIT_PARAMETER) or "").strip()
    org_unit = custom if custom.isdigit() else None
    if org_unit is None and course.context_id.isdigit():
        org_unit = course.context_id
    if org_unit is None:
        for url in service_urls(message):
            match = _ORG_UNIT_IN_URL.search(url)
            if match:
                org_unit = match.group(1)
                break
    claim_history = brightspace_claim(message).get("Context.id.history")
    history = id_history(
        claim_history if isinstance(claim_history, str) else None,
        custom_scalar(message, HISTORY_PARAMETER),
    )
    return replace(
        course,
        lms_course_id=org_unit,
        history=tuple(h for h in history if h != course.context_id),
    )


@hookimpl
def custom_parameter(attribute: str) -> CustomParameter | None:
    """The custom parameter a Brightspace admin adds so ``attribute`` arrives in launches."""
    key = custom_parameter_key(attribute)
    if not key:
        return None
    variable = VARIABLES.get(key)
    if variable is None:
        return CustomParameter(
            name=key,
            value="<a Brightspace replacement string or $ variable, or a fixed value>",
            help=(
                f"ltipro knows no Brightspace value for {attribute!r}. Brightspace replaces "
                "its replacement strings ({OrgUnitName}, {OrgDefinedId}, ...) and the LTI "
                "$ variables it supports; otherwise type a fixed value. " + WHERE_TO_ADD
            ),
        )
    return CustomParameter(name=key, value=variable, help=WHERE_TO_ADD)


@hookimpl
def example_launches() -> list[ExampleLaunch]:
    """Brightspace launches as it sends them: instructor, TA, student and admin, 1.3 and 1.1."""
    return list(EXAMPLES)
