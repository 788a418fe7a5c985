"""The Brightspace connection in the admin console: its status and a "Connect" button.

The tool reaches Brightspace's API with one authorisation an admin gives, per credential
and platform registration (:mod:`ltipro_d2l.oauth`). The console shows, for each, whether
it is connected, and a button that starts connecting: the console calls :func:`start`
only when the admin presses it (a POST with the console's CSRF token, by an admin of the
credential), so the one-time start link is made at that moment and never sits in a page.

"Needs reconnecting": the token is stored but cannot work any more. Either it expired
without a refresh token, or calendar jobs of the credential died since it was stored
because Brightspace refused it (the refresh keeps the refused token, so the dead letter
is where the refusal is written down, with the command that names this platform).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ltipro.extension import AdminConnection, ConnectionStatus
from ltipro.hookspecs import hookimpl
from ltipro.jobs import dead_jobs
from ltipro.lmsapi import LmsApiError, StoredToken
from ltipro.storage.database import stored_utc
from ltipro_d2l.oauth import SUBJECT, connect_command, start_url
from ltipro_d2l.settings import NAME, config_from

if TYPE_CHECKING:
    from ltipro.storage.repository import Credential, Platform
    from ltipro.tool import Tool

KEY = "brightspace"
LABEL = "Brightspace API (calendar sync)"
ACTION = "Connect Brightspace"
RECONNECT = "Reconnect Brightspace"


def _connected_at(token: StoredToken) -> datetime | None:
    raw = token.extra.get("connected_at")
    try:
        return stored_utc(datetime.fromisoformat(raw)) if isinstance(raw, str) else None
    except ValueError:
        return None


async def _refused_since(
    tool: Tool, credential: Credential, platform_id: int | None, since: datetime | None
) -> bool:
    """Whether a job died since ``since`` because Brightspace refused this connection."""
    hint = f"connect Brightspace again with `{connect_command('NAME', platform_id)}`"
    for job in await dead_jobs(tool.repo.engine, credential_id=credential.id, limit=50):
        if job.last_error and hint in job.last_error:
            if since is None or stored_utc(job.updated_at) >= since:
                return True
    return False


async def connection_status(
    tool: Tool, credential: Credential, platform_id: int | None
) -> tuple[ConnectionStatus, str]:
    """(status, detail) of the Brightspace connection of a credential and platform."""
    from ltipro.calendar.runtime import token_store

    token = await token_store(tool, credential.id, platform_id, NAME).get(SUBJECT)
    if token is None:
        return "not_connected", "Calendar sync cannot reach Brightspace until an admin connects it."
    since = _connected_at(token)
    when = f" on {since:%d %b %Y}" if since else ""
    if token.expired() and not token.refresh_token:
        return (
            "needs_reconnecting",
            f"The authorisation given{when} has expired and cannot be renewed.",
        )
    if await _refused_since(tool, credential, platform_id, since):
        return (
            "needs_reconnecting",
            f"Brightspace no longer accepts the authorisation given{when}; the calendar jobs "
            "it refused are in the Jobs tab.",
        )
    return "connected", f"Connected{when}."


@hookimpl
async def admin_connections(
    tool: Tool, credential: Credential, platform: Platform | None, settings: Mapping[str, Any]
) -> list[AdminConnection] | None:
    """The Brightspace connection of the credential, or of one platform registration."""
    platform_id = platform.id if platform is not None else None
    issuer = platform.issuer if platform is not None else None
    try:
        config_from(settings, issuer=issuer, require_base=False)
    except LmsApiError as exc:
        return [AdminConnection(KEY, LABEL, "not_set_up", detail=f"{exc}.", action_label=ACTION)]
    status, detail = await connection_status(tool, credential, platform_id)

    async def start() -> str:
        return start_url(tool, credential.id, platform_id)

    return [
        AdminConnection(
            KEY,
            LABEL,
            status,
            detail=detail,
            action_label=ACTION if status == "not_connected" else RECONNECT,
            start=start,
        )
    ]
