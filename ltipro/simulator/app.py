"""The LMS simulator's pages: pick an LMS, a course and a role, and launch the tool.

In development mode it is mounted at ``/simulator``; tests and the browser suite also
run it as an app of its own on another host, so the LMS page and the tool are on
different sites exactly as in production.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx
import jwt
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Route

from ltipro.extension import ExampleLaunch
from ltipro.plugins import Plugins
from ltipro.simulator.platform import (
    PlatformError,
    RegistrationRefused,
    SimulatedPlatform,
    example_claims,
)
from ltipro.web.templating import make_environment

STORAGE_FRAME = "post_message_forwarding"


@dataclass
class Simulator:
    """What the simulator's pages work with."""

    platform: SimulatedPlatform
    plugins: Plugins
    tool_jwks_url: str
    http: httpx.AsyncClient | None = None
    base_path: str = "/simulator"
    # The tool's dynamic-registration URL, offered on the simulator's page when known.
    tool_registration_url: str | None = None
    _examples: list[ExampleLaunch] = field(default_factory=list)

    def examples(self) -> list[ExampleLaunch]:
        if not self._examples:
            for _name, answer in self.plugins.broadcast_sync("example_launches"):
                self._examples.extend(answer or [])
        return self._examples

    def example(self, key: str) -> ExampleLaunch | None:
        for example in self.examples():
            if f"{example.lms}/{example.name}" == key:
                return example
        return None

    def url(self, path: str) -> str:
        return self.platform.issuer.rstrip("/") + path


def simulator_of(request: Request) -> Simulator:
    simulator = getattr(request.app.state, "simulator", None)
    if simulator is None:
        from ltipro.simulator.setup import dev_simulator

        simulator = dev_simulator(request.app.state.tool)
        request.app.state.simulator = simulator
    return simulator


def _render(
    request: Request, template: str, status_code: int = 200, **context: Any
) -> HTMLResponse:
    env = getattr(request.app.state, "templates", None) or make_environment()
    return HTMLResponse(env.get_template(template).render(**context), status_code=status_code)


async def index(request: Request) -> Response:
    simulator = simulator_of(request)
    by_lms: dict[str, list[ExampleLaunch]] = {}
    for example in simulator.examples():
        by_lms.setdefault(example.lms, []).append(example)
    return _render(
        request,
        "simulator/index.html",
        simulator=simulator,
        by_lms=by_lms,
        titles={name: simulator.plugins.title(name) for name in by_lms},
        registration_url=await _suggested_registration_url(request, simulator),
    )


async def launch(request: Request) -> Response:
    """The LMS's course page: the tool in an iframe, beside the platform's storage frame."""
    simulator = simulator_of(request)
    form = await request.form()
    key = str(form.get("example") or "")
    example = simulator.example(key)
    if example is None:
        return _render(
            request, "simulator/error.html", status_code=400, message=f"Unknown example {key!r}."
        )
    overrides = {
        "context_id": str(form.get("context_id") or "").strip(),
        "context_title": str(form.get("context_title") or "").strip(),
    }
    claims = example_claims(example, **overrides)
    storage = str(form.get("storage") or "postmessage")
    context: dict[str, Any] = {
        "simulator": simulator,
        "example": example,
        "title": simulator.plugins.title(example.lms),
        "storage_frame": STORAGE_FRAME,
        "use_storage": storage == "postmessage",
        "new_window": storage == "window",
    }
    if example.version == "1.1":
        context["lti11_form"] = simulator.platform.lti11_form(claims)
        context["lti11_url"] = simulator.platform.tool_launch_url
    else:
        if form.get("deep_link"):
            claims = simulator.platform.deep_linking_claims(
                claims, simulator.url("/deep-link-return")
            )
        context["login_url"] = simulator.platform.login_url(
            claims, storage_target=STORAGE_FRAME if storage == "postmessage" else None
        )
    return _render(request, "simulator/course.html", **context)


async def auth(request: Request) -> Response:
    """The platform's OIDC authentication endpoint: answer with a signed id_token post."""
    simulator = simulator_of(request)
    params = dict(request.query_params)
    if request.method == "POST":
        params.update({k: v for k, v in (await request.form()).items() if isinstance(v, str)})
    try:
        action, fields = simulator.platform.authenticate(params)
    except PlatformError as exc:
        return _render(request, "simulator/error.html", status_code=400, message=str(exc))
    return _render(request, "simulator/post.html", action=action, fields=fields)


async def jwks(request: Request) -> Response:
    return JSONResponse(simulator_of(request).platform.jwks())


async def storage(request: Request) -> Response:
    """The platform's postMessage storage frame (LTI client-side storage)."""
    return _render(request, "simulator/storage.html")


async def deep_link_return(request: Request) -> Response:
    """Where the tool posts its deep-linking response; checked like a real LMS would."""
    simulator = simulator_of(request)
    form = await request.form()
    token = str(form.get("JWT") or "")
    try:
        header = jwt.get_unverified_header(token)
        client = simulator.http or httpx.AsyncClient(timeout=5)
        try:
            keys = (await client.get(simulator.tool_jwks_url)).json()
        finally:
            if simulator.http is None:
                await client.aclose()
        jwk = next(k for k in keys["keys"] if k.get("kid") == header.get("kid"))
        public_key = jwt.PyJWK(jwk).key
        claims = jwt.decode(
            token,
            public_key,
            algorithms=["RS256"],
            audience=simulator.platform.issuer,
            issuer=simulator.platform.client_id,
        )
    except Exception as exc:
        return _render(
            request,
            "simulator/error.html",
            status_code=400,
            message=f"The tool's deep-linking response does not verify: {exc}",
        )
    items = claims.get("https://purl.imsglobal.org/spec/lti-dl/claim/content_items") or []
    return _render(
        request,
        "simulator/deep_link_result.html",
        items=items,
        claims=json.dumps(claims, indent=2),
    )


# -- dynamic registration -----------------------------------------------------------------


async def _suggested_registration_url(request: Request, simulator: Simulator) -> str:
    """The tool's registration URL to offer: the one given, or in development mode the
    one for the simulator's own credential (an admin would paste it from the tool)."""
    if simulator.tool_registration_url:
        return simulator.tool_registration_url
    tool = getattr(request.app.state, "tool", None)
    if tool is None:
        return ""
    from ltipro.lti.registration import registration_url
    from ltipro.simulator.setup import CREDENTIAL

    credential = await tool.repo.find_credential(CREDENTIAL)
    return registration_url(tool.settings, credential, days=1) if credential else ""


def _with_query(url: str, extra: dict[str, str]) -> str:
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in extra]
    return urlunsplit(parts._replace(query=urlencode([*query, *extra.items()])))


async def openid_configuration(request: Request) -> Response:
    """The platform's OpenID configuration (LTI Dynamic Registration)."""
    return JSONResponse(simulator_of(request).platform.openid_configuration())


async def registrations(request: Request) -> Response:
    """The platform's registration endpoint: a tool posts its client metadata here."""
    simulator = simulator_of(request)
    try:
        metadata: Any = await request.json()
    except ValueError:
        metadata = None
    try:
        answer = simulator.platform.register_tool(request.headers.get("authorization"), metadata)
    except RegistrationRefused as exc:
        headers = {"WWW-Authenticate": f'Bearer error="{exc.error}"'} if exc.status == 401 else {}
        return JSONResponse(
            {"error": exc.error, "error_description": exc.description},
            status_code=exc.status,
            headers=headers,
        )
    return JSONResponse(answer, status_code=201)


async def register(request: Request) -> Response:
    """The LMS admin's "register a tool by URL": open the tool's registration page in a
    frame, with the platform's configuration URL and a fresh registration token."""
    simulator = simulator_of(request)
    form = await request.form() if request.method == "POST" else request.query_params
    url = str(form.get("registration_url") or "").strip()
    try:
        parts = urlsplit(url)
        valid = parts.scheme in ("http", "https") and bool(parts.netloc)
    except ValueError:
        valid = False
    if not valid:
        return _render(
            request,
            "simulator/error.html",
            status_code=400,
            message="Paste the tool's registration URL (an http:// or https:// address).",
        )
    frame_url = _with_query(
        url,
        {
            "openid_configuration": simulator.url("/.well-known/openid-configuration"),
            "registration_token": simulator.platform.issue_registration_token(),
        },
    )
    return _render(request, "simulator/register.html", simulator=simulator, frame_url=frame_url)


def simulator_routes() -> list[BaseRoute]:
    return [
        Route("/", index, methods=["GET"]),
        Route("/.well-known/openid-configuration", openid_configuration, methods=["GET"]),
        Route("/registrations", registrations, methods=["POST"]),
        Route("/register", register, methods=["GET", "POST"]),
        Route("/launch", launch, methods=["POST"]),
        Route("/auth", auth, methods=["GET", "POST"]),
        Route("/jwks.json", jwks, methods=["GET"]),
        Route("/storage", storage, methods=["GET"]),
        Route("/deep-link-return", deep_link_return, methods=["POST"]),
    ]


def create_simulator_app(simulator: Simulator) -> Starlette:
    """The simulator as an app of its own, serving ``simulator.base_path``."""
    from starlette.routing import Mount

    path = urlsplit(simulator.platform.issuer).path.rstrip("/")
    app = Starlette(routes=[Mount(path, routes=simulator_routes())] if path else simulator_routes())
    app.state.simulator = simulator
    app.state.templates = make_environment()
    return app
