"""The credential's identity options applied to launches: roles, email, time zone, domains."""

from __future__ import annotations

from typing import Any

import pytest

from ltipro.context import CourseIdentifiers, LaunchContext
from ltipro.identity import domain_approved, is_instructor, resolve_email, resolve_timezone
from ltipro.lti.claims import readable_role, readable_roles
from ltipro.options import CredentialOptions, OptionError
from ltipro.testing.harness import ToolHarness

CLAIM = "https://purl.imsglobal.org/spec/lti/claim/"
LIS = "http://purl.imsglobal.org/vocab/lis/v2/"


def context(**values: Any) -> LaunchContext:
    base: dict[str, Any] = {
        "lms": "generic",
        "lti_version": "1.3",
        "credential": "test",
        "user_id": "u1",
        "course": CourseIdentifiers("c1"),
        "domain": "lms.example.edu",
        "email": "Person@Example.edu",
    }
    base.update(values)
    return LaunchContext(**base)


@pytest.mark.parametrize(
    ("raw", "readable"),
    [
        (LIS + "membership#Instructor", "Instructor"),
        (LIS + "membership#Learner", "Learner"),
        (LIS + "membership/Instructor#TeachingAssistant", "Teaching Assistant"),
        (LIS + "membership#ContentDeveloper", "Content Developer"),
        (LIS + "institution/person#Administrator", "Administrator"),
        (LIS + "system/person#SysAdmin", "Administrator"),
        (LIS + "institution/person#Instructor", "Institution Instructor"),
        (LIS + "system/person#User", "System User"),
        ("urn:lti:role:ims/lis/TeachingAssistant", "Teaching Assistant"),
        ("urn:lti:instrole:ims/lis/Faculty", "Institution Faculty"),
        ("urn:lti:sysrole:ims/lis/Administrator", "Administrator"),
        ("Instructor", "Instructor"),
        ("Learner", "Learner"),
        ("", None),
    ],
)
def test_roles_are_read_into_readable_names(raw: str, readable: str | None) -> None:
    assert readable_role(raw) == readable


def test_roles_keep_their_order_without_repeats() -> None:
    roles = readable_roles(
        [
            LIS + "membership#Instructor",
            "urn:lti:role:ims/lis/Instructor",
            LIS + "membership#Learner",
        ]
    )
    assert roles == ("Instructor", "Learner")


def test_default_instructor_roles_cover_the_four_named_roles() -> None:
    options = CredentialOptions()
    for role in ("Administrator", "Instructor", "Teaching Assistant", "Course Builder"):
        assert is_instructor(context(roles=(role,)), options), role
    assert not is_instructor(context(roles=("Learner",)), options)
    assert not is_instructor(context(roles=("Mentor",)), options)


def test_teaching_elsewhere_in_the_institution_does_not_make_an_instructor_here() -> None:
    roles = readable_roles([LIS + "institution/person#Instructor", LIS + "membership#Learner"])
    assert not is_instructor(context(roles=roles), CredentialOptions())


def test_instructor_roles_are_editable_and_compared_without_case_or_spaces() -> None:
    options = CredentialOptions().updated({"instructor_roles": ["staff", "TeachingAssistant"]})
    assert is_instructor(context(roles=("Staff",)), options)
    assert is_instructor(context(roles=("Teaching Assistant",)), options)
    assert not is_instructor(context(roles=("Instructor",)), options)


def test_instructor_roles_cannot_be_emptied() -> None:
    with pytest.raises(OptionError, match="at least one role"):
        CredentialOptions().updated({"instructor_roles": []})


def test_email_is_the_lms_email_by_default_in_lower_case() -> None:
    assert resolve_email(context(), CredentialOptions()) == "person@example.edu"


def test_email_from_one_attribute() -> None:
    options = CredentialOptions().updated({"email_attribute": "custom_zoom_email"})
    ctx = context(attributes={"custom_zoom_email": "zoom.person@example.edu"})
    assert resolve_email(ctx, options) == "zoom.person@example.edu"


def test_email_attribute_matches_with_or_without_the_custom_prefix() -> None:
    options = CredentialOptions().updated({"email_attribute": "zoom_email"})
    ctx = context(attributes={"custom_zoom_email": "z@example.edu"})
    assert resolve_email(ctx, options) == "z@example.edu"


def test_email_from_name_attribute_at_domain_attribute() -> None:
    options = CredentialOptions().updated({"email_attribute": "ext_user_username@custom_domain"})
    ctx = context(attributes={"ext_user_username": "jdoe", "custom_domain": "school.edu"})
    assert resolve_email(ctx, options) == "jdoe@school.edu"


def test_email_from_name_attribute_at_a_literal_domain() -> None:
    options = CredentialOptions().updated({"email_attribute": "ext_user_username@school.edu"})
    ctx = context(attributes={"ext_user_username": "jdoe"})
    assert resolve_email(ctx, options) == "jdoe@school.edu"


def test_email_missing_attribute_gives_no_email() -> None:
    options = CredentialOptions().updated({"email_attribute": "custom_missing"})
    assert resolve_email(context(), options) is None


def test_malformed_email_format_option_is_refused() -> None:
    with pytest.raises(OptionError):
        CredentialOptions().updated({"email_attribute": "a@b@c"})


def test_timezone_comes_from_the_tool_by_default() -> None:
    options = CredentialOptions().updated({"default_timezone": "Europe/Paris"})
    assert resolve_timezone(context(timezone="America/Denver"), options) == "Europe/Paris"


def test_timezone_comes_from_the_lms_when_chosen_and_sent() -> None:
    options = CredentialOptions().updated({"timezone_origin": "lms", "default_timezone": "UTC"})
    assert resolve_timezone(context(timezone="America/Denver"), options) == "America/Denver"
    assert resolve_timezone(context(timezone=None), options) == "UTC"
    assert resolve_timezone(context(timezone="Not/AZone"), options) == "UTC"


def test_unknown_default_timezone_is_refused() -> None:
    with pytest.raises(OptionError, match="time zone"):
        CredentialOptions().updated({"default_timezone": "Mars/Olympus"})


def test_empty_approved_domains_allow_every_domain() -> None:
    assert domain_approved("anything.example", CredentialOptions())


def test_approved_domains_are_normalised_and_enforced() -> None:
    options = CredentialOptions().updated(
        {"approved_domains": ["HTTPS://Canvas.Example.edu/", "moodle.example.edu:443"]}
    )
    assert options.approved_domains == ("canvas.example.edu", "moodle.example.edu")
    assert domain_approved("canvas.example.edu", options)
    assert not domain_approved("evil.example", options)


def test_approved_domain_that_is_no_domain_is_refused() -> None:
    with pytest.raises(OptionError, match="not a domain"):
        CredentialOptions().updated({"approved_domains": ["not a domain!"]})


# -- through launches -------------------------------------------------------------------------

LAUNCH: dict[str, Any] = {
    "sub": "u-42",
    "name": "Ida Noether",
    "email": "ida@example.edu",
    CLAIM + "roles": [LIS + "membership#Learner"],
    CLAIM + "context": {"id": "course-42", "title": "Algebra"},
    CLAIM + "resource_link": {"id": "l-42"},
    CLAIM + "launch_presentation": {"return_url": "https://canvas.example.edu/courses/42"},
    CLAIM + "custom": {"person_address_timezone": "America/Chicago", "zoom_user": "inoether"},
}


async def set_options(harness: ToolHarness, **changes: Any) -> None:
    credential = await harness.refresh_credential()
    await harness.tool.repo.set_options(credential, credential.options.updated(changes))


async def test_launch_follows_the_instructor_roles_option(harness: ToolHarness) -> None:
    page = await harness.launch13(LAUNCH)
    assert (await harness.me(page))["role"] == "student"
    await set_options(harness, instructor_roles=["Learner"])
    page = await harness.launch13(LAUNCH)
    assert (await harness.me(page))["role"] == "instructor"


async def test_launch_follows_the_email_and_timezone_options(harness: ToolHarness) -> None:
    await set_options(
        harness,
        email_attribute="zoom_user@school.example.edu",
        timezone_origin="lms",
    )
    me = await harness.me(await harness.launch13(LAUNCH))
    assert me["email"] == "inoether@school.example.edu"
    assert me["timezone"] == "America/Chicago"


async def test_launch_from_an_unapproved_domain_gets_the_custom_error(harness: ToolHarness) -> None:
    await set_options(
        harness,
        approved_domains=["moodle.example.edu"],
        launch_error_message="Use the university's Moodle to reach meetings.",
        sign_in_url="https://example.zoom.us/signin",
    )
    page = await harness.launch13(LAUNCH)
    assert page.status_code == 403
    assert 'data-error-code="domain_not_approved"' in page.text
    assert "Use the university&#39;s Moodle to reach meetings." in page.text
    assert 'href="https://example.zoom.us/signin"' in page.text
    assert "frame-ancestors 'self' moodle.example.edu" in page.headers["content-security-policy"]


async def test_pages_may_be_framed_only_by_approved_domains(harness: ToolHarness) -> None:
    await set_options(harness, approved_domains=["canvas.example.edu"])
    page = await harness.launch13(LAUNCH)
    assert page.status_code == 200
    csp = page.headers["content-security-policy"]
    assert "frame-ancestors 'self' canvas.example.edu;" in csp


async def test_pages_may_be_framed_anywhere_when_no_domain_is_approved(
    harness: ToolHarness,
) -> None:
    page = await harness.launch13(LAUNCH)
    assert "frame-ancestors *;" in page.headers["content-security-policy"]


async def test_launch_without_email_names_the_setting_to_change(harness: ToolHarness) -> None:
    claims = {k: v for k, v in LAUNCH.items() if k != "email"}
    page = await harness.launch13(claims)
    assert page.status_code == 400
    assert 'data-error-code="missing_email"' in page.text
    assert "email" in page.text.lower()
    log = await harness.tool.repo.recent_launches()
    assert log[0].code == "missing_email"
