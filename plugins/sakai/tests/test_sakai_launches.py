"""Sakai's quirks, read by the plugin and through the whole tool.

Payloads: the plugin's example launches; their sources (sakaiproject/sakai's
SakaiLTIUtil.java, lti/docs/CUSTOM.md and lti/docs/LTIROLES.md) are cited in
``ltipro_sakai/examples.py``.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Literal

import pytest
from ltipro_sakai import (
    EXTENSION_CLAIM,
    course_identifiers,
    custom_parameter,
    identify_lms,
    launch_context,
)
from ltipro_sakai.examples import (
    ADMIN_11,
    CLAIM,
    INSTRUCTOR_11,
    INSTRUCTOR_13,
    SITE,
    STUDENT_11,
    STUDENT_13,
    TA_11,
    TA_13,
)

from ltipro.extension import ExampleLaunch
from ltipro.testing.conformance import example_message
from ltipro.testing.harness import ToolHarness


def message(version: Literal["1.3", "1.1"], claims: dict[str, Any]) -> Any:
    """The message the tool hands the hooks for ``claims``, signed as Sakai would."""
    example = ExampleLaunch("sakai", "variant", version, "instructor", claims)
    return example_message(example)


def without_code(version: str, claims: dict[str, Any]) -> dict[str, Any]:
    changed = copy.deepcopy(claims)
    if version == "1.3":
        changed[CLAIM + "tool_platform"].pop("product_family_code")
    else:
        changed.pop("tool_consumer_info_product_family_code")
    return changed


def test_sakai_is_recognised_without_a_product_code_by_its_own_claim_or_fields() -> None:
    assert identify_lms(message("1.3", without_code("1.3", INSTRUCTOR_13))) == "sakai"
    assert identify_lms(message("1.1", without_code("1.1", INSTRUCTOR_11))) == "sakai"
    only_ext_fields = {k: v for k, v in without_code("1.1", STUDENT_11).items() if k != "ext_lms"}
    assert identify_lms(message("1.1", only_ext_fields)) == "sakai"
    bare_13 = without_code("1.3", STUDENT_13)
    del bare_13[EXTENSION_CLAIM]
    bare_11 = {k: v for k, v in only_ext_fields.items() if not k.startswith("ext_sakai_")}
    assert identify_lms(message("1.3", bare_13)) is None
    assert identify_lms(message("1.1", bare_11)) is None


def test_the_bare_sakai_user_id_is_the_same_attribute_in_both_versions() -> None:
    context13 = launch_context(message("1.3", copy.deepcopy(INSTRUCTOR_13)))
    context11 = launch_context(message("1.1", dict(INSTRUCTOR_11)))
    assert context13.user_id == "http://localhost:8080/user/0b0bbd1b-a1ba-42c2-bdb0-ffe44e5abec6"
    assert context11.user_id == "0b0bbd1b-a1ba-42c2-bdb0-ffe44e5abec6"
    assert (
        context13.attributes["ext_sakai_user_id"]
        == context11.attributes["ext_sakai_user_id"]
        == "0b0bbd1b-a1ba-42c2-bdb0-ffe44e5abec6"
    )


@pytest.mark.parametrize(
    ("sub", "user_id"),
    [
        ("https://sakai.example.edu/deployment/7/user/c71bb6b6", "c71bb6b6"),
        ("https://sakai.example.edu/user/c71bb6b6/", "c71bb6b6"),
        ("c71bb6b6", "c71bb6b6"),
        ("https://other.example.edu/people/42", "https://other.example.edu/people/42"),
    ],
)
def test_the_sakai_user_id_is_read_from_every_subject_form(sub: str, user_id: str) -> None:
    claims = copy.deepcopy(STUDENT_13)
    claims["sub"] = sub
    assert launch_context(message("1.3", claims)).attributes["ext_sakai_user_id"] == user_id


def test_the_username_is_the_eid_from_the_extension_or_else_the_person_sourcedid() -> None:
    claims = copy.deepcopy(STUDENT_13)
    assert launch_context(message("1.3", claims)).username == "sally@umich.edu"
    del claims[EXTENSION_CLAIM]["sakai_eid"]
    claims[CLAIM + "lis"]["person_sourcedid"] = "sally"
    assert launch_context(message("1.3", claims)).username == "sally"
    params = {k: v for k, v in STUDENT_11.items() if k != "ext_sakai_eid"}
    params["lis_person_sourcedid"] = "sally11"
    assert launch_context(message("1.1", params)).username == "sally11"


def test_the_site_role_is_kept_as_the_same_attribute_in_both_versions() -> None:
    assert launch_context(message("1.3", copy.deepcopy(TA_13))).attributes["ext_sakai_role"] == (
        "Teaching Assistant"
    )
    assert launch_context(message("1.1", dict(TA_11))).attributes["ext_sakai_role"] == (
        "Teaching Assistant"
    )


def test_without_a_return_url_the_domain_is_the_sakai_server() -> None:
    claims = copy.deepcopy(INSTRUCTOR_13)
    del claims[CLAIM + "launch_presentation"]
    claims[EXTENSION_CLAIM]["sakai_server"] = "https://sakai.example.edu"
    assert launch_context(message("1.3", claims)).domain == "sakai.example.edu"
    params = {k: v for k, v in INSTRUCTOR_11.items() if k != "launch_presentation_return_url"}
    params["ext_sakai_server"] = "https://lms.school.edu:8443"
    assert launch_context(message("1.1", params)).domain == "lms.school.edu"


@pytest.mark.parametrize(
    "context_type",
    [["http://purl.org/CourseOffering"], ["CourseOffering"], "Group"],
    ids=["old-sakai-uri", "bare", "project-site"],
)
def test_every_site_is_its_own_sakai_course_whatever_its_context_type(
    context_type: Any,
) -> None:
    claims = copy.deepcopy(STUDENT_13)
    claims[CLAIM + "context"]["type"] = context_type
    course = course_identifiers(message("1.3", claims))
    assert course is not None
    assert course.context_id == course.lms_course_id == SITE
    project = course_identifiers(message("1.1", dict(ADMIN_11)))
    assert project is not None
    assert project.context_id == project.lms_course_id == "mercury"


def test_the_custom_parameters_name_sakais_own_variables() -> None:
    role = custom_parameter("Site Role")
    assert role is not None and role.line == "site_role=$Sakai.ext.role"
    assert "Administration Workspace > External Tools" in role.help
    history = custom_parameter("context_id_history")
    assert history is not None and history.value == "$Context.id.history"


@pytest.fixture
async def sakai_harness(ltipro_database_url: str, tmp_path: Path) -> Any:
    async with ToolHarness(
        database_url=ltipro_database_url, instance=tmp_path / "instance", plugins=["sakai"]
    ) as harness:
        yield harness


async def test_a_ta_and_an_admin_launch_as_instructors_with_their_sakai_roles(
    sakai_harness: ToolHarness,
) -> None:
    cases: list[tuple[str, dict[str, Any], list[str]]] = [
        ("1.3", TA_13, ["Teaching Assistant"]),
        ("1.1", TA_11, ["Teaching Assistant"]),
        ("1.1", ADMIN_11, ["Instructor", "Administrator"]),
    ]
    for version, claims, roles in cases:
        if version == "1.3":
            page = await sakai_harness.launch13(copy.deepcopy(claims))
        else:
            page = await sakai_harness.launch11(dict(claims))
        assert page.status_code == 200, page.text
        me = await sakai_harness.me(page)
        assert (me["lms"], me["role"], me["roles"]) == ("sakai", "instructor", roles)


async def test_a_sakai_launch_without_email_names_the_sakai_privacy_setting(
    sakai_harness: ToolHarness,
) -> None:
    claims = copy.deepcopy(STUDENT_13)
    del claims["email"]
    page = await sakai_harness.launch13(claims)
    assert page.status_code == 400
    assert 'data-error-code="missing_email"' in page.text
    assert "Administration Workspace &gt; External Tools" in page.text
