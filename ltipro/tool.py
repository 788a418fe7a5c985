"""The tool's shared resources, made once at start-up and closed at shut-down.

The web app, the CLI and the tests all work through one :class:`Tool`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import httpx
import requests

from ltipro.crypto import SecretBox, Signer
from ltipro.lti.keys import PlatformKeys, Resolver, system_resolver
from ltipro.observability import MetricsTransport
from ltipro.plugins import Plugins
from ltipro.providers.registry import ProviderRegistry
from ltipro.sessions import Sessions
from ltipro.settings import Settings
from ltipro.storage.database import create_engine
from ltipro.storage.repository import Repository, ToolKey, now
from ltipro.storage.store import ProtocolStore, open_store

# Tokens the tool signs (deep-linking responses) live 10 minutes; a retired key stays
# published well beyond that so no platform meets a token it cannot check.
TOOL_TOKEN_LIFETIME = 600
RETIRED_KEY_GRACE = timedelta(hours=1)
KEY_RELOAD_INTERVAL = 60.0


@dataclass
class Tool:
    settings: Settings
    plugins: Plugins
    repo: Repository
    store: ProtocolStore
    http: httpx.AsyncClient
    platform_keys: PlatformKeys
    sessions: Sessions
    state_signer: Signer
    # pylti1p3 wants a requests session; it is never used to fetch (keys come preloaded),
    # but making a new one per launch would cost more than the whole launch.
    requests_session: requests.Session = field(default_factory=requests.Session)
    providers: ProviderRegistry = field(init=False)
    _keys: list[ToolKey] = field(default_factory=list)
    _keys_loaded_at: float = 0.0
    _owns_http: bool = True

    @classmethod
    async def open(
        cls,
        settings: Settings,
        *,
        plugins: Plugins | None = None,
        http: httpx.AsyncClient | None = None,
        store: ProtocolStore | None = None,
        resolver: Resolver = system_resolver,
    ) -> Tool:
        # The core's job kinds: every process that opens the tool (web app, worker) runs them.
        import ltipro.calendar.notify
        import ltipro.calendar.sync  # noqa: F401

        engine = create_engine(settings.database_url)
        box = SecretBox(settings.secret_key)
        repo = Repository(engine, box)
        owns_http = http is None
        client = http or httpx.AsyncClient(
            timeout=settings.http_timeout,
            follow_redirects=False,
            headers={"User-Agent": "ltipro"},
            # Counts every call to a provider or an LMS for /metrics (ltipro.observability).
            transport=MetricsTransport(httpx.AsyncHTTPTransport()),
        )
        store = store or open_store(engine, settings.redis_url)
        tool = cls(
            settings=settings,
            plugins=plugins or Plugins.load(settings.plugins),
            repo=repo,
            store=store,
            http=client,
            platform_keys=PlatformKeys(
                client,
                lifetime=settings.jwks_cache_lifetime,
                allow_private=settings.allow_private_urls,
                timeout=settings.http_timeout,
                resolver=resolver,
            ),
            sessions=Sessions(store, settings.secret_key, settings.session_lifetime),
            state_signer=Signer(settings.secret_key, "oidc-state"),
        )
        tool._owns_http = owns_http
        return tool

    def __post_init__(self) -> None:
        self.providers = ProviderRegistry(self.plugins)

    async def close(self) -> None:
        await self.store.close()
        if self._owns_http:
            await self.http.aclose()
        self.requests_session.close()
        await self.repo.engine.dispose()

    # -- the tool's own signing keys --------------------------------------------------------

    async def signing_keys(self, refresh: bool = False) -> list[ToolKey]:
        """The tool's keys, newest first; one is made on first use.

        Read again every minute, so a rotation made by `ltipro keys rotate` (another
        process) reaches every worker without a restart.
        """
        stale = time.monotonic() - self._keys_loaded_at > KEY_RELOAD_INTERVAL
        if refresh or stale or not self._keys:
            self._keys = await self.repo.tool_keys()
            self._keys_loaded_at = time.monotonic()
            if not self._keys:
                key, _ = await self.repo.rotate_tool_key(RETIRED_KEY_GRACE)
                self._keys = [key]
        return self._keys

    async def signing_key(self) -> ToolKey:
        keys = await self.signing_keys()
        current = [k for k in keys if k.retired_at is None]
        return current[0] if current else keys[0]

    async def jwks(self) -> dict[str, Any]:
        from ltipro.lti.keys import published_jwks

        return published_jwks(await self.signing_keys(refresh=True), RETIRED_KEY_GRACE, now())
