"""Calling Learn's public REST API as the tool's application, with a cached token.

Learn grants an application token by OAuth 2 client credentials
(``POST /learn/api/public/v1/oauth2/token``, ``grant_type=client_credentials``, the
application key and secret as HTTP Basic), valid for an hour; asking again before it
expires returns the same token with a new expiry
(https://docs.anthology.com/docs/blackboard/rest-apis/getting-started/basic-authentication).

The token is kept in the plugin's token store under the subject ``"app"`` (encrypted at
rest, shared by every worker) until a minute before it expires. Only one coroutine per
site and application fetches a new one at a time; the others wait and read it from the
store. An API call answered ``401`` fetches a fresh token once and is sent again; a second
``401`` means the application is not (or no longer) allowed on the site.

Learn throttles with ``429`` and ``Retry-After``; its errors are
``{"status": ..., "message": ...}``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import httpx

from ltipro.lmsapi import (
    LmsApi,
    LmsNotAuthorized,
    StoredToken,
    raise_for_lms_status,
    transport_error,
)
from ltipro_blackboard.settings import INTEGRATION_HELP, app_credentials, learn_url

LMS = "Blackboard Learn"
TOKEN_PATH = "/learn/api/public/v1/oauth2/token"
SUBJECT = "app"

_locks: dict[tuple[Any, ...], asyncio.Lock] = {}


def _lock(api: LmsApi, base: str, key: str) -> asyncio.Lock:
    return _locks.setdefault((api.credential_id, api.platform_id, base, key), asyncio.Lock())


async def access_token(
    settings: Mapping[str, Any], api: LmsApi, *, refused: str | None = None
) -> str:
    """A valid application token; ``refused`` names one Learn just turned down."""

    def usable(token: StoredToken | None) -> str | None:
        if token is None or token.expired() or token.access_token == refused:
            return None
        return token.access_token

    cached = usable(await api.tokens.get(SUBJECT))
    if cached:
        return cached
    base = learn_url(settings, api)
    key, secret = app_credentials(settings)
    async with _lock(api, base, key):
        # Another coroutine may have fetched one while this one waited for the lock.
        cached = usable(await api.tokens.get(SUBJECT))
        if cached:
            return cached
        token = await _fetch_token(base, key, secret, api)
        await api.tokens.put(SUBJECT, token)
        return token.access_token


async def _fetch_token(base: str, key: str, secret: str, api: LmsApi) -> StoredToken:
    url = await api.check_url(base + TOKEN_PATH)
    try:
        response = await api.http.post(
            url,
            data={"grant_type": "client_credentials"},
            auth=(key, secret),
            headers={"Accept": "application/json"},
        )
    except httpx.HTTPError as exc:
        raise transport_error(exc, LMS) from exc
    if response.status_code in (400, 401, 403):
        raise LmsNotAuthorized(
            f"Learn refused the REST application key and secret ({response.status_code}: "
            f"{response.text.strip()[:200]}). Check the key and secret, and that the "
            f"application is allowed on the site. {INTEGRATION_HELP}"
        )
    raise_for_lms_status(response, LMS)
    return StoredToken.from_oauth(response.json())


async def request(
    method: str,
    path: str,
    settings: Mapping[str, Any],
    api: LmsApi,
    *,
    params: Mapping[str, str] | None = None,
    json: Mapping[str, Any] | None = None,
) -> httpx.Response:
    """Send an API request with the application token; one retry with a new token on 401."""
    url = await api.check_url(learn_url(settings, api) + path)
    token = await access_token(settings, api)
    response: httpx.Response | None = None
    for attempt in range(2):
        try:
            response = await api.http.request(
                method,
                url,
                params=params,
                json=json,
                headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
            )
        except httpx.HTTPError as exc:
            raise transport_error(exc, LMS) from exc
        if response.status_code != 401 or attempt:
            break
        await api.tokens.delete(SUBJECT)
        token = await access_token(settings, api, refused=token)
    if response is None:  # pragma: no cover - the loop always runs
        raise RuntimeError("no request was sent")
    return response


def check(response: httpx.Response) -> None:
    """Raise the :mod:`ltipro.lmsapi` error for an unsuccessful answer, with Learn's help."""
    status = response.status_code
    if status == 401:
        raise LmsNotAuthorized(
            f"Learn refused a fresh application token for {response.request.method} "
            f"{response.request.url.path}: the REST integration may have been removed or "
            f"disabled. {INTEGRATION_HELP}"
        )
    if status == 403:
        raise LmsNotAuthorized(
            f"Learn answered 403 to {response.request.method} {response.request.url.path} "
            f"({response.text.strip()[:200]}): the REST integration's Learn user lacks a "
            f"privilege, or the course calendar is switched off. {INTEGRATION_HELP}"
        )
    raise_for_lms_status(response, LMS)


__all__ = ["SUBJECT", "access_token", "check", "request"]
