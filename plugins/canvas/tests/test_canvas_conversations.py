"""Course notices go to the Canvas Inbox (``notify_course``), once, to whom they are for."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from canvas_course_support import STUDENT_TOKEN, TEACHER_TOKEN, World, make_world
from ltipro_canvas.conversations import notify_course
from ltipro_canvas.testing import CanvasDouble
from ltipro_canvas.testing_conversations import CanvasCourseDouble

from ltipro.extension import Audience, CourseNotice
from ltipro.lmsapi import LmsNotAuthorized, LmsRequestRefused, LmsUnavailable
from ltipro.plugins import Plugins

BASE = "https://school.instructure.com"


def notice(key: str = "meeting:abc123:scheduled", **changes: object) -> CourseNotice:
    values: dict[str, object] = {
        "kind": "meeting_scheduled",
        "subject": "New meeting: Week 1 seminar",
        "body": "Week 1 seminar is on Mon 7 Dec 2026, 10:00 (America/Chicago).",
        "url": "https://tool.test/meetings",
        "key": key,
    }
    values.update(changes)
    return CourseNotice(**values)  # type: ignore[arg-type]


@pytest.fixture
async def world() -> AsyncIterator[World]:
    made = make_world()
    yield made
    await made.http.aclose()


def posts(world: World) -> list[list[tuple[str, str]]]:
    return [r.form for r in world.double.requests if r.method == "POST"]


def received(world: World) -> dict[int, int]:
    """How many conversations each member of the course received."""
    members = [world.teacher, world.ta, *world.students]
    return {m: len(world.double.inbox(m)) for m in members}


async def test_a_whole_course_notice_is_one_bulk_message_in_the_course(world: World) -> None:
    assert await notify_course(world.identifiers, notice(), {}, world.api()) is True
    assert posts(world) == [
        [
            ("recipients[]", "course_12"),
            ("subject", "New meeting: Week 1 seminar"),
            (
                "body",
                "Week 1 seminar is on Mon 7 Dec 2026, 10:00 (America/Chicago).\n\n"
                "https://tool.test/meetings\n\n[ltipro:meeting:abc123:scheduled]",
            ),
            ("group_conversation", "true"),
            ("bulk_message", "true"),
            ("mode", "async"),
            ("context_code", "course_12"),
        ]
    ]
    # Each member gets a conversation of their own; the sender none.
    assert received(world) == {
        world.teacher: 0,
        world.ta: 1,
        **{s: 1 for s in world.students},
    }
    assert all(len(c.participants) == 2 for c in world.double.sent_by(world.teacher))


async def test_before_sending_the_senders_recent_messages_are_checked(world: World) -> None:
    await notify_course(world.identifiers, notice(), {}, world.api())
    gets = [(r.path, r.query) for r in world.double.requests if r.method == "GET"]
    assert gets == [
        ("/api/v1/conversations/batches", []),
        (
            "/api/v1/conversations",
            [("scope", "sent"), ("filter[]", "course_12"), ("per_page", "50")],
        ),
    ]


async def test_a_notice_for_sections_and_a_group_reaches_only_their_members(
    world: World,
) -> None:
    audience = (Audience("section", "42", "Thursday lab"), Audience("group", "77", "Project A"))
    await notify_course(world.identifiers, notice(audience=audience), {}, world.api())
    [form] = posts(world)
    assert [v for k, v in form if k == "recipients[]"] == ["section_42", "group_77"]
    assert ("context_code", "course_12") in form
    sam, kim, lee, ray = world.students
    assert received(world) == {world.teacher: 0, world.ta: 0, sam: 0, kim: 1, lee: 1, ray: 0}


async def test_a_retry_after_canvas_took_the_message_but_the_answer_was_lost_sends_nothing(
    world: World,
) -> None:
    world.double.lose_next_answer("POST", "/api/v1/conversations")
    with pytest.raises(LmsUnavailable):
        await notify_course(world.identifiers, notice(), {}, world.api())
    assert set(received(world).values()) == {0, 1}  # Canvas delivered it all the same
    assert await notify_course(world.identifiers, notice(), {}, world.api()) is True
    assert len(posts(world)) == 1
    opened = [r for r in world.double.requests if r.path.startswith("/api/v1/conversations/1")]
    assert opened and opened[0].query == [("auto_mark_as_read", "false")]
    assert received(world)[world.students[0]] == 1


async def test_a_retry_while_canvas_is_still_delivering_the_batch_sends_nothing() -> None:
    world = make_world(CanvasCourseDouble(deliver_batches_at_once=False))
    try:
        world.double.lose_next_answer("POST", "/api/v1/conversations")
        with pytest.raises(LmsUnavailable):
            await notify_course(world.identifiers, notice(), {}, world.api())
        assert await notify_course(world.identifiers, notice(), {}, world.api()) is True
        assert len(posts(world)) == 1
        world.double.deliver_batches()
        assert received(world)[world.students[0]] == 1
    finally:
        await world.http.aclose()


async def test_another_notice_with_the_same_subject_is_still_sent(world: World) -> None:
    await notify_course(world.identifiers, notice("meeting:abc123:scheduled"), {}, world.api())
    await notify_course(world.identifiers, notice("meeting:def456:scheduled"), {}, world.api())
    assert len(posts(world)) == 2
    assert received(world)[world.students[0]] == 2


async def test_a_refused_recipient_form_is_a_refusal_not_a_retry(world: World) -> None:
    # "course_section_41" is not a form Canvas's address book reads: it names nobody.
    response = await world.http.post(
        f"{BASE}/api/v1/conversations",
        data={"recipients[]": "course_section_41", "body": "hi", "subject": "s"},
        headers={"Authorization": f"Bearer {TEACHER_TOKEN}"},
    )
    assert (response.status_code, response.json()) == (
        400,
        [{"attribute": "recipients", "message": "invalid"}],
    )
    unknown = (Audience("section", "9999", "Gone"),)
    with pytest.raises(LmsRequestRefused, match="answered 400"):
        await notify_course(world.identifiers, notice(audience=unknown), {}, world.api())


async def test_a_student_may_not_message_the_whole_course(world: World) -> None:
    with pytest.raises(LmsRequestRefused, match="restricted by role"):
        await notify_course(world.identifiers, notice(), {}, world.api("lti-s", STUDENT_TOKEN))
    assert all(count == 0 for count in received(world).values())


async def test_the_double_refuses_more_than_100_recipients_without_bulk_message(
    world: World,
) -> None:
    for number in range(101):
        world.double.enrol(world.double.add_user(500 + number, f"S{number}"), world.course)
    fields = {"recipients[]": "course_12", "body": "hello", "group_conversation": "true"}
    headers = {"Authorization": f"Bearer {TEACHER_TOKEN}"}
    response = await world.http.post(f"{BASE}/api/v1/conversations", data=fields, headers=headers)
    assert response.status_code == 400
    assert response.json() == [
        {"attribute": "recipients", "message": "too many for group conversation"}
    ]
    assert await notify_course(world.identifiers, notice(), {}, world.api()) is True
    assert len(world.double.inbox(500)) == 1


async def test_the_double_refuses_a_message_without_body_or_recipients(world: World) -> None:
    headers = {"Authorization": f"Bearer {TEACHER_TOKEN}"}
    url = f"{BASE}/api/v1/conversations"
    no_body = await world.http.post(url, data={"recipients[]": "course_12"}, headers=headers)
    assert no_body.json() == [{"attribute": "body", "message": "blank"}]
    no_one = await world.http.post(url, data={"body": "hi"}, headers=headers)
    assert no_one.json() == [{"attribute": "recipients", "message": "blank"}]
    anonymous = await world.http.post(url, data={"recipients[]": "course_12", "body": "hi"})
    assert anonymous.status_code == 401


async def test_a_sender_who_has_not_connected_canvas_is_told_how(world: World) -> None:
    with pytest.raises(LmsNotAuthorized, match="Connect Canvas"):
        await notify_course(world.identifiers, notice(), {}, world.api(user_id=None))
    assert world.double.requests == []


async def test_a_long_subject_is_cut_to_what_canvas_accepts(world: World) -> None:
    await notify_course(world.identifiers, notice(subject="x" * 400), {}, world.api())
    [form] = posts(world)
    assert dict(form)["subject"] == "x" * 255


async def test_the_plugin_answers_notify_course_through_the_plugin_manager(world: World) -> None:
    plugins = Plugins.load(["canvas"])
    sent = await plugins.call_lms(
        "canvas",
        "notify_course",
        course=world.identifiers,
        notice=notice(),
        settings={},
        api=world.api(),
    )
    assert sent is True
    assert len(posts(world)) == 1


async def test_other_paths_reach_the_canvas_double_behind_it() -> None:
    calendar = CanvasDouble()
    calendar.add_course("12", teachers=["7"])
    access, _ = calendar.issue_token("7")
    world = make_world(CanvasCourseDouble(fallback=calendar))
    try:
        listed = await world.http.get(
            f"{BASE}/api/v1/calendar_events",
            params={"context_codes[]": "course_12", "all_events": "true"},
            headers={"Authorization": f"Bearer {access}"},
        )
        assert (listed.status_code, listed.json()) == (200, [])
        assert [r.path for r in calendar.requests] == ["/api/v1/calendar_events"]
        await notify_course(world.identifiers, notice(), {}, world.api())
        assert calendar.requests[-1].path == "/api/v1/calendar_events"
    finally:
        await world.http.aclose()


async def test_a_bulk_notice_is_in_the_senders_sent_scope_but_not_their_inbox(
    world: World,
) -> None:
    await notify_course(world.identifiers, notice(), {}, world.api())
    headers = {"Authorization": f"Bearer {TEACHER_TOKEN}"}
    inbox = await world.http.get(f"{BASE}/api/v1/conversations", headers=headers)
    sent = await world.http.get(
        f"{BASE}/api/v1/conversations", params={"scope": "sent"}, headers=headers
    )
    assert inbox.json() == []
    assert {c["subject"] for c in sent.json()} == {"New meeting: Week 1 seminar"}
    assert len(sent.json()) == 5  # the TA and four students, one conversation each
    student = await world.http.get(
        f"{BASE}/api/v1/conversations", headers={"Authorization": f"Bearer {STUDENT_TOKEN}"}
    )
    assert [c["last_message"][:13] for c in student.json()] == ["Week 1 semina"]
