"""``python -m ltipro_d2l connect --credential NAME [--platform ID]``: connect Brightspace.

Prints a link, valid 15 minutes and good for one use, that an admin opens in a browser
signed in to Brightspace as the account the tool should act as. Whoever can run this
command can already read the installation's secret key, so the link gives no one more
than they have. See :mod:`ltipro_d2l.oauth`.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ltipro.tool import Tool


class ConnectError(Exception):
    """A mistake in the command's arguments or the plugin's set-up, for the admin."""


async def connect_link(tool: Tool, credential_name: str, platform_id: int | None) -> list[str]:
    """The lines the ``connect`` command prints: what to register, and the link."""
    from ltipro.lmsapi import LmsApiError
    from ltipro.plugin_settings import effective_settings
    from ltipro.storage.repository import NotFound
    from ltipro_d2l.oauth import redirect_uri, start_url
    from ltipro_d2l.settings import NAME, config_from

    try:
        credential = await tool.repo.credential(credential_name)
    except NotFound:
        raise ConnectError(f"there is no credential named {credential_name!r}") from None
    issuer = None
    if platform_id is not None:
        try:
            platform = await tool.repo.platform(platform_id)
        except NotFound:
            raise ConnectError(f"there is no platform {platform_id}") from None
        if platform.credential_id != credential.id:
            raise ConnectError(
                f"platform {platform_id} is not registered with credential {credential.name!r}"
            )
        issuer = platform.issuer
    if NAME not in credential.enabled_plugins:
        raise ConnectError(
            f"the d2l plugin is off for credential {credential.name!r}: "
            f"`ltipro plugins enable --credential {credential.name} d2l`"
        )
    settings = await effective_settings(tool, credential, NAME, platform_id)
    try:
        config_from(settings, issuer=issuer, require_base=False)
    except LmsApiError as exc:
        raise ConnectError(str(exc)) from None
    return [
        f"Redirect URI to register in Brightspace: {redirect_uri(tool)}",
        "Open this link within 15 minutes, in a browser signed in to Brightspace as the "
        "account the tool should act as:",
        start_url(tool, credential.id, platform_id),
    ]


async def _connect(args: argparse.Namespace) -> int:
    from ltipro.settings import Settings
    from ltipro.tool import Tool

    tool = await Tool.open(Settings.from_env())
    try:
        lines = await connect_link(tool, args.credential, args.platform)
    except ConnectError as exc:
        sys.stderr.write(f"ltipro_d2l: error: {exc}\n")
        return 2
    finally:
        await tool.close()
    for line in lines:
        sys.stdout.write(line + "\n")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ltipro_d2l")
    commands = parser.add_subparsers(dest="command", required=True)
    connect = commands.add_parser("connect", help="authorise the tool to use Brightspace's API")
    connect.add_argument("--credential", required=True, help="the credential's name")
    connect.add_argument(
        "--platform", type=int, default=None, help="the platform registration's id"
    )
    args = parser.parse_args(argv)
    return asyncio.run(_connect(args))


if __name__ == "__main__":
    raise SystemExit(main())
