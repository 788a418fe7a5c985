"""Keys: the platforms' public keys (fetched, cached, parsed) and the tool's own key set."""

from __future__ import annotations

import asyncio
import ipaddress
import json
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx
from jwt.algorithms import RSAAlgorithm

from ltipro.lti.errors import LaunchError

# A platform that rotated its keys is asked again for an unknown kid at most this often,
# so tokens with made-up kids cannot turn the tool into a load on the platform.
REFETCH_INTERVAL = 10.0


class UnsafeURL(ValueError):
    """A URL the tool will not fetch: not HTTPS, or pointing into a private network."""


def check_public_url(url: str, *, allow_private: bool) -> None:
    """Refuse non-HTTPS URLs and literal private, loopback or link-local addresses.

    Host names are checked again after resolution by :func:`resolve_public`.
    """
    parts = urlsplit(url)
    if allow_private:
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise UnsafeURL(f"{url!r} is not an http(s) URL")
        return
    if parts.scheme != "https" or not parts.hostname:
        raise UnsafeURL(f"{url!r} must be an https:// URL")
    host = parts.hostname
    if host == "localhost" or host.endswith(".localhost"):
        raise UnsafeURL(f"{url!r} points at this machine")
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return
    if not address.is_global:
        raise UnsafeURL(f"{url!r} points into a private network")


Resolver = Callable[[str], Awaitable[list[str]]]


async def system_resolver(host: str) -> list[str]:
    """The addresses ``host`` resolves to, without blocking the event loop."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, None, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


async def resolve_public(
    url: str, *, allow_private: bool, resolver: Resolver = system_resolver
) -> None:
    """Check that a URL's host resolves only to public addresses."""
    check_public_url(url, allow_private=allow_private)
    if allow_private:
        return
    host = urlsplit(url).hostname or ""
    try:
        addresses = await resolver(host)
    except OSError as exc:
        raise UnsafeURL(f"{host!r} cannot be resolved: {exc}") from exc
    for address in addresses:
        if not ipaddress.ip_address(address).is_global:
            raise UnsafeURL(f"{host!r} resolves into a private network")


@dataclass
class _KeySet:
    keys: dict[str, tuple[Any, str]]  # kid -> (public key object, alg)
    fetched_at: float


class PlatformKeys:
    """The platforms' public keys, fetched with httpx and cached already parsed.

    One fetch per key-set URL at a time; cached for ``lifetime`` seconds; fetched again
    once when a token names a ``kid`` the cached set lacks (the platform rotated keys).
    """

    def __init__(
        self,
        client: httpx.AsyncClient,
        *,
        lifetime: int,
        allow_private: bool,
        timeout: float = 5.0,
        resolver: Resolver = system_resolver,
    ) -> None:
        self.client = client
        self.resolver = resolver
        self.lifetime = lifetime
        self.allow_private = allow_private
        self.timeout = timeout
        self._sets: dict[str, _KeySet] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def key(self, jwks_url: str, kid: str | None) -> tuple[Any, str]:
        """The public key and algorithm for ``kid`` from the platform at ``jwks_url``."""
        cached = self._sets.get(jwks_url)
        fresh = cached is not None and time.monotonic() - cached.fetched_at < self.lifetime
        if cached is not None and fresh:
            found = self._pick(cached, kid)
            if found is not None:
                return found
        lock = self._locks.setdefault(jwks_url, asyncio.Lock())
        async with lock:
            cached = self._sets.get(jwks_url)
            if cached is not None:
                found = self._pick(cached, kid)
                age = time.monotonic() - cached.fetched_at
                if found is not None and age < self.lifetime:
                    return found
                if found is None and age < REFETCH_INTERVAL:
                    raise self._unknown_kid(kid)
            cached = await self._fetch(jwks_url)
            self._sets[jwks_url] = cached
        found = self._pick(cached, kid)
        if found is None:
            raise self._unknown_kid(kid)
        return found

    @staticmethod
    def _unknown_kid(kid: str | None) -> LaunchError:
        return LaunchError(
            "unknown_key",
            f"The launch was signed with a key ({kid or 'no kid'}) that the LMS does not publish.",
            hint="Check the registration's public key-set URL.",
        )

    @staticmethod
    def _pick(keyset: _KeySet, kid: str | None) -> tuple[Any, str] | None:
        if kid is None:
            # Without a kid, only an unambiguous single key can be used.
            return next(iter(keyset.keys.values())) if len(keyset.keys) == 1 else None
        return keyset.keys.get(kid)

    async def _fetch(self, jwks_url: str) -> _KeySet:
        try:
            await resolve_public(jwks_url, allow_private=self.allow_private, resolver=self.resolver)
        except UnsafeURL as exc:
            raise LaunchError(
                "unsafe_jwks_url", f"The LMS's key-set URL is refused: {exc}"
            ) from exc
        try:
            response = await self.client.get(jwks_url, timeout=self.timeout)
            response.raise_for_status()
            data = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise LaunchError(
                "jwks_unavailable",
                "The LMS's public keys could not be fetched, so the launch cannot be checked.",
                status=424,
                hint=f"Fetching {jwks_url} failed: {exc}",
            ) from exc
        keys: dict[str, tuple[Any, str]] = {}
        raw_keys = data.get("keys") if isinstance(data, dict) else None
        for raw in raw_keys if isinstance(raw_keys, list) else []:
            if not isinstance(raw, dict) or raw.get("kty") != "RSA":
                continue
            if raw.get("use", "sig") != "sig":
                continue
            try:
                public_key = RSAAlgorithm.from_jwk(json.dumps(raw))
            except Exception:  # noqa: S112 - one broken key must not hide the others
                continue
            keys[str(raw.get("kid", ""))] = (public_key, str(raw.get("alg", "RS256")))
        return _KeySet(keys=keys, fetched_at=time.monotonic())


def published_jwks(keys: list[Any], grace: timedelta, now: datetime) -> dict[str, Any]:
    """The tool's key set: the signing key and retired keys still within their grace period."""
    published = [k.public_jwk for k in keys if k.retired_at is None or k.retired_at + grace > now]
    return {"keys": published}
