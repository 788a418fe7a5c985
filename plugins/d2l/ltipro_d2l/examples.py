"""Brightspace launches as Brightspace sends them, for the simulator and the conformance kit.

Sources (each example names its own in ``source``):

- CL\\Lti (PHP package) test fixture: a real Brightspace 10.8.1 LTI 1.1 instructor
  launch at Michigan State University (``ext_d2l_*`` fields, ``user_id`` of
  ``<tenant>_<user>``, IMS roles in short and URN form, no return URL).
- openwebwork/webwork2 pull request #2322 (2024-03-26): the logged LTI 1.3 ``id_token``
  of a Brightspace instructor at Portland Community College, with the
  ``http://www.brightspace.com`` claim (``Context.id.history``, ``link_id``,
  ``org_defined_id``, ``tenant_id``, ``user_id``, ``username``) and the AGS line-items URL
  ``.../orgunit/522938/lineitems``; the tenant id was redacted there and the person's
  details are replaced here.
- Cvmcosta/ltijs-demo-server issue #23: a Brightspace login hint of the
  ``<tenant guid>_<user id>`` form that Brightspace also uses as ``sub``.
- hypothesis/lms, ``lms/models/lti_params.py``: Brightspace versions that put the
  ``http://www.brightspace.com`` claim inside ``launch_presentation``.
- Brightspace documentation, "Org units and role mapping": roles are what the admin
  mapped each Brightspace role to in IMS Configuration (a TA role to
  ``membership/Instructor#TeachingAssistant``).

The claims the platform adds when it signs (``iss``, ``aud``, ``nonce``, ``iat``, ``exp``,
``deployment_id``, ``target_link_uri``) are left out: the simulator sets them.
"""

from __future__ import annotations

import copy
from typing import Any

from ltipro.extension import ExampleLaunch

CLAIM = "https://purl.imsglobal.org/spec/lti/claim/"
LIS = "http://purl.imsglobal.org/vocab/lis/v2/"
BRIGHTSPACE = "http://www.brightspace.com"
MSU = "CL\\Lti PHPUnit fixture: Brightspace 10.8.1 LTI 1.1 instructor launch (MSU)"
PCC = "openwebwork/webwork2 pull request #2322, logged Brightspace LTI 1.3 id_token (PCC)"
NESTED = "hypothesis/lms lms/models/lti_params.py (claim nested in launch_presentation)"
ROLE_MAPPING = 'Brightspace documentation, "Org units and role mapping"'
SUB_FORM = "Cvmcosta/ltijs-demo-server issue #23 (<tenant>_<user> login hint)"
HOST = "online.pcc.edu"
TENANT = "7c3605d7-5a18-4a21-b066-4992bdb0b6d3"
DEPLOYMENT = "5750352b-4553-4fb2-933c-796be6f80ada"

INSTRUCTOR_13: dict[str, Any] = {
    "sub": f"{TENANT}_337",
    "email": "pat.instructor@pcc.example.edu",
    "given_name": "Pat",
    "family_name": "Instructor",
    "name": "Pat Instructor",
    BRIGHTSPACE: {
        "Context.id.history": "",
        "link_id": 333875,
        "org_defined_id": "G03518416",
        "tenant_id": TENANT,
        "user_id": 337,
        "username": "pat.instructor",
    },
    "https://purl.imsglobal.org/spec/lti-ags/claim/endpoint": {
        "lineitems": (
            f"https://{HOST}/d2l/api/lti/ags/2.0/deployment/{DEPLOYMENT}/orgunit/522938/lineitems"
        ),
        "scope": [
            "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem",
            "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem.readonly",
            "https://purl.imsglobal.org/spec/lti-ags/scope/result.readonly",
            "https://purl.imsglobal.org/spec/lti-ags/scope/score",
        ],
    },
    CLAIM + "message_type": "LtiResourceLinkRequest",
    CLAIM + "version": "1.3.0",
    CLAIM + "resource_link": {"id": "a4c2f1d3-7e3b-4f0e-9d7a-7d0f3f1e2a55", "title": "WeBWorK"},
    CLAIM + "roles": [
        LIS + "institution/person#Instructor",
        LIS + "membership#Instructor",
    ],
    CLAIM + "context": {
        "id": "522938",
        "label": "MTH-251-01",
        "title": "Calculus I",
        "type": [LIS + "course#CourseOffering"],
    },
    CLAIM + "tool_platform": {
        "guid": "online.pcc.edu",
        "product_family_code": "desire2learn",
        "name": "Portland Community College",
        "version": "20.24.3",
    },
    CLAIM + "launch_presentation": {
        "document_target": "iframe",
        "return_url": f"https://{HOST}/d2l/home/522938",
        "locale": "en-US",
    },
}


def _user13(sub_id: int, username: str, name: tuple[str, str], org_id: str) -> dict[str, Any]:
    body = copy.deepcopy(INSTRUCTOR_13)
    given, family = name
    body.update(
        {
            "sub": f"{TENANT}_{sub_id}",
            "email": f"{username}@pcc.example.edu",
            "given_name": given,
            "family_name": family,
            "name": f"{given} {family}",
        }
    )
    body[BRIGHTSPACE].update({"user_id": sub_id, "username": username, "org_defined_id": org_id})
    return body


TA_13 = _user13(412, "sam.assistant", ("Sam", "Assistant"), "G04120001")
TA_13[CLAIM + "roles"] = [LIS + "membership/Instructor#TeachingAssistant"]
TA_13[BRIGHTSPACE]["Context.id.history"] = "498811"

STUDENT_13 = _user13(1187, "riley.learner", ("Riley", "Learner"), "G07711187")
STUDENT_13[CLAIM + "roles"] = [LIS + "institution/person#Student", LIS + "membership#Learner"]
# This Brightspace version sends its claim inside launch_presentation.
STUDENT_13[CLAIM + "launch_presentation"][BRIGHTSPACE] = STUDENT_13.pop(BRIGHTSPACE)

ADMIN_13 = _user13(169, "morgan.admin", ("Morgan", "Admin"), "A00000169")
ADMIN_13[CLAIM + "roles"] = [
    LIS + "institution/person#Administrator",
    LIS + "system/person#Administrator",
]

INSTRUCTOR_11: dict[str, str] = {
    "lis_result_sourcedid": "4ee83042-ea99-428e-9e48-0b39dfd1c9ee",
    "ext_d2l_token_id": "73373326",
    "ext_d2l_link_id": "6251",
    "ext_d2l_token_digest": "GX7GX70Xl053PXAP/KKiLMIbyUY=",
    "ext_completion_url": "",
    "launch_presentation_locale": "EN-US",
    "tool_consumer_instance_guid": "",
    "tool_consumer_instance_name": "",
    "tool_consumer_instance_description": "",
    "tool_consumer_instance_contact_email": "",
    "tool_consumer_info_version": "10.8.1.11281",
    "tool_consumer_info_product_family_code": "desire2learn",
    "context_id": "744563",
    "context_title": "Test Course",
    "context_label": "DEV-cbowen-2018-TestCourse",
    "context_type": "CourseOffering",
    "user_id": "MichiganState_11697",
    "roles": "urn:lti:instrole:ims/lis/Faculty,Faculty,urn:lti:instrole:ims/lis/Instructor,Instructor",
    "lis_person_name_given": "Charles",
    "lis_person_name_family": "Owen",
    "lis_person_name_full": "Charles Owen",
    "lis_person_contact_email_primary": "cbowen@msu.edu",
    "ext_d2l_username": "cbowen",
    "ext_d2l_orgdefinedid": "12ae7fe1-9c6d-102a-aa45-59a83c375d2f",
    "ext_d2l_role": "Faculty",
    "ext_d2l_tenantid": "0c7527d1-0824-4144-af09-95f4c21e160d",
    "ext_tc_profile_url": "https://d2l.msu.edu/d2l/api/ext/1.0/lti/tcservices",
    "resource_link_title": "LTI Experiment",
    "resource_link_id": "1820151128",
    "resource_link_description": "",
    "lis_outcome_service_url": "https://d2l.msu.edu/d2l/le/lti/Outcome",
    "lti_version": "LTI-1p0",
    "lti_message_type": "basic-lti-launch-request",
    "ext_basiclti_submit": "Launch Endpoint with BasicLTI Data",
}

STUDENT_11 = {
    **INSTRUCTOR_11,
    "user_id": "MichiganState_20480",
    "roles": "urn:lti:instrole:ims/lis/Student,Student,urn:lti:role:ims/lis/Learner,Learner",
    "lis_person_name_given": "Jamie",
    "lis_person_name_family": "Student",
    "lis_person_name_full": "Jamie Student",
    "lis_person_contact_email_primary": "jstudent@msu.example.edu",
    "ext_d2l_username": "jstudent",
    "ext_d2l_orgdefinedid": "a91f02c4-1d3e-4b6a-8c2f-7e5d9b3a1c20",
    "ext_d2l_role": "Student",
}

TA_11 = {
    **INSTRUCTOR_11,
    "user_id": "MichiganState_30377",
    # A link set to send no IMS roles: only the Brightspace role name arrives.
    "roles": "",
    "lis_person_name_given": "Alex",
    "lis_person_name_family": "Grader",
    "lis_person_name_full": "Alex Grader",
    "lis_person_contact_email_primary": "agrader@msu.example.edu",
    "ext_d2l_username": "agrader",
    "ext_d2l_orgdefinedid": "5d2e8f10-3a4b-4c6d-9e8f-0a1b2c3d4e5f",
    "ext_d2l_role": "TeachingAssistant",
}

_COURSE_13 = {"context_id": "522938", "lms_course_id": "522938", "course_title": "Calculus I"}
_COURSE_11 = {"context_id": "744563", "lms_course_id": "744563", "course_title": "Test Course"}
_AT_13 = {"domain": HOST, "locale": "en-US", "lti_version": "1.3"}
_AT_11 = {"domain": "d2l.msu.edu", "locale": "EN-US", "lti_version": "1.1"}

EXAMPLES: tuple[ExampleLaunch, ...] = (
    ExampleLaunch(
        lms="d2l",
        name="instructor-13",
        version="1.3",
        role="instructor",
        title="Instructor (LTI 1.3, Brightspace claim at the top level)",
        claims=INSTRUCTOR_13,
        source=f"{PCC}; sub as in {SUB_FORM}",
        expected={
            "user_id": f"{TENANT}_337",
            "email": "pat.instructor@pcc.example.edu",
            "role": "instructor",
            "roles": ["Institution Instructor", "Instructor"],
            "name": "Pat Instructor",
            "username": "pat.instructor",
            **_COURSE_13,
            "history": [],
            **_AT_13,
        },
    ),
    ExampleLaunch(
        lms="d2l",
        name="ta-13",
        version="1.3",
        role="ta",
        title="Teaching assistant (LTI 1.3) in a copied course",
        claims=TA_13,
        source=f"{PCC}, roles per {ROLE_MAPPING}",
        expected={
            "user_id": f"{TENANT}_412",
            "email": "sam.assistant@pcc.example.edu",
            "role": "instructor",
            "roles": ["Teaching Assistant"],
            "name": "Sam Assistant",
            "username": "sam.assistant",
            **_COURSE_13,
            "history": ["498811"],
            **_AT_13,
        },
    ),
    ExampleLaunch(
        lms="d2l",
        name="student-13",
        version="1.3",
        role="student",
        title="Student (LTI 1.3, Brightspace claim inside launch_presentation)",
        claims=STUDENT_13,
        source=f"{PCC}, with the claim placed as in {NESTED}",
        expected={
            "user_id": f"{TENANT}_1187",
            "email": "riley.learner@pcc.example.edu",
            "role": "student",
            "roles": ["Institution Student", "Learner"],
            "name": "Riley Learner",
            "username": "riley.learner",
            **_COURSE_13,
            "history": [],
            **_AT_13,
        },
    ),
    ExampleLaunch(
        lms="d2l",
        name="admin-13",
        version="1.3",
        role="admin",
        title="Administrator (LTI 1.3)",
        claims=ADMIN_13,
        source=f"{PCC}, roles per {ROLE_MAPPING}",
        expected={
            "user_id": f"{TENANT}_169",
            "email": "morgan.admin@pcc.example.edu",
            "role": "instructor",
            "roles": ["Administrator"],
            "name": "Morgan Admin",
            "username": "morgan.admin",
            **_COURSE_13,
            "history": [],
            **_AT_13,
        },
    ),
    ExampleLaunch(
        lms="d2l",
        name="instructor-11",
        version="1.1",
        role="instructor",
        title="Instructor (LTI 1.1, Brightspace 10.8)",
        claims=INSTRUCTOR_11,
        source=MSU,
        expected={
            "user_id": "MichiganState_11697",
            "email": "cbowen@msu.edu",
            "role": "instructor",
            "roles": ["Institution Faculty", "Faculty", "Institution Instructor", "Instructor"],
            "name": "Charles Owen",
            "username": "cbowen",
            **_COURSE_11,
            "history": [],
            **_AT_11,
        },
    ),
    ExampleLaunch(
        lms="d2l",
        name="ta-11",
        version="1.1",
        role="ta",
        title="Teaching assistant (LTI 1.1, link sending no IMS roles)",
        claims=TA_11,
        source=f"{MSU}, with the Brightspace role only",
        expected={
            "user_id": "MichiganState_30377",
            "email": "agrader@msu.example.edu",
            "role": "instructor",
            "roles": ["Teaching Assistant"],
            "name": "Alex Grader",
            "username": "agrader",
            **_COURSE_11,
            "history": [],
            **_AT_11,
        },
    ),
    ExampleLaunch(
        lms="d2l",
        name="student-11",
        version="1.1",
        role="student",
        title="Student (LTI 1.1, Brightspace 10.8)",
        claims=STUDENT_11,
        source=f"{MSU}, with a student's roles",
        expected={
            "user_id": "MichiganState_20480",
            "email": "jstudent@msu.example.edu",
            "role": "student",
            "roles": ["Institution Student", "Student", "Learner"],
            "name": "Jamie Student",
            "username": "jstudent",
            **_COURSE_11,
            "history": [],
            **_AT_11,
        },
    ),
)
