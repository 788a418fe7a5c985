"""The LMS simulator as a server of its own: ``python -m ltipro.simulator``.

Development mode mounts the simulator inside the tool; this runs it on another host or
port instead, so the LMS page and the tool are different sites, as they are in
production (the browser tests rely on that)::

    python -m ltipro.simulator --port 9000 --issuer http://127.0.0.1:9000/simulator \\
        --tool-url http://localhost:8000 --client-id my-client --deployment-id dep-1 \\
        --key-file simulator-key.json

Register it with the tool as an admin registers any LMS (the command prints how).
``--key-file`` keeps the platform's signing key across restarts, and lets a test sign
tokens with the same key in-process.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ltipro.crypto import generate_rsa_key
from ltipro.simulator.platform import SimulatedPlatform


class KeyFileError(ValueError):
    """A key file that cannot be read as the simulator's."""


@dataclass(frozen=True)
class PlatformKey:
    """The simulated platform's signing key and the secret its login hints are signed with."""

    kid: str
    private_key: str
    public_jwk: dict[str, Any]
    hint_secret: str


def load_key_file(path: Path) -> PlatformKey:
    """The platform key kept in ``path``; made (readable by its owner only) when missing."""
    if path.exists():
        if not path.is_file():
            raise KeyFileError(f"{path} is not a file")
        try:
            data = json.loads(path.read_text())
            return PlatformKey(
                kid=str(data["kid"]),
                private_key=str(data["private_key"]),
                public_jwk=dict(data["public_jwk"]),
                hint_secret=str(data["hint_secret"]),
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise KeyFileError(
                f"{path} is not a simulator key file ({exc}); remove it to make a new one"
            ) from exc
    import secrets

    kid, pem, jwk = generate_rsa_key()
    key = PlatformKey(
        kid=kid, private_key=pem, public_jwk=dict(jwk), hint_secret=secrets.token_urlsafe(32)
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    # Created private from the start: the file holds a private key.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(
            {
                "kid": key.kid,
                "private_key": key.private_key,
                "public_jwk": key.public_jwk,
                "hint_secret": key.hint_secret,
            },
            handle,
        )
    return key


def simulated_platform(
    *,
    issuer: str,
    tool_url: str,
    client_id: str,
    deployment_id: str,
    key: PlatformKey | None = None,
    lti11_key: str | None = None,
    lti11_secret: str | None = None,
) -> SimulatedPlatform:
    """The simulated platform of one registration of the tool at ``tool_url``."""
    tool_url = tool_url.rstrip("/")
    extra: dict[str, Any] = {}
    if key is not None:
        extra = {
            "kid": key.kid,
            "private_key": key.private_key,
            "public_jwk": dict(key.public_jwk),
            "hint_secret": key.hint_secret,
        }
    return SimulatedPlatform(
        issuer=issuer.rstrip("/"),
        client_id=client_id,
        deployment_id=deployment_id,
        tool_login_url=tool_url + "/lti/login",
        tool_launch_url=tool_url + "/lti/launch",
        lti11_key=lti11_key,
        lti11_secret=lti11_secret,
        **extra,
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m ltipro.simulator",
        description="Run the LMS simulator as a server of its own, launching a tool elsewhere.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9000)
    parser.add_argument(
        "--issuer",
        help="the platform's issuer URL; its path is where the pages are served "
        "(default: http://HOST:PORT/simulator)",
    )
    parser.add_argument(
        "--tool-url", required=True, help="the tool's base URL, e.g. http://localhost:8000"
    )
    parser.add_argument("--client-id", default="ltipro-simulator")
    parser.add_argument("--deployment-id", default="simulator-deployment-1")
    parser.add_argument(
        "--key-file", type=Path, help="keep the platform's signing key here (made when missing)"
    )
    parser.add_argument("--lti11-key", help="LTI 1.1 consumer key (with --lti11-secret)")
    parser.add_argument("--lti11-secret", help="LTI 1.1 shared secret")
    parser.add_argument(
        "--plugins",
        help="comma-separated LMS plugins whose example launches to offer (default: all installed)",
    )
    parser.add_argument("--log-level", default="info")
    return parser


def _check_url(parser: argparse.ArgumentParser, flag: str, value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        parser.error(f"{flag} must be an http(s) URL (got {value!r})")
    return value.rstrip("/")


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the arguments and serve the simulator until interrupted."""
    parser = build_parser()
    args = parser.parse_args(argv)
    issuer = _check_url(
        parser, "--issuer", args.issuer or f"http://{args.host}:{args.port}/simulator"
    )
    tool_url = _check_url(parser, "--tool-url", args.tool_url)
    if not args.client_id.strip() or not args.deployment_id.strip():
        parser.error("--client-id and --deployment-id must not be empty")
    if bool(args.lti11_key) != bool(args.lti11_secret):
        parser.error("give both --lti11-key and --lti11-secret, or neither")

    import uvicorn

    from ltipro.plugins import PluginError, Plugins
    from ltipro.simulator.app import Simulator, create_simulator_app

    try:
        key = load_key_file(args.key_file) if args.key_file else None
    except (KeyFileError, OSError) as exc:
        parser.error(str(exc))
    platform = simulated_platform(
        issuer=issuer,
        tool_url=tool_url,
        client_id=args.client_id.strip(),
        deployment_id=args.deployment_id.strip(),
        key=key,
        lti11_key=args.lti11_key,
        lti11_secret=args.lti11_secret,
    )
    only = [p.strip() for p in args.plugins.split(",") if p.strip()] if args.plugins else None
    try:
        plugins = Plugins.load(only)
    except PluginError as exc:
        parser.error(f"--plugins: {exc}")
    simulator = Simulator(
        platform=platform,
        plugins=plugins,
        tool_jwks_url=tool_url + "/.well-known/jwks.json",
        base_path=urlsplit(issuer).path or "/",
    )
    sys.stdout.write(
        f"LMS simulator: {issuer}/ launching {tool_url}\n"
        "Register it with the tool:\n"
        f"  ltipro platforms add --credential NAME --lms generic --issuer {issuer} "
        f"--client-id {platform.client_id} --deployment-id {platform.deployment_id} "
        f"--auth-login-url {issuer}/auth --auth-token-url {issuer}/token "
        f"--jwks-url {issuer}/jwks.json\n"
    )
    sys.stdout.flush()
    uvicorn.run(
        create_simulator_app(simulator),
        host=args.host,
        port=args.port,
        log_level=args.log_level,
        timeout_graceful_shutdown=3,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
