"""Meeting import in the admin console and the JSON API.

Console (mounted under ``/admin`` by :func:`ltipro.web.admin.admin_routes`), for the
admins of the credential: the CSV template, the upload, the dry-run preview with its
progress, Confirm, the batch list, Undo with its preview, and the Mail page that lists
the outbox. Every form goes through the console's sign-in and CSRF checks.

API, authenticated with one of the credential's API keys::

    POST   /api/v1/credentials/{id}/imports[?dry_run=1]   multipart (field "file") or text/csv
    GET    /api/v1/credentials/{id}/imports/{batch}
    DELETE /api/v1/credentials/{id}/imports/{batch}[?dry_run=1&rows=3,5]
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from ltipro import mail
from ltipro.imports import confirm as _confirm  # noqa: F401 - registers the import.confirm job
from ltipro.imports import service
from ltipro.imports.batches import APPLYING, CHECKING, Batch, BatchError
from ltipro.imports.checks import COURSE_STATES
from ltipro.imports.csvfile import DEFAULT_MAX_BYTES, TEMPLATE_HEADER, ImportFileError
from ltipro.meetings.rules import csv_text
from ltipro.providers.base import ProviderError
from ltipro.storage.repository import Credential
from ltipro.web.admin import NOT_FOUND, AdminError, Page, console, credential_path
from ltipro.web.session import bearer_token, require_api_key

FILE_FIELD = "file"
TEMPLATE_NAME = "meeting-import-template.csv"
_ROWS = re.compile(r"\d{1,7}(?:\s*,\s*\d{1,7})*")


# -- shared ------------------------------------------------------------------------------------


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def batch_json(batch: Batch, *, rows: bool = True) -> dict[str, Any]:
    """A batch as the API returns it."""
    data: dict[str, Any] = {
        "id": batch.id,
        "status": batch.status,
        "file_name": batch.file_name,
        "created_by": batch.created_by,
        "created_at": _iso(batch.created_at),
        "applied_at": _iso(batch.applied_at),
        "applied_by": batch.applied_by,
        "undone_at": _iso(batch.undone_at),
        "undone_by": batch.undone_by,
        "total_rows": batch.total_rows,
        "checked_rows": batch.checked_rows,
        "error_rows": batch.error_rows,
        "summary": batch.summary,
        "message": batch.message,
    }
    if rows:
        data["rows"] = [
            {
                "row": r.number,
                "meeting_id_cell": r.meeting_id_cell,
                "meeting_id": r.meeting_id,
                "context_id": r.context_id,
                "domain": r.domain,
                "lms_course_id": r.lms_course_id,
                "action": r.action,
                "errors": r.errors,
                "notes": r.notes,
                "course": r.course_state,
                "topic": r.topic or None,
                "meeting_uid": r.meeting_uid,
                "undone": r.undone_at is not None,
            }
            for r in batch.rows
        ]
    return data


def report_csv(batch: Batch) -> str:
    """The batch's rows as a CSV the admin can open in a spreadsheet (formulas neutralised:
    every cell came from an uploaded file or the provider)."""
    header: tuple[str, ...] = ("Row", "Meeting ID", "Context ID", "Domain")
    header += ("custom_canvas_course_id", "Topic", "Action", "Course", "Errors", "Notes", "Undone")
    return csv_text(
        header,
        (
            (
                r.number,
                r.meeting_id or r.meeting_id_cell,
                r.context_id,
                r.domain,
                r.lms_course_id or "",
                r.topic,
                r.action,
                COURSE_STATES.get(r.course_state or "", ""),
                " ".join(r.errors),
                " ".join(r.notes),
                "yes" if r.undone_at else "",
            )
            for r in batch.rows
        ),
    )


def _csv_response(text: str, name: str) -> Response:
    return Response(
        text.encode("utf-8-sig"),  # the mark makes Excel read UTF-8
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


def _row_numbers(raw: str) -> list[int] | None:
    text = raw.strip()
    if not text:
        return None
    if not _ROWS.fullmatch(text):
        raise BatchError("Rows are row numbers separated by commas, such as 3,5,8.", 422)
    return sorted({int(n) for n in text.split(",")})


# -- the console -----------------------------------------------------------------------------------


def _batch_path(credential: Credential, batch_id: int, tail: str = "") -> str:
    return credential_path(credential, f"imports/{batch_id}{tail}")


async def _imports_page(page: Page, error: str = "", status: int = 200) -> Response:
    return page.render(
        "admin/imports.html",
        {
            "batches": await service.batches_of(page.tool).list(page.managed.id),
            "error": error,
            "max_rows": service.max_rows(page.tool, page.managed),
            "max_bytes": DEFAULT_MAX_BYTES,
        },
        status_code=status,
    )


async def _batch_of(page: Page) -> Batch:
    try:
        return await service.get(page.tool, page.managed, int(page.request.path_params["batch"]))
    except BatchError:
        raise AdminError(404, NOT_FOUND) from None


@console
async def imports_page(page: Page) -> Response:
    """``GET|POST /admin/credentials/{id}/imports``: template, upload, batches."""
    if page.form is None:
        return await _imports_page(page)
    upload = page.form.get(FILE_FIELD)
    if not isinstance(upload, UploadFile) or not upload.filename:
        return await _imports_page(page, "Choose a CSV file to upload.", 400)
    data = await upload.read(DEFAULT_MAX_BYTES + 1)
    try:
        parsed = service.read(page.tool, page.managed, data)
        batch_id = await service.start_check(
            page.tool,
            page.managed,
            parsed,
            file_name=upload.filename,
            actor=page.actor,
            notify=page.admin.email,
        )
    except ImportFileError as exc:
        return await _imports_page(page, exc.message, 400)
    except ProviderError as exc:
        return await _imports_page(page, exc.message, 409)
    return page.redirect(_batch_path(page.managed, batch_id))


@console
async def template(page: Page) -> Response:
    """``GET .../imports/template.csv``: the header row every import file starts with."""
    return _csv_response(csv_text(TEMPLATE_HEADER, []), TEMPLATE_NAME)


@console
async def batch_page(page: Page) -> Response:
    """``GET .../imports/{batch}``: progress, preview and Confirm, or the outcome and Undo."""
    batch = await _batch_of(page)
    return page.render(
        "admin/import_batch.html",
        {
            "batch": batch,
            "running": batch.status in (CHECKING, APPLYING),
            "course_states": COURSE_STATES,
            "notice": page.request.query_params.get("notice", ""),
        },
    )


@console
async def batch_progress(page: Page) -> Response:
    """``GET .../imports/{batch}/progress``: the small JSON the batch page polls."""
    batch = await _batch_of(page)
    return JSONResponse(batch.progress())


@console
async def batch_report(page: Page) -> Response:
    """``GET .../imports/{batch}/report.csv``: the preview or outcome as a spreadsheet."""
    batch = await _batch_of(page)
    return _csv_response(report_csv(batch), f"import-{batch.id}.csv")


@console
async def batch_apply(page: Page) -> Response:
    """``POST .../imports/{batch}/apply``: Confirm. Applies in the background."""
    batch = await _batch_of(page)
    try:
        await service.start_apply(
            page.tool, page.managed, batch.id, actor=page.actor, notify=page.admin.email
        )
    except (BatchError, ProviderError) as exc:
        return page.redirect(_batch_path(page.managed, batch.id), notice=exc.message)
    return page.redirect(_batch_path(page.managed, batch.id))


@console
async def batch_undo(page: Page) -> Response:
    """``POST .../imports/{batch}/undo``: the preview first; with ``confirm=1``, the undo."""
    batch = await _batch_of(page)
    assert page.form is not None
    chosen = [v for v in page.form.getlist("row") if isinstance(v, str)]
    try:
        rows = _row_numbers(",".join(chosen)) if chosen else _row_numbers(page.field("rows"))
        plan = await service.undo(
            page.tool,
            page.managed,
            batch.id,
            actor=page.actor,
            rows=rows,
            dry_run=page.field("confirm") != "1",
        )
    except BatchError as exc:
        return page.redirect(_batch_path(page.managed, batch.id), notice=exc.message)
    if plan.done:
        notice = f"Removed {plan.removed} meeting(s) from their courses."
        return page.redirect(_batch_path(page.managed, batch.id), notice=notice)
    return page.render(
        "admin/import_undo.html",
        {
            "batch": batch,
            "plan": plan,
            "rows_value": ",".join(str(i.row.number) for i in plan.items) if rows else "",
        },
    )


@console
async def mail_page(page: Page) -> Response:
    """``GET /admin/mail``: the messages kept in the outbox (an admin sees those sent to
    them; a superuser every one)."""
    messages = mail.list_outbox(page.tool.settings)
    if not page.admin.is_superuser:
        messages = [m for m in messages if _addressed_to(m, page.admin.email)]
    return page.render(
        "admin/mail.html",
        {"messages": messages, "smtp": bool(page.tool.settings.smtp_url), "message": None},
    )


@console
async def mail_message(page: Page) -> Response:
    """``GET /admin/mail/{name}``: one kept message."""
    found = mail.read_outbox(page.tool.settings, page.request.path_params["name"])
    if found is None or not (page.admin.is_superuser or _addressed_to(found, page.admin.email)):
        raise AdminError(404, NOT_FOUND)
    return page.render("admin/mail.html", {"messages": [], "smtp": False, "message": found})


def _addressed_to(message: mail.OutboxMessage, email: str) -> bool:
    return email.lower() in {a.strip().lower() for a in message.to.split(",")}


def console_routes() -> list[BaseRoute]:
    """The import pages, under ``/admin``."""
    credential = "/credentials/{credential_id:int}/imports"
    batch = credential + "/{batch:int}"
    return [
        Route(credential, imports_page, methods=["GET", "POST"]),
        Route(credential + "/template.csv", template, methods=["GET"]),
        Route(batch, batch_page, methods=["GET"]),
        Route(batch + "/progress", batch_progress, methods=["GET"]),
        Route(batch + "/report.csv", batch_report, methods=["GET"]),
        Route(batch + "/apply", batch_apply, methods=["POST"]),
        Route(batch + "/undo", batch_undo, methods=["POST"]),
        Route("/mail", mail_page, methods=["GET"]),
        Route("/mail/{name}", mail_message, methods=["GET"]),
    ]


# -- the API ------------------------------------------------------------------------------------------


def _error(status: int, code: str, message: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"error": code, "message": message, **extra}, status_code=status)


async def _api_credential(request: Request) -> Credential | JSONResponse:
    credential = await require_api_key(request)
    if request.path_params["credential_id"] != credential.id:
        # Whether or not that credential exists: a key never reaches another credential.
        return _error(403, "wrong_credential", "This API key belongs to another credential.")
    return credential


def _actor(request: Request) -> str:
    token = bearer_token(request) or ""
    return "api:" + token.split("_", 2)[1] if token.count("_") >= 2 else "api"


def _flag(value: Any) -> bool:
    return isinstance(value, str) and value.strip().lower() in ("1", "true", "yes", "on")


async def _read_body(request: Request) -> tuple[bytes, str, bool] | JSONResponse:
    """The uploaded file, its name, and the dry-run field of a multipart form."""
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > DEFAULT_MAX_BYTES + 64 * 1024:
        return _error(
            413,
            "file_too_large",
            f"An import file is at most {DEFAULT_MAX_BYTES:,} bytes. Split it into smaller files.",
        )
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind == "multipart/form-data":
        try:
            form = await request.form()
        except Exception:
            return _error(400, "bad_form", "The multipart body could not be read.")
        upload = form.get(FILE_FIELD)
        if not isinstance(upload, UploadFile):
            return _error(400, "no_file", 'Send the CSV as the form field "file".')
        data = await upload.read(DEFAULT_MAX_BYTES + 1)
        return data, upload.filename or "upload.csv", _flag(form.get("dry_run"))
    if kind in ("text/csv", "text/plain", "application/csv", "application/octet-stream"):
        data = b""
        async for chunk in request.stream():
            data += chunk
            if len(data) > DEFAULT_MAX_BYTES:
                break
        name = request.query_params.get("file_name", "").strip() or "upload.csv"
        return data, name[:255], False
    return _error(
        415,
        "unsupported_media_type",
        'Send the CSV as text/csv, or as the field "file" of a multipart/form-data form.',
    )


async def api_import(request: Request) -> Response:
    """``POST /api/v1/credentials/{id}/imports``: check a file and apply it (or only check)."""
    credential = await _api_credential(request)
    if isinstance(credential, JSONResponse):
        return credential
    body = await _read_body(request)
    if isinstance(body, JSONResponse):
        return body
    data, name, dry_field = body
    dry_run = dry_field or _flag(request.query_params.get("dry_run"))
    try:
        batch = await service.import_file(
            request.app.state.tool,
            credential,
            data,
            file_name=name,
            actor=_actor(request),
            dry_run=dry_run,
        )
    except ImportFileError as exc:
        return _error(exc.status, exc.code, exc.message)
    except ProviderError as exc:
        return _error(exc.status if 400 <= exc.status < 600 else 502, exc.code, exc.message)
    except BatchError as exc:
        return _error(exc.status, "batch_refused", exc.message)
    payload = batch_json(batch)
    payload["dry_run"] = dry_run
    if batch.error_rows:
        return JSONResponse(
            {
                "error": "row_errors",
                "message": f"{batch.error_rows} row(s) have errors; nothing was imported.",
                **payload,
            },
            status_code=422,
        )
    return JSONResponse(payload, status_code=200 if dry_run else 201)


async def api_batch(request: Request) -> Response:
    """``GET|DELETE /api/v1/credentials/{id}/imports/{batch}``: a batch, or its undo."""
    credential = await _api_credential(request)
    if isinstance(credential, JSONResponse):
        return credential
    tool = request.app.state.tool
    batch_id = int(request.path_params["batch"])
    try:
        if request.method == "GET":
            return JSONResponse(batch_json(await service.get(tool, credential, batch_id)))
        dry_run = _flag(request.query_params.get("dry_run"))
        rows = _row_numbers(request.query_params.get("rows", ""))
        plan = await service.undo(
            tool, credential, batch_id, actor=_actor(request), rows=rows, dry_run=dry_run
        )
    except BatchError as exc:
        return _error(
            exc.status, "batch_refused" if exc.status != 404 else "not_found", exc.message
        )
    return JSONResponse(
        {
            "dry_run": dry_run,
            "batch": batch_json(plan.batch, rows=False),
            "meetings_removed": plan.removed if plan.done else plan.meetings,
            "courses_removed": plan.courses,
            "rows": [
                {
                    "row": item.row.number,
                    "action": item.action,
                    "meeting_id": item.row.meeting_id,
                    "context_id": item.row.context_id,
                    "domain": item.row.domain,
                    "course_removed": item.course_removed,
                }
                for item in plan.items
            ],
        }
    )


def api_routes() -> list[BaseRoute]:
    base = "/api/v1/credentials/{credential_id:int}/imports"
    return [
        Route(base, api_import, methods=["POST"]),
        Route(base + "/{batch:int}", api_batch, methods=["GET", "DELETE"]),
    ]
