"""Brightspace launches through the whole pipeline: login, signed id_token (or signed LTI 1.1
form), plugin, identity options, session, ``/api/v1/me``.

Payloads: the plugin's example launches (sources in ``ltipro_d2l/examples.py``) and
the vendor payloads in ``data/`` (sources in ``data/README.md``).
"""

from __future__ import annotations

import copy
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

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
    assert me["lms"] == context.lms == "d2l"


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda e: e.name)
async def test_every_example_launches_through_the_pipeline_with_every_field_as_expected(
    d2l_harness: ToolHarness, example: ExampleLaunch
) -> None:
    claims = dict(example.claims)
    session, me = await launched(d2l_harness, example.version, claims)
    check_expected(dict(example.expected), session, me)
    # Every other field of the context is what the plugin reads from the signed message:
    # nothing is lost or changed between the LMS and the session.
    assert session.context == read(signed_message(d2l_harness, example.version, claims))
    assert me["credential"] == "test"


def test_every_example_names_its_source_and_the_fields_the_kit_checks() -> None:
    roles = {e.role for e in EXAMPLES}
    assert roles == {"instructor", "ta", "student", "admin"}
    assert {e.version for e in EXAMPLES} == {"1.3", "1.1"}
    for example in EXAMPLES:
        assert example.lms == "d2l"
        assert example.source and example.title
        assert REQUIRED_EXPECTATIONS <= set(example.expected), example.name
        if example.version == "1.3":
            assert not set(SIGNED_BY_PLATFORM) & set(example.claims), example.name
            assert not {CLAIM + c for c in SIGNED_CLAIMS} & set(example.claims), example.name
        else:
            assert not [k for k in example.claims if k.startswith("oauth_")], example.name


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
        assert page.status_code == 403
        assert 'data-error-code="plugin_disabled"' in page.text
        assert "Launches from D2L Brightspace are turned off" in page.text
        assert "ltipro plugins enable --credential test d2l" in page.text
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
