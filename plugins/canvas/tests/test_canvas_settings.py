"""The Canvas plugin's settings: declared, validated with messages an admin can act on."""

from __future__ import annotations

import pytest
from ltipro_canvas.settings import SETTINGS, api_base_url

from ltipro.lmsapi import LmsNotConfigured
from ltipro.plugin_settings import (
    PluginSettingError,
    effective_settings,
    set_plugin_settings,
    setting_values,
)
from ltipro.testing.harness import ToolHarness

SPECS = {spec.key: spec for spec in SETTINGS}


def test_every_setting_can_be_set_per_credential_and_per_platform() -> None:
    assert set(SPECS) == {
        "api_client_id",
        "api_client_secret",
        "admin_access_token",
        "api_base_url",
    }
    assert {spec.scope for spec in SETTINGS} == {"platform"}
    assert {k for k, s in SPECS.items() if s.secret} == {"api_client_secret", "admin_access_token"}
    assert "API Key" in SPECS["api_client_id"].help  # not the LTI key


@pytest.mark.parametrize(
    ("raw", "stored"),
    [
        ("https://school.instructure.com", "https://school.instructure.com"),
        ("  https://School.Instructure.com/ ", "https://school.instructure.com"),
        ("https://canvas.example.edu:8443", "https://canvas.example.edu:8443"),
    ],
)
def test_the_api_address_is_kept_without_a_trailing_slash(raw: str, stored: str) -> None:
    assert SPECS["api_base_url"].clean(raw) == stored


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("school.instructure.com", "such as https://school.instructure.com"),
        ("ftp://school.instructure.com", "such as https://"),
        ("https://school.instructure.com/api/v1", "without a path"),
        ("https://school.instructure.com/?x=1", "without a query"),
        ("https://admin:pw@school.instructure.com", "user name"),
    ],
)
def test_a_wrong_api_address_is_refused_saying_what_to_give(raw: str, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("?", r"\?")):
        SPECS["api_base_url"].clean(raw)


def test_key_values_are_checked_for_pasting_mistakes() -> None:
    assert SPECS["api_client_id"].clean(" 10000000000042 ") == "10000000000042"
    with pytest.raises(ValueError, match="client id of the Canvas API developer key"):
        SPECS["api_client_id"].clean("1000 0042")
    with pytest.raises(ValueError, match="without spaces"):
        SPECS["api_client_secret"].clean("abc def ghi")
    with pytest.raises(ValueError, match="at least 8"):
        SPECS["admin_access_token"].clean("short")


def test_the_api_address_falls_back_to_the_course_domain_and_says_when_it_cannot() -> None:
    assert api_base_url({"api_base_url": "https://a.example"}, "b.example") == "https://a.example"
    assert api_base_url({}, "School.Example.edu") == "https://school.example.edu"
    with pytest.raises(LmsNotConfigured, match="api_base_url="):
        api_base_url({}, None)


async def test_settings_are_stored_per_platform_with_secrets_encrypted(
    canvas_harness: ToolHarness,
) -> None:
    harness = canvas_harness
    tool, credential = harness.tool, harness.credential
    await set_plugin_settings(
        tool,
        credential,
        "canvas",
        {"api_client_id": "10000000000042", "api_client_secret": "s3cret-value-1"},
    )
    await set_plugin_settings(
        tool,
        credential,
        "canvas",
        {"api_base_url": "https://other.example.edu"},
        platform_id=harness.registration.id,
    )
    with pytest.raises(PluginSettingError, match="without a path"):
        await set_plugin_settings(
            tool, credential, "canvas", {"api_base_url": "https://x.example/api"}
        )
    values = {v.spec.key: v for v in await setting_values(tool, credential, "canvas")}
    assert values["api_client_secret"].shown() == "set"
    stored = await tool.repo.stored_plugin_settings(credential.id, "canvas")
    assert "s3cret-value-1" not in str(stored["api_client_secret"])
    effective = await effective_settings(tool, credential, "canvas", harness.registration.id)
    assert effective["api_client_secret"] == "s3cret-value-1"
    assert effective["api_base_url"] == "https://other.example.edu"
    assert effective["admin_access_token"] is None
