"""The built-in ``generic`` plugin: any LTI-conformant LMS that has no plugin of its own.

It reads standard claims only. LMS plugins are written the same way.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ltipro.context import CourseIdentifiers, LaunchContext, LaunchMessage
from ltipro.extension import CustomParameter, ExampleLaunch, LmsDetails, RegistrationArtifact
from ltipro.hookspecs import hookimpl
from ltipro.lti.claims import standard_course_identifiers, standard_launch_context
from ltipro.registration_artifacts import standard_artifacts

NAME = "generic"


@hookimpl
def lms_details() -> LmsDetails:
    return LmsDetails(
        name=NAME,
        title="Other LMS (standard LTI)",
        missing_email_help=(
            "Ask the LMS administrator to share the launching user's email address with "
            "the tool (in LTI 1.3, the tool's registration must be allowed to receive the "
            "email claim)."
        ),
    )


@hookimpl
def launch_context(message: LaunchMessage) -> LaunchContext:
    return standard_launch_context(message, lms=NAME)


@hookimpl
def course_identifiers(message: LaunchMessage) -> CourseIdentifiers | None:
    return standard_course_identifiers(message)


@hookimpl
def custom_parameter(attribute: str) -> CustomParameter:
    return CustomParameter(
        name=attribute,
        value="<the LMS's substitution variable for this value>",
        help="Add this custom parameter to the tool's configuration in the LMS.",
    )


@hookimpl
def registration_artifacts(
    credential: str, base_url: str, settings: Mapping[str, Any]
) -> list[RegistrationArtifact]:
    """The tool's LTI 1.3 values, the dynamic-registration URL and the LTI 1.1 cartridge."""
    return standard_artifacts(NAME, base_url)


@hookimpl
def example_launches() -> list[ExampleLaunch]:
    claims = {
        "https://purl.imsglobal.org/spec/lti/claim/message_type": "LtiResourceLinkRequest",
        "https://purl.imsglobal.org/spec/lti/claim/version": "1.3.0",
        "https://purl.imsglobal.org/spec/lti/claim/resource_link": {"id": "generic-link-1"},
        "sub": "generic-user-1",
        "name": "Sam Teacher",
        "given_name": "Sam",
        "family_name": "Teacher",
        "email": "sam.teacher@example.edu",
        "https://purl.imsglobal.org/spec/lti/claim/roles": [
            "http://purl.imsglobal.org/vocab/lis/v2/membership#Instructor"
        ],
        "https://purl.imsglobal.org/spec/lti/claim/context": {
            "id": "generic-course-1",
            "label": "GEN101",
            "title": "Introduction to Standards",
            "type": ["http://purl.imsglobal.org/vocab/lis/v2/course#CourseOffering"],
        },
        "https://purl.imsglobal.org/spec/lti/claim/launch_presentation": {
            "document_target": "iframe",
            "return_url": "https://lms.example.edu/course/1",
        },
    }
    student = dict(claims)
    student.update(
        {
            "sub": "generic-user-2",
            "name": "Alex Student",
            "given_name": "Alex",
            "family_name": "Student",
            "email": "alex.student@example.edu",
            "https://purl.imsglobal.org/spec/lti/claim/roles": [
                "http://purl.imsglobal.org/vocab/lis/v2/membership#Learner"
            ],
        }
    )
    return [
        ExampleLaunch(
            lms=NAME,
            name="instructor",
            version="1.3",
            role="instructor",
            claims=claims,
            title="Instructor (standard LTI 1.3 claims)",
            expected={"email": "sam.teacher@example.edu", "role": "instructor"},
            source="IMS LTI 1.3 core specification, resource link launch example",
        ),
        ExampleLaunch(
            lms=NAME,
            name="student",
            version="1.3",
            role="student",
            claims=student,
            title="Student (standard LTI 1.3 claims)",
            expected={"email": "alex.student@example.edu", "role": "student"},
            source="IMS LTI 1.3 core specification, resource link launch example",
        ),
    ]
