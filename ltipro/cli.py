"""The ``ltipro`` command line.

Every command checks its input and says plainly what is wrong; a user's mistake never
prints a traceback (exit status 2), a bug still does.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import Any
from urllib.parse import urlsplit

from ltipro.options import OptionError
from ltipro.plugins import PluginError
from ltipro.settings import Settings, SettingsError
from ltipro.storage.database import DatabaseURLError
from ltipro.storage.repository import Conflict, NotFound


class UsageError(Exception):
    """A command-line mistake; the message says what to do instead."""


def _settings(create: bool = False) -> Settings:
    return Settings.from_env(create=create)


def _run(coro_fn: Callable[..., Coroutine[Any, Any, int]], *args: Any) -> int:
    return asyncio.run(coro_fn(*args))


async def _with_tool(settings: Settings, action: Callable[[Any], Awaitable[int]]) -> int:
    from sqlalchemy.exc import OperationalError, ProgrammingError

    from ltipro.tool import Tool

    tool = await Tool.open(settings)
    try:
        return await action(tool)
    except (OperationalError, ProgrammingError) as exc:
        raise UsageError(
            f"the database is not ready ({str(exc.orig).splitlines()[0]}): run `ltipro init` "
            "or `ltipro db upgrade` first"
        ) from exc
    finally:
        await tool.close()


def _out(text: str = "") -> None:
    sys.stdout.write(text + "\n")


def _check_url(name: str, value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise UsageError(f"{name} must be an http(s) URL (got {value!r})")
    return value


# -- init, serve, db -------------------------------------------------------------------------


def cmd_init(args: argparse.Namespace) -> int:
    settings = _settings(create=True)
    _upgrade(settings)

    async def keys(tool: Any) -> int:
        key = await tool.signing_key()
        _out(f"Instance folder: {settings.instance}")
        _out(f"Database: {_safe_url(settings.database_url)}")
        _out(f"Tool signing key: {key.kid}")
        return 0

    return _run(_with_tool, settings, keys)


def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def _upgrade(settings: Settings) -> None:
    from ltipro.plugins import Plugins
    from ltipro.storage.migrate import upgrade

    plugins = Plugins.load(settings.plugins)
    locations = [loc for _, loc in plugins.broadcast_sync("plugin_migrations") if loc]
    upgrade(settings.database_url, locations)


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    settings = _settings()
    _upgrade(settings)
    _out("The database is up to date.")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    settings = _settings(create=True)
    if settings.dev:
        # A development server sets itself up; production runs `ltipro db upgrade` once.
        _upgrade(settings)
    os.environ.setdefault("LTIPRO_INSTANCE", str(settings.instance))
    if args.port and "LTIPRO_BASE_URL" not in os.environ and settings.dev:
        os.environ["LTIPRO_PORT"] = str(args.port)
    if args.workers > 1:
        uvicorn.run(
            "ltipro.web.asgi:app",
            host=args.host,
            port=args.port,
            workers=args.workers,
            proxy_headers=True,
            log_level=args.log_level,
        )
        return 0
    from ltipro.web.app import create_app

    uvicorn.run(
        create_app(Settings.from_env()),
        host=args.host,
        port=args.port,
        proxy_headers=True,
        log_level=args.log_level,
    )
    return 0


# -- credentials ------------------------------------------------------------------------------


def cmd_credentials_create(args: argparse.Namespace) -> int:
    name = args.name.strip()
    if not name or len(name) > 100 or any(c.isspace() for c in name):
        raise UsageError("a credential name must be 1 to 100 characters without spaces")
    if bool(args.lti11_key) != bool(args.lti11_secret):
        raise UsageError("give both --lti11-key and --lti11-secret, or neither")
    if args.lti11_secret and len(args.lti11_secret) < 16:
        raise UsageError("the LTI 1.1 shared secret must be at least 16 characters long")

    async def create(tool: Any) -> int:
        credential = await tool.repo.create_credential(
            name,
            enabled_plugins=tool.plugins.lms_names,
            lti11_key=args.lti11_key,
            lti11_secret=args.lti11_secret,
            auto_approve_registrations=args.auto_approve,
        )
        _out(f"Created credential {credential.name!r} (id {credential.id}).")
        _out(f"Enabled plugins: {', '.join(credential.enabled_plugins)}")
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
    issuer = _check_url("--issuer", args.issuer.strip())
    urls = {
        name: _check_url(flag, value)
        for name, flag, value in (
            ("auth_login_url", "--auth-login-url", args.auth_login_url),
            ("auth_token_url", "--auth-token-url", args.auth_token_url),
            ("jwks_url", "--jwks-url", args.jwks_url),
        )
    }
    deployments = [d.strip() for d in args.deployment_id if d.strip()]
    if not deployments:
        raise UsageError("give at least one --deployment-id")
    if not args.client_id.strip():
        raise UsageError("--client-id must not be empty")

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
            client_id=args.client_id.strip(),
            deployment_ids=deployments,
            name=args.name,
            **urls,
        )
        _out(
            f"Registered platform {platform.id}: {platform.issuer} (client id {platform.client_id})"
        )
        _out(f"Tool login URL:  {tool.settings.url('/lti/login')}")
        _out(f"Tool launch URL: {tool.settings.url('/lti/launch')}")
        _out(f"Tool key set:    {tool.settings.url('/.well-known/jwks.json')}")
        return 0

    return _run(_with_tool, _settings(), add)


def cmd_platforms_list(args: argparse.Namespace) -> int:
    async def show(tool: Any) -> int:
        credential = await tool.repo.credential(args.credential) if args.credential else None
        rows = await tool.repo.list_platforms(credential)
        if not rows:
            _out("No platforms registered.")
        for p in rows:
            deps = ", ".join(f"{d}{'' if on else ' (off)'}" for d, on in p.deployments) or "-"
            _out(
                f"{p.id}\t{p.status}\t{p.lms}\t{p.issuer}\tclient {p.client_id}\tdeployments: {deps}"
            )
        return 0

    return _run(_with_tool, _settings(), show)


def _set_status(status: str) -> Callable[[argparse.Namespace], int]:
    def command(args: argparse.Namespace) -> int:
        async def change(tool: Any) -> int:
            platform = await tool.repo.platform(args.platform_id)
            await tool.repo.set_platform_status(platform.id, status)
            _out(f"Platform {platform.id} ({platform.issuer}) is now {status}.")
            return 0

        return _run(_with_tool, _settings(), change)

    return command


def cmd_deployments(enabled: bool) -> Callable[[argparse.Namespace], int]:
    def command(args: argparse.Namespace) -> int:
        async def change(tool: Any) -> int:
            await tool.repo.set_deployment_enabled(args.platform_id, args.deployment_id, enabled)
            _out(
                f"Deployment {args.deployment_id!r} of platform {args.platform_id} is now "
                f"{'enabled' if enabled else 'disabled'}."
            )
            return 0

        return _run(_with_tool, _settings(), change)

    return command


# -- plugins -------------------------------------------------------------------------------------


def cmd_plugins_list(args: argparse.Namespace) -> int:
    from ltipro.plugins import Plugins

    plugins = Plugins.load(_settings().plugins)
    for name in plugins.lms_names:
        _out(f"{name}\t{plugins.title(name)}")
    return 0


def _plugins_change(enable: bool) -> Callable[[argparse.Namespace], int]:
    def command(args: argparse.Namespace) -> int:
        async def change(tool: Any) -> int:
            if args.plugin not in tool.plugins.details:
                raise UsageError(
                    f"no plugin named {args.plugin!r} is installed; installed: "
                    + ", ".join(tool.plugins.lms_names)
                )
            credential = await tool.repo.credential(args.credential)
            names = set(credential.enabled_plugins)
            names = names | {args.plugin} if enable else names - {args.plugin}
            await tool.repo.set_enabled_plugins(credential, names)
            _out(
                f"{args.plugin} is now {'enabled' if enable else 'disabled'} for "
                f"{credential.name}; enabled: {', '.join(sorted(names)) or '(none)'}"
            )
            return 0

        return _run(_with_tool, _settings(), change)

    return command


# -- keys and API keys ----------------------------------------------------------------------------


def cmd_keys_rotate(args: argparse.Namespace) -> int:
    from ltipro.tool import RETIRED_KEY_GRACE

    async def rotate(tool: Any) -> int:
        key, removed = await tool.repo.rotate_tool_key(RETIRED_KEY_GRACE)
        _out(
            f"New signing key {key.kid}; the previous key stays published for {RETIRED_KEY_GRACE}."
        )
        if removed:
            _out("Removed keys past their grace period: " + ", ".join(removed))
        return 0

    return _run(_with_tool, _settings(), rotate)


def cmd_keys_list(args: argparse.Namespace) -> int:
    async def show(tool: Any) -> int:
        for key in await tool.repo.tool_keys():
            state = (
                "signing" if key.retired_at is None else f"retired {key.retired_at:%Y-%m-%d %H:%M}"
            )
            _out(f"{key.kid}\t{state}\tcreated {key.created_at:%Y-%m-%d %H:%M}")
        return 0

    return _run(_with_tool, _settings(), show)


def cmd_api_keys_create(args: argparse.Namespace) -> int:
    async def create(tool: Any) -> int:
        credential = await tool.repo.credential(args.credential)
        key = await tool.repo.create_api_key(credential, args.name)
        _out(key)
        sys.stderr.write("Keep this key now: it is not shown again.\n")
        return 0

    return _run(_with_tool, _settings(), create)


def cmd_api_keys_revoke(args: argparse.Namespace) -> int:
    async def revoke(tool: Any) -> int:
        credential = await tool.repo.credential(args.credential)
        prefix = args.key.split("_")[1] if args.key.startswith("ltp_") else args.key
        await tool.repo.revoke_api_key(credential, prefix)
        _out(f"API key {prefix} of {credential.name} is revoked.")
        return 0

    return _run(_with_tool, _settings(), revoke)


def cmd_api_keys_list(args: argparse.Namespace) -> int:
    async def show(tool: Any) -> int:
        credential = await tool.repo.credential(args.credential)
        for row in await tool.repo.list_api_keys(credential):
            state = "revoked" if row.revoked_at else "active"
            _out(f"{row.prefix}\t{state}\t{row.name}\tcreated {row.created_at:%Y-%m-%d}")
        return 0

    return _run(_with_tool, _settings(), show)


# -- the parser -------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ltipro", description="Video meetings in LMS courses: the ltipro LTI tool."
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    p = sub.add_parser("init", help="create the instance folder, database and tool keys")
    p.set_defaults(func=cmd_init)

    p = sub.add_parser("serve", help="run the web server")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=int(os.environ.get("LTIPRO_PORT", "8000")))
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--log-level", default="info")
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
        p.add_argument("platform_id", type=int)
        p.set_defaults(func=_set_status(status))
    for action, enabled in (("enable-deployment", True), ("disable-deployment", False)):
        p = plats_sub.add_parser(action, help=f"{action.split('-')[0]} one deployment")
        p.add_argument("platform_id", type=int)
        p.add_argument("deployment_id")
        p.set_defaults(func=cmd_deployments(enabled))

    plugs = sub.add_parser("plugins", help="LMS plugins")
    plugs_sub = plugs.add_subparsers(dest="action", metavar="ACTION")
    plugs_sub.required = True
    plugs_sub.add_parser("list", help="list installed plugins").set_defaults(func=cmd_plugins_list)
    for action, enable in (("enable", True), ("disable", False)):
        p = plugs_sub.add_parser(action, help=f"{action} a plugin for a credential")
        p.add_argument("--credential", required=True)
        p.add_argument("plugin")
        p.set_defaults(func=_plugins_change(enable))

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
    return parser


USER_ERRORS = (
    UsageError,
    SettingsError,
    NotFound,
    Conflict,
    PluginError,
    DatabaseURLError,
    OptionError,
)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except USER_ERRORS as exc:
        sys.stderr.write(f"ltipro: error: {exc}\n")
        return 2
    except KeyboardInterrupt:
        return 130
