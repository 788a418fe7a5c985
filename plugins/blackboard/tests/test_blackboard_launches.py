"""Blackboard Learn launches through the whole pipeline: login, signed id_token (or signed LTI 1.1
form), plugin, identity options, session, ``/api/v1/me``.

Payloads: the plugin's example launches (sources in ``ltipro_blackboard/examples.py``) and
the vendor payloads in ``data/`` (sources in ``data/README.md``).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from ltipro_blackboard import course_identifiers, launch_context
from ltipro_blackboard.examples import (
    BUILDER_11,
    EXAMPLES,
    INSTRUCTOR_11,
    INSTRUCTOR_13,
    STUDENT_13,
    TA_13,
)

from ltipro.context import CLAIM
from ltipro.extension import ExampleLaunch
from ltipro.testing.harness import ToolHarness
from ltipro.testing.helpers import (
    check_disabled_refusal,
    check_example_launch,
    check_examples,
    launch,
    launched,
)

DATA = Path(__file__).parent / "data"
LIS = "http://purl.imsglobal.org/vocab/lis/v2/"


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda e: e.name)
async def test_every_example_launches_through_the_pipeline_with_every_field_as_expected(
    blackboard_harness: ToolHarness, example: ExampleLaunch
) -> None:
    await check_example_launch(
        blackboard_harness,
        example,
        lms="blackboard",
        launch_context=launch_context,
        course_identifiers=course_identifiers,
    )


def test_every_example_names_its_source_and_the_fields_the_kit_checks() -> None:
    check_examples(EXAMPLES, lms="blackboard", roles={"instructor", "ta", "student", "admin"})


VENDOR_PAYLOADS = {
    # file: (role, email, username, lms course id, readable roles, domain)
    "blackboard-13-instructor.json": (
        "instructor",
        "jcool@example.com",
        "jcool",
        "_122_1",
        ["Instructor"],
        "example.com",
    ),
    "blackboard-11-admin.json": (
        "instructor",
        "noreply@blackboard.com",
        None,
        "_41_1",
        ["Administrator"],
        "support-ultra-test.blackboard.com",
    ),
}


@pytest.mark.parametrize("filename", sorted(VENDOR_PAYLOADS))
async def test_published_learn_payloads_launch_as_published(
    blackboard_harness: ToolHarness, filename: str
) -> None:
    raw = json.loads((DATA / filename).read_text())
    assert raw.pop("_source")
    version = "1.3" if "-13-" in filename else "1.1"
    role, email, username, course_key, roles, domain = VENDOR_PAYLOADS[filename]
    _, me = await launched(blackboard_harness, version, raw)
    assert (me["role"], me["email"], me["user"]["username"]) == (role, email, username)
    assert me["course"]["lms_course_id"] == course_key
    assert (me["roles"], me["domain"]) == (roles, domain)


@pytest.mark.parametrize(
    ("letter", "roles"),
    [
        ("P", ["Instructor", "Institution Faculty"]),
        ("T", ["Teaching Assistant", "Institution Faculty"]),
        ("b", ["Course Builder", "Institution Faculty"]),
        ("G", ["Grader", "Institution Faculty"]),
        ("S", ["Learner", "Institution Faculty"]),
        ("@X@membership.role@X@", ["Instructor", "Institution Faculty"]),
        ("CUSTOM_ROLE", ["Instructor", "Institution Faculty"]),
    ],
)
async def test_the_course_role_letter_replaces_the_mapped_course_roles(
    blackboard_harness: ToolHarness, letter: str, roles: list[str]
) -> None:
    claims = copy.deepcopy(TA_13)
    claims[CLAIM + "roles"] = [LIS + "membership#Instructor", LIS + "institution/person#Faculty"]
    claims[CLAIM + "custom"]["course_role"] = letter
    session, me = await launched(blackboard_harness, "1.3", claims)
    assert me["roles"] == roles
    assert session.context.raw_roles == tuple(claims[CLAIM + "roles"])


async def test_course_builders_and_tas_are_told_apart_from_instructors_by_the_options(
    blackboard_harness: ToolHarness,
) -> None:
    harness = blackboard_harness
    options = harness.credential.options.updated({"instructor_roles": ["Instructor"]})
    await harness.tool.repo.set_options(harness.credential, options)
    _, instructor = await launched(harness, "1.1", dict(INSTRUCTOR_11))
    _, builder = await launched(harness, "1.1", dict(BUILDER_11))
    _, ta = await launched(harness, "1.3", copy.deepcopy(TA_13))
    assert (instructor["role"], builder["role"], ta["role"]) == ("instructor", "student", "student")


@pytest.mark.parametrize(
    "where",
    ["custom", "unfilled-custom", "line-items", "names-and-roles", "return-url"],
)
async def test_the_course_key_comes_from_a_custom_parameter_or_the_service_urls(
    blackboard_harness: ToolHarness, where: str
) -> None:
    claims = copy.deepcopy(INSTRUCTOR_13)
    ags = "https://purl.imsglobal.org/spec/lti-ags/claim/endpoint"
    nrps = "https://purl.imsglobal.org/spec/lti-nrps/claim/namesroleservice"
    groups = "https://purl.imsglobal.org/spec/lti-gs/claim/groupsservice"
    keep = {
        "custom": (),
        "unfilled-custom": (ags,),
        "line-items": (ags,),
        "names-and-roles": (nrps,),
        "return-url": (),
    }[where]
    for claim in (ags, nrps, groups):
        if claim not in keep:
            del claims[claim]
    if where == "custom":
        claims[CLAIM + "custom"]["course_pk"] = "_122_1"
    if where == "unfilled-custom":
        claims[CLAIM + "custom"]["course_pk"] = "@X@course.pk_string@X@"
    if where != "return-url":
        claims[CLAIM + "launch_presentation"]["return_url"] = "https://example.com/ultra/course"
    _, me = await launched(blackboard_harness, "1.3", claims)
    assert me["course"]["lms_course_id"] == "_122_1"
    assert me["course"]["context_id"] == "6c19281a08504db5a447b511f00c0c7b"


async def test_learn_is_recognised_by_its_shared_issuer_and_the_domain_is_the_site_host(
    blackboard_harness: ToolHarness,
) -> None:
    harness = blackboard_harness
    await harness.use_platform(
        issuer="https://blackboard.com",
        client_id="53c4573a-1ac8-4484-b036-a7b22b557e8c",
        deployment_id="c3c37f92-d008-43db-9e8a-e10fd139ec2d",
        lms="generic",
    )
    claims = copy.deepcopy(STUDENT_13)
    claims[CLAIM + "tool_platform"] = {"url": "https://learn.school.example.edu/"}
    del claims[CLAIM + "launch_presentation"]
    _, me = await launched(harness, "1.3", claims)
    assert me["lms"] == "blackboard"
    assert me["domain"] == "learn.school.example.edu"


async def test_a_learn_launch_without_email_names_the_learn_setting(
    blackboard_harness: ToolHarness,
) -> None:
    claims = copy.deepcopy(STUDENT_13)
    del claims["email"]
    page = await blackboard_harness.launch13(claims)
    assert page.status_code == 400
    assert 'data-error-code="missing_email"' in page.text
    assert "Email Address" in page.text


async def test_broken_learn_claims_give_a_clear_launch_error_or_are_ignored_never_a_500(
    blackboard_harness: ToolHarness,
) -> None:
    claims = copy.deepcopy(STUDENT_13)
    claims[CLAIM + "roles"] = [{"role": "S"}]
    page = await blackboard_harness.launch13(claims)
    assert page.status_code == 400
    assert 'data-error-code="bad_claim"' in page.text

    claims = copy.deepcopy(STUDENT_13)
    claims[CLAIM + "custom"] = {"course_role": ["S"], "course_pk": {"pk": 1}, "userNameLTI": 7}
    claims["https://purl.imsglobal.org/spec/lti-ags/claim/endpoint"] = "broken"
    _, me = await launched(blackboard_harness, "1.3", claims)
    assert me["lms"] == "blackboard"
    assert me["roles"] == ["Learner"]  # from the claim, the letter being unreadable
    assert me["user"]["username"] == "7"
    assert me["course"]["lms_course_id"] == "_122_1"  # still in the other service URLs


async def test_a_credential_with_blackboard_disabled_refuses_learn_launches_and_says_why(
    blackboard_harness: ToolHarness,
) -> None:
    harness = blackboard_harness
    await harness.tool.repo.set_enabled_plugins(harness.credential, ["generic"])
    for version, claims in (("1.3", copy.deepcopy(INSTRUCTOR_13)), ("1.1", dict(INSTRUCTOR_11))):
        page = await launch(harness, version, claims)
        check_disabled_refusal(page, lms="blackboard", title="Blackboard Learn")
    refused = await harness.tool.repo.recent_launches()
    assert [r.code for r in refused] == ["plugin_disabled", "plugin_disabled"]


async def test_an_lms_without_a_plugin_is_still_served_by_the_generic_plugin(
    blackboard_harness: ToolHarness,
) -> None:
    schoology = {
        "sub": "90210",
        "email": "teacher@schoology.example.edu",
        CLAIM + "roles": [LIS + "membership#Instructor"],
        CLAIM + "context": {"id": "7311", "title": "Biology"},
        CLAIM + "tool_platform": {"product_family_code": "schoology"},
        CLAIM + "launch_presentation": {"return_url": "https://app.schoology.com/course/7311"},
    }
    _, me = await launched(blackboard_harness, "1.3", schoology)
    assert (me["lms"], me["role"], me["domain"]) == ("generic", "instructor", "app.schoology.com")
