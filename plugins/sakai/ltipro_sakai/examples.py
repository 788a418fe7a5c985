"""Sakai launches as Sakai sends them, for ltipro's simulator and the conformance suite.

Sources (each example names its own in ``source``):

- sakaiproject/sakai ``lti/lti-common/src/java/org/sakaiproject/lti/util/SakaiLTIUtil.java``:
  ``postLaunchJWT`` builds the LTI 1.3 claims from the LTI 1.1 properties (``sub`` as
  ``<server>/user/<user id>``, ``locale`` at the top level, ``context.type``
  ``CourseOffering``, ``tool_platform`` named ``Sakai``, ``lis`` with ``version``, the
  ``https://www.sakailms.org/spec/lti/claim/extension`` claim, the ``lti1p1`` migration
  claim, ``/imsblis/lti13/lineitems/<site>`` and ``/namesandroles/<site>`` services);
  ``addGlobalData``, ``addSiteInfo``, ``addUserInfo``, ``addRoleInfo`` and
  ``addPlacementInfo`` the LTI 1.1 fields (``ext_lms=sakai-<version>``,
  ``ext_sakai_role``, ``ext_sakai_eid``, ``context_type`` ``CourseSection`` or
  ``Group``, the return URL ``/imsblis/service/return-url/site/<site>``). Its comment in
  ``postLaunchJWT`` lists a real LTI 1.1 launch by the Sakai administrator in the
  project site ``mercury``: the ``admin-11`` example.
- sakaiproject/sakai ``lti/docs/CUSTOM.md``: the sample values of Sakai's substitution
  variables (user ``csev@umich.edu`` with id ``0b0bbd1b-...``, site
  ``a77ed1b6-...`` "UMSI 511 - Beginning Postgres", ``America/Detroit``, ``en_US``,
  ``roguelms.edu``, version ``25-SNAPSHOT``, site role ``maintain``).
- sakaiproject/sakai ``lti/docs/LTIROLES.md``: the outbound role map (``maintain`` and
  ``Instructor`` send ``Instructor``; ``access`` and ``Student`` send ``Learner``;
  ``Teaching Assistant`` sends ``membership#Instructor#TeachingAssistant``; ``admin``
  sends ``Instructor`` and both ``Administrator`` roles) and the legacy-role upgrade
  LTI 1.3 launches go through.
- sakaiproject/sakai ``.../lti13/util/SakaiExtension.java``: the extension claim's
  fields (``sakai_launch_presentation_css_url_list``, ``sakai_academic_session``,
  ``sakai_role``, ``sakai_server``, ``sakai_serverid``, ``sakai_eid``).

The claims the platform adds when it signs (``iss``, ``aud``, ``nonce``, ``iat``, ``exp``,
``deployment_id``, ``target_link_uri``) are left out: the simulator sets them.
"""

from __future__ import annotations

from typing import Any

from ltipro.extension import ExampleLaunch

CLAIM = "https://purl.imsglobal.org/spec/lti/claim/"
LIS = "http://purl.imsglobal.org/vocab/lis/v2/"
EXTENSION = "https://www.sakailms.org/spec/lti/claim/extension"
AGS = "https://purl.imsglobal.org/spec/lti-ags/claim/endpoint"
NRPS = "https://purl.imsglobal.org/spec/lti-nrps/claim/namesroleservice"
SERVER = "http://localhost:8080"
SITE = "a77ed1b6-ceea-4339-ad60-8bbe7219f3b5"
SITE_TITLE = "UMSI 511 - Beginning Postgres"
COPIED_FROM = "5d1f0b93-8c1e-4b9a-9d4e-0a6f3e2b7c11"
HOST = "localhost"
FAMILY_CODE = "sakai"
CSS_LIST = (
    f"{SERVER}/library/skin/tool_base.css,"
    f"{SERVER}/library/skin/morpheus-default/tool.css?version=49b21ca5"
)

UTIL = "sakaiproject/sakai lti/lti-common/src/java/org/sakaiproject/lti/util/SakaiLTIUtil.java"
CUSTOM_MD = "sakaiproject/sakai lti/docs/CUSTOM.md"
ROLES_MD = "sakaiproject/sakai lti/docs/LTIROLES.md"
SOURCE_13 = f"{UTIL} postLaunchJWT, with the values of {CUSTOM_MD}, roles per {ROLES_MD}"
SOURCE_11 = f"{UTIL} addGlobalData/addSiteInfo/addUserInfo/addRoleInfo, values of {CUSTOM_MD}"
ROLE_INSTRUCTOR = LIS + "membership#Instructor"
ROLE_LEARNER = LIS + "membership#Learner"
# Sakai's own spelling of the sub-role: the standard one is membership/Instructor#...
ROLE_TA = LIS + "membership#Instructor#TeachingAssistant"


def _launch_13(
    user_id: str, eid: str, given: str, family: str, roles: list[str], site_role: str
) -> dict[str, Any]:
    """A resource-link launch in the UMSI 511 site, as postLaunchJWT writes it."""
    return {
        "sub": f"{SERVER}/user/{user_id}",
        "name": f"{given} {family}",
        "given_name": given,
        "family_name": family,
        "email": eid,
        "locale": "en_US",
        CLAIM + "message_type": "LtiResourceLinkRequest",
        CLAIM + "version": "1.3.0",
        CLAIM + "roles": roles,
        CLAIM + "resource_link": {
            "id": "content:3",
            "title": "Peer Graded: Installation Screen Shots",
            "description": "Peer Graded: Installation Screen Shots",
        },
        CLAIM + "context": {
            "id": SITE,
            "label": SITE_TITLE,
            "title": SITE_TITLE,
            "type": [LIS + "course#CourseOffering"],
        },
        CLAIM + "tool_platform": {
            "name": "Sakai",
            "guid": "roguelms.edu",
            "version": "25-SNAPSHOT",
            "product_family_code": FAMILY_CODE,
            "url": SERVER,
            "description": "localhost.sakailms",
        },
        CLAIM + "launch_presentation": {
            "css_url": f"{SERVER}/library/skin/tool_base.css",
            "return_url": f"{SERVER}/imsblis/service/return-url/site/{SITE}",
        },
        CLAIM + "lis": {
            "person_sourcedid": eid,
            "course_offering_sourcedid": SITE,
            "course_section_sourcedid": SITE,
            "version": ["1.0.0", "1.1.0"],
        },
        CLAIM + "custom": {},
        AGS: {
            "scope": [
                "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem",
                "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem.readonly",
                "https://purl.imsglobal.org/spec/lti-ags/scope/score",
                "https://purl.imsglobal.org/spec/lti-ags/scope/result.readonly",
            ],
            "lineitems": f"{SERVER}/imsblis/lti13/lineitems/{SITE}",
        },
        NRPS: {"context_memberships_url": f"{SERVER}/imsblis/lti13/namesandroles/{SITE}"},
        EXTENSION: {
            "sakai_launch_presentation_css_url_list": CSS_LIST,
            "sakai_academic_session": "OTHER",
            "sakai_role": site_role,
            "sakai_server": SERVER,
            "sakai_serverid": "MacBook-Pro-92.local",
            "sakai_eid": eid,
        },
    }


INSTRUCTOR_13 = _launch_13(
    "0b0bbd1b-a1ba-42c2-bdb0-ffe44e5abec6",
    "csev@umich.edu",
    "Charles",
    "Severance",
    [ROLE_INSTRUCTOR],
    "maintain",
)
INSTRUCTOR_13[CLAIM + "custom"] = {"context_id_history": COPIED_FROM}
# Sent when the tool also has an LTI 1.1 key: the same user's LTI 1.1 user_id.
INSTRUCTOR_13[CLAIM + "lti1p1"] = {
    "user_id": "0b0bbd1b-a1ba-42c2-bdb0-ffe44e5abec6",
    "oauth_consumer_key": "12345",
    "oauth_consumer_key_sign": "lWd54kFo5qU7xshAna6v8BwoBm6tmUjc6GTax6+12ps=",
}

STUDENT_13 = _launch_13(
    "6f1c8d2e-5b3a-4e7f-9a1d-2c4b6e8f0a13",
    "sally@umich.edu",
    "Sally",
    "Student",
    [ROLE_LEARNER],
    "Student",
)

TA_13 = _launch_13(
    "9d2e4f6a-8b1c-4d3e-a5f7-1b3d5f7a9c24",
    "terry@umich.edu",
    "Terry",
    "Assistant",
    [ROLE_TA],
    "Teaching Assistant",
)

ADMIN_13 = _launch_13(
    "admin",
    "admin",
    "Sakai",
    "Administrator",
    [
        ROLE_INSTRUCTOR,
        LIS + "institution/person#Administrator",
        LIS + "system/person#Administrator",
    ],
    "admin",
)
ADMIN_13["email"] = "admin@umich.edu"

_COMMON_11: dict[str, str] = {
    "lti_message_type": "basic-lti-launch-request",
    "lti_version": "LTI-1p0",
    "context_id": SITE,
    "context_label": SITE_TITLE,
    "context_title": SITE_TITLE,
    "context_type": "CourseSection",
    "ext_lms": "sakai-25-SNAPSHOT",
    "ext_sakai_academic_session": "OTHER",
    "ext_sakai_launch_presentation_css_url_list": CSS_LIST,
    "ext_sakai_server": SERVER,
    "ext_sakai_serverid": "MacBook-Pro-92.local",
    "launch_presentation_css_url": f"{SERVER}/library/skin/tool_base.css",
    "launch_presentation_locale": "en_US",
    "launch_presentation_return_url": f"{SERVER}/imsblis/service/return-url/site/{SITE}",
    "lis_course_offering_sourcedid": SITE,
    "lis_course_section_sourcedid": SITE,
    "lis_outcome_service_url": f"{SERVER}/imsblis/service/",
    "resource_link_description": "Peer Graded: Installation Screen Shots",
    "resource_link_id": "content:3",
    "resource_link_title": "Peer Graded: Installation Screen Shots",
    "tool_consumer_info_product_family_code": FAMILY_CODE,
    "tool_consumer_info_version": "25-SNAPSHOT",
    "tool_consumer_instance_guid": "roguelms.edu",
    "tool_consumer_instance_name": "localhost.sakailms",
    "tool_consumer_instance_description": "localhost.sakailms",
}

INSTRUCTOR_11 = {
    **_COMMON_11,
    "user_id": "0b0bbd1b-a1ba-42c2-bdb0-ffe44e5abec6",
    "roles": f"Instructor,{ROLE_INSTRUCTOR}",
    "ext_sakai_role": "maintain",
    "ext_sakai_eid": "csev@umich.edu",
    "lis_person_sourcedid": "csev@umich.edu",
    "lis_person_contact_email_primary": "csev@umich.edu",
    "lis_person_name_given": "Charles",
    "lis_person_name_family": "Severance",
    "lis_person_name_full": "Charles Severance",
    "custom_context_id_history": COPIED_FROM,
}

STUDENT_11 = {
    **_COMMON_11,
    "user_id": "6f1c8d2e-5b3a-4e7f-9a1d-2c4b6e8f0a13",
    "roles": f"Learner,{ROLE_LEARNER}",
    "ext_sakai_role": "Student",
    "ext_sakai_eid": "sally@umich.edu",
    "lis_person_sourcedid": "sally@umich.edu",
    "lis_person_contact_email_primary": "sally@umich.edu",
    "lis_person_name_given": "Sally",
    "lis_person_name_family": "Student",
    "lis_person_name_full": "Sally Student",
}

TA_11 = {
    **STUDENT_11,
    "user_id": "9d2e4f6a-8b1c-4d3e-a5f7-1b3d5f7a9c24",
    "roles": f"TeachingAssistant,{ROLE_TA}",
    "ext_sakai_role": "Teaching Assistant",
    "ext_sakai_eid": "terry@umich.edu",
    "lis_person_sourcedid": "terry@umich.edu",
    "lis_person_contact_email_primary": "terry@umich.edu",
    "lis_person_name_given": "Terry",
    "lis_person_name_family": "Assistant",
    "lis_person_name_full": "Terry Assistant",
}

# The launch listed in SakaiLTIUtil.postLaunchJWT's comment (the administrator in the
# project site "mercury"), with what addGlobalData and addPlacementInfo add to every
# launch (the product family code, and the email and EID of a tool allowed them).
ADMIN_11 = {
    "context_id": "mercury",
    "context_label": "mercury site",
    "context_title": "mercury site",
    "context_type": "Group",
    "custom_x": "42",
    "custom_y": "043040450",
    "ext_ims_lis_memberships_id": (
        "c1007fb6345a87cd651785422a2925114d0707fad32c66edb6bfefbf2165819a:::admin:::content:3"
    ),
    "ext_ims_lis_memberships_url": f"{SERVER}/imsblis/service/",
    "ext_ims_lti_tool_setting_id": (
        "c1007fb6345a87cd651785422a2925114d0707fad32c66edb6bfefbf2165819a:::admin:::content:3"
    ),
    "ext_ims_lti_tool_setting_url": f"{SERVER}/imsblis/service/",
    "ext_lms": "sakai-26-SNAPSHOT",
    "ext_sakai_academic_session": "OTHER",
    "ext_sakai_launch_presentation_css_url_list": (
        f"{SERVER}/library/skin/tool_base.css,"
        f"{SERVER}/library/skin/default-skin/tool.css?version=49b21ca5"
    ),
    "ext_sakai_role": "maintain",
    "ext_sakai_server": SERVER,
    "ext_sakai_serverid": "MacBook-Pro-92.local",
    "launch_presentation_css_url": f"{SERVER}/library/skin/tool_base.css",
    "launch_presentation_locale": "en_US",
    "launch_presentation_return_url": f"{SERVER}/imsblis/service/return-url/site/mercury",
    "lis_course_offering_sourcedid": "mercury",
    "lis_course_section_sourcedid": "mercury",
    "lis_outcome_service_url": f"{SERVER}/imsblis/service/",
    "lis_person_name_family": "Administrator",
    "lis_person_name_full": "Sakai Administrator",
    "lis_person_name_given": "Sakai",
    "lis_person_sourcedid": "admin",
    "lti_message_type": "basic-lti-launch-request",
    "lti_version": "LTI-1p0",
    "resource_link_description": "Tsugi Breakout",
    "resource_link_id": "content:3",
    "resource_link_title": "Tsugi Breakout",
    "roles": (
        "Instructor,Administrator,urn:lti:instrole:ims/lis/Administrator,"
        "urn:lti:sysrole:ims/lis/Administrator"
    ),
    "user_id": "admin",
    "tool_consumer_info_product_family_code": FAMILY_CODE,
    "tool_consumer_info_version": "26-SNAPSHOT",
    "lis_person_contact_email_primary": "admin@umich.edu",
    "ext_sakai_eid": "admin",
}

_COURSE = {
    "context_id": SITE,
    "lms_course_id": SITE,
    "course_title": SITE_TITLE,
    "course_label": SITE_TITLE,
}
_AT_13 = {"domain": HOST, "locale": "en_US", "lti_version": "1.3"}
_AT_11 = {"domain": HOST, "locale": "en_US", "lti_version": "1.1"}


def _expected_13(claims: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {
        "user_id": claims["sub"],
        "email": claims["email"],
        "name": claims["name"],
        "username": claims[EXTENSION]["sakai_eid"],
        **_COURSE,
        **_AT_13,
        "history": [],
        **fields,
    }


def _expected_11(params: dict[str, str], **fields: Any) -> dict[str, Any]:
    return {
        "user_id": params["user_id"],
        "email": params["lis_person_contact_email_primary"],
        "name": params["lis_person_name_full"],
        "username": params["ext_sakai_eid"],
        **_COURSE,
        **_AT_11,
        "history": [],
        **fields,
    }


EXAMPLES: tuple[ExampleLaunch, ...] = (
    ExampleLaunch(
        lms="sakai",
        name="instructor-13",
        version="1.3",
        role="instructor",
        title="Instructor, site role maintain (LTI 1.3), in a copied site",
        claims=INSTRUCTOR_13,
        source=SOURCE_13,
        expected=_expected_13(
            INSTRUCTOR_13, role="instructor", roles=["Instructor"], history=[COPIED_FROM]
        ),
    ),
    ExampleLaunch(
        lms="sakai",
        name="ta-13",
        version="1.3",
        role="ta",
        title="Teaching Assistant (LTI 1.3): Sakai's membership#Instructor#TeachingAssistant",
        claims=TA_13,
        source=SOURCE_13,
        expected=_expected_13(TA_13, role="instructor", roles=["Teaching Assistant"]),
    ),
    ExampleLaunch(
        lms="sakai",
        name="student-13",
        version="1.3",
        role="student",
        title="Student (LTI 1.3)",
        claims=STUDENT_13,
        source=SOURCE_13,
        expected=_expected_13(STUDENT_13, role="student", roles=["Learner"]),
    ),
    ExampleLaunch(
        lms="sakai",
        name="admin-13",
        version="1.3",
        role="admin",
        title="Sakai administrator (LTI 1.3): Instructor and both Administrator roles",
        claims=ADMIN_13,
        source=SOURCE_13,
        expected=_expected_13(ADMIN_13, role="instructor", roles=["Instructor", "Administrator"]),
    ),
    ExampleLaunch(
        lms="sakai",
        name="instructor-11",
        version="1.1",
        role="instructor",
        title="Instructor, site role maintain (LTI 1.1), in a copied site",
        claims=INSTRUCTOR_11,
        source=SOURCE_11,
        expected=_expected_11(
            INSTRUCTOR_11, role="instructor", roles=["Instructor"], history=[COPIED_FROM]
        ),
    ),
    ExampleLaunch(
        lms="sakai",
        name="ta-11",
        version="1.1",
        role="ta",
        title="Teaching Assistant (LTI 1.1): short and full role names",
        claims=TA_11,
        source=SOURCE_11,
        expected=_expected_11(TA_11, role="instructor", roles=["Teaching Assistant"]),
    ),
    ExampleLaunch(
        lms="sakai",
        name="student-11",
        version="1.1",
        role="student",
        title="Student (LTI 1.1)",
        claims=STUDENT_11,
        source=SOURCE_11,
        expected=_expected_11(STUDENT_11, role="student", roles=["Learner"]),
    ),
    ExampleLaunch(
        lms="sakai",
        name="admin-11",
        version="1.1",
        role="admin",
        title="Sakai administrator in a project site (LTI 1.1, context_type Group)",
        claims=ADMIN_11,
        source=f"{UTIL}, the launch listed in postLaunchJWT's comment",
        expected=_expected_11(
            ADMIN_11,
            role="instructor",
            roles=["Instructor", "Administrator"],
            context_id="mercury",
            lms_course_id="mercury",
            course_title="mercury site",
            course_label="mercury site",
        ),
    ),
)
