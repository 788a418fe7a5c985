"""What the Blackboard plugin gives an admin to enter on Anthology's portal and in Learn.

Field names are the Developer Portal's ("My Integration supports LTI 1.3": Login
Initiation URL, Tool Redirect URL(s), Tool JWKS URL, Signing Algorithm) and Learn's
(User Fields to Send, Tool Provider Custom Parameters, placements); the template
variables are from Anthology's "Dynamic Rendering with Template Variables".
"""

from __future__ import annotations

import ltipro_blackboard
from ltipro_blackboard import course_identifiers, launch_context
from ltipro_blackboard.examples import INSTRUCTOR_13
from ltipro_blackboard.registration import CUSTOM_PARAMETERS, registration_artifacts

from ltipro.context import CLAIM, LaunchMessage
from ltipro.extension import RegistrationArtifact
from ltipro.registration_artifacts import credential_artifacts
from ltipro.testing.artifacts import artifact_problems, find_artifact, read_cartridge, values_of
from ltipro.testing.harness import TOOL_URL, ToolHarness

BASE = "https://tool.example.edu"


def titled(prefix: str) -> dict[str, list[str]]:
    artifacts: list[RegistrationArtifact] = registration_artifacts("college", BASE, {})
    [found] = [a for a in artifacts if a.title.startswith(prefix)]
    return values_of(found)


def test_every_blackboard_artefact_is_valid_names_the_tool_and_carries_no_key() -> None:
    artifacts = registration_artifacts("college", BASE, {})
    assert [a.kind for a in artifacts] == ["values", "values", "values", "xml"]
    assert {a.lms for a in artifacts} == {"blackboard"}
    assert artifact_problems(artifacts, BASE) == []


def test_the_developer_portal_values_point_at_the_tool_and_its_key_set() -> None:
    portal = titled("Anthology Developer Portal")
    assert portal["Login Initiation URL"] == [BASE + "/lti/login"]
    assert portal["Tool Redirect URL(s)"] == [BASE + "/lti/launch"]
    assert portal["Tool JWKS URL"] == [BASE + "/.well-known/jwks.json"]
    assert portal["Signing Algorithm"] == ["RS256"]
    assert portal["Domain(s)"] == ["tool.example.edu"]


def test_learn_is_asked_to_send_name_and_email() -> None:
    assert titled("Learn: the deployed tool")["User Fields to Send"] == [
        "Role in Course",
        "Name",
        "Email Address",
    ]


def test_a_course_tool_placement_puts_the_tool_in_every_course() -> None:
    placement = titled("Learn: course placement")
    assert placement["Type"] == ["Course tool (Allow student access)"]
    assert placement["Target Link URI"] == [BASE + "/lti/launch"]
    assert placement["Availability"] == ["Yes"]


def test_the_custom_parameters_are_the_ones_the_plugin_reads() -> None:
    lines = titled("Learn: the deployed tool")["Tool Provider Custom Parameters"]
    assert lines == titled("Anthology Developer Portal")["Custom Parameters"]
    names = {line.partition("=")[0]: line.partition("=")[2] for line in lines}
    assert names["course_role"] == "@X@membership.role@X@"
    assert "course_role" in ltipro_blackboard.ROLE_PARAMETERS
    assert "course_pk" in ltipro_blackboard.COURSE_KEY_PARAMETERS
    assert "username" in ltipro_blackboard.USERNAME_PARAMETERS
    for name in ("course_pk", "course_role", "context_id_history"):
        assert ltipro_blackboard.VARIABLES[name] == names[name]
    assert names["username"] == ltipro_blackboard.VARIABLES["username"]


def test_a_launch_with_the_parameters_learn_fills_tells_a_course_builder_apart() -> None:
    filled = {
        "@X@course.pk_string@X@": "_122_1",
        "@X@membership.role@X@": "B",
        "@X@user.id@X@": "jcool",
        "$Person.address.timezone": "America/New_York",
        "$Context.id.history": "old-course-uuid",
    }
    custom = {name: filled[variable] for name, variable in CUSTOM_PARAMETERS.items()}
    claims = {**INSTRUCTOR_13, CLAIM + "custom": custom}
    message = LaunchMessage(version="1.3", claims=claims, credential="college")
    context = launch_context(message)
    course = course_identifiers(message)
    assert context.roles[0] == "Course Builder"  # the placement said Instructor
    assert (context.username, context.timezone) == ("jcool", "America/New_York")
    assert course is not None
    assert (course.lms_course_id, course.history) == ("_122_1", ("old-course-uuid",))


def test_the_lti11_cartridge_carries_the_template_variables() -> None:
    [xml] = find_artifact(registration_artifacts("college", BASE, {}), "xml")
    cartridge = read_cartridge(xml.content)
    assert cartridge.custom == dict(CUSTOM_PARAMETERS)
    assert cartridge.launch_url == cartridge.secure_launch_url == BASE + "/lti/launch"
    assert "Email Address" in xml.help


async def test_through_the_core_learn_gets_no_dynamic_registration_url(
    blackboard_harness: ToolHarness,
) -> None:
    # Learn registers tools through Anthology's portal, not by the tool's URL.
    artifacts = await credential_artifacts(
        blackboard_harness.tool, blackboard_harness.credential, "blackboard"
    )
    assert find_artifact(artifacts, "url") == []
    assert artifact_problems(artifacts, TOOL_URL) == []
