"""Moodle launches through the whole pipeline: login, signed id_token (or signed LTI 1.1
form), plugin, identity options, session, ``/api/v1/me``.

Payloads: the plugin's example launches (sources in ``ltipro_moodle/examples.py``) and
the vendor payloads in ``data/`` (sources in ``data/README.md``).
"""

from __future__ import annotations

import copy
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from ltipro_moodle import course_identifiers, launch_context
from ltipro_moodle.examples import ADMIN_13, EXAMPLES, STUDENT_13, TEACHER_11, TEACHER_13

from ltipro.context import CLAIM, LaunchContext, LaunchMessage
from ltipro.extension import ExampleLaunch
from ltipro.sessions import Session
from ltipro.testing.harness import TOOL_URL, ToolHarness

DATA = Path(__file__).parent / "data"
LIS = "http://purl.imsglobal.org/vocab/lis/v2/"
SIGNED_BY_PLATFORM = ("iss", "aud", "azp", "nonce", "iat", "exp")
SIGNED_CLAIMS = ("deployment_id", "target_link_uri")
REQUIRED_EXPECTATIONS = {
    "user_id",
    "email",
    "role",
    "roles",
    "name",
    "username",
    "context_id",
    "lms_course_id",
    "history",
    "domain",
    "lti_version",
}


async def launch(harness: ToolHarness, version: str, claims: dict[str, Any]) -> Any:
    if version == "1.3":
        return await harness.launch13(claims)
    return await harness.launch11(claims)


async def launched(
    harness: ToolHarness, version: str, claims: dict[str, Any]
) -> tuple[Session, dict[str, Any]]:
    """Launch, and return the session the launch opened with ``/api/v1/me``'s answer."""
    page = await launch(harness, version, claims)
    assert page.status_code == 200, page.text
    session = await harness.tool.sessions.load(harness.session_token(page))
    assert session is not None
    return session, await harness.me(page)


def signed_message(harness: ToolHarness, version: str, claims: dict[str, Any]) -> LaunchMessage:
    """The message the tool validates for ``claims``, as the simulated platform signs it."""
    if version == "1.3":
        body = harness.platform.full_claims(claims, nonce="n")
        return LaunchMessage(
            version="1.3",
            claims=body,
            credential="test",
            configured_lms="generic",
            issuer=harness.platform.issuer,
            client_id=harness.platform.client_id,
            deployment_id=harness.platform.deployment_id,
        )
    form = harness.platform.lti11_form(claims, url=f"{TOOL_URL}/lti/launch")
    return LaunchMessage(version="1.1", claims=form, credential="test")


def read(message: LaunchMessage) -> LaunchContext:
    """What the plugin makes of a message, course included (as the core combines them)."""
    return replace(launch_context(message), course=course_identifiers(message))


def check_expected(expected: dict[str, Any], session: Session, me: dict[str, Any]) -> None:
    context, identity, course = session.context, session.identity, session.context.course
    actual = {
        "user_id": (context.user_id, me["user"]["id"]),
        "email": (identity.email, me["email"]),
        "role": (identity.role, me["role"]),
        "roles": (list(context.roles), me["roles"]),
        "name": (context.name, me["user"]["name"]),
        "given_name": (context.given_name, me["user"]["given_name"]),
        "family_name": (context.family_name, me["user"]["family_name"]),
        "username": (context.username, me["user"]["username"]),
        "context_id": (course and course.context_id, me["course"] and me["course"]["context_id"]),
        "lms_course_id": (
            course and course.lms_course_id,
            me["course"] and me["course"]["lms_course_id"],
        ),
        "course_title": (course and course.title, me["course"] and me["course"]["title"]),
        "history": (list(course.history) if course else None, me["course"]["history"]),
        "domain": (context.domain, me["domain"]),
        "locale": (context.locale, me["locale"]),
        "lti_version": (context.lti_version, me["lti_version"]),
    }
    for key, value in expected.items():
        assert key in actual, f"the test does not know how to check {key!r}"
        assert actual[key] == (value, value), f"{key}: {actual[key]} != {value!r}"
    assert me["lms"] == context.lms == "moodle"


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda e: e.name)
async def test_every_example_launches_through_the_pipeline_with_every_field_as_expected(
    moodle_harness: ToolHarness, example: ExampleLaunch
) -> None:
    claims = dict(example.claims)
    session, me = await launched(moodle_harness, example.version, claims)
    check_expected(dict(example.expected), session, me)
    # Every other field of the context is what the plugin reads from the signed message:
    # nothing is lost or changed between the LMS and the session.
    assert session.context == read(signed_message(moodle_harness, example.version, claims))
    assert me["credential"] == "test"


def test_every_example_names_its_source_and_the_fields_the_kit_checks() -> None:
    roles = {e.role for e in EXAMPLES}
    assert roles == {"instructor", "ta", "student", "admin"}
    assert {e.version for e in EXAMPLES} == {"1.3", "1.1"}
    for example in EXAMPLES:
        assert example.lms == "moodle"
        assert example.source and example.title
        assert REQUIRED_EXPECTATIONS <= set(example.expected), example.name
        if example.version == "1.3":
            assert not set(SIGNED_BY_PLATFORM) & set(example.claims), example.name
            assert not {CLAIM + c for c in SIGNED_CLAIMS} & set(example.claims), example.name
        else:
            assert not [k for k in example.claims if k.startswith("oauth_")], example.name


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
        assert page.status_code == 403
        assert 'data-error-code="plugin_disabled"' in page.text
        assert "Launches from Moodle are turned off" in page.text
        assert "ltipro plugins enable --credential test moodle" in page.text
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
