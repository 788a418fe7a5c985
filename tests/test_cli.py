"""The ``ltipro`` command line, run in-process as an admin would run it.

Each test sets the environment an admin would (``LTIPRO_INSTANCE`` in a temporary folder,
production mode on an https:// base URL unless it says otherwise), runs commands through
``ltipro.cli.main`` and checks what they print, their exit status and what they stored.
A user's mistake must end with exit status 2 and one ``ltipro: error:`` line naming the
problem, never a traceback. The commands that write to the database also run on
PostgreSQL when ``LTIPRO_TEST_DATABASE_URL`` is set, each in a throwaway database.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import secrets
import shutil
import stat
import subprocess
import sys
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from sqlalchemy import create_engine, select, text, update
from sqlalchemy.engine import make_url

from ltipro.cli import main
from ltipro.plugins import Plugins
from ltipro.settings import Settings
from ltipro.storage.schema import credentials, tool_keys
from ltipro.tool import RETIRED_KEY_GRACE, Tool
from ltipro.web.app import create_app

T = TypeVar("T")

PG_URL = os.environ.get("LTIPRO_TEST_DATABASE_URL")
BACKENDS = ["sqlite", *(["postgresql"] if PG_URL else [])]
BASE_URL = "https://tool.example.edu"
SECRET_KEY = "cli-test-secret-key-" + "k" * 32
LMS = "https://canvas.example.edu"

PLATFORM = [
    "platforms",
    "add",
    "--credential",
    "college",
    "--lms",
    "generic",
    "--issuer",
    LMS,
    "--client-id",
    "10000000000001",
    "--deployment-id",
    "dep-1",
    "--auth-login-url",
    f"{LMS}/api/lti/authorize_redirect",
    "--auth-token-url",
    f"{LMS}/login/oauth2/token",
    "--jwks-url",
    f"{LMS}/api/lti/security/jwks",
]


def with_option(argv: list[str], option: str, value: str) -> list[str]:
    """``argv`` with the value of ``option`` replaced."""
    out = list(argv)
    out[out.index(option) + 1] = value
    return out


@dataclass
class Result:
    status: int
    out: str
    err: str


class Cli:
    """Runs ``ltipro`` commands in-process and reads the installation's state."""

    def __init__(self, capsys: pytest.CaptureFixture[str], instance: Path) -> None:
        self.capsys = capsys
        self.instance = instance

    def __call__(self, *argv: str) -> Result:
        self.capsys.readouterr()
        status = main(list(argv))
        captured = self.capsys.readouterr()
        assert "Traceback" not in captured.err + captured.out
        return Result(status, captured.out, captured.err)

    def ok(self, *argv: str) -> Result:
        """Run a command that must succeed."""
        result = self(*argv)
        assert result.status == 0, result.err
        return result

    def fails(self, *argv: str, says: str) -> Result:
        """Run a command that must be refused with a message containing ``says``."""
        result = self(*argv)
        assert result.status == 2, (result.out, result.err)
        assert result.err.startswith("ltipro: error: "), result.err
        assert says in result.err, result.err
        return result

    def state(self, read: Callable[[Tool], Awaitable[T]]) -> T:
        """What the installation's database holds, read through the tool's repository."""

        async def go() -> T:
            tool = await Tool.open(Settings.from_env(), plugins=Plugins.load(()))
            try:
                return await read(tool)
            finally:
                await tool.close()

        return asyncio.run(go())


def _admin_url(url: str) -> str:
    return make_url(url).set(drivername="postgresql+psycopg").render_as_string(hide_password=False)


@pytest.fixture
def environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Production mode on an https:// base URL, the instance folder in ``tmp_path``.

    Only the built-in ``generic`` plugin loads, so installed LMS plugins change nothing.
    """
    for name in list(os.environ):
        if name.startswith("LTIPRO_") and not name.startswith("LTIPRO_TEST_"):
            monkeypatch.delenv(name)
    # `ltipro serve` sets these itself; monkeypatch removes them again afterwards.
    monkeypatch.delenv("LTIPRO_PORT", raising=False)
    instance = tmp_path / "instance"
    monkeypatch.setenv("LTIPRO_INSTANCE", str(instance))
    monkeypatch.setenv("LTIPRO_BASE_URL", BASE_URL)
    monkeypatch.setenv("LTIPRO_PLUGINS", "")
    monkeypatch.chdir(tmp_path)
    return instance


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str], environment: Path) -> Cli:
    """The command line on an installation that has not been initialised."""
    return Cli(capsys, environment)


@pytest.fixture(params=BACKENDS)
def backend(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, cli: Cli
) -> Iterator[str]:
    """SQLite in the instance folder, or a new empty PostgreSQL database."""
    if request.param == "sqlite":
        yield "sqlite"
        return
    assert PG_URL is not None
    name = f"ltipro_cli_{os.getpid()}_{secrets.token_hex(4)}"
    admin = create_engine(_admin_url(PG_URL), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    monkeypatch.setenv(
        "LTIPRO_DATABASE_URL",
        make_url(PG_URL).set(database=name).render_as_string(hide_password=False),
    )
    try:
        yield "postgresql"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="session")
def initialised_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An instance folder after `ltipro init` (SQLite), made once and copied per test."""
    instance = tmp_path_factory.mktemp("ltipro-cli") / "instance"
    env = {
        "LTIPRO_INSTANCE": str(instance),
        "LTIPRO_BASE_URL": BASE_URL,
        "LTIPRO_PLUGINS": "",
    }
    saved = {name: os.environ.get(name) for name in env}
    os.environ.update(env)
    try:
        assert main(["init"]) == 0
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    return instance


@pytest.fixture
def ready(cli: Cli, initialised_template: Path) -> Cli:
    """The command line on an installation `ltipro init` has set up (SQLite)."""
    shutil.copytree(initialised_template, cli.instance)
    return cli


@pytest.fixture
def installed(cli: Cli, backend: str, initialised_template: Path) -> Cli:
    """An installation `ltipro init` has set up, on each database under test."""
    if backend == "sqlite":
        shutil.copytree(initialised_template, cli.instance)
    else:
        cli.ok("init")
    return cli


@pytest.fixture
def with_credential(installed: Cli) -> Cli:
    installed.ok("credentials", "create", "college")
    return installed


# -- configuration mistakes -----------------------------------------------------------------


def test_a_command_without_base_url_outside_development_mode_names_the_variable(
    cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("LTIPRO_BASE_URL")
    cli.fails("init", says="LTIPRO_BASE_URL is not set")
    assert not cli.instance.exists()  # nothing half-made is left behind


def test_a_plain_http_base_url_is_refused_outside_development_mode(
    cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LTIPRO_BASE_URL", "http://tool.example.edu")
    cli.fails("init", says="LTIPRO_BASE_URL must use https://")


@pytest.mark.parametrize("value", ["yes", "true", "2", "on", "development"])
def test_ltipro_dev_other_than_1_or_0_is_refused(
    cli: Cli, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("LTIPRO_DEV", value)
    cli.fails("credentials", "list", says=f"LTIPRO_DEV must be 1 or 0 (got {value!r})")


def test_ltipro_dev_0_is_production_mode(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LTIPRO_DEV", "0")
    monkeypatch.delenv("LTIPRO_BASE_URL")
    cli.fails("init", says="LTIPRO_BASE_URL is not set")


def test_development_mode_needs_no_base_url(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LTIPRO_DEV", "1")
    monkeypatch.delenv("LTIPRO_BASE_URL")
    result = cli.ok("init")
    assert "Tool URL: http://localhost:8000" in result.out


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("nonsense", "LTIPRO_DATABASE_URL is not a database URL: 'nonsense'"),
        ("postgresql://db.example.edu:abc/ltipro", "LTIPRO_DATABASE_URL is not a database URL"),
        ("mysql://ltipro@db.example.edu/ltipro", "must be a sqlite:/// or postgresql:// URL"),
        ("https://db.example.edu/", "must be a sqlite:/// or postgresql:// URL"),
        ("sqlite://", "an in-memory SQLite database"),
    ],
)
def test_a_database_url_that_is_not_a_database_url_is_refused(
    cli: Cli, monkeypatch: pytest.MonkeyPatch, value: str, says: str
) -> None:
    monkeypatch.setenv("LTIPRO_DATABASE_URL", value)
    cli.fails("init", says=says)
    assert not cli.instance.exists()


def test_a_redis_url_that_is_not_a_redis_url_is_refused(
    cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LTIPRO_REDIS_URL", "localhost:6379")
    cli.fails("init", says="LTIPRO_REDIS_URL must be a redis://, rediss:// or unix:// URL")


@pytest.mark.parametrize(
    ("name", "value", "says"),
    [
        ("LTIPRO_PORT", "http", "LTIPRO_PORT must be a whole number (got 'http')"),
        ("LTIPRO_PORT", "70000", "LTIPRO_PORT must be from 1 to 65535 (got 70000)"),
        ("LTIPRO_SESSION_LIFETIME", "-5", "LTIPRO_SESSION_LIFETIME must be at least 60"),
        ("LTIPRO_CLOCK_LEEWAY", "1h", "LTIPRO_CLOCK_LEEWAY must be a whole number"),
        ("LTIPRO_JWKS_CACHE_LIFETIME", "-1", "LTIPRO_JWKS_CACHE_LIFETIME must be at least 0"),
    ],
)
def test_numeric_settings_must_be_whole_numbers_in_range(
    cli: Cli, monkeypatch: pytest.MonkeyPatch, name: str, value: str, says: str
) -> None:
    monkeypatch.setenv(name, value)
    cli.fails("credentials", "list", says=says)


def test_a_short_secret_key_is_refused(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LTIPRO_SECRET_KEY", "too-short")
    cli.fails("init", says="LTIPRO_SECRET_KEY must be at least 32 characters long")
    assert not cli.instance.exists()


def test_without_a_secret_key_a_command_asks_for_ltipro_init(cli: Cli) -> None:
    cli.fails("credentials", "list", says="run `ltipro init` first")
    assert not cli.instance.exists()


def test_an_instance_path_that_is_a_file_is_refused(
    cli: Cli, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "not-a-folder").write_text("")
    monkeypatch.setenv("LTIPRO_INSTANCE", str(tmp_path / "not-a-folder"))
    cli.fails("init", says="exists and is not a folder")


def test_a_database_that_was_never_initialised_asks_for_ltipro_init(
    cli: Cli, backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LTIPRO_SECRET_KEY", SECRET_KEY)
    for command in (["credentials", "list"], ["keys", "rotate"], ["platforms", "list"]):
        cli.fails(*command, says="run `ltipro init`")
    if backend == "sqlite":
        assert not (cli.instance / "ltipro.db").exists()  # no empty database was made


def test_an_unreachable_database_server_is_named(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LTIPRO_SECRET_KEY", SECRET_KEY)
    # Nothing listens on port 1: the connection is refused at once.
    monkeypatch.setenv("LTIPRO_DATABASE_URL", "postgresql://ltipro:s3cretpass@127.0.0.1:1/ltipro")
    result = cli.fails("credentials", "list", says="cannot connect to the database")
    assert "check LTIPRO_DATABASE_URL" in result.err
    assert "s3cretpass" not in result.err  # the password is not printed
    cli.fails("init", says="cannot migrate the database")


def test_a_database_behind_this_version_asks_for_db_upgrade(
    ready: Cli, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from alembic.script import ScriptDirectory

    from ltipro.storage import migrate

    head = ScriptDirectory.from_config(migrate.alembic_config("sqlite://")).get_current_head()
    newer = tmp_path / "migrations"
    shutil.copytree(migrate.MIGRATIONS, newer, ignore=shutil.ignore_patterns("__pycache__"))
    (newer / "versions" / "9999_newer.py").write_text(
        f'revision = "9999"\ndown_revision = "{head}"\nbranch_labels = None\n'
        "depends_on = None\n\n\ndef upgrade() -> None:\n    pass\n\n\n"
        "def downgrade() -> None:\n    pass\n"
    )
    # What a newer ltipro looks like to a database set up by this one.
    monkeypatch.setattr(migrate, "MIGRATIONS", newer)
    ready.fails("credentials", "list", says="is not up to date with this version of ltipro")
    assert "run `ltipro db upgrade`" in ready("credentials", "list").err
    assert "is up to date" in ready.ok("db", "upgrade").out
    ready.ok("credentials", "list")


def test_a_secret_key_other_than_the_databases_is_refused(
    ready: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LTIPRO_SECRET_KEY", SECRET_KEY)
    ready.fails("keys", "list", says="LTIPRO_SECRET_KEY is not the key it was encrypted with")


# -- the parser -----------------------------------------------------------------------------


def test_a_missing_command_is_refused_with_usage(cli: Cli) -> None:
    result = cli.fails(says="the following arguments are required: COMMAND")
    assert "usage: ltipro" in result.err


def test_a_missing_option_names_the_command_to_ask_for_help(cli: Cli) -> None:
    result = cli.fails("api-keys", "create", says="required: --credential")
    assert "(see `ltipro api-keys create --help`)" in result.err
    assert "usage: ltipro api-keys create" in result.err


def test_an_unknown_option_is_refused(cli: Cli) -> None:
    cli.fails("credentials", "list", "--colour", says="unrecognized arguments: --colour")


def test_help_describes_every_command(cli: Cli) -> None:
    result = cli("--help")
    assert result.status == 0
    for command in ("init", "serve", "credentials", "platforms", "plugins", "keys", "api-keys"):
        assert command in result.out


# -- ltipro init ----------------------------------------------------------------------------


def test_init_creates_instance_folder_secret_key_database_and_tool_key(
    cli: Cli, backend: str
) -> None:
    result = cli.ok("init")
    key_file = cli.instance / "secret.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert len(key_file.read_text().strip()) >= 32
    assert f"Instance folder: {cli.instance} (created)" in result.out
    assert "Secret key: generated into" in result.out
    keys = cli.state(lambda tool: tool.repo.tool_keys())
    assert len(keys) == 1 and keys[0].retired_at is None
    assert f"Tool signing key: {keys[0].kid} (created)" in result.out
    # Migrated: every core table is there and empty.
    assert cli.state(lambda tool: tool.repo.list_credentials()) == []
    if backend == "sqlite":
        assert (cli.instance / "ltipro.db").exists()


def test_init_a_second_time_keeps_the_key_and_the_data(cli: Cli, backend: str) -> None:
    cli.ok("init")
    key = (cli.instance / "secret.key").read_text()
    cli.ok("credentials", "create", "college")
    again = cli.ok("init")
    assert (cli.instance / "secret.key").read_text() == key
    assert "(created)" not in again.out
    keys = cli.state(lambda tool: tool.repo.tool_keys())
    assert len(keys) == 1 and f"Tool signing key: {keys[0].kid}\n" in again.out
    assert [c.name for c in cli.state(lambda tool: tool.repo.list_credentials())] == ["college"]


def test_init_with_a_secret_key_in_the_environment_writes_no_key_file(
    cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LTIPRO_SECRET_KEY", SECRET_KEY)
    result = cli.ok("init")
    assert "Secret key: from LTIPRO_SECRET_KEY" in result.out
    assert not (cli.instance / "secret.key").exists()


def test_init_makes_a_secret_key_file_readable_by_others_private(ready: Cli) -> None:
    key_file = ready.instance / "secret.key"
    key_file.chmod(0o644)
    result = ready.ok("init")
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert "readable by its owner only" in result.err


# -- ltipro serve ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["--port", "0"], "--port must be from 1 to 65535 (got 0)"),
        (["--port", "99999"], "--port must be from 1 to 65535"),
        (["--port", "eighty"], "argument --port: invalid int value: 'eighty'"),
        (["--workers", "0"], "--workers must be at least 1"),
        (["--log-level", "loud"], "argument --log-level: invalid choice: 'loud'"),
    ],
)
def test_serve_refuses_bad_options(ready: Cli, argv: list[str], says: str) -> None:
    ready.fails("serve", *argv, says=says)


def test_serve_in_production_refuses_a_database_that_was_never_initialised(
    cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LTIPRO_SECRET_KEY", SECRET_KEY)
    cli.fails("serve", says="run `ltipro init`")


def test_serve_runs_the_app_on_the_host_and_port_given(
    ready: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    import uvicorn

    served: list[tuple[Any, dict[str, Any]]] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **options: served.append((app, options)))
    ready.ok("serve", "--host", "0.0.0.0", "--port", "9100")
    app, options = served[0]
    assert (options["host"], options["port"], options["proxy_headers"]) == ("0.0.0.0", 9100, True)
    assert app.state.settings.base_url == BASE_URL
    monkeypatch.setenv("LTIPRO_PORT", "9200")
    ready.ok("serve")
    assert served[1][1]["port"] == 9200


def test_serve_with_workers_checks_then_becomes_uvicorns_supervisor(
    ready: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The supervisor is a fresh uvicorn process (the checked tool is not kept in it)."""
    executed: list[list[str]] = []

    def execv(path: str, argv: list[str]) -> None:
        executed.append([path, *argv])
        raise SystemExit(0)  # what the real call never does: it does not return

    monkeypatch.setattr(os, "execv", execv)
    monkeypatch.delenv("LTIPRO_METRICS_DIR", raising=False)  # restored afterwards
    with pytest.raises(SystemExit):
        ready("serve", "--workers", "3", "--port", "9400", "--log-level", "warning")
    [command] = executed
    assert command[0] == sys.executable
    assert command[2:] == [
        "-P",
        "-m",
        "uvicorn",
        "ltipro.web.asgi:app",
        "--host",
        "127.0.0.1",
        "--port",
        "9400",
        "--workers",
        "3",
        "--proxy-headers",
        "--log-level",
        "warning",
        "--no-access-log",
    ]
    assert os.environ["LTIPRO_METRICS_DIR"]  # the workers share one metrics folder


def test_serve_with_workers_refuses_a_database_that_was_never_initialised(
    cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LTIPRO_SECRET_KEY", SECRET_KEY)
    monkeypatch.setattr(os, "execv", lambda *args: pytest.fail("started without its check"))
    cli.fails("serve", "--workers", "2", says="run `ltipro init`")


def test_serve_in_development_mode_sets_itself_up_on_the_port_given(
    cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    import uvicorn

    monkeypatch.setenv("LTIPRO_DEV", "1")
    monkeypatch.delenv("LTIPRO_BASE_URL")
    served: list[Any] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **options: served.append(app))
    cli.ok("serve", "--port", "9300")
    assert served[0].state.settings.base_url == "http://localhost:9300"
    assert (cli.instance / "secret.key").exists()
    assert len(cli.state(lambda tool: tool.repo.tool_keys())) == 1


# -- credentials ----------------------------------------------------------------------------


def test_credentials_create_enables_every_installed_plugin(installed: Cli) -> None:
    result = installed.ok("credentials", "create", "college")
    assert "Created credential 'college'" in result.out
    credential = installed.state(lambda tool: tool.repo.credential("college"))
    assert credential.enabled_plugins == ("generic",)
    assert credential.lti11_key is None


def test_credentials_create_with_lti11_key_stores_the_secret_encrypted(installed: Cli) -> None:
    secret = "a-shared-secret-of-32-characters"
    result = installed.ok(
        "credentials", "create", "college", "--lti11-key", "college-key", "--lti11-secret", secret
    )
    assert f"LTI 1.1 launch URL: {BASE_URL}/lti/launch (consumer key college-key)" in result.out

    async def read(tool: Tool) -> tuple[str | None, str]:
        credential = await tool.repo.credential("college")
        async with tool.repo.engine.connect() as conn:
            stored = (await conn.execute(select(credentials.c.lti11_secret))).scalar_one()
        return tool.repo.lti11_secret(credential), stored

    decrypted, stored = installed.state(read)
    assert decrypted == secret
    assert secret not in stored and stored.startswith("enc:v1:")


@pytest.mark.parametrize("name", ["two words", ".hidden", "_x", "x" * 101, "naïve", "a/b", " "])
def test_credential_names_are_letters_digits_dots_dashes_and_underscores(
    ready: Cli, name: str
) -> None:
    ready.fails("credentials", "create", name, says="a credential name is 1 to 100 letters")
    assert ready.state(lambda tool: tool.repo.list_credentials()) == []


def test_a_duplicate_credential_name_is_refused(with_credential: Cli) -> None:
    with_credential.fails(
        "credentials", "create", "college", says="a credential named 'college' already exists"
    )


def test_a_duplicate_lti11_key_is_refused(installed: Cli) -> None:
    secret = "a-shared-secret-of-32-characters"
    installed.ok("credentials", "create", "a", "--lti11-key", "shared", "--lti11-secret", secret)
    installed.fails(
        "credentials",
        "create",
        "b",
        "--lti11-key",
        "shared",
        "--lti11-secret",
        secret,
        says="another credential already uses the LTI 1.1 key 'shared'",
    )
    assert [c.name for c in installed.state(lambda tool: tool.repo.list_credentials())] == ["a"]


def test_an_lti11_secret_shorter_than_16_characters_is_refused(ready: Cli) -> None:
    ready.fails(
        "credentials",
        "create",
        "college",
        "--lti11-key",
        "k",
        "--lti11-secret",
        "short",
        says="the LTI 1.1 shared secret must be at least 16 characters long",
    )


@pytest.mark.parametrize(
    "argv", [["--lti11-key", "k"], ["--lti11-secret", "a-long-enough-shared-secret"]]
)
def test_an_lti11_key_or_secret_alone_is_refused(ready: Cli, argv: list[str]) -> None:
    ready.fails(
        "credentials", "create", "college", *argv, says="give both --lti11-key and --lti11-secret"
    )
    assert ready.state(lambda tool: tool.repo.list_credentials()) == []


def test_an_lti11_key_with_spaces_is_refused(ready: Cli) -> None:
    ready.fails(
        "credentials",
        "create",
        "college",
        "--lti11-key",
        "my key",
        "--lti11-secret",
        "a-long-enough-shared-secret",
        says="--lti11-key must be 1 to 255 characters without spaces",
    )


def test_credentials_list_shows_each_credential_and_its_plugins(ready: Cli) -> None:
    assert "No credentials yet" in ready.ok("credentials", "list").out
    ready.ok("credentials", "create", "college")
    ready.ok(
        "credentials",
        "create",
        "academy",
        "--lti11-key",
        "academy-key",
        "--lti11-secret",
        "a-long-enough-shared-secret",
    )
    lines = ready.ok("credentials", "list").out.splitlines()
    assert [line.split("\t")[1] for line in lines] == ["academy", "college"]
    assert "LTI 1.1 key academy-key" in lines[0] and "plugins: generic" in lines[1]
    listed = json.loads(ready.ok("credentials", "list", "--json").out)
    assert [(c["name"], c["lti11_key"]) for c in listed] == [
        ("academy", "academy-key"),
        ("college", None),
    ]


# -- platforms ------------------------------------------------------------------------------


def test_platforms_add_registers_the_platform_with_each_deployment(with_credential: Cli) -> None:
    argv = [*PLATFORM, "--deployment-id", "dep-2", "--deployment-id", "dep-1", "--name", "Canvas"]
    result = with_credential.ok(*argv)
    assert f"Tool login URL:  {BASE_URL}/lti/login" in result.out
    assert f"Tool key set:    {BASE_URL}/.well-known/jwks.json" in result.out
    [platform] = with_credential.state(lambda tool: tool.repo.list_platforms())
    assert (platform.issuer, platform.client_id, platform.lms) == (LMS, "10000000000001", "generic")
    assert platform.deployments == (("dep-1", True), ("dep-2", True))
    assert platform.jwks_url == f"{LMS}/api/lti/security/jwks"
    assert (platform.status, platform.source, platform.name) == ("active", "manual", "Canvas")


def test_platforms_add_refuses_a_duplicate_issuer_and_client_id(with_credential: Cli) -> None:
    with_credential.ok(*PLATFORM)
    with_credential.fails(
        *with_option(PLATFORM, "--deployment-id", "dep-9"),
        says=f"a platform with issuer '{LMS}' and client id '10000000000001' is already registered",
    )
    assert len(with_credential.state(lambda tool: tool.repo.list_platforms())) == 1
    # The same issuer with another client id is another registration.
    with_credential.ok(*with_option(PLATFORM, "--client-id", "10000000000002"))


@pytest.mark.parametrize(
    ("option", "value", "says"),
    [
        ("--issuer", "canvas.example.edu", "--issuer must be an https:// URL"),
        ("--issuer", "http://canvas.example.edu", "--issuer: 'http://canvas.example.edu' must be an https:// URL"),
        ("--issuer", f"{LMS}?tenant=1", "--issuer must not have a ?query"),
        ("--issuer", f"{LMS}#x", "--issuer must not have a #fragment"),
        ("--auth-login-url", "ftp://canvas.example.edu/login", "--auth-login-url must be an https:// URL"),
        ("--auth-login-url", "https://canvas example.edu", "--auth-login-url must be a URL without spaces"),
        ("--auth-token-url", "https://canvas.example.edu:port/token", "--auth-token-url is not a valid URL"),
        ("--auth-token-url", "", "--auth-token-url must be a URL without spaces"),
        ("--jwks-url", "https://10.0.0.5/jwks", "--jwks-url: 'https://10.0.0.5/jwks' points into a private network"),
        ("--jwks-url", "https://localhost/jwks", "points at this machine"),
        ("--jwks-url", "https://" + "x" * 1000 + ".edu/", "--jwks-url is longer than 1000 characters"),
        ("--client-id", "client id", "--client-id must be 1 to 255 characters without spaces"),
        ("--deployment-id", " ", "--deployment-id must be 1 to 255 characters without spaces"),
    ],
)  # fmt: skip
def test_platforms_add_refuses_a_bad_value_and_names_the_option(
    ready: Cli, option: str, value: str, says: str
) -> None:
    ready.ok("credentials", "create", "college")
    ready.fails(*with_option(PLATFORM, option, value), says=says)
    assert ready.state(lambda tool: tool.repo.list_platforms()) == []


def test_platforms_add_accepts_http_and_private_urls_in_development_mode(
    ready: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LTIPRO_DEV", "1")
    monkeypatch.delenv("LTIPRO_BASE_URL")
    ready.ok("credentials", "create", "college")
    argv = with_option(PLATFORM, "--issuer", "http://localhost:8080")
    argv = with_option(argv, "--jwks-url", "http://10.0.0.5/jwks")
    ready.ok(*argv)
    [platform] = ready.state(lambda tool: tool.repo.list_platforms())
    assert platform.jwks_url == "http://10.0.0.5/jwks"


def test_platforms_add_refuses_an_lms_without_an_installed_plugin(ready: Cli) -> None:
    ready.ok("credentials", "create", "college")
    ready.fails(
        *with_option(PLATFORM, "--lms", "canvas"),
        says="no plugin for LMS 'canvas' is installed; installed: generic",
    )


def test_platforms_add_refuses_an_unknown_credential(ready: Cli) -> None:
    ready.fails(*PLATFORM, says="there is no credential named 'college'")


def test_platforms_add_needs_a_deployment_id(ready: Cli) -> None:
    argv = list(PLATFORM)
    del argv[argv.index("--deployment-id") : argv.index("--deployment-id") + 2]
    ready.fails(*argv, says="the following arguments are required: --deployment-id")


def test_platforms_add_warns_when_the_lms_plugin_is_off_for_the_credential(ready: Cli) -> None:
    ready.ok("credentials", "create", "college")
    ready.ok("plugins", "disable", "--credential", "college", "generic")
    result = ready.ok(*PLATFORM)
    assert "the generic plugin is not enabled for college" in result.err
    assert "ltipro plugins enable --credential college generic" in result.err


def test_platforms_list_shows_status_lms_issuer_and_deployments(ready: Cli) -> None:
    assert "No platforms registered." in ready.ok("platforms", "list").out
    ready.ok("credentials", "create", "college")
    ready.ok(*PLATFORM, "--deployment-id", "dep-2")
    ready.ok("platforms", "disable-deployment", "1", "dep-2")
    [line] = ready.ok("platforms", "list", "--credential", "college").out.splitlines()
    assert line.split("\t")[:4] == ["1", "active", "generic", LMS]
    assert "deployments: dep-1, dep-2 (off)" in line
    ready.fails("platforms", "list", "--credential", "nobody", says="no credential named")


def _add_pending(cli: Cli) -> int:
    async def add(tool: Tool) -> int:
        credential = await tool.repo.credential("college")
        platform = await tool.repo.add_platform(
            credential,
            lms="generic",
            issuer="https://moodle.example.edu",
            client_id="dyn-1",
            deployment_ids=["1"],
            auth_login_url="https://moodle.example.edu/mod/lti/auth.php",
            auth_token_url="https://moodle.example.edu/mod/lti/token.php",
            jwks_url="https://moodle.example.edu/mod/lti/certs.php",
            status="pending",
            source="dynamic",
        )
        return platform.id

    return cli.state(add)


def test_platforms_approve_activates_a_pending_registration(with_credential: Cli) -> None:
    platform_id = _add_pending(with_credential)
    result = with_credential.ok("platforms", "approve", str(platform_id))
    assert "is now active" in result.out
    platform = with_credential.state(lambda tool: tool.repo.platform(platform_id))
    assert platform.status == "active"
    assert "is already active" in with_credential.ok("platforms", "approve", str(platform_id)).out


def test_platforms_disable_and_enable_change_whether_launches_are_accepted(ready: Cli) -> None:
    ready.ok("credentials", "create", "college")
    ready.ok(*PLATFORM)
    ready.ok("platforms", "disable", "1")
    assert ready.state(lambda tool: tool.repo.platform(1)).status == "disabled"
    ready.ok("platforms", "enable", "1")
    assert ready.state(lambda tool: tool.repo.platform(1)).status == "active"


@pytest.mark.parametrize(
    "argv",
    [
        ["approve", "42"],
        ["disable", "42"],
        ["enable", "42"],
        ["enable-deployment", "42", "dep-1"],
        ["disable-deployment", "42", "dep-1"],
    ],
)
def test_platform_commands_refuse_an_unknown_platform(ready: Cli, argv: list[str]) -> None:
    ready.fails("platforms", *argv, says="there is no platform with id 42")


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("canvas", "a platform id is a number (got 'canvas'"),
        ("99999999999999999", "there is no platform with id 99999999999999999"),
        ("0", "there is no platform with id 0"),
    ],
)
def test_platform_commands_refuse_an_id_no_platform_can_have(
    installed: Cli, value: str, says: str
) -> None:
    installed.fails("platforms", "approve", value, says=says)


def test_deployments_can_be_disabled_and_enabled_again(ready: Cli) -> None:
    ready.ok("credentials", "create", "college")
    ready.ok(*PLATFORM)
    ready.ok("platforms", "disable-deployment", "1", "dep-1")
    assert ready.state(lambda tool: tool.repo.platform(1)).deployment_enabled("dep-1") is False
    ready.ok("platforms", "enable-deployment", "1", "dep-1")
    assert ready.state(lambda tool: tool.repo.platform(1)).deployment_enabled("dep-1") is True


def test_an_unknown_deployment_is_refused_and_the_known_ones_named(ready: Cli) -> None:
    ready.ok("credentials", "create", "college")
    ready.ok(*PLATFORM)
    ready.fails(
        "platforms",
        "disable-deployment",
        "1",
        "dep-9",
        says="platform 1 has no deployment 'dep-9'; its deployments: dep-1",
    )


# -- plugins --------------------------------------------------------------------------------


def test_plugins_list_shows_the_installed_plugins(ready: Cli) -> None:
    assert ready.ok("plugins", "list").out.splitlines()[-1].startswith("generic\t")


def test_plugins_disable_and_enable_change_the_credentials_plugins(ready: Cli) -> None:
    ready.ok("credentials", "create", "college")
    result = ready.ok("plugins", "disable", "--credential", "college", "generic")
    assert "generic is now disabled for college; enabled: (none)" in result.out
    assert ready.state(lambda tool: tool.repo.credential("college")).enabled_plugins == ()
    assert (
        "already disabled"
        in ready.ok("plugins", "disable", "--credential", "college", "generic").out
    )
    ready.ok("plugins", "enable", "--credential", "college", "generic")
    assert ready.state(lambda tool: tool.repo.credential("college")).enabled_plugins == ("generic",)


def test_plugins_enable_refuses_a_plugin_that_is_not_installed(ready: Cli) -> None:
    ready.ok("credentials", "create", "college")
    ready.fails(
        "plugins",
        "enable",
        "--credential",
        "college",
        "sakai",
        says="no plugin named 'sakai' is installed; installed: generic",
    )


@pytest.mark.parametrize("action", ["enable", "disable"])
def test_plugins_commands_refuse_an_unknown_credential(ready: Cli, action: str) -> None:
    ready.fails(
        "plugins", action, "--credential", "nobody", "generic", says="no credential named 'nobody'"
    )


def test_a_plugin_enabled_before_it_was_uninstalled_can_be_disabled(ready: Cli) -> None:
    ready.ok("credentials", "create", "college")

    async def enable_removed(tool: Tool) -> None:
        credential = await tool.repo.credential("college")
        await tool.repo.set_enabled_plugins(credential, ["generic", "oldlms"])

    ready.state(enable_removed)
    ready.ok("plugins", "disable", "--credential", "college", "oldlms")
    assert ready.state(lambda tool: tool.repo.credential("college")).enabled_plugins == ("generic",)


# -- keys -----------------------------------------------------------------------------------


async def _published_kids(tool: Tool) -> list[str]:
    app = create_app(tool.settings, tool=tool)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url=BASE_URL
    ) as client:
        response = await client.get("/.well-known/jwks.json")
    assert response.status_code == 200
    return [key["kid"] for key in response.json()["keys"]]


def test_keys_rotate_keeps_the_previous_key_published_for_the_grace_period(
    installed: Cli,
) -> None:
    [first] = installed.state(lambda tool: tool.repo.tool_keys())
    result = installed.ok("keys", "rotate")
    assert "the previous key stays published for 1 hour" in result.out
    keys = installed.state(lambda tool: tool.repo.tool_keys())
    second = next(k for k in keys if k.retired_at is None)
    assert sorted(installed.state(_published_kids)) == sorted([first.kid, second.kid])

    async def grace_period_over(tool: Tool) -> None:
        past = first.created_at - RETIRED_KEY_GRACE - timedelta(minutes=1)
        async with tool.repo.engine.begin() as conn:
            await conn.execute(
                update(tool_keys).where(tool_keys.c.kid == first.kid).values(retired_at=past)
            )

    installed.state(grace_period_over)
    assert installed.state(_published_kids) == [second.kid]
    result = installed.ok("keys", "rotate")
    assert f"Removed keys past their grace period: {first.kid}" in result.out
    kids = [k.kid for k in installed.state(lambda tool: tool.repo.tool_keys())]
    assert first.kid not in kids and second.kid in kids and len(kids) == 2


def test_keys_list_shows_the_signing_key_and_the_retired_ones(ready: Cli) -> None:
    [first] = ready.state(lambda tool: tool.repo.tool_keys())
    ready.ok("keys", "rotate")
    lines = ready.ok("keys", "list").out.splitlines()
    assert len(lines) == 2
    assert lines[0].split("\t")[1] == "signing"
    assert lines[1].startswith(f"{first.kid}\tretired, published until ")


# -- API keys -------------------------------------------------------------------------------


def test_api_keys_create_prints_a_key_that_authenticates_the_credential(
    with_credential: Cli,
) -> None:
    result = with_credential.ok("api-keys", "create", "--credential", "college", "--name", "sis")
    key = result.out.strip()
    assert key.startswith("ltp_") and "not shown again" in result.err
    found = with_credential.state(lambda tool: tool.repo.credential_for_api_key(key))
    assert found is not None and found.name == "college"


def test_api_keys_revoke_stops_the_key_at_once(with_credential: Cli) -> None:
    key = with_credential.ok("api-keys", "create", "--credential", "college").out.strip()
    other = with_credential.ok("api-keys", "create", "--credential", "college").out.strip()
    prefix = key.split("_")[1]
    result = with_credential.ok("api-keys", "revoke", "--credential", "college", key)
    assert f"API key {prefix} of college is revoked." in result.out
    assert with_credential.state(lambda tool: tool.repo.credential_for_api_key(key)) is None
    assert with_credential.state(lambda tool: tool.repo.credential_for_api_key(other)) is not None
    with_credential.fails(
        "api-keys", "revoke", "--credential", "college", prefix, says="no active API key"
    )
    # The prefix alone, as `api-keys list` shows it, revokes too.
    with_credential.ok("api-keys", "revoke", "--credential", "college", other.split("_")[1])
    assert with_credential.state(lambda tool: tool.repo.credential_for_api_key(other)) is None


def test_api_keys_revoke_refuses_a_key_of_another_credential(ready: Cli) -> None:
    ready.ok("credentials", "create", "college")
    ready.ok("credentials", "create", "academy")
    key = ready.ok("api-keys", "create", "--credential", "college").out.strip()
    ready.fails(
        "api-keys", "revoke", "--credential", "academy", key, says="'academy' has no active API key"
    )
    assert ready.state(lambda tool: tool.repo.credential_for_api_key(key)) is not None


def test_api_keys_list_shows_prefixes_and_state_but_never_the_secret(ready: Cli) -> None:
    ready.ok("credentials", "create", "college")
    assert "No API keys for college" in ready.ok("api-keys", "list", "--credential", "college").out
    key = ready.ok("api-keys", "create", "--credential", "college", "--name", "sis").out.strip()
    ready.ok("api-keys", "revoke", "--credential", "college", key)
    ready.ok("api-keys", "create", "--credential", "college", "--name", "reports")
    listed = ready.ok("api-keys", "list", "--credential", "college").out
    assert key.split("_", 2)[2] not in listed
    lines = listed.splitlines()
    assert lines[0].startswith(key.split("_")[1] + "\trevoked ") and "\tsis\t" in lines[0]
    assert lines[1].split("\t")[1:3] == ["active", "reports"]


@pytest.mark.parametrize(
    "argv",
    [
        ["create", "--credential", "nobody"],
        ["list", "--credential", "nobody"],
        ["revoke", "--credential", "nobody", "abc"],
    ],
)
def test_api_keys_commands_refuse_an_unknown_credential(ready: Cli, argv: list[str]) -> None:
    ready.fails("api-keys", *argv, says="there is no credential named 'nobody'")


def test_api_keys_create_refuses_an_empty_name(ready: Cli) -> None:
    ready.ok("credentials", "create", "college")
    ready.fails(
        "api-keys", "create", "--credential", "college", "--name", " ", says="--name must be"
    )


# -- the installed command ------------------------------------------------------------------


def _installed_command() -> str:
    command = Path(sys.executable).parent / "ltipro"
    assert command.exists(), f"the ltipro entry point is not installed next to {sys.executable}"
    return str(command)


def test_the_installed_ltipro_command_shows_help_and_sets_up_an_instance(
    environment: Path,
) -> None:
    env = dict(os.environ)
    shown = subprocess.run(
        [_installed_command(), "--help"], capture_output=True, text=True, env=env, check=False
    )
    assert shown.returncode == 0 and "usage: ltipro" in shown.stdout
    done = subprocess.run(
        [_installed_command(), "init"], capture_output=True, text=True, env=env, check=False
    )
    assert done.returncode == 0, done.stderr
    assert (environment / "secret.key").exists()


def _commands(parser: argparse.ArgumentParser, prefix: str = "ltipro") -> list[str]:
    """Every runnable command of the parser, as ``ltipro platforms add``."""
    found: list[str] = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found += _commands(sub, f"{prefix} {name}")
    return found or [prefix]


def test_every_command_has_a_section_in_docs_cli_md() -> None:
    from ltipro.cli import build_parser

    doc = (Path(__file__).resolve().parent.parent / "docs" / "cli.md").read_text()
    headings = [line for line in doc.splitlines() if line.startswith("### ")]
    commands = _commands(build_parser())
    assert "ltipro platforms add" in commands and len(commands) > 20
    missing = [
        c for c in commands if not any(re.search(rf"`{re.escape(c)}[` ]", h) for h in headings)
    ]
    assert not missing, f"document these in docs/cli.md: {missing}"
