"""Learn launches as Blackboard Learn sends them, for the simulator and the conformance kit.

Sources (each example names its own in ``source``):

- blackboard/blackboard.github.io, ``standards/lti/core/id-token.md``, "Sample JWT JSON":
  a Learn LTI 1.3 instructor launch (issuer ``https://blackboard.com``, UUID ``sub`` and
  context id, the course key ``_122_1`` in the service URLs and the return URL, the
  ``userNameLTI`` custom parameter).
- blackboard/blackboard.github.io, ``standards/caliper/events/lti-events.md``, "Sample
  Payload": the ``launchParameters`` of a real Learn 3900.4 LTI 1.1 launch by the system
  administrator (``BlackboardLearn`` product code, ``ext_lms=bb-...``, ``context_id`` is
  the course key ``_41_1``, role ``urn:lti:sysrole:ims/lis/Administrator``).
- Blackboard's "Custom properties and parameter substitution" and "Dynamic Rendering with
  Template Variables" documentation: the ``course_pk=@X@course.pk_string@X@`` and
  ``course_role=@X@membership.role@X@`` custom parameters an admin adds for ltipro, and
  that a variable Learn cannot fill is sent back as written.

The TA, student and LTI 1.1 course launches are those published launches for other
members of the same courses. The claims the platform adds when it signs (``iss``,
``aud``, ``nonce``, ``iat``, ``exp``, ``deployment_id``, ``target_link_uri``) are left
out: the simulator sets them.
"""

from __future__ import annotations

import copy
from typing import Any

from ltipro.extension import ExampleLaunch

CLAIM = "https://purl.imsglobal.org/spec/lti/claim/"
LIS = "http://purl.imsglobal.org/vocab/lis/v2/"
ID_TOKEN = 'blackboard/blackboard.github.io standards/lti/core/id-token.md, "Sample JWT JSON"'
LTI_EVENTS = (
    "blackboard/blackboard.github.io standards/caliper/events/lti-events.md, "
    '"Sample Payload" launchParameters'
)
PARAMETERS = "Blackboard custom parameter and template variable documentation"

INSTRUCTOR_13: dict[str, Any] = {
    "sub": "4f1025ffab1846ee9ca0a53299dd51b6",
    CLAIM + "version": "1.3.0",
    "https://purl.imsglobal.org/spec/lti-ags/claim/endpoint": {
        "lineitems": "https://example.com/learn/api/v1/lti/courses/_122_1/lineItems",
        "lineitem": "https://example.com/learn/api/v1/lti/courses/_122_1/lineItems/_7454_1",
        "scope": [
            "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem",
            "https://purl.imsglobal.org/spec/lti-ags/scope/result.readonly",
            "https://purl.imsglobal.org/spec/lti-ags/scope/score",
        ],
    },
    "locale": "en-US",
    CLAIM + "tool_platform": {
        "name": "Blackboard, Inc.",
        "description": "Blackboard, Inc.",
        "guid": "b6932d2ade8c441982b53f99dcf0caf3",
        "product_family_code": "BlackboardLearn",
        "version": "3900.11.0-ci.7045+d7e0341",
        "url": "https://example.com/",
        "contact_email": "admin@example.com",
    },
    CLAIM + "custom": {
        "userNameLTI": "jcool",
        "caliper_profile_url": "https://example.com/learn/api/v1/telemetry/caliper/profile",
        "caliper_federated_session_id": (
            "https://caliper-mapping.cloudbb.blackboard.com/v1/sites/"
            "e0c7f37e-d260-4a83-b086-5cbbdb997bce/sessions/3DE97D40358C65C13681A22C004344DF"
        ),
    },
    CLAIM + "lis": {
        "person_sourcedid": "9283749283749",
        "course_section_sourcedid": "COURSE1-923749238",
    },
    CLAIM + "launch_presentation": {
        "return_url": (
            "https://example.com/webapps/blackboard/execute/blti/launchReturn?course_id=_122_1"
            "&content_id=_18938_1&toGC=false&launch_id=46e5c1e7-a68a-40e8-80c3-fe24a2ed1195"
            "&link_id=_18938_1&launch_time=1614630380476"
        )
    },
    "email": "jcool@example.com",
    "https://purl.imsglobal.org/spec/lti-nrps/claim/namesroleservice": {
        "context_memberships_url": (
            "https://example.com/learn/api/v1/lti/external/namesandroles/_122_1?placement_id=_553_1"
        ),
        "scope": ["https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly"],
        "service_versions": ["2.0"],
    },
    "given_name": "Joe",
    CLAIM + "roles": [LIS + "membership#Instructor"],
    CLAIM + "context": {
        "id": "6c19281a08504db5a447b511f00c0c7b",
        "label": "COURSE1",
        "title": "Course One",
        "type": [LIS + "course#CourseOffering"],
    },
    CLAIM + "resource_link": {
        "description": "A course content link",
        "id": "_18938_1",
        "title": "LTI JWT Content",
    },
    "https://purl.imsglobal.org/spec/lti-gs/claim/groupsservice": {
        "context_groups_url": "https://example.com/learn/api/v1/lti/courses/_122_1/groups",
        "context_group_sets_url": "https://example.com/learn/api/v1/lti/courses/_122_1/groupsets",
        "scope": ["https://purl.imsglobal.org/spec/lti-gs/scope/contextgroup.readonly"],
        "service_versions": ["1.0"],
    },
    CLAIM + "message_type": "LtiResourceLinkRequest",
    "name": "Joe Cool",
    "family_name": "Cool",
}


def _member13(
    sub: str, username: str, name: tuple[str, str], letter: str, roles: list[str]
) -> dict[str, Any]:
    """Another member of the same course, with the custom parameters ltipro asks for."""
    body = copy.deepcopy(INSTRUCTOR_13)
    given, family = name
    body.update(
        {
            "sub": sub,
            "email": f"{username}@example.com",
            "given_name": given,
            "family_name": family,
            "name": f"{given} {family}",
        }
    )
    body[CLAIM + "roles"] = roles
    body[CLAIM + "custom"].update(
        {"userNameLTI": username, "course_pk": "_122_1", "course_role": letter}
    )
    return body


# The placement maps the TA course role to Instructor; the role letter tells the truth.
TA_13 = _member13(
    "9a3e0c1b7d2f4e5a8b6c1d0e2f3a4b5c",
    "lbrown",
    ("Lucy", "Brown"),
    "T",
    [LIS + "membership#Instructor"],
)
TA_13[CLAIM + "custom"]["context_id_history"] = "3f1d9c0e5b7a4c2e8d6f0a1b2c3d4e5f"

STUDENT_13 = _member13(
    "1c2d3e4f5a6b4c7d8e9f0a1b2c3d4e5f",
    "cbrown",
    ("Charlie", "Brown"),
    "S",
    [LIS + "membership#Learner"],
)

# A system administrator who is not enrolled: Learn sends the role variable back unfilled.
ADMIN_13 = _member13(
    "ffc08009f0884c059192bac549e117b2",
    "administrator",
    ("Blackboard", "Administrator"),
    "@X@membership.role@X@",
    [LIS + "institution/person#Administrator", LIS + "system/person#Administrator"],
)

ADMIN_11: dict[str, str] = {
    "tool_consumer_instance_contact_email": "admin@support-ultra-test.blackboard.com",
    "tool_consumer_info_product_family_code": "BlackboardLearn",
    "tool_consumer_info_version": "3900.4.0-rel.14+d8ea606",
    "launch_presentation_document_target": "window",
    "lti_message_type": "basic-lti-launch-request",
    "custom_caliper_profile_url": (
        "https://support-ultra-test.blackboard.com/learn/api/v1/telemetry/caliper/profile/ultra"
    ),
    "ext_launch_id": "d0b8a363-7484-4ee6-b458-0f0e0ce5f05f",
    "lis_person_sourcedid": "administrator",
    "ext_lms": "bb-3900.4.0-rel.14+d8ea606",
    "lis_person_name_family": "Administrator",
    "custom_caliper_federated_session_id": (
        "https://caliper-mapping.cloudbb.blackboard.com/v1/sites/"
        "a118bba8-5378-4533-899b-8862ac59db03/sessions/0356052DAA966AA071787F54DBFEB1B1"
    ),
    "lis_person_name_full": "Blackboard Administrator",
    "context_label": "Ultra Ltiah_herokuapp_placement",
    "user_id": "ffc08009f0884c059192bac549e117b2",
    "launch_presentation_return_url": (
        "https://support-ultra-test.blackboard.com/webapps/blackboard/execute/blti/launchReturn"
        "?launch_id=d0b8a363-7484-4ee6-b458-0f0e0ce5f05f&link_id=ultra&launch_time=1608831491592"
    ),
    "resource_link_id": "ultra",
    "custom_tc_profile_url": (
        "https://support-ultra-test.blackboard.com/learn/api/v1/lti/profile?lti_version=LTI-1p0"
    ),
    "lis_person_contact_email_primary": "noreply@blackboard.com",
    "roles": "urn:lti:sysrole:ims/lis/Administrator",
    "tool_consumer_instance_name": "Blackboard, Inc.",
    "launch_presentation_locale": "en-US",
    "context_title": "Ultra Ltiah_herokuapp_placement",
    "tool_consumer_instance_guid": "82ef1947e5974e559156e8a6c8c2ea79",
    "lis_person_name_given": "Blackboard",
    "lti_version": "LTI-1p0",
    "ext_launch_presentation_css_url": (
        "https://support-ultra-test.blackboard.com/common/shared.css,"
        "https://support-ultra-test.blackboard.com/themes/as_2015/theme.css"
    ),
    "context_id": "_41_1",
    "tool_consumer_instance_description": "Blackboard, Inc.",
}


def _member11(
    user: str, email: str, name: tuple[str, str], roles: str, letter: str
) -> dict[str, str]:
    given, family = name
    return {
        **ADMIN_11,
        "user_id": user,
        "lis_person_sourcedid": email.split("@")[0],
        "lis_person_contact_email_primary": email,
        "lis_person_name_given": given,
        "lis_person_name_family": family,
        "lis_person_name_full": f"{given} {family}",
        "roles": roles,
        "custom_course_role": letter,
        "custom_username": email.split("@")[0],
    }


INSTRUCTOR_11 = _member11(
    "5e2a7c9d1b3f4a6e8c0d2f4b6a8c0e2d",
    "pinstructor@example.edu",
    ("Pat", "Instructor"),
    "urn:lti:role:ims/lis/Instructor",
    "P",
)
# A Course Builder the placement sends as Instructor, told apart by its role letter.
BUILDER_11 = _member11(
    "7b1c3d5e7f9a4b2c6d8e0f1a3b5c7d9e",
    "bbuilder@example.edu",
    ("Bo", "Builder"),
    "urn:lti:role:ims/lis/Instructor",
    "B",
)
STUDENT_11 = _member11(
    "2d4f6a8c0e1b3d5f7a9c1e3b5d7f9a1c",
    "sstudent@example.edu",
    ("Sam", "Student"),
    "urn:lti:role:ims/lis/Learner",
    "S",
)

_COURSE_13 = {
    "context_id": "6c19281a08504db5a447b511f00c0c7b",
    "lms_course_id": "_122_1",
    "course_title": "Course One",
}
_COURSE_11 = {
    "context_id": "_41_1",
    "lms_course_id": "_41_1",
    "course_title": "Ultra Ltiah_herokuapp_placement",
}
_AT_13 = {"domain": "example.com", "locale": "en-US", "lti_version": "1.3"}
_AT_11 = {"domain": "support-ultra-test.blackboard.com", "locale": "en-US", "lti_version": "1.1"}

EXAMPLES: tuple[ExampleLaunch, ...] = (
    ExampleLaunch(
        lms="blackboard",
        name="instructor-13",
        version="1.3",
        role="instructor",
        title="Instructor (LTI 1.3, Blackboard's published sample)",
        claims=INSTRUCTOR_13,
        source=ID_TOKEN,
        expected={
            "user_id": "4f1025ffab1846ee9ca0a53299dd51b6",
            "email": "jcool@example.com",
            "role": "instructor",
            "roles": ["Instructor"],
            "name": "Joe Cool",
            "username": "jcool",
            **_COURSE_13,
            "history": [],
            **_AT_13,
        },
    ),
    ExampleLaunch(
        lms="blackboard",
        name="ta-13",
        version="1.3",
        role="ta",
        title="Teaching assistant sent as Instructor, told apart by the role letter T",
        claims=TA_13,
        source=f"{ID_TOKEN}, with the custom parameters of {PARAMETERS}",
        expected={
            "user_id": "9a3e0c1b7d2f4e5a8b6c1d0e2f3a4b5c",
            "email": "lbrown@example.com",
            "role": "instructor",
            "roles": ["Teaching Assistant"],
            "name": "Lucy Brown",
            "username": "lbrown",
            **_COURSE_13,
            "history": ["3f1d9c0e5b7a4c2e8d6f0a1b2c3d4e5f"],
            **_AT_13,
        },
    ),
    ExampleLaunch(
        lms="blackboard",
        name="student-13",
        version="1.3",
        role="student",
        title="Student (LTI 1.3)",
        claims=STUDENT_13,
        source=f"{ID_TOKEN}, with the custom parameters of {PARAMETERS}",
        expected={
            "user_id": "1c2d3e4f5a6b4c7d8e9f0a1b2c3d4e5f",
            "email": "cbrown@example.com",
            "role": "student",
            "roles": ["Learner"],
            "name": "Charlie Brown",
            "username": "cbrown",
            **_COURSE_13,
            "history": [],
            **_AT_13,
        },
    ),
    ExampleLaunch(
        lms="blackboard",
        name="admin-13",
        version="1.3",
        role="admin",
        title="System administrator, not enrolled (LTI 1.3)",
        claims=ADMIN_13,
        source=f"{ID_TOKEN}, roles of {LTI_EVENTS}, unfilled variable per {PARAMETERS}",
        expected={
            "user_id": "ffc08009f0884c059192bac549e117b2",
            "email": "administrator@example.com",
            "role": "instructor",
            "roles": ["Administrator"],
            "name": "Blackboard Administrator",
            "username": "administrator",
            **_COURSE_13,
            "history": [],
            **_AT_13,
        },
    ),
    ExampleLaunch(
        lms="blackboard",
        name="admin-11",
        version="1.1",
        role="admin",
        title="System administrator (LTI 1.1, real Learn 3900.4 launch)",
        claims=ADMIN_11,
        source=LTI_EVENTS,
        expected={
            "user_id": "ffc08009f0884c059192bac549e117b2",
            "email": "noreply@blackboard.com",
            "role": "instructor",
            "roles": ["Administrator"],
            "name": "Blackboard Administrator",
            "username": None,
            **_COURSE_11,
            "history": [],
            **_AT_11,
        },
    ),
    ExampleLaunch(
        lms="blackboard",
        name="instructor-11",
        version="1.1",
        role="instructor",
        title="Instructor (LTI 1.1)",
        claims=INSTRUCTOR_11,
        source=f"{LTI_EVENTS}, for an instructor, with the custom parameters of {PARAMETERS}",
        expected={
            "user_id": "5e2a7c9d1b3f4a6e8c0d2f4b6a8c0e2d",
            "email": "pinstructor@example.edu",
            "role": "instructor",
            "roles": ["Instructor"],
            "name": "Pat Instructor",
            "username": "pinstructor",
            **_COURSE_11,
            "history": [],
            **_AT_11,
        },
    ),
    ExampleLaunch(
        lms="blackboard",
        name="builder-11",
        version="1.1",
        role="ta",
        title="Course Builder sent as Instructor, told apart by the role letter B (LTI 1.1)",
        claims=BUILDER_11,
        source=f"{LTI_EVENTS}, for a course builder, with the custom parameters of {PARAMETERS}",
        expected={
            "user_id": "7b1c3d5e7f9a4b2c6d8e0f1a3b5c7d9e",
            "email": "bbuilder@example.edu",
            "role": "instructor",
            "roles": ["Course Builder"],
            "name": "Bo Builder",
            "username": "bbuilder",
            **_COURSE_11,
            "history": [],
            **_AT_11,
        },
    ),
    ExampleLaunch(
        lms="blackboard",
        name="student-11",
        version="1.1",
        role="student",
        title="Student (LTI 1.1)",
        claims=STUDENT_11,
        source=f"{LTI_EVENTS}, for a student, with the custom parameters of {PARAMETERS}",
        expected={
            "user_id": "2d4f6a8c0e1b3d5f7a9c1e3b5d7f9a1c",
            "email": "sstudent@example.edu",
            "role": "student",
            "roles": ["Learner"],
            "name": "Sam Student",
            "username": "sstudent",
            **_COURSE_11,
            "history": [],
            **_AT_11,
        },
    ),
)
