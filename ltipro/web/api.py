"""The JSON API under ``/api/v1/``, described by its OpenAPI document."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ltipro import __version__
from ltipro.sessions import Session
from ltipro.web import config_api, imports_openapi, jobs_api
from ltipro.web import feeds as feeds_api
from ltipro.web import meetings as meetings_api
from ltipro.web.session import require_session


def me_payload(session: Session, credential_name: str, lms_title: str) -> dict[str, Any]:
    """The launch context of a session, as ``GET /api/v1/me`` returns it."""
    context = session.context
    course = context.course
    return {
        "user": {
            "id": context.user_id,
            "name": context.name,
            "given_name": context.given_name,
            "family_name": context.family_name,
            "username": context.username,
            "anonymous": context.anonymous,
        },
        "email": session.identity.email,
        "role": session.identity.role,
        "roles": list(context.roles),
        "timezone": session.identity.timezone,
        "course": (
            {
                "context_id": course.context_id,
                "lms_course_id": course.lms_course_id,
                "title": course.title,
                "label": course.label,
                "history": list(course.history),
            }
            if course
            else None
        ),
        "lms": context.lms,
        "lms_title": lms_title,
        "domain": context.domain,
        "lti_version": context.lti_version,
        "credential": credential_name,
        "locale": context.locale,
    }


async def me(request: Request) -> Response:
    """``GET /api/v1/me``: who the session's user is, in which course."""
    session = await require_session(request)
    tool = request.app.state.tool
    credential = await tool.repo.credential_by_id(session.credential_id)
    return JSONResponse(
        me_payload(session, credential.name, tool.plugins.title(session.context.lms))
    )


def _nullable(kind: str) -> dict[str, Any]:
    return {"type": [kind, "null"]}


OPENAPI: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {
        "title": "ltipro API",
        "version": __version__,
        "description": (
            "The JSON API behind the tool's pages. Authenticate with the session token a "
            "launch gives (Authorization: Bearer <token>)."
        ),
    },
    "servers": [{"url": "/api/v1"}],
    "components": {
        "securitySchemes": {
            "session": {
                "type": "http",
                "scheme": "bearer",
                "description": "The session token of a launch.",
            }
        },
        "schemas": {
            "Error": {
                "type": "object",
                "required": ["error", "message"],
                "properties": {
                    "error": {"type": "string", "description": "A stable reason code."},
                    "message": {"type": "string"},
                },
            },
            "Me": {
                "type": "object",
                "required": ["user", "email", "role", "course", "lms", "credential"],
                "properties": {
                    "user": {
                        "type": "object",
                        "properties": {
                            "id": _nullable("string"),
                            "name": _nullable("string"),
                            "given_name": _nullable("string"),
                            "family_name": _nullable("string"),
                            "username": _nullable("string"),
                            "anonymous": {"type": "boolean"},
                        },
                    },
                    "email": _nullable("string"),
                    "role": {"type": "string", "enum": ["instructor", "student"]},
                    "roles": {"type": "array", "items": {"type": "string"}},
                    "timezone": {"type": "string"},
                    "course": {
                        "type": ["object", "null"],
                        "properties": {
                            "context_id": {"type": "string"},
                            "lms_course_id": _nullable("string"),
                            "title": _nullable("string"),
                            "label": _nullable("string"),
                            "history": {"type": "array", "items": {"type": "string"}},
                        },
                    },
                    "lms": {"type": "string"},
                    "lms_title": {"type": "string"},
                    "domain": {"type": "string"},
                    "lti_version": {"type": "string", "enum": ["1.3", "1.1"]},
                    "credential": {"type": "string"},
                    "locale": _nullable("string"),
                },
            },
        },
    },
    "paths": {
        "/me": {
            "get": {
                "summary": "The launch context of the current session",
                "security": [{"session": []}],
                "responses": {
                    "200": {
                        "description": "The session's user, course and LMS",
                        "content": {
                            "application/json": {"schema": {"$ref": "#/components/schemas/Me"}}
                        },
                    },
                    "401": {
                        "description": "No valid session",
                        "content": {
                            "application/json": {"schema": {"$ref": "#/components/schemas/Error"}}
                        },
                    },
                },
            }
        }
    },
}


async def openapi(request: Request) -> Response:
    """``GET /api/v1/openapi.json``."""
    return JSONResponse(OPENAPI)


# The configuration API (ltipro.web.config_api) brings its own paths and schemas.
OPENAPI["components"]["securitySchemes"]["apiKey"] = config_api.API_KEY_SCHEME
OPENAPI["components"]["schemas"].update(config_api.OPENAPI_SCHEMAS)
OPENAPI["paths"].update(config_api.OPENAPI_PATHS)
# The import API (ltipro.web.imports_openapi) documents its own paths and schemas.
OPENAPI["paths"].update(imports_openapi.OPENAPI_PATHS)
OPENAPI["components"]["schemas"].update(imports_openapi.OPENAPI_SCHEMAS)
# The meetings API (ltipro.web.meetings) documents its own paths and schemas.
OPENAPI["paths"].update(meetings_api.OPENAPI_PATHS)
OPENAPI["components"]["schemas"].update(meetings_api.OPENAPI_SCHEMAS)
# The calendar feeds' links (ltipro.web.feeds).
OPENAPI["paths"].update(feeds_api.OPENAPI_PATHS)
OPENAPI["components"]["schemas"].update(feeds_api.OPENAPI_SCHEMAS)
# The job queue's dead letters (ltipro.web.jobs_api).
OPENAPI["paths"].update(jobs_api.OPENAPI_PATHS)
OPENAPI["components"]["schemas"].update(jobs_api.OPENAPI_SCHEMAS)
