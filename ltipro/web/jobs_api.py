"""``/api/v1/credentials/{id}/jobs``: a credential's job queue and dead letters, for scripts.

The console's Jobs tab (:mod:`ltipro.web.admin_jobs`) as JSON, authenticated with one of
the credential's API keys like the configuration API. A key reaches its own
credential's jobs only: another credential's job, like a missing one, is a 404. A dead or
queued job can be retried or discarded; a running or done one answers 409. Retries and
discards land in the audit log as ``api:<key prefix>``.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ltipro.jobs import Job, JobNotFound, JobStateError, count_jobs, dead_jobs, get_job
from ltipro.jobs import discard_job as discard_queued_job
from ltipro.jobs import retry_job as retry_dead_job
from ltipro.storage.admin_repository import AdminRepository, Change
from ltipro.storage.repository import Credential
from ltipro.web.session import bearer_token, require_api_key

MAX_ID = 2**31 - 1


def job_json(job: Job) -> dict[str, Any]:
    """A job as the API shows it; its payload holds ids only, never secrets."""

    def when(value: Any) -> str | None:
        return value.isoformat() if value is not None else None

    return {
        "id": job.id,
        "kind": job.kind,
        "key": job.key,
        "status": job.status,
        "attempts": job.attempts,
        "max_attempts": job.max_attempts,
        "last_error": job.last_error,
        "payload": job.payload,
        "created_at": when(job.created_at),
        "updated_at": when(job.updated_at),
        "finished_at": when(job.finished_at),
        "run_after": when(job.run_after),
    }


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": code, "message": message}, status_code=status)


async def _credential(request: Request) -> Credential | Response:
    credential = await require_api_key(request)
    if request.path_params["credential_id"] != credential.id:
        return _error(404, "not_found", "This API key belongs to no credential with this id.")
    return credential


async def credential_jobs(request: Request) -> Response:
    """``GET /api/v1/credentials/{credential_id}/jobs``: counts by status, dead jobs."""
    found = await _credential(request)
    if isinstance(found, Response):
        return found
    engine = request.app.state.tool.repo.engine
    return JSONResponse(
        {
            "counts": await count_jobs(engine, credential_id=found.id),
            "dead": [job_json(j) for j in await dead_jobs(engine, credential_id=found.id)],
        },
        headers={"Cache-Control": "no-store"},
    )


async def _act(request: Request, action: str) -> Response:
    found = await _credential(request)
    if isinstance(found, Response):
        return found
    engine = request.app.state.tool.repo.engine
    job_id = int(request.path_params["job_id"])
    missing = _error(404, "not_found", f"This credential has no job {job_id}.")
    if not 1 <= job_id <= MAX_ID:
        return missing
    try:
        job = await get_job(engine, job_id)
    except JobNotFound:
        return missing
    if job.credential_id != found.id:
        return missing
    try:
        after = (
            await retry_dead_job(engine, job.id)
            if action == "retried"
            else await discard_queued_job(engine, job.id)
        )
    except JobNotFound:
        return missing
    except JobStateError as exc:
        return _error(409, "job_busy", str(exc))
    token = bearer_token(request) or ""
    actor = "api:" + token.split("_", 2)[1]
    await AdminRepository(engine).record_changes(
        actor,
        found.id,
        found.name,
        [Change(f"jobs.{job.id}", f"{job.status} ({job.kind} {job.key})", action)],
    )
    body = job_json(after)
    if action == "discarded":
        body["status"] = "discarded"
    return JSONResponse(body)


async def retry(request: Request) -> Response:
    """``POST /api/v1/credentials/{credential_id}/jobs/{job_id}/retry``."""
    return await _act(request, "retried")


async def discard(request: Request) -> Response:
    """``POST /api/v1/credentials/{credential_id}/jobs/{job_id}/discard``."""
    return await _act(request, "discarded")


# -- its part of the OpenAPI document (added in ltipro.web.api) --------------------------------


def _json(description: str, schema: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}},
    }


_PARAMETERS = [
    {
        "name": "credential_id",
        "in": "path",
        "required": True,
        "schema": {"type": "integer"},
        "description": "The credential's id (the API key must belong to it).",
    }
]
_JOB_ID = {"name": "job_id", "in": "path", "required": True, "schema": {"type": "integer"}}
_REFUSED = {
    "401": _json("No API key, or an unknown or revoked one", "Error"),
    "404": _json("No such job of this credential (or the key is another's)", "Error"),
}


def _action(summary: str) -> dict[str, Any]:
    return {
        "parameters": [*_PARAMETERS, _JOB_ID],
        "post": {
            "summary": summary,
            "security": [{"apiKey": []}],
            "responses": {
                "200": _json("The job after the action", "Job"),
                **_REFUSED,
                "409": _json("The job is running or done", "Error"),
            },
        },
    }


OPENAPI_PATHS: dict[str, Any] = {
    "/credentials/{credential_id}/jobs": {
        "parameters": _PARAMETERS,
        "get": {
            "summary": "A credential's jobs by status, and its dead jobs",
            "security": [{"apiKey": []}],
            "responses": {"200": _json("Counts and dead jobs", "JobQueue"), **_REFUSED},
        },
    },
    "/credentials/{credential_id}/jobs/{job_id}/retry": _action(
        "Put a dead (or queued) job back in the queue, due now, with all its attempts"
    ),
    "/credentials/{credential_id}/jobs/{job_id}/discard": _action(
        "Delete a dead (or queued) job for good (audit-logged)"
    ),
}

OPENAPI_SCHEMAS: dict[str, Any] = {
    "Job": {
        "type": "object",
        "properties": {
            "id": {"type": "integer"},
            "kind": {"type": "string"},
            "key": {"type": "string"},
            "status": {
                "type": "string",
                "enum": ["queued", "running", "done", "dead", "discarded"],
            },
            "attempts": {"type": "integer"},
            "max_attempts": {"type": "integer"},
            "last_error": {"type": ["string", "null"]},
            "payload": {},
            "created_at": {"type": "string", "format": "date-time"},
            "updated_at": {"type": "string", "format": "date-time"},
            "finished_at": {"type": ["string", "null"], "format": "date-time"},
            "run_after": {"type": "string", "format": "date-time"},
        },
    },
    "JobQueue": {
        "type": "object",
        "properties": {
            "counts": {"type": "object", "additionalProperties": {"type": "integer"}},
            "dead": {"type": "array", "items": {"$ref": "#/components/schemas/Job"}},
        },
    },
}
