"""What each provider answers when an import asks for an existing meeting."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from import_support import DOMAIN, csv_bytes, use_zoom, zoom_meetings

from ltipro.imports import service
from ltipro.providers.base import ProviderError
from ltipro.providers.jitsi import JitsiProvider
from ltipro.testing.harness import ToolHarness
from ltipro.testing.zoom_double import ZoomDouble


async def test_jitsi_rooms_on_its_server_are_importable_and_others_are_not() -> None:
    jitsi = JitsiProvider({"server_url": "https://meet.example.edu"})
    room = await jitsi.get_meeting("Biology-Office-Hours")
    assert (room.id, room.join_url) == (
        "Biology-Office-Hours",
        "https://meet.example.edu/Biology-Office-Hours",
    )
    by_address = await jitsi.get_meeting("https://meet.example.edu/Chem-Lab?x=1")
    assert by_address.id == "Chem-Lab"
    with pytest.raises(ProviderError) as elsewhere:
        await jitsi.get_meeting("https://meet.jit.si/Chem-Lab")
    assert elsewhere.value.code == "meeting_outside_account"
    with pytest.raises(ProviderError) as invalid:
        await jitsi.get_meeting("a b")
    assert invalid.value.code == "invalid_meeting_id"


@pytest.fixture
async def zoom(harness: ToolHarness) -> AsyncIterator[ZoomDouble]:
    double = await use_zoom(harness)
    yield double
    assert double.violations == []


async def test_zoom_is_not_asked_about_ids_that_cannot_be_zoom_meetings(
    harness: ToolHarness, zoom: ZoomDouble
) -> None:
    (real,) = zoom_meetings(zoom, 1)
    zoom.requests.clear()
    parsed = service.read(
        harness.tool,
        harness.credential,
        csv_bytes([("12345", "c1", DOMAIN, ""), ("123456789012345678", "c2", DOMAIN, "")]),
    )
    batch = await service.check(
        harness.tool, harness.credential, parsed, file_name="x.csv", actor="cli"
    )
    assert [r.errors for r in batch.rows] == [
        ["12345 is not a Zoom meeting ID: a Zoom meeting ID is a number of 9 to 11 digits."],
        [
            "123456789012345678 is not a Zoom meeting ID: a Zoom meeting ID is a number of "
            "9 to 11 digits."
        ],
    ]
    assert zoom.requests_for("meeting") == []
    found = await (
        await harness.tool.providers.for_credential(harness.tool, harness.credential)
    ).get_meeting(str(real))
    assert found.host_email == "scheduler@example.edu" and found.join_url
    assert len(zoom.requests_for("user")) == 1
    await (
        await harness.tool.providers.for_credential(harness.tool, harness.credential)
    ).get_meeting(str(real))
    assert len(zoom.requests_for("user")) == 1  # the host's account is remembered
