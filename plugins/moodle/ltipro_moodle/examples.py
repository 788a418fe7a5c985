"""Moodle launches as Moodle sends them, for the simulator and the conformance kit.

Sources (each example names its own in ``source``):

- correctomatic/prueba-lti, ``LTI.md``, "Contents of JWT token": a Moodle (3.11, version
  2021051718) LTI 1.3 launch by the site admin, with the bare ``CourseSection`` context
  type and the ``ext`` claim (``user_username``, ``lms: moodle-2``).
- moodle/moodle, ``ltix/classes/local/lticore/message/payload/lti_1p3_payload_formatter.php``:
  current Moodle writes ``context.type`` as ``http://purl.imsglobal.org/vocab/lis/v2/course#...``,
  moves ``custom_*`` into the custom claim and ``ext_*`` into the ``ext`` claim, and
  sorts the roles; the teacher, TA and student LTI 1.3 launches follow that shape.
- moodle/moodle, ``mod/lti/locallib.php`` (``lti_get_ims_role``) and
  ``mod/lti/db/access.php`` (``mod/lti:manage`` is given to the editing teacher, the
  non-editing teacher and the manager): who is ``Instructor``, who ``Learner``, and the
  ``Administrator`` roles a site admin adds.
- edehr/edehr, ``docs/LTI.md``: a Moodle 3.5 LTI 1.1 launch by a teacher
  (``ext_user_username``, ``context_type=CourseSection``, ``ext_lms=moodle-2``).

The claims the platform adds when it signs (``iss``, ``aud``, ``nonce``, ``iat``, ``exp``,
``deployment_id``, ``target_link_uri``) are left out: the simulator sets them.
"""

from __future__ import annotations

import copy
from typing import Any

from ltipro.extension import ExampleLaunch

CLAIM = "https://purl.imsglobal.org/spec/lti/claim/"
LIS = "http://purl.imsglobal.org/vocab/lis/v2/"
PRUEBA = 'correctomatic/prueba-lti LTI.md, "Contents of JWT token"'
FORMATTER = "moodle/moodle ltix/classes/local/lticore/message/payload/lti_1p3_payload_formatter.php"
ROLES = "moodle/moodle mod/lti/locallib.php lti_get_ims_role and mod/lti/db/access.php"
EDEHR = "edehr/edehr docs/LTI.md (Moodle 3.5 LTI 1.1 launch)"
HOST = "moodle.lti"

ADMIN_13: dict[str, Any] = {
    "sub": "2",
    CLAIM + "lis": {"person_sourcedid": "", "course_section_sourcedid": ""},
    CLAIM + "roles": [
        LIS + "institution/person#Administrator",
        LIS + "membership#Instructor",
        LIS + "system/person#Administrator",
    ],
    CLAIM + "context": {
        "id": "2",
        "label": "curso1",
        "title": "Curso 1",
        "type": ["CourseSection"],
    },
    CLAIM + "resource_link": {"title": "Prueba lti 1", "description": "", "id": "1"},
    "https://purl.imsglobal.org/spec/lti-bo/claim/basicoutcome": {
        "lis_result_sourcedid": (
            '{"data":{"instanceid":"1","userid":"2","typeid":"1","launchid":369587315},'
            '"hash":"a6ce32b2c3f7529a625af91668985b71f7a7930733c9917f8c7b2bcf09efb144"}'
        ),
        "lis_outcome_service_url": f"http://{HOST}/mod/lti/service.php",
    },
    "given_name": "Admin",
    "family_name": "User",
    "name": "Admin User",
    CLAIM + "ext": {"user_username": "admin", "lms": "moodle-2"},
    "email": "spam1@gammu.com",
    CLAIM + "launch_presentation": {
        "locale": "en",
        "document_target": "iframe",
        "return_url": (
            f"http://{HOST}/mod/lti/return.php?course=2&launch_container=3&instanceid=1"
            "&sesskey=ZCkLzHxehT"
        ),
    },
    CLAIM + "tool_platform": {
        "product_family_code": "moodle",
        "version": "2021051718",
        "guid": HOST,
        "name": "cursodepruebas",
        "description": "Curso de pruebas",
    },
    CLAIM + "version": "1.3.0",
    CLAIM + "message_type": "LtiResourceLinkRequest",
}


def _current_moodle(user: dict[str, Any], roles: list[str], username: str) -> dict[str, Any]:
    """The admin launch's course, as current Moodle writes it, for another user."""
    body = copy.deepcopy(ADMIN_13)
    body.update(user)
    body[CLAIM + "roles"] = sorted(roles)
    body[CLAIM + "context"]["type"] = [LIS + "course#CourseSection"]
    body[CLAIM + "ext"] = {"user_username": username, "lms": "moodle-2"}
    body[CLAIM + "tool_platform"]["version"] = "2024100700"
    return body


TEACHER_13 = _current_moodle(
    {
        "sub": "3",
        "given_name": "Teresa",
        "family_name": "Profesora",
        "name": "Teresa Profesora",
        "email": "teresa.profesora@moodle.example.edu",
    },
    [LIS + "membership#Instructor"],
    "tprofesora",
)
TEACHER_13[CLAIM + "custom"] = {"context_id_history": "5"}

TA_13 = _current_moodle(
    {
        "sub": "4",
        "given_name": "Nico",
        "family_name": "Ayudante",
        "name": "Nico Ayudante",
        "email": "nico.ayudante@moodle.example.edu",
    },
    # A non-editing teacher may manage the activity, so Moodle sends Instructor.
    [LIS + "membership#Instructor"],
    "nayudante",
)

STUDENT_13 = _current_moodle(
    {
        "sub": "5",
        "given_name": "Lucia",
        "family_name": "Alumna",
        "name": "Lucia Alumna",
        "email": "lucia.alumna@moodle.example.edu",
    },
    [LIS + "membership#Learner"],
    "lalumna",
)

_COMMON_11: dict[str, str] = {
    "ext_lms": "moodle-2",
    "launch_presentation_document_target": "window",
    "launch_presentation_locale": "en",
    "launch_presentation_return_url": (
        "http://localhost:8888/moodle35/mod/lti/return.php?course=4&launch_container=4"
        "&instanceid=1&sesskey=ut8G1UK7j2"
    ),
    "lis_outcome_service_url": "http://localhost:8888/moodle35/mod/lti/service.php",
    "lti_message_type": "basic-lti-launch-request",
    "lti_version": "LTI-1p0",
    "tool_consumer_info_product_family_code": "moodle",
    "tool_consumer_info_version": "2018051702",
    "tool_consumer_instance_description": "Moodle 3.5",
    "tool_consumer_instance_guid": "localMoodle",
    "tool_consumer_instance_name": "Moodle 3.5",
    "context_id": "4",
    "context_label": "EdEhr Poc",
    "context_title": "A Proof of Concept Course",
    "context_type": "CourseSection",
    "custom_assignment": "assignment1",
    "custom_poc": "true",
    "custom_POC": "true",
    "lis_course_section_sourcedid": "9876",
    "resource_link_description": (
        "POC assignment 1. No description available because this is just a POC"
    ),
    "resource_link_id": "1",
    "resource_link_title": "Poc EdEhr Assignment 1",
}

TEACHER_11 = {
    **_COMMON_11,
    "lis_result_sourcedid": (
        '{"data":{"instanceid":"1","userid":"6","typeid":"4","launchid":449591125},'
        '"hash":"2296e83a755070c596526b49d2a35eb06d24f16fde942a8c8d552e7dd01600bc"}'
    ),
    "ext_user_username": "instr",
    "lis_person_contact_email_primary": "instr@example.com",
    "lis_person_name_family": "Goodall",
    "lis_person_name_full": "Instr Goodall",
    "lis_person_name_given": "Instr",
    "lis_person_sourcedid": "",
    "roles": "Instructor",
    "user_id": "6",
}

STUDENT_11 = {
    **_COMMON_11,
    "ext_user_username": "stud1",
    "lis_person_contact_email_primary": "stud1@example.com",
    "lis_person_name_family": "Learner",
    "lis_person_name_full": "Stu Learner",
    "lis_person_name_given": "Stu",
    "lis_person_sourcedid": "",
    "roles": "Learner",
    "user_id": "7",
}

ADMIN_11 = {
    **_COMMON_11,
    "ext_user_username": "admin",
    "lis_person_contact_email_primary": "admin@example.com",
    "lis_person_name_family": "User",
    "lis_person_name_full": "Admin User",
    "lis_person_name_given": "Admin",
    "lis_person_sourcedid": "",
    # lti_get_ims_role: a site admin keeps Instructor and adds both Administrator roles.
    "roles": "Instructor,urn:lti:sysrole:ims/lis/Administrator,urn:lti:instrole:ims/lis/Administrator",
    "user_id": "2",
}

_COURSE_13 = {"context_id": "2", "lms_course_id": "2", "course_title": "Curso 1"}
_COURSE_11 = {"context_id": "4", "lms_course_id": "4", "course_title": "A Proof of Concept Course"}
_AT_13 = {"domain": HOST, "locale": "en", "lti_version": "1.3"}
_AT_11 = {"domain": "localhost", "locale": "en", "lti_version": "1.1"}

EXAMPLES: tuple[ExampleLaunch, ...] = (
    ExampleLaunch(
        lms="moodle",
        name="admin-13",
        version="1.3",
        role="admin",
        title="Site admin (LTI 1.3, Moodle 3.11: bare CourseSection context type)",
        claims=ADMIN_13,
        source=PRUEBA,
        expected={
            "user_id": "2",
            "email": "spam1@gammu.com",
            "role": "instructor",
            "roles": ["Administrator", "Instructor"],
            "name": "Admin User",
            "username": "admin",
            **_COURSE_13,
            "history": [],
            **_AT_13,
        },
    ),
    ExampleLaunch(
        lms="moodle",
        name="teacher-13",
        version="1.3",
        role="instructor",
        title="Editing teacher (LTI 1.3, current Moodle) in a copied course",
        claims=TEACHER_13,
        source=f"{PRUEBA}, in the shape of {FORMATTER}, roles per {ROLES}",
        expected={
            "user_id": "3",
            "email": "teresa.profesora@moodle.example.edu",
            "role": "instructor",
            "roles": ["Instructor"],
            "name": "Teresa Profesora",
            "username": "tprofesora",
            **_COURSE_13,
            "history": ["5"],
            **_AT_13,
        },
    ),
    ExampleLaunch(
        lms="moodle",
        name="ta-13",
        version="1.3",
        role="ta",
        title="Non-editing teacher (LTI 1.3): Moodle sends Instructor",
        claims=TA_13,
        source=f"{PRUEBA}, in the shape of {FORMATTER}, roles per {ROLES}",
        expected={
            "user_id": "4",
            "email": "nico.ayudante@moodle.example.edu",
            "role": "instructor",
            "roles": ["Instructor"],
            "name": "Nico Ayudante",
            "username": "nayudante",
            **_COURSE_13,
            "history": [],
            **_AT_13,
        },
    ),
    ExampleLaunch(
        lms="moodle",
        name="student-13",
        version="1.3",
        role="student",
        title="Student (LTI 1.3, current Moodle)",
        claims=STUDENT_13,
        source=f"{PRUEBA}, in the shape of {FORMATTER}, roles per {ROLES}",
        expected={
            "user_id": "5",
            "email": "lucia.alumna@moodle.example.edu",
            "role": "student",
            "roles": ["Learner"],
            "name": "Lucia Alumna",
            "username": "lalumna",
            **_COURSE_13,
            "history": [],
            **_AT_13,
        },
    ),
    ExampleLaunch(
        lms="moodle",
        name="teacher-11",
        version="1.1",
        role="instructor",
        title="Teacher (LTI 1.1, Moodle 3.5)",
        claims=TEACHER_11,
        source=EDEHR,
        expected={
            "user_id": "6",
            "email": "instr@example.com",
            "role": "instructor",
            "roles": ["Instructor"],
            "name": "Instr Goodall",
            "username": "instr",
            **_COURSE_11,
            "history": [],
            **_AT_11,
        },
    ),
    ExampleLaunch(
        lms="moodle",
        name="student-11",
        version="1.1",
        role="student",
        title="Student (LTI 1.1, Moodle 3.5)",
        claims=STUDENT_11,
        source=f"{EDEHR}, with a student's roles per {ROLES}",
        expected={
            "user_id": "7",
            "email": "stud1@example.com",
            "role": "student",
            "roles": ["Learner"],
            "name": "Stu Learner",
            "username": "stud1",
            **_COURSE_11,
            "history": [],
            **_AT_11,
        },
    ),
    ExampleLaunch(
        lms="moodle",
        name="admin-11",
        version="1.1",
        role="admin",
        title="Site admin (LTI 1.1, Moodle 3.5)",
        claims=ADMIN_11,
        source=f"{EDEHR}, with a site admin's roles per {ROLES}",
        expected={
            "user_id": "2",
            "email": "admin@example.com",
            "role": "instructor",
            "roles": ["Instructor", "Administrator"],
            "name": "Admin User",
            "username": "admin",
            **_COURSE_11,
            "history": [],
            **_AT_11,
        },
    ),
)
