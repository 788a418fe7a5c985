"""``/api/v1/credentials/{id}/config``: a credential's options, read and changed by scripts.

Authenticated with one of the credential's API keys. The changes go through the same
checks as the admin console and ``ltipro config set`` (:func:`check_changes`), are
applied all or nothing, and land in the same audit log, as ``api:<key prefix>``.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ltipro.option_fields import FIELDS_BY_NAME, InvalidOptions, OptionField, check_changes
from ltipro.options import CredentialOptions, OptionError
from ltipro.storage.admin_repository import AdminRepository
from ltipro.storage.repository import Credential
from ltipro.web.session import bearer_token, require_api_key


def config_payload(credential: Credential, options: CredentialOptions) -> dict[str, Any]:
    return {
        "credential": {"id": credential.id, "name": credential.name},
        "options": options.to_json(),
    }


def _error(status: int, code: str, message: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"error": code, "message": message, **extra}, status_code=status)


async def credential_config(request: Request) -> Response:
    """``GET|PATCH /api/v1/credentials/{credential_id}/config``."""
    credential = await require_api_key(request)
    # A key reaches its own credential only; any other id is "not found", whether or
    # not it exists, so keys cannot be used to discover credentials.
    if request.path_params["credential_id"] != credential.id:
        return _error(404, "not_found", "This API key belongs to no credential with this id.")
    if request.method == "GET":
        return JSONResponse(config_payload(credential, credential.options))
    try:
        body = await request.json()
    except Exception:
        return _error(400, "bad_json", "The request body must be a JSON object of options.")
    if not isinstance(body, dict):
        return _error(
            422,
            "invalid_options",
            "The request body must be a JSON object mapping option names to new values.",
            errors={},
        )
    try:
        check_changes(credential.options, body)
    except InvalidOptions as exc:
        return _error(422, "invalid_options", str(exc), errors=exc.errors)
    token = bearer_token(request) or ""
    actor = "api:" + token.split("_", 2)[1]
    repo = AdminRepository(request.app.state.tool.repo.engine)
    try:
        options, changes = await repo.change_options(credential.id, body, actor)
    except OptionError as exc:  # checked above; a rule between options would land here
        return _error(422, "invalid_options", str(exc), errors={"": str(exc)})
    payload = config_payload(credential, options)
    payload["changed"] = [change.setting for change in changes]
    return JSONResponse(payload)


# -- its part of the OpenAPI document (added in ltipro.web.api) --------------------------------


def _option_schema(field: OptionField) -> dict[str, Any]:
    schema: dict[str, Any]
    if field.control == "checkbox":
        schema = {"type": "boolean"}
    elif field.control == "number":
        schema = {"type": "integer", "minimum": 1}
    elif field.control == "list":
        schema = {"type": "array", "items": {"type": "string"}}
    elif field.control == "rows":
        schema = {
            "type": "array",
            "items": {
                "type": "array",
                "items": {"type": "string"},
                "minItems": len(field.columns),
                "maxItems": len(field.columns),
                "description": " / ".join(field.columns),
            },
        }
    elif field.control == "select":
        schema = {"type": "string", "enum": [value for value, _ in field.choices]}
    else:
        schema = {"type": "string"}
    schema["title"] = field.label
    if field.help:
        schema["description"] = field.help
    return schema


def _json_response(description: str, schema: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}},
    }


API_KEY_SCHEME: dict[str, Any] = {
    "type": "http",
    "scheme": "bearer",
    "description": "A credential's API key, ltp_...: `ltipro api-keys create` or the admin console.",
}

OPENAPI_SCHEMAS: dict[str, Any] = {
    "CredentialOptions": {
        "type": "object",
        "description": "Every configuration option of a credential.",
        "properties": {f.name: _option_schema(f) for f in FIELDS_BY_NAME.values()},
        "additionalProperties": False,
    },
    "CredentialConfig": {
        "type": "object",
        "required": ["credential", "options"],
        "properties": {
            "credential": {
                "type": "object",
                "properties": {"id": {"type": "integer"}, "name": {"type": "string"}},
            },
            "options": {"$ref": "#/components/schemas/CredentialOptions"},
            "changed": {
                "type": "array",
                "items": {"type": "string"},
                "description": "After a PATCH: the options whose value changed.",
            },
        },
    },
    "InvalidOptions": {
        "type": "object",
        "required": ["error", "message", "errors"],
        "properties": {
            "error": {"type": "string", "enum": ["invalid_options"]},
            "message": {"type": "string"},
            "errors": {
                "type": "object",
                "description": "What is wrong, by option name.",
                "additionalProperties": {"type": "string"},
            },
        },
    },
}

_CREDENTIAL_ID = {
    "name": "credential_id",
    "in": "path",
    "required": True,
    "schema": {"type": "integer"},
    "description": "The credential's id (the API key must belong to it).",
}

_REFUSALS = {
    "401": _json_response("No API key, or an unknown or revoked one", "Error"),
    "404": _json_response("The API key belongs to another credential", "Error"),
}

OPENAPI_PATHS: dict[str, Any] = {
    "/credentials/{credential_id}/config": {
        "parameters": [_CREDENTIAL_ID],
        "get": {
            "summary": "A credential's configuration options",
            "security": [{"apiKey": []}],
            "responses": {
                "200": _json_response("The options", "CredentialConfig"),
                **_REFUSALS,
            },
        },
        "patch": {
            "summary": "Change some of a credential's options (all or nothing, audit-logged)",
            "security": [{"apiKey": []}],
            "requestBody": {
                "required": True,
                "description": "The options to change and their new values; others stay.",
                "content": {
                    "application/json": {
                        "schema": {"$ref": "#/components/schemas/CredentialOptions"}
                    }
                },
            },
            "responses": {
                "200": _json_response("The options after the change", "CredentialConfig"),
                "400": _json_response("The body is not JSON", "Error"),
                **_REFUSALS,
                "422": _json_response("Invalid values; nothing was changed", "InvalidOptions"),
            },
        },
    }
}
