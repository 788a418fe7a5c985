"""Outgoing mail: through the SMTP server ``LTIPRO_SMTP_URL`` names, or into the outbox.

Without an SMTP server (the embedded default) every message is written as an ``.eml``
file into ``outbox/`` in the instance folder, where the admin console's Mail page lists
it and any mail program opens it: a fresh install sends nothing anywhere, yet nothing is
lost either. ``smtp://user:password@host:587`` upgrades to TLS when the server offers
STARTTLS; ``smtps://...:465`` speaks TLS from the start. The sender is
``LTIPRO_MAIL_FROM``.

Messages are sent from jobs (never inside a request), so a slow or unreachable mail
server delays a confirmation instead of failing what it confirms, and the job's retries
deliver it later. A message with a ``key`` is written under a name made from the key, so a
job that runs twice leaves one outbox file.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import secrets
import smtplib
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import format_datetime, make_msgid, parsedate_to_datetime
from pathlib import Path
from urllib.parse import unquote, urlsplit

from ltipro.settings import Settings

OUTBOX = "outbox"
SMTP_TIMEOUT = 15.0
# Outbox file names the console serves: nothing else (no paths) is ever opened.
OUTBOX_NAME = re.compile(r"[0-9]{8}T[0-9]{6}Z-[a-z0-9-]{1,80}\.eml")
MAX_SUBJECT = 200


class MailError(Exception):
    """The message could not be handed to the mail server; the message says why."""


@dataclass(frozen=True)
class OutboxMessage:
    """One message kept in the outbox."""

    name: str
    to: str
    subject: str
    sent_at: datetime | None
    body: str = ""


def outbox_folder(settings: Settings) -> Path:
    return settings.instance / OUTBOX


def compose(
    settings: Settings, to: Sequence[str], subject: str, body: str, *, key: str | None = None
) -> EmailMessage:
    """A plain-text message from the installation's sender address."""
    message = EmailMessage()
    message["From"] = settings.mail_from
    message["To"] = ", ".join(to)
    message["Subject"] = " ".join(subject.split())[:MAX_SUBJECT]
    message["Date"] = format_datetime(datetime.now(UTC))
    domain = settings.mail_from.rsplit("@", 1)[-1]
    idstring = hashlib.sha256(key.encode()).hexdigest()[:20] if key else None
    message["Message-ID"] = make_msgid(idstring=idstring, domain=domain)
    message.set_content(body)
    return message


async def send(settings: Settings, message: EmailMessage, *, key: str | None = None) -> str:
    """Send ``message``; returns where it went (``smtp`` or the outbox file's name)."""
    if settings.smtp_url:
        await asyncio.to_thread(_smtp_send, settings.smtp_url, message)
        return "smtp"
    return await asyncio.to_thread(_write_outbox, outbox_folder(settings), message, key)


def _slug(key: str | None) -> str:
    if not key:
        return secrets.token_hex(6)
    readable = re.sub(r"[^a-z0-9]+", "-", key.lower()).strip("-")[:60]
    return f"{readable}-{hashlib.sha256(key.encode()).hexdigest()[:8]}".strip("-")


def _write_outbox(folder: Path, message: EmailMessage, key: str | None) -> str:
    folder.mkdir(parents=True, exist_ok=True)
    slug = _slug(key)
    if key:
        for existing in folder.glob(f"*-{slug}.eml"):
            return existing.name  # this message was kept already (a job that ran twice)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    name = f"{stamp}-{slug}.eml"
    temporary = folder / f".{name}.tmp"
    temporary.write_bytes(message.as_bytes(policy=policy.SMTP))
    os.replace(temporary, folder / name)
    return name


def _smtp_send(url: str, message: EmailMessage) -> None:
    parts = urlsplit(url)
    host = parts.hostname or ""
    context = ssl.create_default_context()
    where = f"{host}:{parts.port}" if parts.port else host
    try:
        client: smtplib.SMTP
        if parts.scheme == "smtps":
            client = smtplib.SMTP_SSL(
                host, parts.port or 465, timeout=SMTP_TIMEOUT, context=context
            )
        else:
            client = smtplib.SMTP(host, parts.port or 25, timeout=SMTP_TIMEOUT)
        with client:
            client.ehlo()
            if parts.scheme == "smtp" and client.has_extn("starttls"):
                client.starttls(context=context)
                client.ehlo()
            if parts.username:
                client.login(unquote(parts.username), unquote(parts.password or ""))
            client.send_message(message)
    except smtplib.SMTPAuthenticationError as exc:
        raise MailError(
            f"the mail server {where} refused the user name and password in LTIPRO_SMTP_URL "
            f"({exc.smtp_code})"
        ) from None
    except smtplib.SMTPRecipientsRefused as exc:
        raise MailError(
            f"the mail server {where} refused the recipients: {', '.join(exc.recipients)}"
        ) from None
    except (smtplib.SMTPException, OSError) as exc:
        raise MailError(f"could not send mail through {where}: {exc}") from None


def _read(path: Path, *, body: bool) -> OutboxMessage:
    parsed = BytesParser(policy=policy.default).parsebytes(path.read_bytes())
    try:
        sent_at = parsedate_to_datetime(str(parsed["Date"])) if parsed["Date"] else None
    except (TypeError, ValueError):
        sent_at = None
    text = ""
    if body:
        part = parsed.get_body(preferencelist=("plain",))
        text = part.get_content() if part is not None else ""
    return OutboxMessage(
        name=path.name,
        to=str(parsed["To"] or ""),
        subject=str(parsed["Subject"] or ""),
        sent_at=sent_at,
        body=text,
    )


def list_outbox(settings: Settings, limit: int = 200) -> list[OutboxMessage]:
    """The outbox's messages, newest first."""
    folder = outbox_folder(settings)
    if not folder.is_dir():
        return []
    names = sorted(
        (p.name for p in folder.iterdir() if OUTBOX_NAME.fullmatch(p.name)), reverse=True
    )
    return [_read(folder / name, body=False) for name in names[:limit]]


def read_outbox(settings: Settings, name: str) -> OutboxMessage | None:
    """One outbox message with its text, or ``None`` (also for a name that is no message)."""
    if not OUTBOX_NAME.fullmatch(name):
        return None
    path = outbox_folder(settings) / name
    if not path.is_file():
        return None
    return _read(path, body=True)
