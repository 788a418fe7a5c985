"""The ``ltipro`` command line.

Every command checks its input and says plainly what is wrong; a user's mistake never
prints a traceback (exit status 2, one line on stderr starting with ``ltipro: error:``),
a bug still does.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import sys
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any, NoReturn
from urllib.parse import urlsplit

from ltipro.crypto import SecretKeyMismatch
from ltipro.options import OptionError
from ltipro.plugin_settings import PluginSettingError
from ltipro.plugins import PluginError
from ltipro.settings import SECRET_KEY_FILE, Settings, SettingsError, dev_mode, instance_folder
from ltipro.storage.database import DatabaseURLError
from ltipro.storage.repository import Conflict, NotFound


class UsageError(Exception):
    """A command-line mistake; the message says what to do instead."""


class ArgumentParser(argparse.ArgumentParser):
    """argparse whose mistakes read like every other one: ``ltipro: error: ...`` first."""

    def error(self, message: str) -> NoReturn:
        command = self.prog.removeprefix("ltipro").strip()
        help_hint = f"ltipro {command} --help" if command else "ltipro --help"
        sys.stderr.write(f"ltipro: error: {message} (see `{help_hint}`)\n")
        self.print_usage(sys.stderr)
        raise SystemExit(2)


def _settings(create: bool = False) -> Settings:
    return Settings.from_env(create=create)


def _run(coro_fn: Callable[..., Coroutine[Any, Any, int]], *args: Any) -> int:
    return asyncio.run(coro_fn(*args))


def _reason(exc: BaseException) -> str:
    """The first line of a database driver's complaint, without SQLAlchemy's boilerplate."""
    original = getattr(exc, "orig", None) or exc
    lines = [line.strip() for line in str(original).splitlines() if line.strip()]
    return lines[0] if lines else type(original).__name__


def _check_database_file(settings: Settings) -> None:
    """Refuse an SQLite file that does not exist, rather than create an empty one."""
    from sqlalchemy.engine import make_url

    url = make_url(settings.database_url)
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return
    if not Path(url.database).exists():
        raise UsageError(f"there is no database at {url.database} yet: run `ltipro init` first")


async def _check_schema(tool: Any) -> None:
    """Refuse to work on a database that is unreachable, empty or behind this version."""
    from alembic.script import ScriptDirectory
    from sqlalchemy import inspect, text
    from sqlalchemy.exc import DBAPIError

    from ltipro.storage.migrate import alembic_config

    safe = _safe_url(tool.settings.database_url)
    try:
        async with tool.repo.engine.connect() as conn:
            initialised = await conn.run_sync(
                lambda sync: inspect(sync).has_table("alembic_version")
            )
            current: set[str] = set()
            if initialised:
                rows = await conn.execute(text("SELECT version_num FROM alembic_version"))
                current = {row[0] for row in rows}
    except (DBAPIError, OSError) as exc:
        raise UsageError(
            f"cannot connect to the database {safe}: {_reason(exc)} (check "
            "LTIPRO_DATABASE_URL and that the database server is running)"
        ) from exc
    if not current:
        raise UsageError(f"the database {safe} has not been set up yet: run `ltipro init`")
    locations = [loc for _, loc in tool.plugins.broadcast_sync("plugin_migrations") if loc]
    script = ScriptDirectory.from_config(alembic_config(tool.settings.database_url, locations))
    known = {rev.revision for rev in script.walk_revisions()}
    # A revision this version does not know (a newer ltipro, an unloaded plugin) is left
    # alone; only a database that is plainly behind is refused.
    if current <= known and set(script.get_heads()) - current:
        ancestors: set[str] = set()
        for revision in current:
            ancestors.update(r.revision for r in script.iterate_revisions(revision, "base"))
        if set(script.get_heads()) - ancestors:
            raise UsageError(
                f"the database {safe} is not up to date with this version of ltipro: "
                "run `ltipro db upgrade`"
            )


async def _with_tool(settings: Settings, action: Callable[[Any], Awaitable[int]]) -> int:
    from sqlalchemy.exc import DataError, OperationalError, ProgrammingError

    from ltipro.tool import Tool

    _check_database_file(settings)
    tool = await Tool.open(settings)
    try:
        await _check_schema(tool)
        return await action(tool)
    except (OperationalError, ProgrammingError) as exc:
        raise UsageError(
            f"the database is not ready ({_reason(exc)}): run `ltipro db upgrade`"
        ) from exc
    except DataError as exc:
        # Values are checked before they reach the database; this is the last line.
        raise UsageError(f"the database refused a value: {_reason(exc)}") from exc
    finally:
        await tool.close()


def _out(text: str = "") -> None:
    sys.stdout.write(text + "\n")


def _warn(text: str) -> None:
    sys.stderr.write(f"ltipro: warning: {text}\n")


def _check_url(
    name: str,
    value: str,
    *,
    allow_private: bool = True,
    max_length: int = 1000,
    query: bool = True,
) -> str:
    """``value`` if it is a URL the tool can use for ``name``, else a :class:`UsageError`.

    Outside development mode (``allow_private`` false) only public https:// URLs pass,
    the same rule the tool applies when it fetches a platform's keys.
    """
    from ltipro.lti.keys import UnsafeURL, check_public_url

    value = value.strip()
    if not value or any(c.isspace() for c in value):
        raise UsageError(f"{name} must be a URL without spaces (got {value!r})")
    if len(value) > max_length:
        raise UsageError(f"{name} is longer than {max_length} characters")
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError:
        raise UsageError(f"{name} is not a valid URL (got {value!r})") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError(f"{name} must be an https:// URL (got {value!r})")
    if parts.fragment or (parts.query and not query):
        raise UsageError(f"{name} must not have a {'#fragment' if parts.fragment else '?query'}")
    try:
        check_public_url(value, allow_private=allow_private)
    except UnsafeURL as exc:
        raise UsageError(
            f"{name}: {exc} (set LTIPRO_ALLOW_PRIVATE_URLS=1 for an LMS on your own network)"
        ) from None
    return value


def platform_id(value: str) -> int:
    """A platform id as argparse reads it: a whole number the database can hold."""
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"a platform id is a number (got {value!r}; see `ltipro platforms list`)"
        ) from None
    if not 1 <= number <= 2**31 - 1:
        raise argparse.ArgumentTypeError(f"there is no platform with id {value}")
    return number


def _text(name: str, value: str, max_length: int = 255) -> str:
    """A stripped, non-empty value without spaces of at most ``max_length`` characters."""
    value = value.strip()
    if not value or any(c.isspace() for c in value) or len(value) > max_length:
        raise UsageError(f"{name} must be 1 to {max_length} characters without spaces")
    return value


# -- init, serve, db -------------------------------------------------------------------------


def cmd_init(args: argparse.Namespace) -> int:
    """``ltipro init``: instance folder, secret key, database and signing key; safe to repeat."""
    instance = instance_folder()
    folder_existed = instance.is_dir()
    key_file = instance / SECRET_KEY_FILE
    key_from_env = bool(os.environ.get("LTIPRO_SECRET_KEY", "").strip())
    key_file_existed = key_file.exists()
    settings = _settings(create=True)
    if key_file_existed and not key_from_env and key_file.stat().st_mode & 0o077:
        # The file may come from a backup restored with loose permissions.
        key_file.chmod(0o600)
        _warn(f"{key_file} was readable by other users; it is now readable by its owner only")
    _upgrade(settings)

    async def keys(tool: Any) -> int:
        had_key = bool(await tool.repo.tool_keys())
        key = await tool.signing_key()
        _out(f"Instance folder: {settings.instance}{'' if folder_existed else ' (created)'}")
        if key_from_env:
            _out("Secret key: from LTIPRO_SECRET_KEY")
        elif key_file_existed:
            _out(f"Secret key: {key_file}")
        else:
            _out(f"Secret key: generated into {key_file} (keep a copy with your backups)")
        _out(f"Database: {_safe_url(settings.database_url)} (up to date)")
        _out(f"Tool signing key: {key.kid}{'' if had_key else ' (created)'}")
        _out(f"Tool URL: {settings.base_url}")
        _out("")
        _out("Next: `ltipro credentials create NAME`, then `ltipro platforms add` for each LMS.")
        return 0

    return _run(_with_tool, settings, keys)


def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def _upgrade(settings: Settings) -> None:
    from alembic.util import CommandError
    from sqlalchemy.exc import DBAPIError

    from ltipro.plugins import Plugins
    from ltipro.storage.migrate import upgrade

    plugins = Plugins.load(settings.plugins)
    locations = [loc for _, loc in plugins.broadcast_sync("plugin_migrations") if loc]
    try:
        upgrade(settings.database_url, locations)
    except DBAPIError as exc:
        raise UsageError(
            f"cannot migrate the database {_safe_url(settings.database_url)}: {_reason(exc)} "
            "(check LTIPRO_DATABASE_URL and that the database server is running)"
        ) from exc
    except CommandError as exc:
        raise UsageError(
            f"cannot migrate the database {_safe_url(settings.database_url)}: {exc} (was it "
            "set up by a newer ltipro, or by a plugin that is not installed now?)"
        ) from exc


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    """``ltipro db upgrade``: run the migrations of the core and every loaded plugin."""
    settings = _settings()
    _upgrade(settings)
    _out(f"The database {_safe_url(settings.database_url)} is up to date.")
    return 0


LOG_LEVELS = ("critical", "error", "warning", "info", "debug", "trace")


def _share_metrics(settings: Settings) -> None:
    """Give the worker processes one metrics folder, emptied of an earlier run's files.

    Without ``LTIPRO_METRICS_DIR`` several workers use ``metrics/`` in the instance
    folder, so ``/metrics`` sums them whichever one a scrape reaches.
    """
    from ltipro.observability import clear_folder

    folder = settings.metrics_dir or settings.instance / "metrics"
    folder.mkdir(parents=True, exist_ok=True)
    clear_folder(folder)
    os.environ["LTIPRO_METRICS_DIR"] = str(folder)


def _exec_supervisor(host: str, port: int, workers: int, log_level: str) -> NoReturn:
    """Become uvicorn's supervisor of ``workers`` processes, each building the app.

    The start-up check has opened the whole tool in this process (about 90 MiB); the
    supervisor only starts and watches the workers, so this process is replaced by
    uvicorn's own command line (same process id, a fresh interpreter of about 30 MiB)
    rather than keeping that memory for as long as the server runs.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    command = [
        sys.executable,
        "-P",  # not the current folder first on the module path
        "-m",
        "uvicorn",
        "ltipro.web.asgi:app",
        "--host",
        host,
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--proxy-headers",
        "--log-level",
        log_level,
        # The app writes one line per request itself, with its request id.
        "--no-access-log",
    ]
    os.execv(sys.executable, command)  # noqa: S606 - our own interpreter and arguments


def cmd_serve(args: argparse.Namespace) -> int:
    """``ltipro serve``: the web server (uvicorn), behind a TLS proxy in production."""
    import uvicorn

    if args.port is not None and not 1 <= args.port <= 65535:
        raise UsageError(f"--port must be from 1 to 65535 (got {args.port})")
    if args.workers < 1:
        raise UsageError(f"--workers must be at least 1 (got {args.workers})")
    if not args.host.strip():
        raise UsageError("--host must not be empty")
    dev = dev_mode()
    if args.port is not None and dev and not os.environ.get("LTIPRO_BASE_URL"):
        # The development base URL (http://localhost:PORT) follows the port served on.
        os.environ["LTIPRO_PORT"] = str(args.port)
    # A development server sets itself up; production runs `ltipro init` or
    # `ltipro db upgrade` once, and is refused here until it has.
    settings = _settings(create=dev)
    port = args.port if args.port is not None else settings.port
    if dev:
        _upgrade(settings)

    async def ready(tool: Any) -> int:
        await tool.signing_key()
        return 0

    _run(_with_tool, settings, ready)
    os.environ.setdefault("LTIPRO_INSTANCE", str(settings.instance))
    if args.workers > 1:
        _share_metrics(settings)
        _exec_supervisor(args.host, port, args.workers, args.log_level)
    from ltipro.web.app import create_app

    if settings.metrics_dir is not None:
        _share_metrics(settings)
    uvicorn.run(
        create_app(settings),
        host=args.host,
        port=port,
        proxy_headers=True,
        log_level=args.log_level,
        access_log=False,
    )
    return 0


# -- credentials ------------------------------------------------------------------------------


CREDENTIAL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
MIN_LTI11_SECRET = 16


def cmd_credentials_create(args: argparse.Namespace) -> int:
    """``ltipro credentials create NAME``: a new connection to one or more LMS platforms."""
    name = args.name.strip()
    if not CREDENTIAL_NAME.fullmatch(name):
        raise UsageError(
            f"a credential name is 1 to 100 letters, digits, '.', '_' or '-', starting with a "
            f"letter or digit (got {args.name!r})"
        )
    key = args.lti11_key.strip() if args.lti11_key is not None else None
    secret = args.lti11_secret.strip() if args.lti11_secret is not None else None
    if (key is None) != (secret is None):
        raise UsageError("give both --lti11-key and --lti11-secret, or neither")
    if key is not None:
        _text("--lti11-key", key)
    if secret is not None and len(secret) < MIN_LTI11_SECRET:
        raise UsageError(
            f"the LTI 1.1 shared secret must be at least {MIN_LTI11_SECRET} characters long"
        )

    async def create(tool: Any) -> int:
        credential = await tool.repo.create_credential(
            name,
            enabled_plugins=tool.plugins.lms_names,
            lti11_key=key,
            lti11_secret=secret,
            auto_approve_registrations=args.auto_approve,
        )
        _out(f"Created credential {credential.name!r} (id {credential.id}).")
        _out(f"Enabled plugins: {', '.join(credential.enabled_plugins)}")
        if key:
            _out(f"LTI 1.1 launch URL: {tool.settings.url('/lti/launch')} (consumer key {key})")
        _out(f"Next: `ltipro platforms add --credential {credential.name} ...` for each LMS.")
        return 0

    return _run(_with_tool, _settings(), create)


def cmd_credentials_list(args: argparse.Namespace) -> int:
    async def show(tool: Any) -> int:
        rows = await tool.repo.list_credentials()
        if args.json:
            _out(
                json.dumps(
                    [
                        {
                            "id": c.id,
                            "name": c.name,
                            "lti11_key": c.lti11_key,
                            "enabled_plugins": list(c.enabled_plugins),
                        }
                        for c in rows
                    ],
                    indent=2,
                )
            )
            return 0
        if not rows:
            _out("No credentials yet: `ltipro credentials create NAME`.")
        for c in rows:
            key = f", LTI 1.1 key {c.lti11_key}" if c.lti11_key else ""
            _out(f"{c.id}\t{c.name}\tplugins: {', '.join(c.enabled_plugins) or '(none)'}{key}")
        return 0

    return _run(_with_tool, _settings(), show)


# -- platforms ---------------------------------------------------------------------------------


def cmd_platforms_add(args: argparse.Namespace) -> int:
    """``ltipro platforms add``: register an LTI 1.3 platform (an LMS) with a credential."""
    settings = _settings()
    private = settings.allow_private_urls
    issuer = _check_url("--issuer", args.issuer, allow_private=private, max_length=500, query=False)
    urls = {
        name: _check_url(flag, value, allow_private=private)
        for name, flag, value in (
            ("auth_login_url", "--auth-login-url", args.auth_login_url),
            ("auth_token_url", "--auth-token-url", args.auth_token_url),
            ("jwks_url", "--jwks-url", args.jwks_url),
        )
    }
    client_id = _text("--client-id", args.client_id)
    # The same deployment given twice is one deployment, in the order first given.
    deployments = list(dict.fromkeys(_text("--deployment-id", d) for d in args.deployment_id))
    if not deployments:
        raise UsageError("give at least one --deployment-id")
    name = args.name.strip() if args.name else None
    if name is not None and len(name) > 255:
        raise UsageError("--name is longer than 255 characters")

    async def add(tool: Any) -> int:
        if args.lms not in tool.plugins.details:
            raise UsageError(
                f"no plugin for LMS {args.lms!r} is installed; installed: "
                + ", ".join(tool.plugins.lms_names)
            )
        credential = await tool.repo.credential(args.credential)
        platform = await tool.repo.add_platform(
            credential,
            lms=args.lms,
            issuer=issuer,
            client_id=client_id,
            deployment_ids=deployments,
            name=name,
            **urls,
        )
        _out(
            f"Registered platform {platform.id}: {platform.issuer} (client id {platform.client_id})"
        )
        _out(f"Deployments: {', '.join(d for d, _ in platform.deployments)}")
        _out(f"Tool login URL:  {tool.settings.url('/lti/login')}")
        _out(f"Tool launch URL: {tool.settings.url('/lti/launch')}")
        _out(f"Tool key set:    {tool.settings.url('/.well-known/jwks.json')}")
        if args.lms not in credential.enabled_plugins:
            _warn(
                f"the {args.lms} plugin is not enabled for {credential.name}, so its launches "
                f"are refused: `ltipro plugins enable --credential {credential.name} {args.lms}`"
            )
        return 0

    return _run(_with_tool, settings, add)


def cmd_platforms_list(args: argparse.Namespace) -> int:
    """``ltipro platforms list``: every registration, with its status and deployments."""

    async def show(tool: Any) -> int:
        credential = await tool.repo.credential(args.credential) if args.credential else None
        rows = await tool.repo.list_platforms(credential)
        if not rows:
            _out("No platforms registered.")
        for p in rows:
            deps = ", ".join(f"{d}{'' if on else ' (off)'}" for d, on in p.deployments) or "-"
            label = f"\t{p.name}" if p.name else ""
            _out(
                f"{p.id}\t{p.status}\t{p.lms}\t{p.issuer}\tclient {p.client_id}\t"
                f"deployments: {deps}{label}"
            )
        return 0

    return _run(_with_tool, _settings(), show)


def _set_status(status: str) -> Callable[[argparse.Namespace], int]:
    def command(args: argparse.Namespace) -> int:
        async def change(tool: Any) -> int:
            platform = await tool.repo.platform(args.platform_id)
            if platform.status == status:
                _out(f"Platform {platform.id} ({platform.issuer}) is already {status}.")
                return 0
            await tool.repo.set_platform_status(platform.id, status)
            _out(f"Platform {platform.id} ({platform.issuer}) is now {status}.")
            return 0

        return _run(_with_tool, _settings(), change)

    return command


def cmd_deployments(enabled: bool) -> Callable[[argparse.Namespace], int]:
    def command(args: argparse.Namespace) -> int:
        async def change(tool: Any) -> int:
            platform = await tool.repo.platform(args.platform_id)
            if platform.deployment_enabled(args.deployment_id) is None:
                known = ", ".join(d for d, _ in platform.deployments) or "none"
                raise UsageError(
                    f"platform {platform.id} has no deployment {args.deployment_id!r}; "
                    f"its deployments: {known}"
                )
            await tool.repo.set_deployment_enabled(platform.id, args.deployment_id, enabled)
            _out(
                f"Deployment {args.deployment_id!r} of platform {platform.id} is now "
                f"{'enabled' if enabled else 'disabled'}."
            )
            return 0

        return _run(_with_tool, _settings(), change)

    return command


def cmd_platforms_add_deployment(args: argparse.Namespace) -> int:
    """``ltipro platforms add-deployment ID DEPLOYMENT``: a deployment the LMS made later.

    LMSs such as Canvas deploy a dynamically registered tool only after the registration,
    so its deployment id reaches the tool's admin by hand.
    """
    deployment_id = _text("DEPLOYMENT_ID", args.deployment_id)

    async def add(tool: Any) -> int:
        platform = await tool.repo.platform(args.platform_id)
        await tool.repo.add_deployment(platform.id, deployment_id)
        _out(
            f"Platform {platform.id} ({platform.issuer}) now accepts deployment {deployment_id!r}."
        )
        return 0

    return _run(_with_tool, _settings(), add)


def cmd_platforms_register_url(args: argparse.Namespace) -> int:
    """``ltipro platforms register-url --credential NAME``: the LTI Dynamic Registration URL."""
    from ltipro.lti.registration import MAX_LINK_DAYS, registration_url

    if not 1 <= args.days <= MAX_LINK_DAYS:
        raise UsageError(f"--days must be 1 to {MAX_LINK_DAYS} (got {args.days})")

    async def show(tool: Any) -> int:
        credential = await tool.repo.credential(args.credential)
        _out(registration_url(tool.settings, credential, days=args.days))
        sys.stderr.write(
            f"Paste this URL into the LMS's dynamic registration form; it registers LMSs "
            f"under credential {credential.name!r} for {args.days} day"
            f"{'' if args.days == 1 else 's'}. "
            + (
                "Registrations are approved automatically.\n"
                if credential.auto_approve_registrations
                else "Approve each with `ltipro platforms approve ID`.\n"
            )
        )
        return 0

    return _run(_with_tool, _settings(), show)


def cmd_platforms_config(args: argparse.Namespace) -> int:
    """``ltipro platforms config --credential NAME --lms LMS``: what to paste into the LMS."""
    from ltipro.lti.registration import MAX_LINK_DAYS
    from ltipro.registration_artifacts import credential_artifacts

    if not 1 <= args.days <= MAX_LINK_DAYS:
        raise UsageError(f"--days must be 1 to {MAX_LINK_DAYS} (got {args.days})")

    async def show(tool: Any) -> int:
        if args.lms not in tool.plugins.details:
            raise UsageError(
                f"no plugin for LMS {args.lms!r} is installed; installed: "
                + ", ".join(tool.plugins.lms_names)
            )
        credential = await tool.repo.credential(args.credential)
        artifacts = await credential_artifacts(tool, credential, args.lms, days=args.days)
        if args.json:
            _out(
                json.dumps(
                    {
                        "credential": credential.name,
                        "lms": args.lms,
                        "tool_url": tool.settings.base_url,
                        "lti11_key": credential.lti11_key,
                        "artifacts": [
                            {
                                "lms": a.lms,
                                "title": a.title,
                                "kind": a.kind,
                                "content": a.content,
                                "help": a.help,
                            }
                            for a in artifacts
                        ],
                    },
                    indent=2,
                )
            )
        else:
            _out(
                f"Installing the tool in {tool.plugins.title(args.lms)} for credential "
                f"{credential.name!r} (tool URL {tool.settings.base_url})."
            )
            _out(
                f"LTI 1.1 consumer key: {credential.lti11_key} (the shared secret is not shown)"
                if credential.lti11_key
                else "LTI 1.1: this credential has no consumer key, so LTI 1.1 launches "
                "are refused."
            )
            for artifact in artifacts:
                _out("")
                _out(f"== {artifact.title} ==")
                if artifact.help:
                    _out(artifact.help)
                    _out("")
                _out(artifact.content.rstrip("\n"))
        if args.lms not in credential.enabled_plugins:
            _warn(
                f"the {args.lms} plugin is not enabled for {credential.name}, so its launches "
                f"are refused: `ltipro plugins enable --credential {credential.name} {args.lms}`"
            )
        return 0

    return _run(_with_tool, _settings(), show)


# -- plugins -------------------------------------------------------------------------------------


def cmd_plugins_list(args: argparse.Namespace) -> int:
    from ltipro.plugins import Plugins

    plugins = Plugins.load(_settings().plugins)
    for name in plugins.lms_names:
        _out(f"{name}\t{plugins.title(name)}")
    return 0


def cmd_plugins_new(args: argparse.Namespace) -> int:
    """``ltipro plugins new NAME``: a new LMS plugin's distribution, ready to install."""
    from ltipro import scaffold

    try:
        plugin = scaffold.plan(
            args.name,
            title=args.title,
            family_code=args.family_code,
            directory=Path(args.dir) if args.dir else None,
        )
        written = scaffold.create(plugin)
    except scaffold.ScaffoldError as exc:
        raise UsageError(str(exc)) from None
    except OSError as exc:
        raise UsageError(f"cannot write the plugin: {exc}") from None
    _out(f"Created {plugin.distribution} in {plugin.directory}:")
    for path in written:
        _out(f"  {path.relative_to(plugin.directory)}")
    _out("")
    _out("Next:")
    _out(f"  cd {plugin.directory}")
    _out('  pip install -e ".[test]"')
    _out("  pytest                  # the conformance suite passes as generated")
    _out(
        f"Then replace the example launches in {plugin.package}/examples.py with real "
        f"{plugin.title} launches: see docs/writing-a-plugin.md in ltipro."
    )
    return 0


def _plugins_change(enable: bool) -> Callable[[argparse.Namespace], int]:
    def command(args: argparse.Namespace) -> int:
        async def change(tool: Any) -> int:
            credential = await tool.repo.credential(args.credential)
            names = set(credential.enabled_plugins)
            # A plugin that was enabled and is now uninstalled can still be switched off.
            if args.plugin not in tool.plugins.details and (enable or args.plugin not in names):
                raise UsageError(
                    f"no plugin named {args.plugin!r} is installed; installed: "
                    + ", ".join(tool.plugins.lms_names)
                )
            state = "enabled" if enable else "disabled"
            if (args.plugin in names) == enable:
                _out(f"{args.plugin} is already {state} for {credential.name}.")
                return 0
            names = names | {args.plugin} if enable else names - {args.plugin}
            await tool.repo.set_enabled_plugins(credential, names)
            _out(
                f"{args.plugin} is now {state} for {credential.name}; enabled: "
                f"{', '.join(sorted(names)) or '(none)'}"
            )
            return 0

        return _run(_with_tool, _settings(), change)

    return command


def _setting_pairs(pairs: Sequence[str]) -> dict[str, str]:
    """``KEY=VALUE`` arguments as a mapping; ``KEY=`` (nothing after ``=``) removes a value."""
    values: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise UsageError(f"give settings as KEY=VALUE (got {pair!r})")
        if key in values:
            raise UsageError(f"the setting {key!r} is given twice")
        values[key] = value
    return values


def cmd_plugins_settings(args: argparse.Namespace) -> int:
    from ltipro.plugin_settings import setting_values

    async def show(tool: Any) -> int:
        credential = await tool.repo.credential(args.credential)
        rows = await setting_values(tool, credential, args.plugin, args.platform)
        where = f"credential {credential.name!r}" + (
            f", platform {args.platform}" if args.platform is not None else ""
        )
        if not rows:
            _out(f"The plugin {args.plugin!r} declares no settings.")
            return 0
        _out(f"Settings of the {args.plugin} plugin for {where}:")
        for row in rows:
            source = {
                "platform": f"set for platform {args.platform}",
                "credential": "set for the credential",
                "default": "default",
            }[row.source]
            _out(f"{row.spec.key}\t{row.shown()}\t{source}\t{row.spec.scope}\t{row.spec.label}")
        return 0

    return _run(_with_tool, _settings(), show)


def cmd_plugins_set(args: argparse.Namespace) -> int:
    from ltipro.plugin_settings import set_plugin_settings

    values = _setting_pairs(args.values)

    async def store(tool: Any) -> int:
        credential = await tool.repo.credential(args.credential)
        changed = await set_plugin_settings(
            tool, credential, args.plugin, values, platform_id=args.platform
        )
        where = f"credential {credential.name!r}" + (
            f", platform {args.platform}" if args.platform is not None else ""
        )
        stored = [k for k in changed if values[k] != ""]
        removed = [k for k in changed if values[k] == ""]
        if stored:
            _out(f"Stored {args.plugin} settings for {where}: {', '.join(stored)}")
        if removed:
            _out(f"Removed {args.plugin} settings for {where}: {', '.join(removed)}")
        return 0

    return _run(_with_tool, _settings(), store)


# -- keys and API keys ----------------------------------------------------------------------------


def cmd_keys_rotate(args: argparse.Namespace) -> int:
    """``ltipro keys rotate``: a new signing key; the previous one stays published a while."""
    from ltipro.tool import RETIRED_KEY_GRACE

    async def rotate(tool: Any) -> int:
        key, removed = await tool.repo.rotate_tool_key(RETIRED_KEY_GRACE)
        _out(
            f"New signing key {key.kid}; the previous key stays published for "
            f"{_duration(RETIRED_KEY_GRACE)}, until tokens signed with it have expired."
        )
        if removed:
            _out("Removed keys past their grace period: " + ", ".join(removed))
        return 0

    return _run(_with_tool, _settings(), rotate)


def _duration(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    if minutes % 60 == 0:
        hours = minutes // 60
        return f"{hours} hour{'s' if hours != 1 else ''}"
    return f"{minutes} minutes"


def cmd_keys_list(args: argparse.Namespace) -> int:
    """``ltipro keys list``: the tool's keys, newest first, and which are still published."""
    from ltipro.storage.repository import now
    from ltipro.tool import RETIRED_KEY_GRACE

    async def show(tool: Any) -> int:
        keys = await tool.repo.tool_keys()
        if not keys:
            _out("No signing key yet: run `ltipro init`.")
        for key in keys:
            if key.retired_at is None:
                state = "signing"
            else:
                until = key.retired_at + RETIRED_KEY_GRACE
                published = "published until" if until > now() else "unpublished since"
                state = f"retired, {published} {until:%Y-%m-%d %H:%M} UTC"
            _out(f"{key.kid}\t{state}\tcreated {key.created_at:%Y-%m-%d %H:%M} UTC")
        return 0

    return _run(_with_tool, _settings(), show)


def _api_key_name(value: str) -> str:
    name = value.strip()
    if not name or len(name) > 100:
        raise UsageError("--name must be 1 to 100 characters")
    return name


def cmd_api_keys_create(args: argparse.Namespace) -> int:
    """``ltipro api-keys create``: a key for the JSON API, printed once on stdout."""
    name = _api_key_name(args.name)

    async def create(tool: Any) -> int:
        credential = await tool.repo.credential(args.credential)
        key = await tool.repo.create_api_key(credential, name)
        _out(key)
        sys.stderr.write(
            "Keep this key now: it is not shown again. Send it as `Authorization: Bearer <key>`.\n"
        )
        return 0

    return _run(_with_tool, _settings(), create)


def cmd_api_keys_revoke(args: argparse.Namespace) -> int:
    """``ltipro api-keys revoke``: the key (or its prefix) stops working at once."""
    given = args.key.strip()
    # Full keys are ltp_<prefix>_<secret>; the prefix alone is what `api-keys list` shows.
    prefix = given.split("_", 2)[1] if given.startswith("ltp_") else given
    if not prefix:
        raise UsageError("give the API key or its prefix (see `ltipro api-keys list`)")

    async def revoke(tool: Any) -> int:
        credential = await tool.repo.credential(args.credential)
        await tool.repo.revoke_api_key(credential, prefix)
        _out(f"API key {prefix} of {credential.name} is revoked.")
        return 0

    return _run(_with_tool, _settings(), revoke)


def cmd_api_keys_list(args: argparse.Namespace) -> int:
    """``ltipro api-keys list``: a credential's API keys by prefix (never the secret)."""

    async def show(tool: Any) -> int:
        credential = await tool.repo.credential(args.credential)
        rows = await tool.repo.list_api_keys(credential)
        if not rows:
            _out(f"No API keys for {credential.name}: `ltipro api-keys create`.")
        for row in rows:
            state = f"revoked {row.revoked_at:%Y-%m-%d}" if row.revoked_at else "active"
            _out(f"{row.prefix}\t{state}\t{row.name}\tcreated {row.created_at:%Y-%m-%d}")
        return 0

    return _run(_with_tool, _settings(), show)


# -- the parser -------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(
        prog="ltipro", description="Video meetings in LMS courses: the ltipro LTI tool."
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    p = sub.add_parser("init", help="create the instance folder, database and tool keys")
    p.set_defaults(func=cmd_init)

    p = sub.add_parser("serve", help="run the web server")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on")
    p.add_argument("--port", type=int, help="port to listen on (default: LTIPRO_PORT or 8000)")
    p.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    p.add_argument("--log-level", default="info", choices=LOG_LEVELS)
    p.set_defaults(func=cmd_serve)

    db = sub.add_parser("db", help="database migrations").add_subparsers(
        dest="db", metavar="ACTION"
    )
    db.required = True
    db.add_parser("upgrade", help="migrate the database to the newest schema").set_defaults(
        func=cmd_db_upgrade
    )

    creds = sub.add_parser("credentials", help="credentials: connections to LMS platforms")
    creds_sub = creds.add_subparsers(dest="action", metavar="ACTION")
    creds_sub.required = True
    p = creds_sub.add_parser("create", help="create a credential")
    p.add_argument("name")
    p.add_argument("--lti11-key", help="LTI 1.1 consumer key")
    p.add_argument("--lti11-secret", help="LTI 1.1 shared secret")
    p.add_argument(
        "--auto-approve",
        action="store_true",
        help="approve LTI dynamic registrations without an admin",
    )
    p.set_defaults(func=cmd_credentials_create)
    p = creds_sub.add_parser("list", help="list credentials")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_credentials_list)

    plats = sub.add_parser("platforms", help="LTI 1.3 platform registrations")
    plats_sub = plats.add_subparsers(dest="action", metavar="ACTION")
    plats_sub.required = True
    p = plats_sub.add_parser("add", help="register an LTI 1.3 platform")
    p.add_argument("--credential", required=True)
    p.add_argument("--lms", required=True, help="the LMS plugin: canvas, moodle, d2l, ...")
    p.add_argument("--issuer", required=True)
    p.add_argument("--client-id", required=True)
    p.add_argument("--deployment-id", action="append", default=[], required=True)
    p.add_argument("--auth-login-url", required=True)
    p.add_argument("--auth-token-url", required=True)
    p.add_argument("--jwks-url", required=True)
    p.add_argument("--name", help="a label for admins")
    p.set_defaults(func=cmd_platforms_add)
    p = plats_sub.add_parser("list", help="list platforms")
    p.add_argument("--credential")
    p.set_defaults(func=cmd_platforms_list)
    for action, status, text in (
        ("approve", "active", "approve a pending (dynamically registered) platform"),
        ("disable", "disabled", "refuse launches from a platform"),
        ("enable", "active", "accept launches from a platform again"),
    ):
        p = plats_sub.add_parser(action, help=text)
        p.add_argument("platform_id", type=platform_id)
        p.set_defaults(func=_set_status(status))
    for action, enabled in (("enable-deployment", True), ("disable-deployment", False)):
        p = plats_sub.add_parser(action, help=f"{action.split('-')[0]} one deployment")
        p.add_argument("platform_id", type=platform_id)
        p.add_argument("deployment_id")
        p.set_defaults(func=cmd_deployments(enabled))
    p = plats_sub.add_parser(
        "add-deployment", help="accept launches from one more deployment of a platform"
    )
    p.add_argument("platform_id", type=platform_id)
    p.add_argument("deployment_id")
    p.set_defaults(func=cmd_platforms_add_deployment)
    p = plats_sub.add_parser(
        "register-url", help="print the URL an LMS admin pastes for LTI dynamic registration"
    )
    p.add_argument("--credential", required=True)
    p.add_argument("--days", type=int, default=30, help="how long the URL stays valid (default 30)")
    p.set_defaults(func=cmd_platforms_register_url)
    p = plats_sub.add_parser(
        "config", help="print what an LMS admin pastes into the LMS to install the tool"
    )
    p.add_argument("--credential", required=True)
    p.add_argument("--lms", required=True, help="the LMS plugin: canvas, moodle, d2l, ...")
    p.add_argument("--json", action="store_true", help="print the configuration as JSON")
    p.add_argument(
        "--days",
        type=int,
        default=30,
        help="how long the dynamic-registration URL stays valid (default 30)",
    )
    p.set_defaults(func=cmd_platforms_config)

    plugs = sub.add_parser("plugins", help="LMS plugins")
    plugs_sub = plugs.add_subparsers(dest="action", metavar="ACTION")
    plugs_sub.required = True
    plugs_sub.add_parser("list", help="list installed plugins").set_defaults(func=cmd_plugins_list)
    p = plugs_sub.add_parser(
        "new", help="make a new LMS plugin (an installable ltipro-NAME distribution)"
    )
    p.add_argument("name", help="the plugin's name: a lowercase identifier, e.g. sakai")
    p.add_argument("--title", help="the LMS's name as users read it (default: from NAME)")
    p.add_argument(
        "--family-code", help="the LMS's tool_platform.product_family_code (default: NAME)"
    )
    p.add_argument("--dir", help="the folder to create (default: ./ltipro-NAME)")
    p.set_defaults(func=cmd_plugins_new)
    for action, enable in (("enable", True), ("disable", False)):
        p = plugs_sub.add_parser(action, help=f"{action} a plugin for a credential")
        p.add_argument("--credential", required=True)
        p.add_argument("plugin")
        p.set_defaults(func=_plugins_change(enable))
    p = plugs_sub.add_parser("settings", help="show a plugin's settings for a credential")
    p.add_argument("--credential", required=True)
    p.add_argument("--platform", type=platform_id, help="a platform registration's id")
    p.add_argument("plugin")
    p.set_defaults(func=cmd_plugins_settings)
    p = plugs_sub.add_parser(
        "set", help="set a plugin's settings for a credential (KEY= removes a value)"
    )
    p.add_argument("--credential", required=True)
    p.add_argument("--platform", type=platform_id, help="a platform registration's id")
    p.add_argument("plugin")
    p.add_argument("values", nargs="+", metavar="KEY=VALUE")
    p.set_defaults(func=cmd_plugins_set)

    keys = sub.add_parser("keys", help="the tool's signing keys")
    keys_sub = keys.add_subparsers(dest="action", metavar="ACTION")
    keys_sub.required = True
    keys_sub.add_parser("rotate", help="make a new signing key").set_defaults(func=cmd_keys_rotate)
    keys_sub.add_parser("list", help="list keys").set_defaults(func=cmd_keys_list)

    api = sub.add_parser("api-keys", help="per-credential keys for the JSON API")
    api_sub = api.add_subparsers(dest="action", metavar="ACTION")
    api_sub.required = True
    p = api_sub.add_parser("create", help="create an API key (shown once)")
    p.add_argument("--credential", required=True)
    p.add_argument("--name", default="api")
    p.set_defaults(func=cmd_api_keys_create)
    p = api_sub.add_parser("revoke", help="revoke an API key")
    p.add_argument("--credential", required=True)
    p.add_argument("key", help="the key or its prefix")
    p.set_defaults(func=cmd_api_keys_revoke)
    p = api_sub.add_parser("list", help="list API keys")
    p.add_argument("--credential", required=True)
    p.set_defaults(func=cmd_api_keys_list)

    from ltipro.cli_admin import add_commands as add_admin_and_config_commands

    add_admin_and_config_commands(sub)

    from ltipro.jobs.cli import add_commands as add_worker_and_jobs_commands

    add_worker_and_jobs_commands(sub)

    from ltipro.calendar.cli import add_commands as add_calendar_commands

    add_calendar_commands(sub)

    from ltipro.imports.cli import add_commands as add_import_commands

    add_import_commands(sub)
    return parser


USER_ERRORS = (
    UsageError,
    PluginSettingError,
    SettingsError,
    NotFound,
    Conflict,
    PluginError,
    DatabaseURLError,
    OptionError,
    SecretKeyMismatch,
)


def main(argv: Sequence[str] | None = None) -> int:
    """Run one ``ltipro`` command; the exit status: 0 done, 2 a mistake to correct."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, or a mistake argparse has reported
        return exc.code if isinstance(exc.code, int) else 0
    try:
        return int(args.func(args))
    except USER_ERRORS as exc:
        sys.stderr.write(f"ltipro: error: {exc}\n")
        return 2
    except KeyboardInterrupt:
        return 130
