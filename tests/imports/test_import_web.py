"""The import through the API (with the credential's keys only), through the admin console
(upload, preview, progress, Confirm, Undo, for the credential's admins only), and the
confirmation email (the outbox the console's Mail page lists, and a real SMTP server)."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
from collections.abc import AsyncIterator
from typing import Any

import pytest
from import_support import (
    DOMAIN,
    Console,
    batch_count,
    csv_bytes,
    meeting_count,
    use_zoom,
    zoom_meetings,
)

from ltipro import mail
from ltipro.imports import service
from ltipro.imports.confirm import send_confirmation
from ltipro.jobs.handlers import JobHandlers
from ltipro.jobs.worker import Worker
from ltipro.testing.harness import ToolHarness
from ltipro.testing.zoom_double import ZoomDouble

BASE = "/api/v1/credentials/{id}/imports"


@pytest.fixture
async def zoom(harness: ToolHarness) -> AsyncIterator[ZoomDouble]:
    double = await use_zoom(harness)
    yield double
    assert double.violations == []


async def _key(harness: ToolHarness) -> dict[str, str]:
    key = await harness.tool.repo.create_api_key(harness.credential, "sis")
    return {"Authorization": f"Bearer {key}"}


async def run_confirmations(harness: ToolHarness) -> list[Any]:
    handlers = JobHandlers()
    handlers.register("import.confirm", send_confirmation)
    return await Worker(harness.tool.repo.engine, handlers=handlers, tool=harness.tool).drain()


# -- the API ---------------------------------------------------------------------------------------


async def test_the_api_refuses_no_key_an_unknown_key_and_another_credentials_key(
    harness: ToolHarness, zoom: ZoomDouble
) -> None:
    path = BASE.format(id=harness.credential.id)
    data = csv_bytes([(str(zoom_meetings(zoom, 1)[0]), "c1", DOMAIN, "")])
    csv_type = {"Content-Type": "text/csv"}
    assert (await harness.client.post(path, content=data, headers=csv_type)).status_code == 401
    bad = {"Authorization": "Bearer ltp_nothing_here", **csv_type}
    answer = await harness.client.post(path, content=data, headers=bad)
    assert answer.status_code == 401 and answer.json()["error"] == "invalid_api_key"
    other = await harness.tool.repo.create_credential("other", enabled_plugins=[])
    other_key = await harness.tool.repo.create_api_key(other, "sis")
    headers = {"Authorization": f"Bearer {other_key}", **csv_type}
    answer = await harness.client.post(path, content=data, headers=headers)
    assert answer.status_code == 403 and answer.json()["error"] == "wrong_credential"
    answer = await harness.client.delete(path + "/1", headers=headers)
    assert answer.status_code == 403
    revoked = await _key(harness)
    await harness.tool.repo.revoke_api_key(
        harness.credential, revoked["Authorization"].split("_")[1]
    )
    answer = await harness.client.post(path, content=data, headers={**revoked, **csv_type})
    assert answer.status_code == 401
    assert await batch_count(harness) == 0 and await meeting_count(harness) == 0


async def test_the_api_dry_run_then_import_then_undo(
    harness: ToolHarness, zoom: ZoomDouble
) -> None:
    ids = zoom_meetings(zoom, 2)
    path = BASE.format(id=harness.credential.id)
    auth = await _key(harness)
    data = csv_bytes([(str(ids[0]), "c1", DOMAIN, "77"), (str(ids[1]), "c2", DOMAIN, "")])
    dry = await harness.client.post(
        path, params={"dry_run": "1"}, content=data, headers={**auth, "Content-Type": "text/csv"}
    )
    assert dry.status_code == 200, dry.text
    body = dry.json()
    assert body["dry_run"] is True and body["status"] == "checked"
    assert [r["action"] for r in body["rows"]] == ["add", "add"]
    assert [r["course"] for r in body["rows"]] == ["new", "new"]
    assert await meeting_count(harness) == 0
    # multipart, as a form upload with the dry-run field off
    done = await harness.client.post(
        path, files={"file": ("term.csv", data, "text/csv")}, headers=auth
    )
    assert done.status_code == 201, done.text
    applied = done.json()
    assert applied["status"] == "applied" and applied["file_name"] == "term.csv"
    assert applied["created_by"].startswith("api:") and await meeting_count(harness) == 2
    batch = applied["id"]
    got = await harness.client.get(f"{path}/{batch}", headers=auth)
    assert got.status_code == 200 and got.json()["rows"][0]["meeting_uid"]
    preview = await harness.client.delete(f"{path}/{batch}?dry_run=1&rows=2", headers=auth)
    assert preview.status_code == 200 and preview.json()["meetings_removed"] == 1
    assert await meeting_count(harness) == 2
    undone = await harness.client.delete(f"{path}/{batch}", headers=auth)
    assert undone.status_code == 200, undone.text
    assert undone.json()["meetings_removed"] == 2 and undone.json()["batch"]["status"] == "undone"
    assert await meeting_count(harness) == 0
    again = await harness.client.delete(f"{path}/{batch}", headers=auth)
    assert again.status_code == 409
    missing = await harness.client.delete(f"{path}/99999", headers=auth)
    assert missing.status_code == 404


async def test_the_api_answers_row_errors_and_bad_files_with_4xx_and_imports_nothing(
    harness: ToolHarness, zoom: ZoomDouble
) -> None:
    path = BASE.format(id=harness.credential.id)
    auth = {**await _key(harness), "Content-Type": "text/csv"}
    errors = await harness.client.post(
        path, content=csv_bytes([("8.12346E+10", "c1", DOMAIN, "")]), headers=auth
    )
    assert errors.status_code == 422 and errors.json()["error"] == "row_errors"
    assert errors.json()["rows"][0]["errors"][0].startswith("The spreadsheet turned")
    unreadable = await harness.client.post(path, content=b"Course,Name\r\nx,y\r\n", headers=auth)
    assert unreadable.status_code == 400 and unreadable.json()["error"] == "invalid_file"
    wrong_type = await harness.client.post(
        path, json={"rows": []}, headers={"Authorization": auth["Authorization"]}
    )
    assert wrong_type.status_code == 415
    assert await meeting_count(harness) == 0


async def test_a_file_over_the_installations_row_limit_is_refused_not_truncated(
    harness: ToolHarness, zoom: ZoomDouble
) -> None:
    harness.tool.settings = dataclasses.replace(harness.tool.settings, import_max_rows=3)
    path = BASE.format(id=harness.credential.id)
    auth = {**await _key(harness), "Content-Type": "text/csv"}
    rows = [(str(m), f"c{m}", DOMAIN, "") for m in zoom_meetings(zoom, 4)]
    answer = await harness.client.post(path, content=csv_bytes(rows), headers=auth)
    assert answer.status_code == 413 and answer.json()["error"] == "too_many_rows"
    assert "4 meeting rows; at most 3" in answer.json()["message"]
    assert await batch_count(harness) == 0 and await meeting_count(harness) == 0
    fits = await harness.client.post(path, content=csv_bytes(rows[:3]), headers=auth)
    assert fits.status_code == 201


def test_the_row_limit_is_read_from_the_environment(tmp_path: Any) -> None:
    from ltipro.settings import Settings, SettingsError

    env = {"LTIPRO_INSTANCE": str(tmp_path), "LTIPRO_DEV": "1", "LTIPRO_SECRET_KEY": "k" * 40}
    assert Settings.from_env(env).import_max_rows == 1000
    assert Settings.from_env({**env, "LTIPRO_IMPORT_MAX_ROWS": "5000"}).import_max_rows == 5000
    with pytest.raises(SettingsError, match="LTIPRO_IMPORT_MAX_ROWS"):
        Settings.from_env({**env, "LTIPRO_IMPORT_MAX_ROWS": "0"})
    with pytest.raises(SettingsError, match="LTIPRO_SMTP_URL"):
        Settings.from_env({**env, "LTIPRO_SMTP_URL": "http://mail.example.edu"})
    with pytest.raises(SettingsError, match="LTIPRO_MAIL_FROM"):
        Settings.from_env({**env, "LTIPRO_MAIL_FROM": "not an address"})


# -- the console ------------------------------------------------------------------------------------


@pytest.fixture
async def console(harness: ToolHarness) -> AsyncIterator[Console]:
    browser = Console(harness)
    await browser.sign_in("admin@example.edu", credential_ids=[harness.credential.id])
    yield browser
    await browser.aclose()


async def test_the_console_uploads_previews_confirms_emails_and_undoes(
    harness: ToolHarness, zoom: ZoomDouble, console: Console
) -> None:
    cid = harness.credential.id
    config = await console.client.get(f"/admin/credentials/{cid}/config")
    assert (
        "Download a CSV template" in config.text and 'enctype="multipart/form-data"' in config.text
    )
    template = await console.client.get(f"/admin/credentials/{cid}/imports/template.csv")
    assert template.status_code == 200 and template.headers["content-type"].startswith("text/csv")
    assert template.content.decode("utf-8-sig").strip() == (
        "Meeting ID,Context ID,Domain,custom_canvas_course_id"
    )
    ids = zoom_meetings(zoom, 2, topic="Seminar")
    data = csv_bytes([(str(ids[0]), "c1", DOMAIN, ""), ("=cmd|'/c calc'!A1", "c2", DOMAIN, "")])
    upload = await console.post(
        f"/admin/credentials/{cid}/imports", files={"file": ("term.csv", data, "text/csv")}
    )
    assert upload.status_code == 303, upload.text[-500:]
    batch_url = upload.headers["location"]
    await service.wait_for_checks()
    progress = await console.client.get(batch_url + "/progress")
    assert progress.json()["done"] is True and progress.json()["checked_rows"] == 2
    preview = await console.client.get(batch_url)
    assert "Row 3:" in preview.text and 'id="confirm-import"' not in preview.text
    report = await console.client.get(batch_url + "/report.csv")
    assert "'=cmd" in report.text and "\n=cmd" not in report.text and ",=cmd" not in report.text

    good = csv_bytes([(str(ids[0]), "c1", DOMAIN, ""), (str(ids[1]), "c2", DOMAIN, "")])
    upload = await console.post(
        f"/admin/credentials/{cid}/imports", files={"file": ("good.csv", good, "text/csv")}
    )
    batch_url = upload.headers["location"]
    await service.wait_for_checks()
    preview = await console.client.get(batch_url)
    assert 'id="confirm-import"' in preview.text and "Seminar 1" in preview.text
    assert await meeting_count(harness) == 0  # nothing until Confirm
    refused = await console.client.post(batch_url + "/apply", data={})  # no CSRF token
    assert refused.status_code == 403 and await meeting_count(harness) == 0
    confirmed = await console.post(batch_url + "/apply")
    assert confirmed.status_code == 303
    await service.wait_for_checks()
    assert await meeting_count(harness) == 2
    applied = await console.client.get(batch_url)
    assert "What this import did" in applied.text and applied.text.count('badge ok">added') == 2

    outcomes = await run_confirmations(harness)
    assert [o.result for o in outcomes] == ["done"]
    (kept,) = mail.list_outbox(harness.tool.settings)
    assert kept.to == "admin@example.edu" and "2 meetings added" in kept.subject
    mail_page = await console.client.get("/admin/mail")
    assert kept.subject in mail_page.text
    message = await console.client.get(f"/admin/mail/{kept.name}")
    assert "ltipro meetings undo" in message.text and str(ids[1]) in message.text
    assert (await console.client.get("/admin/mail/..%2Fsecret.key")).status_code == 404

    undo_preview = await console.post(batch_url + "/undo", {"row": "3"})
    assert undo_preview.status_code == 200 and 'id="confirm-undo"' in undo_preview.text
    assert await meeting_count(harness) == 2
    undone = await console.post(batch_url + "/undo", {"rows": "3", "confirm": "1"})
    assert undone.status_code == 303 and await meeting_count(harness) == 1
    listing = await console.client.get(f"/admin/credentials/{cid}/imports")
    assert "good.csv" in listing.text and "term.csv" in listing.text


async def test_only_admins_of_the_credential_reach_its_imports(
    harness: ToolHarness, zoom: ZoomDouble
) -> None:
    other = await harness.tool.repo.create_credential("other", enabled_plugins=[])
    stranger = Console(harness)
    await stranger.sign_in("stranger@example.edu", credential_ids=[other.id])
    cid = harness.credential.id
    page = await stranger.client.get(f"/admin/credentials/{cid}/imports")
    assert page.status_code == 404
    upload = await stranger.post(
        f"/admin/credentials/{cid}/imports",
        files={"file": ("x.csv", csv_bytes([("81234567890", "c", DOMAIN, "")]), "text/csv")},
    )
    assert upload.status_code == 404 and await batch_count(harness) == 0
    await stranger.aclose()


async def test_a_file_the_console_cannot_read_is_explained_on_the_page(
    harness: ToolHarness, zoom: ZoomDouble, console: Console
) -> None:
    answer = await console.post(
        f"/admin/credentials/{harness.credential.id}/imports",
        files={"file": ("notes.csv", b"Name;Email\r\nx;y\r\n", "text/csv")},
    )
    assert answer.status_code == 400
    assert "lacks the columns" in answer.text and await batch_count(harness) == 0


# -- the email over SMTP --------------------------------------------------------------------------


class SmtpListener:
    """A small SMTP server on loopback that keeps what it receives (RFC 5321 commands
    EHLO, AUTH PLAIN, MAIL, RCPT, DATA, QUIT)."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], bytes]] = []
        self.logins: list[tuple[str, str]] = []

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._session, "127.0.0.1", 0)
        return int(self.server.sockets[0].getsockname()[1])

    async def close(self) -> None:
        self.server.close()
        await self.server.wait_closed()

    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        def say(line: str) -> None:
            writer.write(line.encode() + b"\r\n")

        say("220 test ESMTP")
        sender, recipients = "", []
        while line := (await reader.readline()).decode().rstrip("\r\n"):
            verb = line.split(" ", 1)[0].upper()
            if verb in ("EHLO", "HELO"):
                say("250-test")
                say("250 AUTH PLAIN")
            elif verb == "AUTH":
                _, user, password = base64.b64decode(line.split()[2]).decode().split("\0")
                self.logins.append((user, password))
                say("235 2.7.0 Authentication successful")
            elif verb == "MAIL":
                sender = line.split(":", 1)[1].strip().strip("<>").split(">")[0]
                say("250 OK")
            elif verb == "RCPT":
                recipients.append(line.split(":", 1)[1].strip().strip("<>"))
                say("250 OK")
            elif verb == "DATA":
                say("354 End data with <CR><LF>.<CR><LF>")
                await writer.drain()
                data = await reader.readuntil(b"\r\n.\r\n")
                self.messages.append((sender, recipients, data[:-5]))
                say("250 OK queued")
            elif verb == "QUIT":
                say("221 Bye")
                await writer.drain()
                break
            else:
                say("502 Command not implemented")
            await writer.drain()
        writer.close()


async def test_the_confirmation_goes_through_the_smtp_server_in_the_setting(
    harness: ToolHarness, zoom: ZoomDouble
) -> None:
    listener = SmtpListener()
    port = await listener.start()
    try:
        harness.tool.settings = dataclasses.replace(
            harness.tool.settings,
            smtp_url=f"smtp://mailer%40example.edu:s3cret%21@127.0.0.1:{port}",
            mail_from="lti@example.edu",
        )
        from ltipro.passwords import hash_password
        from ltipro.storage.admin_repository import AdminRepository

        await AdminRepository(harness.tool.repo.engine).create_admin(
            "owner@example.edu", hash_password("x" * 12), credential_ids=[harness.credential.id]
        )
        (meeting,) = zoom_meetings(zoom, 1)
        await service.import_file(
            harness.tool,
            harness.credential,
            csv_bytes([(str(meeting), "c1", DOMAIN, "")]),
            file_name="one.csv",
            actor="cli",
            dry_run=False,
        )
        outcomes = await run_confirmations(harness)
        assert [o.result for o in outcomes] == ["done"]
    finally:
        await listener.close()
    assert listener.logins == [("mailer@example.edu", "s3cret!")]
    ((sender, recipients, data),) = listener.messages
    assert sender == "lti@example.edu" and recipients == ["owner@example.edu"]
    assert b"Subject: Import complete: 1 meeting added to test" in data
    assert mail.list_outbox(harness.tool.settings) == []  # sent, not kept


async def test_an_unreachable_smtp_server_leaves_the_email_to_be_retried(
    harness: ToolHarness, zoom: ZoomDouble
) -> None:
    listener = SmtpListener()
    port = await listener.start()
    await listener.close()  # nothing listens on the port now
    harness.tool.settings = dataclasses.replace(
        harness.tool.settings, smtp_url=f"smtp://127.0.0.1:{port}"
    )
    (meeting,) = zoom_meetings(zoom, 1)
    batch = await service.import_file(
        harness.tool,
        harness.credential,
        csv_bytes([(str(meeting), "c1", DOMAIN, "")]),
        file_name="one.csv",
        actor="cli",
        dry_run=False,
        notify="me@example.edu",
    )
    assert batch.status == "applied"  # the import stands whatever the mail server does
    outcomes = await run_confirmations(harness)
    assert [o.result for o in outcomes] == ["retry"]
    assert "could not send mail through 127.0.0.1" in (outcomes[0].error or "")


async def test_the_console_shows_the_progress_of_a_check_while_it_runs(
    harness: ToolHarness, console: Console, monkeypatch: pytest.MonkeyPatch
) -> None:
    double = await use_zoom(harness, latency=0.03)
    monkeypatch.setattr(service, "PROGRESS_INTERVAL", 0.0)  # write every step
    rows = [(str(m), f"c{m}", DOMAIN, "") for m in zoom_meetings(double, 40)]
    cid = harness.credential.id
    upload = await console.post(
        f"/admin/credentials/{cid}/imports",
        files={"file": ("big.csv", csv_bytes(rows), "text/csv")},
    )
    batch_url = upload.headers["location"]
    page = await console.client.get(batch_url)
    assert "<progress" in page.text and "rows checked" in page.text
    seen: set[int] = set()
    for _ in range(200):
        progress = (await console.client.get(batch_url + "/progress")).json()
        assert progress["total_rows"] == 40
        seen.add(progress["checked_rows"])
        if progress["done"]:
            break
        await asyncio.sleep(0.02)
    await service.wait_for_checks()
    assert progress["done"] and progress["status"] == "checked"
    assert any(0 < n < 40 for n in seen), seen  # part-way figures were visible
    assert double.violations == []


async def test_csv_cells_and_provider_topics_are_shown_escaped_in_the_preview(
    harness: ToolHarness, zoom: ZoomDouble, console: Console
) -> None:
    cid = harness.credential.id
    [meeting_id] = zoom_meetings(zoom, 1, topic="<img src=x onerror=alert(1)>")
    script = "<script>alert('cell')</script>"
    data = csv_bytes([(str(meeting_id), script, DOMAIN, ""), (script, "c2", DOMAIN, script)])
    upload = await console.post(
        f"/admin/credentials/{cid}/imports", files={"file": ("x.csv", data, "text/csv")}
    )
    assert upload.status_code == 303, upload.text[-500:]
    await service.wait_for_checks()
    preview = await console.client.get(upload.headers["location"])
    assert preview.status_code == 200
    assert "<script>alert(" not in preview.text and "<img src=x" not in preview.text
    assert "&lt;script&gt;alert(" in preview.text
    assert "&lt;img src=x onerror=alert(1)&gt;" in preview.text
