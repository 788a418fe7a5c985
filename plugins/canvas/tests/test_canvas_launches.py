"""Canvas launches through the whole pipeline: login, signed id_token (or signed LTI 1.1
form), plugin, identity options, session, ``/api/v1/me``.

Payloads: the plugin's example launches (sources in ``ltipro_canvas/examples.py``) and
the vendor payloads in ``data/`` (sources in ``data/README.md``).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from ltipro_canvas import course_identifiers, launch_context
from ltipro_canvas.examples import EXAMPLES, STUDENT_11, TA_13, TEACHER_13

from ltipro.context import CLAIM
from ltipro.extension import ExampleLaunch
from ltipro.storage.schema import launch_log
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
    canvas_harness: ToolHarness, example: ExampleLaunch
) -> None:
    await check_example_launch(
        canvas_harness,
        example,
        lms="canvas",
        launch_context=launch_context,
        course_identifiers=course_identifiers,
    )


def test_every_example_names_its_source_and_the_fields_the_kit_checks() -> None:
    check_examples(EXAMPLES, lms="canvas", roles={"instructor", "ta", "student", "admin"})


VENDOR_PAYLOADS = {
    # file: (expected role, email, username, lms course id, readable roles)
    "canvas-13-teacher.json": (
        "instructor",
        "canvasteacher@russfeld.me",
        None,
        "3",
        ["Institution Instructor", "Instructor", "System User"],
    ),
    "canvas-13-admin.json": (
        "instructor",
        "canvasadmin@russfeld.me",
        None,
        "3",
        ["Administrator", "System User"],
    ),
    "canvas-13-student.json": (
        "student",
        "canvasstudent@russfeld.me",
        None,
        "3",
        ["Institution Student", "Learner", "System User"],
    ),
    "canvas-11-teacher.json": (
        "instructor",
        "canvasteacher@russfeld.me",
        "canvasteacher@russfeld.me",
        "1",
        ["Instructor", "Institution Instructor", "System User"],
    ),
    "canvas-11-student.json": (
        "student",
        "canvasstudent@russfeld.me",
        "canvasstudent@russfeld.me",
        "1",
        ["Learner", "Institution Student", "System User"],
    ),
}


@pytest.mark.parametrize("filename", sorted(VENDOR_PAYLOADS))
async def test_published_canvas_payloads_launch_as_published(
    canvas_harness: ToolHarness, filename: str
) -> None:
    raw = json.loads((DATA / filename).read_text())
    assert raw.pop("_source")
    version = "1.3" if "-13-" in filename else "1.1"
    role, email, username, course_id, roles = VENDOR_PAYLOADS[filename]
    _, me = await launched(canvas_harness, version, raw)
    assert (me["role"], me["email"], me["user"]["username"]) == (role, email, username)
    assert me["course"]["lms_course_id"] == course_id
    assert me["roles"] == roles
    assert me["domain"] == "canvas.home.russfeld.me"


async def test_a_ta_is_a_teaching_assistant_and_keeps_the_instructor_role_as_sent(
    canvas_harness: ToolHarness,
) -> None:
    session, me = await launched(canvas_harness, "1.3", copy.deepcopy(TA_13))
    assert session.context.raw_roles == tuple(TA_13[CLAIM + "roles"])
    assert "Teaching Assistant" in session.context.roles
    assert "Instructor" in session.context.roles
    assert me["role"] == "instructor"


async def test_the_credentials_instructor_roles_decide_whether_a_ta_counts_as_instructor(
    canvas_harness: ToolHarness,
) -> None:
    harness = canvas_harness
    options = harness.credential.options.updated({"instructor_roles": ["Teaching Assistant"]})
    await harness.tool.repo.set_options(harness.credential, options)
    _, me = await launched(harness, "1.3", copy.deepcopy(TA_13))
    assert me["role"] == "instructor"
    _, teacher = await launched(harness, "1.3", copy.deepcopy(TEACHER_13))
    assert teacher["role"] == "student"  # Instructor alone is no longer listed

    options = options.updated({"instructor_roles": ["Administrator"]})
    await harness.tool.repo.set_options(harness.credential, options)
    _, me = await launched(harness, "1.3", copy.deepcopy(TA_13))
    assert me["role"] == "student"


async def test_unresolved_canvas_variables_are_treated_as_missing(
    canvas_harness: ToolHarness,
) -> None:
    claims = copy.deepcopy(TA_13)
    claims[CLAIM + "custom"] = {
        "canvas_course_id": "$Canvas.course.id",
        "canvas_user_login_id": "$Canvas.user.loginId",
        "canvas_api_domain": "$Canvas.api.domain",
        "context_id_history": "$Context.id.history",
    }
    claims["given_name"] = "$Person.name.given"
    session, me = await launched(canvas_harness, "1.3", claims)
    assert me["user"]["username"] is None
    assert me["user"]["given_name"] is None
    # The course id falls back to Canvas's service URLs, the domain to the return URL.
    assert me["course"]["lms_course_id"] == "3"
    assert me["course"]["history"] == []
    assert me["domain"] == "canvas.home.russfeld.me"
    assert not [v for v in session.context.attributes.values() if v.startswith("$")]


async def test_a_canvas_launch_without_email_names_the_canvas_privacy_setting(
    canvas_harness: ToolHarness,
) -> None:
    claims = copy.deepcopy(TEACHER_13)
    claims["email"] = "$Person.email.primary"
    page = await canvas_harness.launch13(claims)
    assert page.status_code == 400
    assert 'data-error-code="missing_email"' in page.text
    assert "privacy level" in page.text
    assert "Developer Keys" in page.text


async def test_numeric_custom_fields_and_the_api_domain_are_read_as_canvas_sends_them(
    canvas_harness: ToolHarness,
) -> None:
    claims = copy.deepcopy(TEACHER_13)
    # Older Canvas versions sent the numeric ids as JSON numbers in LTI 1.3.
    claims[CLAIM + "custom"] = {
        "canvas_course_id": 319,
        "canvas_user_id": 77,
        "canvas_user_login_id": "teacher77",
        "canvas_api_domain": "School.Instructure.COM:443",
    }
    session, me = await launched(canvas_harness, "1.3", claims)
    assert me["course"]["lms_course_id"] == "319"
    assert me["user"]["username"] == "teacher77"
    assert me["domain"] == "school.instructure.com"
    assert session.context.attributes["custom_canvas_user_id"] == "77"


async def test_hosted_canvas_is_recognised_by_its_shared_issuer_without_a_product_code(
    canvas_harness: ToolHarness,
) -> None:
    harness = canvas_harness
    # Registered as a generic LMS: the plugin, not the admin's choice, recognises Canvas.
    await harness.use_platform(
        issuer="https://canvas.instructure.com",
        client_id="10000000000042",
        deployment_id="42:d3a2504bba5184799a38f141e8df2335cfa8206d",
        lms="generic",
    )
    claims = copy.deepcopy(TEACHER_13)
    del claims[CLAIM + "tool_platform"]
    claims[CLAIM + "custom"] = {"canvas_api_domain": "school.instructure.com"}
    _, me = await launched(harness, "1.3", claims)
    assert me["lms"] == "canvas"
    assert me["domain"] == "school.instructure.com"


async def test_broken_canvas_claims_give_a_clear_launch_error_not_a_server_error(
    canvas_harness: ToolHarness,
) -> None:
    claims = copy.deepcopy(TEACHER_13)
    claims[CLAIM + "roles"] = "http://purl.imsglobal.org/vocab/lis/v2/membership#Instructor"
    page = await canvas_harness.launch13(claims)
    assert page.status_code == 400
    assert 'data-error-code="bad_claim"' in page.text

    claims = copy.deepcopy(TEACHER_13)
    claims[CLAIM + "context"] = ["not", "an", "object"]
    page = await canvas_harness.launch13(claims)
    assert page.status_code == 400
    assert 'data-error-code="bad_claim"' in page.text


async def test_canvas_fields_of_the_wrong_shape_are_ignored_rather_than_crashing(
    canvas_harness: ToolHarness,
) -> None:
    claims = copy.deepcopy(TEACHER_13)
    claims[CLAIM + "custom"] = {"canvas_course_id": {"id": 3}, "canvas_api_domain": ["x"]}
    claims[CLAIM + "launch_presentation"] = "iframe"
    claims["https://purl.imsglobal.org/spec/lti-ags/claim/endpoint"] = ["broken"]
    claims["https://purl.imsglobal.org/spec/lti-nrps/claim/namesroleservice"] = None
    _, me = await launched(canvas_harness, "1.3", claims)
    assert me["course"]["lms_course_id"] is None
    assert me["domain"] == "lms.test"  # neither the API domain nor a return URL: the issuer


async def test_a_credential_with_canvas_disabled_refuses_canvas_launches_and_says_why(
    canvas_harness: ToolHarness,
) -> None:
    harness = canvas_harness
    await harness.tool.repo.set_enabled_plugins(harness.credential, ["generic"])
    for version, claims in (("1.3", copy.deepcopy(TEACHER_13)), ("1.1", dict(STUDENT_11))):
        page = await launch(harness, version, claims)
        check_disabled_refusal(page, lms="canvas", title="Canvas")
    assert await harness.tool.repo.count(launch_log) == 2
    refused = await harness.tool.repo.recent_launches()
    assert {r.code for r in refused} == {"plugin_disabled"}


async def test_an_lms_without_a_plugin_is_still_served_by_the_generic_plugin(
    canvas_harness: ToolHarness,
) -> None:
    sakai = {
        "sub": "b0b0bd1b-a1ba-42c2-bdb0-ffe44e5abec6",
        "email": "csev@umich.edu",
        "name": "Charles Severance",
        CLAIM + "roles": [LIS + "membership#Instructor"],
        CLAIM + "context": {"id": "a77ed1b6-ceea-4339-ad60-8bbe7219f3b5", "title": "SI 511"},
        CLAIM + "tool_platform": {"product_family_code": "sakai", "version": "23"},
        CLAIM + "launch_presentation": {"return_url": "https://sakai.example.edu/portal"},
    }
    _, me = await launched(canvas_harness, "1.3", sakai)
    assert me["lms"] == "generic"
    assert me["role"] == "instructor"
    assert me["domain"] == "sakai.example.edu"
