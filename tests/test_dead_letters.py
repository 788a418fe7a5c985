"""Dead letters in the admin console and the API: seen, retried and discarded by the
credential's own admins only, each action in the audit log."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from html import unescape

import pytest
from test_admin_console import Console, make_admin

from ltipro.jobs import (
    DEAD,
    DONE,
    QUEUED,
    JobContext,
    JobHandlers,
    PermanentFailure,
    Worker,
    enqueue,
    get_job,
)
from ltipro.jobs.queue import JobNotFound
from ltipro.storage.admin_repository import AdminRepository
from ltipro.storage.repository import Credential
from ltipro.testing.harness import ToolHarness

KIND = "test.refused"


async def refuse(context: JobContext) -> None:
    raise PermanentFailure(f"the LMS refused course {context.payload['course']}")


async def dead_job(harness: ToolHarness, credential: Credential | None, key: str) -> int:
    """A job of ``credential`` that ran once and went dead, as a real worker leaves it."""
    engine = harness.tool.repo.engine
    async with engine.begin() as conn:
        job = await enqueue(
            conn,
            KIND,
            {"course": key},
            key=key,
            credential_id=credential.id if credential else None,
        )
    handlers = JobHandlers()
    handlers.register(KIND, refuse)
    outcome = await Worker(engine, handlers=handlers, clock=lambda: datetime.now(UTC)).run_one()
    assert outcome is not None and outcome.result == "dead"
    return job.id


async def ok(context: JobContext) -> None:
    return None


async def done_job(harness: ToolHarness) -> int:
    engine = harness.tool.repo.engine
    async with engine.begin() as conn:
        job = await enqueue(conn, "test.ok", {}, key="ok", credential_id=harness.credential.id)
    handlers = JobHandlers()
    handlers.register("test.ok", ok)
    outcome = await Worker(engine, handlers=handlers).run_one()
    assert outcome is not None and outcome.result == "done"
    return job.id


@pytest.fixture
async def other(harness: ToolHarness) -> Credential:
    credential: Credential = await harness.tool.repo.create_credential(
        "other", enabled_plugins=["generic"]
    )
    return credential


@pytest.fixture
async def ada(harness: ToolHarness) -> AsyncIterator[Console]:
    """An admin of the credential ``test`` only."""
    await make_admin(harness, "ada@example.edu", [harness.credential])
    browser = Console(harness)
    assert (await browser.sign_in("ada@example.edu")).status_code == 303
    yield browser
    await browser.close()


def job_rows(html: str) -> list[str]:
    return re.findall(r'<tr data-job="(\d+)">', html)


async def test_an_admin_sees_the_counts_and_dead_jobs_of_their_credential_only(
    harness: ToolHarness, ada: Console, other: Credential
) -> None:
    mine = await dead_job(harness, harness.credential, "course-1")
    theirs = await dead_job(harness, other, "course-2")
    async with harness.tool.repo.engine.begin() as conn:
        await enqueue(conn, KIND, {}, key="waiting", credential_id=harness.credential.id)

    page = await ada.get(f"/admin/credentials/{harness.credential.id}/jobs")
    assert page.status_code == 200
    assert job_rows(page.text) == [str(mine)]
    row = page.text.split(f'data-job="{mine}"')[1].split("</tr>")[0]
    assert "PermanentFailure: the LMS refused course course-1" in unescape(row)
    assert KIND in row and "course-1" in row and "1 of 12" in row
    assert re.search(r'data-count="dead">1<', page.text)
    assert re.search(r'data-count="queued">1<', page.text)
    assert f'href="/admin/credentials/{harness.credential.id}/jobs"' in page.text  # the tab
    assert str(theirs) not in job_rows(page.text)

    refused = await ada.get(f"/admin/credentials/{other.id}/jobs")
    assert refused.status_code == 404
    assert (await ada.get("/admin/jobs")).status_code == 404  # superusers only


async def test_retry_puts_the_job_back_in_the_queue_and_is_audited(
    harness: ToolHarness, ada: Console
) -> None:
    job_id = await dead_job(harness, harness.credential, "course-1")
    base = f"/admin/credentials/{harness.credential.id}/jobs"
    response = await ada.post(f"{base}/{job_id}/retry")
    assert response.status_code == 303
    assert response.headers["location"] == f"{base}?done=retried%3A{job_id}"
    job = await get_job(harness.tool.repo.engine, job_id)
    assert job.status == QUEUED and job.attempts == 0
    page = await ada.get(response.headers["location"])
    assert f"Job {job_id} is back in the queue" in page.text and job_rows(page.text) == []
    entries = await AdminRepository(harness.tool.repo.engine).audit_entries(harness.credential.id)
    [entry] = [e for e in entries if e.setting == f"jobs.{job_id}"]
    assert entry.actor == "ada@example.edu" and entry.new_value == "retried"
    assert entry.old_value is not None and "dead" in entry.old_value and KIND in entry.old_value
    # A job that is done cannot be retried.
    finished = await done_job(harness)
    again = await ada.post(f"{base}/{finished}/retry")
    assert again.status_code == 409
    assert "only a dead or queued job can be retried" in unescape(again.text)
    assert (await get_job(harness.tool.repo.engine, finished)).status == DONE


async def test_discard_deletes_the_job_and_is_audited(harness: ToolHarness, ada: Console) -> None:
    job_id = await dead_job(harness, harness.credential, "course-1")
    base = f"/admin/credentials/{harness.credential.id}/jobs"
    assert (await ada.post(f"{base}/{job_id}/discard")).status_code == 303
    with pytest.raises(JobNotFound):
        await get_job(harness.tool.repo.engine, job_id)
    entries = await AdminRepository(harness.tool.repo.engine).audit_entries(harness.credential.id)
    assert [e.new_value for e in entries if e.setting == f"jobs.{job_id}"] == ["discarded"]
    assert (await ada.post(f"{base}/{job_id}/discard")).status_code == 404


async def test_an_admin_of_one_credential_cannot_touch_anothers_jobs(
    harness: ToolHarness, ada: Console, other: Credential
) -> None:
    theirs = await dead_job(harness, other, "course-2")
    orphan = await dead_job(harness, None, "course-3")
    mine = f"/admin/credentials/{harness.credential.id}/jobs"
    attempts = [
        f"/admin/credentials/{other.id}/jobs/{theirs}/retry",
        f"/admin/credentials/{other.id}/jobs/{theirs}/discard",
        # Their job through my credential's path: still not mine.
        f"{mine}/{theirs}/retry",
        f"{mine}/{theirs}/discard",
        f"{mine}/{orphan}/retry",
        f"{mine}/99999999999/retry",
    ]
    for path in attempts:
        response = await ada.post(path)
        assert response.status_code == 404, path
    for job_id in (theirs, orphan):
        assert (await get_job(harness.tool.repo.engine, job_id)).status == DEAD
    # Without the session's CSRF token nothing happens, even on one's own job.
    own = await dead_job(harness, harness.credential, "course-4")
    forged = await ada.client.post(f"{mine}/{own}/retry", data={})
    assert forged.status_code == 403
    assert (await get_job(harness.tool.repo.engine, own)).status == DEAD


async def test_a_superuser_sees_every_dead_job_and_acts_through_its_credential(
    harness: ToolHarness, other: Credential
) -> None:
    theirs = await dead_job(harness, other, "course-2")
    orphan = await dead_job(harness, None, "course-3")
    await make_admin(harness, "root@example.edu", superuser=True)
    root = Console(harness)
    assert (await root.sign_in("root@example.edu")).status_code == 303
    page = await root.get("/admin/jobs")
    assert page.status_code == 200
    assert set(job_rows(page.text)) == {str(theirs), str(orphan)}
    row = page.text.split(f'data-job="{theirs}"')[1].split("</tr>")[0]
    assert "other" in row and f'href="/admin/credentials/{other.id}/jobs"' in row
    orphan_row = page.text.split(f'data-job="{orphan}"')[1].split("</tr>")[0]
    assert f"ltipro jobs retry {orphan}" in orphan_row and "<form" not in orphan_row
    base = f"/admin/credentials/{other.id}/jobs"
    assert job_rows((await root.get(base)).text) == [str(theirs)]
    assert (await root.post(f"{base}/{theirs}/retry")).status_code == 303
    assert (await get_job(harness.tool.repo.engine, theirs)).status == QUEUED
    entries = await AdminRepository(harness.tool.repo.engine).audit_entries(other.id)
    assert [(e.actor, e.new_value) for e in entries if e.setting == f"jobs.{theirs}"] == [
        ("root@example.edu", "retried")
    ]
    await root.close()


async def test_the_api_lists_retries_and_discards_with_the_credentials_key(
    harness: ToolHarness, other: Credential
) -> None:
    mine = await dead_job(harness, harness.credential, "course-1")
    second = await dead_job(harness, harness.credential, "course-5")
    theirs = await dead_job(harness, other, "course-2")
    key = await harness.tool.repo.create_api_key(harness.credential, "ops")
    other_key = await harness.tool.repo.create_api_key(other, "ops")
    auth = {"Authorization": f"Bearer {key}"}
    base = f"/api/v1/credentials/{harness.credential.id}/jobs"

    listed = await harness.client.get(base, headers=auth)
    assert listed.status_code == 200
    body = listed.json()
    assert body["counts"]["dead"] == 2
    assert {j["id"] for j in body["dead"]} == {mine, second}
    assert all(j["last_error"].startswith("PermanentFailure:") for j in body["dead"])

    assert (await harness.client.get(base)).status_code == 401
    other_listing = await harness.client.get(base, headers={"Authorization": f"Bearer {other_key}"})
    assert other_listing.status_code == 404
    for path in (f"{base}/{theirs}/retry", f"{base}/{theirs}/discard", f"{base}/0/retry"):
        assert (await harness.client.post(path, headers=auth)).status_code == 404, path
    wrong_key = await harness.client.post(
        f"{base}/{mine}/retry", headers={"Authorization": "Bearer " + other_key}
    )
    assert wrong_key.status_code == 404
    assert (await get_job(harness.tool.repo.engine, theirs)).status == DEAD

    retried = await harness.client.post(f"{base}/{mine}/retry", headers=auth)
    assert retried.status_code == 200 and retried.json()["status"] == QUEUED
    assert retried.json()["attempts"] == 0
    finished = await done_job(harness)
    busy = await harness.client.post(f"{base}/{finished}/retry", headers=auth)
    assert busy.status_code == 409 and busy.json()["error"] == "job_busy"
    discarded = await harness.client.post(f"{base}/{second}/discard", headers=auth)
    assert discarded.status_code == 200 and discarded.json()["status"] == "discarded"
    entries = await AdminRepository(harness.tool.repo.engine).audit_entries(harness.credential.id)
    prefix = key.split("_", 2)[1]
    assert {(e.setting, e.actor, e.new_value) for e in entries} >= {
        (f"jobs.{mine}", f"api:{prefix}", "retried"),
        (f"jobs.{second}", f"api:{prefix}", "discarded"),
    }
