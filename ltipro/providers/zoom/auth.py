"""Server-to-Server OAuth access tokens: one cached token per account, refreshed once.

A Server-to-Server OAuth app gets tokens with the ``account_credentials`` grant:
``POST {oauth_token_url}?grant_type=account_credentials&account_id=...`` with HTTP Basic
``client_id:client_secret``. The answer is ``{"access_token", "token_type": "bearer",
"expires_in": 3600, "scope"}``: a token lives one hour and there is no refresh token, so a
new one is fetched the same way (Zoom's "Server-to-Server OAuth" guide). Wrong
credentials answer 400 ``{"reason": "Invalid client_id or client_secret", "error":
"invalid_client"}``.

Zoom allows several live tokens per app, but fetching one per request wastes a call and
races; :class:`ZoomTokenCache` keeps one per (token URL, account, client), refreshes it a
margin before it expires, and lets exactly one caller refresh while the others wait for
that refresh.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx

from ltipro.providers.zoom.errors import ZoomAuthError, ZoomRateLimited, ZoomUnavailable


@dataclass(frozen=True)
class ZoomCredentials:
    """A Server-to-Server OAuth app's credentials and the token endpoint to use them on."""

    account_id: str
    client_id: str
    client_secret: str
    oauth_token_url: str = "https://zoom.us/oauth/token"

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.oauth_token_url, self.account_id, self.client_id)

    def __repr__(self) -> str:  # the secret stays out of logs and tracebacks
        return f"ZoomCredentials(account_id={self.account_id!r}, client_id={self.client_id!r})"


@dataclass
class _Token:
    value: str
    expires_at: float  # on the cache's clock


class ZoomTokenCache:
    """Access tokens for any number of accounts; share one instance per process.

    ``refresh_margin`` seconds before a token expires it is replaced, so a request never
    leaves with a token about to die in flight. ``clock`` is monotonic seconds
    (injectable so tests move time instead of waiting).
    """

    def __init__(
        self,
        *,
        refresh_margin: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
        timeout: float = 15.0,
    ) -> None:
        self.refresh_margin = refresh_margin
        self.clock = clock
        self.timeout = timeout
        self._tokens: dict[tuple[str, str, str], _Token] = {}
        self._locks: dict[tuple[str, str, str], asyncio.Lock] = {}
        self.fetches = 0  # token requests sent, for tests and metrics

    def _fresh(self, key: tuple[str, str, str]) -> str | None:
        token = self._tokens.get(key)
        if token and self.clock() < token.expires_at - self.refresh_margin:
            return token.value
        return None

    async def token(
        self, http: httpx.AsyncClient, credentials: ZoomCredentials, *, rejected: str | None = None
    ) -> str:
        """A usable access token, fetched only when the cached one is missing or old.

        ``rejected`` is a token the API just refused (401, code 124): it is replaced unless
        another caller already replaced it, so a burst of 401s causes one refresh.
        """
        key = credentials.key
        cached = self._fresh(key)
        if cached is not None and cached != rejected:
            return cached
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            # Whoever held the lock before us may have refreshed already.
            cached = self._fresh(key)
            if cached is not None and cached != rejected:
                return cached
            token = await self._fetch(http, credentials)
            self._tokens[key] = token
            return token.value

    def forget(self, credentials: ZoomCredentials) -> None:
        """Drop the account's token (after its credentials change)."""
        self._tokens.pop(credentials.key, None)

    async def _fetch(self, http: httpx.AsyncClient, credentials: ZoomCredentials) -> _Token:
        self.fetches += 1
        started = self.clock()
        try:
            response = await http.post(
                credentials.oauth_token_url,
                params={"grant_type": "account_credentials", "account_id": credentials.account_id},
                auth=(credentials.client_id, credentials.client_secret),
                timeout=self.timeout,
            )
        except httpx.TimeoutException as exc:
            raise ZoomUnavailable("Zoom's token endpoint did not answer in time") from exc
        except httpx.TransportError as exc:
            raise ZoomUnavailable(f"Zoom's token endpoint could not be reached: {exc}") from exc
        if response.status_code == 429:
            raise ZoomRateLimited(
                "Zoom's token endpoint is rate limiting this app",
                retry_after=float(response.headers["Retry-After"])
                if response.headers.get("Retry-After", "").isdigit()
                else None,
            )
        if response.status_code >= 500:
            raise ZoomUnavailable(
                f"Zoom's token endpoint answered {response.status_code}",
                status=response.status_code,
            )
        try:
            body = response.json()
        except ValueError:
            body = {}
        if (
            response.status_code != 200
            or not isinstance(body, dict)
            or not body.get("access_token")
        ):
            reason = body.get("reason") or body.get("error") if isinstance(body, dict) else None
            raise ZoomAuthError(
                f"Zoom refused the app's credentials: {reason or response.reason_phrase}",
                status=response.status_code,
                raw=body if isinstance(body, dict) else None,
            )
        expires_in = body.get("expires_in")
        lifetime = float(expires_in) if isinstance(expires_in, int | float) else 3600.0
        # Count the lifetime from when the request left: the token was minted after that.
        return _Token(value=str(body["access_token"]), expires_at=started + lifetime)
