"""How the D2L plugin reads claims, hook by hook, and that it installs on its own."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest
from ltipro_d2l import (
    course_identifiers,
    custom_parameter,
    identify_lms,
    launch_context,
    lms_details,
)
from ltipro_d2l.examples import BRIGHTSPACE, INSTRUCTOR_11, INSTRUCTOR_13, TA_13

from ltipro.context import CLAIM, LaunchMessage
from ltipro.plugins import Plugins
from ltipro.testing.helpers import import_without, other_plugin_imports

PLUGIN_ROOT = Path(__file__).parent.parent
OTHER_PLUGINS = ("ltipro_canvas", "ltipro_moodle", "ltipro_blackboard")


def message13(claims: dict[str, Any]) -> LaunchMessage:
    return LaunchMessage(version="1.3", claims=claims, credential="test", issuer="https://lms.test")


def message11(params: dict[str, Any]) -> LaunchMessage:
    return LaunchMessage(version="1.1", claims=params, credential="test")


def test_brightspace_is_identified_by_its_code_its_claim_or_its_fields() -> None:
    assert identify_lms(message13(INSTRUCTOR_13)) == "d2l"
    assert identify_lms(message11(INSTRUCTOR_11)) == "d2l"
    no_code = {k: v for k, v in INSTRUCTOR_13.items() if k != CLAIM + "tool_platform"}
    assert identify_lms(message13(no_code)) == "d2l"
    other = {**INSTRUCTOR_13, CLAIM + "tool_platform": {"product_family_code": "moodle"}}
    assert identify_lms(message13(other)) is None
    assert identify_lms(message13({"sub": "1", BRIGHTSPACE: "yes"})) is None
    assert identify_lms(message11({"resource_link_id": "1", "user_id": "a_1"})) is None


def test_lti11_ext_d2l_fields_and_the_13_claim_share_attribute_names() -> None:
    a13 = launch_context(message13(INSTRUCTOR_13)).attributes
    a11 = launch_context(message11(INSTRUCTOR_11)).attributes
    for name in ("ext_d2l_username", "ext_d2l_orgdefinedid", "ext_d2l_user_id", "ext_d2l_tenantid"):
        assert name in a13 and name in a11, name
    assert a11["ext_d2l_role"] == "Faculty"
    assert (a13["ext_d2l_user_id"], a11["ext_d2l_user_id"]) == ("337", "11697")


def test_course_copy_history_joins_the_claim_and_the_custom_parameter() -> None:
    claims = dict(TA_13)
    claims[BRIGHTSPACE] = {**TA_13[BRIGHTSPACE], "Context.id.history": "498811,477003"}
    claims[CLAIM + "custom"] = {"context_id_history": "477003,455120,522938"}
    course = course_identifiers(message13(claims))
    assert course is not None
    assert course.history == ("498811", "477003", "455120")


def test_the_missing_email_help_names_the_brightspace_settings() -> None:
    details = lms_details()
    assert details.name == "d2l" and details.product_family_codes == ("desire2learn",)
    assert "Send user email to tool provider" in details.missing_email_help
    assert "Security Settings" in details.missing_email_help


@pytest.mark.parametrize(
    ("attribute", "line"),
    [
        ("org_defined_id", "org_defined_id={OrgDefinedId}"),
        ("custom_course_code", "course_code={OrgUnitCode}"),
        ("Department", "department=$CourseTemplate.title"),
        ("context_id_history", "context_id_history=$Context.id.history"),
    ],
)
def test_tracking_field_attributes_get_the_brightspace_substitution(
    attribute: str, line: str
) -> None:
    parameter = custom_parameter(attribute)
    assert parameter is not None and parameter.line == line
    assert "Manage Extensibility" in parameter.help


def test_an_unknown_attribute_gets_a_generic_brightspace_instruction() -> None:
    parameter = custom_parameter("campus")
    assert parameter is not None and parameter.name == "campus"
    assert "{" not in parameter.value.split(">")[-1]
    assert "Brightspace" in parameter.help
    assert custom_parameter("custom_") is None


# -- installing the plugin on its own ------------------------------------------------------


def test_the_distribution_depends_on_the_core_only_and_registers_its_entry_point() -> None:
    project = tomllib.loads((PLUGIN_ROOT / "pyproject.toml").read_text())["project"]
    assert project["name"] == "ltipro-d2l"
    assert project["dependencies"] == ["ltipro"]
    assert project["entry-points"]["ltipro"] == {"d2l": "ltipro_d2l"}


def test_the_package_imports_no_other_plugin() -> None:
    found = other_plugin_imports(PLUGIN_ROOT / "ltipro_d2l")
    assert not found, found


def test_the_plugin_loads_alone_when_no_other_plugin_can_be_imported(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import_without(monkeypatch, "ltipro_d2l", unimportable=OTHER_PLUGINS)
    plugins = Plugins.load(only=["d2l"])
    assert plugins.lms_names == ["d2l", "generic"]
    assert plugins.details["d2l"].title == "D2L Brightspace"


def test_the_org_unit_comes_from_the_custom_parameter_then_the_context_id_then_service_urls() -> (
    None
):
    guid_context = {**INSTRUCTOR_13[CLAIM + "context"], "id": "3f1c9a2e-guid"}
    claims = {**INSTRUCTOR_13, CLAIM + "context": guid_context}
    with_parameter = {**claims, CLAIM + "custom": {"org_unit_id": " 600100 "}}

    assert course_identifiers(message13(with_parameter)).lms_course_id == "600100"
    assert course_identifiers(message13(INSTRUCTOR_13)).lms_course_id == "522938"
    # No parameter and a context id that is not a number: the AGS line-items URL names it.
    assert course_identifiers(message13(claims)).lms_course_id == "522938"
