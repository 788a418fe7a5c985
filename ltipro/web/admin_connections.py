"""Connections an admin authorises once, shown on a credential's LMS platforms page.

LMS plugins declare them with the ``admin_connections`` hook (the Brightspace service
account's OAuth grant, say): a status, and a button that starts authorising. The button
posts the console's CSRF token to :func:`start_connection`, which asks the plugin again
and calls the chosen connection's ``start`` then, so a one-time start link is made when
it is used and never appears in a page where it could be copied and used later. Only an
admin of the credential gets there (another credential answers 404, like a missing one).

A plugin that fails or is slow is logged and left out: the page is shown all the same.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from ltipro.extension import AdminConnection
from ltipro.lmsapi import LmsApiError
from ltipro.plugin_settings import effective_settings
from ltipro.storage.repository import Credential, NotFound, Platform
from ltipro.tool import Tool
from ltipro.web.admin import MAX_ID, NOT_FOUND, AdminError, Page, console

log = logging.getLogger(__name__)

HOOK = "admin_connections"
#: How long the console waits for one plugin's answer.
WAIT_SECONDS = 5.0
STATUS_TEXT = {
    "connected": "connected",
    "not_connected": "not connected",
    "needs_reconnecting": "needs reconnecting",
    "not_set_up": "not set up",
}
STATUS_BADGE = {
    "connected": "ok",
    "not_connected": "pending",
    "needs_reconnecting": "refused",
    "not_set_up": "disabled",
}


@dataclass(frozen=True)
class ShownConnection:
    """One plugin's connection for one level (the credential or a platform), for a page."""

    plugin: str
    plugin_title: str
    platform_id: int | None
    connection: AdminConnection

    @property
    def status_text(self) -> str:
        return STATUS_TEXT.get(self.connection.status, self.connection.status)

    @property
    def badge(self) -> str:
        return STATUS_BADGE.get(self.connection.status, "pending")


@dataclass(frozen=True)
class Connections:
    """Every connection of a credential: its own, and each platform's."""

    shown: tuple[ShownConnection, ...] = ()

    def for_credential(self) -> list[ShownConnection]:
        return [c for c in self.shown if c.platform_id is None]

    def for_platform(self, platform_id: int) -> list[ShownConnection]:
        return [c for c in self.shown if c.platform_id == platform_id]


def _plugins(tool: Tool, credential: Credential) -> list[str]:
    """The credential's enabled plugins that are loaded and implement the hook."""
    return [
        name
        for name in tool.plugins.lms_names
        if name in credential.enabled_plugins and tool.plugins.implements(name, HOOK)
    ]


async def _ask(
    tool: Tool, plugin: str, credential: Credential, platform: Platform | None
) -> list[AdminConnection]:
    """One plugin's connections at one level; nothing when it fails (logged)."""
    platform_id = platform.id if platform is not None else None
    try:
        async with asyncio.timeout(WAIT_SECONDS):
            settings = await effective_settings(tool, credential, plugin, platform_id)
            answer = await tool.plugins.call_lms(
                plugin,
                HOOK,
                tool=tool,
                credential=credential,
                platform=platform,
                settings=settings,
            )
    except Exception:
        log.exception(
            "admin_connections of %s failed for credential %s (platform %s); left out",
            plugin,
            credential.name,
            platform_id,
        )
        return []
    found = [c for c in answer or () if isinstance(c, AdminConnection)]
    if len(found) != len(answer or ()):
        log.warning("admin_connections of %s answered something that is no AdminConnection", plugin)
    return found


async def credential_connections(
    tool: Tool, credential: Credential, platforms: Sequence[Platform]
) -> Connections:
    """The connections of the credential and of each of its platforms of a plugin's LMS."""
    shown: list[ShownConnection] = []
    for plugin in _plugins(tool, credential):
        title = tool.plugins.title(plugin)
        levels: list[Platform | None] = [None, *(p for p in platforms if p.lms == plugin)]
        for platform in levels:
            for connection in await _ask(tool, plugin, credential, platform):
                shown.append(
                    ShownConnection(plugin, title, platform.id if platform else None, connection)
                )
    return Connections(tuple(shown))


def _safe_target(url: object) -> str:
    """A URL to send the admin to: an ``https`` address (``http`` in development) or a path."""
    if not isinstance(url, str) or not url or any(c in url for c in "\r\n\\"):
        raise AdminError(502, "The plugin made no address to continue at.")
    parts = urlsplit(url)
    if parts.scheme in ("https", "http") and parts.netloc:
        return url
    if not parts.scheme and not parts.netloc and url.startswith("/") and not url.startswith("//"):
        return url
    raise AdminError(502, "The plugin made no address to continue at.")


@console
async def start_connection(page: Page) -> Response:
    """``POST /admin/credentials/{id}/connections/start``: off to authorise a connection.

    The form names the ``plugin``, the connection's ``key`` and the ``platform`` (empty:
    the credential's own). Anything this admin may not reach answers 404.
    """
    credential = page.managed
    plugin = page.field("plugin")
    key = page.field("key")
    raw_platform = page.field("platform")
    if plugin not in _plugins(page.tool, credential) or not key:
        raise AdminError(404, NOT_FOUND)
    platform: Platform | None = None
    if raw_platform:
        if not raw_platform.isdigit() or not 1 <= int(raw_platform) <= MAX_ID:
            raise AdminError(404, NOT_FOUND)
        try:
            platform = await page.tool.repo.platform(int(raw_platform))
        except NotFound:
            raise AdminError(404, NOT_FOUND) from None
        if platform.credential_id != credential.id or platform.lms != plugin:
            raise AdminError(404, NOT_FOUND)
    connection = next(
        (c for c in await _ask(page.tool, plugin, credential, platform) if c.key == key), None
    )
    if connection is None:
        raise AdminError(404, NOT_FOUND)
    if connection.start is None:
        raise AdminError(409, f"{connection.label} cannot be connected now: {connection.detail}")
    try:
        target = _safe_target(await connection.start())
    except LmsApiError as exc:
        raise AdminError(409, f"{connection.label} cannot be connected now: {exc}.") from exc
    log.info(
        "%s started connecting %s (%s) for credential %s, platform %s",
        page.actor,
        connection.label,
        plugin,
        credential.name,
        platform.id if platform else None,
    )
    response = RedirectResponse(target, status_code=303)
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


def connection_routes() -> list[BaseRoute]:
    """The console's connection route, mounted with the other console routes."""
    return [
        Route(
            "/credentials/{credential_id:int}/connections/start",
            start_connection,
            methods=["POST"],
        )
    ]


__all__ = ["Connections", "connection_routes", "credential_connections", "start_connection"]
