"""How the Canvas plugin reads claims, hook by hook, and that it installs on its own."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest
from ltipro_canvas import (
    course_identifiers,
    custom_parameter,
    identify_lms,
    launch_context,
    lms_details,
)
from ltipro_canvas.examples import ADMIN_11, TA_13, TEACHER_13

from ltipro.context import CLAIM, LaunchMessage
from ltipro.plugins import Plugins
from ltipro.testing.helpers import import_without, other_plugin_imports

PLUGIN_ROOT = Path(__file__).parent.parent
LIS = "http://purl.imsglobal.org/vocab/lis/v2/"
OTHER_PLUGINS = ("ltipro_moodle", "ltipro_d2l", "ltipro_blackboard")


def message13(claims: dict[str, Any], issuer: str = "https://lms.test") -> LaunchMessage:
    return LaunchMessage(version="1.3", claims=claims, credential="test", issuer=issuer)


def message11(params: dict[str, Any]) -> LaunchMessage:
    return LaunchMessage(version="1.1", claims=params, credential="test")


def without_product_code(claims: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in claims.items() if k != CLAIM + "tool_platform"}


# -- identify_lms ---------------------------------------------------------------------------


def test_canvas_is_identified_by_its_product_family_code_in_both_versions() -> None:
    assert identify_lms(message13(TEACHER_13)) == "canvas"
    assert identify_lms(message11(ADMIN_11)) == "canvas"
    code = {**ADMIN_11, "tool_consumer_info_product_family_code": "Canvas"}
    assert identify_lms(message11(code)) == "canvas"


def test_another_lms_product_code_is_never_taken_for_canvas() -> None:
    claims = {**TEACHER_13, CLAIM + "tool_platform": {"product_family_code": "moodle"}}
    assert identify_lms(message13(claims)) is None
    assert (
        identify_lms(message11({**ADMIN_11, "tool_consumer_info_product_family_code": "sakai"}))
        is None
    )


@pytest.mark.parametrize(
    "issuer",
    [
        "https://canvas.instructure.com",
        "https://canvas.beta.instructure.com",
        "https://canvas.test.instructure.com",
    ],
)
def test_hosted_canvas_issuers_identify_canvas_without_a_product_code(issuer: str) -> None:
    claims = {"sub": "u1", CLAIM + "roles": []}
    assert identify_lms(message13(claims, issuer=issuer)) == "canvas"


def test_canvas_only_claims_identify_canvas_without_a_product_code() -> None:
    placement = {"sub": "u1", "https://www.instructure.com/placement": None}
    assert identify_lms(message13(placement)) == "canvas"
    guid_only = {CLAIM + "tool_platform": {"guid": "abc:canvas-lms"}}
    assert identify_lms(message13(guid_only)) == "canvas"
    params = {k: v for k, v in ADMIN_11.items() if not k.startswith("tool_consumer")}
    assert identify_lms(message11(params)) == "canvas"


def test_unresolved_canvas_variables_from_another_lms_do_not_identify_canvas() -> None:
    params = {
        "resource_link_id": "r1",
        "custom_canvas_course_id": "$Canvas.course.id",
        "custom_canvas_api_domain": "$Canvas.api.domain",
    }
    assert identify_lms(message11(params)) is None
    claims = {"sub": "u1", CLAIM + "custom": {"canvas_course_id": "$Canvas.course.id"}}
    assert identify_lms(message13(claims)) is None


def test_malformed_platform_claims_do_not_stop_identification() -> None:
    claims = {"sub": "u1", CLAIM + "tool_platform": "canvas", CLAIM + "custom": ["x"]}
    assert identify_lms(message13(claims)) is None


# -- launch_context and course_identifiers --------------------------------------------------


def test_the_lowercase_sub_role_of_older_canvas_is_still_a_teaching_assistant() -> None:
    claims = dict(TA_13)
    claims[CLAIM + "roles"] = [
        LIS + "membership/instructor#TeachingAssistant",
        LIS + "membership#Instructor",
    ]
    context = launch_context(message13(claims))
    assert context.roles == ("Teaching Assistant", "Instructor")


def test_lti11_roles_and_ext_roles_are_merged_without_repeats() -> None:
    context = launch_context(message11(ADMIN_11))
    assert context.raw_roles == (
        "urn:lti:instrole:ims/lis/Administrator",
        "urn:lti:sysrole:ims/lis/SysAdmin",
        "urn:lti:sysrole:ims/lis/User",
    )
    assert context.roles == ("Administrator", "System User")


def test_course_copy_history_joins_context_history_and_canvas_previous_context_ids() -> None:
    claims = dict(TEACHER_13)
    current = TEACHER_13[CLAIM + "context"]["id"]
    claims[CLAIM + "custom"] = {
        "context_id_history": "copy%2C2,copy1",
        "canvas_previous_context_ids": f"copy1, copy0,{current}",
        "canvas_previous_context_ids_recursive": "$Canvas.course.previousContextIds.recursive",
    }
    course = course_identifiers(message13(claims))
    assert course is not None
    assert course.history == ("copy,2", "copy1", "copy0")


def test_a_launch_outside_a_course_has_no_course() -> None:
    claims = {k: v for k, v in TEACHER_13.items() if k != CLAIM + "context"}
    assert course_identifiers(message13(claims)) is None


def test_the_custom_course_id_wins_over_the_one_in_service_urls() -> None:
    claims = dict(TEACHER_13)
    claims[CLAIM + "custom"] = {"canvas_course_id": "12"}
    course = course_identifiers(message13(claims))
    assert course is not None and course.lms_course_id == "12"


# -- lms_details and custom_parameter -------------------------------------------------------


def test_the_missing_email_help_names_the_canvas_settings_to_change() -> None:
    details = lms_details()
    assert details.name == "canvas" and details.product_family_codes == ("canvas",)
    assert "privacy level" in details.missing_email_help
    assert "email" in details.missing_email_help
    assert details.lms_course_id_parameter == "canvas_course_id=$Canvas.course.id"


@pytest.mark.parametrize(
    ("attribute", "line"),
    [
        ("account_name", "account_name=$Canvas.account.name"),
        ("custom_account_name", "account_name=$Canvas.account.name"),
        ("Course SIS ID", "course_sis_id=$Canvas.course.sisSourceId"),
        ("term_name", "term_name=$Canvas.term.name"),
        ("context_id_history", "context_id_history=$Context.id.history"),
    ],
)
def test_tracking_field_attributes_get_the_canvas_substitution_variable(
    attribute: str, line: str
) -> None:
    parameter = custom_parameter(attribute)
    assert parameter is not None
    assert parameter.line == line
    assert "Developer Keys" in parameter.help


def test_an_unknown_attribute_gets_a_generic_instruction() -> None:
    parameter = custom_parameter("favourite_colour")
    assert parameter is not None
    assert parameter.name == "favourite_colour"
    assert not parameter.value.startswith("$")
    assert "Canvas" in parameter.help and "substitution" in parameter.help
    assert custom_parameter("  ") is None


# -- installing the plugin on its own ------------------------------------------------------


def test_the_distribution_depends_on_the_core_only_and_registers_its_entry_point() -> None:
    project = tomllib.loads((PLUGIN_ROOT / "pyproject.toml").read_text())["project"]
    assert project["name"] == "ltipro-canvas"
    assert project["dependencies"] == ["ltipro"]
    assert project["entry-points"]["ltipro"] == {"canvas": "ltipro_canvas"}


def test_the_package_imports_no_other_plugin() -> None:
    found = other_plugin_imports(PLUGIN_ROOT / "ltipro_canvas")
    assert not found, found


def test_the_plugin_loads_alone_when_no_other_plugin_can_be_imported(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import_without(monkeypatch, "ltipro_canvas", unimportable=OTHER_PLUGINS)
    plugins = Plugins.load(only=["canvas"])
    assert plugins.lms_names == ["canvas", "generic"]
    assert plugins.details["canvas"].title == "Canvas"
