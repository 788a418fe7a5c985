"""What the Moodle plugin gives an admin to enter in Moodle.

Field names and choices are Moodle's own (mod/lti edit_form.php and lang/en/lti.php:
"Public key type" Keyset URL, "Initiate login URL", "Redirection URI(s)", "Tool
configuration usage", "Share launcher's name with tool", "Share launcher's email with
tool"); the substitution variables are among those mod/lti resolves.
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import ltipro_moodle
from ltipro_moodle import course_identifiers, launch_context
from ltipro_moodle.examples import TEACHER_13
from ltipro_moodle.registration import registration_artifacts

from ltipro.context import CLAIM, LaunchMessage
from ltipro.lti.registration import credential_for_link
from ltipro.registration_artifacts import credential_artifacts
from ltipro.testing.artifacts import artifact_problems, find_artifact, read_cartridge, values_of
from ltipro.testing.harness import SECRET_KEY, TOOL_URL, ToolHarness

BASE = "https://tool.example.edu"


def manual() -> dict[str, list[str]]:
    [values] = find_artifact(registration_artifacts("college", BASE, {}), "values")
    return values_of(values)


def test_every_moodle_artefact_is_valid_names_the_tool_and_carries_no_key() -> None:
    artifacts = registration_artifacts("college", BASE, {})
    assert [a.kind for a in artifacts] == ["values", "xml"]
    assert {a.lms for a in artifacts} == {"moodle"}
    assert artifact_problems(artifacts, BASE) == []


def test_the_manual_form_uses_the_key_set_url_and_the_tools_urls() -> None:
    values = manual()
    assert values["LTI version"] == ["LTI 1.3"]
    assert values["Public key type"] == ["Keyset URL"]
    assert values["Public keyset"] == [BASE + "/.well-known/jwks.json"]
    assert values["Initiate login URL"] == [BASE + "/lti/login"]
    assert values["Redirection URI(s)"] == [BASE + "/lti/launch"]
    assert values["Tool URL"] == values["Content Selection URL"] == [BASE + "/lti/launch"]


def test_the_manual_form_asks_moodle_to_always_share_name_and_email() -> None:
    values = manual()
    # Moodle's default, "Delegate to teacher", leaves launches without them.
    assert values["Share launcher's name with tool"] == ["Always"]
    assert values["Share launcher's email with tool"] == ["Always"]


def test_the_tool_is_offered_in_every_courses_activity_chooser() -> None:
    # Moodle has no course menu for tools; the activity chooser is where courses find it.
    assert manual()["Tool configuration usage"] == [
        "Show in activity chooser and as a preconfigured tool"
    ]
    assert manual()["Supports Deep Linking (Content-Item Message)"] == ["Yes"]


def test_the_custom_parameters_are_the_ones_the_plugin_and_core_read() -> None:
    lines = manual()["Custom parameters"]
    assert lines == [
        "person_address_timezone=$Person.address.timezone",
        f"{ltipro_moodle.HISTORY_PARAMETER}=$Context.id.history",
    ]
    for line in lines:
        name, _, variable = line.partition("=")
        assert ltipro_moodle.VARIABLES[name] == variable


def test_a_launch_with_the_parameters_moodle_resolves_gives_time_zone_and_history() -> None:
    resolved = {"$Person.address.timezone": "Europe/Madrid", "$Context.id.history": "9,7"}
    custom = {}
    for line in manual()["Custom parameters"]:
        name, _, variable = line.partition("=")
        custom[name] = resolved[variable]
    claims = {**TEACHER_13, CLAIM + "custom": custom}
    message = LaunchMessage(version="1.3", claims=claims, credential="college")
    course = course_identifiers(message)
    assert launch_context(message).timezone == "Europe/Madrid"
    assert course is not None and course.history == ("9", "7")


def test_the_lti11_cartridge_carries_the_same_parameters_and_asks_for_name_and_email() -> None:
    [xml] = find_artifact(registration_artifacts("college", BASE, {}), "xml")
    cartridge = read_cartridge(xml.content)
    assert cartridge.custom == dict(ltipro_moodle.registration.CUSTOM_PARAMETERS)
    assert cartridge.launch_url == BASE + "/lti/launch"
    assert "Always" in xml.help  # the privacy settings of an LTI 1.1 tool too
    assert cartridge.extensions["canvas.instructure.com"]["privacy_level"] == "public"
    assert cartridge.extensions["canvas.instructure.com"]["course_navigation"]["enabled"] == "true"


async def test_through_the_core_moodle_gets_the_credentials_registration_url(
    moodle_harness: ToolHarness,
) -> None:
    tool, credential = moodle_harness.tool, moodle_harness.credential
    artifacts = await credential_artifacts(tool, credential, "moodle")
    assert [a.kind for a in artifacts] == ["url", "values", "xml"]
    assert artifact_problems(artifacts, TOOL_URL) == []
    [url] = find_artifact(artifacts, "url")
    token = parse_qs(urlsplit(url.content).query)["credential"][0]
    assert (await credential_for_link(tool.repo, SECRET_KEY, token)).id == credential.id
    assert "Add LTI Advantage" in url.help
