"""The session after a launch (bearer header, form field, cookie) and deep linking."""

from __future__ import annotations

import re
from html import unescape
from typing import Any

import jwt

from ltipro.sessions import COOKIE_NAME
from ltipro.testing.harness import LMS_URL, ToolHarness, hidden_inputs

CLAIM = "https://purl.imsglobal.org/spec/lti/claim/"
DL = "https://purl.imsglobal.org/spec/lti-dl/claim/"
LIS = "http://purl.imsglobal.org/vocab/lis/v2/"

TEACHER: dict[str, Any] = {
    "sub": "t-1",
    "name": "Emmy Teacher",
    "email": "emmy@example.edu",
    CLAIM + "roles": [LIS + "membership#Instructor"],
    CLAIM + "context": {"id": "course-dl", "title": "Topology"},
    CLAIM + "resource_link": {"id": "link-dl"},
}


async def test_session_token_is_never_in_a_url_and_works_as_bearer(harness: ToolHarness) -> None:
    page = await harness.launch13(TEACHER)
    token = harness.session_token(page)
    assert token not in str(page.url)
    assert f"?{token}" not in page.text and f"={token}&" not in page.text
    response = await harness.client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200
    assert response.json()["user"]["name"] == "Emmy Teacher"


async def test_session_cookie_is_partitioned_and_serves_page_loads(harness: ToolHarness) -> None:
    page = await harness.launch13(TEACHER)
    cookie = next(c for c in page.headers.get_list("set-cookie") if c.startswith(COOKIE_NAME))
    for attribute in ("Secure", "HttpOnly", "SameSite=None", "Partitioned", "Path=/"):
        assert attribute in cookie
    response = await harness.client.get("/api/v1/me")
    assert response.status_code == 200


async def test_requests_without_a_session_get_a_json_401(harness: ToolHarness) -> None:
    harness.client.cookies.clear()
    response = await harness.client.get("/api/v1/me")
    assert response.status_code == 401
    assert response.json()["error"] == "no_session"


async def test_forged_or_tampered_token_is_refused(harness: ToolHarness) -> None:
    page = await harness.launch13(TEACHER)
    token = harness.session_token(page)
    harness.client.cookies.clear()
    tampered = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    for bad in (tampered, "garbage", token.split(".")[0]):
        response = await harness.client.get(
            "/api/v1/me", headers={"Authorization": f"Bearer {bad}"}
        )
        assert response.status_code == 401, bad


async def test_cookie_alone_does_not_authorise_a_post(harness: ToolHarness) -> None:
    """The cookie is sent by the browser on its own; a change needs the token itself."""
    deep = harness.platform.deep_linking_claims(TEACHER, f"{LMS_URL}/deep-link-return")
    page = await harness.launch13(deep)
    assert page.status_code == 200
    response = await harness.client.post("/lti/deep-link", data={"title": "Meetings"})
    assert response.status_code == 401


async def test_openapi_document_describes_me(harness: ToolHarness) -> None:
    response = await harness.client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    document = response.json()
    assert document["openapi"].startswith("3.")
    assert "/me" in document["paths"]
    required = document["components"]["schemas"]["Me"]["required"]
    assert {"user", "email", "role", "course", "lms", "credential"} <= set(required)


async def test_deep_linking_returns_a_signed_resource_link_the_platform_verifies(
    harness: ToolHarness,
) -> None:
    return_url = f"{LMS_URL}/deep-link-return"
    deep = harness.platform.deep_linking_claims(TEACHER, return_url, data="opaque-platform-data")
    page = await harness.launch13(deep)
    assert page.status_code == 200
    assert "Add to course" in page.text
    token = unescape(re.search(r'name="session" value="([^"]+)"', page.text).group(1))
    answer = await harness.client.post(
        "/lti/deep-link", data={"session": token, "title": "Course meetings"}
    )
    assert answer.status_code == 200
    assert f'action="{return_url}"' in answer.text
    fields = hidden_inputs(answer.text)
    claims = jwt.decode(fields["JWT"], options={"verify_signature": False})
    assert claims["iss"] == harness.platform.client_id
    assert claims["aud"] == [harness.platform.issuer]
    assert claims[CLAIM + "message_type"] == "LtiDeepLinkingResponse"
    assert claims[CLAIM + "deployment_id"] == harness.platform.deployment_id
    assert claims[DL + "data"] == "opaque-platform-data"
    items = claims[DL + "content_items"]
    assert items == [
        {
            "type": "ltiResourceLink",
            "title": "Course meetings",
            "url": "https://tool.test/lti/launch",
        }
    ]
    # The platform checks the signature against the tool's published key set.
    verified = await harness.outbound.post(return_url, data={"JWT": fields["JWT"]})
    assert verified.status_code == 200, verified.text[-500:]
    assert 'data-item-type="ltiResourceLink"' in verified.text


async def test_students_cannot_answer_deep_linking(harness: ToolHarness) -> None:
    student = dict(TEACHER, **{CLAIM + "roles": [LIS + "membership#Learner"]})
    deep = harness.platform.deep_linking_claims(student, f"{LMS_URL}/deep-link-return")
    page = await harness.launch13(deep)
    assert "Only instructors" in page.text
    assert 'name="session"' not in page.text
    # Even with the session token in hand, the tool refuses.
    token = harness.client.cookies[COOKIE_NAME]
    response = await harness.client.post("/lti/deep-link", data={"session": token})
    assert response.status_code == 403
    assert 'data-error-code="not_instructor"' in response.text


async def test_deep_link_answer_needs_a_deep_linking_session(harness: ToolHarness) -> None:
    page = await harness.launch13(TEACHER)
    token = harness.session_token(page)
    response = await harness.client.post("/lti/deep-link", data={"session": token})
    assert response.status_code == 400
    assert 'data-error-code="not_deep_linking"' in response.text


async def test_tool_key_rotation_keeps_the_previous_key_published(harness: ToolHarness) -> None:
    from ltipro.tool import RETIRED_KEY_GRACE

    first = (await harness.client.get("/.well-known/jwks.json")).json()["keys"]
    await harness.tool.repo.rotate_tool_key(RETIRED_KEY_GRACE)
    after = (await harness.client.get("/.well-known/jwks.json")).json()["keys"]
    assert len(after) == 2
    assert first[0]["kid"] in {k["kid"] for k in after}
    key = await harness.tool.signing_key()
    assert key.kid != first[0]["kid"]


async def test_every_api_route_is_in_the_openapi_document(harness: ToolHarness) -> None:
    from starlette.routing import Route

    document = (await harness.client.get("/api/v1/openapi.json")).json()
    assert document["servers"] == [{"url": "/api/v1"}]
    verbs = {"get", "post", "put", "patch", "delete"}
    documented = {
        (path, method.upper())
        for path, item in document["paths"].items()
        for method in item
        if method in verbs
    }
    routes = {
        (route.path.removeprefix("/api/v1").replace(":int", ""), method)
        for route in harness.app.routes
        if isinstance(route, Route) and route.path.startswith("/api/v1/")
        for method in (route.methods or ())
        if method != "HEAD"
    }
    routes.discard(("/openapi.json", "GET"))
    assert routes <= documented, routes - documented
    assert documented <= routes, documented - routes
