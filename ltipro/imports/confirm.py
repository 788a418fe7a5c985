"""The ``import.confirm`` job: email the admin that an import is complete.

Queued in the transaction that applies the batch, so the email is sent exactly when the
import happened, and after it (a worker, or the web app on SQLite, runs it). The email
goes to the admin who confirmed the import in the console; for an import through the API
or the command line, to the admins of the credential. Sending twice (a job that ran
again) leaves one outbox file, and an SMTP server sees the same Message-ID.
"""

from __future__ import annotations

import logging

from ltipro import mail
from ltipro.imports.batches import CONFIRM_JOB, Batch, ImportBatches
from ltipro.jobs.handlers import JobContext, PermanentFailure, job_handler
from ltipro.storage.admin_repository import AdminRepository

log = logging.getLogger(__name__)


def confirmation_text(batch: Batch, credential_name: str, base_url: str) -> tuple[str, str]:
    """The email's subject and body."""
    imported = [r for r in batch.rows if r.imported]
    skipped = sum(1 for r in batch.rows if r.action == "skip")
    courses = {(r.domain, r.context_id) for r in imported}
    noun = "meeting" if len(imported) == 1 else "meetings"
    subject = f"Import complete: {len(imported)} {noun} added to {credential_name}"
    when = batch.applied_at.strftime("%Y-%m-%d %H:%M UTC") if batch.applied_at else ""
    lines = [
        f"The import of {batch.file_name} into the credential {credential_name} is complete.",
        "",
        f"Import batch: {batch.id}",
        f"Applied: {when} by {batch.applied_by or batch.created_by}",
        f"Meetings added: {len(imported)} in {len(courses)} course(s)",
        f"Rows already in their course (unchanged): {skipped}",
        "",
        "Row  Meeting ID     Context ID / Domain",
    ]
    for row in imported[:200]:
        lines.append(f"{row.number:<4} {row.meeting_id or '':<14} {row.context_id} / {row.domain}")
    if len(imported) > 200:
        lines.append(f"... and {len(imported) - 200} more (see the batch in the admin console)")
    lines += [
        "",
        "Instructors find the meetings when they open the tool from these courses; they are",
        "made alternative hosts of them when they launch.",
        "",
        "To take the meetings out of the courses again, undo the batch in the admin console:",
        f"{base_url.rstrip('/')}/admin/credentials/{batch.credential_id}/imports/{batch.id}",
        f"or run: ltipro meetings undo {batch.id}",
    ]
    return subject, "\n".join(lines) + "\n"


@job_handler(CONFIRM_JOB, timeout=120)
async def send_confirmation(context: JobContext) -> None:
    """Send the confirmation of one applied batch (payload ``{"batch": id}``)."""
    tool = context.tool
    if tool is None:
        raise PermanentFailure("the confirmation email needs the tool's settings")
    batch_id = int(context.payload["batch"])
    credential_id = context.job.credential_id
    if credential_id is None:
        return  # the credential was deleted: no one to confirm to
    batch = await ImportBatches(tool.repo.engine).get(credential_id, batch_id)
    if batch is None or batch.applied_at is None:
        return
    credential = await tool.repo.credential_by_id(credential_id)
    if batch.notify:
        recipients = [batch.notify]
    else:
        admins = await AdminRepository(tool.repo.engine).list_admins()
        recipients = sorted(a.email for a in admins if credential_id in a.credential_ids)
        if not recipients:
            recipients = sorted(a.email for a in admins if a.is_superuser)
    if not recipients:
        log.info("import batch %s: no admin to send the confirmation to", batch_id)
        return
    subject, body = confirmation_text(batch, credential.name, tool.settings.base_url)
    key = f"import-{credential_id}-{batch_id}"
    message = mail.compose(tool.settings, recipients, subject, body, key=key)
    where = await mail.send(tool.settings, message, key=key)
    log.info("import batch %s confirmed to %s (%s)", batch_id, ", ".join(recipients), where)
