"""ltipro-sakai: launches from Sakai, in LTI 1.3 and LTI 1.1.

What Sakai does differently from plain LTI, and how this plugin reads it (Sakai's
``SakaiLTIUtil.java`` builds both kinds of launch):

- Detection: ``tool_platform.product_family_code`` (LTI 1.3) or
  ``tool_consumer_info_product_family_code`` (LTI 1.1) is ``sakai``; failing one, Sakai's
  own claim ``https://www.sakailms.org/spec/lti/claim/extension`` (1.3) or
  ``ext_lms=sakai-<version>`` and the ``ext_sakai_*`` fields (1.1) name it.
- The LTI 1.3 ``sub`` is a URL, ``<server>/user/<Sakai user id>``, while LTI 1.1's
  ``user_id`` is the bare Sakai user id: both versions carry the bare id as the
  attribute ``ext_sakai_user_id``, so a rule written for one works for the other.
- The login name (Sakai's EID) is ``sakai_eid`` in the extension claim (1.1:
  ``ext_sakai_eid``), and ``lis.person_sourcedid`` / ``lis_person_sourcedid`` where the
  extension lacks it. The site role (``maintain``, ``access``, ``Teaching Assistant``)
  is ``sakai_role`` / ``ext_sakai_role``, kept as the attribute ``ext_sakai_role``.
- Roles: LTI 1.1 sends the short and the full name of each role
  (``Instructor,http://purl.imsglobal.org/vocab/lis/v2/membership#Instructor``), a
  teaching assistant as ``membership#Instructor#TeachingAssistant`` (two ``#``); an
  administrator adds the ``Administrator`` roles to ``Instructor``. The standard reading
  names each once.
- The LTI context id is the Sakai site id, so it is also the LMS course id, for course
  sites and project sites (LTI 1.1 ``context_type=Group``) alike; LTI 1.3 always says
  ``CourseOffering`` (older Sakai as ``http://purl.org/CourseOffering``).
- The LMS domain is the return URL's host, else the extension's ``sakai_server``.
- Course-copy history comes from ``context_id_history=$Context.id.history``.
"""

from __future__ import annotations

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
    standard_course_identifiers,
    standard_launch_context,
)
from ltipro.utils import first_present, normalize_domain
from ltipro_sakai.examples import EXAMPLES

NAME = "sakai"
TITLE = "Sakai"
FAMILY_CODES = ("sakai",)
HISTORY_PARAMETER = "context_id_history"  # $Context.id.history
EXTENSION_CLAIM = "https://www.sakailms.org/spec/lti/claim/extension"
LIS_CLAIM = "https://purl.imsglobal.org/spec/lti/claim/lis"
PLATFORM_CLAIM = "https://purl.imsglobal.org/spec/lti/claim/tool_platform"

WHERE_TO_ADD = (
    "In Sakai, open Administration Workspace > External Tools (or Site Info > External "
    "Tools for a site's own tool), edit the tool and add the line to Custom Parameters "
    "(one name=value per line). Sakai replaces the $ variable with the value at each "
    "launch."
)

# The substitution variables Sakai supports (sakaiproject/sakai lti/docs/CUSTOM.md) for
# the attributes admins most often map to tracking fields and groups.
VARIABLES: dict[str, str] = {
    "email": "$Person.email.primary",
    "username": "$User.username",
    "eid": "$User.username",
    "user_id": "$User.id",
    "user_sis_id": "$Person.sourcedId",
    "timezone": "$Person.address.timezone",
    "person_address_timezone": "$Person.address.timezone",
    "locale": "$Message.locale",
    "course_id": "$Context.id",
    "site_id": "$Context.id",
    "course_title": "$Context.title",
    "course_name": "$Context.title",
    "course_label": "$CourseSection.label",
    "course_sis_id": "$CourseSection.sourcedId",
    "course_offering_sourcedid": "$CourseOffering.sourcedId",
    "context_type": "$Context.type",
    "site_role": "$Sakai.ext.role",
    "sakai_role": "$Sakai.ext.role",
    "membership_role": "$Membership.role",
    "context_id_history": "$Context.id.history",
}


@hookimpl
def lms_details() -> LmsDetails:
    """Sakai, as the core and the admin see it."""
    return LmsDetails(
        name=NAME,
        title=TITLE,
        product_family_codes=FAMILY_CODES,
        missing_email_help=(
            "Sakai sends email addresses only to tools allowed to receive them. In "
            "Administration Workspace > External Tools, edit the tool and, under Privacy, "
            "allow it to receive the user's email address (LTI 1.1 tools placed in a "
            'site: the tool\'s "Send Email Addresses to External Tool" setting).'
        ),
        lms_course_id_parameter=None,  # the LTI context id is the Sakai site id
    )


def extension(message: LaunchMessage) -> dict[str, str]:
    """Sakai's own values under their LTI 1.1 names (``ext_sakai_*``), for either version."""
    out: dict[str, str] = {}
    if message.version == LTI13:
        claim = message.claims.get(EXTENSION_CLAIM)
        values: Mapping[str, Any] = claim if isinstance(claim, Mapping) else {}
        items = [(f"ext_{key}", value) for key, value in values.items()]
    else:
        items = [(k, v) for k, v in message.claims.items() if k.startswith("ext_sakai_")]
    for name, value in items:
        if isinstance(value, str) and first_present(value) is not None:
            out[name] = value.strip()
    user_id = sakai_user_id(message)
    if user_id:
        out["ext_sakai_user_id"] = user_id
    return out


def sakai_user_id(message: LaunchMessage) -> str | None:
    """The bare Sakai user id: LTI 1.1 ``user_id``, the last segment of LTI 1.3's ``sub``."""
    if message.version != LTI13:
        return first_present(message.claims.get("user_id"))
    sub = message.claims.get("sub")
    if not isinstance(sub, str) or not first_present(sub):
        return None
    # Sakai's subject is <server>[/deployment/<id>]/user/<Sakai user id>.
    head, _, tail = sub.strip().rstrip("/").rpartition("/user/")
    return first_present(tail) if head and "/" not in tail else first_present(sub)


@hookimpl
def identify_lms(message: LaunchMessage) -> str | None:
    """Sakai by its product family code, or failing one by its own claim or fields."""
    code = (message.product_family_code or "").strip().lower()
    if code:
        return NAME if code in {c.lower() for c in FAMILY_CODES} else None
    if message.version == LTI13:
        return NAME if isinstance(message.claims.get(EXTENSION_CLAIM), Mapping) else None
    lms = message.claims.get("ext_lms")
    if isinstance(lms, str) and lms.lower().startswith("sakai"):
        return NAME
    return NAME if any(k.startswith("ext_sakai_") for k in message.claims) else None


def _person_sourcedid(message: LaunchMessage) -> str | None:
    if message.version == LTI13:
        lis = message.claims.get(LIS_CLAIM)
        value = lis.get("person_sourcedid") if isinstance(lis, Mapping) else None
    else:
        value = message.claims.get("lis_person_sourcedid")
    return first_present(value) if isinstance(value, str) else None


def _domain(message: LaunchMessage, context: LaunchContext, values: Mapping[str, str]) -> str:
    if context.return_url and context.domain:
        return context.domain
    candidates: list[Any] = [values.get("ext_sakai_server")]
    if message.version == LTI13:
        platform = message.claims.get(PLATFORM_CLAIM)
        candidates.append(platform.get("url") if isinstance(platform, Mapping) else None)
    for candidate in candidates:
        domain = normalize_domain(candidate) if isinstance(candidate, str) else ""
        if domain:
            return domain
    return context.domain


@hookimpl
def launch_context(message: LaunchMessage) -> LaunchContext:
    """The standard context plus Sakai's login name, user id, site role and server."""
    context = standard_launch_context(message, lms=NAME)
    values = extension(message)
    username = values.get("ext_sakai_eid") or _person_sourcedid(message)
    return replace(
        context,
        username=username or context.username,
        domain=_domain(message, context, values),
        attributes={**context.attributes, **values},
    )


@hookimpl
def course_identifiers(message: LaunchMessage) -> CourseIdentifiers | None:
    """The LTI context (the Sakai site, whose id is Sakai's course id) and its copies."""
    course = standard_course_identifiers(message)
    if course is None:
        return None
    history = id_history(custom_scalar(message, HISTORY_PARAMETER))
    return replace(
        course,
        lms_course_id=course.context_id,
        history=tuple(h for h in history if h != course.context_id),
    )


@hookimpl
def custom_parameter(attribute: str) -> CustomParameter | None:
    """The custom parameter a Sakai admin adds so ``attribute`` arrives in launches."""
    key = custom_parameter_key(attribute)
    if not key:
        return None
    variable = VARIABLES.get(key)
    if variable is None:
        return CustomParameter(
            name=key,
            value=f"<a {TITLE} substitution variable, or a fixed value>",
            help=(
                f"ltipro knows no {TITLE} variable for {attribute!r}: use one the LMS "
                "documents (they start with $) or type a fixed value. " + WHERE_TO_ADD
            ),
        )
    return CustomParameter(name=key, value=variable, help=WHERE_TO_ADD)


@hookimpl
def example_launches() -> list[ExampleLaunch]:
    """Sakai launches, for the simulator and the conformance suite."""
    return list(EXAMPLES)
