"""One session mechanism for every page and the JSON API after a launch.

The session itself lives in the protocol store (database or Redis), so any worker can
serve it; the browser holds a short-lived signed token naming it. Pages send the token
in an ``Authorization: Bearer`` header or a hidden form field (never in a URL, where it
would leak through Referer and logs); a ``SameSite=None; Secure; Partitioned`` cookie
carries it where the browser keeps one, for plain page loads only.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, field
from typing import Any

from ltipro.context import LaunchContext
from ltipro.crypto import Signer, TokenError
from ltipro.identity import Identity
from ltipro.storage.store import ProtocolStore

SESSION_KIND = "session"
COOKIE_NAME = "ltipro_session"
FORM_FIELD = "session"


@dataclass(frozen=True)
class Session:
    """Who is using the tool, in which course, through which credential."""

    id: str
    credential_id: int
    platform_id: int | None
    context: LaunchContext
    identity: Identity
    deep_link: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def is_instructor(self) -> bool:
        return self.identity.role == "instructor"


class Sessions:
    """Opens and reads sessions."""

    def __init__(self, store: ProtocolStore, secret_key: str, lifetime: int) -> None:
        self.store = store
        self.signer = Signer(secret_key, "session")
        self.lifetime = lifetime

    async def open(
        self,
        *,
        credential_id: int,
        platform_id: int | None,
        context: LaunchContext,
        identity: Identity,
        deep_link: dict[str, Any] | None = None,
    ) -> tuple[Session, str]:
        """Store a new session and return it with its token."""
        session_id = secrets.token_urlsafe(18)
        data = {
            "credential_id": credential_id,
            "platform_id": platform_id,
            "context": context.to_dict(),
            "identity": {
                "role": identity.role,
                "email": identity.email,
                "timezone": identity.timezone,
            },
            "deep_link": deep_link,
        }
        await self.store.put(SESSION_KIND, session_id, json.dumps(data), self.lifetime)
        token = self.signer.sign({"sid": session_id}, self.lifetime)
        return self._session(session_id, data), token

    async def load(self, token: str | None) -> Session | None:
        """The session a token names, or ``None`` for a bad, expired or unknown token."""
        if not token:
            return None
        try:
            payload = self.signer.verify(token)
        except TokenError:
            return None
        session_id = payload.get("sid")
        if not isinstance(session_id, str):
            return None
        raw = await self.store.peek(SESSION_KIND, session_id)
        if raw is None:
            return None
        return self._session(session_id, json.loads(raw))

    @staticmethod
    def _session(session_id: str, data: dict[str, Any]) -> Session:
        identity = data["identity"]
        return Session(
            id=session_id,
            credential_id=data["credential_id"],
            platform_id=data.get("platform_id"),
            context=LaunchContext.from_dict(data["context"]),
            identity=Identity(
                role=identity["role"], email=identity["email"], timezone=identity["timezone"]
            ),
            deep_link=data.get("deep_link"),
        )
