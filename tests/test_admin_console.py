"""The admin console at /admin: sign-in, CSRF, who sees what, and every page's changes.

Each test drives the console as a browser would (forms with their hidden fields, the
session cookie) and then checks what the database holds and what the next launch does.
"""

from __future__ import annotations

import importlib
import json
import re
from collections.abc import AsyncIterator, Iterable, Sequence
from html import unescape
from html.parser import HTMLParser
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import markupsafe
import pytest
from starlette.routing import Mount, Route

from ltipro import passwords
from ltipro.imports.batches import ImportBatches
from ltipro.jobs import enqueue
from ltipro.option_fields import EVERY_DOMAIN_WARNING, FIELDS_BY_NAME, undescribed_options
from ltipro.options import OPTION_NAMES, CredentialOptions
from ltipro.passwords import hash_password, needs_rehash, verify_password
from ltipro.plugin_settings import declared_settings, effective_settings
from ltipro.plugins import PROVIDERS
from ltipro.storage.admin_repository import Admin, AdminRepository
from ltipro.storage.repository import Credential, Platform
from ltipro.testing.harness import DEPLOYMENT_ID, TOOL_URL, ToolHarness

FIXTURES = Path(__file__).parent / "fixtures"
PASSWORD = "correct horse battery staple"
CLAIM = "https://purl.imsglobal.org/spec/lti/claim/"
LIS = "http://purl.imsglobal.org/vocab/lis/v2/"
LAUNCH: dict[str, Any] = {
    "sub": "u-42",
    "name": "Ida Noether",
    "email": "ida@example.edu",
    CLAIM + "roles": [LIS + "membership#Learner"],
    CLAIM + "context": {"id": "course-42", "title": "Algebra"},
    CLAIM + "resource_link": {"id": "l-42"},
    CLAIM + "launch_presentation": {"return_url": "https://canvas.example.edu/courses/42"},
    CLAIM + "custom": {"person_address_timezone": "America/Chicago", "zoom_user": "inoether"},
}
TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


# -- reading the console's pages like a browser ------------------------------------------------


class Form(HTMLParser):
    """The controls of a page: what a browser would submit, and how each is labelled."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.pairs: list[tuple[str, str]] = []
        self.controls: list[dict[str, str]] = []
        self.label_for: set[str] = set()
        self._label_depth = 0
        self._select: str | None = None
        self._options: list[tuple[str, bool]] = []
        self._textarea: tuple[str, list[str]] | None = None
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "label":
            self._label_depth += 1
            if a.get("for"):
                self.label_for.add(a["for"])
        if tag in ("input", "select", "textarea"):
            self.controls.append({**a, "tag": tag, "in_label": str(self._label_depth > 0)})
        if tag == "input" and "name" in a and "disabled" not in a:
            kind = a.get("type", "text")
            if kind not in ("checkbox", "radio") or "checked" in a:
                self.pairs.append((a["name"], a.get("value", "")))
        if tag == "select":
            self._select = a.get("name")
            self._options = []
        if tag == "option" and self._select is not None:
            self._options.append((a.get("value", ""), "selected" in a))
        if tag == "textarea":
            self._textarea = (a.get("name", ""), [])

    def handle_data(self, data: str) -> None:
        if self._textarea is not None:
            self._textarea[1].append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "label":
            self._label_depth -= 1
        if tag == "select" and self._select is not None:
            chosen = [v for v, selected in self._options if selected] or [self._options[0][0]]
            self.pairs.append((self._select, chosen[0]))
            self._select = None
        if tag == "textarea" and self._textarea is not None:
            name, parts = self._textarea
            # A browser drops the one newline right after <textarea>.
            self.pairs.append((name, "".join(parts).removeprefix("\n")))
            self._textarea = None

    def unlabelled(self) -> list[dict[str, str]]:
        """Visible controls no label names (by ``for``, by wrapping or ``aria-label``)."""
        return [
            c
            for c in self.controls
            if c.get("type") != "hidden"
            and c["in_label"] != "True"
            and c.get("id", "") not in self.label_for
            and not c.get("aria-label")
        ]


def submitted(html: str, changes: dict[str, str | Sequence[str]]) -> dict[str, list[str]]:
    """The form on a page as a browser would send it, with some fields changed.

    Values of one name keep their order (a checkbox's hidden "false" comes first).
    """
    form: dict[str, list[str]] = {}
    for name, value in Form(html).pairs:
        if name not in changes:
            form.setdefault(name, []).append(value)
    for name, change in changes.items():
        form[name] = [change] if isinstance(change, str) else list(change)
    return form


def ticked(value: bool) -> list[str]:
    """A checkbox as the configuration form sends it: hidden "false", then "true" if ticked."""
    return ["false", "true"] if value else ["false"]


def option_block(html: str, name: str) -> str:
    """The part of the configuration page that shows one option."""
    match = re.search(rf'<div class="field" data-option="{name}">(.*?)\n    </div>', html, re.S)
    assert match, f"no field for {name}"
    return match.group(1)


class Console:
    """One browser on the console, from one network address."""

    def __init__(self, harness: ToolHarness, address: str = "127.0.0.1") -> None:
        self.harness = harness
        self.client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=harness.app, client=(address, 50123)),
            base_url=TOOL_URL,
        )
        self.token = ""

    async def sign_in(self, email: str, password: str = PASSWORD) -> httpx.Response:
        page = await self.client.get("/admin/login")
        token = TOKEN.search(page.text)
        assert token, "the sign-in page has no CSRF token"
        response = await self.client.post(
            "/admin/login",
            data={"csrf_token": unescape(token[1]), "email": email, "password": password},
        )
        if response.status_code == 303:
            home = await self.client.get("/admin/")
            found = TOKEN.search(home.text)
            assert found
            self.token = unescape(found[1])
        return response

    async def get(self, path: str) -> httpx.Response:
        return await self.client.get(path)

    async def post(self, path: str, data: dict[str, Any] | None = None) -> httpx.Response:
        """A POST carrying the session's CSRF token, as every console form does."""
        return await self.client.post(path, data={**(data or {}), "csrf_token": self.token})

    async def save_config(
        self, credential: Credential, changes: dict[str, str | Sequence[str]]
    ) -> httpx.Response:
        path = f"/admin/credentials/{credential.id}/config"
        page = await self.get(path)
        assert page.status_code == 200
        return await self.client.post(path, data=submitted(page.text, changes))

    async def close(self) -> None:
        await self.client.aclose()


async def make_admin(
    harness: ToolHarness,
    email: str,
    credentials: Iterable[Credential] = (),
    superuser: bool = False,
) -> Admin:
    return await AdminRepository(harness.tool.repo.engine).create_admin(
        email,
        hash_password(PASSWORD),
        superuser=superuser,
        credential_ids=[c.id for c in credentials],
    )


def audit_of(harness: ToolHarness) -> AdminRepository:
    return AdminRepository(harness.tool.repo.engine)


@pytest.fixture
def sample_plugin(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    monkeypatch.syspath_prepend(str(FIXTURES))
    return importlib.import_module("sample_plugin")


@pytest.fixture
async def harness(
    database_url: str, tmp_path: Path, sample_plugin: ModuleType
) -> AsyncIterator[ToolHarness]:
    """The tool with the generic and the sample plugin (which declares settings)."""
    async with ToolHarness(
        database_url=database_url,
        instance=tmp_path / "instance",
        plugins=[],
        extra_plugins=[("sample", sample_plugin)],
    ) as h:
        yield h


@pytest.fixture
async def other(harness: ToolHarness) -> tuple[Credential, Platform]:
    """A second credential, ``other``, with a platform of its own."""
    credential = await harness.tool.repo.create_credential(
        "other", enabled_plugins=["generic", "sample"]
    )
    platform = await harness.tool.repo.add_platform(
        credential,
        lms="generic",
        issuer="https://other-lms.test",
        client_id="other-client",
        deployment_ids=["other-deployment"],
        auth_login_url="https://other-lms.test/auth",
        auth_token_url="https://other-lms.test/token",
        jwks_url="https://other-lms.test/jwks.json",
    )
    return credential, platform


@pytest.fixture
async def console(harness: ToolHarness) -> AsyncIterator[Console]:
    """A browser signed in as an admin of the credential ``test`` only."""
    await make_admin(harness, "ada@example.edu", [harness.credential])
    browser = Console(harness)
    assert (await browser.sign_in("ada@example.edu")).status_code == 303
    yield browser
    await browser.close()


def console_routes(harness: ToolHarness) -> list[tuple[str, set[str]]]:
    """Every route of the console, as (path template, methods)."""
    mount = next(r for r in harness.app.routes if isinstance(r, Mount) and r.path == "/admin")
    return [("/admin" + r.path, set(r.methods or ())) for r in mount.routes if isinstance(r, Route)]


def fill(template: str, **values: Any) -> str:
    return re.sub(r"\{(\w+)(?::\w+)?\}", lambda m: str(values[m[1]]), template)


# -- signing in ----------------------------------------------------------------------------


async def test_the_console_asks_for_sign_in_and_the_right_password_opens_it(
    harness: ToolHarness,
) -> None:
    await make_admin(harness, "ada@example.edu", [harness.credential])
    browser = Console(harness)
    first = await browser.get("/admin/credentials/1/config")
    assert first.status_code == 303
    assert first.headers["location"].startswith("/admin/login?next=")

    page = await browser.get("/admin/login")
    token = unescape(TOKEN.search(page.text)[1])  # type: ignore[index]
    response = await browser.client.post(
        "/admin/login",
        data={
            "csrf_token": token,
            "email": "  Ada@Example.EDU ",
            "password": PASSWORD,
            "next": "/admin/credentials/1/config",
        },
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/admin/credentials/1/config"
    cookie = next(
        c for c in response.headers.get_list("set-cookie") if c.startswith("ltipro_admin=")
    )
    for attribute in ("HttpOnly", "Secure", "SameSite=lax", "Path=/admin"):
        assert attribute.lower() in cookie.lower(), cookie
    home = await browser.get("/admin/")
    assert home.status_code == 200
    assert 'data-credential="1"' in home.text and "ada@example.edu" in home.text
    admin = await audit_of(harness).find_admin("ada@example.edu")
    assert admin is not None and admin.last_login_at is not None
    await browser.close()


async def test_signing_out_ends_the_session_on_the_server(console: Console) -> None:
    stolen = console.client.cookies.get("ltipro_admin", path="/admin")
    assert stolen
    assert (await console.post("/admin/logout")).status_code == 303
    assert (await console.get("/admin/")).status_code == 303
    # The old cookie, replayed, opens nothing: the session is gone from the store.
    console.client.cookies.set("ltipro_admin", stolen, domain="tool.test", path="/admin")
    replay = await console.get("/admin/")
    assert replay.status_code == 303 and replay.headers["location"].startswith("/admin/login")


async def test_a_wrong_password_and_an_unknown_email_get_the_same_refusal(
    harness: ToolHarness,
) -> None:
    await make_admin(harness, "ada@example.edu", [harness.credential])
    browser = Console(harness)
    wrong = await browser.sign_in("ada@example.edu", "not the password at all")
    unknown = await browser.sign_in("nobody@example.edu", PASSWORD)
    for response in (wrong, unknown):
        assert response.status_code == 400
        assert "The email or password is not right." in response.text
        assert "ltipro_admin=" not in response.headers.get("set-cookie", "")
    assert (await browser.get("/admin/")).status_code == 303
    await browser.close()


async def test_sign_in_waits_after_five_failures_for_that_email_and_address(
    harness: ToolHarness,
) -> None:
    await make_admin(harness, "ada@example.edu", [harness.credential])
    await make_admin(harness, "bob@example.edu", [harness.credential])
    attacker = Console(harness, "203.0.113.9")
    statuses = [
        (await attacker.sign_in("ada@example.edu", f"guess {n}")).status_code for n in range(5)
    ]
    assert statuses == [400, 400, 400, 400, 429]
    # Now even the right password waits, and the page says how long.
    locked = await attacker.sign_in("ada@example.edu")
    assert locked.status_code == 429
    assert locked.headers["retry-after"] == "300"
    assert "Too many failed sign-ins" in locked.text
    # Another address, or another email from this address, is not held up.
    elsewhere = Console(harness, "198.51.100.20")
    assert (await elsewhere.sign_in("ada@example.edu")).status_code == 303
    assert (await attacker.sign_in("bob@example.edu")).status_code == 303
    for browser in (attacker, elsewhere):
        await browser.close()


async def test_a_successful_sign_in_forgets_earlier_failures(harness: ToolHarness) -> None:
    await make_admin(harness, "ada@example.edu", [harness.credential])
    browser = Console(harness)
    for n in range(4):
        assert (await browser.sign_in("ada@example.edu", f"typo {n}")).status_code == 400
    assert (await browser.sign_in("ada@example.edu")).status_code == 303
    browser.client.cookies.clear()  # signed out, in another browser tab or later
    for n in range(4):
        assert (await browser.sign_in("ada@example.edu", f"typo {n}")).status_code == 400
    await browser.close()


async def test_the_sign_in_form_needs_its_token(harness: ToolHarness) -> None:
    await make_admin(harness, "ada@example.edu", [harness.credential])
    browser = Console(harness)
    await browser.get("/admin/login")  # sets the sign-in cookie
    for token in (None, "", "forged-token"):
        data = {"email": "ada@example.edu", "password": PASSWORD}
        if token is not None:
            data["csrf_token"] = token
        response = await browser.client.post("/admin/login", data=data)
        assert response.status_code == 403
        assert "ltipro_admin=" not in response.headers.get("set-cookie", "")
    await browser.close()


async def test_sign_in_returns_only_to_pages_of_the_console(harness: ToolHarness) -> None:
    await make_admin(harness, "ada@example.edu", [harness.credential])
    browser = Console(harness)
    for target in ("https://evil.example/", "//evil.example/admin/", "/lti/launch"):
        browser.client.cookies.clear()
        page = await browser.get("/admin/login")
        token = unescape(TOKEN.search(page.text)[1])  # type: ignore[index]
        response = await browser.client.post(
            "/admin/login",
            data={
                "csrf_token": token,
                "email": "ada@example.edu",
                "password": PASSWORD,
                "next": target,
            },
        )
        assert response.headers["location"] == "/admin/"
    # After a mistyped password the form still returns to the page first asked for.
    browser.client.cookies.clear()
    page = await browser.get("/admin/login?next=/admin/credentials/1/audit")
    token = unescape(TOKEN.search(page.text)[1])  # type: ignore[index]
    retry = await browser.client.post(
        "/admin/login",
        data={
            "csrf_token": token,
            "email": "ada@example.edu",
            "password": "typo",
            "next": "/admin/credentials/1/audit",
        },
    )
    assert dict(Form(retry.text).pairs)["next"] == "/admin/credentials/1/audit"
    await browser.close()


async def test_a_deleted_admins_session_stops_working(
    harness: ToolHarness, console: Console
) -> None:
    await audit_of(harness).delete_admin("ada@example.edu")
    assert (await console.get("/admin/")).status_code == 303


async def test_console_pages_are_never_cached_or_framed(console: Console) -> None:
    for path in ("/admin/", "/admin/credentials/1/config", "/admin/login"):
        response = await console.get(path)
        assert response.headers["cache-control"] == "no-store"
        assert response.headers["x-frame-options"] == "DENY"
        assert "frame-ancestors 'none'" in response.headers["content-security-policy"]


# -- CSRF and who may see what -----------------------------------------------------------------


async def test_every_console_post_route_refuses_a_request_without_the_sessions_token(
    harness: ToolHarness, console: Console
) -> None:
    repo = harness.tool.repo
    key = await repo.create_api_key(harness.credential, "sis")
    prefix = key.split("_")[1]
    async with repo.engine.begin() as conn:
        job = await enqueue(conn, "test.console", {}, key="csrf", credential_id=1)
    config_page = await console.get("/admin/credentials/1/config")
    version = re.search(r'name="version" value="([^"]+)"', config_page.text)[1]  # type: ignore[index]
    # A body each route would accept with the token, so only the token is missing.
    bodies = {
        "/config": {"version": version, "students_may_host": "true"},
        "/status": {"status": "disabled"},
        "/deployments": {"deployment_id": DEPLOYMENT_ID, "enabled": "false"},
        "/plugins": {"plugin": "sample", "enabled": "false"},
        "/settings": {"value.page_size": "20"},
        "/api-keys": {"name": "reports"},
    }
    values = {
        "credential_id": harness.credential.id,
        "platform_id": harness.registration.id,
        "plugin": "sample",
        "prefix": prefix,
        "job_id": job.id,
        "batch": 1,  # an import batch (ltipro.web.imports): refused before it is looked up
    }
    posts = [
        fill(path, **values)
        for path, methods in console_routes(harness)
        if "POST" in methods and path != "/admin/login"
    ]
    assert len(posts) >= 8 and "/admin/logout" in posts
    before = await harness.refresh_credential()
    for path in posts:
        body = next((b for suffix, b in bodies.items() if path.endswith(suffix)), {})
        for token in (None, "", "x" * 43, console.token[:-1]):
            data = dict(body) if token is None else {**body, "csrf_token": token}
            response = await console.client.post(path, data=data)
            assert response.status_code == 403, (path, token, response.status_code)
    after = await harness.refresh_credential()
    assert after == before
    assert (await repo.platform(harness.registration.id)).status == "active"
    assert await repo.credential_for_api_key(key) is not None
    assert await audit_of(harness).audit_entries(harness.credential.id) == []
    assert (await console.get("/admin/")).status_code == 200  # still signed in

    # The same requests with the token are accepted: the token was all that was missing.
    for path in sorted(posts, key=lambda p: p.endswith("/logout")):
        if "/imports" in path:
            continue  # needs an uploaded file or a batch: tests/imports posts them with it
        if path.endswith("/connections/start"):
            continue  # needs a plugin's connection: tests/test_admin_connections.py posts it
        body = next((b for suffix, b in bodies.items() if path.endswith(suffix)), {})
        response = await console.post(path, body)
        assert response.status_code in (200, 201, 303), (path, response.status_code)


async def test_an_admin_of_one_credential_gets_404_for_another_on_every_route(
    harness: ToolHarness, console: Console, other: tuple[Credential, Platform]
) -> None:
    credential, platform = other
    repo = harness.tool.repo
    key = await repo.create_api_key(credential, "sis")
    prefix = key.split("_")[1]
    own_key = await repo.create_api_key(harness.credential, "own")
    home = await console.get("/admin/")
    assert "other" not in home.text and f'data-credential="{credential.id}"' not in home.text

    bodies = {
        "/status": {"status": "disabled"},
        "/deployments": {"deployment_id": "other-deployment", "enabled": "false"},
        "/plugins": {"plugin": "sample", "enabled": "false"},
        "/settings": {"value.page_size": "20"},
        "/api-keys": {"name": "stolen"},
    }
    async with repo.engine.begin() as conn:
        their_job = await enqueue(
            conn, "test.console", {}, key="theirs", credential_id=credential.id
        )
    theirs = {
        "credential_id": credential.id,
        "platform_id": platform.id,
        "plugin": "sample",
        "prefix": prefix,
        "job_id": their_job.id,
        "batch": await ImportBatches(repo.engine).create(credential.id, "x.csv", "t", 0, None),
    }
    mine = {"credential_id": harness.credential.id}
    checked = 0
    missing_text = (await console.get("/admin/credentials/424242/config")).text
    for template, methods in console_routes(harness):
        if "{credential_id" not in template:
            continue
        targets = [fill(template, **theirs)]
        # Their platform or key under my own credential is not reachable either.
        if "{platform_id" in template:
            targets.append(fill(template, **{**theirs, **mine}))
        if "{prefix" in template:
            targets.append(fill(template, **{**theirs, **mine}))
        if "{job_id" in template or "{batch" in template:
            targets.append(fill(template, **{**theirs, **mine}))
        for path in targets:
            body = next((b for suffix, b in bodies.items() if path.endswith(suffix)), {})
            if "GET" in methods:
                response = await console.get(path)
                assert response.status_code == 404, path
                assert response.text == missing_text  # nothing tells it exists
                checked += 1
            if "POST" in methods:
                response = await console.post(path, body)
                assert response.status_code == 404, path
                checked += 1
    assert checked >= 15
    for path in (
        f"/admin/credentials/{2**40}/config",
        "/admin/credentials/0/audit",
        f"/admin/credentials/{harness.credential.id}/platforms/{2**40}/status",
    ):
        response = await (
            console.get(path)
            if path.endswith("config") or path.endswith("audit")
            else console.post(path, {"status": "disabled"})
        )
        assert response.status_code == 404, path
    assert (await console.get("/admin/launches")).status_code == 404  # superusers only

    # The other credential is as it was.
    unchanged = await repo.credential("other")
    assert unchanged.options == CredentialOptions()
    assert unchanged.enabled_plugins == ("generic", "sample")
    assert await repo.platform(platform.id) == platform
    assert await repo.credential_for_api_key(key) is not None
    assert len(await repo.list_api_keys(credential)) == 1
    assert await repo.stored_plugin_settings(credential.id, "sample") == {}
    assert await audit_of(harness).audit_entries(credential.id) == []
    assert await repo.credential_for_api_key(own_key) is not None


async def test_a_superuser_manages_every_credential(
    harness: ToolHarness, other: tuple[Credential, Platform]
) -> None:
    credential, _ = other
    await make_admin(harness, "root@example.edu", superuser=True)
    browser = Console(harness)
    await browser.sign_in("root@example.edu")
    home = await browser.get("/admin/")
    assert f'data-credential="{harness.credential.id}"' in home.text
    assert f'data-credential="{credential.id}"' in home.text
    assert (await browser.get(f"/admin/credentials/{credential.id}/config")).status_code == 200
    assert (await browser.get("/admin/credentials/424242/config")).status_code == 404
    await browser.close()


# -- the configuration page ------------------------------------------------------------------

# A value other than the default for every option, as typed into the form, and as stored.
FORM_VALUES: dict[str, str | list[str]] = {
    "instructor_roles": "Staff\nInstructor",
    "students_may_host": ticked(True),
    "email_attribute": "zoom_user@school.example.edu",
    "timezone_origin": "lms",
    "default_timezone": "Europe/Berlin",
    "meeting_link_auto_login": ticked(True),
    "auto_login_via_lms_idp": ticked(True),
    "auto_provision": "everyone",
    "auto_provision_user_type": "licensed",
    "whitelisted_email_domains": "example.edu\nSchool.Example.edu",
    "auto_upgrade": "instructors",
    "auto_upgrade_user_type": "corp",
    "auto_populate_alternative_host": ticked(True),
    "attendance_report": ticked(False),
    "recording_link_for_students": "published",
    "tracking_fields.0.0": "College",
    "tracking_fields.0.1": "custom_college",
    "group_rules.0.0": "custom_department",
    "group_rules.0.1": "Physics",
    "group_rules.0.2": "grp-physics",
    "launch_error_message": "Sign in to the university's account first.",
    "sign_in_url": "https://example.zoom.us/signin",
    "training_link_url": "https://help.example.edu/meetings",
    "training_link_text": "Meetings help",
    "approved_domains": "canvas.example.edu\nhttps://moodle.example.edu/",
    "csv_import_max_rows": "250",
    "calendar_sync": ticked(False),
    "notify_course": ticked(True),
}
STORED: dict[str, Any] = {
    "instructor_roles": ["Staff", "Instructor"],
    "students_may_host": True,
    "email_attribute": "zoom_user@school.example.edu",
    "timezone_origin": "lms",
    "default_timezone": "Europe/Berlin",
    "meeting_link_auto_login": True,
    "auto_login_via_lms_idp": True,
    "auto_provision": "everyone",
    "auto_provision_user_type": "licensed",
    "whitelisted_email_domains": ["example.edu", "school.example.edu"],
    "auto_upgrade": "instructors",
    "auto_upgrade_user_type": "corp",
    "auto_populate_alternative_host": True,
    "attendance_report": False,
    "recording_link_for_students": "published",
    "tracking_fields": [["College", "custom_college"]],
    "group_rules": [["custom_department", "Physics", "grp-physics"]],
    "launch_error_message": "Sign in to the university's account first.",
    "sign_in_url": "https://example.zoom.us/signin",
    "training_link_url": "https://help.example.edu/meetings",
    "training_link_text": "Meetings help",
    "approved_domains": ["canvas.example.edu", "moodle.example.edu"],
    "csv_import_max_rows": 250,
    "calendar_sync": False,
    "notify_course": True,
}


async def test_every_option_saved_in_the_console_is_stored_and_audited(
    harness: ToolHarness, console: Console
) -> None:
    # A new option must be added here, so that it is proved to be on the page too.
    assert set(STORED) == set(OPTION_NAMES)
    defaults = CredentialOptions().to_json()
    assert all(STORED[name] != defaults[name] for name in OPTION_NAMES)

    response = await console.save_config(harness.credential, FORM_VALUES)
    assert response.status_code == 303
    assert response.headers["location"] == "/admin/credentials/1/config?saved=25"
    stored = (await harness.refresh_credential()).options.to_json()
    assert json.loads(json.dumps(stored)) == STORED

    entries = await audit_of(harness).audit_entries(harness.credential.id)
    assert {e.setting for e in entries} == set(OPTION_NAMES)
    assert {e.actor for e in entries} == {"ada@example.edu"}
    roles = next(e for e in entries if e.setting == "instructor_roles")
    assert (
        roles.old_value == '["Administrator", "Instructor", "Teaching Assistant", "Course Builder"]'
    )
    assert roles.new_value == '["Staff", "Instructor"]'

    page = await console.get("/admin/credentials/1/config?saved=25")
    assert "Saved 25 changes" in page.text
    # The page shows what is stored: saving it again unchanged changes nothing.
    again = await console.save_config(harness.credential, {})
    assert again.headers["location"].endswith("saved=0")
    assert len(await audit_of(harness).audit_entries(harness.credential.id)) == 25


async def test_the_next_launch_follows_options_saved_in_the_console(
    harness: ToolHarness, console: Console
) -> None:
    me = await harness.me(await harness.launch13(LAUNCH))
    assert (me["role"], me["email"], me["timezone"]) == ("student", "ida@example.edu", "UTC")

    await console.save_config(
        harness.credential,
        {
            "instructor_roles": "Learner",
            "email_attribute": "zoom_user@school.example.edu",
            "timezone_origin": "lms",
        },
    )
    me = await harness.me(await harness.launch13(LAUNCH))
    assert me["role"] == "instructor"
    assert me["email"] == "inoether@school.example.edu"
    assert me["timezone"] == "America/Chicago"

    await console.save_config(
        harness.credential,
        {
            "approved_domains": "moodle.example.edu",
            "launch_error_message": "Use the university's Moodle.",
            "sign_in_url": "https://example.zoom.us/signin",
        },
    )
    refused = await harness.launch13(LAUNCH)
    assert refused.status_code == 403
    assert 'data-error-code="domain_not_approved"' in refused.text
    assert "Use the university&#39;s Moodle." in refused.text
    assert 'href="https://example.zoom.us/signin"' in refused.text

    await console.save_config(harness.credential, {"approved_domains": "canvas.example.edu"})
    allowed = await harness.launch13(LAUNCH)
    assert allowed.status_code == 200
    assert "frame-ancestors 'self' canvas.example.edu" in allowed.headers["content-security-policy"]


async def test_invalid_values_are_shown_at_their_field_and_nothing_is_stored(
    harness: ToolHarness, console: Console
) -> None:
    response = await console.save_config(
        harness.credential,
        {
            "instructor_roles": "Staff",
            "default_timezone": "Mars/Olympus",
            "approved_domains": "not a domain!",
            "csv_import_max_rows": "0",
            "tracking_fields.0.0": "College",
            "tracking_fields.0.1": "",
            "sign_in_url": "javascript:alert(1)",
        },
    )
    assert response.status_code == 400
    html = response.text
    assert "Nothing was saved" in html
    for name, message in (
        ("default_timezone", "is not a time zone name"),
        ("approved_domains", "is not a domain name"),
        ("csv_import_max_rows", "must be at least 1"),
        ("tracking_fields", "needs all 2 parts filled in"),
        ("sign_in_url", "must be an http(s) URL"),
    ):
        block = option_block(html, name)
        assert message in block, name
        assert f'id="opt-{name}-error"' in block
        assert 'aria-invalid="true"' in block
    # What the admin typed is still there, the valid change included.
    fields = dict(Form(html).pairs)
    assert fields["instructor_roles"] == "Staff"
    assert fields["default_timezone"] == "Mars/Olympus"
    assert fields["tracking_fields.0.0"] == "College"
    assert fields["sign_in_url"] == "javascript:alert(1)"
    assert 'name="students_may_host" value="true"' in html  # untouched fields kept too
    assert (await harness.refresh_credential()).options == CredentialOptions()
    assert await audit_of(harness).audit_entries(harness.credential.id) == []


async def test_empty_approved_domains_show_that_every_domain_may_launch_and_embed(
    harness: ToolHarness, console: Console
) -> None:
    page = await console.get("/admin/credentials/1/config")
    assert 'id="every-domain-warning"' in page.text and EVERY_DOMAIN_WARNING in page.text
    assert "No approved domains" in (await console.get("/admin/")).text
    await console.save_config(harness.credential, {"approved_domains": "canvas.example.edu"})
    page = await console.get("/admin/credentials/1/config")
    assert 'id="every-domain-warning"' not in page.text
    assert "No approved domains" not in (await console.get("/admin/")).text


async def test_a_change_made_meanwhile_is_not_overwritten_by_an_older_form(
    harness: ToolHarness, console: Console
) -> None:
    path = "/admin/credentials/1/config"
    old_form = (await console.get(path)).text
    # Meanwhile, a script changes an option the open form also shows.
    await audit_of(harness).change_options(
        harness.credential.id, {"attendance_report": False}, "cli"
    )
    response = await console.client.post(
        path, data=submitted(old_form, {"students_may_host": ticked(True)})
    )
    assert response.status_code == 409
    assert "changed by someone else" in response.text
    options = (await harness.refresh_credential()).options
    assert options.attendance_report is False and options.students_may_host is False


async def test_option_values_and_launch_log_messages_are_shown_escaped(
    harness: ToolHarness, console: Console
) -> None:
    script = "<script>alert('x')</script>"
    await console.save_config(
        harness.credential,
        {
            "launch_error_message": script,
            "tracking_fields.0.0": '"><img src=x onerror=alert(1)>',
            "tracking_fields.0.1": "custom_college",
        },
    )
    await harness.tool.repo.log_launch(
        credential_id=harness.credential.id,
        outcome="refused",
        code="bad_signature",
        message=f"Refused {script}",
        user_id="<img src=x onerror=alert(2)>",
        issuer="https://lms.test/<b>",
    )
    for path in ("config", "audit", "launches"):
        page = await console.get(f"/admin/credentials/1/{path}")
        assert "<script>alert" not in page.text, path
        assert "<img src=x" not in page.text, path
    assert (
        "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;"
        in (await console.get("/admin/credentials/1/config")).text
    )
    assert (
        "&lt;img src=x onerror=alert(2)&gt;"
        in (await console.get("/admin/credentials/1/launches")).text
    )


async def test_every_control_of_every_page_has_a_label(
    harness: ToolHarness, console: Console
) -> None:
    await harness.tool.repo.create_api_key(harness.credential, "sis")
    paths = [
        "/admin/",
        "/admin/credentials/1/config",
        "/admin/credentials/1/platforms",
        "/admin/credentials/1/plugins",
        "/admin/credentials/1/plugins/sample/settings",
        f"/admin/credentials/1/plugins/sample/settings?platform={harness.registration.id}",
        "/admin/credentials/1/api-keys",
        "/admin/credentials/1/audit",
        "/admin/credentials/1/launches",
    ]
    # Every loaded plugin's settings page, the built-in ones' included.
    paths += [
        f"/admin/credentials/1/plugins/{name}/settings"
        for name in await declared_settings(harness.tool.plugins)
    ]
    for path in paths:
        page = await console.get(path)
        assert page.status_code == 200, path
        assert '<meta name="viewport" content="width=device-width' in page.text
        form = Form(page.text)
        assert form.unlabelled() == [], (path, form.unlabelled())
    login = Form((await Console(harness).get("/admin/login")).text)
    assert login.unlabelled() == []


# -- platforms, plugins, plugin settings, API keys, logs ---------------------------------------


async def test_a_pending_registration_is_approved_in_the_console_and_then_launches(
    harness: ToolHarness, console: Console
) -> None:
    repo = harness.tool.repo
    await repo.set_platform_status(harness.registration.id, "pending")
    refused = await harness.launch13(LAUNCH)
    assert refused.status_code == 403
    page = await console.get("/admin/credentials/1/platforms")
    assert "awaiting approval" in page.text and "Approve registration" in page.text

    approved = await console.post(
        f"/admin/credentials/1/platforms/{harness.registration.id}/status", {"status": "active"}
    )
    assert approved.status_code == 303
    assert (await repo.platform(harness.registration.id)).status == "active"
    assert (await harness.launch13(LAUNCH)).status_code == 200
    entry = (await audit_of(harness).audit_entries(1))[0]
    assert (entry.setting, entry.old_value, entry.new_value) == (
        f"platforms.{harness.registration.id}.status",
        "pending",
        "active",
    )
    bad = await console.post(
        f"/admin/credentials/1/platforms/{harness.registration.id}/status", {"status": "pending"}
    )
    assert bad.status_code == 400


async def test_a_disabled_deployment_is_refused_and_the_launch_log_says_why(
    harness: ToolHarness, console: Console
) -> None:
    path = f"/admin/credentials/1/platforms/{harness.registration.id}/deployments"
    response = await console.post(path, {"deployment_id": DEPLOYMENT_ID, "enabled": "false"})
    assert response.status_code == 303
    refused = await harness.launch13(LAUNCH)
    assert refused.status_code == 403

    log = await console.get("/admin/credentials/1/launches?refused=1")
    assert "deployment_disabled" in log.text
    assert "turned off launches from this LMS deployment" in log.text
    # Refused at the login step, before the credential is known: found by its registration.
    assert harness.registration.client_id in log.text

    await console.post(path, {"deployment_id": DEPLOYMENT_ID, "enabled": "true"})
    assert (await harness.launch13(LAUNCH)).status_code == 200
    unknown = await console.post(path, {"deployment_id": "no-such", "enabled": "false"})
    assert unknown.status_code == 400
    settings = [e.setting for e in await audit_of(harness).audit_entries(1)]
    assert settings == [f"platforms.{harness.registration.id}.deployments.{DEPLOYMENT_ID}"] * 2


async def test_a_plugin_turned_off_in_the_console_refuses_launches_with_its_hint(
    harness: ToolHarness, console: Console
) -> None:
    response = await console.post(
        "/admin/credentials/1/plugins", {"plugin": "generic", "enabled": "false"}
    )
    assert response.status_code == 303
    assert "generic" not in (await harness.refresh_credential()).enabled_plugins
    refused = await harness.launch13(LAUNCH)
    assert refused.status_code == 403

    log = await console.get("/admin/credentials/1/launches")
    assert "plugin_disabled" in log.text
    assert "ltipro plugins enable --credential test generic" in log.text  # the hint

    await console.post("/admin/credentials/1/plugins", {"plugin": "generic", "enabled": "true"})
    assert (await harness.launch13(LAUNCH)).status_code == 200
    missing = await console.post(
        "/admin/credentials/1/plugins", {"plugin": "nope", "enabled": "true"}
    )
    assert missing.status_code == 400
    entries = await audit_of(harness).audit_entries(1)
    assert [(e.setting, e.old_value, e.new_value) for e in entries] == [
        ("plugins.generic", "disabled", "enabled"),
        ("plugins.generic", "enabled", "disabled"),
    ]


async def test_plugin_settings_are_validated_stored_and_secrets_never_shown_back(
    harness: ToolHarness, console: Console
) -> None:
    path = "/admin/credentials/1/plugins/sample/settings"
    secret = "very-secret-client-value"
    bad = await console.post(path, {"value.page_size": "500", "value.client_secret": secret})
    assert bad.status_code == 400
    assert "the page size must be between 1 and 100" in bad.text
    assert secret not in bad.text
    assert await harness.tool.repo.stored_plugin_settings(1, "sample") == {}

    saved = await console.post(
        path, {"value.page_size": "20", "value.client_secret": secret, "value.mode": "fast"}
    )
    assert saved.status_code == 303
    effective = await effective_settings(harness.tool, harness.credential, "sample")
    assert effective["page_size"] == 20 and effective["client_secret"] == secret
    assert effective["mode"] == "fast"
    page = await console.get(path)
    assert secret not in page.text and "A value is stored." in page.text

    # An empty secret field keeps the secret; the box removes it.
    await console.post(path, {"value.page_size": "20", "value.mode": "fast"})
    assert (await effective_settings(harness.tool, harness.credential, "sample"))[
        "client_secret"
    ] == secret
    await console.post(
        path, {"value.page_size": "20", "value.mode": "fast", "clear.client_secret": "true"}
    )
    assert (await effective_settings(harness.tool, harness.credential, "sample"))[
        "client_secret"
    ] is None

    # A platform-scoped setting, set for one platform.
    platform_path = f"{path}?platform={harness.registration.id}"
    await console.post(platform_path, {"value.api_domain": "LMS.Example.edu"})
    assert (
        await effective_settings(
            harness.tool, harness.credential, "sample", harness.registration.id
        )
    )["api_domain"] == "lms.example.edu"

    entries = {
        (e.setting, e.old_value, e.new_value) for e in await audit_of(harness).audit_entries(1)
    }
    assert ("plugin_settings.sample.client_secret", None, "(changed)") in entries
    assert ("plugin_settings.sample.client_secret", None, "(removed)") in entries
    assert ("plugin_settings.sample.page_size", None, "20") in entries
    assert ("plugin_settings.sample.mode", None, "fast") in entries
    assert (
        f"plugin_settings.sample.api_domain@platform:{harness.registration.id}",
        None,
        "lms.example.edu",
    ) in entries
    audit_page = (await console.get("/admin/credentials/1/audit")).text
    assert secret not in audit_page
    assert (await console.get("/admin/credentials/1/plugins/nope/settings")).status_code == 404


async def test_an_api_key_made_in_the_console_is_shown_once_and_can_be_revoked(
    harness: ToolHarness, console: Console
) -> None:
    created = await console.post("/admin/credentials/1/api-keys", {"name": "SIS import"})
    assert created.status_code == 201
    key = unescape(re.search(r'id="new-api-key">([^<]+)<', created.text)[1])  # type: ignore[index]
    config = await harness.client.get(
        "/api/v1/credentials/1/config", headers={"Authorization": f"Bearer {key}"}
    )
    assert config.status_code == 200
    listing = await console.get("/admin/credentials/1/api-keys")
    prefix = key.split("_")[1]
    assert prefix in listing.text and key not in listing.text

    revoked = await console.post(f"/admin/credentials/1/api-keys/{prefix}/revoke")
    assert revoked.status_code == 303
    refused = await harness.client.get(
        "/api/v1/credentials/1/config", headers={"Authorization": f"Bearer {key}"}
    )
    assert refused.status_code == 401
    again = await console.post(f"/admin/credentials/1/api-keys/{prefix}/revoke")
    assert again.status_code == 404
    assert (await console.post("/admin/credentials/1/api-keys", {"name": ""})).status_code == 400
    entries = [
        (e.setting, e.old_value, e.new_value) for e in await audit_of(harness).audit_entries(1)
    ]
    assert entries == [
        (f"api_keys.{prefix}", "active", "revoked"),
        (f"api_keys.{prefix}", None, "created (SIS import)"),
    ]


async def test_the_audit_log_page_shows_who_changed_what_from_what_to_what(
    harness: ToolHarness, console: Console
) -> None:
    await audit_of(harness).change_options(1, {"students_may_host": True}, "cli")
    await console.save_config(harness.credential, {"default_timezone": "Asia/Tokyo"})
    page = await console.get("/admin/credentials/1/audit")
    rows = re.findall(r"<tr data-audit=.*?</tr>", page.text, re.S)
    assert len(rows) == 2
    assert "ada@example.edu" in rows[0] and "default_timezone" in rows[0]
    assert "&#34;UTC&#34;" in rows[0] and "&#34;Asia/Tokyo&#34;" in rows[0]
    assert ">cli<" in rows[1] and "students_may_host" in rows[1]


async def test_refused_launches_matching_no_credential_are_shown_to_superusers_only(
    harness: ToolHarness, console: Console
) -> None:
    await harness.tool.repo.log_launch(
        credential_id=None,
        outcome="refused",
        code="unknown_platform",
        message="This LMS is not registered with the tool.",
        issuer="https://unregistered.example.edu",
    )
    assert (await console.get("/admin/launches")).status_code == 404
    await make_admin(harness, "root@example.edu", superuser=True)
    root = Console(harness)
    await root.sign_in("root@example.edu")
    page = await root.get("/admin/launches")
    assert page.status_code == 200
    assert "unknown_platform" in page.text and "https://unregistered.example.edu" in page.text
    # A credential's own log leaves them out.
    assert "unknown_platform" not in (await root.get("/admin/credentials/1/launches")).text
    await root.close()


# -- passwords and the option descriptions ------------------------------------------------------


def test_password_hashes_are_salted_versioned_and_checked_exactly() -> None:
    first, second = hash_password(PASSWORD), hash_password(PASSWORD)
    assert first != second  # a fresh salt each time
    assert first.startswith("scrypt$v1$32768$8$1$") and PASSWORD not in first
    assert verify_password(PASSWORD, first) and verify_password(PASSWORD, second)
    assert not verify_password(PASSWORD + " ", first)
    assert not verify_password(PASSWORD, first.replace("$v1$", "$v0$"))
    assert not verify_password(PASSWORD, "plain text")
    # Parameters that would cost the server minutes are refused, not computed.
    assert not verify_password(PASSWORD, first.replace("$32768$", f"${2**24}$"))
    assert not needs_rehash(first)


async def test_a_hash_made_with_older_parameters_is_renewed_at_sign_in(
    harness: ToolHarness,
) -> None:
    salt = b"0123456789abcdef"
    digest = passwords._derive(PASSWORD, salt, 2**10, 8, 1)
    old = "$".join(
        ["scrypt", "v1", str(2**10), "8", "1", passwords._b64(salt), passwords._b64(digest)]
    )
    assert verify_password(PASSWORD, old) and needs_rehash(old)
    repo = audit_of(harness)
    await repo.create_admin("ada@example.edu", old, credential_ids=[harness.credential.id])
    browser = Console(harness)
    assert (await browser.sign_in("ada@example.edu")).status_code == 303
    admin = await repo.find_admin("ada@example.edu")
    assert admin is not None and admin.password_hash != old
    assert not needs_rehash(admin.password_hash) and verify_password(PASSWORD, admin.password_hash)
    await browser.close()


async def test_every_option_is_on_the_configuration_page_with_a_label_and_help(
    console: Console,
) -> None:
    assert undescribed_options() == []
    page = (await console.get("/admin/credentials/1/config")).text
    for name in OPTION_NAMES:
        field = FIELDS_BY_NAME[name]
        assert field.label and len(field.help) > 20, name
        block = option_block(page, name)
        assert str(markupsafe.escape(field.label)) in block, name  # as Jinja escapes it
        assert f'id="opt-{name}-help"' in block, name
    assert page.count('class="field" data-option=') == len(OPTION_NAMES)


async def test_the_meetings_provider_tab_opens_the_providers_settings_with_secrets_hidden(
    harness: ToolHarness, console: Console
) -> None:
    specs = (await declared_settings(harness.tool.plugins)).get(PROVIDERS)
    if not specs:
        pytest.skip("no meetings provider declares settings in this version")
    page = await console.get("/admin/credentials/1/config")
    tab = f'href="/admin/credentials/1/plugins/{PROVIDERS}/settings"'
    assert f"{tab}>Meetings provider</a>" in page.text
    settings = await console.get(f"/admin/credentials/1/plugins/{PROVIDERS}/settings")
    assert settings.status_code == 200
    assert f'{tab} aria-current="page">Meetings provider' in settings.text
    for spec in specs:
        control = next(
            c for c in Form(settings.text).controls if c.get("id") == f"setting-{spec.key}"
        )
        if spec.secret:
            assert control.get("type") == "password" and control.get("value", "") == ""


async def test_install_page_shows_what_to_paste_into_each_enabled_lms(
    harness: ToolHarness, console: Console
) -> None:
    base = f"/admin/credentials/{harness.credential.id}/install"
    page = await console.get(f"{base}?lms=generic")
    assert page.status_code == 200
    text = unescape(page.text)
    assert f"{TOOL_URL}/lti/login" in text and f"{TOOL_URL}/.well-known/jwks.json" in text
    assert "data-copy-target" in page.text
    assert "BEGIN" not in text  # the key-set URL, never a pasted key
    # An LMS whose plugin is not enabled (or not installed) is not offered.
    assert (await console.get(f"{base}?lms=canvas")).status_code == 404
    assert (await console.get(f"{base}?lms=<script>")).status_code == 404
