"""ltipro-moodle: launches from Moodle, in LTI 1.3 and LTI 1.1.

What Moodle does differently from plain LTI, and how this plugin reads it:

- The login name comes in Moodle's extension: the ``.../claim/ext`` claim's
  ``user_username`` in LTI 1.3, ``ext_user_username`` in LTI 1.1; the same extension's
  ``lms`` (``moodle-2``) names Moodle when the product family code is missing.
- ``context.type`` is a URI in current Moodle (``.../course#CourseSection``) and the bare
  ``CourseSection`` in older versions; both read the same.
- Moodle gives ``Instructor`` to anyone who may manage the activity (editing and
  non-editing teachers, managers) and ``Learner`` to everyone else; site admins also get
  the institution and system ``Administrator`` roles.
- The LTI context id is Moodle's own course id, so it is also the LMS course id.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from ltipro.context import LTI13, CourseIdentifiers, LaunchContext, LaunchMessage
from ltipro.extension import CustomParameter, ExampleLaunch, LmsDetails
from ltipro.hookspecs import hookimpl
from ltipro.lti.claims import (
    context_types,
    custom_parameter_key,
    custom_scalar,
    id_history,
    raw_roles_with_extensions,
    standard_course_identifiers,
    standard_launch_context,
    with_roles,
)
from ltipro.utils import first_present
from ltipro_moodle.calendar import calendar_create_event as calendar_create_event
from ltipro_moodle.calendar import calendar_delete_event as calendar_delete_event
from ltipro_moodle.calendar import calendar_list_events as calendar_list_events
from ltipro_moodle.calendar import calendar_update_event as calendar_update_event
from ltipro_moodle.examples import EXAMPLES
from ltipro_moodle.registration import registration_artifacts as registration_artifacts
from ltipro_moodle.settings import plugin_settings as plugin_settings

NAME = "moodle"
TITLE = "Moodle"
EXT_CLAIM = "https://purl.imsglobal.org/spec/lti/claim/ext"
COURSE_TYPES = {"CourseSection", "CourseOffering", "CourseTemplate"}
HISTORY_PARAMETER = "context_id_history"  # $Context.id.history

WHERE_TO_ADD = (
    "In Moodle, open Site administration > Plugins > Activity modules > External tool > "
    "Manage tools, edit the tool and add the line to Custom parameters (one name=value "
    "per line). Moodle replaces the $ variable with the value at each launch."
)

# Moodle's substitution variables (mod/lti's lti_get_capabilities) for the attributes
# admins most often map to tracking fields and groups.
VARIABLES: dict[str, str] = {
    "course_id": "$Context.id",
    "course_name": "$Context.title",
    "course_title": "$Context.title",
    "course_short_name": "$Context.label",
    "course_label": "$Context.label",
    "course_idnumber": "$CourseSection.sourcedId",
    "course_sis_id": "$CourseSection.sourcedId",
    "course_start": "$CourseSection.timeFrame.begin",
    "course_end": "$CourseSection.timeFrame.end",
    "username": "$User.username",
    "user_id": "$User.id",
    "email": "$Person.email.primary",
    "user_idnumber": "$Person.sourcedId",
    "user_sis_id": "$Person.sourcedId",
    "person_address_timezone": "$Person.address.timezone",
    "timezone": "$Person.address.timezone",
    "city": "$Person.address.locality",
    "country": "$Person.address.country",
    "group_ids": "$Moodle.Person.userGroupIds",
    "groups": "$Moodle.Person.userGroupIds",
    "roles": "$Membership.role",
    "context_id_history": "$Context.id.history",
}


@hookimpl
def lms_details() -> LmsDetails:
    """Moodle, as the core and the admin see it."""
    return LmsDetails(
        name=NAME,
        title=TITLE,
        product_family_codes=("moodle",),
        missing_email_help=(
            "Moodle sends email addresses only when the tool's privacy settings allow it. "
            "In Site administration > Plugins > Activity modules > External tool > Manage "
            'tools, edit the tool and set "Share launcher\'s email with tool" to Always '
            "(or to Delegate to teacher, and have the teacher allow it in the activity)."
        ),
        lms_course_id_parameter=None,  # the LTI context id is Moodle's course id
    )


def _extension(message: LaunchMessage) -> Mapping[str, object]:
    """Moodle's extension values: the 1.3 ``ext`` claim, or the 1.1 ``ext_*`` fields."""
    if message.version == LTI13:
        ext = message.claims.get(EXT_CLAIM)
        return ext if isinstance(ext, Mapping) else {}
    return {k[len("ext_") :]: v for k, v in message.claims.items() if k.startswith("ext_")}


@hookimpl
def identify_lms(message: LaunchMessage) -> str | None:
    """Moodle by its product family code, or failing one by its ``ext.lms`` value."""
    code = (message.product_family_code or "").strip().lower()
    if code:
        return NAME if code == "moodle" else None
    lms = _extension(message).get("lms")
    if isinstance(lms, str) and lms.lower().startswith("moodle"):
        return NAME
    return None


@hookimpl
def launch_context(message: LaunchMessage) -> LaunchContext:
    """The standard context plus Moodle's username and its context type by short name."""
    context = standard_launch_context(message, lms=NAME)
    context = with_roles(context, raw_roles_with_extensions(message))
    username = first_present(_extension(message).get("user_username"))
    attributes = dict(context.attributes)
    types = context_types(message)
    if types:
        attributes["context_type"] = ",".join(types)
    return replace(context, username=username or context.username, attributes=attributes)


@hookimpl
def course_identifiers(message: LaunchMessage) -> CourseIdentifiers | None:
    """The LTI context (Moodle's course id) and the courses it was copied from."""
    course = standard_course_identifiers(message)
    if course is None:
        return None
    types = set(context_types(message))
    is_course = not types or bool(types & COURSE_TYPES)
    history = id_history(custom_scalar(message, HISTORY_PARAMETER))
    return replace(
        course,
        lms_course_id=course.context_id if is_course else None,
        history=tuple(h for h in history if h != course.context_id),
    )


@hookimpl
def custom_parameter(attribute: str) -> CustomParameter | None:
    """The custom parameter a Moodle admin adds so ``attribute`` arrives in launches."""
    key = custom_parameter_key(attribute)
    if not key:
        return None
    variable = VARIABLES.get(key)
    if variable is None:
        return CustomParameter(
            name=key,
            value="<a Moodle substitution variable, or a fixed value>",
            help=(
                f"ltipro knows no Moodle variable for {attribute!r}. Moodle substitutes the "
                "LTI variables ($Context.*, $CourseSection.*, $Person.*, $User.*) and "
                "$Moodle.Person.userGroupIds; otherwise type a fixed value. " + WHERE_TO_ADD
            ),
        )
    return CustomParameter(name=key, value=variable, help=WHERE_TO_ADD)


@hookimpl
def example_launches() -> list[ExampleLaunch]:
    """Moodle launches as Moodle sends them: teacher, TA, student and admin, 1.3 and 1.1."""
    return list(EXAMPLES)
