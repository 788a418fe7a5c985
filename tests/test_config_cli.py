"""``ltipro admins`` and ``ltipro config``, run in-process against the harness's database.

The command line works on the same database as the tool in the harness, so each test can
check what a command stored, and what the next launch or sign-in does with it. Commands
run in a worker thread because each starts its own event loop.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from ltipro.cli import main
from ltipro.options import OPTION_NAMES, CredentialOptions
from ltipro.passwords import verify_password
from ltipro.storage.admin_repository import AdminRepository
from ltipro.testing.harness import SECRET_KEY, TOOL_URL, ToolHarness

PASSWORD = "a long enough password"
CLAIM = "https://purl.imsglobal.org/spec/lti/claim/"
LIS = "http://purl.imsglobal.org/vocab/lis/v2/"
LAUNCH: dict[str, Any] = {
    "sub": "u-9",
    "name": "Sofia Kovalevskaya",
    "email": "sofia@example.edu",
    CLAIM + "roles": [LIS + "membership#Mentor"],
    CLAIM + "context": {"id": "course-9", "title": "Analysis"},
    CLAIM + "resource_link": {"id": "l-9"},
    CLAIM + "launch_presentation": {"return_url": "https://canvas.example.edu/courses/9"},
}


@dataclass
class Result:
    status: int
    out: str
    err: str


class Cli:
    def __init__(self, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
        self.capsys = capsys
        self.monkeypatch = monkeypatch

    async def __call__(self, *argv: str, stdin: str | None = None) -> Result:
        if stdin is not None:
            self.monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
        self.capsys.readouterr()
        status = await asyncio.to_thread(main, list(argv))
        captured = self.capsys.readouterr()
        assert "Traceback" not in captured.out + captured.err
        return Result(status, captured.out, captured.err)

    async def ok(self, *argv: str, stdin: str | None = None) -> Result:
        result = await self(*argv, stdin=stdin)
        assert result.status == 0, result.err
        return result

    async def fails(self, *argv: str, says: str, stdin: str | None = None) -> Result:
        result = await self(*argv, stdin=stdin)
        assert result.status == 2, (result.out, result.err)
        assert result.err.startswith("ltipro: error: "), result.err
        assert says in result.err, result.err
        return result


@pytest.fixture
def cli(
    harness: ToolHarness,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> Cli:
    """The command line, configured for the harness's database and secret key."""
    for name in list(os.environ):
        if name.startswith("LTIPRO_") and not name.startswith("LTIPRO_TEST_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("LTIPRO_INSTANCE", str(tmp_path / "cli-instance"))
    monkeypatch.setenv("LTIPRO_DATABASE_URL", harness.database_url)
    monkeypatch.setenv("LTIPRO_SECRET_KEY", SECRET_KEY)
    monkeypatch.setenv("LTIPRO_BASE_URL", TOOL_URL)
    monkeypatch.setenv("LTIPRO_PLUGINS", "")
    return Cli(capsys, monkeypatch)


def admins(harness: ToolHarness) -> AdminRepository:
    return AdminRepository(harness.tool.repo.engine)


async def sign_in(harness: ToolHarness, email: str, password: str) -> httpx.Response:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=harness.app), base_url=TOOL_URL
    ) as browser:
        page = await browser.get("/admin/login")
        token = page.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
        return await browser.post(
            "/admin/login", data={"csrf_token": token, "email": email, "password": password}
        )


def prompts(monkeypatch: pytest.MonkeyPatch, answers: Sequence[str]) -> list[str]:
    """Answer getpass prompts in order; returns the prompts shown."""
    shown: list[str] = []
    queue = list(answers)

    def fake_getpass(prompt: str = "Password: ", stream: Any = None) -> str:
        shown.append(prompt)
        return queue.pop(0)

    monkeypatch.setattr("getpass.getpass", fake_getpass)
    return shown


# -- ltipro admins -------------------------------------------------------------------------------


async def test_admins_create_asks_for_the_password_twice_and_the_admin_can_sign_in(
    harness: ToolHarness, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    shown = prompts(monkeypatch, [PASSWORD, PASSWORD])
    result = await cli.ok("admins", "create", "Ada@Example.edu", "--credential", "test")
    assert len(shown) == 2
    assert "Created admin ada@example.edu, who manages: test." in result.out
    admin = await admins(harness).find_admin("ada@example.edu")
    assert admin is not None and not admin.is_superuser
    assert admin.credential_ids == {harness.credential.id}
    assert admin.password_hash.startswith("scrypt$v1$") and PASSWORD not in admin.password_hash
    assert verify_password(PASSWORD, admin.password_hash)
    assert (await sign_in(harness, "ada@example.edu", PASSWORD)).status_code == 303


async def test_admins_create_reads_the_password_from_stdin(harness: ToolHarness, cli: Cli) -> None:
    await cli.ok(
        "admins",
        "create",
        "root@example.edu",
        "--superuser",
        "--password-stdin",
        stdin=PASSWORD + "\n",
    )
    admin = await admins(harness).find_admin("root@example.edu")
    assert admin is not None and admin.is_superuser
    assert (await sign_in(harness, "root@example.edu", PASSWORD)).status_code == 303


@pytest.mark.parametrize(
    ("argv", "stdin", "says"),
    [
        (["x@example.edu"], PASSWORD, "one of the arguments --credential --superuser is required"),
        (
            ["x@example.edu", "--credential", "test", "--superuser"],
            PASSWORD,
            "not allowed with argument",
        ),
        (["not-an-email", "--superuser"], PASSWORD, "'not-an-email' is not an email address"),
        (
            ["x@example.edu", "--credential", "nope"],
            PASSWORD,
            "there is no credential named 'nope'",
        ),
        (["x@example.edu", "--superuser"], "short\n", "at least 12 characters"),
        (["x@example.edu", "--superuser"], "", "standard input holds no password"),
    ],
)
async def test_admins_create_refuses_mistakes_and_creates_nothing(
    harness: ToolHarness, cli: Cli, argv: list[str], stdin: str, says: str
) -> None:
    await cli.fails("admins", "create", *argv, "--password-stdin", stdin=stdin, says=says)
    assert await admins(harness).list_admins() == []


async def test_admins_create_refuses_two_different_prompted_passwords(
    harness: ToolHarness, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    prompts(monkeypatch, [PASSWORD, PASSWORD + "!"])
    await cli.fails("admins", "create", "x@example.edu", "--superuser", says="not the same")
    assert await admins(harness).list_admins() == []


async def test_admins_create_refuses_an_email_that_has_an_admin_before_asking(
    harness: ToolHarness, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    await cli.ok(
        "admins", "create", "ada@example.edu", "--superuser", "--password-stdin", stdin=PASSWORD
    )
    shown = prompts(monkeypatch, [])
    await cli.fails(
        "admins", "create", "ADA@example.edu", "--credential", "test", says="already exists"
    )
    assert shown == []


async def test_admins_list_shows_what_each_admin_manages_and_never_a_hash(
    harness: ToolHarness, cli: Cli
) -> None:
    await harness.tool.repo.create_credential("other", enabled_plugins=["generic"])
    await cli.ok(
        "admins",
        "create",
        "ada@example.edu",
        "--credential",
        "test",
        "--credential",
        "other",
        "--password-stdin",
        stdin=PASSWORD,
    )
    await cli.ok(
        "admins", "create", "root@example.edu", "--superuser", "--password-stdin", stdin=PASSWORD
    )
    result = await cli.ok("admins", "list")
    lines = result.out.splitlines()
    assert lines[0].startswith("ada@example.edu\tcredentials: other, test\tlast sign-in: never")
    assert lines[1].startswith("root@example.edu\tsuperuser")
    assert "scrypt" not in result.out
    listed = json.loads((await cli.ok("admins", "list", "--json")).out)
    assert listed[0]["credentials"] == ["other", "test"] and listed[1]["superuser"] is True


async def test_admins_set_password_replaces_the_password(harness: ToolHarness, cli: Cli) -> None:
    await cli.ok(
        "admins", "create", "ada@example.edu", "--superuser", "--password-stdin", stdin=PASSWORD
    )
    await cli.ok(
        "admins",
        "set-password",
        "ada@example.edu",
        "--password-stdin",
        stdin="another long password",
    )
    assert (await sign_in(harness, "ada@example.edu", PASSWORD)).status_code == 400
    assert (await sign_in(harness, "ada@example.edu", "another long password")).status_code == 303
    await cli.fails(
        "admins",
        "set-password",
        "bob@example.edu",
        "--password-stdin",
        stdin=PASSWORD,
        says="there is no admin with the email 'bob@example.edu'",
    )


# -- ltipro config ---------------------------------------------------------------------------------


async def test_config_show_lists_every_option_in_the_form_config_set_reads(
    harness: ToolHarness, cli: Cli
) -> None:
    await cli.ok(
        "config",
        "set",
        "--credential",
        "test",
        "approved_domains=canvas.example.edu,moodle.example.edu",
        'group_rules=[["custom_department", "Physics", "grp-1"]]',
        "launch_error_message=Sign in with the university's account, please",
    )
    shown = (await cli.ok("config", "show", "--credential", "test")).out.splitlines()
    names = [line.split("=", 1)[0] for line in shown]
    assert sorted(names) == sorted(OPTION_NAMES)
    assert "approved_domains=canvas.example.edu,moodle.example.edu" in shown
    assert 'group_rules=[["custom_department", "Physics", "grp-1"]]' in shown
    assert "students_may_host=false" in shown
    # Feeding everything shown back in changes nothing.
    again = await cli.ok("config", "set", "--credential", "test", *shown)
    assert again.out.startswith("Nothing changed")


async def test_config_show_json_is_the_stored_options(harness: ToolHarness, cli: Cli) -> None:
    await cli.ok("config", "set", "--credential", "test", "csv_import_max_rows=50")
    shown = json.loads((await cli.ok("config", "show", "--credential", "test", "--json")).out)
    assert shown["credential"] == {"id": harness.credential.id, "name": "test"}
    stored = (await harness.refresh_credential()).options.to_json()
    assert shown["options"] == json.loads(json.dumps(stored))
    assert shown["options"]["csv_import_max_rows"] == 50


async def test_config_set_changes_options_and_the_next_launch_follows_them(
    harness: ToolHarness, cli: Cli
) -> None:
    me = await harness.me(await harness.launch13(LAUNCH))
    assert (me["role"], me["timezone"]) == ("student", "UTC")
    result = await cli.ok(
        "config",
        "set",
        "--credential",
        "test",
        "instructor_roles=Mentor,Instructor",
        "default_timezone=Asia/Tokyo",
    )
    assert (
        'instructor_roles: ["Administrator", "Instructor", "Teaching Assistant", "Course Builder"] -> ["Mentor", "Instructor"]'
        in result.out
    )
    assert 'default_timezone: "UTC" -> "Asia/Tokyo"' in result.out
    me = await harness.me(await harness.launch13(LAUNCH))
    assert (me["role"], me["timezone"]) == ("instructor", "Asia/Tokyo")

    await cli.ok("config", "set", "--credential", "test", "approved_domains=moodle.example.edu")
    refused = await harness.launch13(LAUNCH)
    assert refused.status_code == 403 and "domain_not_approved" in refused.text


async def test_config_set_takes_lists_as_commas_or_json_and_rows_as_json(
    harness: ToolHarness, cli: Cli
) -> None:
    await cli.ok(
        "config",
        "set",
        "--credential",
        "test",
        'instructor_roles=["Teacher, Senior", "Staff"]',
        "whitelisted_email_domains=example.edu, School.Example.edu",
        'tracking_fields=[["College", "custom_college"], ["Dept", "custom_dept"]]',
        "students_may_host=yes",
    )
    options = (await harness.refresh_credential()).options
    assert options.instructor_roles == ("Teacher, Senior", "Staff")
    assert options.whitelisted_email_domains == ("example.edu", "school.example.edu")
    assert options.tracking_fields == (("College", "custom_college"), ("Dept", "custom_dept"))
    assert options.students_may_host is True
    # An empty value empties a list.
    await cli.ok(
        "config", "set", "--credential", "test", "tracking_fields=", "whitelisted_email_domains="
    )
    options = (await harness.refresh_credential()).options
    assert options.tracking_fields == () and options.whitelisted_email_domains == ()


async def test_config_set_is_all_or_nothing_and_names_every_mistake(
    harness: ToolHarness, cli: Cli
) -> None:
    result = await cli.fails(
        "config",
        "set",
        "--credential",
        "test",
        "students_may_host=true",
        "default_timezone=Mars/Olympus",
        "tracking_fields=College:custom_college",
        "instructor_roles=",
        "colour=blue",
        says="nothing was changed",
    )
    for mistake in (
        "is not a time zone name",
        "tracking_fields takes a JSON list of rows",
        "at least one role must identify an instructor",
        "there is no option called 'colour'",
    ):
        assert mistake in result.err
    assert result.err.count("\n") == 1  # one line
    assert (await harness.refresh_credential()).options == CredentialOptions()
    assert await admins(harness).audit_entries(harness.credential.id) == []


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["--credential", "nope", "students_may_host=true"], "there is no credential named 'nope'"),
        (["--credential", "test", "students_may_host"], "give settings as KEY=VALUE"),
        (["--credential", "test", "a=1", "a=2"], "the setting 'a' is given twice"),
    ],
)
async def test_config_set_refuses_bad_arguments(
    harness: ToolHarness, cli: Cli, argv: list[str], says: str
) -> None:
    await cli.fails("config", "set", *argv, says=says)


async def test_config_set_writes_each_change_to_the_audit_log_as_cli(
    harness: ToolHarness, cli: Cli
) -> None:
    await cli.ok(
        "config", "set", "--credential", "test", "attendance_report=false", "default_timezone=UTC"
    )
    entries = await admins(harness).audit_entries(harness.credential.id)
    # Setting an option to the value it has is no change, and is not logged.
    assert [(e.actor, e.setting, e.old_value, e.new_value) for e in entries] == [
        ("cli", "attendance_report", "true", "false")
    ]
