"""The import API's part of the OpenAPI document (added in :mod:`ltipro.web.api`)."""

from __future__ import annotations

from typing import Any


def _json(description: str, schema: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}},
    }


_CREDENTIAL_ID = {
    "name": "credential_id",
    "in": "path",
    "required": True,
    "schema": {"type": "integer"},
    "description": "The credential's id (the API key must belong to it).",
}
_BATCH = {
    "name": "batch",
    "in": "path",
    "required": True,
    "schema": {"type": "integer"},
    "description": "The import batch's id (from the POST's answer, or the console).",
}
_DRY_RUN = {
    "name": "dry_run",
    "in": "query",
    "required": False,
    "schema": {"type": "string", "enum": ["1", "0", "true", "false"]},
    "description": "1: only check and report what would happen; nothing is written.",
}
_REFUSALS = {
    "401": _json("No API key, or an unknown or revoked one", "Error"),
    "403": _json("The API key belongs to another credential", "Error"),
}

OPENAPI_SCHEMAS: dict[str, Any] = {
    "ImportRow": {
        "type": "object",
        "required": ["row", "action", "errors", "notes"],
        "properties": {
            "row": {"type": "integer", "description": "The row number a spreadsheet shows."},
            "meeting_id_cell": {"type": "string", "description": "The Meeting ID cell as sent."},
            "meeting_id": {"type": ["string", "null"], "description": "The ID read from it."},
            "context_id": {"type": "string"},
            "domain": {"type": "string"},
            "lms_course_id": {"type": ["string", "null"]},
            "action": {"type": "string", "enum": ["add", "skip", "error"]},
            "errors": {"type": "array", "items": {"type": "string"}},
            "notes": {"type": "array", "items": {"type": "string"}},
            "course": {"type": ["string", "null"], "enum": ["known", "imported", "new", None]},
            "topic": {"type": ["string", "null"]},
            "meeting_uid": {"type": ["string", "null"]},
            "undone": {"type": "boolean"},
        },
    },
    "ImportBatch": {
        "type": "object",
        "required": ["id", "status", "file_name", "summary"],
        "properties": {
            "id": {"type": "integer"},
            "status": {
                "type": "string",
                "enum": ["checking", "checked", "applying", "applied", "undone", "interrupted"],
            },
            "file_name": {"type": "string"},
            "created_by": {"type": "string"},
            "created_at": {"type": "string", "format": "date-time"},
            "applied_at": {"type": ["string", "null"], "format": "date-time"},
            "applied_by": {"type": ["string", "null"]},
            "undone_at": {"type": ["string", "null"], "format": "date-time"},
            "undone_by": {"type": ["string", "null"]},
            "total_rows": {"type": "integer"},
            "checked_rows": {"type": "integer"},
            "error_rows": {"type": "integer"},
            "summary": {"type": "object", "description": "Counts: rows, add, skip, errors."},
            "message": {"type": ["string", "null"]},
            "dry_run": {"type": "boolean"},
            "rows": {"type": "array", "items": {"$ref": "#/components/schemas/ImportRow"}},
        },
    },
    "ImportUndo": {
        "type": "object",
        "required": ["dry_run", "batch", "meetings_removed", "rows"],
        "properties": {
            "dry_run": {"type": "boolean"},
            "batch": {"$ref": "#/components/schemas/ImportBatch"},
            "meetings_removed": {"type": "integer"},
            "courses_removed": {"type": "integer"},
            "rows": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "row": {"type": "integer"},
                        "action": {"type": "string", "enum": ["remove", "gone"]},
                        "meeting_id": {"type": ["string", "null"]},
                        "context_id": {"type": "string"},
                        "domain": {"type": "string"},
                        "course_removed": {"type": "boolean"},
                    },
                },
            },
        },
    },
}

OPENAPI_PATHS: dict[str, Any] = {
    "/credentials/{credential_id}/imports": {
        "parameters": [_CREDENTIAL_ID],
        "post": {
            "summary": "Import meetings from a CSV file (or only check it, with dry_run=1)",
            "description": (
                "Columns Meeting ID, Context ID, Domain and optionally "
                "custom_canvas_course_id. Every row is checked first; a file with any row "
                "error imports nothing (422, with each error and its row number). Applying "
                "is all or nothing and recorded as one batch. See docs/import.md."
            ),
            "security": [{"apiKey": []}],
            "parameters": [
                _DRY_RUN,
                {
                    "name": "file_name",
                    "in": "query",
                    "required": False,
                    "schema": {"type": "string"},
                    "description": "For a text/csv body: the name the batch records.",
                },
            ],
            "requestBody": {
                "required": True,
                "content": {
                    "text/csv": {"schema": {"type": "string"}},
                    "multipart/form-data": {
                        "schema": {
                            "type": "object",
                            "required": ["file"],
                            "properties": {
                                "file": {"type": "string", "format": "binary"},
                                "dry_run": {"type": "string", "enum": ["1", "0"]},
                            },
                        }
                    },
                },
            },
            "responses": {
                "200": _json("The dry run: what would happen, row by row", "ImportBatch"),
                "201": _json("Imported: the applied batch", "ImportBatch"),
                "400": _json("The file cannot be read as an import file", "Error"),
                **_REFUSALS,
                "409": _json("The meetings provider is not set up", "Error"),
                "413": _json("Too many rows, or too large a file; nothing imported", "Error"),
                "415": _json("Neither text/csv nor multipart/form-data", "Error"),
                "422": _json("Rows with errors; nothing was imported", "ImportBatch"),
            },
        },
    },
    "/credentials/{credential_id}/imports/{batch}": {
        "parameters": [_CREDENTIAL_ID, _BATCH],
        "get": {
            "summary": "An import batch: its state, progress and rows",
            "security": [{"apiKey": []}],
            "responses": {
                "200": _json("The batch", "ImportBatch"),
                **_REFUSALS,
                "404": _json("No such batch for this credential", "Error"),
            },
        },
        "delete": {
            "summary": "Undo an import batch (all its rows, or some), or preview the undo",
            "description": (
                "Removes the meetings the batch imported from their courses (the provider's "
                "meetings stay), in one transaction; the batch is kept as a record."
            ),
            "security": [{"apiKey": []}],
            "parameters": [
                _DRY_RUN,
                {
                    "name": "rows",
                    "in": "query",
                    "required": False,
                    "schema": {"type": "string", "pattern": "^[0-9]+(,[0-9]+)*$"},
                    "description": "Only these row numbers, such as 3,5 (default: every row).",
                },
            ],
            "responses": {
                "200": _json("What was (or, with dry_run=1, would be) removed", "ImportUndo"),
                **_REFUSALS,
                "404": _json("No such batch for this credential", "Error"),
                "409": _json("Never applied, or undone already", "Error"),
                "422": _json("Rows the batch did not import", "Error"),
            },
        },
    },
}
