"""Moodle launches through the whole pipeline: login, signed id_token (or signed LTI 1.1
form), plugin, identity options, session, ``/api/v1/me``.

Payloads: the plugin's example launches (sources in ``ltipro_moodle/examples.py``) and
the vendor payloads in ``data/`` (sources in ``data/README.md``).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from ltipro_moodle import course_identifiers, launch_context
from ltipro_moodle.examples import ADMIN_13, EXAMPLES, STUDENT_13, TEACHER_11, TEACHER_13

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
    moodle_harness: ToolHarness, example: ExampleLaunch
) -> None:
    await check_example_launch(
        moodle_harness,
        example,
        lms="moodle",
        launch_context=launch_context,
        course_identifiers=course_identifiers,
    )


def test_every_example_names_its_source_and_the_fields_the_kit_checks() -> None:
    check_examples(EXAMPLES, lms="moodle", roles={"instructor", "ta", "student", "admin"})


async def test_the_published_moodle_payload_launches_as_published(
    moodle_harness: ToolHarness,
) -> None:
    raw = json.loads((DATA / "moodle-13-admin.json").read_text())
    assert raw.pop("_source")
    _, me = await launched(moodle_harness, "1.3", raw)
    assert (me["role"], me["email"], me["user"]["username"]) == (
        "instructor",
        "spam1@gammu.com",
        "admin",
    )
    assert me["course"]["context_id"] == me["course"]["lms_course_id"] == "2"
    assert me["roles"] == ["Administrator", "Instructor"]
    assert me["domain"] == "moodle.lti"


@pytest.mark.parametrize(
    "context_type",
    [
        ["CourseSection"],
        [LIS + "course#CourseSection"],
        "CourseSection",
        LIS + "course#CourseSection",
    ],
    ids=["bare-list", "uri-list", "bare-string", "uri-string"],
)
async def test_the_context_type_reads_the_same_as_a_uri_or_a_bare_name(
    moodle_harness: ToolHarness, context_type: Any
) -> None:
    claims = copy.deepcopy(TEACHER_13)
    claims[CLAIM + "context"]["type"] = context_type
    session, me = await launched(moodle_harness, "1.3", claims)
    assert session.context.attributes["context_type"] == "CourseSection"
    assert me["course"]["lms_course_id"] == "2"


async def test_a_group_context_is_not_taken_for_a_moodle_course(
    moodle_harness: ToolHarness,
) -> None:
    claims = copy.deepcopy(TEACHER_13)
    claims[CLAIM + "context"]["type"] = [LIS + "course#Group"]
    _, me = await launched(moodle_harness, "1.3", claims)
    assert me["course"]["context_id"] == "2"
    assert me["course"]["lms_course_id"] is None


async def test_the_username_comes_from_moodles_extension_in_both_versions(
    moodle_harness: ToolHarness,
) -> None:
    _, me13 = await launched(moodle_harness, "1.3", copy.deepcopy(STUDENT_13))
    _, me11 = await launched(moodle_harness, "1.1", dict(TEACHER_11))
    assert (me13["user"]["username"], me11["user"]["username"]) == ("lalumna", "instr")


async def test_moodle_is_recognised_by_its_extension_without_a_product_code(
    moodle_harness: ToolHarness,
) -> None:
    claims = copy.deepcopy(STUDENT_13)
    del claims[CLAIM + "tool_platform"]
    _, me13 = await launched(moodle_harness, "1.3", claims)
    params = {k: v for k, v in TEACHER_11.items() if not k.startswith("tool_consumer")}
    _, me11 = await launched(moodle_harness, "1.1", params)
    assert me13["lms"] == me11["lms"] == "moodle"


async def test_a_moodle_launch_without_email_names_the_moodle_privacy_setting(
    moodle_harness: ToolHarness,
) -> None:
    claims = copy.deepcopy(STUDENT_13)
    del claims["email"]
    page = await moodle_harness.launch13(claims)
    assert page.status_code == 400
    assert 'data-error-code="missing_email"' in page.text
    assert "Share launcher&#39;s email with tool" in page.text


async def test_broken_moodle_claims_give_a_clear_launch_error_or_are_ignored_never_a_500(
    moodle_harness: ToolHarness,
) -> None:
    claims = copy.deepcopy(TEACHER_13)
    claims[CLAIM + "roles"] = {"Instructor": True}
    page = await moodle_harness.launch13(claims)
    assert page.status_code == 400
    assert 'data-error-code="bad_claim"' in page.text

    # Moodle's own fields in the wrong shape are ignored, not read as text.
    claims = copy.deepcopy(TEACHER_13)
    claims[CLAIM + "ext"] = ["user_username", "x"]
    claims[CLAIM + "context"]["type"] = {"CourseSection": 1}
    claims[CLAIM + "custom"] = {"context_id_history": ["1", "2"]}
    _, me = await launched(moodle_harness, "1.3", claims)
    assert me["lms"] == "moodle"
    assert me["user"]["username"] is None
    assert me["course"]["history"] == []


async def test_a_credential_with_moodle_disabled_refuses_moodle_launches_and_says_why(
    moodle_harness: ToolHarness,
) -> None:
    harness = moodle_harness
    await harness.tool.repo.set_enabled_plugins(harness.credential, ["generic"])
    for version, claims in (("1.3", copy.deepcopy(ADMIN_13)), ("1.1", dict(TEACHER_11))):
        page = await launch(harness, version, claims)
        check_disabled_refusal(page, lms="moodle", title="Moodle")
    refused = await harness.tool.repo.recent_launches()
    assert [r.code for r in refused] == ["plugin_disabled", "plugin_disabled"]


async def test_an_lms_without_a_plugin_is_still_served_by_the_generic_plugin(
    moodle_harness: ToolHarness,
) -> None:
    sakai = {
        "sub": "b0b0bd1b-a1ba-42c2-bdb0-ffe44e5abec6",
        "email": "csev@umich.edu",
        CLAIM + "roles": [LIS + "membership#Learner"],
        CLAIM + "context": {"id": "a77ed1b6", "title": "SI 511", "type": ["CourseSection"]},
        CLAIM + "tool_platform": {"product_family_code": "sakai"},
        CLAIM + "launch_presentation": {"return_url": "https://sakai.example.edu/portal"},
    }
    _, me = await launched(moodle_harness, "1.3", sakai)
    assert (me["lms"], me["role"], me["domain"]) == ("generic", "student", "sakai.example.edu")
