"""How the Moodle plugin reads claims, hook by hook, and that it installs on its own."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest
from ltipro_moodle import course_identifiers, custom_parameter, identify_lms, lms_details
from ltipro_moodle.examples import ADMIN_11, ADMIN_13, TEACHER_13

from ltipro.context import CLAIM, LaunchMessage
from ltipro.plugins import Plugins
from ltipro.testing.helpers import import_without, other_plugin_imports

PLUGIN_ROOT = Path(__file__).parent.parent
OTHER_PLUGINS = ("ltipro_canvas", "ltipro_d2l", "ltipro_blackboard")


def message13(claims: dict[str, Any]) -> LaunchMessage:
    return LaunchMessage(version="1.3", claims=claims, credential="test", issuer="https://lms.test")


def message11(params: dict[str, Any]) -> LaunchMessage:
    return LaunchMessage(version="1.1", claims=params, credential="test")


def test_moodle_is_identified_by_its_product_code_or_its_extension() -> None:
    assert identify_lms(message13(ADMIN_13)) == "moodle"
    assert identify_lms(message11(ADMIN_11)) == "moodle"
    no_code = {k: v for k, v in ADMIN_13.items() if k != CLAIM + "tool_platform"}
    assert identify_lms(message13(no_code)) == "moodle"
    other = {**ADMIN_13, CLAIM + "tool_platform": {"product_family_code": "canvas"}}
    assert identify_lms(message13(other)) is None
    plain = {"sub": "1", CLAIM + "ext": "moodle-2"}
    assert identify_lms(message13(plain)) is None


def test_course_copy_history_comes_from_context_id_history_without_the_course_itself() -> None:
    claims = dict(TEACHER_13)
    claims[CLAIM + "custom"] = {"context_id_history": "7,5,2,$Context.id.history"}
    course = course_identifiers(message13(claims))
    assert course is not None
    assert course.history == ("7", "5")


def test_the_missing_email_help_names_the_moodle_setting() -> None:
    details = lms_details()
    assert details.name == "moodle" and details.product_family_codes == ("moodle",)
    assert "Share launcher's email with tool" in details.missing_email_help


@pytest.mark.parametrize(
    ("attribute", "line"),
    [
        ("course_idnumber", "course_idnumber=$CourseSection.sourcedId"),
        ("custom_groups", "groups=$Moodle.Person.userGroupIds"),
        ("Context ID history", "context_id_history=$Context.id.history"),
        ("username", "username=$User.username"),
    ],
)
def test_tracking_field_attributes_get_the_moodle_substitution_variable(
    attribute: str, line: str
) -> None:
    parameter = custom_parameter(attribute)
    assert parameter is not None and parameter.line == line
    assert "Custom parameters" in parameter.help


def test_an_unknown_attribute_gets_a_generic_moodle_instruction() -> None:
    parameter = custom_parameter("faculty")
    assert parameter is not None and parameter.name == "faculty"
    assert not parameter.value.startswith("$")
    assert "Moodle" in parameter.help
    assert custom_parameter("") is None


# -- installing the plugin on its own ------------------------------------------------------


def test_the_distribution_depends_on_the_core_only_and_registers_its_entry_point() -> None:
    project = tomllib.loads((PLUGIN_ROOT / "pyproject.toml").read_text())["project"]
    assert project["name"] == "ltipro-moodle"
    assert project["dependencies"] == ["ltipro"]
    assert project["entry-points"]["ltipro"] == {"moodle": "ltipro_moodle"}


def test_the_package_imports_no_other_plugin() -> None:
    found = other_plugin_imports(PLUGIN_ROOT / "ltipro_moodle")
    assert not found, found


def test_the_plugin_loads_alone_when_no_other_plugin_can_be_imported(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import_without(monkeypatch, "ltipro_moodle", unimportable=OTHER_PLUGINS)
    plugins = Plugins.load(only=["moodle"])
    assert plugins.lms_names == ["moodle", "generic"]
    assert plugins.details["moodle"].title == "Moodle"
