"""What a Brightspace administrator enters in Brightspace to install the tool.

LTI 1.3 tools are registered under Admin Tools > Manage Extensibility > LTI Advantage >
Register Tool, dynamically (the registration URL) or with the "Standard" form (the
values below). A registration launches nothing until it has a deployment: the
deployment names the org units that may use the tool and, in its security settings,
which user information Brightspace sends. Without Name and Email ticked there, every
launch arrives without them. A link on the deployment, added to the course navbar,
puts the tool in every course's navigation.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ltipro.extension import RegistrationArtifact
from ltipro.hookspecs import hookimpl
from ltipro.lti.registration import TOOL_DESCRIPTION, TOOL_NAME
from ltipro.registration_artifacts import (
    cartridge_artifact,
    custom_lines,
    dynamic_registration_artifact,
    tool_urls,
    values_artifact,
)

NAME = "d2l"

# Brightspace's list of LTI substitution variables includes $Context.id.history but
# not $Person.address.timezone, so the time zone is not asked for.
CUSTOM_PARAMETERS: Mapping[str, str] = {"context_id_history": "$Context.id.history"}
SECURITY_SETTINGS = (
    "Org Unit Information",
    "Link Information",
    "Name",
    "First Name",
    "Last Name",
    "Email",
    "User ID",
    "Username",
    "Org Defined Id",
)


def registration_values(base_url: str) -> list[tuple[str, str]]:
    """The "Standard" registration form, field by field, as Brightspace labels them."""
    urls = tool_urls(base_url)
    return [
        ("Name", TOOL_NAME),
        ("Description", TOOL_DESCRIPTION),
        ("Domain", urls.base_url),
        ("Redirect URLs", urls.launch),
        ("OpenID Connect Login URL", urls.login),
        ("Target Link URI", urls.launch),
        ("Keyset URL", urls.jwks),
        ("Extensions", "Deep Linking"),
        ("Roles", "Send Institution Role"),
        *(("Custom Parameters", line) for line in custom_lines(CUSTOM_PARAMETERS)),
    ]


def deployment_values(base_url: str) -> list[tuple[str, str]]:
    """The deployment and its course link, which the registration alone does not make."""
    urls = tool_urls(base_url)
    return [
        ("Deployment name", TOOL_NAME),
        ("Deployment extensions", "Deep Linking"),
        *(("Deployment security settings", setting) for setting in SECURITY_SETTINGS),
        ("Deployment org units", "the org units (and their descendants) that use the tool"),
        ("Link name", TOOL_NAME),
        ("Link URL", urls.launch),
        ("Link type", "Basic Launch"),
        ("Course navigation", f"add the {TOOL_NAME} link to the course navbar"),
    ]


@hookimpl
def registration_artifacts(
    credential: str, base_url: str, settings: Mapping[str, Any]
) -> list[RegistrationArtifact]:
    """The dynamic-registration URL, the manual registration and deployment, LTI 1.1."""
    artifacts = [
        dynamic_registration_artifact(
            NAME,
            "Admin Tools > Manage Extensibility > LTI Advantage > Register Tool > Dynamic: "
            "paste this URL as the tool initiation registration endpoint and allow the "
            "tool to configure a deployment. Brightspace leaves the registration disabled: "
            "enable it, and check the deployment's security settings and org units.",
        ),
        values_artifact(
            NAME,
            "LTI Advantage registration (Standard)",
            registration_values(base_url),
            "Admin Tools > Manage Extensibility > LTI Advantage > Register Tool > Standard. "
            "Brightspace then shows the Client Id, Brightspace Keyset URL, OAuth2 Access "
            "Token URL, OpenID Connect Authentication Endpoint and Issuer that "
            "`ltipro platforms add` needs.",
        ),
        values_artifact(
            NAME,
            "LTI Advantage deployment and link",
            deployment_values(base_url),
            "On the registration: View Deployments > New Deployment (note its Deployment "
            "Id), then View Links > New Link. Without Name and Email in the security "
            "settings, launches arrive without them.",
        ),
        cartridge_artifact(
            NAME,
            base_url,
            CUSTOM_PARAMETERS,
            "LTI 1.1 only: Admin Tools > External Learning Tools > Manage Tool Providers > "
            "New Tool Provider, with the launch URL below as Launch Point, the credential's "
            "consumer key and secret, and Send user name and Send user email ticked.",
        ),
    ]
    return [a for a in artifacts if a is not None]
