"""The console's Jobs tab: a credential's queue at a glance, and its dead letters.

A job that failed every attempt (an LMS refusing a token, a course deleted in the LMS)
stays ``dead`` until an admin acts (docs/jobs.md). Here the credential's admins see how
many jobs are in each state and every dead one with its last error, and retry it (once
what made it fail is fixed) or discard it. A job of another credential answers 404, like
one that does not exist. Superusers also have ``/admin/jobs``: every credential's dead jobs
at a glance, each linked to its credential's tab (a job that belongs to no credential is
retried with ``ltipro jobs retry``). Each retry and discard lands in the audit log.

A queued job can be retried (made due now) or discarded too, as with ``ltipro jobs``; a
running or done job cannot (409).

The same actions are in the API (:mod:`ltipro.web.jobs_api`), for scripts with one of the
credential's API keys.
"""

from __future__ import annotations

from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from ltipro.jobs import Job, JobNotFound, JobStateError, count_jobs, dead_jobs, get_job
from ltipro.jobs import discard_job as discard_queued_job
from ltipro.jobs import retry_job as retry_dead_job
from ltipro.storage.admin_repository import Change
from ltipro.web.admin import MAX_ID, NOT_FOUND, AdminError, Page, console, credential_path

# Dead letters shown on one page; an installation with more has a bigger problem to fix
# first, and `ltipro jobs list --status dead` lists them all.
PAGE_SIZE = 200


async def _job_of(page: Page) -> Job:
    """The job in the path, if this admin may act on it; otherwise the same 404."""
    job_id = int(page.request.path_params["job_id"])
    if not 1 <= job_id <= MAX_ID:
        raise AdminError(404, NOT_FOUND)
    try:
        job = await get_job(page.tool.repo.engine, job_id)
    except JobNotFound:
        raise AdminError(404, NOT_FOUND) from None
    if job.credential_id != page.managed.id:
        raise AdminError(404, NOT_FOUND)
    return job


async def audit_job_action(page: Page, job: Job, action: str) -> None:
    """The audit log's line for a retried or discarded job."""
    change = Change(f"jobs.{job.id}", f"{job.status} ({job.kind} {job.key})", action)
    await page.admins.record_changes(page.actor, page.managed.id, page.managed.name, [change])


async def _act(page: Page, job: Job, action: str) -> None:
    engine = page.tool.repo.engine
    try:
        if action == "retried":
            await retry_dead_job(engine, job.id)
        else:
            await discard_queued_job(engine, job.id)
    except JobNotFound:
        raise AdminError(404, NOT_FOUND) from None
    except JobStateError as exc:
        raise AdminError(409, str(exc)) from None
    await audit_job_action(page, job, action)


@console
async def jobs(page: Page) -> Response:
    """``GET /admin/credentials/{id}/jobs``: counts by status and the dead letters."""
    engine = page.tool.repo.engine
    credential = page.managed
    return page.render(
        "admin/jobs.html",
        {
            "counts": await count_jobs(engine, credential_id=credential.id),
            "dead": await dead_jobs(engine, credential_id=credential.id, limit=PAGE_SIZE),
            "action_base": credential_path(credential, "jobs"),
            "names": {},
            "done": page.request.query_params.get("done", ""),
        },
    )


@console
async def retry(page: Page) -> Response:
    """``POST /admin/credentials/{id}/jobs/{job_id}/retry``: back in the queue, due now."""
    job = await _job_of(page)
    await _act(page, job, "retried")
    return page.redirect(credential_path(page.managed, "jobs"), done=f"retried:{job.id}")


@console
async def discard(page: Page) -> Response:
    """``POST /admin/credentials/{id}/jobs/{job_id}/discard``: deleted for good."""
    job = await _job_of(page)
    await _act(page, job, "discarded")
    return page.redirect(credential_path(page.managed, "jobs"), done=f"discarded:{job.id}")


@console
async def all_jobs(page: Page) -> Response:
    """``GET /admin/jobs``: every dead job, whatever its credential (superusers)."""
    if not page.admin.is_superuser:
        raise AdminError(404, NOT_FOUND)
    engine = page.tool.repo.engine
    names = {c.id: c.name for c in await page.tool.repo.list_credentials()}
    return page.render(
        "admin/jobs.html",
        {
            "counts": await count_jobs(engine),
            "dead": await dead_jobs(engine, limit=PAGE_SIZE),
            "action_base": "",
            "names": names,
            "done": page.request.query_params.get("done", ""),
        },
    )


def job_routes() -> list[BaseRoute]:
    """The Jobs routes, mounted with the console's at ``/admin``."""
    credential = "/credentials/{credential_id:int}"
    return [
        Route("/jobs", all_jobs, methods=["GET"]),
        Route(f"{credential}/jobs", jobs, methods=["GET"]),
        Route(f"{credential}/jobs/{{job_id:int}}/retry", retry, methods=["POST"]),
        Route(f"{credential}/jobs/{{job_id:int}}/discard", discard, methods=["POST"]),
    ]
