"""The embedded provider: meeting rooms on a Jitsi Meet server, no account needed.

Each meeting is a room with an unguessable name on the server the admin names
(``https://meet.jit.si`` by default), so a fresh install works end to end. On a
self-hosted Jitsi with token authentication (prosody ``token`` auth with an app id and
secret), join links carry a signed room token and hosts join as moderators; without it,
whoever opens the room first moderates it, which the pages say plainly.
"""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
import jwt

from ltipro.extension import SettingSpec
from ltipro.options import CredentialOptions
from ltipro.providers.base import (
    Feature,
    HostAccount,
    MeetingSpec,
    MeetingsProvider,
    Person,
    ProviderError,
    ProviderMeeting,
    ProviderSpec,
)

NAME = "jitsi"
SETTINGS_PLUGIN = "providers"  # built-in providers keep their settings under this plugin
DEFAULT_SERVER = "https://meet.jit.si"
_ROOM = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{2,199}")
TOKEN_LIFETIME = 6 * 3600


def _server_url(raw: str) -> str:
    text = (raw or "").strip().rstrip("/")
    parts = urlsplit(text)
    if parts.scheme not in ("https", "http") or not parts.netloc or parts.query or parts.fragment:
        raise ValueError("The Jitsi server must be an https:// address such as https://meet.jit.si")
    return text


def _app_id(raw: str) -> str:
    text = raw.strip()
    if text and not text.replace("-", "").replace("_", "").isalnum():
        raise ValueError("The Jitsi app id may hold only letters, digits, - and _")
    return text


def room_name(topic: str) -> str:
    """An unguessable room name that still reads as the meeting's topic."""
    words = "".join(c if c.isalnum() else " " for c in topic).split()
    readable = "".join(w.capitalize() for w in words)[:40] or "Meeting"
    return f"{readable}-{secrets.token_urlsafe(12).replace('_', '').replace('-', '')}"


class JitsiProvider(MeetingsProvider):
    name = NAME
    title = "Jitsi Meet"

    def __init__(self, settings: Mapping[str, Any]) -> None:
        self.server = _server_url(str(settings.get("server_url") or DEFAULT_SERVER))
        self.app_id = str(settings.get("app_id") or "")
        self.app_secret = str(settings.get("app_secret") or "")
        self.xmpp_domain = str(settings.get("xmpp_domain") or urlsplit(self.server).hostname or "")
        self.token_auth = bool(self.app_id and self.app_secret)
        # The host's Start opens the room; with token authentication it also makes them
        # its moderator, without it whoever opens the room first moderates it.
        self.features = frozenset({Feature.RECURRENCE, Feature.START_URL})

    async def host_account(
        self,
        person: Person,
        *,
        role: str | None = None,
        options: CredentialOptions | None = None,
    ) -> HostAccount:
        # Jitsi has no accounts: the host is whoever the tool says, by email.
        return HostAccount(id=person.email or person.user_id or "host", email=person.email or "")

    async def create_meeting(self, host: HostAccount, spec: MeetingSpec) -> ProviderMeeting:
        room = room_name(spec.topic)
        return ProviderMeeting(
            id=room,
            join_url=f"{self.server}/{quote(room)}",
            topic=spec.topic,
            start_time=spec.start_time,
            duration=spec.duration,
            timezone=spec.timezone,
            host_id=host.id,
        )

    async def update_meeting(self, meeting_id: str, spec: MeetingSpec) -> None:
        return None  # the room keeps its name; the schedule lives in the tool

    async def get_meeting(self, meeting_id: str) -> ProviderMeeting:
        """A room on this server by its name (or its address on this server).

        Jitsi has no accounts and a room exists whenever someone is in it, so any room
        name on the configured server can be imported; an address on another server
        cannot, since the tool's links would not lead there.
        """
        room = meeting_id.strip()
        if room.startswith(("https://", "http://")):
            if not room.startswith(self.server + "/"):
                raise ProviderError(
                    "meeting_outside_account",
                    f"This room is not on the Jitsi server the tool uses ({self.server}).",
                    status=403,
                )
            room = room[len(self.server) + 1 :].split("?", 1)[0].split("#", 1)[0]
        if not _ROOM.fullmatch(room):
            raise ProviderError(
                "invalid_meeting_id",
                "a Jitsi room name is 3 to 200 letters, digits, - and _.",
                status=404,
            )
        return ProviderMeeting(
            id=room,
            join_url=f"{self.server}/{quote(room)}",
            topic=room,
            start_time=None,
            duration=60,
            timezone="UTC",
        )

    async def delete_meeting(self, meeting_id: str) -> None:
        return None  # rooms exist only while people are in them

    def room_token(self, room: str, person: Person, *, moderator: bool) -> str:
        """A room token for prosody's token authentication (HS256 with the app secret)."""
        now = int(time.time())
        user: dict[str, Any] = {
            "id": person.user_id or person.email or "",
            "name": person.name or person.email or "Guest",
            "email": person.email or "",
            "moderator": moderator,
            # token_affiliation reads this one; the JaaS-style servers the boolean above.
            "affiliation": "owner" if moderator else "member",
        }
        claims = {
            "aud": self.app_id,
            "iss": self.app_id,
            "sub": self.xmpp_domain,
            "room": room,
            "nbf": now - 60,
            "exp": now + TOKEN_LIFETIME,
            "context": {"user": user},
            "moderator": moderator,
        }
        return jwt.encode(claims, self.app_secret, algorithm="HS256")

    async def join_url(
        self,
        meeting_id: str,
        stored_join_url: str,
        person: Person,
        *,
        host: bool,
        options: CredentialOptions | None = None,
    ) -> str:
        # No accounts to sign in to: the auto-login options change nothing here.
        if not self.token_auth:
            return stored_join_url
        return f"{stored_join_url}?jwt={self.room_token(meeting_id, person, moderator=False)}"

    async def start_url(self, meeting_id: str, host: HostAccount) -> str:
        person = Person(email=host.email, name=host.email, user_id=host.id)
        if not self.token_auth:
            return f"{self.server}/{quote(meeting_id)}"
        token = self.room_token(meeting_id, person, moderator=True)
        return f"{self.server}/{quote(meeting_id)}?jwt={token}"


def provider_spec() -> ProviderSpec:
    """How the built-in plugin offers the Jitsi provider."""
    settings = [
        SettingSpec(
            SETTINGS_PLUGIN,
            f"{NAME}.server_url",
            "Jitsi Meet server",
            help="The address of the Jitsi Meet server rooms are made on.",
            default=DEFAULT_SERVER,
            validate=_server_url,
        ),
        SettingSpec(
            SETTINGS_PLUGIN,
            f"{NAME}.app_id",
            "App id (token authentication)",
            help="For a self-hosted Jitsi with token authentication: its app id.",
            default="",
            validate=_app_id,
        ),
        SettingSpec(
            SETTINGS_PLUGIN,
            f"{NAME}.app_secret",
            "App secret (token authentication)",
            help="The shared secret the Jitsi server checks room tokens with.",
            default="",
            secret=True,
        ),
        SettingSpec(
            SETTINGS_PLUGIN,
            f"{NAME}.xmpp_domain",
            "XMPP domain",
            help="The Jitsi server's XMPP domain, when it differs from its web address.",
            default="",
        ),
    ]

    def factory(values: Mapping[str, Any], http: httpx.AsyncClient) -> MeetingsProvider:
        return JitsiProvider(values)

    return ProviderSpec(
        name=NAME,
        title="Jitsi Meet (no account needed)",
        settings=settings,
        factory=factory,
        features=frozenset({Feature.RECURRENCE, Feature.START_URL}),
        description=(
            "Meeting rooms with real join links on a Jitsi Meet server. No recordings, "
            "attendance reports, alternative hosts or account provisioning."
        ),
    )
