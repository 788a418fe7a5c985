"""What the Canvas plugin gives an admin to paste into Canvas, checked against Canvas's schema.

The developer-key rules below are the schema Canvas validates a pasted LTI 1.3 JSON
configuration with (instructure/canvas-lms lib/schemas/lti_configuration.rb and
internal_lti_configuration.rb, documented in doc/api/lti_dev_key_config.md, "Anatomy of
a JSON configuration"): required ``title``, ``description``, ``target_link_uri`` and
``oidc_initiation_url``; ``public_jwk`` or ``public_jwk_url``; ``extensions`` items with
``platform`` and ``settings.placements``; the placement, message-type, privacy-level and
scope values Canvas accepts.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs, urlsplit

import ltipro_canvas
from ltipro_canvas import course_identifiers, launch_context
from ltipro_canvas.examples import TEACHER_13
from ltipro_canvas.registration import developer_key, registration_artifacts

from ltipro.context import CLAIM, LaunchMessage
from ltipro.lti.registration import credential_for_link
from ltipro.registration_artifacts import credential_artifacts
from ltipro.testing.artifacts import artifact_problems, find_artifact, read_cartridge
from ltipro.testing.harness import SECRET_KEY, TOOL_URL, ToolHarness

BASE = "https://tool.example.edu"

REQUIRED = ("title", "description", "target_link_uri", "oidc_initiation_url")
PLACEMENTS = {
    "account_navigation", "similarity_detection", "assignment_edit", "assignment_group_menu",
    "assignment_index_menu", "assignment_menu", "assignment_selection", "assignment_view",
    "collaboration", "conference_selection", "course_assignments_menu",
    "course_home_sub_navigation", "course_navigation", "course_settings_sub_navigation",
    "discussion_topic_menu", "discussion_topic_index_menu", "editor_button", "file_menu",
    "file_index_menu", "global_navigation", "homework_submission", "link_selection",
    "migration_selection", "module_group_menu", "module_index_menu", "module_menu",
    "post_grades", "quiz_index_menu", "quiz_menu", "resource_selection",
    "submission_type_selection", "student_context_card", "tool_configuration",
    "user_navigation", "wiki_index_menu", "wiki_page_menu",
}  # fmt: skip
MESSAGE_TYPES = {"LtiResourceLinkRequest", "LtiDeepLinkingRequest"}
PRIVACY_LEVELS = {"public", "email_only", "name_only", "anonymous"}
SCOPES = {
    "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem",
    "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem.readonly",
    "https://purl.imsglobal.org/spec/lti-ags/scope/result.readonly",
    "https://purl.imsglobal.org/spec/lti-ags/scope/score",
    "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly",
    "https://canvas.instructure.com/lti/public_jwk/scope/update",
}


def canvas_schema_problems(config: Any) -> list[str]:
    """What Canvas's LTI 1.3 configuration schema would refuse in ``config``."""
    if not isinstance(config, dict):
        return ["the configuration is not a JSON object"]
    problems = [f"{key} is missing" for key in REQUIRED if key not in config]
    problems += [
        f"{key} is not a string"
        for key in (*REQUIRED, "public_jwk_url")
        if key in config and not isinstance(config[key], str)
    ]
    if "public_jwk" not in config and "public_jwk_url" not in config:
        problems.append("neither public_jwk nor public_jwk_url is given")
    for scope in config.get("scopes", []):
        if scope not in SCOPES:
            problems.append(f"Canvas knows no scope {scope!r}")
    custom = config.get("custom_fields", {})
    if not isinstance(custom, dict) or not all(isinstance(v, str) for v in custom.values()):
        problems.append("custom_fields is not an object of strings")
    extensions = config.get("extensions", [])
    if not isinstance(extensions, list):
        return [*problems, "extensions is not an array"]
    for ext in extensions:
        if not isinstance(ext, dict) or "platform" not in ext or "settings" not in ext:
            problems.append("an extension lacks platform or settings")
            continue
        if ext.get("privacy_level", "public") not in PRIVACY_LEVELS:
            problems.append(f"Canvas knows no privacy level {ext['privacy_level']!r}")
        placements = ext["settings"].get("placements")
        if not isinstance(placements, list):
            problems.append("settings.placements is not an array")
            continue
        for placement in placements:
            if placement.get("placement") not in PLACEMENTS:
                problems.append(f"Canvas knows no placement {placement.get('placement')!r}")
            if placement.get("message_type", "LtiResourceLinkRequest") not in MESSAGE_TYPES:
                problems.append(f"Canvas knows no message type {placement['message_type']!r}")
            if not isinstance(placement.get("enabled", True), bool):
                problems.append("a placement's enabled is not a boolean")
    return problems


def canvas_extension(config: dict[str, Any]) -> dict[str, Any]:
    [ext] = [e for e in config["extensions"] if e["platform"] == "canvas.instructure.com"]
    return ext


def placements(config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {p["placement"]: p for p in canvas_extension(config)["settings"]["placements"]}


# -- the schema check catches what Canvas refuses ----------------------------------------------


def test_the_schema_check_catches_what_canvas_would_refuse() -> None:
    good = developer_key(BASE)
    assert canvas_schema_problems(good) == []
    broken = json.loads(json.dumps(good))
    del broken["oidc_initiation_url"], broken["public_jwk_url"]
    broken["scopes"] = ["https://example.com/scope"]
    broken["extensions"][0]["privacy_level"] = "everyone"
    broken["extensions"][0]["settings"]["placements"][0]["placement"] = "course_nav"
    assert canvas_schema_problems(broken) == [
        "oidc_initiation_url is missing",
        "neither public_jwk nor public_jwk_url is given",
        "Canvas knows no scope 'https://example.com/scope'",
        "Canvas knows no privacy level 'everyone'",
        "Canvas knows no placement 'course_nav'",
    ]


# -- the developer key -----------------------------------------------------------------------------


def test_the_developer_key_is_json_canvas_accepts() -> None:
    [key] = find_artifact(registration_artifacts("college", BASE, {}), "json")
    config = json.loads(key.content)
    assert canvas_schema_problems(config) == []
    assert canvas_extension(config)["platform"] == "canvas.instructure.com"


def test_the_developer_key_points_at_the_tool_and_its_key_set_never_a_key() -> None:
    config = developer_key(BASE + "/")
    assert config["oidc_initiation_url"] == BASE + "/lti/login"
    assert config["target_link_uri"] == BASE + "/lti/launch"
    assert config["public_jwk_url"] == BASE + "/.well-known/jwks.json"
    assert "public_jwk" not in config
    assert canvas_extension(config)["domain"] == "tool.example.edu"
    assert {p["target_link_uri"] for p in placements(config).values()} == {BASE + "/lti/launch"}


def test_the_developer_key_asks_canvas_for_name_and_email() -> None:
    # Canvas sends name and email only at the "public" privacy level.
    assert canvas_extension(developer_key(BASE))["privacy_level"] == "public"


def test_the_developer_key_puts_the_tool_in_course_navigation_and_offers_deep_linking() -> None:
    found = placements(developer_key(BASE))
    assert found["course_navigation"]["message_type"] == "LtiResourceLinkRequest"
    assert found["course_navigation"]["enabled"] is True
    assert found["link_selection"]["message_type"] == "LtiDeepLinkingRequest"
    assert found["editor_button"]["message_type"] == "LtiDeepLinkingRequest"


def test_the_developer_key_asks_for_every_custom_field_the_plugin_reads() -> None:
    custom = developer_key(BASE)["custom_fields"]
    read = {
        ltipro_canvas.COURSE_ID,
        ltipro_canvas.USER_ID,
        ltipro_canvas.LOGIN_ID,
        ltipro_canvas.API_DOMAIN,
        "person_address_timezone",  # the core's time zone option
        "context_id_history",
        "canvas_previous_context_ids",
        "canvas_section_ids",  # the core's meetings listing for sections
    }
    assert set(custom) == read
    assert {"context_id_history", "canvas_previous_context_ids"} <= set(
        ltipro_canvas.HISTORY_PARAMETERS
    )
    # The same variables the plugin tells admins to use for these attributes.
    for name, variable in custom.items():
        assert ltipro_canvas.VARIABLES[name] == variable


def test_a_launch_with_the_custom_fields_canvas_resolves_gives_the_full_context() -> None:
    resolved = {
        "$Canvas.course.id": "3",
        "$Canvas.user.id": "2",
        "$Canvas.user.loginId": "canvasteacher",
        "$Canvas.api.domain": "school.instructure.com",
        "$Person.address.timezone": "America/Chicago",
        "$Context.id.history": "prev-context-1,prev-context-2",
        "$Canvas.course.previousContextIds": "prev-context-3",
        "$Canvas.course.sectionIds": "41,42",
    }
    custom = {name: resolved[v] for name, v in developer_key(BASE)["custom_fields"].items()}
    claims = {**TEACHER_13, CLAIM + "custom": custom}
    message = LaunchMessage(version="1.3", claims=claims, credential="college")
    context = launch_context(message)
    course = course_identifiers(message)
    assert (context.username, context.domain, context.timezone) == (
        "canvasteacher",
        "school.instructure.com",
        "America/Chicago",
    )
    assert course is not None
    assert course.lms_course_id == "3"
    assert course.history == ("prev-context-1", "prev-context-2", "prev-context-3")
    assert context.attributes["custom_canvas_section_ids"] == "41,42"


# -- every artefact ------------------------------------------------------------------------------


def test_every_canvas_artefact_is_valid_names_the_tool_and_carries_no_key() -> None:
    artifacts = registration_artifacts("college", BASE, {})
    assert [a.kind for a in artifacts] == ["json", "xml"]
    assert {a.lms for a in artifacts} == {"canvas"}
    assert artifact_problems(artifacts, BASE) == []


def test_the_lti11_cartridge_asks_for_name_email_course_navigation_and_history() -> None:
    [xml] = find_artifact(registration_artifacts("college", BASE, {}), "xml")
    cartridge = read_cartridge(xml.content)
    canvas = cartridge.extensions["canvas.instructure.com"]
    assert canvas["privacy_level"] == "public"
    assert canvas["course_navigation"]["enabled"] == "true"
    assert canvas["course_navigation"]["url"] == BASE + "/lti/launch"
    assert cartridge.custom["context_id_history"] == "$Context.id.history"
    assert cartridge.custom["person_address_timezone"] == "$Person.address.timezone"
    # LTI 1.1 launches from Canvas carry the canvas_* ids on their own.
    assert ltipro_canvas.COURSE_ID not in cartridge.custom


async def test_through_the_core_canvas_gets_the_credentials_registration_url(
    canvas_harness: ToolHarness,
) -> None:
    tool, credential = canvas_harness.tool, canvas_harness.credential
    artifacts = await credential_artifacts(tool, credential, "canvas")
    assert [a.kind for a in artifacts] == ["json", "url", "xml"]
    assert artifact_problems(artifacts, TOOL_URL) == []
    [url] = find_artifact(artifacts, "url")
    token = parse_qs(urlsplit(url.content).query)["credential"][0]
    assert (await credential_for_link(tool.repo, SECRET_KEY, token)).id == credential.id
    assert "LTI Registration" in url.help
