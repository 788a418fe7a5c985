"""The tool in-process with a simulated LMS registered: complete launches in a few lines.

Used by the core's tests, every plugin's conformance suite and the benchmarks::

    async with ToolHarness(database_url=url, instance=tmp_path) as harness:
        response = await harness.launch13(claims)
        assert response.status_code == 200
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from html import unescape
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx

from ltipro.plugins import Plugins
from ltipro.settings import Settings
from ltipro.simulator.app import Simulator, create_simulator_app
from ltipro.simulator.platform import SimulatedPlatform
from ltipro.storage.repository import Credential, Platform
from ltipro.storage.store import ProtocolStore
from ltipro.testing.transport import RoutingTransport
from ltipro.tool import Tool
from ltipro.web.app import create_app

TOOL_URL = "https://tool.test"
LMS_URL = "https://lms.test"
SECRET_KEY = "test-secret-key-" + "x" * 32
CLIENT_ID = "tool-client-1"
DEPLOYMENT_ID = "deployment-1"
LTI11_KEY = "test-consumer-key"
LTI11_SECRET = "test-shared-secret-0123456789"


def prepare_database(database_url: str, plugin_locations: Sequence[str] = ()) -> None:
    """Run every migration on a database (synchronously: call it outside an event loop)."""
    from ltipro.storage.migrate import upgrade

    upgrade(database_url, plugin_locations)


async def prepare_database_async(database_url: str, plugin_locations: Sequence[str] = ()) -> None:
    await asyncio.to_thread(prepare_database, database_url, plugin_locations)


def simulated_platform(
    issuer: str = LMS_URL,
    client_id: str = CLIENT_ID,
    deployment_id: str = DEPLOYMENT_ID,
    lti11_key: str | None = LTI11_KEY,
    lti11_secret: str | None = LTI11_SECRET,
) -> SimulatedPlatform:
    """A simulated platform that launches the harness's tool: by default the one a harness
    registers (each call makes a new RSA key)."""
    return SimulatedPlatform(
        issuer=issuer,
        client_id=client_id,
        deployment_id=deployment_id,
        tool_login_url=f"{TOOL_URL}/lti/login",
        tool_launch_url=f"{TOOL_URL}/lti/launch",
        lti11_key=lti11_key,
        lti11_secret=lti11_secret,
    )


def _attr(html: str, element_id: str, name: str) -> str:
    """An attribute of the element with ``element_id`` in a page the tool rendered."""
    match = re.search(rf'id="{element_id}"(.*?)>', html, re.S)
    if not match:
        raise AssertionError(f"no element #{element_id} in the page")
    found = re.search(rf'{name}="([^"]*)"', match.group(1))
    if not found:
        raise AssertionError(f"#{element_id} has no {name}")
    return unescape(found.group(1))


def hidden_inputs(html: str) -> dict[str, str]:
    """The hidden fields of a page's forms (for auto-submitting pages)."""
    return {
        unescape(name): unescape(value)
        for name, value in re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', html)
    }


class ToolHarness:
    """The tool app, a simulated platform registered with it, and an HTTP client."""

    def __init__(
        self,
        *,
        database_url: str,
        instance: Path,
        plugins: Sequence[str] | None = None,
        extra_plugins: Iterable[tuple[str, Any]] = (),
        enabled_plugins: Sequence[str] | None = None,
        lms: str = "generic",
        store: ProtocolStore | None = None,
        redis_url: str | None = None,
        settings_overrides: Mapping[str, Any] | None = None,
    ) -> None:
        self.database_url = database_url
        self.instance = instance
        self.plugin_names = plugins
        self.extra_plugins = list(extra_plugins)
        self.enabled_plugins = enabled_plugins
        self.lms = lms
        self._store = store
        self.redis_url = redis_url
        self.settings_overrides = dict(settings_overrides or {})
        self.transport = RoutingTransport()
        self.private_hosts: set[str] = set()

    async def __aenter__(self) -> ToolHarness:
        values: dict[str, Any] = {
            "instance": self.instance,
            "base_url": TOOL_URL,
            "secret_key": SECRET_KEY,
            "database_url": self.database_url,
            "redis_url": self.redis_url,
            "dev": False,
            "allow_private_urls": False,
        }
        values.update(self.settings_overrides)
        self.settings = Settings(**values)
        self.plugins = Plugins.load(
            self.plugin_names if self.plugin_names is not None else (), extra=self.extra_plugins
        )
        self.outbound = httpx.AsyncClient(transport=self.transport)
        self.tool = await Tool.open(
            self.settings,
            plugins=self.plugins,
            http=self.outbound,
            store=self._store,
            resolver=self.resolve,
        )
        self.platform = simulated_platform()
        self.simulator = self.serve_platform(self.platform)
        self.app = create_app(self.settings, tool=self.tool)
        self.transport.add(urlsplit(TOOL_URL).netloc, self.app)
        self.client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.app), base_url=TOOL_URL
        )
        self.credential = await self.tool.repo.create_credential(
            "test",
            enabled_plugins=self.enabled_plugins or self.plugins.lms_names,
            lti11_key=LTI11_KEY,
            lti11_secret=LTI11_SECRET,
        )
        self.registration = await self.register_platform(self.platform, lms=self.lms)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.client.aclose()
        await self.tool.close()
        await self.outbound.aclose()

    async def resolve(self, host: str) -> list[str]:
        """Test hosts resolve to a public address (never contacted: requests stay in-process)."""
        if host in self.private_hosts:
            return ["10.0.0.7"]
        return ["93.184.215.14"]

    async def register_platform(
        self, platform: SimulatedPlatform, lms: str = "generic", status: str = "active"
    ) -> Platform:
        return await self.tool.repo.add_platform(
            self.credential,
            lms=lms,
            issuer=platform.issuer,
            client_id=platform.client_id,
            deployment_ids=[platform.deployment_id],
            auth_login_url=f"{platform.issuer}/auth",
            auth_token_url=f"{platform.issuer}/token",
            jwks_url=f"{platform.issuer}/jwks.json",
            status=status,
        )

    def serve_platform(self, platform: SimulatedPlatform) -> Simulator:
        """Serve a simulated platform's endpoints (authentication, keys) at its issuer's host."""
        simulator = Simulator(
            platform=platform,
            plugins=self.plugins,
            tool_jwks_url=f"{TOOL_URL}/.well-known/jwks.json",
            http=self.outbound,
        )
        self.transport.add(urlsplit(platform.issuer).netloc, create_simulator_app(simulator))
        return simulator

    async def use_platform(
        self, issuer: str, client_id: str, deployment_id: str, *, lms: str = "generic"
    ) -> SimulatedPlatform:
        """Serve another simulated LMS at ``issuer``, register it with the tool as ``lms``,
        and send the launches that follow from it (a hosted LMS's shared issuer, say)."""
        platform = simulated_platform(
            issuer, client_id, deployment_id, lti11_key=None, lti11_secret=None
        )
        self.serve_platform(platform)
        await self.register_platform(platform, lms=lms)
        self.platform = platform
        return platform

    async def refresh_credential(self) -> Credential:
        self.credential = await self.tool.repo.credential(self.credential.name)
        return self.credential

    # -- launches -------------------------------------------------------------------------

    async def login(
        self, claims: Mapping[str, Any], *, storage_target: str | None = None, **params: Any
    ) -> httpx.Response:
        """Step 1 only: the platform's login initiation to the tool."""
        query = self.platform.login_params(claims, storage_target=storage_target)
        query.update({k: v for k, v in params.items() if v is not None})
        for key in [k for k, v in params.items() if v is None]:
            query.pop(key, None)
        return await self.client.get("/lti/login", params=query)

    def auth_request(self, login_response: httpx.Response) -> dict[str, str]:
        """The authentication request the tool sent the browser to, as parameters."""
        if login_response.status_code == 302:
            location = login_response.headers["location"]
        else:
            location = _attr(login_response.text, "ltipro-login", "data-auth-url")
        return dict(parse_qsl(urlsplit(location).query))

    async def launch13(
        self,
        claims: Mapping[str, Any],
        *,
        storage: bool = False,
        keep_cookies: bool = True,
        id_token: str | None = None,
        sign: Callable[[str, dict[str, Any]], str] | None = None,
        form_overrides: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        """A complete LTI 1.3 launch: login, authentication, id_token post, first page.

        ``storage`` runs it the way a browser that blocks third-party cookies does: the
        state is confirmed through the platform's postMessage storage, and no cookie is
        kept. ``id_token`` replaces the platform's token, and ``sign(nonce, claims)`` makes
        it from the claims the platform would sign (to test refusals).
        """
        login = await self.login(
            claims, storage_target="post_message_forwarding" if storage else None
        )
        if login.status_code not in (200, 302):
            return login
        stored = (
            _attr(login.text, "ltipro-login", "data-storage-value")
            if login.status_code == 200
            else None
        )
        auth = self.auth_request(login)
        action, form = self.platform.authenticate(auth)
        if sign is not None:
            form["id_token"] = sign(auth["nonce"], self.platform.full_claims(claims, auth["nonce"]))
        if id_token is not None:
            form["id_token"] = id_token
        form.update(form_overrides or {})
        if storage or not keep_cookies:
            self.client.cookies.clear()
        response = await self.client.post(urlsplit(action).path, data=form)
        if storage and response.status_code == 200 and 'id="ltipro-launch"' in response.text:
            # What the page's script does: fetch the secret from the platform's storage.
            fields = hidden_inputs(response.text)
            fields["lti_storage_proof"] = stored or ""
            response = await self.client.post("/lti/launch", data=fields)
        return response

    async def launch11(
        self,
        params: Mapping[str, Any],
        *,
        url: str | None = None,
        tamper: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        """An LTI 1.1 launch signed with the credential's key and secret."""
        form = self.platform.lti11_form(params, url=url or f"{TOOL_URL}/lti/launch")
        form.update(tamper or {})
        self.client.cookies.clear()
        return await self.client.post("/lti/launch", data=form)

    @staticmethod
    def session_token(page: httpx.Response) -> str:
        match = re.search(r'<meta name="ltipro-session" content="([^"]+)"', page.text)
        if not match:
            raise AssertionError("the page carries no session token")
        return unescape(match.group(1))

    async def me(self, page: httpx.Response) -> dict[str, Any]:
        """``GET /api/v1/me`` with the session token of a launched page."""
        response = await self.client.get(
            "/api/v1/me", headers={"Authorization": f"Bearer {self.session_token(page)}"}
        )
        response.raise_for_status()
        data: dict[str, Any] = response.json()
        return data
