"""Every LTI 1.3 validation rule: the bad launch is refused with a clear 4xx page, and
nothing is stored but the launch-log entry and the consumed state and nonce."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import httpx
import jwt
from cryptography.hazmat.primitives import serialization
from sqlalchemy import func, select

from ltipro.crypto import generate_rsa_key
from ltipro.lti.launch13 import NONCE_KIND
from ltipro.lti.login import STATE_KIND
from ltipro.storage.schema import courses, protocol_state
from ltipro.testing.harness import CLIENT_ID, LMS_URL, ToolHarness

CLAIM = "https://purl.imsglobal.org/spec/lti/claim/"

STUDENT: dict[str, Any] = {
    "sub": "student-7",
    "name": "Grace Hopper",
    "email": "grace@example.edu",
    CLAIM + "roles": ["http://purl.imsglobal.org/vocab/lis/v2/membership#Learner"],
    CLAIM + "context": {"id": "course-9", "title": "Compilers"},
    CLAIM + "resource_link": {"id": "link-9"},
    CLAIM + "launch_presentation": {"return_url": "https://lms.example.edu/courses/9"},
}


async def _kinds(harness: ToolHarness) -> dict[str, int]:
    async with harness.tool.repo.engine.connect() as conn:
        rows = (
            await conn.execute(
                select(protocol_state.c.kind, func.count()).group_by(protocol_state.c.kind)
            )
        ).all()
    return {kind: count for kind, count in rows}


async def assert_refused(
    harness: ToolHarness, response: httpx.Response, code: str, *, nonce_recorded: bool = False
) -> None:
    """A clear 4xx page naming the reason, one refused log entry, nothing else kept."""
    assert 400 <= response.status_code < 500, (response.status_code, response.text[:500])
    assert f'data-error-code="{code}"' in response.text, response.text[:1500]
    log = await harness.tool.repo.recent_launches()
    assert [(r.outcome, r.code) for r in log] == [("refused", code)]
    assert await harness.tool.repo.count(courses) == 0
    kinds = await _kinds(harness)
    assert kinds.get("session", 0) == 0
    assert kinds.get(STATE_KIND, 0) == 0, "the state must be consumed"
    assert kinds.get(NONCE_KIND, 0) == (1 if nonce_recorded else 0)


def _resign(harness: ToolHarness, **changes: Any) -> Any:
    """A signer that changes claims (None removes one) before the platform signs them."""

    def sign(nonce: str, claims: dict[str, Any]) -> str:
        for name, value in changes.items():
            key = (
                name
                if name in ("iss", "aud", "azp", "exp", "iat", "sub", "nonce")
                else CLAIM + name
            )
            if value is None:
                claims.pop(key, None)
            else:
                claims[key] = value
        return harness.platform.id_token(claims, nonce=nonce, raw=True)

    return sign


async def test_good_launch_is_accepted_and_consumes_state_and_nonce(harness: ToolHarness) -> None:
    page = await harness.launch13(STUDENT)
    assert page.status_code == 200
    kinds = await _kinds(harness)
    assert kinds.get(STATE_KIND, 0) == 0
    assert kinds[NONCE_KIND] == 1
    assert kinds["session"] == 1


async def test_unknown_state_is_refused(harness: ToolHarness) -> None:
    page = await harness.launch13(STUDENT, form_overrides={"state": "not-a-state-we-issued"})
    assert page.status_code == 400
    assert 'data-error-code="unknown_state"' in page.text
    log = await harness.tool.repo.recent_launches()
    assert [r.code for r in log] == ["unknown_state"]


async def test_state_is_single_use(harness: ToolHarness) -> None:
    login = await harness.login(STUDENT)
    _, form = harness.platform.authenticate(harness.auth_request(login))
    first = await harness.client.post("/lti/launch", data=form)
    assert first.status_code == 200
    replay = await harness.client.post("/lti/launch", data=form)
    assert replay.status_code == 400
    assert 'data-error-code="unknown_state"' in replay.text


async def test_state_not_bound_to_this_browser_is_refused_with_new_window_offer(
    harness: ToolHarness,
) -> None:
    page = await harness.launch13(STUDENT, keep_cookies=False)
    assert page.status_code == 403
    assert 'data-error-code="state_not_bound"' in page.text
    assert "Open in a new window" in page.text
    assert "/lti/login?" in page.text
    # The login can be run again in a new window, so the state is kept for it.
    assert (await _kinds(harness)).get(STATE_KIND) == 1


async def test_wrong_storage_proof_is_refused(harness: ToolHarness) -> None:
    login = await harness.login(STUDENT, storage_target="post_message_forwarding")
    _, form = harness.platform.authenticate(harness.auth_request(login))
    harness.client.cookies.clear()
    form["lti_storage_proof"] = "guessed"
    page = await harness.client.post("/lti/launch", data=form)
    await assert_refused(harness, page, "state_mismatch")


async def test_launch_through_postmessage_storage_without_any_cookie(harness: ToolHarness) -> None:
    page = await harness.launch13(STUDENT, storage=True)
    assert page.status_code == 200, page.text[:800]
    assert (await harness.me(page))["user"]["id"] == "student-7"


async def test_storage_check_page_is_offered_when_the_cookie_is_missing(
    harness: ToolHarness,
) -> None:
    login = await harness.login(STUDENT, storage_target="post_message_forwarding")
    assert login.status_code == 200
    assert 'data-storage-target="post_message_forwarding"' in login.text
    _, form = harness.platform.authenticate(harness.auth_request(login))
    harness.client.cookies.clear()
    page = await harness.client.post("/lti/launch", data=form)
    assert page.status_code == 200
    assert 'id="ltipro-launch"' in page.text
    assert 'data-platform-origin="https://lms.test"' in page.text
    # Nothing is consumed until the browser answers.
    assert (await _kinds(harness)).get(STATE_KIND) == 1


async def test_nonce_already_used_elsewhere_is_refused(harness: ToolHarness) -> None:
    login = await harness.login(STUDENT)
    auth = harness.auth_request(login)
    await harness.tool.store.add_once(NONCE_KIND, f"{harness.registration.id}:{auth['nonce']}", 60)
    _, form = harness.platform.authenticate(auth)
    page = await harness.client.post("/lti/launch", data=form)
    await assert_refused(harness, page, "replayed_nonce", nonce_recorded=True)


async def test_nonce_must_be_the_one_the_tool_sent(harness: ToolHarness) -> None:
    page = await harness.launch13(STUDENT, sign=_resign(harness, nonce="someone-elses-nonce"))
    await assert_refused(harness, page, "bad_nonce")


async def test_issuer_must_match_exactly(harness: ToolHarness) -> None:
    page = await harness.launch13(STUDENT, sign=_resign(harness, iss=LMS_URL + "/"))
    await assert_refused(harness, page, "wrong_issuer")


async def test_audience_must_contain_our_client_id(harness: ToolHarness) -> None:
    page = await harness.launch13(STUDENT, sign=_resign(harness, aud="another-tool", azp=None))
    await assert_refused(harness, page, "wrong_audience")


async def test_several_audiences_need_azp_equal_to_our_client_id(harness: ToolHarness) -> None:
    page = await harness.launch13(
        STUDENT, sign=_resign(harness, aud=[CLIENT_ID, "another-tool"], azp="another-tool")
    )
    await assert_refused(harness, page, "wrong_azp")


async def test_several_audiences_without_azp_are_refused(harness: ToolHarness) -> None:
    page = await harness.launch13(
        STUDENT, sign=_resign(harness, aud=[CLIENT_ID, "another-tool"], azp=None)
    )
    await assert_refused(harness, page, "wrong_azp")


async def test_several_audiences_with_our_azp_are_accepted(harness: ToolHarness) -> None:
    page = await harness.launch13(
        STUDENT, sign=_resign(harness, aud=["another-tool", CLIENT_ID], azp=CLIENT_ID)
    )
    assert page.status_code == 200


async def test_expired_token_is_refused(harness: ToolHarness) -> None:
    now = int(time.time())
    page = await harness.launch13(STUDENT, sign=_resign(harness, iat=now - 900, exp=now - 600))
    await assert_refused(harness, page, "expired_token")


async def test_token_from_the_future_is_refused(harness: ToolHarness) -> None:
    now = int(time.time())
    page = await harness.launch13(STUDENT, sign=_resign(harness, iat=now + 600, exp=now + 900))
    await assert_refused(harness, page, "token_from_future")


async def test_small_clock_skew_is_tolerated(harness: ToolHarness) -> None:
    now = int(time.time())
    page = await harness.launch13(STUDENT, sign=_resign(harness, iat=now + 20, exp=now + 300))
    assert page.status_code == 200, page.text[:500]


async def test_token_without_exp_is_refused(harness: ToolHarness) -> None:
    page = await harness.launch13(STUDENT, sign=_resign(harness, exp=None))
    await assert_refused(harness, page, "bad_token")


async def test_alg_none_is_refused(harness: ToolHarness) -> None:
    def sign(nonce: str, claims: dict[str, Any]) -> str:
        def b64(data: dict[str, Any]) -> str:
            return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

        return f"{b64({'alg': 'none', 'kid': harness.platform.kid})}.{b64(claims)}."

    page = await harness.launch13(STUDENT, sign=sign)
    await assert_refused(harness, page, "bad_algorithm")


async def test_hs256_signed_with_the_platforms_public_key_is_refused(harness: ToolHarness) -> None:
    public_pem = (
        serialization.load_pem_private_key(harness.platform.private_key.encode(), None)
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )

    def sign(nonce: str, claims: dict[str, Any]) -> str:
        import hashlib
        import hmac

        header = {"alg": "HS256", "typ": "JWT", "kid": harness.platform.kid}

        def b64(data: bytes) -> str:
            return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

        signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"
        mac = hmac.new(public_pem, signing_input.encode(), hashlib.sha256).digest()
        return f"{signing_input}.{b64(mac)}"

    page = await harness.launch13(STUDENT, sign=sign)
    await assert_refused(harness, page, "bad_algorithm")


async def test_signature_by_another_key_with_the_platforms_kid_is_refused(
    harness: ToolHarness,
) -> None:
    _, forged_pem, _ = generate_rsa_key()

    def sign(nonce: str, claims: dict[str, Any]) -> str:
        return harness.platform.id_token(claims, nonce=nonce, raw=True, key=forged_pem)

    page = await harness.launch13(STUDENT, sign=sign)
    await assert_refused(harness, page, "bad_signature")


async def test_forged_kid_is_refused(harness: ToolHarness) -> None:
    forged_kid, forged_pem, _ = generate_rsa_key()

    def sign(nonce: str, claims: dict[str, Any]) -> str:
        return harness.platform.id_token(
            claims, nonce=nonce, raw=True, key=forged_pem, headers={"kid": forged_kid}
        )

    page = await harness.launch13(STUDENT, sign=sign)
    await assert_refused(harness, page, "unknown_key")


async def test_rotated_platform_key_is_accepted_after_one_refetch(harness: ToolHarness) -> None:
    first = await harness.launch13(STUDENT)
    assert first.status_code == 200
    fetches_before = sum(1 for r in harness.transport.requests if r.url.path.endswith("jwks.json"))
    harness.platform.rotate_key()
    # The cached key set is older than the refetch interval only after a while; make it so.
    for cached in harness.tool.platform_keys._sets.values():
        cached.fetched_at -= 60
    second = await harness.launch13(STUDENT)
    assert second.status_code == 200, second.text[:500]
    fetches_after = sum(1 for r in harness.transport.requests if r.url.path.endswith("jwks.json"))
    assert fetches_after == fetches_before + 1


async def test_platform_keys_are_cached_between_launches(harness: ToolHarness) -> None:
    for _ in range(3):
        assert (await harness.launch13(STUDENT)).status_code == 200
    fetches = [r for r in harness.transport.requests if r.url.path.endswith("jwks.json")]
    assert len(fetches) == 1


async def test_unreachable_key_set_is_a_clear_refusal(harness: ToolHarness) -> None:
    del harness.transport.apps["lms.test"]
    page = await harness.launch13(STUDENT)
    await assert_refused(harness, page, "jwks_unavailable")


async def test_key_set_url_into_a_private_network_is_refused(harness: ToolHarness) -> None:
    harness.private_hosts.add("lms.test")
    page = await harness.launch13(STUDENT)
    await assert_refused(harness, page, "unsafe_jwks_url")


async def test_unknown_deployment_is_refused(harness: ToolHarness) -> None:
    page = await harness.launch13(STUDENT, sign=_resign(harness, deployment_id="deployment-x"))
    await assert_refused(harness, page, "unknown_deployment")


async def test_disabled_deployment_is_refused(harness: ToolHarness) -> None:
    await harness.tool.repo.set_deployment_enabled(
        harness.registration.id, harness.platform.deployment_id, False
    )
    page = await harness.launch13(STUDENT, sign=_resign(harness))
    await assert_refused(harness, page, "deployment_disabled")


async def test_deployment_must_equal_the_logins_deployment(harness: ToolHarness) -> None:
    await harness.tool.repo.add_deployment(harness.registration.id, "deployment-2")
    page = await harness.launch13(STUDENT, sign=_resign(harness, deployment_id="deployment-2"))
    await assert_refused(harness, page, "deployment_mismatch")


async def test_version_must_be_1_3_0(harness: ToolHarness) -> None:
    page = await harness.launch13(STUDENT, sign=_resign(harness, version="1.2.0"))
    await assert_refused(harness, page, "unsupported_version")


async def test_unsupported_message_type_is_refused(harness: ToolHarness) -> None:
    page = await harness.launch13(
        STUDENT, sign=_resign(harness, message_type="LtiSubmissionReviewRequest")
    )
    await assert_refused(harness, page, "unsupported_message")


async def test_resource_link_launch_needs_its_resource_link_id(harness: ToolHarness) -> None:
    page = await harness.launch13(STUDENT, sign=_resign(harness, resource_link={"title": "x"}))
    await assert_refused(harness, page, "bad_message")


async def test_roles_claim_is_required(harness: ToolHarness) -> None:
    page = await harness.launch13(STUDENT, sign=_resign(harness, roles=None))
    await assert_refused(harness, page, "bad_message")


async def test_deep_linking_request_needs_its_return_url(harness: ToolHarness) -> None:
    claims = harness.platform.deep_linking_claims(STUDENT, "https://lms.test/return")
    settings = dict(claims["https://purl.imsglobal.org/spec/lti-dl/claim/deep_linking_settings"])
    settings.pop("deep_link_return_url")

    def sign(nonce: str, body: dict[str, Any]) -> str:
        body["https://purl.imsglobal.org/spec/lti-dl/claim/deep_linking_settings"] = settings
        return harness.platform.id_token(body, nonce=nonce, raw=True)

    page = await harness.launch13(claims, sign=sign)
    await assert_refused(harness, page, "bad_message")


async def test_target_link_uri_on_another_host_is_refused(harness: ToolHarness) -> None:
    page = await harness.launch13(
        STUDENT, sign=_resign(harness, target_link_uri="https://evil.example/lti/launch")
    )
    await assert_refused(harness, page, "foreign_target_link_uri")


async def test_login_with_target_link_uri_on_another_host_is_refused(harness: ToolHarness) -> None:
    response = await harness.login(STUDENT, target_link_uri="https://evil.example/phish")
    assert response.status_code == 400
    assert 'data-error-code="foreign_target_link_uri"' in response.text
    assert "location" not in response.headers


async def test_login_from_unknown_issuer_is_refused(harness: ToolHarness) -> None:
    response = await harness.login(STUDENT, iss="https://unknown-lms.example")
    assert response.status_code == 400
    assert 'data-error-code="unknown_platform"' in response.text
    assert (await harness.tool.repo.recent_launches())[0].code == "unknown_platform"


async def test_login_without_required_parameters_is_refused(harness: ToolHarness) -> None:
    response = await harness.client.get("/lti/login", params={"iss": LMS_URL})
    assert response.status_code == 400
    assert 'data-error-code="bad_login_request"' in response.text
    assert "login_hint" in response.text


async def test_login_for_unknown_deployment_is_refused(harness: ToolHarness) -> None:
    response = await harness.login(STUDENT, lti_deployment_id="not-registered")
    assert response.status_code == 403
    assert 'data-error-code="unknown_deployment"' in response.text
    log = await harness.tool.repo.recent_launches()
    assert (log[0].code, log[0].deployment_id) == ("unknown_deployment", "not-registered")


async def test_login_by_post_is_accepted(harness: ToolHarness) -> None:
    params = harness.platform.login_params(STUDENT)
    response = await harness.client.post("/lti/login", data=params)
    assert response.status_code == 302
    assert response.headers["location"].startswith(LMS_URL + "/auth?")


async def test_authentication_request_carries_the_oidc_parameters(harness: ToolHarness) -> None:
    login = await harness.login(STUDENT)
    params = harness.auth_request(login)
    assert params["scope"] == "openid"
    assert params["response_type"] == "id_token"
    assert params["response_mode"] == "form_post"
    assert params["prompt"] == "none"
    assert params["client_id"] == CLIENT_ID
    assert params["redirect_uri"] == "https://tool.test/lti/launch"
    assert params["state"] and params["nonce"] and params["state"] != params["nonce"]
    cookie = login.headers["set-cookie"]
    assert "SameSite=None" in cookie and "Secure" in cookie and "Partitioned" in cookie


async def test_launch_without_sub_is_anonymous_not_a_crash(harness: ToolHarness) -> None:
    claims = {k: v for k, v in STUDENT.items() if k not in ("sub", "email", "name")}
    page = await harness.launch13(claims)
    assert page.status_code == 200, page.text[:800]
    me = await harness.me(page)
    assert me["user"]["anonymous"] is True
    assert me["user"]["id"] is None


async def test_malformed_id_token_is_a_clear_refusal(harness: ToolHarness) -> None:
    page = await harness.launch13(STUDENT, id_token="not.a.jwt")
    await assert_refused(harness, page, "bad_token")


async def test_post_that_is_no_launch_is_refused(harness: ToolHarness) -> None:
    response = await harness.client.post("/lti/launch", data={"hello": "world"})
    assert response.status_code == 400
    assert 'data-error-code="bad_launch_request"' in response.text


async def test_pending_platform_cannot_launch(harness: ToolHarness) -> None:
    await harness.tool.repo.set_platform_status(harness.registration.id, "pending")
    response = await harness.login(STUDENT)
    assert response.status_code == 403
    assert 'data-error-code="platform_pending"' in response.text


async def test_tool_publishes_its_key_set(harness: ToolHarness) -> None:
    response = await harness.client.get("/.well-known/jwks.json")
    assert response.status_code == 200
    keys = response.json()["keys"]
    assert len(keys) == 1
    assert keys[0]["kty"] == "RSA" and keys[0]["alg"] == "RS256" and "d" not in keys[0]
    assert jwt.PyJWK(keys[0]).key is not None
