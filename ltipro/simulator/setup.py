"""Development mode: the simulator's own key and its registration with the tool.

The registration is what an admin would type for a real LMS (`ltipro platforms add`);
the simulator keeps its private key in the instance folder so restarts keep working.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

from ltipro.crypto import derive_key, generate_rsa_key
from ltipro.simulator.app import Simulator
from ltipro.simulator.platform import SimulatedPlatform
from ltipro.storage.repository import Conflict
from ltipro.tool import Tool

CREDENTIAL = "simulator"
CLIENT_ID = "ltipro-simulator"
DEPLOYMENT_ID = "simulator-deployment-1"
LTI11_KEY = "simulator-consumer-key"


def _key_file(instance: Path) -> tuple[str, str, dict[str, object]]:
    path = instance / "simulator" / "platform-key.json"
    if path.exists():
        data = json.loads(path.read_text())
        return data["kid"], data["private_key"], data["public_jwk"]
    kid, pem, jwk = generate_rsa_key()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"kid": kid, "private_key": pem, "public_jwk": jwk}))
    path.chmod(0o600)
    return kid, pem, jwk


def lti11_secret(secret_key: str) -> str:
    return base64.urlsafe_b64encode(derive_key(secret_key, "simulator-lti11")).decode()


def dev_simulator(tool: Tool) -> Simulator:
    settings = tool.settings
    kid, pem, jwk = _key_file(settings.instance)
    platform = SimulatedPlatform(
        issuer=settings.url("/simulator"),
        client_id=CLIENT_ID,
        deployment_id=DEPLOYMENT_ID,
        tool_login_url=settings.url("/lti/login"),
        tool_launch_url=settings.url("/lti/launch"),
        private_key=pem,
        kid=kid,
        public_jwk=dict(jwk),
        hint_secret=base64.urlsafe_b64encode(derive_key(settings.secret_key, "sim-hint")).decode(),
        lti11_key=LTI11_KEY,
        lti11_secret=lti11_secret(settings.secret_key),
    )
    return Simulator(
        platform=platform,
        plugins=tool.plugins,
        tool_jwks_url=settings.url("/.well-known/jwks.json"),
    )


async def ensure_simulator_registered(tool: Tool) -> None:
    """Register the simulator with the tool, once, as an admin would a real LMS."""
    if await tool.repo.find_credential(CREDENTIAL) is not None:
        return
    try:
        credential = await tool.repo.create_credential(
            CREDENTIAL,
            enabled_plugins=tool.plugins.lms_names,
            lti11_key=LTI11_KEY,
            lti11_secret=lti11_secret(tool.settings.secret_key),
        )
        await tool.repo.add_platform(
            credential,
            lms="generic",
            issuer=tool.settings.url("/simulator"),
            client_id=CLIENT_ID,
            deployment_ids=[DEPLOYMENT_ID],
            auth_login_url=tool.settings.url("/simulator/auth"),
            auth_token_url=tool.settings.url("/simulator/token"),
            jwks_url=tool.settings.url("/simulator/jwks.json"),
            name="LMS simulator",
        )
    except Conflict:
        return  # another worker registered it first
