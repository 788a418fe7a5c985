"""Zoom meetings end to end: attendance reports, cloud recordings and their publishing,
webhooks, the host's start link and ZAK kept from everyone else, Zoom's daily limit."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from html import unescape
from typing import Any

import pytest
from zoom_support import WEBHOOK_SECRET, Browser, ZoomCourse, student, teacher, use_zoom

from ltipro.testing.harness import ToolHarness
from ltipro.testing.zoom_double import sign_webhook


@pytest.fixture
async def zoom(harness: ToolHarness) -> AsyncIterator[ZoomCourse]:
    course = await use_zoom(harness)
    course.double.add_user("teacher@example.edu", type=2)
    course.double.add_user("student@example.edu", type=2)
    yield course
    assert course.double.violations == [], "requests outside Zoom's document"


def attendee(name: str, email: str, start: datetime, minutes: int) -> dict[str, Any]:
    return {
        "name": name,
        "user_email": email,
        "join_time": start,
        "leave_time": start + timedelta(minutes=minutes),
    }


async def held_meeting(
    zoom: ZoomCourse,
    host: Browser,
    topic: str,
    sessions: int = 1,
    awkward_uuid: bool = False,
    **form: str,
) -> tuple[str, list[str]]:
    """A meeting scheduled through the page, then held ``sessions`` times in the past."""
    uid = await host.schedule(topic, **form)
    start = await zoom.move_to_past(uid, days=sessions * 7)
    number = await zoom.zoom_id(uid)
    uuids = []
    for week in range(sessions):
        when = start + timedelta(weeks=week)
        instance = zoom.double.hold_meeting(
            number,
            start_time=when,
            participants=[
                attendee("Ada Lovelace", "ada@example.edu", when, 45),
                attendee('=HYPERLINK("https://evil.example")', "-2+3@example.edu", when, 10),
            ],
            # Zoom's awkward UUIDs: starting with "/" and holding "//".
            uuid="/ab//cd+ef==" if awkward_uuid and week == 0 else None,
        )
        uuids.append(instance.uuid)
    return uid, uuids


# -- attendance ------------------------------------------------------------------------------


async def test_attendance_report_per_occurrence_with_a_csv_that_spreadsheets_cannot_run(
    zoom: ZoomCourse,
) -> None:
    instructor = await zoom.launch(teacher())
    uid, uuids = await held_meeting(
        zoom,
        instructor,
        "Weekly lab",
        sessions=2,
        awkward_uuid=True,
        repeat="weekly",
        end_times="4",
    )
    page = await instructor.post("/meetings")
    assert f'action="/meetings/{uid}/attendance"' in page.text
    report = await instructor.post(f"/meetings/{uid}/attendance")
    assert report.status_code == 200
    text = unescape(report.text)
    assert [f'data-session="{u}"' in text for u in uuids] == [True, True]
    assert text.count("Ada Lovelace") == 2
    download = await instructor.post(f"/meetings/{uid}/attendance.csv", instance=uuids[0])
    assert download.status_code == 200
    assert download.headers["content-type"].startswith("text/csv")
    assert "attachment" in download.headers["content-disposition"]
    rows = list(csv.reader(io.StringIO(download.text)))
    assert rows[0][:2] == ["Name", "Email"]
    assert rows[1] == ["Ada Lovelace", "ada@example.edu", rows[1][2], rows[1][3], "45"]
    # Cells a spreadsheet would run as formulas start with a quote.
    assert rows[2][:2] == ['\'=HYPERLINK("https://evil.example")', "'-2+3@example.edu"]
    api = await instructor.api("GET", f"/api/v1/meetings/{uid}/attendance")
    assert [s["id"] for s in api.json()["sessions"]] == uuids
    as_csv = await instructor.api(
        "GET", f"/api/v1/meetings/{uid}/attendance.csv", params={"session": uuids[1]}
    )
    assert as_csv.status_code == 200 and "'=HYPERLINK" in as_csv.text
    # The first UUID starts with "/" and holds "//": Zoom needs it double encoded.
    paths = [r.raw_path for r in zoom.calls("reportMeetingParticipants")]
    assert "/v2/report/meetings/%252Fab%252F%252Fcd%252Bef%253D%253D/participants" in paths


async def test_attendance_report_off_hides_reports_and_asks_zoom_nothing(
    zoom: ZoomCourse,
) -> None:
    await zoom.options(attendance_report=False)
    instructor = await zoom.launch(teacher())
    uid, _ = await held_meeting(zoom, instructor, "Lecture")
    page = await instructor.post("/meetings")
    assert f'data-held="{uid}"' in page.text
    assert f"/meetings/{uid}/attendance" not in page.text
    assert "data-no-reports" in page.text
    refused = await instructor.post(f"/meetings/{uid}/attendance")
    assert refused.status_code == 403
    api = await instructor.api("GET", f"/api/v1/meetings/{uid}/attendance")
    assert api.status_code == 403 and api.json()["error"] == "no_reports"
    assert zoom.calls("reportMeetingParticipants") == [] and zoom.calls("pastMeetings") == []


async def test_students_never_see_attendance_not_even_of_the_meeting_they_hosted(
    zoom: ZoomCourse,
) -> None:
    await zoom.options(students_may_host=True)
    learner = await zoom.launch(student())
    uid, _ = await held_meeting(zoom, learner, "Study group")
    page = await learner.post("/meetings")
    assert f'data-held="{uid}"' in page.text and f"/meetings/{uid}/attendance" not in page.text
    assert (await learner.post(f"/meetings/{uid}/attendance")).status_code == 403
    assert (await learner.api("GET", f"/api/v1/meetings/{uid}/attendance")).status_code == 403
    assert zoom.calls("reportMeetingParticipants") == []
    instructor = await zoom.launch(teacher())
    assert (await instructor.post(f"/meetings/{uid}/attendance")).status_code == 200


# -- recordings ------------------------------------------------------------------------------


async def two_recorded_meetings(zoom: ZoomCourse) -> dict[str, tuple[str, str]]:
    """An instructor's and a student's meeting, each held once and recorded."""
    await zoom.options(students_may_host=True)
    instructor = await zoom.launch(teacher())
    lecture, (lecture_rec,) = await held_meeting(zoom, instructor, "Lecture")
    learner = await zoom.launch(student())
    group, (group_rec,) = await held_meeting(zoom, learner, "Study group")
    return {"lecture": (lecture, lecture_rec), "group": (group, group_rec)}


def recording_ids(response: Any) -> set[str]:
    return {r["id"] for r in response.json()["recordings"]}


async def test_recording_link_off_shows_students_no_recordings(zoom: ZoomCourse) -> None:
    held = await two_recorded_meetings(zoom)
    learner = await zoom.launch(student("other"))
    assert "data-recordings-off" in learner.page.text
    zoom.forget_requests()
    listing = await learner.api("GET", "/api/v1/recordings")
    assert listing.json() == {"recordings": []}
    assert zoom.double.requests == []
    instructor = await zoom.launch(teacher())
    seen = await instructor.api("GET", "/api/v1/recordings")
    assert recording_ids(seen) == {held["lecture"][1], held["group"][1]}


async def test_recording_link_all_shows_students_every_recording_with_its_links(
    zoom: ZoomCourse,
) -> None:
    held = await two_recorded_meetings(zoom)
    await zoom.options(recording_link_for_students="all")
    learner = await zoom.launch(student("other"))
    page = await learner.post("/meetings/recordings")
    text = unescape(page.text)
    for _, recording in held.values():
        assert f'data-recording="{recording}"' in text
    instance = next(i for i in zoom.double.instances if i.uuid == held["lecture"][1])
    for file in instance.recording_files or []:
        assert f'href="{file["play_url"]}"' in text and f'href="{file["download_url"]}"' in text
    assert "/recordings/publish" not in text and "/recordings/delete" not in text
    assert recording_ids(await learner.api("GET", "/api/v1/recordings")) == {
        held["lecture"][1],
        held["group"][1],
    }


async def test_recording_link_published_shows_students_what_instructors_publish(
    zoom: ZoomCourse,
) -> None:
    held = await two_recorded_meetings(zoom)
    await zoom.options(recording_link_for_students="published")
    learner = await zoom.launch(student("other"))
    assert recording_ids(await learner.api("GET", "/api/v1/recordings")) == set()
    instructor = await zoom.launch(teacher())
    lecture, lecture_rec = held["lecture"]
    published = await instructor.post(
        f"/meetings/{lecture}/recordings/publish", recording_id=lecture_rec, published="1"
    )
    assert published.status_code == 200 and "Published the recording" in unescape(published.text)
    assert recording_ids(await learner.api("GET", "/api/v1/recordings")) == {lecture_rec}
    everything = await instructor.post("/meetings/recordings/publish-all", published="1")
    assert 'data-publish-all="on"' in everything.text
    assert recording_ids(await learner.api("GET", "/api/v1/recordings")) == {
        lecture_rec,
        held["group"][1],
    }
    stop = await instructor.api("POST", "/api/v1/recordings/publish-all", json={"published": False})
    assert stop.json() == {"publish_all": False}
    assert recording_ids(await learner.api("GET", "/api/v1/recordings")) == {lecture_rec}
    withdrawn = await instructor.api(
        "POST",
        f"/api/v1/meetings/{lecture}/recordings/publish",
        json={"recording_id": lecture_rec, "published": False},
    )
    assert withdrawn.status_code == 200
    assert recording_ids(await learner.api("GET", "/api/v1/recordings")) == set()
    # Students publish nothing.
    refused = await learner.api("POST", "/api/v1/recordings/publish-all", json={"published": True})
    assert refused.status_code == 403


async def test_instructors_delete_a_student_meetings_recording_and_students_cannot(
    zoom: ZoomCourse,
) -> None:
    held = await two_recorded_meetings(zoom)
    group, group_rec = held["group"]
    learner = await zoom.launch(student())  # the student who hosted it
    refused = await learner.post(f"/meetings/{group}/recordings/delete", recording_id=group_rec)
    assert refused.status_code == 403
    instructor = await zoom.launch(teacher())
    page = await instructor.post("/meetings/recordings")
    assert f'data-recording="{group_rec}"' in unescape(page.text)
    lecture = held["lecture"][0]
    wrong = await instructor.post(f"/meetings/{lecture}/recordings/delete", recording_id=group_rec)
    assert wrong.status_code == 404  # a recording of another meeting is not this one's
    deleted = await instructor.post(f"/meetings/{group}/recordings/delete", recording_id=group_rec)
    assert deleted.status_code == 200
    (call,) = zoom.calls("recordingDelete")
    assert call.method == "DELETE" and ("action", "trash") in call.query
    assert recording_ids(await instructor.api("GET", "/api/v1/recordings")) == {held["lecture"][1]}


# -- webhooks --------------------------------------------------------------------------------


async def test_webhook_answers_the_validation_challenge_and_refuses_unsigned_requests(
    zoom: ZoomCourse,
) -> None:
    client = zoom.harness.client
    body, headers = sign_webhook(
        WEBHOOK_SECRET,
        {"event": "endpoint.url_validation", "payload": {"plainToken": "qgg8vlvZRS6UYooatFL8Aw"}},
    )
    answer = await client.post("/webhooks/zoom/test", content=body, headers=headers)
    assert answer.status_code == 200
    assert answer.json()["plainToken"] == "qgg8vlvZRS6UYooatFL8Aw"
    assert len(answer.json()["encryptedToken"]) == 64
    unsigned = await client.post(
        "/webhooks/zoom/test", content=body, headers={"content-type": "application/json"}
    )
    assert unsigned.status_code == 401
    forged, _ = sign_webhook("another-secret", {"event": "meeting.ended", "payload": {}})
    bad = await client.post("/webhooks/zoom/test", content=forged, headers=headers)
    assert bad.status_code == 401
    unknown = await client.post("/webhooks/zoom/nobody", content=body, headers=headers)
    assert unknown.status_code == 404


async def test_recording_completed_marks_the_meeting_and_retries_are_recorded_once(
    zoom: ZoomCourse,
) -> None:
    instructor = await zoom.launch(teacher())
    uid, (uuid,) = await held_meeting(zoom, instructor, "Lecture")
    instance = next(i for i in zoom.double.instances if i.uuid == uuid)
    page = await instructor.post("/meetings")
    assert "data-recording-ready" not in page.text
    for expected in ("recorded", "duplicate"):
        body, headers = sign_webhook(
            WEBHOOK_SECRET, zoom.double.recording_completed_event(instance)
        )
        answer = await zoom.harness.client.post(
            "/webhooks/zoom/test", content=body, headers=headers
        )
        assert answer.json() == {"status": expected}
    ended_body, ended_headers = sign_webhook(
        WEBHOOK_SECRET, zoom.double.meeting_ended_event(instance)
    )
    ended = await zoom.harness.client.post(
        "/webhooks/zoom/test", content=ended_body, headers=ended_headers
    )
    assert ended.json() == {"status": "recorded"}
    page = await instructor.post("/meetings")
    row = page.text.split(f'data-held="{uid}"')[1].split("</tr>")[0]
    assert "data-recording-ready" in row
    other = zoom.double.recording_completed_event(instance)
    other["payload"]["account_id"] = "someone-else"
    body, headers = sign_webhook(WEBHOOK_SECRET, other)
    ignored = await zoom.harness.client.post("/webhooks/zoom/test", content=body, headers=headers)
    assert ignored.json() == {"status": "ignored"}


# -- the host's credentials ------------------------------------------------------------------


async def test_a_student_never_receives_the_hosts_start_url_or_zak(zoom: ZoomCourse) -> None:
    await zoom.options(meeting_link_auto_login=True)
    instructor = await zoom.launch(teacher())
    uid = await instructor.schedule("Lecture")
    started = await instructor.post(f"/meetings/{uid}/start")
    assert started.status_code == 303
    meeting = zoom.double.meetings[await zoom.zoom_id(uid)]
    host_start = started.headers["location"]
    assert host_start == f"https://zoom.us/s/{meeting.id}?zak={meeting.zak}"
    api_start = await instructor.api("POST", f"/api/v1/meetings/{uid}/start")
    assert api_start.json()["start_url"] == host_start
    host_join = await instructor.post(f"/meetings/{uid}/join")  # the host's own ZAK is issued
    host_id = zoom.double.user_by_email("teacher@example.edu").id  # type: ignore[union-attr]
    host_zaks = {
        json.loads(r.response)["token"]
        for r in zoom.calls("userToken")
        if r.raw_path == f"/v2/users/{host_id}/token"
    }
    assert host_zaks and all(z in host_join.headers["location"] for z in host_zaks)
    secrets = {meeting.zak, host_start, *host_zaks}

    learner = await zoom.launch(student())
    seen = [
        learner.page,
        await learner.post("/meetings"),
        await learner.post(f"/meetings/{uid}/start"),
        await learner.post(f"/meetings/{uid}/join"),
        await learner.api("GET", "/api/v1/meetings"),
        await learner.api("GET", f"/api/v1/meetings/{uid}"),
        await learner.api("POST", f"/api/v1/meetings/{uid}/start"),
        await learner.api("POST", f"/api/v1/meetings/{uid}/join"),
        await learner.api("GET", "/api/v1/me"),
    ]
    assert seen[2].status_code == 403 and seen[6].status_code == 403
    for response in seen:
        exposed = response.text + json.dumps(dict(response.headers))
        for secret in secrets:
            assert secret not in exposed
    # The student's join link carries the student's own key only.
    own = seen[7].json()["join_url"]
    student_id = zoom.double.user_by_email("student@example.edu").id  # type: ignore[union-attr]
    assert f"zak=zak-{student_id}-" in own


async def test_the_daily_create_limit_is_explained_to_the_instructor(zoom: ZoomCourse) -> None:
    zoom.double.daily_meeting_limit = 1
    instructor = await zoom.launch(teacher())
    await instructor.schedule("First")
    refused = await instructor.post(
        "/meetings/schedule",
        topic="Second",
        duration="30",
        date=(datetime.now(UTC) + timedelta(days=1)).date().isoformat(),
        time="11:00",
    )
    assert refused.status_code == 429
    text = unescape(refused.text)
    assert "limit is reached for today" in text and "Try again after 00:00 UTC" in text
    assert len(instructor.meeting_ids()) == 1
