"""The Canvas plugin lists a course's sections and groups (``course_audiences``)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace

import pytest
from canvas_course_support import STUDENT_TOKEN, World, make_world
from ltipro_canvas.audiences import course_audiences
from ltipro_canvas.testing import HOST, CanvasDouble, canvas_api, canvas_http
from ltipro_canvas.testing_conversations import CanvasCourseDouble

from ltipro.context import CourseIdentifiers
from ltipro.extension import Audience
from ltipro.lmsapi import (
    LmsNotAuthorized,
    LmsNotConfigured,
    LmsNotFound,
    LmsThrottled,
    LmsUnavailable,
    MemoryTokenStore,
    StoredToken,
)
from ltipro.plugins import Plugins


@pytest.fixture
async def world() -> AsyncIterator[World]:
    made = make_world()
    yield made
    await made.http.aclose()


async def test_sections_then_groups_are_listed_with_their_canvas_ids_and_names(
    world: World,
) -> None:
    found = await course_audiences(world.identifiers, {}, world.api())
    assert found == [
        Audience("section", str(world.course.sections[0].id), "Biology 101"),
        Audience("section", "41", "Monday lab"),
        Audience("section", "42", "Thursday lab"),
        Audience("group", "77", "Project team A"),
    ]
    requests = [(r.method, r.path, r.query) for r in world.double.requests]
    assert requests == [
        ("GET", "/api/v1/courses/12/sections", [("per_page", "100")]),
        ("GET", "/api/v1/courses/12/groups", [("per_page", "100")]),
    ]
    assert all(r.user_id == world.teacher for r in world.double.requests)


async def test_every_page_is_followed_through_the_link_header(world: World) -> None:
    for number in range(150):
        world.double.add_section(world.course, f"Extra {number:03}", section_id=1000 + number)
    found = await course_audiences(world.identifiers, {}, world.api())
    sections = [a for a in found if a.kind == "section"]
    assert len(sections) == 153
    assert sections[-1] == Audience("section", "1149", "Extra 149")
    pages = [r.query for r in world.double.requests if r.path.endswith("/sections")]
    assert pages == [[("per_page", "100")], [("page", "2"), ("per_page", "100")]]


async def test_a_course_without_sections_or_groups_gives_its_default_section_only() -> None:
    double = CanvasCourseDouble()
    course = double.add_course(5, "Seminar")
    teacher = double.add_user(1, "Ada", token="t")
    double.enrol(teacher, course, "teacher")
    world = make_world(double)  # adds course 12; course 5 stays bare
    identifiers = replace(world.identifiers, lms_course_id="5")
    found = await course_audiences(identifiers, {}, world.api(token="t"))
    assert [(a.kind, a.name) for a in found] == [("section", "Seminar")]
    await world.http.aclose()


async def test_canvas_refusing_the_user_is_told_as_not_authorised(world: World) -> None:
    outsider = world.double.add_user(99, "Outsider", token="outsider-token")
    assert outsider not in world.course.enrolments
    with pytest.raises(LmsNotAuthorized, match="answered 401"):
        await course_audiences(world.identifiers, {}, world.api("lti-outsider", "outsider-token"))


async def test_canvas_throttling_is_told_as_throttled(world: World) -> None:
    world.double.fail_next(
        "GET",
        "/api/v1/courses/12/groups",
        403,
        {"errors": [{"message": "403 Forbidden (Rate Limit Exceeded)"}]},
        {"X-Rate-Limit-Remaining": "0"},
    )
    with pytest.raises(LmsThrottled):
        await course_audiences(world.identifiers, {}, world.api())


async def test_an_unknown_course_is_not_found(world: World) -> None:
    with pytest.raises(LmsNotFound):
        await course_audiences(replace(world.identifiers, lms_course_id="404"), {}, world.api())


async def test_a_course_without_its_canvas_id_says_which_custom_field_is_missing(
    world: World,
) -> None:
    with pytest.raises(LmsNotConfigured, match=r"canvas_course_id=\$Canvas.course.id"):
        await course_audiences(replace(world.identifiers, lms_course_id=None), {}, world.api())
    assert world.double.requests == []


async def test_without_any_canvas_authorisation_nothing_is_called(world: World) -> None:
    with pytest.raises(LmsNotAuthorized, match="Connect Canvas"):
        await course_audiences(world.identifiers, {}, world.api(user_id=None))
    assert world.double.requests == []


async def test_the_double_refuses_an_unknown_token_as_canvas_does(world: World) -> None:
    response = await world.http.get(
        "https://school.instructure.com/api/v1/courses/12/sections",
        headers={"Authorization": "Bearer nobody"},
    )
    assert response.status_code == 401
    assert "WWW-Authenticate" in response.headers
    student = await world.http.get(
        "https://school.instructure.com/api/v1/courses/12/sections",
        headers={"Authorization": f"Bearer {STUDENT_TOKEN}"},
    )
    assert student.status_code == 200


async def test_the_plugin_answers_the_hook_through_the_plugin_manager(world: World) -> None:
    plugins = Plugins.load(["canvas"])
    assert plugins.implements("canvas", "course_audiences")
    found = await plugins.call_lms(
        "canvas", "course_audiences", course=world.identifiers, settings={}, api=world.api()
    )
    assert [a.key for a in found] == [
        "section:" + str(world.course.sections[0].id),
        "section:41",
        "section:42",
        "group:77",
    ]


# -- against the shared Canvas double (calendar, OAuth, throttling) --------------------------


async def test_the_shared_canvas_double_gives_the_same_listing_with_the_hosts_grant() -> None:
    canvas = CanvasDouble()
    canvas.add_course("3", sections=["31", "32"], groups=["41"], teachers=["7"])
    access, _ = canvas.issue_token("7")
    async with canvas_http(canvas) as http:
        api = canvas_api(
            canvas,
            http,
            user_id="lti-7",
            tokens=MemoryTokenStore({"lti-7": StoredToken(access)}),
        )
        course = CourseIdentifiers(context_id="ctx", lms_course_id="3", domain=HOST)
        found = await course_audiences(course, api.settings, api)
    assert [a.key for a in found] == ["section:31", "section:32", "group:41"]
    assert [a.name for a in found] == ["Section 31", "Section 32", "Group 41"]
    assert [(r.method, r.path, r.query, r.token) for r in canvas.requests] == [
        ("GET", "/api/v1/courses/3/sections", (("per_page", "100"),), access),
        ("GET", "/api/v1/courses/3/groups", (("per_page", "100"),), access),
    ]


async def test_a_timeout_of_the_shared_double_is_told_as_unavailable() -> None:
    canvas = CanvasDouble()
    canvas.add_course("3", sections=["31"], teachers=["7"])
    access, _ = canvas.issue_token("7")
    canvas.fail_next(timeout=True, path="/api/v1/courses/3/sections")
    async with canvas_http(canvas) as http:
        api = canvas_api(
            canvas, http, user_id="lti-7", tokens=MemoryTokenStore({"lti-7": StoredToken(access)})
        )
        course = CourseIdentifiers(context_id="ctx", lms_course_id="3", domain=HOST)
        with pytest.raises(LmsUnavailable, match="timed out"):
            await course_audiences(course, api.settings, api)
