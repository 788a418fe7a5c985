"""``GET|PATCH /api/v1/credentials/{id}/config``: options from scripts, with an API key.

The same checks as the console and the command line, all or nothing, per-option errors
in a 422, the audit log naming the key, and a key never reaching another credential.
"""

from __future__ import annotations

import json
from typing import Any

import httpx

from ltipro.option_fields import FIELDS_BY_NAME
from ltipro.options import OPTION_NAMES, CredentialOptions
from ltipro.storage.admin_repository import AdminRepository
from ltipro.storage.repository import Credential
from ltipro.testing.harness import ToolHarness

CLAIM = "https://purl.imsglobal.org/spec/lti/claim/"
LIS = "http://purl.imsglobal.org/vocab/lis/v2/"
LAUNCH: dict[str, Any] = {
    "sub": "u-7",
    "name": "Emmy Student",
    "email": "emmy@example.edu",
    CLAIM + "roles": [LIS + "membership#Learner"],
    CLAIM + "context": {"id": "course-7", "title": "Rings"},
    CLAIM + "resource_link": {"id": "l-7"},
    CLAIM + "launch_presentation": {"return_url": "https://canvas.example.edu/courses/7"},
}


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def path(credential: Credential | int) -> str:
    return (
        f"/api/v1/credentials/{credential if isinstance(credential, int) else credential.id}/config"
    )


async def patch(
    harness: ToolHarness, key: str, body: Any, target: int | None = None
) -> httpx.Response:
    return await harness.client.patch(
        path(target if target is not None else harness.credential),
        headers={**bearer(key), "Content-Type": "application/json"},
        content=json.dumps(body),
    )


async def test_get_returns_every_option_of_the_keys_credential(harness: ToolHarness) -> None:
    key = await harness.tool.repo.create_api_key(harness.credential, "sis")
    response = await harness.client.get(path(harness.credential), headers=bearer(key))
    assert response.status_code == 200
    body = response.json()
    assert body["credential"] == {"id": harness.credential.id, "name": "test"}
    assert set(body["options"]) == set(OPTION_NAMES)
    assert body["options"] == json.loads(json.dumps(CredentialOptions().to_json()))


async def test_patch_changes_options_logs_them_as_the_key_and_the_next_launch_follows(
    harness: ToolHarness,
) -> None:
    key = await harness.tool.repo.create_api_key(harness.credential, "sis")
    prefix = key.split("_")[1]
    assert (await harness.me(await harness.launch13(LAUNCH)))["role"] == "student"

    response = await patch(
        harness,
        key,
        {
            "instructor_roles": ["Learner", "Instructor"],
            "tracking_fields": [["College", "custom_college"]],
            "attendance_report": False,
            "approved_domains": "canvas.example.edu, moodle.example.edu",
        },
    )
    assert response.status_code == 200
    body = response.json()
    assert sorted(body["changed"]) == [
        "approved_domains",
        "attendance_report",
        "instructor_roles",
        "tracking_fields",
    ]
    assert body["options"]["approved_domains"] == ["canvas.example.edu", "moodle.example.edu"]
    options = (await harness.refresh_credential()).options
    assert options.instructor_roles == ("Learner", "Instructor")
    assert options.tracking_fields == (("College", "custom_college"),)
    assert options.attendance_report is False

    assert (await harness.me(await harness.launch13(LAUNCH)))["role"] == "instructor"
    entries = await AdminRepository(harness.tool.repo.engine).audit_entries(harness.credential.id)
    assert {e.actor for e in entries} == {f"api:{prefix}"}
    report = next(e for e in entries if e.setting == "attendance_report")
    assert (report.old_value, report.new_value) == ("true", "false")


async def test_invalid_values_get_a_422_naming_each_option_and_nothing_is_stored(
    harness: ToolHarness,
) -> None:
    key = await harness.tool.repo.create_api_key(harness.credential, "sis")
    response = await patch(
        harness,
        key,
        {
            "students_may_host": True,  # valid, but the request is all or nothing
            "default_timezone": "Mars/Olympus",
            "auto_provision": "sometimes",
            "csv_import_max_rows": True,
            "launch_error_message": {"html": "<b>"},
            "group_rules": [["custom_group", "Faculty"]],
            "no_such_option": 1,
        },
    )
    assert response.status_code == 422
    body = response.json()
    assert body["error"] == "invalid_options"
    errors = body["errors"]
    assert set(errors) == {
        "default_timezone",
        "auto_provision",
        "csv_import_max_rows",
        "launch_error_message",
        "group_rules",
        "no_such_option",
    }
    assert "is not a time zone name" in errors["default_timezone"]
    assert "none, instructors, everyone" in errors["auto_provision"]
    assert "whole number" in errors["csv_import_max_rows"]
    assert "must be text" in errors["launch_error_message"]
    assert "3 parts" in errors["group_rules"]
    assert "no option called 'no_such_option'" in errors["no_such_option"]
    assert (await harness.refresh_credential()).options == CredentialOptions()
    assert await AdminRepository(harness.tool.repo.engine).audit_entries(1) == []


async def test_a_body_that_is_not_a_json_object_is_refused(harness: ToolHarness) -> None:
    key = await harness.tool.repo.create_api_key(harness.credential, "sis")
    not_json = await harness.client.patch(
        path(harness.credential), headers=bearer(key), content=b"instructor_roles=Staff"
    )
    assert not_json.status_code == 400 and not_json.json()["error"] == "bad_json"
    for body in ([], "Staff", None, 3):
        response = await patch(harness, key, body)
        assert response.status_code == 422, body
        assert "JSON object" in response.json()["message"]
    assert (await harness.refresh_credential()).options == CredentialOptions()


async def test_a_patch_that_changes_nothing_logs_nothing(harness: ToolHarness) -> None:
    key = await harness.tool.repo.create_api_key(harness.credential, "sis")
    response = await patch(harness, key, {"default_timezone": "UTC", "students_may_host": False})
    assert response.status_code == 200 and response.json()["changed"] == []
    assert await AdminRepository(harness.tool.repo.engine).audit_entries(1) == []


async def test_a_key_never_reaches_another_credentials_configuration(
    harness: ToolHarness,
) -> None:
    repo = harness.tool.repo
    other = await repo.create_credential("other", enabled_plugins=["generic"])
    key = await repo.create_api_key(harness.credential, "sis")
    other_key = await repo.create_api_key(other, "theirs")
    responses = [
        await harness.client.get(path(other), headers=bearer(key)),
        await patch(harness, key, {"students_may_host": True}, target=other.id),
        await harness.client.get(path(424242), headers=bearer(key)),
        await patch(harness, key, {"students_may_host": True}, target=424242),
        await harness.client.get(path(2**40), headers=bearer(key)),
    ]
    for response in responses:
        assert response.status_code == 404
        assert response.json()["error"] == "not_found"
    # Another credential and no credential at all read the same.
    assert responses[0].json() == responses[2].json()
    assert (await repo.credential("other")).options == CredentialOptions()
    # Its own key works on it.
    assert (await harness.client.get(path(other), headers=bearer(other_key))).status_code == 200


async def test_requests_without_a_valid_key_are_refused(harness: ToolHarness) -> None:
    repo = harness.tool.repo
    key = await repo.create_api_key(harness.credential, "sis")
    await repo.revoke_api_key(harness.credential, key.split("_")[1])
    for headers in ({}, bearer(key), bearer("ltp_000000000000_nope")):
        assert (
            await harness.client.get(path(harness.credential), headers=headers)
        ).status_code == 401
        response = await harness.client.patch(
            path(harness.credential), headers=headers, json={"students_may_host": True}
        )
        assert response.status_code == 401
    assert (await harness.refresh_credential()).options == CredentialOptions()


async def test_the_openapi_document_describes_the_configuration_api_and_every_option(
    harness: ToolHarness,
) -> None:
    document = (await harness.client.get("/api/v1/openapi.json")).json()
    operations = document["paths"]["/credentials/{credential_id}/config"]
    assert set(operations) >= {"get", "patch"}
    assert set(operations["patch"]["responses"]) >= {"200", "400", "401", "404", "422"}
    assert "apiKey" in document["components"]["securitySchemes"]
    properties = document["components"]["schemas"]["CredentialOptions"]["properties"]
    assert set(properties) == set(OPTION_NAMES)
    for name, schema in properties.items():
        assert schema["title"] == FIELDS_BY_NAME[name].label
        assert schema.get("description"), name
    assert properties["auto_provision"]["enum"] == ["none", "instructors", "everyone"]
    assert properties["students_may_host"]["type"] == "boolean"
    assert properties["tracking_fields"]["items"]["maxItems"] == 2
