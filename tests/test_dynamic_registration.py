"""LTI Dynamic Registration: an LMS registering the tool, through the simulated platform.

The LMS's side is the simulator on https://lms.test (its OpenID configuration and
registration endpoint), reached by the tool over HTTP; misbehaving LMSs are small apps
serving the configuration or answer under test.
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
import time
from collections.abc import Iterator
from html import unescape
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ltipro.cli import main
from ltipro.crypto import Signer
from ltipro.extension import LmsDetails
from ltipro.hookspecs import hookimpl
from ltipro.lti.registration import (
    PLATFORM_CONFIGURATION,
    TOOL_CONFIGURATION,
    PlatformConfiguration,
    issuer_matches,
    platform_error_text,
    read_platform_configuration,
    registration_url,
    tool_metadata,
)
from ltipro.settings import Settings
from ltipro.simulator.app import Simulator, create_simulator_app
from ltipro.simulator.platform import SimulatedPlatform
from ltipro.storage.repository import Credential, Platform
from ltipro.testing.harness import LMS_URL, SECRET_KEY, TOOL_URL, ToolHarness

CLAIM = "https://purl.imsglobal.org/spec/lti/claim/"
CONFIGURATION_URL = f"{LMS_URL}/.well-known/openid-configuration"

INSTRUCTOR = {
    "sub": "user-1",
    "name": "Ada Lovelace",
    "email": "ada@example.edu",
    CLAIM + "roles": ["http://purl.imsglobal.org/vocab/lis/v2/membership#Instructor"],
    CLAIM + "context": {"id": "course-1", "title": "Analytical Engines"},
    CLAIM + "resource_link": {"id": "link-1"},
}


def link_token(harness: ToolHarness, credential: Credential | None = None) -> str:
    """The ``credential`` parameter of the credential's registration URL."""
    url = registration_url(harness.settings, credential or harness.credential)
    return parse_qs(urlsplit(url).query)["credential"][0]


async def register(
    harness: ToolHarness,
    *,
    credential: Credential | None = None,
    token: str | None = None,
    openid_configuration: str = CONFIGURATION_URL,
    registration_token: str | None = None,
) -> httpx.Response:
    """What the LMS does: open the tool's registration URL with its own two parameters."""
    params = {
        "credential": token if token is not None else link_token(harness, credential),
        "openid_configuration": openid_configuration,
        "registration_token": registration_token or harness.platform.issue_registration_token(),
    }
    return await harness.client.get("/lti/register", params=params)


async def dynamic_platforms(harness: ToolHarness) -> list[Platform]:
    return [p for p in await harness.tool.repo.list_platforms() if p.source == "dynamic"]


def error_code(page: httpx.Response) -> str:
    match = re.search(r'data-error-code="([^"]+)"', page.text)
    assert match, page.text
    return match.group(1)


def lms_requests(harness: ToolHarness, host: str = "lms.test") -> list[httpx.Request]:
    return [r for r in harness.transport.requests if r.url.host == host]


def configuration_of(base: str, **changes: Any) -> dict[str, Any]:
    """An LMS's OpenID configuration at ``base``, with fields replaced (``None`` drops one)."""
    config: dict[str, Any] = {
        "issuer": base,
        "authorization_endpoint": f"{base}/auth",
        "token_endpoint": f"{base}/token",
        "jwks_uri": f"{base}/jwks.json",
        "registration_endpoint": f"{base}/registrations",
        PLATFORM_CONFIGURATION: {
            "product_family_code": "crafted",
            "messages_supported": [{"type": "LtiResourceLinkRequest"}],
        },
    }
    for key, value in changes.items():
        key = {"lti": PLATFORM_CONFIGURATION}.get(key, key)
        if value is None:
            config.pop(key, None)
        else:
            config[key] = value
    return config


def crafted_platform(
    configuration: Any = None,
    *,
    raw_configuration: bytes | None = None,
    answer: Any = None,
    answer_status: int = 201,
) -> Starlette:
    """An LMS that serves exactly this configuration and registration answer."""

    async def served_configuration(request: Request) -> Response:
        if raw_configuration is not None:
            return Response(raw_configuration, media_type="application/json")
        return JSONResponse(configuration)

    async def registrations(request: Request) -> Response:
        return JSONResponse(answer, status_code=answer_status)

    return Starlette(
        routes=[
            Route("/.well-known/openid-configuration", served_configuration),
            Route("/registrations", registrations, methods=["POST"]),
        ]
    )


# -- the whole flow ---------------------------------------------------------------------------


async def test_registered_lms_is_pending_and_launches_only_after_approval(
    harness: ToolHarness,
) -> None:
    page = await register(harness)
    assert page.status_code == 200, page.text
    assert 'subject: "org.imsglobal.lti.close"' in page.text
    assert "window.opener || window.parent" in page.text and '"*"' in page.text
    assert "awaits approval" in page.text

    [platform] = await dynamic_platforms(harness)
    assert f"ltipro platforms approve {platform.id}" in page.text
    assert platform.status == "pending"
    assert platform.lms == "generic"
    assert platform.credential_id == harness.credential.id
    assert platform.issuer == LMS_URL
    # The LMS's answer and configuration, as the simulated LMS gave them.
    assert platform.client_id == harness.platform.client_id
    assert platform.deployments == ((harness.platform.deployment_id, True),)
    assert platform.auth_login_url == f"{LMS_URL}/auth"
    assert platform.auth_token_url == f"{LMS_URL}/token"
    assert platform.jwks_url == f"{LMS_URL}/jwks.json"

    refused = await harness.launch13(INSTRUCTOR)
    assert refused.status_code == 403
    assert error_code(refused) == "platform_pending"

    await harness.tool.repo.set_platform_status(platform.id, "active")
    launched = await harness.launch13(INSTRUCTOR)
    assert launched.status_code == 200, launched.text
    me = await harness.me(launched)
    assert me["user"]["id"] == "user-1"
    assert me["credential"] == "test"


async def test_tool_sends_the_client_metadata_the_specification_asks_for(
    harness: ToolHarness,
) -> None:
    registration_token = harness.platform.issue_registration_token()
    page = await register(harness, registration_token=registration_token)
    assert page.status_code == 200, page.text

    [fetched, posted] = lms_requests(harness)
    assert (fetched.method, fetched.url) == ("GET", CONFIGURATION_URL)
    assert (posted.method, posted.url) == ("POST", f"{LMS_URL}/registrations")
    # The token goes back to the LMS that issued it, on both requests.
    assert fetched.headers["authorization"] == f"Bearer {registration_token}"
    assert posted.headers["authorization"] == f"Bearer {registration_token}"
    assert posted.headers["content-type"] == "application/json"
    [registration] = harness.platform.registrations
    metadata = registration.metadata
    launch = f"{TOOL_URL}/lti/launch"
    assert metadata["application_type"] == "web"
    assert metadata["response_types"] == ["id_token"]
    assert metadata["grant_types"] == ["implicit", "client_credentials"]
    assert metadata["initiate_login_uri"] == f"{TOOL_URL}/lti/login"
    assert metadata["redirect_uris"] == [launch]
    assert metadata["jwks_uri"] == f"{TOOL_URL}/.well-known/jwks.json"
    assert metadata["token_endpoint_auth_method"] == "private_key_jwt"
    assert metadata["client_name"]
    assert isinstance(metadata["scope"], str)
    tool = metadata[TOOL_CONFIGURATION]
    assert tool["domain"] == "tool.test"
    assert tool["target_link_uri"] == launch
    assert tool["claims"] == ["iss", "sub", "name", "given_name", "family_name", "email"]
    by_type = {m["type"]: m for m in tool["messages"]}
    assert set(by_type) == {"LtiResourceLinkRequest", "LtiDeepLinkingRequest"}
    # The simulated LMS lists a course-navigation placement, so the tool asks for it.
    assert by_type["LtiResourceLinkRequest"]["placements"] == ["course_navigation"]
    assert all(m["target_link_uri"] == launch for m in tool["messages"])


async def test_auto_approving_credential_makes_the_registration_active_at_once(
    harness: ToolHarness,
) -> None:
    auto = await harness.tool.repo.create_credential(
        "auto", enabled_plugins=["generic"], auto_approve_registrations=True
    )
    page = await register(harness, credential=auto)
    assert page.status_code == 200, page.text
    assert "Launches from this LMS are accepted." in page.text
    [platform] = await dynamic_platforms(harness)
    assert (platform.status, platform.credential_id) == ("active", auto.id)

    launched = await harness.launch13(INSTRUCTOR)
    assert launched.status_code == 200, launched.text
    assert (await harness.me(launched))["credential"] == "auto"


class MoodleLike:
    """An LMS plugin known by its product family code."""

    @hookimpl
    def lms_details(self) -> LmsDetails:
        return LmsDetails(name="moodle", title="Moodle", product_family_codes=("moodle",))


@pytest.mark.parametrize(("code", "lms"), [("Moodle", "moodle"), ("sakai", "generic")])
async def test_lms_plugin_is_chosen_by_the_product_family_code(
    harness: ToolHarness, code: str, lms: str
) -> None:
    harness.plugins.register(MoodleLike(), name="moodle")
    harness.platform.product_family_code = code
    page = await register(harness)
    assert page.status_code == 200, page.text
    [platform] = await dynamic_platforms(harness)
    assert platform.lms == lms


async def test_registration_without_deployment_says_how_to_add_one(
    harness: ToolHarness,
) -> None:
    # Canvas answers without a deployment: it deploys the tool after the registration.
    answer = {"client_id": 10000000000042, TOOL_CONFIGURATION: {"domain": "tool.test"}}
    harness.transport.add(
        "canvas.test",
        crafted_platform(configuration_of("https://canvas.test"), answer=answer),
    )
    page = await register(
        harness, openid_configuration="https://canvas.test/.well-known/openid-configuration"
    )
    assert page.status_code == 200, page.text
    [platform] = await dynamic_platforms(harness)
    assert platform.client_id == "10000000000042"
    assert platform.deployments == ()
    assert f"ltipro platforms add-deployment {platform.id} DEPLOYMENT_ID" in page.text


# -- the simulated LMS's page -----------------------------------------------------------------


async def test_simulator_button_opens_the_registration_and_waits_for_close(
    harness: ToolHarness,
) -> None:
    url = registration_url(harness.settings, harness.credential)
    index = await harness.outbound.get(f"{LMS_URL}/")
    assert "Register the tool (dynamic registration)" in index.text

    page = await harness.outbound.post(f"{LMS_URL}/register", data={"registration_url": url})
    assert page.status_code == 200, page.text
    assert "org.imsglobal.lti.close" in page.text
    frame = unescape(re.search(r'id="ltipro-registration-frame"[^>]*src="([^"]+)"', page.text)[1])
    query = parse_qs(urlsplit(frame).query)
    assert frame.startswith(f"{TOOL_URL}/lti/register?")
    assert query["credential"] == parse_qs(urlsplit(url).query)["credential"]
    assert query["openid_configuration"] == [CONFIGURATION_URL]

    # What the frame does: the browser opens the tool's registration page.
    done = await harness.client.get(frame)
    assert done.status_code == 200, done.text
    [platform] = await dynamic_platforms(harness)
    index = await harness.outbound.get(f"{LMS_URL}/")
    assert platform.client_id in index.text


async def test_simulator_register_page_refuses_a_url_that_is_not_http(
    harness: ToolHarness,
) -> None:
    page = await harness.outbound.post(
        f"{LMS_URL}/register", data={"registration_url": "javascript:alert(1)"}
    )
    assert page.status_code == 400
    assert "javascript:" not in page.text


async def test_simulated_lms_refuses_registrations_as_a_real_one_does(
    harness: ToolHarness,
) -> None:
    config = harness.platform.openid_configuration()
    good = tool_metadata(harness.settings, _configuration(config))
    endpoint = config["registration_endpoint"]

    no_token = await harness.outbound.post(endpoint, json=good)
    assert no_token.status_code == 401
    assert no_token.headers["www-authenticate"] == 'Bearer error="invalid_token"'

    foreign = {**good, "redirect_uris": ["https://elsewhere.test/launch"]}
    token = harness.platform.issue_registration_token()
    refused = await harness.outbound.post(
        endpoint, json=foreign, headers={"Authorization": f"Bearer {token}"}
    )
    assert refused.status_code == 400
    assert refused.json()["error"] == "invalid_redirect_uri"

    # A refused request leaves the token usable; a used one is spent.
    accepted = await harness.outbound.post(
        endpoint, json=good, headers={"Authorization": f"Bearer {token}"}
    )
    assert accepted.status_code == 201
    assert accepted.json()[TOOL_CONFIGURATION]["deployment_id"]
    again = await harness.outbound.post(
        endpoint, json=good, headers={"Authorization": f"Bearer {token}"}
    )
    assert again.status_code == 401
    assert len(harness.platform.registrations) == 1


def _configuration(config: dict[str, Any]) -> PlatformConfiguration:
    return read_platform_configuration(CONFIGURATION_URL, config)


# -- refusals: a clear 4xx page, and nothing stored ------------------------------------------


async def assert_nothing_registered(harness: ToolHarness) -> None:
    assert await dynamic_platforms(harness) == []
    assert harness.platform.registrations == []


def forged_token() -> str:
    return Signer("another-installation-key-" + "y" * 32, "dynamic-registration").sign(
        {"credential": "test", "credential_id": 1}, 3600
    )


@pytest.mark.parametrize(
    ("token", "status", "code"),
    [
        ("", 400, "missing_credential"),
        ("not-a-token", 403, "bad_registration_url"),
        ("forged", 403, "bad_registration_url"),
        ("other-purpose", 403, "bad_registration_url"),
        ("expired", 403, "expired_registration_url"),
        ("deleted-credential", 404, "unknown_credential"),
    ],
)
async def test_missing_forged_or_expired_registration_url_is_refused(
    harness: ToolHarness, token: str, status: int, code: str
) -> None:
    payload = {"credential": "test", "credential_id": harness.credential.id}
    made = {
        "forged": forged_token,
        "other-purpose": lambda: Signer(SECRET_KEY, "oidc-state").sign(payload, 3600),
        "expired": lambda: Signer(SECRET_KEY, "dynamic-registration").sign(payload, -5),
        "deleted-credential": lambda: Signer(SECRET_KEY, "dynamic-registration").sign(
            {"credential": "test", "credential_id": harness.credential.id + 100}, 3600
        ),
    }
    page = await register(harness, token=made[token]() if token in made else token)
    assert page.status_code == status, page.text
    assert error_code(page) == code
    assert lms_requests(harness) == []  # the LMS was not even asked
    await assert_nothing_registered(harness)


@pytest.mark.parametrize(
    ("url", "private_host"),
    [
        ("http://lms.test/.well-known/openid-configuration", None),
        (CONFIGURATION_URL, "lms.test"),
        ("https://10.1.2.3/.well-known/openid-configuration", None),
        ("https://localhost/.well-known/openid-configuration", None),
        ("file:///etc/passwd", None),
        ("https://[::1/.well-known/openid-configuration", None),
        ("", None),
    ],
)
async def test_unsafe_or_missing_configuration_url_is_refused_without_fetching(
    harness: ToolHarness, url: str, private_host: str | None
) -> None:
    if private_host:
        harness.private_hosts.add(private_host)
    page = await register(harness, openid_configuration=url)
    assert page.status_code == 400, page.text
    assert error_code(page) in ("unsafe_configuration_url", "missing_configuration")
    assert lms_requests(harness) == []
    await assert_nothing_registered(harness)


async def test_private_urls_are_accepted_where_the_installation_allows_them(
    harness: ToolHarness,
) -> None:
    harness.private_hosts.add("lms.test")
    # What LTIPRO_ALLOW_PRIVATE_URLS=1 sets.
    harness.tool.settings = dataclasses.replace(harness.settings, allow_private_urls=True)
    page = await register(harness)
    assert page.status_code == 200, page.text
    assert len(await dynamic_platforms(harness)) == 1


async def test_issuer_not_matching_the_configuration_url_is_refused(
    harness: ToolHarness,
) -> None:
    # Another host serving a configuration that claims the LMS's issuer.
    impostor = SimulatedPlatform(
        issuer=LMS_URL,
        client_id="x",
        deployment_id="x",
        tool_login_url=f"{TOOL_URL}/lti/login",
        tool_launch_url=f"{TOOL_URL}/lti/launch",
    )
    simulator = Simulator(platform=impostor, plugins=harness.plugins, tool_jwks_url=f"{TOOL_URL}/x")
    harness.transport.add("lms-mirror.test", create_simulator_app(simulator))
    token = impostor.issue_registration_token()
    page = await register(
        harness,
        openid_configuration="https://lms-mirror.test/.well-known/openid-configuration",
        registration_token=token,
    )
    assert page.status_code == 400, page.text
    assert error_code(page) == "issuer_mismatch"
    assert impostor.registrations == []
    assert not [r for r in lms_requests(harness, "lms-mirror.test") if r.method == "POST"]
    await assert_nothing_registered(harness)


@pytest.mark.parametrize(
    ("url", "issuer", "matches"),
    [
        (
            "https://lms.example.edu/.well-known/openid-configuration",
            "https://lms.example.edu",
            True,
        ),
        (
            "https://lms.example.edu/mod/lti/openid-configuration.php",
            "https://lms.example.edu/",
            True,
        ),
        ("https://lms.example.edu/site/api/openid", "https://lms.example.edu/site", True),
        ("https://lms.example.edu.evil.test/openid", "https://lms.example.edu", False),
        ("https://lms.example.edu/sitex/openid", "https://lms.example.edu/site", False),
        ("https://other.example.edu/openid", "https://lms.example.edu", False),
        ("https://lms.example.edu/openid", "https://", False),
        ("https://lms.example.edu/openid", "", False),
    ],
)
def test_issuer_must_be_a_prefix_of_the_configuration_url_at_a_boundary(
    url: str, issuer: str, matches: bool
) -> None:
    assert issuer_matches(url, issuer) is matches


@pytest.mark.parametrize(
    ("served", "code"),
    [
        (b"<html>not json</html>", "bad_configuration"),
        (b"[1, 2]", "bad_configuration"),
        (configuration_of("https://crafted.test", registration_endpoint=None), "incomplete"),
        (configuration_of("https://crafted.test", jwks_uri=42), "incomplete"),
        (configuration_of("https://crafted.test", lti=None), "incomplete"),
        (configuration_of("https://crafted.test", lti={"version": "1"}), "incomplete"),
        (
            configuration_of(
                "https://crafted.test", registration_endpoint="https://internal.test/register"
            ),
            "unsafe_endpoint",
        ),
        (
            configuration_of(
                "https://crafted.test", authorization_endpoint="http://crafted.test/a"
            ),
            "unsafe_endpoint",
        ),
        (
            configuration_of("https://crafted.test", token_endpoint="https://[x/token"),
            "unsafe_endpoint",
        ),
        (configuration_of("https://crafted.test", issuer="https://["), "issuer_mismatch"),
    ],
)
async def test_unusable_configuration_is_refused_before_registering(
    harness: ToolHarness, served: Any, code: str
) -> None:
    harness.private_hosts.add("internal.test")
    app = (
        crafted_platform(raw_configuration=served)
        if isinstance(served, bytes)
        else crafted_platform(served, answer={"client_id": "c"})
    )
    harness.transport.add("crafted.test", app)
    page = await register(
        harness, openid_configuration="https://crafted.test/.well-known/openid-configuration"
    )
    assert page.status_code == 400, page.text
    assert error_code(page).startswith(code)
    assert not [r for r in harness.transport.requests if r.method == "POST"]
    await assert_nothing_registered(harness)


async def test_lms_refusing_the_registration_shows_its_reason(harness: ToolHarness) -> None:
    page = await register(harness, registration_token="not-the-lms-token")
    assert page.status_code == 424, page.text
    assert error_code(page) == "registration_refused"
    assert "The registration token is not valid" in page.text
    await assert_nothing_registered(harness)


@pytest.mark.parametrize("token", ["abc\r\nX-Injected: 1", "a b", "x" * 9000])
async def test_registration_token_that_cannot_be_sent_back_is_refused(
    harness: ToolHarness, token: str
) -> None:
    page = await register(harness, registration_token=token)
    assert page.status_code == 400, page.text
    assert error_code(page) == "bad_registration_token"
    assert lms_requests(harness) == []
    await assert_nothing_registered(harness)


async def test_registration_token_used_twice_is_refused_by_the_lms(harness: ToolHarness) -> None:
    token = harness.platform.issue_registration_token()
    assert (await register(harness, registration_token=token)).status_code == 200
    again = await register(harness, registration_token=token)
    assert again.status_code == 424
    assert "already used" in again.text
    assert len(await dynamic_platforms(harness)) == 1


@pytest.mark.parametrize(
    ("answer", "status", "code"),
    [
        ({"error_description": "Tool domain not allowed"}, 400, "registration_refused"),
        ({"client_id": "x" * 300}, 201, "bad_registration_answer"),
        ({"client_name": "no client id"}, 201, "bad_registration_answer"),
        (["not", "an", "object"], 200, "bad_registration_answer"),
        (
            {"client_id": "c-1", TOOL_CONFIGURATION: {"deployment_id": {"nested": 1}}},
            201,
            "bad_registration_answer",
        ),
    ],
)
async def test_unusable_answer_from_the_lms_is_refused_and_nothing_stored(
    harness: ToolHarness, answer: Any, status: int, code: str
) -> None:
    harness.transport.add(
        "crafted.test",
        crafted_platform(
            configuration_of("https://crafted.test"), answer=answer, answer_status=status
        ),
    )
    page = await register(
        harness, openid_configuration="https://crafted.test/.well-known/openid-configuration"
    )
    assert page.status_code == 424, page.text
    assert error_code(page) == code
    if status == 400:
        assert "Tool domain not allowed" in page.text
    assert await dynamic_platforms(harness) == []


async def test_lms_answering_with_a_known_client_id_is_a_conflict(harness: ToolHarness) -> None:
    harness.transport.add(
        "crafted.test",
        crafted_platform(configuration_of("https://crafted.test"), answer={"client_id": "same"}),
    )
    url = "https://crafted.test/.well-known/openid-configuration"
    assert (await register(harness, openid_configuration=url)).status_code == 200
    again = await register(harness, openid_configuration=url)
    assert again.status_code == 409
    assert error_code(again) == "already_registered"
    assert len(await dynamic_platforms(harness)) == 1


async def test_unreachable_lms_is_a_clear_refusal(harness: ToolHarness) -> None:
    page = await register(
        harness, openid_configuration="https://nowhere.test/.well-known/openid-configuration"
    )
    assert page.status_code == 424
    assert error_code(page) == "platform_unreachable"
    await assert_nothing_registered(harness)


async def test_lms_configuration_that_is_not_there_is_a_clear_refusal(
    harness: ToolHarness,
) -> None:
    page = await register(harness, openid_configuration=f"{LMS_URL}/no-such-configuration")
    assert page.status_code == 424
    assert error_code(page) == "configuration_unavailable"
    await assert_nothing_registered(harness)


# -- what the tool asks for, and what it reads back ------------------------------------------


@pytest.mark.parametrize(
    ("listed", "asked"),
    [
        (["course_navigation", "account_navigation"], ["course_navigation"]),
        (
            ["https://canvas.instructure.com/lti/course_navigation"],
            ["https://canvas.instructure.com/lti/course_navigation"],
        ),
        (["ContentArea"], None),
        (None, None),
    ],
)
def test_course_navigation_is_asked_for_only_where_the_lms_lists_it(
    listed: list[str] | None, asked: list[str] | None
) -> None:
    message: dict[str, Any] = {"type": "LtiResourceLinkRequest"}
    if listed is not None:
        message["placements"] = listed
    configuration = PlatformConfiguration(
        issuer="https://lms.example.edu",
        authorization_endpoint="https://lms.example.edu/auth",
        token_endpoint="https://lms.example.edu/token",
        jwks_uri="https://lms.example.edu/jwks",
        registration_endpoint="https://lms.example.edu/register",
        product_family_code="canvas",
        version=None,
        messages_supported=(message,),
    )
    settings = Settings(
        instance=Path("."),
        base_url=TOOL_URL,
        secret_key=SECRET_KEY,
        database_url="sqlite://",
    )
    [resource_link] = [
        m
        for m in tool_metadata(settings, configuration)[TOOL_CONFIGURATION]["messages"]
        if m["type"] == "LtiResourceLinkRequest"
    ]
    assert resource_link.get("placements") == asked


def test_moodle_style_configuration_with_message_names_only_is_accepted() -> None:
    # Moodle lists supported messages as bare names, and placements beside them.
    moodle = configuration_of(
        "https://moodle.example.edu",
        lti={
            "product_family_code": "moodle",
            "version": "4.3",
            "messages_supported": ["LtiResourceLinkRequest", "LtiDeepLinkingRequest"],
            "placements": ["AddContentMenu"],
        },
    )
    url = "https://moodle.example.edu/mod/lti/openid-configuration.php"
    configuration = read_platform_configuration(url, moodle)
    assert configuration.product_family_code == "moodle"
    assert configuration.placements("LtiResourceLinkRequest") is None
    settings = Settings(
        instance=Path("."), base_url=TOOL_URL, secret_key=SECRET_KEY, database_url="sqlite://"
    )
    messages = tool_metadata(settings, configuration)[TOOL_CONFIGURATION]["messages"]
    assert [m["type"] for m in messages] == ["LtiResourceLinkRequest", "LtiDeepLinkingRequest"]
    assert all("placements" not in m for m in messages)


@pytest.mark.parametrize(
    ("body", "text"),
    [
        (b'{"error":"invalid_client_metadata","error_description":"Bad domain"}', "Bad domain"),
        (b'{"errorMessage":"JWT did not include expected contents"}', "JWT did not include"),
        (b'{"errors":[{"message":"Not allowed"}]}', "Not allowed"),
        (b"Service unavailable", "Service unavailable"),
    ],
)
def test_lms_error_text_is_read_from_the_shapes_lmss_use(body: bytes, text: str) -> None:
    assert text in platform_error_text(body)
    assert len(platform_error_text(b"x" * 10_000)) <= 500


# -- the command line ---------------------------------------------------------------------------


@pytest.fixture
def cli_env(harness: ToolHarness, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The environment an admin's shell would have for the harness's installation."""
    for name, value in {
        "LTIPRO_INSTANCE": str(harness.instance),
        "LTIPRO_SECRET_KEY": SECRET_KEY,
        "LTIPRO_BASE_URL": TOOL_URL,
        "LTIPRO_DATABASE_URL": harness.database_url,
        "LTIPRO_PLUGINS": "",
    }.items():
        monkeypatch.setenv(name, value)
    for name in ("LTIPRO_DEV", "LTIPRO_REDIS_URL", "LTIPRO_ALLOW_PRIVATE_URLS"):
        monkeypatch.delenv(name, raising=False)
    yield


async def ltipro(*argv: str) -> int:
    """Run the command line as an admin would, outside the test's event loop."""
    return await asyncio.to_thread(main, list(argv))


async def test_register_url_command_prints_a_url_that_registers_the_lms(
    harness: ToolHarness, cli_env: None, capsys: pytest.CaptureFixture[str]
) -> None:
    started = time.time()
    code = await ltipro("platforms", "register-url", "--credential", "test", "--days", "7")
    out, err = capsys.readouterr()
    assert code == 0, err
    url = out.strip()
    assert url.startswith(f"{TOOL_URL}/lti/register?credential=")
    token = parse_qs(urlsplit(url).query)["credential"][0]
    body = Signer(SECRET_KEY, "dynamic-registration").verify(token)
    assert body["credential"] == "test"
    assert started + 7 * 86400 - 5 <= body["exp"] <= time.time() + 7 * 86400
    assert "ltipro platforms approve" in err

    page = await register(harness, token=token)
    assert page.status_code == 200, page.text
    assert len(await dynamic_platforms(harness)) == 1

    for argv, message in (
        (["--credential", "nobody"], "no credential named 'nobody'"),
        (["--credential", "test", "--days", "0"], "--days must be 1 to 365"),
    ):
        code = await ltipro("platforms", "register-url", *argv)
        out, err = capsys.readouterr()
        assert code == 2
        assert out == ""
        assert message in err


async def test_add_deployment_command_accepts_a_deployment_the_lms_made_later(
    harness: ToolHarness, cli_env: None, capsys: pytest.CaptureFixture[str]
) -> None:
    auto = await harness.tool.repo.create_credential(
        "auto", enabled_plugins=["generic"], auto_approve_registrations=True
    )
    assert (await register(harness, credential=auto)).status_code == 200
    [platform] = await dynamic_platforms(harness)
    # The LMS deploys the tool a second time (another sub-account).
    harness.platform.deployment_id = "second-deployment"
    refused = await harness.launch13(INSTRUCTOR)
    assert error_code(refused) == "unknown_deployment"

    code = await ltipro("platforms", "add-deployment", str(platform.id), "second-deployment")
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "second-deployment" in out
    launched = await harness.launch13(INSTRUCTOR)
    assert launched.status_code == 200, launched.text

    code = await ltipro("platforms", "add-deployment", str(platform.id), "second-deployment")
    assert code == 2
    assert "already registered" in capsys.readouterr().err
