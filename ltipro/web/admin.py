"""The admin console under ``/admin``: sign-in, then each credential an admin manages.

Admin accounts are made with ``ltipro admins create``. An admin signs in with email and
password; the session lives in the protocol store and the browser holds a signed cookie
naming it (``HttpOnly; Secure; SameSite=Lax``, path ``/admin``). Every form carries the
session's CSRF token and every POST without it is refused with a 403. Failed sign-ins
are counted per email and address; after a few the pair waits a few minutes.

An admin sees only the credentials they manage (a superuser sees all). A credential
they do not manage answers 404, exactly like one that does not exist, so the console
never tells which ids exist.

Per credential the console has one page per tab in :data:`CREDENTIAL_TABS`: the
configuration options, the LMS platforms and deployments, the plugins and their
settings, API keys, the audit log of every change and the launch log.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import hmac
import json
import logging
import re
import secrets
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from ltipro.crypto import Signer, TokenError
from ltipro.option_fields import (
    EVERY_DOMAIN_WARNING,
    FIELDS_BY_NAME,
    SECTIONS,
    InvalidOptions,
    OptionField,
    check_changes,
    fields_in,
)
from ltipro.options import CredentialOptions, OptionError
from ltipro.passwords import hash_password, needs_rehash, verify_nothing, verify_password
from ltipro.plugin_settings import (
    PluginSettingError,
    SettingValue,
    declared_settings,
    set_plugin_settings,
    setting_values,
)
from ltipro.plugins import PROVIDERS
from ltipro.storage.admin_repository import (
    SECRET_CHANGED,
    SECRET_REMOVED,
    Admin,
    AdminRepository,
    Change,
    normalize_email,
)
from ltipro.storage.repository import Credential, NotFound, Platform
from ltipro.tool import Tool
from ltipro.web.security import FRAME_ANCESTORS_KEY
from ltipro.web.templating import render

log = logging.getLogger(__name__)

SESSION_COOKIE = "ltipro_admin"
LOGIN_COOKIE = "ltipro_admin_login"
CSRF_FIELD = "csrf_token"
SESSION_KIND = "admin_session"
FAILURE_KIND = "admin_signin_fail"
SESSION_LIFETIME = 8 * 3600
LOGIN_FORM_LIFETIME = 3600
# A few tries, then the email and address pair waits: enough for typos, far too few
# for guessing.
MAX_FAILURES = 5
FAILURE_WINDOW = 300
# Ids in URLs are database integers; a bigger number is no credential, not an error.
MAX_ID = 2**31 - 1
# How many empty rows the tracking-field and group tables offer for new entries.
BLANK_ROWS = 2

# The tabs of a credential's pages, in order: (path under the credential, title).
CREDENTIAL_TABS: tuple[tuple[str, str], ...] = (
    ("config", "Configuration"),
    ("platforms", "LMS platforms"),
    ("install", "Install in an LMS"),
    ("plugins", "Plugins"),
    ("api-keys", "API keys"),
    ("imports", "Meeting import"),
    ("audit", "Audit log"),
    ("launches", "Launch log"),
    ("jobs", "Jobs"),
)
# The meetings provider's account (its choice, ids and write-only secrets) is declared as
# the settings of the built-in providers plugin; its tab opens that plugin's settings
# page. A page of its own, should the provider need more than settings, replaces it here.
PROVIDER_TAB = (f"plugins/{PROVIDERS}/settings", "Meetings provider")


class AdminError(Exception):
    """A request the console refuses; ``message`` is shown on the error page."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


NOT_FOUND = "There is nothing here, or it is not yours to manage."


@dataclass(frozen=True)
class AdminSession:
    id: str
    admin_id: int
    csrf: str


@dataclass
class Page:
    """What a console handler works with: the signed-in admin and the request's data."""

    request: Request
    tool: Tool
    admins: AdminRepository
    admin: Admin
    session: AdminSession
    form: FormData | None
    credential: Credential | None

    @property
    def actor(self) -> str:
        """How the audit log names this admin."""
        return self.admin.email

    @property
    def managed(self) -> Credential:
        assert self.credential is not None
        return self.credential

    def field(self, name: str, default: str = "") -> str:
        value = self.form.get(name) if self.form is not None else None
        return value if isinstance(value, str) else default

    def render(
        self, template: str, context: Mapping[str, Any] | None = None, status_code: int = 200
    ) -> Response:
        return render(
            self.request,
            template,
            {
                "admin": self.admin,
                "csrf_token": self.session.csrf,
                "csrf_field": CSRF_FIELD,
                "credential": self.credential,
                "tabs": self.tabs(),
                **(context or {}),
            },
            status_code=status_code,
        )

    def tabs(self) -> list[tuple[str, str, bool]]:
        """The credential's tabs as (URL, title, whether it is the current page)."""
        if self.credential is None:
            return []
        tabs = list(CREDENTIAL_TABS)
        if self.tool.plugins.plugin(PROVIDERS) is not None:
            tabs.insert(1, PROVIDER_TAB)
        links = [(credential_path(self.credential, path), title) for path, title in tabs]
        here = self.request.url.path
        # The most specific tab the page is under: a plugin's settings are under Plugins,
        # the provider's settings under their own tab.
        current = max(
            (url for url, _ in links if here == url or here.startswith(url + "/")),
            key=len,
            default="",
        )
        return [(url, title, url == current) for url, title in links]

    def redirect(self, path: str, **query: str) -> Response:
        url = path + ("?" + urlencode(query) if query else "")
        return RedirectResponse(url, status_code=303)


def tool_of(request: Request) -> Tool:
    tool: Tool = request.app.state.tool
    return tool


def admin_repository(tool: Tool) -> AdminRepository:
    return AdminRepository(tool.repo.engine)


def _signer(tool: Tool) -> Signer:
    return Signer(tool.settings.secret_key, "admin-session")


def credential_path(credential: Credential | int, tab: str = "config") -> str:
    credential_id = credential if isinstance(credential, int) else credential.id
    return f"/admin/credentials/{credential_id}/{tab}"


# -- responses every console page shares ----------------------------------------------------


def _harden(request: Request, response: Response) -> Response:
    """No caching of admin pages, and no framing: the console is never inside an LMS."""
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Frame-Options"] = "DENY"
    setattr(request.state, FRAME_ANCESTORS_KEY, "'none'")
    return response


def _error_page(
    request: Request, status: int, message: str, admin: Admin | None = None
) -> Response:
    return _harden(
        request,
        render(
            request,
            "admin/error.html",
            {"admin": admin, "status": status, "message": message, "credential": None},
            status_code=status,
        ),
    )


async def _read_form(request: Request) -> FormData | None:
    try:
        return await request.form()
    except Exception:  # an unreadable body is the sender's mistake
        return None


def _set_cookie(response: Response, name: str, value: str, max_age: int, path: str) -> None:
    response.set_cookie(
        name, value, max_age=max_age, path=path, secure=True, httponly=True, samesite="lax"
    )


# -- sessions ------------------------------------------------------------------------------


async def _open_session(tool: Tool, admin: Admin) -> str:
    session_id = secrets.token_urlsafe(24)
    data = {"admin_id": admin.id, "csrf": secrets.token_urlsafe(32)}
    await tool.store.put(SESSION_KIND, session_id, json.dumps(data), SESSION_LIFETIME)
    return _signer(tool).sign({"sid": session_id}, SESSION_LIFETIME)


async def _load_session(request: Request) -> AdminSession | None:
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    tool = tool_of(request)
    try:
        payload = _signer(tool).verify(token)
    except TokenError:
        return None
    session_id = payload.get("sid")
    if not isinstance(session_id, str):
        return None
    raw = await tool.store.peek(SESSION_KIND, session_id)
    if raw is None:
        return None
    data = json.loads(raw)
    return AdminSession(session_id, int(data["admin_id"]), str(data["csrf"]))


def _csrf_ok(form: FormData | None, expected: str) -> bool:
    given = form.get(CSRF_FIELD) if form is not None else None
    # Compared as bytes: compare_digest refuses str with non-ASCII characters (a TypeError).
    return (
        isinstance(given, str)
        and bool(given)
        and hmac.compare_digest(given.encode(), expected.encode())
    )


# -- the wrapper every signed-in page goes through -------------------------------------------

Handler = Callable[[Page], Awaitable[Response]]


def _path_id(request: Request, name: str) -> int | None:
    value = request.path_params.get(name)
    if value is None:
        return None
    number = int(value)
    if not 1 <= number <= MAX_ID:
        raise AdminError(404, NOT_FOUND)
    return number


async def _managed_credential(tool: Tool, admin: Admin, credential_id: int) -> Credential:
    """The credential, if this admin manages it; otherwise the same 404 as a missing one."""
    if not admin.manages(credential_id):
        raise AdminError(404, NOT_FOUND)
    try:
        return await tool.repo.credential_by_id(credential_id)
    except NotFound:
        raise AdminError(404, NOT_FOUND) from None


def console(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    """Sign-in, CSRF and credential checks around a console page handler.

    Not signed in: a page load goes to the sign-in page, a POST is refused (403). A POST
    must carry the session's CSRF token (403 otherwise), checked before anything else.
    A ``credential_id`` in the path must be one the admin manages (404 otherwise).
    """

    async def endpoint(request: Request) -> Response:
        tool = tool_of(request)
        admins = admin_repository(tool)
        session = await _load_session(request)
        admin = await admins.admin_by_id(session.admin_id) if session else None
        if session is None or admin is None:
            if request.method == "POST":
                return _error_page(
                    request, 403, "Your admin session has ended. Sign in again and retry."
                )
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            return _harden(
                request,
                RedirectResponse("/admin/login?" + urlencode({"next": target}), status_code=303),
            )
        form: FormData | None = None
        if request.method == "POST":
            form = await _read_form(request)
            if not _csrf_ok(form, session.csrf):
                return _error_page(
                    request,
                    403,
                    "This form did not come from your admin session (its security token is "
                    "missing or out of date). Go back, reload the page and try again.",
                    admin,
                )
        try:
            credential_id = _path_id(request, "credential_id")
            credential = (
                await _managed_credential(tool, admin, credential_id)
                if credential_id is not None
                else None
            )
            page = Page(request, tool, admins, admin, session, form, credential)
            response = await handler(page)
        except AdminError as error:
            return _error_page(request, error.status, error.message, admin)
        return _harden(request, response)

    return endpoint


# -- signing in and out -----------------------------------------------------------------------


def _safe_next(value: str | None) -> str:
    """Only a path inside the console; anything else could send the admin elsewhere."""
    if value and value.startswith("/admin/") and not value.startswith("//") and "\\" not in value:
        return value
    return "/admin/"


def _client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _failure_key(email: str, address: str) -> str:
    return hashlib.sha256(f"{email}\n{address}".encode()).hexdigest()


async def _locked(tool: Tool, key: str) -> bool:
    return await tool.store.peek(FAILURE_KIND, f"{key}:{MAX_FAILURES - 1}") is not None


async def _count_failure(tool: Tool, key: str) -> None:
    # One entry per failure, each expiring on its own: add_once is atomic in every store,
    # so workers counting at once never lose a failure.
    for n in range(MAX_FAILURES):
        if await tool.store.add_once(FAILURE_KIND, f"{key}:{n}", FAILURE_WINDOW):
            return


async def _forget_failures(tool: Tool, key: str) -> None:
    for n in range(MAX_FAILURES):
        await tool.store.take(FAILURE_KIND, f"{key}:{n}")


def _login_page(
    request: Request,
    *,
    email: str = "",
    message: str = "",
    status: int = 200,
    headers: Mapping[str, str] | None = None,
    next_page: str | None = None,
) -> Response:
    token = request.cookies.get(LOGIN_COOKIE) or secrets.token_urlsafe(32)
    response = render(
        request,
        "admin/login.html",
        {
            "admin": None,
            "credential": None,
            "csrf_field": CSRF_FIELD,
            "csrf_token": token,
            "email": email,
            "message": message,
            "next": _safe_next(next_page or request.query_params.get("next")),
        },
        status_code=status,
    )
    response.headers.update(headers or {})
    _set_cookie(response, LOGIN_COOKIE, token, LOGIN_FORM_LIFETIME, "/admin/login")
    return _harden(request, response)


async def login(request: Request) -> Response:
    """``GET|POST /admin/login``."""
    tool = tool_of(request)
    if request.method == "GET":
        if await _load_session(request) is not None:
            return _harden(request, RedirectResponse("/admin/", status_code=303))
        return _login_page(request)
    form = await _read_form(request)
    # Before a session exists the token is double-submitted: the form's copy must match
    # the cookie the sign-in page set, which another site can neither read nor set.
    cookie = request.cookies.get(LOGIN_COOKIE, "")
    if not cookie or not _csrf_ok(form, cookie):
        return _error_page(
            request,
            403,
            "This sign-in form is out of date or did not come from this site. Reload the "
            "sign-in page and try again.",
        )
    assert form is not None
    posted_next = form.get("next")
    again = posted_next if isinstance(posted_next, str) else None
    raw_email = form.get("email")
    raw_password = form.get("password")
    email = normalize_email(raw_email) if isinstance(raw_email, str) else ""
    password = raw_password if isinstance(raw_password, str) else ""
    if not email or not password:
        return _login_page(
            request,
            email=email,
            message="Enter your email and password.",
            status=400,
            next_page=again,
        )
    key = _failure_key(email, _client_address(request))
    wait = {"Retry-After": str(FAILURE_WINDOW)}
    too_many = (
        f"Too many failed sign-ins for this email from your address. Wait "
        f"{FAILURE_WINDOW // 60} minutes and try again."
    )
    if await _locked(tool, key):
        return _login_page(
            request, email=email, message=too_many, status=429, headers=wait, next_page=again
        )
    admins = admin_repository(tool)
    admin = await admins.find_admin(email)
    if admin is None:
        ok = await asyncio.to_thread(verify_nothing, password)
    else:
        ok = await asyncio.to_thread(verify_password, password, admin.password_hash)
    if not ok or admin is None:
        await _count_failure(tool, key)
        log.warning("failed admin sign-in for %r from %s", email, _client_address(request))
        if await _locked(tool, key):
            return _login_page(
                request, email=email, message=too_many, status=429, headers=wait, next_page=again
            )
        return _login_page(
            request,
            email=email,
            message="The email or password is not right.",
            status=400,
            next_page=again,
        )
    await _forget_failures(tool, key)
    rehashed = (
        await asyncio.to_thread(hash_password, password)
        if needs_rehash(admin.password_hash)
        else None
    )
    await admins.record_login(admin.id, rehashed)
    token = await _open_session(tool, admin)
    response = RedirectResponse(_safe_next(again), status_code=303)
    _set_cookie(response, SESSION_COOKIE, token, SESSION_LIFETIME, "/admin")
    response.delete_cookie(LOGIN_COOKIE, path="/admin/login", secure=True, httponly=True)
    return _harden(request, response)


@console
async def logout(page: Page) -> Response:
    """``POST /admin/logout``: the session ends on the server, not only in the browser."""
    await page.tool.store.take(SESSION_KIND, page.session.id)
    response = page.redirect("/admin/login")
    response.delete_cookie(SESSION_COOKIE, path="/admin", secure=True, httponly=True)
    return response


# -- the credentials an admin manages -----------------------------------------------------------


async def _managed_credentials(page: Page) -> list[Credential]:
    everything = await page.tool.repo.list_credentials()
    return [c for c in everything if page.admin.manages(c.id)]


@console
async def index(page: Page) -> Response:
    """``GET /admin/``: the credentials this admin manages."""
    rows = []
    for credential in await _managed_credentials(page):
        platforms = await page.tool.repo.list_platforms(credential)
        rows.append(
            {
                "credential": credential,
                "platforms": len(platforms),
                "pending": sum(1 for p in platforms if p.status == "pending"),
                "every_domain": not credential.options.approved_domains,
            }
        )
    return page.render("admin/index.html", {"rows": rows})


@console
async def credential_home(page: Page) -> Response:
    return page.redirect(credential_path(page.managed))


# -- the configuration page ---------------------------------------------------------------------


def options_version(options: CredentialOptions) -> str:
    """A short fingerprint of stored options, to notice a change made meanwhile."""
    text = json.dumps(options.to_json(), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _shown(field: OptionField, value: Any) -> Any:
    """A stored value as its form control shows it."""
    if field.control == "checkbox":
        return bool(value)
    if field.control == "list":
        return "\n".join(value)
    if field.control == "rows":
        return [list(row) for row in value] + [[""] * len(field.columns)] * BLANK_ROWS
    return "" if value is None else str(value)


def _rows_from_form(field: OptionField, form: FormData) -> list[list[str]] | None:
    pattern = re.compile(rf"^{re.escape(field.name)}\.(\d{{1,3}})\.(\d)$")
    cells: dict[int, dict[int, str]] = {}
    for key, value in form.multi_items():
        match = pattern.match(key)
        if match and isinstance(value, str):
            cells.setdefault(int(match[1]), {})[int(match[2])] = value
    if not cells and field.name not in form:
        return None
    rows = []
    for index in sorted(cells):
        row = [cells[index].get(column, "").strip() for column in range(len(field.columns))]
        if any(row):  # an empty row is how an entry is removed
            rows.append(row)
    return rows


def submitted_options(form: FormData) -> tuple[dict[str, Any], dict[str, Any]]:
    """The options a configuration form sends: values to check, and values to show again.

    A field missing from the form is left out (and so left as it is).
    """
    values: dict[str, Any] = {}
    shown: dict[str, Any] = {}
    for field in FIELDS_BY_NAME.values():
        if field.control == "rows":
            rows = _rows_from_form(field, form)
            if rows is None:
                continue
            values[field.name] = rows
            shown[field.name] = rows + [[""] * len(field.columns)] * BLANK_ROWS
            continue
        raw = form.getlist(field.name)
        texts = [v for v in raw if isinstance(v, str)]
        if not texts:
            continue
        if field.control == "checkbox":
            # The form sends a hidden "false" before the checkbox, so an unticked box
            # still says so; a ticked one adds "true" after it.
            values[field.name] = texts[-1] == "true"
            shown[field.name] = values[field.name]
        else:
            values[field.name] = texts[-1]
            shown[field.name] = texts[-1]
    return values, shown


def _config_page(
    page: Page,
    options: CredentialOptions,
    shown: Mapping[str, Any] | None = None,
    errors: Mapping[str, str] | None = None,
    notice: str = "",
    status: int = 200,
) -> Response:
    stored = options.to_json()
    values = {
        name: (shown[name] if shown is not None and name in shown else _shown(field, stored[name]))
        for name, field in FIELDS_BY_NAME.items()
    }
    saved = page.request.query_params.get("saved")
    return page.render(
        "admin/config.html",
        {
            "sections": [(s, fields_in(s.id)) for s in SECTIONS],
            "values": values,
            "errors": dict(errors or {}),
            "version": options_version(options),
            "every_domain_warning": EVERY_DOMAIN_WARNING if not options.approved_domains else "",
            "notice": notice,
            "saved": saved if saved is not None and saved.isdigit() else None,
            "timezones": _timezone_names(),
        },
        status_code=status,
    )


@functools.cache
def _timezone_names() -> list[str]:
    from zoneinfo import available_timezones

    return sorted(available_timezones())


@console
async def config(page: Page) -> Response:
    """``GET|POST /admin/credentials/{id}/config``: every option, with help and checks."""
    credential = page.managed
    if page.form is None:
        return _config_page(page, credential.options)
    values, shown = submitted_options(page.form)
    if page.field("version") != options_version(credential.options):
        return _config_page(
            page,
            credential.options,
            notice=(
                "The configuration was changed by someone else while you were editing it. "
                "Here it is as it is now: make your changes again and save."
            ),
            status=409,
        )
    try:
        checked = check_changes(credential.options, values)
    except InvalidOptions as exc:
        return _config_page(page, credential.options, shown, exc.errors, status=400)
    before, after = credential.options.to_json(), checked.to_json()
    changes = {key: values[key] for key in values if before[key] != after[key]}
    try:
        _, applied = await page.admins.change_options(credential.id, changes, page.actor)
    except OptionError as exc:  # checked above; kept for a rule added between options
        return _config_page(page, credential.options, shown, {"": str(exc)}, status=400)
    return page.redirect(credential_path(credential), saved=str(len(applied)))


# -- LMS platforms and deployments --------------------------------------------------------------


async def _platform_of(page: Page) -> Platform:
    platform_id = _path_id(page.request, "platform_id")
    assert platform_id is not None
    try:
        platform = await page.tool.repo.platform(platform_id)
    except NotFound:
        raise AdminError(404, NOT_FOUND) from None
    if platform.credential_id != page.managed.id:
        raise AdminError(404, NOT_FOUND)
    return platform


@console
async def platforms(page: Page) -> Response:
    """``GET /admin/credentials/{id}/platforms``: registrations, approvals, deployments."""
    from ltipro.lti.registration import registration_url
    from ltipro.web.admin_connections import credential_connections

    credential = page.managed
    rows = await page.tool.repo.list_platforms(credential)
    settings = page.tool.settings
    return page.render(
        "admin/platforms.html",
        {
            "platforms": rows,
            "titles": {p.lms: page.tool.plugins.title(p.lms) for p in rows},
            "enabled_plugins": set(credential.enabled_plugins),
            "tool_urls": [
                ("Login URL", settings.url("/lti/login")),
                ("Launch URL", settings.url("/lti/launch")),
                ("Public key set", settings.url("/.well-known/jwks.json")),
            ],
            "registration_url": registration_url(settings, credential),
            "changed": page.request.query_params.get("changed", ""),
            # What LMS plugins need an admin to authorise (ltipro.web.admin_connections).
            "connections": await credential_connections(page.tool, credential, rows),
        },
    )


PLATFORM_STATES = {"active", "disabled"}


@console
async def platform_status(page: Page) -> Response:
    """``POST .../platforms/{pid}/status``: approve a pending registration, disable, enable."""
    platform = await _platform_of(page)
    status = page.field("status")
    if status not in PLATFORM_STATES:
        raise AdminError(400, "A platform can be made active or disabled.")
    if status != platform.status:
        await page.tool.repo.set_platform_status(platform.id, status)
        await page.admins.record_changes(
            page.actor,
            page.managed.id,
            page.managed.name,
            [Change(f"platforms.{platform.id}.status", platform.status, status)],
        )
    return page.redirect(credential_path(page.managed, "platforms"), changed=str(platform.id))


@console
async def deployment_state(page: Page) -> Response:
    """``POST .../platforms/{pid}/deployments``: accept or refuse one deployment's launches."""
    platform = await _platform_of(page)
    deployment_id = page.field("deployment_id")
    enabled = page.field("enabled")
    current = platform.deployment_enabled(deployment_id)
    if current is None:
        raise AdminError(400, f"Platform {platform.id} has no deployment {deployment_id!r}.")
    if enabled not in ("true", "false"):
        raise AdminError(400, "A deployment can be enabled or disabled.")
    wanted = enabled == "true"
    if wanted != current:
        await page.tool.repo.set_deployment_enabled(platform.id, deployment_id, wanted)
        await page.admins.record_changes(
            page.actor,
            page.managed.id,
            page.managed.name,
            [
                Change(
                    f"platforms.{platform.id}.deployments.{deployment_id}",
                    "enabled" if current else "disabled",
                    "enabled" if wanted else "disabled",
                )
            ],
        )
    return page.redirect(credential_path(page.managed, "platforms"), changed=str(platform.id))


# -- plugins and their settings -----------------------------------------------------------------


@console
async def plugins(page: Page) -> Response:
    """``GET|POST /admin/credentials/{id}/plugins``: which LMS plugins serve launches."""
    credential = page.managed
    installed = page.tool.plugins.lms_names
    enabled = set(credential.enabled_plugins)
    if page.form is not None:
        name = page.field("plugin")
        wanted = page.field("enabled")
        if wanted not in ("true", "false") or not name:
            raise AdminError(400, "Choose a plugin to enable or disable.")
        if wanted == "true" and name not in installed:
            raise AdminError(400, f"No plugin named {name!r} is installed.")
        if wanted == "false" and name not in enabled:
            raise AdminError(400, f"The plugin {name!r} is not enabled.")
        if (name in enabled) != (wanted == "true"):
            names = enabled | {name} if wanted == "true" else enabled - {name}
            await page.tool.repo.set_enabled_plugins(credential, names)
            await page.admins.record_changes(
                page.actor,
                credential.id,
                credential.name,
                [
                    Change(
                        f"plugins.{name}",
                        "enabled" if name in enabled else "disabled",
                        "enabled" if wanted == "true" else "disabled",
                    )
                ],
            )
        return page.redirect(credential_path(credential, "plugins"))
    declared = await declared_settings(page.tool.plugins)
    rows = [
        {
            "name": name,
            "title": page.tool.plugins.title(name),
            "installed": True,
            "enabled": name in enabled,
            "settings": name in declared,
        }
        for name in installed
    ]
    rows += [
        {
            "name": name,
            "title": name,
            "installed": False,
            "enabled": True,
            "settings": False,
        }
        for name in sorted(enabled - set(installed))
    ]
    others = [
        (name, "Meetings provider" if name == PROVIDERS else page.tool.plugins.title(name))
        for name in declared
        if name not in installed
    ]
    return page.render("admin/plugins.html", {"rows": rows, "others": others})


def _level(platform_id: int | None) -> str:
    return "platform" if platform_id is not None else "credential"


def _level_value(row: SettingValue, platform_id: int | None) -> str:
    """What the form shows for a setting: the value set at this level, else nothing."""
    if row.spec.secret or row.source != _level(platform_id):
        return ""
    return row.shown()


def _inherited(row: SettingValue, platform_id: int | None) -> str:
    """What holds when nothing is set at this level, in words."""
    if row.spec.secret:
        return ""
    if platform_id is not None and row.source == "credential":
        return f"the credential's value: {row.shown()}"
    if row.spec.default is None:
        return "no default"
    default = row.spec.default
    return f"default: {default if isinstance(default, str) else json.dumps(default)}"


def _submitted_settings(
    page: Page, editable: Sequence[SettingValue], platform_id: int | None
) -> tuple[dict[str, str], dict[str, str]]:
    """The settings a form changes (empty text: remove), and the non-secret text to show."""
    values: dict[str, str] = {}
    shown: dict[str, str] = {}
    for row in editable:
        key = row.spec.key
        raw = page.field(f"value.{key}").strip()
        set_here = row.source == _level(platform_id)
        if row.spec.secret:
            # A secret is never shown, so an empty field means "keep it".
            if raw:
                values[key] = raw
            elif page.field(f"clear.{key}") == "true" and set_here:
                values[key] = ""
            continue
        shown[key] = raw
        if raw != _level_value(row, platform_id) and (raw or set_here):
            values[key] = raw
    return values, shown


@console
async def plugin_settings(page: Page) -> Response:
    """``GET|POST .../plugins/{plugin}/settings[?platform=ID]``; secrets are write-only."""
    credential = page.managed
    plugin = page.request.path_params["plugin"]
    declared = await declared_settings(page.tool.plugins)
    if plugin not in declared:
        raise AdminError(404, NOT_FOUND)
    registered = await page.tool.repo.list_platforms(credential)
    raw_platform = page.request.query_params.get("platform", "")
    platform_id: int | None = None
    if raw_platform:
        if not raw_platform.isdigit() or int(raw_platform) not in {p.id for p in registered}:
            raise AdminError(404, NOT_FOUND)
        platform_id = int(raw_platform)
    rows = await setting_values(page.tool, credential, plugin, platform_id)
    # At a platform only platform-scoped settings can be set; the others are shown.
    editable = [r for r in rows if platform_id is None or r.spec.scope == "platform"]
    errors: dict[str, str] = {}
    shown = {r.spec.key: _level_value(r, platform_id) for r in rows}
    status_code = 200
    if page.form is not None:
        values, submitted = _submitted_settings(page, editable, platform_id)
        shown.update(submitted)
        specs = {r.spec.key: r.spec for r in editable}
        for key, raw in values.items():
            try:
                if raw:
                    specs[key].clean(raw)
            except ValueError as exc:
                errors[key] = str(exc)
        if not errors:
            try:
                changed = await set_plugin_settings(
                    page.tool, credential, plugin, values, platform_id=platform_id
                )
            except PluginSettingError as exc:
                errors[""] = str(exc)
            else:
                after = await setting_values(page.tool, credential, plugin, platform_id)
                await page.admins.record_changes(
                    page.actor,
                    credential.id,
                    credential.name,
                    _setting_changes(plugin, platform_id, rows, after, values, changed),
                )
                query = {"saved": str(len(changed))}
                if platform_id is not None:
                    query["platform"] = str(platform_id)
                return page.redirect(
                    credential_path(credential, f"plugins/{plugin}/settings"), **query
                )
        status_code = 400
    saved = page.request.query_params.get("saved")
    return page.render(
        "admin/plugin_settings.html",
        {
            "plugin": plugin,
            "title": "Meetings provider"
            if plugin == PROVIDERS
            else page.tool.plugins.title(plugin),
            "rows": rows,
            "editable": {r.spec.key for r in editable},
            "shown": shown,
            "inherited": {r.spec.key: _inherited(r, platform_id) for r in rows},
            "set_here": {r.spec.key: r.source == _level(platform_id) for r in rows},
            "errors": errors,
            "platforms": registered,
            "platform_id": platform_id,
            "saved": saved if saved and saved.isdigit() else None,
        },
        status_code=status_code,
    )


def _setting_changes(
    plugin: str,
    platform_id: int | None,
    before: Sequence[SettingValue],
    after: Sequence[SettingValue],
    values: Mapping[str, str],
    changed: Sequence[str],
) -> list[Change]:
    """Audit entries for stored plugin settings; a secret's value is never written down."""
    old = {r.spec.key: r for r in before}
    new = {r.spec.key: r for r in after}
    suffix = f"@platform:{platform_id}" if platform_id is not None else ""
    out = []
    for key in changed:
        setting = f"plugin_settings.{plugin}.{key}{suffix}"
        removed = values[key] == ""
        if old[key].spec.secret:
            out.append(Change(setting, None, SECRET_REMOVED if removed else SECRET_CHANGED))
            continue
        was_set = old[key].source == _level(platform_id)
        out.append(
            Change(
                setting,
                old[key].shown() if was_set else None,
                None if removed else new[key].shown(),
            )
        )
    return out


# -- API keys ---------------------------------------------------------------------------------


@console
async def api_keys(page: Page) -> Response:
    """``GET|POST /admin/credentials/{id}/api-keys``: a new key is shown once, here."""
    credential = page.managed
    new_key = ""
    error = ""
    status_code = 200
    name = ""
    if page.form is not None:
        name = page.field("name").strip()
        if not name or len(name) > 100:
            error = "Give the key a name of 1 to 100 characters, such as the system using it."
            status_code = 400
        else:
            new_key = await page.tool.repo.create_api_key(credential, name)
            prefix = new_key.split("_", 2)[1]
            await page.admins.record_changes(
                page.actor,
                credential.id,
                credential.name,
                [Change(f"api_keys.{prefix}", None, f"created ({name})")],
            )
            status_code = 201
            name = ""
    keys = await page.tool.repo.list_api_keys(credential)
    return page.render(
        "admin/api_keys.html",
        {"keys": keys, "new_key": new_key, "error": error, "name": name},
        status_code=status_code,
    )


@console
async def revoke_api_key(page: Page) -> Response:
    """``POST .../api-keys/{prefix}/revoke``: the key stops working at once."""
    credential = page.managed
    prefix = page.request.path_params["prefix"]
    try:
        await page.tool.repo.revoke_api_key(credential, prefix)
    except NotFound:
        raise AdminError(404, NOT_FOUND) from None
    await page.admins.record_changes(
        page.actor,
        credential.id,
        credential.name,
        [Change(f"api_keys.{prefix}", "active", "revoked")],
    )
    return page.redirect(credential_path(credential, "api-keys"))


# -- the logs -----------------------------------------------------------------------------------


@console
async def audit(page: Page) -> Response:
    """``GET /admin/credentials/{id}/audit``: who changed what, when, from what to what."""
    entries = await page.admins.audit_entries(page.managed.id)
    return page.render("admin/audit.html", {"entries": entries})


def _launch_filter(page: Page, rows: Sequence[Any]) -> tuple[list[Any], bool]:
    refused_only = page.request.query_params.get("refused") == "1"
    return [r for r in rows if not refused_only or r.outcome != "ok"], refused_only


@console
async def launches(page: Page) -> Response:
    """``GET /admin/credentials/{id}/launches``: recent launches, refusals with their reason."""
    registrations = [
        (p.issuer, p.client_id) for p in await page.tool.repo.list_platforms(page.managed)
    ]
    rows, refused_only = _launch_filter(
        page, await page.admins.credential_launches(page.managed.id, registrations, limit=100)
    )
    return page.render(
        "admin/launches.html",
        {"launches": rows, "refused_only": refused_only, "unattributed": False},
    )


@console
async def unattributed_launches(page: Page) -> Response:
    """``GET /admin/launches``: refusals no credential could be found for (superusers)."""
    if not page.admin.is_superuser:
        raise AdminError(404, NOT_FOUND)
    rows, refused_only = _launch_filter(page, await page.admins.unattributed_launches(100))
    return page.render(
        "admin/launches.html",
        {"launches": rows, "refused_only": refused_only, "unattributed": True},
    )


@console
async def install(page: Page) -> Response:
    """``GET /admin/credentials/{id}/install``: what to paste into each enabled LMS."""
    from ltipro.registration_artifacts import credential_artifacts

    enabled = [n for n in page.tool.plugins.lms_names if n in page.managed.enabled_plugins]
    chosen = page.request.query_params.get("lms") or (enabled[0] if enabled else "")
    if chosen and chosen not in enabled:
        raise AdminError(404, NOT_FOUND)
    artifacts = await credential_artifacts(page.tool, page.managed, chosen) if chosen else []
    return page.render(
        "admin/install.html",
        {
            "lms_choices": [(n, page.tool.plugins.title(n)) for n in enabled],
            "chosen": chosen,
            "artifacts": artifacts,
        },
    )


def admin_routes() -> list[BaseRoute]:
    """The console's routes, mounted at ``/admin``."""
    from ltipro.web.admin_connections import connection_routes  # builds on this module too
    from ltipro.web.admin_jobs import job_routes  # the Jobs tab builds on this module

    credential = "/credentials/{credential_id:int}"
    return [
        Route("/", index, methods=["GET"]),
        Route("/login", login, methods=["GET", "POST"]),
        Route("/logout", logout, methods=["POST"]),
        Route("/launches", unattributed_launches, methods=["GET"]),
        Route(credential, credential_home, methods=["GET"]),
        Route(f"{credential}/config", config, methods=["GET", "POST"]),
        Route(f"{credential}/platforms", platforms, methods=["GET"]),
        Route(f"{credential}/install", install, methods=["GET"]),
        Route(
            f"{credential}/platforms/{{platform_id:int}}/status", platform_status, methods=["POST"]
        ),
        Route(
            f"{credential}/platforms/{{platform_id:int}}/deployments",
            deployment_state,
            methods=["POST"],
        ),
        Route(f"{credential}/plugins", plugins, methods=["GET", "POST"]),
        Route(
            f"{credential}/plugins/{{plugin}}/settings", plugin_settings, methods=["GET", "POST"]
        ),
        Route(f"{credential}/api-keys", api_keys, methods=["GET", "POST"]),
        Route(f"{credential}/api-keys/{{prefix}}/revoke", revoke_api_key, methods=["POST"]),
        Route(f"{credential}/audit", audit, methods=["GET"]),
        Route(f"{credential}/launches", launches, methods=["GET"]),
        *job_routes(),
        *connection_routes(),
        *_import_routes(),
    ]


def _import_routes() -> list[BaseRoute]:
    # The import pages (ltipro.web.imports) use this module's console wrapper.
    from ltipro.web.imports import console_routes

    return console_routes()
