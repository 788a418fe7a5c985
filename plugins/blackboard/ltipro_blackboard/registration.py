"""What a Blackboard Learn administrator enters to install the tool.

Learn has no registration form of its own for LTI 1.3: a tool is registered once on
Anthology's Developer Portal (the values below), which answers with an Application ID,
and each Learn site deploys it by that id (Administrator Panel > Integrations > LTI
Tool Providers > Register LTI 1.3/Advantage Tool). On the site, the tool's institution
policies decide which user fields Learn sends (name and email only when ticked), its
custom parameters add Learn's template variables, and a placement puts it in courses.

The custom parameters carry what Learn's LTI claims lack: the course's primary key
(``_122_1``), the course role letter that tells a Course Builder or a Teaching Assistant
from an Instructor, and the username.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ltipro.extension import RegistrationArtifact
from ltipro.hookspecs import hookimpl
from ltipro.lti.registration import TOOL_DESCRIPTION, TOOL_NAME
from ltipro.registration_artifacts import (
    STANDARD_CUSTOM,
    cartridge_artifact,
    custom_lines,
    tool_urls,
    values_artifact,
)

NAME = "blackboard"
SIGNING_ALGORITHM = "RS256"

# Learn fills its @X@ template variables and the LTI specification's $ variables.
CUSTOM_PARAMETERS: Mapping[str, str] = {
    "course_pk": "@X@course.pk_string@X@",
    "course_role": "@X@membership.role@X@",
    "username": "@X@user.id@X@",
    **STANDARD_CUSTOM,
}
USER_FIELDS = ("Role in Course", "Name", "Email Address")


def developer_portal_values(base_url: str) -> list[tuple[str, str]]:
    """Anthology's Developer Portal form for a new LTI 1.3 application."""
    urls = tool_urls(base_url)
    return [
        ("Application name", TOOL_NAME),
        ("Description", TOOL_DESCRIPTION),
        ("Domain(s)", urls.domain),
        ("My Integration supports LTI 1.3", "Yes"),
        ("Login Initiation URL", urls.login),
        ("Tool Redirect URL(s)", urls.launch),
        ("Tool JWKS URL", urls.jwks),
        ("Signing Algorithm", SIGNING_ALGORITHM),
        *(("Custom Parameters", line) for line in custom_lines(CUSTOM_PARAMETERS)),
    ]


def learn_tool_values() -> list[tuple[str, str]]:
    """The deployed tool's settings on the Learn site (Edit on the tool)."""
    return [
        ("Tool Status", "Approved"),
        *(("User Fields to Send", field) for field in USER_FIELDS),
        ("Allow grade service access", "No"),
        ("Allow Membership Service Access", "No"),
        *(("Tool Provider Custom Parameters", line) for line in custom_lines(CUSTOM_PARAMETERS)),
    ]


def placement_values(base_url: str) -> list[tuple[str, str]]:
    """The course placement (Manage Placements > Create Placement)."""
    return [
        ("Label", TOOL_NAME),
        ("Handle", "ltipro-meetings"),
        ("Availability", "Yes"),
        ("Type", "Course tool (Allow student access)"),
        ("Target Link URI", tool_urls(base_url).launch),
    ]


@hookimpl
def registration_artifacts(
    credential: str, base_url: str, settings: Mapping[str, Any]
) -> list[RegistrationArtifact]:
    """The Developer Portal values, the Learn tool and placement settings, LTI 1.1."""
    return [
        values_artifact(
            NAME,
            "Anthology Developer Portal: LTI 1.3 application",
            developer_portal_values(base_url),
            "Register the tool once on the Developer Portal (developer.anthology.com, "
            "formerly developer.blackboard.com). The portal then shows the Application ID "
            "(the client id), the issuer https://blackboard.com, the public keyset URL, "
            "the auth token endpoint and the OIDC auth request endpoint that `ltipro "
            "platforms add` needs.",
        ),
        values_artifact(
            NAME,
            "Learn: the deployed tool's settings",
            learn_tool_values(),
            "Administrator Panel > Integrations > LTI Tool Providers > Register LTI "
            "1.3/Advantage Tool with the Application ID; note the Deployment ID Learn "
            "shows, then set these on the tool. Without Name and Email Address under User "
            "Fields to Send, launches arrive without them.",
        ),
        values_artifact(
            NAME,
            "Learn: course placement",
            placement_values(base_url),
            "On the tool: Manage Placements > Create Placement. A course tool placement "
            "puts Meetings in every course's tools.",
        ),
        cartridge_artifact(
            NAME,
            base_url,
            CUSTOM_PARAMETERS,
            "LTI 1.1 only: Administrator Panel > Integrations > LTI Tool Providers > "
            "Register Provider Domain with the tool's domain, the credential's key and "
            "secret, User Fields to Send: Role in Course, Name, Email Address; then a "
            "course tool placement with the launch URL below.",
        ),
    ]
