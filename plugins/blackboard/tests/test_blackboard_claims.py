"""How the Blackboard plugin reads claims, hook by hook, and that it installs on its own."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest
from ltipro_blackboard import course_identifiers, custom_parameter, identify_lms, lms_details
from ltipro_blackboard.examples import ADMIN_11, INSTRUCTOR_13, TA_13

from ltipro.context import CLAIM, LaunchMessage
from ltipro.plugins import Plugins
from ltipro.testing.helpers import import_without, other_plugin_imports

PLUGIN_ROOT = Path(__file__).parent.parent
OTHER_PLUGINS = ("ltipro_canvas", "ltipro_moodle", "ltipro_d2l")


def message13(claims: dict[str, Any], issuer: str = "https://lms.test") -> LaunchMessage:
    return LaunchMessage(version="1.3", claims=claims, credential="test", issuer=issuer)


def message11(params: dict[str, Any]) -> LaunchMessage:
    return LaunchMessage(version="1.1", claims=params, credential="test")


def test_learn_is_identified_by_its_code_its_issuer_or_ext_lms() -> None:
    assert identify_lms(message13(INSTRUCTOR_13)) == "blackboard"
    assert identify_lms(message11(ADMIN_11)) == "blackboard"
    bare = {"sub": "u1", CLAIM + "roles": []}
    assert identify_lms(message13(bare, issuer="https://blackboard.com")) == "blackboard"
    assert identify_lms(message13(bare)) is None
    no_code = {k: v for k, v in ADMIN_11.items() if k != "tool_consumer_info_product_family_code"}
    assert identify_lms(message11(no_code)) == "blackboard"
    assert identify_lms(message11({**no_code, "ext_lms": "moodle-2"})) is None
    other = {**INSTRUCTOR_13, CLAIM + "tool_platform": {"product_family_code": "canvas"}}
    assert identify_lms(message13(other, issuer="https://blackboard.com")) is None


def test_the_lti11_context_id_is_the_course_key_and_uuids_are_not() -> None:
    course = course_identifiers(message11(ADMIN_11))
    assert course is not None and course.lms_course_id == "_41_1"
    bare = {"sub": "u1", CLAIM + "context": {"id": "6c19281a08504db5a447b511f00c0c7b"}}
    course = course_identifiers(message13(bare))
    assert course is not None and course.lms_course_id is None


def test_course_copy_history_comes_from_context_id_history() -> None:
    claims = dict(TA_13)
    claims[CLAIM + "custom"] = {"context_id_history": "$Context.id.history"}
    course = course_identifiers(message13(claims))
    assert course is not None and course.history == ()
    claims[CLAIM + "custom"] = {"context_id_history": "aa11,bb22"}
    course = course_identifiers(message13(claims))
    assert course is not None and course.history == ("aa11", "bb22")


def test_the_missing_email_help_names_the_learn_user_field() -> None:
    details = lms_details()
    assert details.name == "blackboard"
    assert details.product_family_codes == ("BlackboardLearn",)
    assert "Email Address" in details.missing_email_help
    assert details.lms_course_id_parameter == "course_pk=@X@course.pk_string@X@"


@pytest.mark.parametrize(
    ("attribute", "line"),
    [
        ("course_id", "course_id=@X@course.id@X@"),
        ("custom_course_role", "course_role=@X@membership.role@X@"),
        ("Institution Role", "institution_role=@X@user.institution_role@X@"),
        ("username", "username=@X@user.id@X@"),
    ],
)
def test_tracking_field_attributes_get_the_learn_template_variable(
    attribute: str, line: str
) -> None:
    parameter = custom_parameter(attribute)
    assert parameter is not None and parameter.line == line
    assert "LTI Tool Providers" in parameter.help


def test_an_unknown_attribute_gets_a_generic_learn_instruction() -> None:
    parameter = custom_parameter("campus")
    assert parameter is not None and parameter.name == "campus"
    assert "Template Variables" in parameter.help
    assert custom_parameter("-") is None


# -- installing the plugin on its own ------------------------------------------------------


def test_the_distribution_depends_on_the_core_only_and_registers_its_entry_point() -> None:
    project = tomllib.loads((PLUGIN_ROOT / "pyproject.toml").read_text())["project"]
    assert project["name"] == "ltipro-blackboard"
    assert project["dependencies"] == ["ltipro"]
    assert project["entry-points"]["ltipro"] == {"blackboard": "ltipro_blackboard"}


def test_the_package_imports_no_other_plugin() -> None:
    found = other_plugin_imports(PLUGIN_ROOT / "ltipro_blackboard")
    assert not found, found


def test_the_plugin_loads_alone_when_no_other_plugin_can_be_imported(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import_without(monkeypatch, "ltipro_blackboard", unimportable=OTHER_PLUGINS)
    plugins = Plugins.load(only=["blackboard"])
    assert plugins.lms_names == ["blackboard", "generic"]
    assert plugins.details["blackboard"].title == "Blackboard Learn"
