"""What the D2L plugin gives an admin to enter in Brightspace.

Field names are Brightspace's own ("Register an external learning tool for LTI
Advantage": Domain, Redirect URLs, OpenID Connect Login URL, Target Link URI, Keyset
URL; a deployment's security settings and org units; links). The substitution variable
is one Brightspace lists as supported ("Understanding LTI custom parameter substitute
variables"): ``$Context.id.history``, while ``$Person.address.timezone`` is not.
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import ltipro_d2l
from ltipro_d2l import course_identifiers
from ltipro_d2l.examples import INSTRUCTOR_13
from ltipro_d2l.registration import registration_artifacts

from ltipro.context import CLAIM, LaunchMessage
from ltipro.extension import RegistrationArtifact
from ltipro.lti.registration import credential_for_link
from ltipro.registration_artifacts import credential_artifacts
from ltipro.testing.artifacts import artifact_problems, find_artifact, read_cartridge, values_of
from ltipro.testing.harness import SECRET_KEY, TOOL_URL, ToolHarness

BASE = "https://tool.example.edu"


def titled(title: str) -> RegistrationArtifact:
    [found] = [a for a in registration_artifacts("college", BASE, {}) if a.title == title]
    return found


def registration() -> dict[str, list[str]]:
    return values_of(titled("LTI Advantage registration (Standard)"))


def deployment() -> dict[str, list[str]]:
    return values_of(titled("LTI Advantage deployment and link"))


def test_every_d2l_artefact_is_valid_names_the_tool_and_carries_no_key() -> None:
    artifacts = registration_artifacts("college", BASE, {})
    assert [a.kind for a in artifacts] == ["values", "values", "xml"]
    assert {a.lms for a in artifacts} == {"d2l"}
    assert artifact_problems(artifacts, BASE) == []


def test_the_standard_registration_uses_the_key_set_url_and_the_tools_urls() -> None:
    values = registration()
    assert values["Domain"] == [BASE]
    assert values["Redirect URLs"] == values["Target Link URI"] == [BASE + "/lti/launch"]
    assert values["OpenID Connect Login URL"] == [BASE + "/lti/login"]
    assert values["Keyset URL"] == [BASE + "/.well-known/jwks.json"]
    assert values["Extensions"] == ["Deep Linking"]


def test_the_deployment_sends_name_and_email_to_the_tool() -> None:
    settings = deployment()["Deployment security settings"]
    assert {"Name", "First Name", "Last Name", "Email"} <= set(settings)
    assert {"Org Unit Information", "Username", "Org Defined Id"} <= set(settings)


def test_a_link_in_the_course_navbar_puts_the_tool_in_course_navigation() -> None:
    values = deployment()
    assert values["Link URL"] == [BASE + "/lti/launch"]
    assert values["Link type"] == ["Basic Launch"]
    assert "navbar" in values["Course navigation"][0]


def test_only_the_history_variable_brightspace_supports_is_asked_for() -> None:
    assert registration()["Custom Parameters"] == [
        f"{ltipro_d2l.HISTORY_PARAMETER}=$Context.id.history"
    ]
    assert ltipro_d2l.VARIABLES["context_id_history"] == "$Context.id.history"


def test_a_launch_with_the_history_brightspace_resolves_gives_the_course_history() -> None:
    claims = {**INSTRUCTOR_13, CLAIM + "custom": {"context_id_history": "401,399"}}
    course = course_identifiers(LaunchMessage(version="1.3", claims=claims, credential="x"))
    assert course is not None and course.history == ("401", "399")


def test_the_lti11_cartridge_is_valid_and_the_help_names_the_email_setting() -> None:
    [xml] = find_artifact(registration_artifacts("college", BASE, {}), "xml")
    cartridge = read_cartridge(xml.content)
    assert cartridge.launch_url == BASE + "/lti/launch"
    assert cartridge.custom == {"context_id_history": "$Context.id.history"}
    assert "Send user email" in xml.help and "Send user name" in xml.help


async def test_through_the_core_brightspace_gets_the_credentials_registration_url(
    d2l_harness: ToolHarness,
) -> None:
    tool, credential = d2l_harness.tool, d2l_harness.credential
    artifacts = await credential_artifacts(tool, credential, "d2l")
    assert [a.kind for a in artifacts] == ["url", "values", "values", "xml"]
    assert artifact_problems(artifacts, TOOL_URL) == []
    [url] = find_artifact(artifacts, "url")
    token = parse_qs(urlsplit(url.content).query)["credential"][0]
    assert (await credential_for_link(tool.repo, SECRET_KEY, token)).id == credential.id
    assert "Register Tool > Dynamic" in url.help
