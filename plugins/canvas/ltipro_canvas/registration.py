"""What a Canvas administrator pastes into Canvas to install the tool.

- The developer key's JSON configuration (Admin > Developer Keys > + LTI Key, method
  "Paste JSON"), in the schema Canvas documents in "Configuring LTI Advantage Tools"
  (``title``, ``description``, ``oidc_initiation_url``, ``target_link_uri``,
  ``public_jwk_url``, ``scopes``, ``extensions`` for ``canvas.instructure.com`` with its
  ``privacy_level`` and ``placements``, ``custom_fields``).
- The LTI Dynamic Registration URL (+ LTI Registration), where the account has it.
- The LTI 1.1 cartridge XML (Settings > Apps > + App, "Paste XML").

Canvas shares name and email only at privacy level ``public``; it sends its own numeric
ids only when asked for them in custom fields, which is why the key asks for every
``canvas_*`` field the plugin reads.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from ltipro.extension import RegistrationArtifact
from ltipro.hookspecs import hookimpl
from ltipro.lti.registration import TOOL_DESCRIPTION, TOOL_NAME
from ltipro.registration_artifacts import (
    STANDARD_CUSTOM,
    TOOL_ID,
    cartridge_artifact,
    dynamic_registration_artifact,
    tool_urls,
)

NAME = "canvas"
PLATFORM = "canvas.instructure.com"

# Canvas resolves these at each launch; the plugin and the core read every one of them.
CUSTOM_FIELDS: Mapping[str, str] = {
    "canvas_course_id": "$Canvas.course.id",
    "canvas_user_id": "$Canvas.user.id",
    "canvas_user_login_id": "$Canvas.user.loginId",
    "canvas_api_domain": "$Canvas.api.domain",
    **STANDARD_CUSTOM,
    "canvas_previous_context_ids": "$Canvas.course.previousContextIds",
    # The launching user's sections, so students see the meetings held for them.
    "canvas_section_ids": "$Canvas.course.sectionIds",
}
# LTI 1.1 launches from Canvas carry custom_canvas_course_id, _user_id, _user_login_id
# and _api_domain on their own; only the others need asking for.
CUSTOM_FIELDS_11: Mapping[str, str] = {
    **STANDARD_CUSTOM,
    "canvas_previous_context_ids": "$Canvas.course.previousContextIds",
    # The launching user's sections, so students see the meetings held for them.
    "canvas_section_ids": "$Canvas.course.sectionIds",
}


def developer_key(base_url: str) -> dict[str, Any]:
    """The LTI 1.3 developer key configuration Canvas takes as pasted JSON."""
    urls = tool_urls(base_url)

    def placement(name: str, message_type: str) -> dict[str, Any]:
        return {
            "placement": name,
            "message_type": message_type,
            "target_link_uri": urls.launch,
            "text": TOOL_NAME,
            "enabled": True,
        }

    return {
        "title": TOOL_NAME,
        "description": TOOL_DESCRIPTION,
        "oidc_initiation_url": urls.login,
        "target_link_uri": urls.launch,
        # The key-set URL, never the key: the tool rotates its keys without Canvas.
        "public_jwk_url": urls.jwks,
        # The tool uses no LTI Advantage service, so it asks for none.
        "scopes": [],
        "extensions": [
            {
                "platform": PLATFORM,
                "domain": urls.domain,
                "tool_id": TOOL_ID,
                # "public" is the level at which Canvas sends name and email.
                "privacy_level": "public",
                "settings": {
                    "text": TOOL_NAME,
                    "placements": [
                        placement("course_navigation", "LtiResourceLinkRequest"),
                        # Deep linking: a link to the meetings from a module or a page.
                        placement("link_selection", "LtiDeepLinkingRequest"),
                        placement("editor_button", "LtiDeepLinkingRequest"),
                    ],
                },
            }
        ],
        "custom_fields": dict(CUSTOM_FIELDS),
    }


@hookimpl
def registration_artifacts(
    credential: str, base_url: str, settings: Mapping[str, Any]
) -> list[RegistrationArtifact]:
    """The developer-key JSON, the dynamic-registration URL and the LTI 1.1 cartridge."""
    urls = tool_urls(base_url)
    artifacts = [
        RegistrationArtifact(
            NAME,
            "Developer key JSON (LTI 1.3)",
            "json",
            json.dumps(developer_key(base_url), indent=2),
            "Admin > Developer Keys > + Developer Key > + LTI Key; Method: Paste JSON; "
            f"Redirect URIs: {urls.launch}. Save, switch the key ON, then install it with "
            "Settings > Apps > + App, Configuration Type: By Client ID, and give the tool's "
            "administrator the client id and the app's Deployment Id.",
        ),
        dynamic_registration_artifact(
            NAME,
            "Admin > Developer Keys > + Developer Key > + LTI Registration: paste this URL "
            "(only where the account offers LTI Registration). Then switch the new key ON, "
            "install it by client id, and give the tool's administrator the Deployment Id "
            "for `ltipro platforms add-deployment`.",
        ),
        cartridge_artifact(
            NAME,
            base_url,
            CUSTOM_FIELDS_11,
            "LTI 1.1 only: Settings > Apps > + App, Configuration Type: Paste XML, with the "
            "credential's consumer key and shared secret. The XML sets the privacy level to "
            "Public and adds the course navigation link.",
        ),
    ]
    return [a for a in artifacts if a is not None]
