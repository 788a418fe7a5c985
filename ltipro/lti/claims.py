"""Reading standard LTI claims into the normalized launch context.

The built-in ``generic`` plugin is exactly :func:`standard_launch_context`; LMS plugins
start from it and add what their LMS does differently.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import Any
from urllib.parse import unquote

from ltipro.context import LTI13, CourseIdentifiers, LaunchContext, LaunchMessage
from ltipro.lti.errors import LaunchError
from ltipro.utils import first_present, missing, normalize_domain

LIS = "http://purl.imsglobal.org/vocab/lis/v2/"

_SCOPE_PREFIXES = (
    (LIS + "membership/", "context"),
    (LIS + "membership#", "context"),
    (LIS + "institution/person#", "institution"),
    (LIS + "system/person#", "system"),
    ("urn:lti:role:ims/lis/", "context"),
    ("urn:lti:instrole:ims/lis/", "institution"),
    ("urn:lti:sysrole:ims/lis/", "system"),
)
_ADMIN_NAMES = {"Administrator", "SysAdmin", "AccountAdmin"}
_CAMEL = re.compile(r"(?<=[a-z])(?=[A-Z])")


def readable_role(raw: str) -> str | None:
    """One LTI role (URI, URN or short name) as a readable name.

    Course (membership) roles keep their own name, sub-roles their sub-role name
    (``.../membership/Instructor#TeachingAssistant`` is ``Teaching Assistant``). Institution
    and system roles are named with their scope (``Institution Instructor``), except
    administrators, so a student in this course who teaches another one elsewhere is not
    taken for this course's instructor.

    >>> readable_role("http://purl.imsglobal.org/vocab/lis/v2/membership#Instructor")
    'Instructor'
    >>> readable_role("urn:lti:instrole:ims/lis/Faculty")
    'Institution Faculty'
    """
    text = (raw or "").strip()
    if not text:
        return None
    scope = "context"
    for prefix, prefix_scope in _SCOPE_PREFIXES:
        if text.startswith(prefix):
            text, scope = text[len(prefix) :], prefix_scope
            break
    else:
        if "://" in text:
            # An LMS's own vocabulary (Canvas's .../canvas/... roles): keep the last segment.
            text = re.split(r"[#/]", text)[-1]
    name = text.split("#")[-1].split("/")[-1]
    if not name:
        return None
    words = _CAMEL.sub(" ", name)
    if name in _ADMIN_NAMES:
        return "Administrator"
    if scope == "context":
        return words
    return f"{scope.title()} {words}"


def readable_roles(raw_roles: Iterable[str]) -> tuple[str, ...]:
    """Every role as a readable name, without repeats, in the order sent."""
    seen: dict[str, None] = {}
    for raw in raw_roles:
        name = readable_role(raw)
        if name:
            seen.setdefault(name, None)
    return tuple(seen)


def raw_roles(message: LaunchMessage) -> tuple[str, ...]:
    """The roles as the LMS sent them (1.3 claim list, or 1.1 comma-separated ``roles``)."""
    if message.version == LTI13:
        roles = message.claim("roles")
        if roles is None:
            return ()
        if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
            raise LaunchError(
                "bad_claim",
                "The LMS sent the roles claim in a form LTI does not allow (it must be a list "
                "of strings).",
            )
        return tuple(r.strip() for r in roles if r.strip())
    return tuple(r.strip() for r in str(message.claims.get("roles") or "").split(",") if r.strip())


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def flat_attributes(message: LaunchMessage) -> dict[str, str]:
    """The launch's attributes under their LTI 1.1 names, for options that name one.

    LTI 1.3 claims are mapped to the names LTI 1.1 used (``email`` becomes
    ``lis_person_contact_email_primary``, custom claims become ``custom_*``, Moodle's
    ``ext`` claim becomes ``ext_*``); the 1.3 names ``email``, ``name``, ``given_name``,
    ``family_name`` and ``sub`` are kept too. Values the LMS left unresolved are dropped.
    """
    out: dict[str, str] = {}

    def put(name: str, value: Any) -> None:
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            if not missing(value):
                out[name] = str(value).strip()
        elif isinstance(value, bool):
            out[name] = "true" if value else "false"

    if message.version != LTI13:
        for key, value in message.claims.items():
            if not key.startswith("oauth_"):
                put(key, value)
        return out

    claims = message.claims
    for name in ("sub", "email", "name", "given_name", "family_name", "locale"):
        put(name, claims.get(name))
    put("user_id", claims.get("sub"))
    put("lis_person_name_full", claims.get("name"))
    put("lis_person_name_given", claims.get("given_name"))
    put("lis_person_name_family", claims.get("family_name"))
    put("lis_person_contact_email_primary", claims.get("email"))
    lis = _mapping(message.claim("lis"))
    put("lis_person_sourcedid", lis.get("person_sourcedid"))
    put("lis_course_offering_sourcedid", lis.get("course_offering_sourcedid"))
    put("lis_course_section_sourcedid", lis.get("course_section_sourcedid"))
    context = _mapping(message.claim("context"))
    put("context_id", context.get("id"))
    put("context_title", context.get("title"))
    put("context_label", context.get("label"))
    types = context.get("type")
    if isinstance(types, list):
        put("context_type", ",".join(str(t) for t in types))
    link = _mapping(message.claim("resource_link"))
    put("resource_link_id", link.get("id"))
    put("resource_link_title", link.get("title"))
    presentation = _mapping(message.claim("launch_presentation"))
    put("launch_presentation_locale", presentation.get("locale"))
    put("launch_presentation_return_url", presentation.get("return_url"))
    put("launch_presentation_document_target", presentation.get("document_target"))
    platform = _mapping(message.claim("tool_platform"))
    put("tool_consumer_info_product_family_code", platform.get("product_family_code"))
    put("tool_consumer_info_version", platform.get("version"))
    put("tool_consumer_instance_guid", platform.get("guid"))
    put("tool_consumer_instance_name", platform.get("name"))
    roles = message.claim("roles")
    if isinstance(roles, list):
        put("roles", ",".join(str(r) for r in roles))
    for key, value in _mapping(message.claim("ext")).items():
        put(f"ext_{key}", value)
    for key, value in _mapping(message.claim("custom")).items():
        put(f"custom_{key}", value)
    return out


def standard_course_identifiers(message: LaunchMessage) -> CourseIdentifiers | None:
    """The course from the standard ``context`` claim (1.3) or ``context_*`` fields (1.1)."""
    if message.version == LTI13:
        raw = message.claim("context")
        if raw is None:
            return None
        if not isinstance(raw, Mapping):
            raise LaunchError("bad_claim", "The LMS sent a context claim that is not an object.")
        context_id = first_present(raw.get("id"))
        title, label = raw.get("title"), raw.get("label")
    else:
        context_id = first_present(message.claims.get("context_id"))
        title = message.claims.get("context_title")
        label = message.claims.get("context_label")
    if context_id is None:
        return None
    return CourseIdentifiers(
        context_id=context_id,
        title=first_present(title),
        label=first_present(label),
    )


def standard_domain(message: LaunchMessage, attributes: Mapping[str, str]) -> str:
    """The LMS host: the return URL's host, else the platform URL's, else the issuer's."""
    candidates = [attributes.get("launch_presentation_return_url")]
    if message.version == LTI13:
        candidates.append(_mapping(message.claim("tool_platform")).get("url"))
        candidates.append(message.issuer or message.claims.get("iss"))
    for candidate in candidates:
        if isinstance(candidate, str):
            domain = normalize_domain(candidate)
            if domain:
                return domain
    return ""


def standard_launch_context(
    message: LaunchMessage, lms: str, course: CourseIdentifiers | None = None
) -> LaunchContext:
    """The launch context any LTI-conformant LMS yields, read from standard claims only."""
    attributes = flat_attributes(message)
    roles = raw_roles(message)
    if message.version == LTI13:
        custom_claim = message.claim("custom")
        if custom_claim is not None and not isinstance(custom_claim, Mapping):
            # LTI 1.3 defines custom as an object; anything else is not silently dropped.
            raise LaunchError("bad_claim", "The LMS sent a custom claim that is not an object.")
        claims = message.claims
        user_id = first_present(claims.get("sub"))
        message_type = str(message.claim("message_type") or "LtiResourceLinkRequest")
    else:
        claims = {}
        user_id = first_present(message.claims.get("user_id"))
        message_type = "LtiResourceLinkRequest"
    custom = message.custom
    return LaunchContext(
        lms=lms,
        lti_version=message.version,
        credential=message.credential,
        user_id=user_id,
        course=course if course is not None else standard_course_identifiers(message),
        domain=standard_domain(message, attributes),
        name=first_present(claims.get("name"), attributes.get("lis_person_name_full")),
        given_name=first_present(claims.get("given_name"), attributes.get("lis_person_name_given")),
        family_name=first_present(
            claims.get("family_name"), attributes.get("lis_person_name_family")
        ),
        email=first_present(
            claims.get("email"), attributes.get("lis_person_contact_email_primary")
        ),
        roles=readable_roles(roles),
        raw_roles=roles,
        timezone=first_present(custom.get("person_address_timezone")),
        locale=first_present(
            attributes.get("launch_presentation_locale"), attributes.get("locale")
        ),
        resource_link_id=attributes.get("resource_link_id"),
        return_url=attributes.get("launch_presentation_return_url"),
        message_type=message_type,
        attributes=attributes,
    )


def with_username(context: LaunchContext, username: str | None) -> LaunchContext:
    """The same context with the LMS login name set, where the LMS sent one."""
    return replace(context, username=username) if username else context


# -- what LMS plugins share ---------------------------------------------------------------

AGS_ENDPOINT = "https://purl.imsglobal.org/spec/lti-ags/claim/endpoint"
NRPS_SERVICE = "https://purl.imsglobal.org/spec/lti-nrps/claim/namesroleservice"
GROUPS_SERVICE = "https://purl.imsglobal.org/spec/lti-gs/claim/groupsservice"


def custom_value(message: LaunchMessage, *names: str) -> str | None:
    """The first of the custom parameters ``names`` that carries a real value.

    Names are given without the ``custom_`` prefix and work for both LTI versions;
    unresolved substitution variables (``$Canvas.course.id``, ``@X@course.id@X@``) and
    values that are not plain text or numbers count as absent.
    """
    return first_present(*(custom_scalar(message, name) for name in names))


def custom_scalar(message: LaunchMessage, name: str) -> str | None:
    """One custom parameter as text, or ``None`` when absent or not a plain value.

    An LTI 1.3 custom claim may hold any JSON; an object or a list where a value belongs
    is treated as absent rather than read as its Python text.
    """
    if message.version == LTI13:
        raw = _mapping(message.claim("custom")).get(name)
        if raw is None or isinstance(raw, (dict, list)):
            return None
    return message.custom.get(name)


def id_history(*values: object) -> tuple[str, ...]:
    """Context ids from course-copy history values, in order, without repeats.

    Each value is what ``$Context.id.history`` (or an LMS's own variant) expands to: a
    comma-separated list of URL-encoded context ids, newest first. Missing and
    unresolved values are skipped.
    """
    seen: dict[str, None] = {}
    for value in values:
        if missing(value) or not isinstance(value, (str, int)):
            continue
        for part in str(value).split(","):
            item = unquote(part.strip())
            if item and not missing(item):
                seen.setdefault(item, None)
    return tuple(seen)


def extension_roles(message: LaunchMessage) -> tuple[str, ...]:
    """LTI 1.1 ``ext_roles``: the full role URNs some LMSs send next to ``roles``."""
    if message.version == LTI13:
        return ()
    text = message.claims.get("ext_roles")
    if not isinstance(text, str):
        return ()
    return tuple(r.strip() for r in text.split(",") if r.strip())


def raw_roles_with_extensions(message: LaunchMessage) -> tuple[str, ...]:
    """The roles as sent, followed by the ``ext_roles`` entries not already among them."""
    roles = raw_roles(message)
    extra = [r for r in extension_roles(message) if r not in roles]
    return (*roles, *extra)


def with_roles(context: LaunchContext, raw: Iterable[str]) -> LaunchContext:
    """The same context with ``raw`` as the roles sent, and their readable names."""
    sent = tuple(raw)
    return replace(context, raw_roles=sent, roles=readable_roles(sent))


def context_types(message: LaunchMessage) -> tuple[str, ...]:
    """The launch's context types by their short names (``CourseSection``, ``Group``).

    LTI 1.3 asks for URIs (``http://purl.imsglobal.org/vocab/lis/v2/course#CourseSection``)
    but some LMSs send the bare name, and some a single string instead of a list.
    """
    if message.version == LTI13:
        raw: Any = _mapping(message.claim("context")).get("type")
    else:
        raw = message.claims.get("context_type")
    if isinstance(raw, str):
        items = raw.split(",")
    elif isinstance(raw, list):
        items = [item for item in raw if isinstance(item, str)]
    else:
        return ()
    names = (re.split(r"[#/:]", item.strip())[-1] for item in items)
    return tuple(dict.fromkeys(name for name in names if name))


def service_urls(message: LaunchMessage) -> tuple[str, ...]:
    """The URLs of the LMS's services in a launch (grades, rosters, groups, return).

    LMSs put their own course keys in these paths (Blackboard's ``_122_1``, Canvas's
    numeric course id, D2L's org unit), so they name the course when nothing else does.
    """
    urls: list[Any] = []
    if message.version == LTI13:
        ags = _mapping(message.claims.get(AGS_ENDPOINT))
        urls += [ags.get("lineitems"), ags.get("lineitem")]
        urls.append(_mapping(message.claims.get(NRPS_SERVICE)).get("context_memberships_url"))
        groups = _mapping(message.claims.get(GROUPS_SERVICE))
        urls += [groups.get("context_groups_url"), groups.get("context_group_sets_url")]
        urls.append(_mapping(message.claim("launch_presentation")).get("return_url"))
    else:
        for key in (
            "lis_outcome_service_url",
            "ext_ims_lis_memberships_url",
            "launch_presentation_return_url",
        ):
            urls.append(message.claims.get(key))
    return tuple(url for url in urls if isinstance(url, str) and url.strip())


def custom_parameter_key(attribute: str) -> str:
    """The custom parameter name an LMS admin adds for an attribute an option names.

    ``custom_Account Name`` and ``account_name`` both become ``account_name``: the
    launch then carries it as ``custom_account_name``, which the options read back.
    """
    text = (attribute or "").strip()
    if text.lower().startswith("custom_"):
        text = text[len("custom_") :]
    return re.sub(r"[^0-9a-z]+", "_", text.lower()).strip("_")
