"""LTI 1.3 step 1: OIDC third-party login initiation.

The LMS calls ``/lti/login``; the tool finds the registration, makes a single-use
``state`` and ``nonce``, binds the state to this browser (a cookie, and the platform's
postMessage storage where the LMS offers it) and sends the browser to the platform's
authentication endpoint.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlencode, urlsplit

from ltipro.lti.errors import LaunchError
from ltipro.storage.repository import Platform
from ltipro.tool import Tool

STATE_KIND = "state"
STATE_COOKIE_PREFIX = "ltipro_state_"


@dataclass(frozen=True)
class LoginRedirect:
    """Where to send the browser, and how to bind the state to it."""

    auth_url: str
    state: str
    browser_secret: str
    storage_target: str | None
    platform_origin: str
    platform: Platform

    @property
    def cookie_name(self) -> str:
        return state_cookie_name(self.state)


def state_cookie_name(state: str) -> str:
    """One cookie per login, so launches in two tabs do not overwrite each other."""
    return STATE_COOKIE_PREFIX + state[:16]


def origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


async def find_platform(tool: Tool, issuer: str, client_id: str | None) -> Platform:
    """The registration for an issuer (and client id), refusing ambiguous or inactive ones."""
    candidates = await tool.repo.find_platforms(issuer, client_id or None)
    if not candidates:
        raise LaunchError(
            "unknown_platform",
            "This LMS is not registered with the tool.",
            hint=(
                f"Register issuer {issuer!r}"
                + (f" with client id {client_id!r}" if client_id else "")
                + " with `ltipro platforms add`."
            ),
        )
    if len(candidates) > 1:
        raise LaunchError(
            "ambiguous_platform",
            "The LMS did not say which of its registrations with this tool it is launching.",
            hint=(
                f"Several registrations use issuer {issuer!r}; the LMS must send client_id "
                "in its login request."
            ),
        )
    platform = candidates[0]
    if platform.status == "pending":
        raise LaunchError(
            "platform_pending",
            "This LMS registered itself with the tool, but an administrator has not approved "
            "it yet.",
            status=403,
            hint=f"Approve it with `ltipro platforms approve {platform.id}`.",
        )
    if platform.status != "active":
        raise LaunchError(
            "platform_disabled",
            "The tool's administrator has turned off launches from this LMS.",
            status=403,
        )
    return platform


def check_own_url(tool: Tool, url: str, what: str) -> None:
    """Refuse a URL that is not on the tool's own host (no open redirects)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        parts = urlsplit("")
    if parts.scheme not in ("http", "https") or parts.netloc.lower() != tool.settings.base_host:
        raise LaunchError(
            "foreign_target_link_uri",
            f"The LMS asked to launch {what} that is not this tool.",
            hint=f"The launch URL must start with {tool.settings.base_url}.",
        )


async def initiate_login(tool: Tool, params: Mapping[str, str]) -> LoginRedirect:
    """Check the login request and prepare the authentication request."""
    issuer = (params.get("iss") or "").strip()
    login_hint = params.get("login_hint") or ""
    target_link_uri = params.get("target_link_uri") or ""
    missing = [
        name
        for name, value in (
            ("iss", issuer),
            ("login_hint", login_hint),
            ("target_link_uri", target_link_uri),
        )
        if not value
    ]
    if missing:
        raise LaunchError(
            "bad_login_request",
            "The LMS's login request lacks " + ", ".join(missing) + ".",
            hint="Check that the LMS is set up for LTI 1.3 with this tool's login URL.",
        )
    client_id = params.get("client_id") or None
    # The registration is read and the state written on one connection (one pool
    # checkout; on PostgreSQL each statement commits by itself, one round trip each):
    # nothing else is awaited between them.
    async with tool.repo.statements():
        return await _login(tool, params, issuer, login_hint, target_link_uri, client_id)


async def _login(
    tool: Tool,
    params: Mapping[str, str],
    issuer: str,
    login_hint: str,
    target_link_uri: str,
    client_id: str | None,
) -> LoginRedirect:
    platform = await find_platform(tool, issuer, client_id)
    check_own_url(tool, target_link_uri, "an address")
    deployment_hint = params.get("lti_deployment_id") or None
    if deployment_hint is not None:
        enabled = platform.deployment_enabled(deployment_hint)
        if enabled is None:
            raise LaunchError(
                "unknown_deployment",
                "This LMS deployment is not registered with the tool.",
                status=403,
                hint=f"Add deployment {deployment_hint!r} to the registration of {issuer}.",
            )
        if not enabled:
            raise LaunchError(
                "deployment_disabled",
                "The tool's administrator has turned off launches from this LMS deployment.",
                status=403,
            )
    storage_target = params.get("lti_storage_target") or None
    state = secrets.token_urlsafe(32)
    nonce = secrets.token_urlsafe(32)
    browser_secret = secrets.token_urlsafe(24)
    relaunch = {
        k: params[k]
        for k in (
            "iss",
            "login_hint",
            "target_link_uri",
            "lti_message_hint",
            "client_id",
            "lti_deployment_id",
        )
        if params.get(k)
    }
    record = {
        "platform_id": platform.id,
        "nonce": nonce,
        "secret": browser_secret,
        "deployment_id": deployment_hint,
        "target_link_uri": target_link_uri,
        "storage": bool(storage_target),
        "storage_target": storage_target,
        "relaunch": relaunch,
    }
    await tool.store.put(STATE_KIND, state, json.dumps(record), tool.settings.state_lifetime)
    query = {
        "scope": "openid",
        "response_type": "id_token",
        "response_mode": "form_post",
        "prompt": "none",
        "client_id": platform.client_id,
        "redirect_uri": tool.settings.url("/lti/launch"),
        "login_hint": login_hint,
        "state": state,
        "nonce": nonce,
    }
    if params.get("lti_message_hint"):
        query["lti_message_hint"] = params["lti_message_hint"]
    separator = "&" if "?" in platform.auth_login_url else "?"
    return LoginRedirect(
        auth_url=platform.auth_login_url + separator + urlencode(query),
        state=state,
        browser_secret=browser_secret,
        storage_target=storage_target,
        platform_origin=origin_of(platform.auth_login_url),
        platform=platform,
    )
