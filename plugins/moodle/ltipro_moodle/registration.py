"""What a Moodle administrator enters in Moodle to install the tool.

Moodle (4.0 and later) registers LTI 1.3 tools by LTI Dynamic Registration (Site
administration > Plugins > Activity modules > External tool > Manage tools, "Tool URL"
and "Add LTI Advantage"); otherwise the same page's "configure a tool manually" form
takes the values below. LTI 1.1 tools take the cartridge's launch URL with the
credential's consumer key and shared secret.

Moodle shares the launching user's name and email only when the tool's privacy settings
say so ("Share launcher's name with tool", "Share launcher's email with tool"); their
default, "Delegate to teacher", leaves it to each activity. Moodle has no course menu
for tools: the tool lives in a course as an External tool activity, which "Tool
configuration usage" offers in the activity chooser.
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
    dynamic_registration_artifact,
    tool_urls,
    values_artifact,
)

NAME = "moodle"
ALWAYS = "Always"
ACTIVITY_CHOOSER = "Show in activity chooser and as a preconfigured tool"

# Moodle resolves both (mod/lti's substitution capabilities include them).
CUSTOM_PARAMETERS: Mapping[str, str] = dict(STANDARD_CUSTOM)


def manual_values(base_url: str) -> list[tuple[str, str]]:
    """The "configure a tool manually" form, field by field, as Moodle labels them."""
    urls = tool_urls(base_url)
    return [
        ("Tool name", TOOL_NAME),
        ("Tool URL", urls.launch),
        ("Tool description", TOOL_DESCRIPTION),
        ("LTI version", "LTI 1.3"),
        ("Public key type", "Keyset URL"),
        ("Public keyset", urls.jwks),
        ("Initiate login URL", urls.login),
        ("Redirection URI(s)", urls.launch),
        *(("Custom parameters", line) for line in custom_lines(CUSTOM_PARAMETERS)),
        ("Tool configuration usage", ACTIVITY_CHOOSER),
        ("Default launch container", "Embed, without blocks"),
        ("Supports Deep Linking (Content-Item Message)", "Yes"),
        ("Content Selection URL", urls.launch),
        ("Share launcher's name with tool", ALWAYS),
        ("Share launcher's email with tool", ALWAYS),
    ]


@hookimpl
def registration_artifacts(
    credential: str, base_url: str, settings: Mapping[str, Any]
) -> list[RegistrationArtifact]:
    """The dynamic-registration URL, the manual LTI 1.3 values and the LTI 1.1 cartridge."""
    artifacts = [
        dynamic_registration_artifact(
            NAME,
            "Site administration > Plugins > Activity modules > External tool > Manage "
            "tools: paste this URL into Tool URL and choose Add LTI Advantage, then "
            "Activate the new tool. Afterwards edit it and set Share launcher's name and "
            "email with tool to Always, and add the custom parameters listed with the "
            "manual values.",
        ),
        values_artifact(
            NAME,
            "Manual LTI 1.3 configuration",
            manual_values(base_url),
            "Site administration > Plugins > Activity modules > External tool > Manage "
            "tools > configure a tool manually. Then open the tool's configuration "
            "details (the list icon on its card) for the values `ltipro platforms add` "
            "needs: Platform ID, Client ID, Deployment ID, Public keyset URL, Access token "
            "URL, Authentication request URL.",
        ),
        cartridge_artifact(
            NAME,
            base_url,
            CUSTOM_PARAMETERS,
            "LTI 1.1 only: in the manual form choose LTI version LTI 1.0/1.1, take Tool URL "
            "(and Secure tool URL) from the launch URLs below, type the credential's "
            "consumer key and shared secret, and set the privacy settings to Always.",
        ),
    ]
    return [a for a in artifacts if a is not None]
