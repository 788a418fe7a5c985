"""The d2l plugin's settings: validated as an admin types them, stored as the core stores them."""

from __future__ import annotations

import pytest
from ltipro_d2l.settings import (
    DEFAULT_LE_VERSION,
    clean_base_url,
    clean_le_version,
    clean_scope,
    config_from,
)

from ltipro.lmsapi import LmsNotConfigured
from ltipro.plugin_settings import PluginSettingError, effective_settings, set_plugin_settings
from ltipro.testing.harness import ToolHarness


@pytest.mark.parametrize(
    ("typed", "stored"),
    [
        ("https://School.Brightspace.com/", "https://school.brightspace.com"),
        ("  https://d2l.example.edu:8443 ", "https://d2l.example.edu:8443"),
    ],
)
def test_a_brightspace_address_is_stored_as_scheme_and_host(typed: str, stored: str) -> None:
    assert clean_base_url(typed) == stored


@pytest.mark.parametrize(
    "typed",
    ["school.brightspace.com", "ftp://school.brightspace.com", "https://x.edu/d2l/home", ""],
)
def test_an_address_that_is_not_a_brightspace_root_is_refused(typed: str) -> None:
    with pytest.raises(ValueError, match=r"school\.brightspace\.com"):
        clean_base_url(typed)


def test_le_versions_are_written_as_brightspace_writes_them() -> None:
    assert clean_le_version(" 1.74 ") == "1.74"
    for typed in ("v1.74", "1", "1.7a", "latest"):
        with pytest.raises(ValueError, match=r"1\.82"):
            clean_le_version(typed)


def test_scopes_are_group_resource_action_words() -> None:
    assert clean_scope("core:*:*   calendar:access:read") == "core:*:* calendar:access:read"
    with pytest.raises(ValueError, match="group:resource:action"):
        clean_scope("calendar")


def test_without_an_address_the_issuer_then_the_launch_domain_name_brightspace() -> None:
    app = {"client_id": "c", "client_secret": "s"}
    by_issuer = config_from(app, issuer="https://pcc.brightspace.com/", domain="x.edu")
    assert by_issuer.base_url == "https://pcc.brightspace.com"
    assert by_issuer.le_base == f"https://pcc.brightspace.com/d2l/api/le/{DEFAULT_LE_VERSION}"
    assert config_from(app, domain="online.pcc.edu").base_url == "https://online.pcc.edu"
    with pytest.raises(LmsNotConfigured, match="base_url"):
        config_from(app)
    with pytest.raises(LmsNotConfigured, match="client_id and client_secret"):
        config_from({"base_url": "https://x.edu"})


async def test_settings_are_validated_and_the_secret_kept_encrypted(
    d2l_harness: ToolHarness,
) -> None:
    tool, credential = d2l_harness.tool, d2l_harness.credential
    with pytest.raises(PluginSettingError, match="le_version"):
        await set_plugin_settings(tool, credential, "d2l", {"le_version": "newest"})

    await set_plugin_settings(
        tool,
        credential,
        "d2l",
        {"client_id": "abc", "client_secret": "s3cret", "base_url": "https://a.brightspace.com"},
    )
    platform = d2l_harness.registration.id
    await set_plugin_settings(
        tool, credential, "d2l", {"base_url": "https://b.brightspace.com"}, platform
    )

    stored = await tool.repo.stored_plugin_settings(credential.id, "d2l")
    assert stored["client_secret"] != "s3cret"
    assert str(stored["client_secret"]).startswith("enc:")
    at_credential = await effective_settings(tool, credential, "d2l")
    at_platform = await effective_settings(tool, credential, "d2l", platform)
    assert at_credential["client_secret"] == "s3cret"
    assert at_credential["base_url"] == "https://a.brightspace.com"
    assert at_platform["base_url"] == "https://b.brightspace.com"
    assert at_platform["le_version"] == DEFAULT_LE_VERSION
    assert at_platform["scope"] == "core:*:*"
