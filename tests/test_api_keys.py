"""Per-credential API keys authenticate JSON API routes (``require_api_key``).

The routes that will use API keys come later, so the tests register a small route of
their own that answers with the credential the key belongs to.
"""

from __future__ import annotations

import pytest
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ltipro.testing.harness import ToolHarness
from ltipro.web.session import require_api_key

PATH = "/api/v1/test-credential"


async def which_credential(request: Request) -> Response:
    credential = await require_api_key(request)
    return JSONResponse({"credential": credential.name})


@pytest.fixture
def api(harness: ToolHarness) -> ToolHarness:
    harness.app.router.routes.append(Route(PATH, which_credential, methods=["GET"]))
    return harness


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def test_an_api_key_is_accepted_until_it_is_revoked(api: ToolHarness) -> None:
    repo = api.tool.repo
    key = await repo.create_api_key(api.credential, "sis")
    other = await repo.create_api_key(api.credential, "reports")
    response = await api.client.get(PATH, headers=bearer(key))
    assert response.status_code == 200
    assert response.json() == {"credential": "test"}

    await repo.revoke_api_key(api.credential, key.split("_")[1])
    refused = await api.client.get(PATH, headers=bearer(key))
    assert refused.status_code == 401
    assert refused.json()["error"] == "invalid_api_key"
    assert "revoked" in refused.json()["message"]
    # Revoking one key leaves the credential's other keys working.
    assert (await api.client.get(PATH, headers=bearer(other))).status_code == 200


async def test_each_key_authenticates_its_own_credential(api: ToolHarness) -> None:
    second = await api.tool.repo.create_credential("second", enabled_plugins=["generic"])
    key = await api.tool.repo.create_api_key(second, "sis")
    response = await api.client.get(PATH, headers=bearer(key))
    assert response.json() == {"credential": "second"}


async def test_a_request_without_an_api_key_is_refused_with_how_to_get_one(
    api: ToolHarness,
) -> None:
    for headers in ({}, {"Authorization": "Basic dXNlcjpwYXNz"}, bearer("a-session-token")):
        response = await api.client.get(PATH, headers=headers)
        assert response.status_code == 401
        assert response.json()["error"] == "no_api_key"
        assert "ltipro api-keys create" in response.json()["message"]


async def test_a_made_up_or_altered_api_key_is_refused(api: ToolHarness) -> None:
    key = await api.tool.repo.create_api_key(api.credential, "sis")
    prefix, secret = key.split("_", 2)[1:]
    for wrong in (
        f"ltp_{prefix}_{secret[:-1]}{'A' if secret[-1] != 'A' else 'B'}",  # secret altered
        f"ltp_000000000000_{secret}",  # unknown prefix
        f"ltp_{prefix}",  # no secret part
        "ltp_",
    ):
        response = await api.client.get(PATH, headers=bearer(wrong))
        assert response.status_code == 401, wrong
        assert response.json()["error"] == "invalid_api_key"
