"""Brightspace launches through the whole pipeline: login, signed id_token (or signed LTI 1.1
form), plugin, identity options, session, ``/api/v1/me``.

Payloads: the plugin's example launches (sources in ``ltipro_d2l/examples.py``) and
the vendor payloads in ``data/`` (sources in ``data/README.md``).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from ltipro_d2l import course_identifiers, launch_context
from ltipro_d2l.examples import (
    BRIGHTSPACE,
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
    d2l_harness: ToolHarness, example: ExampleLaunch
) -> None:
    await check_example_launch(
        d2l_harness,
        example,
        lms="d2l",
        launch_context=launch_context,
        course_identifiers=course_identifiers,
    )


def test_every_example_names_its_source_and_the_fields_the_kit_checks() -> None:
    check_examples(EXAMPLES, lms="d2l", roles={"instructor", "ta", "student", "admin"})


async def test_the_published_brightspace_payload_launches_as_published(
    d2l_harness: ToolHarness,
) -> None:
    raw = json.loads((DATA / "d2l-11-instructor.json").read_text())
    assert raw.pop("_source")
    session, me = await launched(d2l_harness, "1.1", raw)
    assert (me["role"], me["email"], me["user"]["username"]) == (
        "instructor",
        "cbowen@msu.edu",
        "cbowen",
    )
    assert me["course"]["lms_course_id"] == "744563"
    assert me["domain"] == "d2l.msu.edu"
    assert session.context.attributes["ext_d2l_user_id"] == "11697"


async def test_the_brightspace_claim_reads_the_same_at_the_top_or_inside_launch_presentation(
    d2l_harness: ToolHarness,
) -> None:
    nested = copy.deepcopy(INSTRUCTOR_13)
    nested[CLAIM + "launch_presentation"][BRIGHTSPACE] = nested.pop(BRIGHTSPACE)
    top, _ = await launched(d2l_harness, "1.3", copy.deepcopy(INSTRUCTOR_13))
    inside, _ = await launched(d2l_harness, "1.3", nested)
    for session in (top, inside):
        assert session.context.username == "pat.instructor"
        assert session.context.attributes["ext_d2l_orgdefinedid"] == "G03518416"
        assert session.context.attributes["ext_d2l_user_id"] == "337"
    assert (
        top.context.attributes["ext_d2l_tenantid"] == inside.context.attributes["ext_d2l_tenantid"]
    )


async def test_the_user_id_comes_from_a_tenant_underscore_user_sub_when_the_claim_lacks_it(
    d2l_harness: ToolHarness,
) -> None:
    claims = copy.deepcopy(INSTRUCTOR_13)
    claims[BRIGHTSPACE] = {"username": "pat.instructor"}
    session, me = await launched(d2l_harness, "1.3", claims)
    assert me["user"]["id"] == "7c3605d7-5a18-4a21-b066-4992bdb0b6d3_337"
    assert session.context.attributes["ext_d2l_user_id"] == "337"


async def test_an_email_rule_on_brightspace_attributes_works_in_both_versions(
    d2l_harness: ToolHarness,
) -> None:
    harness = d2l_harness
    options = harness.credential.options.updated(
        {"email_attribute": "ext_d2l_username@example.edu"}
    )
    await harness.tool.repo.set_options(harness.credential, options)
    _, me13 = await launched(harness, "1.3", copy.deepcopy(INSTRUCTOR_13))
    _, me11 = await launched(harness, "1.1", dict(INSTRUCTOR_11))
    assert me13["email"] == "pat.instructor@example.edu"
    assert me11["email"] == "cbowen@example.edu"


async def test_brightspace_is_recognised_by_its_claim_or_fields_without_a_product_code(
    d2l_harness: ToolHarness,
) -> None:
    claims = copy.deepcopy(STUDENT_13)  # the claim is inside launch_presentation here
    del claims[CLAIM + "tool_platform"]
    _, me13 = await launched(d2l_harness, "1.3", claims)
    params = {k: v for k, v in INSTRUCTOR_11.items() if not k.startswith("tool_consumer")}
    _, me11 = await launched(d2l_harness, "1.1", params)
    assert me13["lms"] == me11["lms"] == "d2l"


async def test_the_org_unit_comes_from_service_urls_when_the_context_id_is_not_one(
    d2l_harness: ToolHarness,
) -> None:
    claims = copy.deepcopy(INSTRUCTOR_13)
    claims[CLAIM + "context"]["id"] = "course-offering-522938"
    _, me = await launched(d2l_harness, "1.3", claims)
    assert me["course"]["context_id"] == "course-offering-522938"
    assert me["course"]["lms_course_id"] == "522938"


async def test_a_brightspace_launch_without_email_names_the_brightspace_setting(
    d2l_harness: ToolHarness,
) -> None:
    params = dict(INSTRUCTOR_11)
    del params["lis_person_contact_email_primary"]
    page = await d2l_harness.launch11(params)
    assert page.status_code == 400
    assert 'data-error-code="missing_email"' in page.text
    assert "Send user email to tool provider" in page.text


async def test_broken_brightspace_claims_give_a_clear_launch_error_or_are_ignored_never_a_500(
    d2l_harness: ToolHarness,
) -> None:
    claims = copy.deepcopy(TA_13)
    claims[CLAIM + "context"] = "522938"
    page = await d2l_harness.launch13(claims)
    assert page.status_code == 400
    assert 'data-error-code="bad_claim"' in page.text

    # Brightspace's own claim in the wrong shapes is ignored, not read as text.
    claims = copy.deepcopy(TA_13)
    claims[BRIGHTSPACE] = {"username": ["x"], "user_id": {"id": 1}, "Context.id.history": 5}
    claims["sub"] = "not-a-tenant-user"
    session, me = await launched(d2l_harness, "1.3", claims)
    assert me["lms"] == "d2l"
    assert me["user"]["username"] is None
    assert me["course"]["history"] == []
    assert "ext_d2l_user_id" not in session.context.attributes


async def test_a_credential_with_d2l_disabled_refuses_brightspace_launches_and_says_why(
    d2l_harness: ToolHarness,
) -> None:
    harness = d2l_harness
    await harness.tool.repo.set_enabled_plugins(harness.credential, ["generic"])
    for version, claims in (("1.3", copy.deepcopy(INSTRUCTOR_13)), ("1.1", dict(INSTRUCTOR_11))):
        page = await launch(harness, version, claims)
        check_disabled_refusal(page, lms="d2l", title="D2L Brightspace")
    refused = await harness.tool.repo.recent_launches()
    assert [r.code for r in refused] == ["plugin_disabled", "plugin_disabled"]


async def test_an_lms_without_a_plugin_is_still_served_by_the_generic_plugin(
    d2l_harness: ToolHarness,
) -> None:
    sakai = {
        "sub": "b0b0bd1b-a1ba-42c2-bdb0-ffe44e5abec6",
        "email": "csev@umich.edu",
        CLAIM + "roles": [LIS + "membership#Instructor"],
        CLAIM + "context": {"id": "a77ed1b6", "title": "SI 511"},
        CLAIM + "tool_platform": {"product_family_code": "sakai"},
        CLAIM + "launch_presentation": {"return_url": "https://sakai.example.edu/portal"},
    }
    _, me = await launched(d2l_harness, "1.3", sakai)
    assert (me["lms"], me["role"], me["domain"]) == ("generic", "instructor", "sakai.example.edu")
