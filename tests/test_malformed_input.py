"""Malformed input at every LTI entry point is a clear 4xx, never a 500, and stores nothing
but the launch log (property-based: hypothesis makes the input)."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ltipro.storage.schema import courses
from ltipro.testing.harness import LMS_URL, ToolHarness

CLAIM = "https://purl.imsglobal.org/spec/lti/claim/"

text = st.text(max_size=40)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | text,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(text, children, max_size=3),
    max_leaves=8,
)


@pytest.fixture
def running(
    ltipro_database_url: str, tmp_path: Path
) -> Iterator[tuple[asyncio.AbstractEventLoop, ToolHarness]]:
    """One harness for many generated requests, driven from a synchronous test."""
    loop = asyncio.new_event_loop()
    harness = ToolHarness(database_url=ltipro_database_url, instance=tmp_path / "instance")
    loop.run_until_complete(harness.__aenter__())
    try:
        yield loop, harness
    finally:
        loop.run_until_complete(harness.__aexit__(None, None, None))
        loop.close()


def _unsigned_token(header: dict[str, Any], body: Any) -> str:
    def b64(data: Any) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    return f"{b64(header)}.{b64(body)}.c2ln"


LTI_FIELDS = st.sampled_from(
    [
        "id_token",
        "state",
        "oauth_consumer_key",
        "oauth_signature",
        "oauth_timestamp",
        "oauth_nonce",
        "lti_message_type",
        "lti_storage_proof",
        "iss",
        "login_hint",
        "target_link_uri",
        "client_id",
        "lti_deployment_id",
        "lti_storage_target",
    ]
)
forms = st.dictionaries(LTI_FIELDS | text, text, max_size=8)


def test_random_launch_forms_never_crash(
    running: tuple[asyncio.AbstractEventLoop, ToolHarness],
) -> None:
    loop, harness = running

    @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
    @given(forms)
    def check(form: dict[str, str]) -> None:
        response = loop.run_until_complete(harness.client.post("/lti/launch", data=form))
        assert 400 <= response.status_code < 500, (form, response.status_code)

    check()
    assert loop.run_until_complete(harness.tool.repo.count(courses)) == 0


def test_random_login_requests_never_crash(
    running: tuple[asyncio.AbstractEventLoop, ToolHarness],
) -> None:
    loop, harness = running

    @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
    @given(forms, st.booleans())
    def check(params: dict[str, str], as_post: bool) -> None:
        if as_post:
            call = harness.client.post("/lti/login", data=params)
        else:
            call = harness.client.get("/lti/login", params=params)
        response = loop.run_until_complete(call)
        assert response.status_code < 500, (params, response.status_code)
        if response.status_code == 302:
            assert response.headers["location"].startswith(LMS_URL + "/auth?")

    check()


def test_tokens_with_arbitrary_claims_never_crash(
    running: tuple[asyncio.AbstractEventLoop, ToolHarness],
) -> None:
    """Structurally valid JWTs with junk headers and claims, under a valid state."""
    loop, harness = running
    login_claims = {CLAIM + "resource_link": {"id": "x"}}

    @settings(max_examples=50, deadline=None, suppress_health_check=list(HealthCheck))
    @given(
        st.dictionaries(st.sampled_from(["alg", "kid", "typ"]) | text, json_values, max_size=3),
        st.dictionaries(
            st.sampled_from(
                [
                    "iss",
                    "aud",
                    "azp",
                    "exp",
                    "iat",
                    "nonce",
                    "sub",
                    CLAIM + "deployment_id",
                    CLAIM + "message_type",
                    CLAIM + "version",
                    CLAIM + "roles",
                    CLAIM + "context",
                ]
            )
            | text,
            json_values,
            max_size=8,
        )
        | json_values,
    )
    def check(header: dict[str, Any], body: Any) -> None:
        response = loop.run_until_complete(
            harness.launch13(login_claims, id_token=_unsigned_token(header, body))
        )
        assert 400 <= response.status_code < 500, (header, body, response.status_code)

    check()
    assert loop.run_until_complete(harness.tool.repo.count(courses)) == 0


def test_validly_signed_launches_with_junk_claims_never_crash(
    running: tuple[asyncio.AbstractEventLoop, ToolHarness],
) -> None:
    """Signed by the registered platform, so every check up to the plugin is passed."""
    loop, harness = running
    base = {
        "sub": "u",
        "email": "u@example.edu",
        CLAIM + "roles": [],
        CLAIM + "resource_link": {"id": "link"},
    }

    @settings(max_examples=50, deadline=None, suppress_health_check=list(HealthCheck))
    @given(
        st.dictionaries(
            st.sampled_from(
                [
                    "name",
                    "email",
                    "given_name",
                    CLAIM + "roles",
                    CLAIM + "context",
                    CLAIM + "custom",
                    CLAIM + "launch_presentation",
                    CLAIM + "tool_platform",
                    CLAIM + "lis",
                    CLAIM + "ext",
                ]
            ),
            json_values,
            max_size=5,
        )
    )
    def check(junk: dict[str, Any]) -> None:
        response = loop.run_until_complete(harness.launch13({**base, **junk}))
        assert response.status_code < 500, (junk, response.status_code, response.text[-400:])

    check()
