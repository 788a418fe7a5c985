"""The LMS the benchmark runs itself: the simulator's platform, in this process.

:class:`~ltipro.simulator.platform.SimulatedPlatform` signs the ``id_token`` s and
answers the OIDC authentication requests (in-process: the browser's hop to the LMS
costs the LMS, not the tool). Its key set is published over HTTP on 127.0.0.1, since
both tools fetch it the way they fetch any LMS's keys.

What can be prepared before the clock starts is: the login-initiation parameters (with
their HMAC-signed ``login_hint``), the claims and the parsed signing key. The
``id_token`` itself carries the nonce the tool makes at login, so it can only be
signed once the login has answered; that RSA signature is the generator's main cost
and is reported apart (it never counts in the server's CPU, which is read from the
server's own processes).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from ltipro.crypto import generate_rsa_key
from ltipro.simulator.platform import SimulatedPlatform

CLAIM = "https://purl.imsglobal.org/spec/lti/claim/"
INSTRUCTOR = "http://purl.imsglobal.org/vocab/lis/v2/membership#Instructor"
LEARNER = "http://purl.imsglobal.org/vocab/lis/v2/membership#Learner"


@dataclass(frozen=True)
class PlatformKey:
    kid: str
    private_key: str
    public_jwk: dict[str, Any]


def new_key() -> PlatformKey:
    kid, pem, jwk = generate_rsa_key()
    return PlatformKey(kid=kid, private_key=pem, public_jwk=jwk)


class KeySetServer:
    """``GET {path}/jwks.json`` on 127.0.0.1, in a thread of this process."""

    def __init__(self, key: PlatformKey, path: str = "/platform") -> None:
        body = json.dumps({"keys": [key.public_jwk]}).encode()
        jwks_path = path + "/jwks.json"
        self.fetches = 0
        server_self = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path.split("?")[0] != jwks_path:
                    self.send_error(404)
                    return
                server_self.fetches += 1
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self._server.server_address[1]
        self.issuer = f"http://127.0.0.1:{self.port}{path}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def start(self) -> KeySetServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def platform_for(
    key: PlatformKey,
    issuer: str,
    *,
    client_id: str,
    deployment_id: str,
    login_url: str,
    launch_url: str,
) -> SimulatedPlatform:
    """The simulated LMS as one registration of one tool, signing with ``key``."""
    return SimulatedPlatform(
        issuer=issuer,
        client_id=client_id,
        deployment_id=deployment_id,
        tool_login_url=login_url,
        tool_launch_url=launch_url,
        private_key=key.private_key,
        kid=key.kid,
        public_jwk=dict(key.public_jwk),
    )


def launch_claims(i: int, *, courses: int = 20, users: int = 400) -> dict[str, Any]:
    """The i-th launch's claims: a resource-link launch by one of ``users`` people.

    Every fourth launch is an instructor's; launches spread over ``courses`` courses,
    so the tool sees both first launches of a course and returning ones.
    """
    user = i % users
    course = i % courses
    return {
        "sub": f"bench-user-{user}",
        "name": f"Bench User {user}",
        "given_name": "Bench",
        "family_name": f"User {user}",
        "email": f"user{user}@bench.example.edu",
        CLAIM + "roles": [INSTRUCTOR if user % 4 == 0 else LEARNER],
        CLAIM + "context": {
            "id": f"bench-course-{course}",
            "label": f"BENCH{course}",
            "title": f"Benchmark course {course}",
            "type": ["http://purl.imsglobal.org/vocab/lis/v2/course#CourseOffering"],
        },
        CLAIM + "resource_link": {"id": f"bench-link-{course}", "title": "Meetings"},
        CLAIM + "launch_presentation": {"document_target": "iframe", "locale": "en"},
        CLAIM + "tool_platform": {
            "guid": "bench-platform",
            "name": "Benchmark LMS",
            "product_family_code": "ltipro-simulator",
        },
    }


def login_requests(platform: SimulatedPlatform, count: int) -> Iterator[dict[str, str]]:
    """Login-initiation parameters for ``count`` launches, signed ahead of time."""
    for i in range(count):
        yield platform.login_params(launch_claims(i))
