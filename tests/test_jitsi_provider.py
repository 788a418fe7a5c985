"""The embedded Jitsi provider: real room links, signed room tokens where the server
checks them, hosts as moderators, and a plain list of what it cannot do."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import jwt
import pytest

from ltipro.default_plugins.providers import meetings_providers
from ltipro.providers.base import Feature, MeetingSpec, NotSupported, Person
from ltipro.providers.jitsi import JitsiProvider, room_name

SPEC = MeetingSpec(
    topic="Office hours: week 3!",
    start_time=datetime(2026, 12, 1, 15, 0, tzinfo=UTC),
    duration=45,
    timezone="America/Chicago",
)
HOST = Person(email="teacher@example.edu", name="Tea Cher", user_id="t1")
STUDENT = Person(email="student@example.edu", name="Stu Dent", user_id="s1")


def test_room_names_read_as_the_topic_and_cannot_be_guessed() -> None:
    names = {room_name("Office hours: week 3!") for _ in range(50)}
    assert len(names) == 50
    for name in names:
        readable, _, secret = name.partition("-")
        assert readable == "OfficeHoursWeek3"
        assert len(secret) >= 12 and secret.isalnum()


async def test_public_server_rooms_are_plain_links() -> None:
    provider = JitsiProvider({})
    host = await provider.host_account(HOST)
    meeting = await provider.create_meeting(host, SPEC)
    assert meeting.join_url == f"https://meet.jit.si/{meeting.id}"
    assert meeting.duration == 45 and meeting.timezone == "America/Chicago"
    assert (
        await provider.join_url(meeting.id, meeting.join_url, STUDENT, host=False)
        == meeting.join_url
    )
    assert Feature.RECORDINGS not in provider.features
    assert "cloud recordings" in provider.missing_features()
    with pytest.raises(NotSupported, match="cloud recordings"):
        await provider.recordings(meeting.id)
    with pytest.raises(NotSupported, match="attendance"):
        await provider.attendance(meeting.id)


async def test_token_authentication_makes_hosts_moderators_and_students_members() -> None:
    provider = JitsiProvider(
        {
            "server_url": "https://meet.example.edu/",
            "app_id": "ltipro",
            "app_secret": "jitsi-app-secret-0123456789abcdef",
        }
    )
    host = await provider.host_account(HOST)
    meeting = await provider.create_meeting(host, SPEC)
    assert meeting.join_url.startswith("https://meet.example.edu/")
    start = await provider.start_url(meeting.id, host)
    join = await provider.join_url(meeting.id, meeting.join_url, STUDENT, host=False)
    host_claims = jwt.decode(
        httpx.URL(start).params["jwt"],
        "jitsi-app-secret-0123456789abcdef",
        algorithms=["HS256"],
        audience="ltipro",
    )
    student_claims = jwt.decode(
        httpx.URL(join).params["jwt"],
        "jitsi-app-secret-0123456789abcdef",
        algorithms=["HS256"],
        audience="ltipro",
    )
    assert host_claims["room"] == student_claims["room"] == meeting.id
    assert host_claims["iss"] == "ltipro" and host_claims["sub"] == "meet.example.edu"
    assert host_claims["context"]["user"]["moderator"] is True
    assert host_claims["context"]["user"]["affiliation"] == "owner"
    assert student_claims["context"]["user"]["moderator"] is False
    assert student_claims["context"]["user"]["email"] == "student@example.edu"
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(
            httpx.URL(join).params["jwt"],
            "wrong-secret-0123456789abcdefghij",
            algorithms=["HS256"],
            audience="ltipro",
        )


def test_server_address_is_validated() -> None:
    for bad in ("meet.example.edu", "ftp://meet.example.edu", "https://meet.example.edu/?x=1"):
        with pytest.raises(ValueError, match="https://"):
            JitsiProvider({"server_url": bad})


def test_the_built_in_plugin_offers_jitsi_with_its_settings() -> None:
    (spec,) = [s for s in meetings_providers() if s.name == "jitsi"]
    assert spec.name == "jitsi"
    keys = {s.key: s for s in spec.settings}
    assert keys["jitsi.app_secret"].secret is True
    assert keys["jitsi.server_url"].default == "https://meet.jit.si"
    assert keys["jitsi.server_url"].clean("https://meet.example.edu/") == "https://meet.example.edu"
    provider = spec.factory({"server_url": "https://meet.example.edu"}, httpx.AsyncClient())
    assert provider.name == "jitsi"
