"""``ltipro admins`` and ``ltipro config``: console accounts, and options from scripts.

``ltipro config set`` checks values exactly as the admin console and the configuration
API do (:func:`ltipro.option_fields.check_changes`), changes all of them or none, and
writes each change to the credential's audit log as made by ``cli``.
"""

from __future__ import annotations

import argparse
import getpass
import json
import re
import sys
from typing import Any

from ltipro.cli import UsageError, _out, _run, _setting_pairs, _settings, _with_tool
from ltipro.option_fields import (
    FIELDS_BY_NAME,
    InvalidOptions,
    check_changes,
    value_as_text,
    value_from_text,
)
from ltipro.passwords import PasswordError, check_password_rules, hash_password
from ltipro.storage.admin_repository import Admin, AdminRepository, normalize_email

CLI_ACTOR = "cli"
EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


def _email(value: str) -> str:
    email = normalize_email(value)
    if not EMAIL.fullmatch(email) or len(email) > 255:
        raise UsageError(f"{value!r} is not an email address")
    return email


def _read_password(from_stdin: bool) -> str:
    """The new password: one line of standard input, or typed twice at a prompt."""
    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
        if not password:
            raise UsageError("--password-stdin was given but standard input holds no password")
    else:
        try:
            password = getpass.getpass("Password: ")
            again = getpass.getpass("The same password again: ")
        except EOFError:
            raise UsageError(
                "no password was typed (give it on standard input with --password-stdin)"
            ) from None
        if password != again:
            raise UsageError("the two passwords are not the same; nothing was changed")
    try:
        check_password_rules(password)
    except PasswordError as exc:
        raise UsageError(str(exc)) from None
    return password


def _repository(tool: Any) -> AdminRepository:
    return AdminRepository(tool.repo.engine)


def cmd_admins_create(args: argparse.Namespace) -> int:
    """``ltipro admins create EMAIL (--credential NAME ... | --superuser)``."""
    email = _email(args.email)
    names = list(dict.fromkeys(n.strip() for n in args.credential or ()))
    settings = _settings()

    async def create(tool: Any) -> int:
        # Everything the command needs is checked before the password is asked for.
        credentials = [await tool.repo.credential(name) for name in names]
        admins = _repository(tool)
        if await admins.find_admin(email) is not None:
            raise UsageError(f"an admin with the email {email!r} already exists")
        password = _read_password(args.password_stdin)
        admin = await admins.create_admin(
            email,
            hash_password(password),
            superuser=args.superuser,
            credential_ids=[c.id for c in credentials],
        )
        what = (
            "every credential (superuser)"
            if admin.is_superuser
            else ", ".join(c.name for c in credentials)
        )
        _out(f"Created admin {admin.email}, who manages: {what}.")
        _out(f"Sign in at {tool.settings.url('/admin/')}")
        return 0

    return _run(_with_tool, settings, create)


def cmd_admins_set_password(args: argparse.Namespace) -> int:
    """``ltipro admins set-password EMAIL``: a new password for an existing admin."""
    email = _email(args.email)

    async def change(tool: Any) -> int:
        admins = _repository(tool)
        if await admins.find_admin(email) is None:
            raise UsageError(
                f"there is no admin with the email {email!r} (see `ltipro admins list`)"
            )
        password = _read_password(args.password_stdin)
        await admins.set_password(email, hash_password(password))
        _out(f"The password of {email} is changed.")
        return 0

    return _run(_with_tool, _settings(), change)


def _admin_summary(admin: Admin, names: dict[int, str]) -> dict[str, Any]:
    return {
        "email": admin.email,
        "superuser": admin.is_superuser,
        "credentials": sorted(names[i] for i in admin.credential_ids if i in names),
        "created_at": admin.created_at.isoformat(),
        "last_login_at": admin.last_login_at.isoformat() if admin.last_login_at else None,
    }


def cmd_admins_list(args: argparse.Namespace) -> int:
    """``ltipro admins list``: every admin account and what it manages (never a password)."""

    async def show(tool: Any) -> int:
        admins = _repository(tool)
        rows = await admins.list_admins()
        names = await admins.credential_names(i for a in rows for i in a.credential_ids)
        summaries = [_admin_summary(a, names) for a in rows]
        if args.json:
            _out(json.dumps(summaries, indent=2))
            return 0
        if not rows:
            _out("No admins yet: `ltipro admins create EMAIL --superuser`.")
        for s in summaries:
            manages = (
                "superuser (every credential)"
                if s["superuser"]
                else "credentials: " + (", ".join(s["credentials"]) or "(none)")
            )
            last = s["last_login_at"][:16].replace("T", " ") if s["last_login_at"] else "never"
            _out(f"{s['email']}\t{manages}\tlast sign-in: {last}")
        return 0

    return _run(_with_tool, _settings(), show)


# -- config show / set -------------------------------------------------------------------------


def cmd_config_show(args: argparse.Namespace) -> int:
    """``ltipro config show --credential NAME [--json]``: every option, as ``set`` takes it."""

    async def show(tool: Any) -> int:
        credential = await tool.repo.credential(args.credential)
        options = credential.options.to_json()
        if args.json:
            _out(
                json.dumps(
                    {
                        "credential": {"id": credential.id, "name": credential.name},
                        "options": options,
                    },
                    indent=2,
                    ensure_ascii=False,
                )
            )
            return 0
        for name in FIELDS_BY_NAME:
            _out(f"{name}={value_as_text(name, options[name])}")
        return 0

    return _run(_with_tool, _settings(), show)


def cmd_config_set(args: argparse.Namespace) -> int:
    """``ltipro config set --credential NAME KEY=VALUE ...``: all the changes, or none."""
    pairs = _setting_pairs(args.values)
    values: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for name, text in pairs.items():
        try:
            values[name] = value_from_text(name, text)
        except InvalidOptions as exc:
            errors.update(exc.errors)

    async def store(tool: Any) -> int:
        credential = await tool.repo.credential(args.credential)
        try:
            check_changes(credential.options, values)
        except InvalidOptions as exc:
            errors.update(exc.errors)
        if errors:
            raise UsageError("; ".join(errors.values()) + " (nothing was changed)")
        _, changes = await _repository(tool).change_options(credential.id, values, CLI_ACTOR)
        if not changes:
            _out("Nothing changed: every value given is the current one.")
        for change in changes:
            _out(f"{change.setting}: {change.old_value} -> {change.new_value}")
        return 0

    return _run(_with_tool, _settings(), store)


def add_commands(sub: Any) -> None:
    """Add ``admins`` and ``config`` to the ``ltipro`` parser's commands."""
    admins = sub.add_parser("admins", help="accounts of the admin console (/admin)")
    admins_sub = admins.add_subparsers(dest="action", metavar="ACTION")
    admins_sub.required = True
    p = admins_sub.add_parser(
        "create", help="create an admin who manages some credentials, or every one"
    )
    p.add_argument("email")
    who = p.add_mutually_exclusive_group(required=True)
    who.add_argument(
        "--credential",
        action="append",
        metavar="NAME",
        help="a credential the admin manages (repeat for more)",
    )
    who.add_argument("--superuser", action="store_true", help="manages every credential")
    p.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the password from standard input instead of asking",
    )
    p.set_defaults(func=cmd_admins_create)
    p = admins_sub.add_parser("set-password", help="give an admin a new password")
    p.add_argument("email")
    p.add_argument("--password-stdin", action="store_true", help="read it from standard input")
    p.set_defaults(func=cmd_admins_set_password)
    p = admins_sub.add_parser("list", help="list admins and the credentials each manages")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_admins_list)

    config = sub.add_parser("config", help="a credential's configuration options")
    config_sub = config.add_subparsers(dest="action", metavar="ACTION")
    config_sub.required = True
    p = config_sub.add_parser("show", help="show every option of a credential")
    p.add_argument("--credential", required=True)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_config_show)
    p = config_sub.add_parser(
        "set", help="change options (lists comma-separated or JSON); all or nothing"
    )
    p.add_argument("--credential", required=True)
    p.add_argument("values", nargs="+", metavar="KEY=VALUE")
    p.set_defaults(func=cmd_config_set)
