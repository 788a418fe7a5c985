"""The shared registration artefacts: the tool's URLs, the LTI 1.1 cartridge, form values,
the dynamic-registration URL lent to plugins, and how the core asks a plugin for them.

The checks of ``ltipro.testing.artifacts`` are tested here too, each against the mistake
it is there to catch, so the plugins' tests that rely on them cannot pass by accident.
"""

from __future__ import annotations

import importlib
import json
import time
from collections.abc import Mapping
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from ltipro.default_plugins import generic
from ltipro.extension import LmsDetails, RegistrationArtifact
from ltipro.hookspecs import hookimpl
from ltipro.lti.registration import credential_for_link, registration_signer, registration_url
from ltipro.plugin_settings import set_plugin_settings
from ltipro.plugins import PluginError
from ltipro.registration_artifacts import (
    STANDARD_CUSTOM,
    credential_artifacts,
    dynamic_registration_url,
    lending_registration_url,
    lti11_cartridge,
    read_values,
    standard_artifacts,
    tool_urls,
    values_artifact,
)
from ltipro.testing.artifacts import (
    artifact_problems,
    cartridge_problems,
    find_artifact,
    read_cartridge,
    values_of,
)
from ltipro.testing.harness import SECRET_KEY, TOOL_URL, ToolHarness
from ltipro.web.app import core_routes

BASE = "https://tool.example.edu"
FIXTURES = Path(__file__).parent / "fixtures"


def registration_token(url: str) -> str:
    return parse_qs(urlsplit(url).query)["credential"][0]


# -- the tool's URLs -----------------------------------------------------------------------------


def test_the_artefact_urls_are_routes_the_tool_serves() -> None:
    served = {getattr(route, "path", None) for route in core_routes()}
    urls = tool_urls(BASE + "/")
    for url in (urls.login, urls.launch, urls.jwks):
        assert url.startswith(BASE + "/")
        assert url[len(BASE) :] in served
    assert urls.domain == "tool.example.edu"


def test_tool_urls_keep_a_base_path_and_drop_a_trailing_slash() -> None:
    urls = tool_urls("https://apps.example.edu/meetings/")
    assert urls.launch == "https://apps.example.edu/meetings/lti/launch"
    assert urls.jwks == "https://apps.example.edu/meetings/.well-known/jwks.json"
    assert urls.domain == "apps.example.edu"


# -- the LTI 1.1 cartridge -----------------------------------------------------------------------


def test_the_cartridge_is_a_valid_basic_lti_link_of_the_tool() -> None:
    xml = lti11_cartridge(BASE)
    assert cartridge_problems(xml, BASE) == []
    cartridge = read_cartridge(xml)
    assert cartridge.launch_url == cartridge.secure_launch_url == BASE + "/lti/launch"
    assert cartridge.title == "Meetings" and cartridge.description
    assert cartridge.custom == dict(STANDARD_CUSTOM)
    assert cartridge.vendor["code"] == "tool.example.edu"


def test_the_cartridge_asks_canvas_for_name_email_and_the_course_navigation_link() -> None:
    canvas = read_cartridge(lti11_cartridge(BASE)).extensions["canvas.instructure.com"]
    assert canvas["privacy_level"] == "public"
    assert canvas["domain"] == "tool.example.edu"
    assert canvas["course_navigation"] == {
        "url": BASE + "/lti/launch",
        "text": "Meetings",
        "enabled": "true",
    }


def test_cartridge_text_is_escaped_and_reads_back_unchanged() -> None:
    custom = {"tricky": "a<b & c>\"d'"}
    xml = lti11_cartridge(BASE, custom=custom, title="Q&A <live>", description="x > y")
    assert cartridge_problems(xml, BASE) == []
    cartridge = read_cartridge(xml)
    assert cartridge.custom == custom
    assert (cartridge.title, cartridge.description) == ("Q&A <live>", "x > y")


def test_a_plain_http_tool_gets_no_secure_launch_url() -> None:
    xml = lti11_cartridge("http://localhost:8000")
    assert cartridge_problems(xml, "http://localhost:8000") == []
    assert read_cartridge(xml).secure_launch_url is None


def _cartridge_with(old: str, new: str) -> str:
    xml = lti11_cartridge(BASE)
    assert old in xml
    return xml.replace(old, new, 1)


@pytest.mark.parametrize(
    ("old", "new", "problem"),
    [
        ("<blti:title>Meetings</blti:title>", "<blti:title></blti:title>", "blti:title is missing"),
        (
            'xmlns="http://www.imsglobal.org/xsd/imslticc_v1p0"',
            'xmlns="http://example.com/other"',
            "not cartridge_basiclti_link",
        ),
        ("</cartridge_basiclti_link>", "", "not XML"),
        (
            f"<blti:secure_launch_url>{BASE}/lti/launch</blti:secure_launch_url>",
            "<blti:secure_launch_url>http://tool.example.edu/lti/launch</blti:secure_launch_url>",
            "not an https:// URL",
        ),
        (
            f"<blti:launch_url>{BASE}/lti/launch</blti:launch_url>",
            "<blti:launch_url>https://evil.example.com/lti/launch</blti:launch_url>",
            "not the tool's launch URL",
        ),
        (
            "  <blti:vendor>",
            f"  <blti:launch_url>{BASE}/lti/launch</blti:launch_url>\n  <blti:vendor>",
            "appears more than once",
        ),
        ("<lticp:code>tool.example.edu</lticp:code>", "", "needs lticp:code and lticp:name"),
        ('platform="canvas.instructure.com"', "", "has no platform attribute"),
        ('<lticm:property name="tool_id">', "<lticm:property>", "an lticm:property has no name"),
    ],
)
def test_the_cartridge_check_catches_each_mistake(old: str, new: str, problem: str) -> None:
    problems = cartridge_problems(_cartridge_with(old, new), BASE)
    assert any(problem in p for p in problems), problems


def test_the_cartridge_check_catches_elements_out_of_the_schema_order() -> None:
    xml = lti11_cartridge(BASE)
    title = "  <blti:title>Meetings</blti:title>\n"
    moved = xml.replace(title, "").replace("  <blti:vendor>", title + "  <blti:vendor>")
    assert "the elements are not in the order the schema requires" in cartridge_problems(moved)


# -- values ------------------------------------------------------------------------------------


def test_values_read_back_in_order_with_repeated_names() -> None:
    rows = [("Redirect URL", "https://a.test/x"), ("Custom", "a=b"), ("Custom", "c=$D.e")]
    artifact = values_artifact("generic", "Form", rows)
    assert read_values(artifact.content) == rows
    assert values_of(artifact)["Custom"] == ["a=b", "c=$D.e"]


@pytest.mark.parametrize(
    "row", [("Two\nlines", "x"), ("Name", "two\nlines"), ("Na: me", "x"), ("", "x")]
)
def test_a_value_row_that_would_not_read_back_is_refused(row: tuple[str, str]) -> None:
    with pytest.raises(ValueError, match="a value row"):
        values_artifact("generic", "Form", [row])


# -- the artefact check ------------------------------------------------------------------------


def _artifact(kind: Any, content: str, title: str = "Thing") -> RegistrationArtifact:
    return RegistrationArtifact("generic", title, kind, content)


@pytest.mark.parametrize(
    ("answer", "problem"),
    [
        ("not a list", "not a list"),
        (["text"], "is not a RegistrationArtifact"),
        ([_artifact("yaml", "a: b")], "unknown kind"),
        ([_artifact("json", "{not json")], "is not JSON"),
        (
            [_artifact("json", json.dumps({"public_jwk": {"e": "AQAB"}}))],
            "carries a key ('public_jwk')",
        ),
        ([_artifact("json", json.dumps({"keys": [{"kty": "RSA"}]}))], "carries a key ('kty')"),
        (
            [_artifact("values", "Key: -----BEGIN PUBLIC KEY-----")],
            "carries a key instead of the key-set URL",
        ),
        ([_artifact("values", "no separator here")], "not a 'name: value' line"),
        ([_artifact("url", f"{BASE}/a {BASE}/b")], "is not one URL"),
        ([_artifact("url", "https://lms.example.com/x")], "not on the tool's host"),
        ([_artifact("xml", "<x/>")], "not cartridge_basiclti_link"),
        ([_artifact("values", "Name: x", title=" ")], "has no title"),
    ],
)
def test_the_artefact_check_catches_each_mistake(answer: Any, problem: str) -> None:
    problems = artifact_problems(answer, BASE)
    assert any(problem in p for p in problems), problems


def test_the_artefact_check_accepts_the_standard_artefacts_and_ignores_schema_urls() -> None:
    with lending_registration_url(f"{BASE}/lti/register?credential=abc"):
        artifacts = standard_artifacts("generic", BASE)
    assert [a.kind for a in artifacts] == ["values", "url", "xml"]
    assert artifact_problems(artifacts, BASE) == []


# -- the standard (generic) artefacts ----------------------------------------------------------


def test_the_generic_values_name_the_tool_urls_claims_and_custom_parameters() -> None:
    values = values_of(find_artifact(standard_artifacts("generic", BASE), "values")[0])
    assert values["OpenID Connect login initiation URL"] == [BASE + "/lti/login"]
    assert (
        values["Redirect URI"] == values["Target link URI (launch URL)"] == [BASE + "/lti/launch"]
    )
    assert values["Public keyset (JWKS) URL"] == [BASE + "/.well-known/jwks.json"]
    assert "email" in values["Claims to share"][0] and "name" in values["Claims to share"][0]
    assert "course navigation" in values["Placement"][0]
    assert values["Custom parameter"] == [f"{k}={v}" for k, v in STANDARD_CUSTOM.items()]


def test_a_hook_called_outside_the_core_has_no_registration_url_to_offer() -> None:
    assert dynamic_registration_url() is None
    artifacts = generic.registration_artifacts("main", BASE, {})
    assert [a.kind for a in artifacts] == ["values", "xml"]
    assert artifact_problems(artifacts, BASE) == []


# -- through the core ----------------------------------------------------------------------------


async def test_the_generic_artefacts_carry_the_credentials_own_registration_url(
    harness: ToolHarness,
) -> None:
    tool, credential = harness.tool, harness.credential
    artifacts = await credential_artifacts(tool, credential, "generic", days=3)
    assert artifact_problems(artifacts, TOOL_URL) == []
    [url] = find_artifact(artifacts, "url")
    # The same signed URL `ltipro platforms register-url` prints: it names this credential.
    assert url.content.split("?")[0] == registration_url(tool.settings, credential).split("?")[0]
    found = await credential_for_link(tool.repo, SECRET_KEY, registration_token(url.content))
    assert found.id == credential.id
    assert dynamic_registration_url() is None  # lent for the call only


async def test_a_registration_url_stops_working_after_the_days_asked_for(
    harness: ToolHarness,
) -> None:
    [url] = find_artifact(
        await credential_artifacts(harness.tool, harness.credential, "generic", days=2), "url"
    )
    body = registration_signer(SECRET_KEY).verify(registration_token(url.content))
    assert 2 * 86400 - 60 <= body["exp"] - time.time() <= 2 * 86400


class _Answering:
    """A plugin whose registration_artifacts answers ``answer`` (or the URL it was lent)."""

    def __init__(self, name: str, answer: Any = None) -> None:
        self.name = name
        self.answer = answer
        self.seen_url: str | None = None

    @hookimpl
    def lms_details(self) -> LmsDetails:
        return LmsDetails(name=self.name, title="Odd LMS")


class _Returning(_Answering):
    @hookimpl
    def registration_artifacts(
        self, credential: str, base_url: str, settings: Mapping[str, Any]
    ) -> Any:
        self.seen_url = dynamic_registration_url()
        return self.answer


async def test_a_plugin_answering_something_else_than_artefacts_is_named(
    harness: ToolHarness,
) -> None:
    harness.tool.plugins.register(_Returning("oddlms", {"json": "{}"}), "oddlms")
    try:
        with pytest.raises(PluginError, match="'oddlms' answered registration_artifacts with dict"):
            await credential_artifacts(harness.tool, harness.credential, "oddlms")
    finally:
        harness.tool.plugins.unregister("oddlms")


async def test_the_plugin_is_lent_the_registration_url_during_its_hook(
    harness: ToolHarness,
) -> None:
    plugin = _Returning("oddlms", [RegistrationArtifact("oddlms", "Nothing", "values", "A: b")])
    harness.tool.plugins.register(plugin, "oddlms")
    try:
        artifacts = await credential_artifacts(harness.tool, harness.credential, "oddlms")
    finally:
        harness.tool.plugins.unregister("oddlms")
    assert [a.title for a in artifacts] == ["Nothing"]
    assert plugin.seen_url is not None
    assert plugin.seen_url.startswith(TOOL_URL + "/lti/register?credential=")


async def test_a_plugin_without_the_hook_gets_the_standard_artefacts_under_its_name(
    harness: ToolHarness,
) -> None:
    harness.tool.plugins.register(_Answering("plainlms"), "plainlms")
    try:
        artifacts = await credential_artifacts(harness.tool, harness.credential, "plainlms")
    finally:
        harness.tool.plugins.unregister("plainlms")
    assert [(a.lms, a.kind) for a in artifacts] == [
        ("plainlms", "values"),
        ("plainlms", "url"),
        ("plainlms", "xml"),
    ]


async def test_an_lms_without_a_plugin_is_refused(harness: ToolHarness) -> None:
    with pytest.raises(ValueError, match="no plugin for LMS 'sakai'"):
        await credential_artifacts(harness.tool, harness.credential, "sakai")


@pytest.fixture
def sample_plugin(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    monkeypatch.syspath_prepend(str(FIXTURES))
    return importlib.import_module("sample_plugin")


async def test_the_plugin_gets_its_effective_settings_for_the_credential(
    database_url: str, tmp_path: Path, sample_plugin: ModuleType
) -> None:
    async with ToolHarness(
        database_url=database_url,
        instance=tmp_path / "instance",
        plugins=[],
        extra_plugins=[("sample", sample_plugin)],
    ) as harness:
        tool, credential = harness.tool, harness.credential
        await set_plugin_settings(tool, credential, "sample", {"api_domain": "lms.example.edu"})
        [artifact] = await credential_artifacts(tool, credential, "sample")
    config = json.loads(artifact.content)
    assert config["credential"] == "test"
    assert config["api_domain"] == "lms.example.edu"  # stored for the credential
    assert config["page_size"] == 50  # the spec's default
