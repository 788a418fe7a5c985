"""Canvas launches as Canvas sends them, for the simulator and the conformance kit.

Sources (each example names its own in ``source``):

- alt-cs-lab/lti-toolkit, ``docs/content/02-lti/02-lti13-tool/index.md``: decoded LTI 1.3
  ``id_token``s from a self-hosted Canvas (canvas.home.russfeld.me) for an admin, a
  teacher and a student; and ``docs/content/02-lti/01-lti10-tool/index.md``: the LTI 1.1
  launch forms of the same users.
- instructure/canvas-lms, ``lib/lti/substitutions_helper.rb`` (``LIS_V2_ROLE_MAP``: a
  ``TaEnrollment`` is sent as ``membership#Instructor`` plus
  ``membership/Instructor#TeachingAssistant``) and ``gems/lti_outbound``
  (``LTIRoles::ContextNotNamespaced::TEACHING_ASSISTANT`` is
  ``urn:lti:role:ims/lis/TeachingAssistant`` in LTI 1.1 ``roles``): the TA launches are
  the published student launches with the roles Canvas gives a TA.
- Canvas's "LTI Variable Substitutions" documentation: the custom fields
  (``canvas_course_id=$Canvas.course.id`` and so on) a developer key configured for ltipro
  adds to LTI 1.3 launches, with the values the same users have in the LTI 1.1 launches.

The claims the platform adds when it signs (``iss``, ``aud``, ``azp``, ``nonce``, ``iat``,
``exp``, ``deployment_id``, ``target_link_uri``) are left out: the simulator sets them.
"""

from __future__ import annotations

import copy
from typing import Any

from ltipro.extension import ExampleLaunch

CLAIM = "https://purl.imsglobal.org/spec/lti/claim/"
LIS = "http://purl.imsglobal.org/vocab/lis/v2/"
TOOLKIT_13 = "alt-cs-lab/lti-toolkit docs/content/02-lti/02-lti13-tool/index.md"
TOOLKIT_11 = "alt-cs-lab/lti-toolkit docs/content/02-lti/01-lti10-tool/index.md"
CANVAS_ROLES = "instructure/canvas-lms lib/lti/substitutions_helper.rb (LIS_V2_ROLE_MAP)"
CANVAS_ROLES_11 = "instructure/canvas-lms gems/lti_outbound lti_roles.rb"
CANVAS_VARIABLES = "Canvas LTI Variable Substitutions documentation"
HOST = "canvas.home.russfeld.me"
CONTEXT_13 = "d3a2504bba5184799a38f141e8df2335cfa8206d"
CONTEXT_11 = "4dde05e8ca1973bcca9bffc13e1548820eee93a3"

_COMMON_13: dict[str, Any] = {
    CLAIM + "message_type": "LtiResourceLinkRequest",
    CLAIM + "version": "1.3.0",
    CLAIM + "resource_link": {
        "id": "8aa641d1-b4d4-4fea-8a9b-e9fedfb62b1e",
        "description": "<p>Assignment Description</p>",
        "title": "Test LTI 1.3 Assignment Name",
    },
    "https://purl.imsglobal.org/spec/lti-ags/claim/endpoint": {
        "lineitem": f"https://{HOST}/api/lti/courses/3/line_items/1",
        "scope": [
            "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem",
            "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem.readonly",
            "https://purl.imsglobal.org/spec/lti-ags/scope/result.readonly",
            "https://purl.imsglobal.org/spec/lti-ags/scope/score",
            "https://canvas.instructure.com/lti-ags/progress/scope/show",
        ],
        "lineitems": f"http://{HOST}/api/lti/courses/3/line_items",
    },
    CLAIM + "context": {
        "id": CONTEXT_13,
        "label": "LTI13",
        "title": "LTI 1.3 Test Course",
        "type": [LIS + "course#CourseOffering"],
    },
    CLAIM + "tool_platform": {
        "guid": "zOUAtkfS3gI8nh5IskzlgAro1oCx3rx6SGGahiLL:canvas-lms",
        "name": "ALT+CS Lab",
        "version": "cloud",
        "product_family_code": "canvas",
    },
    CLAIM + "launch_presentation": {
        "document_target": "iframe",
        "return_url": f"https://{HOST}/courses/3/assignments",
        "locale": "en",
    },
    "locale": "en",
    CLAIM + "custom": {"custom1": "value1", "custom2": "value2"},
    "https://purl.imsglobal.org/spec/lti-nrps/claim/namesroleservice": {
        "context_memberships_url": f"https://{HOST}/api/lti/courses/3/names_and_roles",
        "service_versions": ["2.0"],
    },
    "https://www.instructure.com/placement": None,
}


def _launch13(user: dict[str, Any], **claims: Any) -> dict[str, Any]:
    body = copy.deepcopy(_COMMON_13)
    body.update(user)
    for short, value in claims.items():
        body[CLAIM + short] = value
    return body


TEACHER_13 = _launch13(
    {
        "sub": "e77934e7-4e98-4055-b4b4-3a8431e4f22a",
        "picture": f"https://{HOST}/images/thumbnails/2/GJhBgjcBm2BG6aFOlLDZpjEMDRzB5jgUBJYuVqJu",
        "email": "canvasteacher@russfeld.me",
        "name": "TeacherFirst TeacherLast",
        "given_name": "TeacherFirst",
        "family_name": "TeacherLast",
    },
    lis={"person_sourcedid": "7858675309", "course_offering_sourcedid": "$CourseSection.sourcedId"},
    roles=[
        LIS + "institution/person#Instructor",
        LIS + "membership#Instructor",
        LIS + "system/person#User",
    ],
    lti11_legacy_user_id="c0ddd6c90cbe1ef0f32fbce5c3bf654204be186c",
    lti1p1={
        "resource_link_id": "6a8aaca162bfc4393804afd4cd53cd94413c48bb",
        "user_id": "c0ddd6c90cbe1ef0f32fbce5c3bf654204be186c",
    },
)

_STUDENT_USER = {
    "sub": "848b3a11-c7b6-4c05-9fb3-782a0c34ee43",
    "picture": f"https://{HOST}/images/thumbnails/3/fnQIzMRWPAny4JOWMUvz8FiHsvP5Tyk4CRBKmMhm",
    "email": "canvasstudent@russfeld.me",
    "name": "StudentFirst StudentLast",
    "given_name": "StudentFirst",
    "family_name": "StudentLast",
}

STUDENT_13 = _launch13(
    _STUDENT_USER,
    lis={"person_sourcedid": "835203884", "course_offering_sourcedid": "$CourseSection.sourcedId"},
    roles=[
        LIS + "institution/person#Student",
        LIS + "membership#Learner",
        LIS + "system/person#User",
    ],
    # The custom fields of a developer key configured for ltipro, resolved by Canvas.
    custom={
        "canvas_course_id": "3",
        "canvas_user_id": "2",
        "canvas_user_login_id": "canvasstudent@russfeld.me",
        "canvas_api_domain": HOST,
    },
)

TA_13 = _launch13(
    {
        "sub": "5b1a0d6e-2f55-4c0e-9d3c-6f1f0f2b8a41",
        "email": "canvasta@example.edu",
        "name": "TaFirst TaLast",
        "given_name": "TaFirst",
        "family_name": "TaLast",
    },
    lis={"person_sourcedid": "835203885", "course_offering_sourcedid": "$CourseSection.sourcedId"},
    roles=[
        LIS + "institution/person#Student",
        LIS + "membership#Instructor",
        LIS + "membership/Instructor#TeachingAssistant",
        LIS + "system/person#User",
    ],
    custom={
        "canvas_course_id": "3",
        "canvas_user_id": "4",
        "canvas_user_login_id": "canvasta@example.edu",
        "canvas_api_domain": HOST,
        # This course was copied from the LTI 1.0 test course.
        "context_id_history": CONTEXT_11,
        "canvas_previous_context_ids": CONTEXT_11,
    },
)

ADMIN_13 = _launch13(
    {
        "sub": "aac22713-28b3-4397-9ff9-a3d2880ece1a",
        "picture": "http://canvas.instructure.com/images/messages/avatar-50.png",
        "email": "canvasadmin@russfeld.me",
        "name": "canvasadmin@russfeld.me",
        "given_name": "canvasadmin@russfeld.me",
        "family_name": "",
    },
    lis={
        "person_sourcedid": "$Person.sourcedId",
        "course_offering_sourcedid": "$CourseSection.sourcedId",
    },
    roles=[
        LIS + "institution/person#Administrator",
        LIS + "system/person#SysAdmin",
        LIS + "system/person#User",
    ],
    custom={
        "canvas_course_id": "3",
        "canvas_user_id": "1",
        "canvas_user_login_id": "canvasadmin@russfeld.me",
        "canvas_api_domain": HOST,
        # An account admin has no SIS id: Canvas sends the variable back unresolved.
        "canvas_user_sis_id": "$Canvas.user.sisSourceId",
    },
)

_COMMON_11: dict[str, str] = {
    "context_id": CONTEXT_11,
    "context_label": "LTI10",
    "context_title": "LTI 1.0 Test Course",
    "custom_1": "value_1",
    "custom_2": "value_2",
    "custom_canvas_api_domain": HOST,
    "custom_canvas_assignment_id": "1",
    "custom_canvas_assignment_points_possible": "100",
    "custom_canvas_assignment_title": "Test LTI 1.0 Assignment Name",
    "custom_canvas_course_id": "1",
    "custom_canvas_enrollment_state": "active",
    "custom_canvas_module_id": "$Canvas.module.id",
    "custom_canvas_module_item_id": "1",
    "custom_canvas_workflow_state": "available",
    "ext_ims_lis_basic_outcome_url": f"https://{HOST}/api/lti/v1/tools/1/ext_grade_passback",
    "ext_lti_assignment_id": "599692b2-3abe-4ca2-a6c8-2323ef57189d",
    "ext_outcome_data_values_accepted": "url,text",
    "launch_presentation_document_target": "iframe",
    "launch_presentation_locale": "en",
    "launch_presentation_return_url": f"https://{HOST}/courses/1/assignments",
    "lis_outcome_service_url": f"https://{HOST}/api/lti/v1/tools/1/grade_passback",
    "lti_message_type": "basic-lti-launch-request",
    "lti_version": "LTI-1p0",
    "resource_link_id": "ae06e3eb8ea83588f0a1c5897b98830dc93f47d8",
    "resource_link_title": "Test LTI 1.0 Assignment Name",
    "tool_consumer_info_product_family_code": "canvas",
    "tool_consumer_info_version": "cloud",
    "tool_consumer_instance_contact_email": "canvas@russfeld.me",
    "tool_consumer_instance_guid": "zOUAtkfS3gI8nh5IskzlgAro1oCx3rx6SGGahiLL:canvas-lms",
    "tool_consumer_instance_name": "ALT+CS Lab",
}


def _launch11(**fields: str) -> dict[str, str]:
    return {**_COMMON_11, **fields}


TEACHER_11 = _launch11(
    custom_canvas_user_id="3",
    custom_canvas_user_login_id="canvasteacher@russfeld.me",
    ext_roles=(
        "urn:lti:instrole:ims/lis/Instructor,urn:lti:role:ims/lis/Instructor,"
        "urn:lti:sysrole:ims/lis/User"
    ),
    lis_person_contact_email_primary="canvasteacher@russfeld.me",
    lis_person_name_family="TeacherLast",
    lis_person_name_full="TeacherFirst TeacherLast",
    lis_person_name_given="TeacherFirst",
    lis_person_sourcedid="7858675309",
    roles="Instructor",
    user_id="c0ddd6c90cbe1ef0f32fbce5c3bf654204be186c",
)

STUDENT_11 = _launch11(
    custom_canvas_user_id="2",
    custom_canvas_user_login_id="canvasstudent@russfeld.me",
    ext_roles=(
        "urn:lti:instrole:ims/lis/Student,urn:lti:role:ims/lis/Learner,urn:lti:sysrole:ims/lis/User"
    ),
    lis_person_contact_email_primary="canvasstudent@russfeld.me",
    lis_person_name_family="StudentLast",
    lis_person_name_full="StudentFirst StudentLast",
    lis_person_name_given="StudentFirst",
    lis_person_sourcedid="835203884",
    lis_result_sourcedid="1-1-1-2-c14957047fa8fd73a6aa4d7ec543574aff29597b",
    roles="Learner",
    user_id="86157096483e6b3a50bfedc6bac902c0b20a824f",
)

TA_11 = _launch11(
    custom_canvas_user_id="4",
    custom_canvas_user_login_id="canvasta@example.edu",
    ext_roles=(
        "urn:lti:instrole:ims/lis/Student,urn:lti:role:ims/lis/TeachingAssistant,"
        "urn:lti:sysrole:ims/lis/User"
    ),
    lis_person_contact_email_primary="canvasta@example.edu",
    lis_person_name_family="TaLast",
    lis_person_name_full="TaFirst TaLast",
    lis_person_name_given="TaFirst",
    lis_person_sourcedid="835203885",
    roles="urn:lti:role:ims/lis/TeachingAssistant",
    user_id="9d4c3a2e1f0b8a7c6d5e4f3a2b1c0d9e8f7a6b5c",
)

ADMIN_11 = _launch11(
    context_id=CONTEXT_13,
    context_label="LTI13",
    context_title="LTI 1.3 Test Course",
    custom_canvas_assignment_id="2",
    custom_canvas_assignment_title="Test LTI 1.3 Assignment Name",
    custom_canvas_course_id="3",
    custom_canvas_enrollment_state="",
    custom_canvas_module_item_id="2",
    custom_canvas_user_id="1",
    custom_canvas_user_login_id="canvasadmin@russfeld.me",
    ext_roles=(
        "urn:lti:instrole:ims/lis/Administrator,urn:lti:sysrole:ims/lis/SysAdmin,"
        "urn:lti:sysrole:ims/lis/User"
    ),
    launch_presentation_return_url=f"https://{HOST}/courses/3/assignments",
    lis_person_contact_email_primary="canvasadmin@russfeld.me",
    lis_person_name_family="",
    lis_person_name_full="canvasadmin@russfeld.me",
    lis_person_name_given="canvasadmin@russfeld.me",
    resource_link_id="6a8aaca162bfc4393804afd4cd53cd94413c48bb",
    resource_link_title="Test LTI 1.3 Assignment Name",
    roles="urn:lti:instrole:ims/lis/Administrator,urn:lti:sysrole:ims/lis/SysAdmin",
    user_id="535fa085f22b4655f48cd5a36a9215f64c062838",
)
del ADMIN_11["custom_1"], ADMIN_11["custom_2"]

_COURSE_13 = {"context_id": CONTEXT_13, "course_title": "LTI 1.3 Test Course"}
_COURSE_11 = {"context_id": CONTEXT_11, "course_title": "LTI 1.0 Test Course"}

EXAMPLES: tuple[ExampleLaunch, ...] = (
    ExampleLaunch(
        lms="canvas",
        name="teacher-13",
        version="1.3",
        role="instructor",
        title="Teacher (LTI 1.3, developer key without custom fields)",
        claims=TEACHER_13,
        source=TOOLKIT_13 + ', "Decoded JWT from Tool Consumer - Teacher"',
        expected={
            "user_id": "e77934e7-4e98-4055-b4b4-3a8431e4f22a",
            "email": "canvasteacher@russfeld.me",
            "role": "instructor",
            "roles": ["Institution Instructor", "Instructor", "System User"],
            "name": "TeacherFirst TeacherLast",
            # No login id custom field in this key's configuration.
            "username": None,
            **_COURSE_13,
            # Read from Canvas's own service URLs (/api/lti/courses/3/...).
            "lms_course_id": "3",
            "history": [],
            "domain": HOST,
            "locale": "en",
            "lti_version": "1.3",
        },
    ),
    ExampleLaunch(
        lms="canvas",
        name="ta-13",
        version="1.3",
        role="ta",
        title="Teaching assistant (LTI 1.3) in a copied course",
        claims=TA_13,
        source=(
            f"{TOOLKIT_13}, student launch, with the roles of {CANVAS_ROLES} and the "
            f"custom fields of {CANVAS_VARIABLES}"
        ),
        expected={
            "user_id": "5b1a0d6e-2f55-4c0e-9d3c-6f1f0f2b8a41",
            "email": "canvasta@example.edu",
            "role": "instructor",
            "roles": ["Institution Student", "Instructor", "Teaching Assistant", "System User"],
            "name": "TaFirst TaLast",
            "username": "canvasta@example.edu",
            **_COURSE_13,
            "lms_course_id": "3",
            "history": [CONTEXT_11],
            "domain": HOST,
            "locale": "en",
            "lti_version": "1.3",
        },
    ),
    ExampleLaunch(
        lms="canvas",
        name="student-13",
        version="1.3",
        role="student",
        title="Student (LTI 1.3)",
        claims=STUDENT_13,
        source=(
            f'{TOOLKIT_13}, "Decoded JWT from Tool Consumer - Student", with the custom '
            f"fields of {CANVAS_VARIABLES}"
        ),
        expected={
            "user_id": "848b3a11-c7b6-4c05-9fb3-782a0c34ee43",
            "email": "canvasstudent@russfeld.me",
            "role": "student",
            "roles": ["Institution Student", "Learner", "System User"],
            "name": "StudentFirst StudentLast",
            "username": "canvasstudent@russfeld.me",
            **_COURSE_13,
            "lms_course_id": "3",
            "history": [],
            "domain": HOST,
            "locale": "en",
            "lti_version": "1.3",
        },
    ),
    ExampleLaunch(
        lms="canvas",
        name="admin-13",
        version="1.3",
        role="admin",
        title="Account admin (LTI 1.3)",
        claims=ADMIN_13,
        source=(
            f'{TOOLKIT_13}, "Decoded JWT from Tool Consumer - Admin", with the custom '
            f"fields of {CANVAS_VARIABLES}"
        ),
        expected={
            "user_id": "aac22713-28b3-4397-9ff9-a3d2880ece1a",
            "email": "canvasadmin@russfeld.me",
            "role": "instructor",
            "roles": ["Administrator", "System User"],
            "name": "canvasadmin@russfeld.me",
            "family_name": None,
            "username": "canvasadmin@russfeld.me",
            **_COURSE_13,
            "lms_course_id": "3",
            "history": [],
            "domain": HOST,
            "locale": "en",
            "lti_version": "1.3",
        },
    ),
    ExampleLaunch(
        lms="canvas",
        name="teacher-11",
        version="1.1",
        role="instructor",
        title="Teacher (LTI 1.1)",
        claims=TEACHER_11,
        source=TOOLKIT_11 + ', "Sample LTI 1.0 Launch from Canvas - Teacher"',
        expected={
            "user_id": "c0ddd6c90cbe1ef0f32fbce5c3bf654204be186c",
            "email": "canvasteacher@russfeld.me",
            "role": "instructor",
            "roles": ["Instructor", "Institution Instructor", "System User"],
            "name": "TeacherFirst TeacherLast",
            "username": "canvasteacher@russfeld.me",
            **_COURSE_11,
            "lms_course_id": "1",
            "history": [],
            "domain": HOST,
            "locale": "en",
            "lti_version": "1.1",
        },
    ),
    ExampleLaunch(
        lms="canvas",
        name="ta-11",
        version="1.1",
        role="ta",
        title="Teaching assistant (LTI 1.1)",
        claims=TA_11,
        source=f"{TOOLKIT_11}, student launch, with the roles of {CANVAS_ROLES_11}",
        expected={
            "user_id": "9d4c3a2e1f0b8a7c6d5e4f3a2b1c0d9e8f7a6b5c",
            "email": "canvasta@example.edu",
            "role": "instructor",
            "roles": ["Teaching Assistant", "Institution Student", "System User"],
            "name": "TaFirst TaLast",
            "username": "canvasta@example.edu",
            **_COURSE_11,
            "lms_course_id": "1",
            "history": [],
            "domain": HOST,
            "locale": "en",
            "lti_version": "1.1",
        },
    ),
    ExampleLaunch(
        lms="canvas",
        name="student-11",
        version="1.1",
        role="student",
        title="Student (LTI 1.1)",
        claims=STUDENT_11,
        source=TOOLKIT_11 + ', "Sample LTI 1.0 Launch from Canvas - Student"',
        expected={
            "user_id": "86157096483e6b3a50bfedc6bac902c0b20a824f",
            "email": "canvasstudent@russfeld.me",
            "role": "student",
            "roles": ["Learner", "Institution Student", "System User"],
            "name": "StudentFirst StudentLast",
            "username": "canvasstudent@russfeld.me",
            **_COURSE_11,
            "lms_course_id": "1",
            "history": [],
            "domain": HOST,
            "locale": "en",
            "lti_version": "1.1",
        },
    ),
    ExampleLaunch(
        lms="canvas",
        name="admin-11",
        version="1.1",
        role="admin",
        title="Account admin (LTI 1.1)",
        claims=ADMIN_11,
        source=TOOLKIT_11 + ', "Sample LTI 1.0 Launch from Canvas - Admin"',
        expected={
            "user_id": "535fa085f22b4655f48cd5a36a9215f64c062838",
            "email": "canvasadmin@russfeld.me",
            "role": "instructor",
            "roles": ["Administrator", "System User"],
            "name": "canvasadmin@russfeld.me",
            "family_name": None,
            "username": "canvasadmin@russfeld.me",
            **_COURSE_13,
            "lms_course_id": "3",
            "history": [],
            "domain": HOST,
            "locale": "en",
            "lti_version": "1.1",
        },
    ),
)
