"""Each configuration option, both ways, through launches and the Zoom API double.

Every test asserts the Zoom calls (or link changes) that ``docs/options.md`` says the
option causes, and their absence when the option is off. The double checks every request
against Zoom's OpenAPI document; the fixture fails a test whose requests broke it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from html import unescape

import httpx
import pytest
from zoom_support import Browser, ZoomCourse, person, student, teacher, tomorrow, use_zoom

from ltipro.providers.base import Feature
from ltipro.storage.meetings_tables import course_instructors
from ltipro.storage.schema import launch_log
from ltipro.testing.harness import ToolHarness


@pytest.fixture
async def zoom(harness: ToolHarness) -> AsyncIterator[ZoomCourse]:
    course = await use_zoom(harness)
    yield course
    assert course.double.violations == [], "requests outside Zoom's document"


# -- students may host --------------------------------------------------------------------


async def test_students_may_host_off_refuses_a_students_meeting_without_calling_zoom(
    zoom: ZoomCourse,
) -> None:
    zoom.double.add_user("student@example.edu", type=2)
    learner = await zoom.launch(student())
    assert "Schedule a meeting" not in learner.page.text
    refused = await learner.post(
        "/meetings/schedule", topic="Study group", duration="30", date="2099-01-01", time="10:00"
    )
    assert refused.status_code == 403
    assert zoom.calls("meetingCreate") == []


async def test_students_may_host_on_creates_the_meeting_on_the_students_own_zoom_user(
    zoom: ZoomCourse,
) -> None:
    own = zoom.double.add_user("student@example.edu", type=2)
    await zoom.options(students_may_host=True)
    learner = await zoom.launch(student())
    await learner.schedule("Study group")
    (create,) = zoom.calls("meetingCreate")
    assert create.raw_path == f"/v2/users/{own.id}/meetings"
    assert "(student)" in learner.page.text


# -- auto provisioning -----------------------------------------------------------------------


async def test_auto_provision_none_creates_no_zoom_user(zoom: ZoomCourse) -> None:
    await zoom.launch(teacher())
    assert zoom.calls("userCreate") == []
    assert [r.raw_path for r in zoom.calls("user")] == []  # nothing to ask Zoom at all


async def test_auto_provision_instructors_creates_basic_users_for_instructors_only(
    zoom: ZoomCourse,
) -> None:
    await zoom.options(auto_provision="instructors", auto_provision_user_type="basic")
    await zoom.launch(teacher())
    await zoom.launch(student())
    assert zoom.bodies("userCreate") == [
        {
            "action": "create",
            "user_info": {
                "email": "teacher@example.edu",
                "type": 1,
                "first_name": "Teacher",
                "last_name": "Tester",
            },
        }
    ]
    created = zoom.double.user_by_email("teacher@example.edu")
    assert created is not None and created.status == "pending"  # awaits the activation email
    assert zoom.double.user_by_email("student@example.edu") is None


async def test_auto_provision_everyone_creates_students_too_with_the_chosen_type(
    zoom: ZoomCourse,
) -> None:
    await zoom.options(auto_provision="everyone", auto_provision_user_type="licensed")
    await zoom.launch(student())
    assert [
        (b["user_info"]["email"], b["user_info"]["type"]) for b in zoom.bodies("userCreate")
    ] == [("student@example.edu", 2)]


async def test_auto_provision_uses_autocreate_for_an_associated_domain_and_no_email_is_sent(
    zoom: ZoomCourse,
) -> None:
    zoom.double.add_managed_domain("example.edu")
    zoom.double.add_managed_domain("pending.example.org", status="pending")
    await zoom.options(auto_provision="everyone")
    await zoom.launch(student())
    await zoom.launch(person("guest", domain="pending.example.org"))
    actions = [(b["user_info"]["email"], b["action"]) for b in zoom.bodies("userCreate")]
    assert actions == [
        ("student@example.edu", "autoCreate"),
        ("guest@pending.example.org", "create"),  # an unverified domain gets the email
    ]
    user = zoom.double.user_by_email("student@example.edu")
    assert user is not None and user.status == "active"
    # The account's associated domains are asked once and remembered.
    assert len(zoom.calls("accountManagedDomain")) == 1


async def test_whitelisted_domains_limit_who_is_provisioned(zoom: ZoomCourse) -> None:
    await zoom.options(auto_provision="everyone", whitelisted_email_domains=["example.edu"])
    await zoom.launch(student())
    await zoom.launch(person("visitor", domain="elsewhere.org"))
    assert [b["user_info"]["email"] for b in zoom.bodies("userCreate")] == ["student@example.edu"]


async def test_on_prem_is_sent_only_where_the_account_still_accepts_type_3(
    zoom: ZoomCourse,
) -> None:
    await zoom.options(auto_provision="everyone", auto_provision_user_type="on_prem")
    await zoom.launch(student("one"))
    # Zoom refused type 3 ("Your account can't set user type as On-prem."): Licensed, and
    # the next user is not offered type 3 again.
    await zoom.launch(student("two"))
    assert [
        (b["user_info"]["email"], b["user_info"]["type"]) for b in zoom.bodies("userCreate")
    ] == [
        ("one@example.edu", 3),
        ("one@example.edu", 2),
        ("two@example.edu", 2),
    ]


async def test_on_prem_provisions_type_3_on_an_account_that_still_has_it(
    harness: ToolHarness,
) -> None:
    zoom = await use_zoom(harness)
    zoom.double.on_prem_allowed = True
    await zoom.options(auto_provision="everyone", auto_provision_user_type="on_prem")
    await zoom.launch(student())
    assert [b["user_info"]["type"] for b in zoom.bodies("userCreate")] == [3]


async def test_a_user_of_another_zoom_account_is_refused_with_the_custom_message_and_sign_in(
    zoom: ZoomCourse,
) -> None:
    zoom.double.add_external_user("teacher@example.edu")
    await zoom.options(
        auto_provision="instructors",
        launch_error_message="Sign in to the university's Zoom first.",
        sign_in_url="https://example-edu.zoom.us/signin",
    )
    refused = await zoom.harness.launch13(teacher())
    assert refused.status_code == 403
    text = unescape(refused.text)
    assert "Sign in to the university's Zoom first." in text
    assert 'href="https://example-edu.zoom.us/signin"' in text
    assert 'data-error-code="user_outside_account"' in text
    async with zoom.harness.tool.repo.engine.connect() as conn:
        logged = (await conn.execute(launch_log.select())).all()
    assert [(r.outcome, r.code) for r in logged] == [("refused", "user_outside_account")]


async def test_without_a_custom_message_the_outside_account_refusal_says_what_happened(
    zoom: ZoomCourse,
) -> None:
    zoom.double.add_external_user("teacher@example.edu")
    await zoom.options(auto_provision="instructors")
    refused = await zoom.harness.launch13(teacher())
    assert refused.status_code == 403
    assert "belongs to another organisation" in unescape(refused.text)
    assert "Sign in</a>" not in refused.text


async def test_the_meetings_page_shows_the_custom_error_when_scheduling_meets_another_account(
    zoom: ZoomCourse,
) -> None:
    # Provisioning turned on after the launch: the schedule attempt meets code 1009.
    await zoom.options(
        launch_error_message="Use your university Zoom account.",
        sign_in_url="https://example-edu.zoom.us/",
    )
    instructor = await zoom.launch(teacher())
    zoom.double.add_external_user("teacher@example.edu")
    await zoom.options(auto_provision="instructors")
    response = await instructor.post(
        "/meetings/schedule", topic="Lecture", duration="30", **tomorrow()
    )
    assert response.status_code == 403
    text = unescape(response.text)
    assert 'data-error="user_outside_account"' in text
    assert "Use your university Zoom account." in text
    assert "data-sign-in" in text and 'href="https://example-edu.zoom.us/"' in text


# -- auto upgrade --------------------------------------------------------------------------


async def test_auto_upgrade_none_leaves_basic_users_basic(zoom: ZoomCourse) -> None:
    zoom.double.add_user("teacher@example.edu", type=1)
    await zoom.launch(teacher())
    assert zoom.calls("userUpdate") == []


async def test_auto_upgrade_instructors_makes_basic_instructors_licensed(zoom: ZoomCourse) -> None:
    zoom.double.add_user("teacher@example.edu", type=1)
    learner = zoom.double.add_user("student@example.edu", type=1)
    await zoom.options(auto_upgrade="instructors", auto_upgrade_user_type="licensed")
    await zoom.launch(teacher())
    await zoom.launch(student())
    assert zoom.bodies("userUpdate") == [{"type": 2}]
    assert learner.type == 1
    assert zoom.double.user_by_email("teacher@example.edu").type == 2  # type: ignore[union-attr]


async def test_auto_upgrade_everyone_to_corp_sends_type_3_and_falls_back_to_licensed(
    zoom: ZoomCourse,
) -> None:
    zoom.double.add_user("student@example.edu", type=1)
    await zoom.options(auto_upgrade="everyone", auto_upgrade_user_type="corp")
    await zoom.launch(student())
    assert zoom.bodies("userUpdate") == [{"type": 3}, {"type": 2}]
    # A licensed user is not upgraded again.
    zoom.forget_requests()
    await zoom.launch(student())
    assert zoom.calls("userUpdate") == []


# -- groups -------------------------------------------------------------------------------


async def test_group_rules_add_matching_instructors_to_the_group(zoom: ZoomCourse) -> None:
    group = zoom.double.add_group("Physics")
    instructor = zoom.double.add_user("teacher@example.edu", type=2)
    zoom.double.add_user("student@example.edu", type=2)
    zoom.double.add_user("chemist@example.edu", type=2)
    await zoom.options(group_rules=[["department", "physics", group]])
    await zoom.launch(teacher(department="Physics"))  # arrives as custom_department
    await zoom.launch(student(department="Physics"))  # students join no group
    await zoom.launch(teacher("chemist", department="Chemistry"))
    calls = zoom.calls("groupMembersCreate")
    assert [c.raw_path for c in calls] == [f"/v2/groups/{group}/members"]
    assert zoom.bodies("groupMembersCreate") == [{"members": [{"id": instructor.id}]}]
    zoom.forget_requests()
    await zoom.launch(teacher(department="Physics"))  # already a member: no call
    assert zoom.calls("groupMembersCreate") == []


async def test_without_group_rules_no_group_call_is_made(zoom: ZoomCourse) -> None:
    zoom.double.add_group("Physics")
    zoom.double.add_user("teacher@example.edu", type=2)
    await zoom.launch(teacher(department="Physics"))
    assert zoom.calls("groupMembersCreate") == []


# -- tracking fields ------------------------------------------------------------------------


async def test_tracking_fields_are_set_from_lti_attributes_on_create_and_update(
    zoom: ZoomCourse,
) -> None:
    zoom.double.add_user("teacher@example.edu", type=2)
    zoom.double.add_tracking_field("College")
    await zoom.options(tracking_fields=[["College", "college"], ["Term", "custom_term"]])
    instructor = await zoom.launch(teacher(college="Sciences", term="2026 Fall"))
    uid = await instructor.schedule("Lecture")
    (created,) = zoom.bodies("meetingCreate")
    assert created["tracking_fields"] == [
        {"field": "College", "value": "Sciences"},
        {"field": "Term", "value": "2026 Fall"},
    ]
    await instructor.post(f"/meetings/{uid}/update", topic="Lecture 2", duration="50", **tomorrow())
    (updated,) = zoom.bodies("meetingUpdate")
    assert updated["tracking_fields"] == created["tracking_fields"]
    meeting = zoom.double.meetings[await zoom.zoom_id(uid)]
    assert meeting.tracking_fields == created["tracking_fields"]


async def test_without_tracking_fields_meetings_carry_none(zoom: ZoomCourse) -> None:
    zoom.double.add_user("teacher@example.edu", type=2)
    instructor = await zoom.launch(teacher(college="Sciences"))
    await instructor.schedule("Lecture")
    (created,) = zoom.bodies("meetingCreate")
    assert "tracking_fields" not in created


# -- alternative hosts -----------------------------------------------------------------------


async def test_auto_populate_alternative_host_adds_the_courses_licensed_instructors(
    zoom: ZoomCourse,
) -> None:
    zoom.double.add_user("teacher@example.edu", type=2)
    zoom.double.add_user("tutor@example.edu", type=2)
    zoom.double.add_user("basic@example.edu", type=1)
    zoom.double.add_user("student@example.edu", type=2)
    await zoom.options(auto_populate_alternative_host=True, students_may_host=True)
    host = await zoom.launch(teacher())
    await zoom.launch(teacher("basic"))  # Zoom takes only licensed alternative hosts
    await zoom.launch(student())  # students never become alternative hosts
    uid = await host.schedule("Lecture")
    (created,) = zoom.bodies("meetingCreate")
    assert created["settings"]["alternative_hosts"] == ""  # the host alone so far
    zoom.forget_requests()
    await zoom.launch(teacher("tutor"))
    # The new instructor's launch updates the course's meeting, once.
    assert zoom.bodies("meetingUpdate") == [
        {"settings": {"alternative_hosts": "tutor@example.edu"}}
    ]
    zoom_id = await zoom.zoom_id(uid)
    assert zoom.double.meetings[zoom_id].settings["alternative_hosts"] == "tutor@example.edu"
    zoom.forget_requests()
    await zoom.launch(teacher("tutor"))
    assert zoom.calls("meetingUpdate") == []
    # A student's meeting gets the instructors, since students host here.
    learner = await zoom.launch(student())
    await learner.schedule("Study group")
    (student_meeting,) = zoom.bodies("meetingCreate")
    assert student_meeting["settings"]["alternative_hosts"] == (
        "teacher@example.edu;tutor@example.edu"
    )
    async with zoom.harness.tool.repo.engine.connect() as conn:
        rows = (await conn.execute(course_instructors.select())).all()
    assert {(r.email, r.eligible) for r in rows} == {
        ("teacher@example.edu", True),
        ("basic@example.edu", False),
        ("tutor@example.edu", True),
    }


async def test_without_auto_populate_meetings_keep_their_alternative_hosts_alone(
    zoom: ZoomCourse,
) -> None:
    zoom.double.add_user("teacher@example.edu", type=2)
    zoom.double.add_user("tutor@example.edu", type=2)
    host = await zoom.launch(teacher())
    await host.schedule("Lecture")
    (created,) = zoom.bodies("meetingCreate")
    assert "settings" not in created
    zoom.forget_requests()
    await zoom.launch(teacher("tutor"))
    assert zoom.double.requests == []  # the launch asks Zoom nothing


# -- join links -------------------------------------------------------------------------------


async def _scheduled(zoom: ZoomCourse) -> tuple[Browser, str]:
    zoom.double.add_user("teacher@example.edu", type=2)
    instructor = await zoom.launch(teacher())
    return instructor, await instructor.schedule("Lecture")


async def test_meeting_link_auto_login_off_joins_with_the_plain_link(zoom: ZoomCourse) -> None:
    _, uid = await _scheduled(zoom)
    zoom.double.add_user("student@example.edu", type=1)
    learner = await zoom.launch(student())
    joined = await learner.post(f"/meetings/{uid}/join")
    meeting = zoom.double.meetings[await zoom.zoom_id(uid)]
    assert joined.headers["location"] == f"https://zoom.us/j/{meeting.id}?pwd={meeting.password}"
    assert zoom.calls("userToken") == []


async def test_meeting_link_auto_login_on_adds_the_users_own_zak(zoom: ZoomCourse) -> None:
    _, uid = await _scheduled(zoom)
    own = zoom.double.add_user("student@example.edu", type=1)
    await zoom.options(meeting_link_auto_login=True)
    learner = await zoom.launch(student())
    joined = await learner.post(f"/meetings/{uid}/join")
    meeting = zoom.double.meetings[await zoom.zoom_id(uid)]
    (token_call,) = zoom.calls("userToken")
    assert token_call.raw_path == f"/v2/users/{own.id}/token"
    assert ("type", "zak") in token_call.query
    zak = httpx.URL(joined.headers["location"]).params["zak"]
    assert zak.startswith(f"zak-{own.id}-")  # the student's own key, not the host's
    assert joined.headers["location"].startswith(
        f"https://zoom.us/j/{meeting.id}?pwd={meeting.password}&zak="
    )
    # Someone without a user in the account gets the plain link (Zoom has no ZAK for them).
    guest = await zoom.launch(student("guest"))
    plain = await guest.post(f"/meetings/{uid}/join")
    assert "zak=" not in plain.headers["location"]


async def test_auto_login_never_reaches_the_link_lms_calendars_and_invitations_carry(
    zoom: ZoomCourse,
) -> None:
    instructor, uid = await _scheduled(zoom)
    await zoom.options(meeting_link_auto_login=True)
    page = await instructor.post("/meetings")
    meeting = zoom.double.meetings[await zoom.zoom_id(uid)]
    stored = f"https://zoom.us/j/{meeting.id}?pwd={meeting.password}"
    assert f"Join: {stored}\n" in unescape(page.text)  # the copy-invitation text
    assert "zak=" not in page.text
    listing = await instructor.api("GET", "/api/v1/meetings")
    assert "zak=" not in listing.text


async def test_auto_login_via_lms_idp_sends_sso_users_through_the_vanity_url(
    harness: ToolHarness,
) -> None:
    zoom = await use_zoom(harness, **{"zoom.vanity_url": "https://example-edu.zoom.us"})
    _, uid = await _scheduled(zoom)
    zoom.double.add_user("student@example.edu", type=1, sso=True)
    zoom.double.add_user("local@example.edu", type=1)
    meeting = zoom.double.meetings[await zoom.zoom_id(uid)]
    learner = await zoom.launch(student())
    before = (await learner.post(f"/meetings/{uid}/join")).headers["location"]
    assert before == f"https://zoom.us/j/{meeting.id}?pwd={meeting.password}"
    await zoom.options(auto_login_via_lms_idp=True)
    learner = await zoom.launch(student())
    sso = (await learner.post(f"/meetings/{uid}/join")).headers["location"]
    assert sso == f"https://example-edu.zoom.us/j/{meeting.id}?pwd={meeting.password}"
    local = await zoom.launch(student("local"))  # not a single sign-on user
    plain = (await local.post(f"/meetings/{uid}/join")).headers["location"]
    assert plain == before
    assert zoom.calls("userToken") == []
    assert zoom.double.violations == []


# -- training link ------------------------------------------------------------------------------


async def test_get_training_link_is_shown_only_when_set(zoom: ZoomCourse) -> None:
    page = await zoom.launch(teacher())
    assert "Get Training" not in page.page.text
    await zoom.options(
        training_link_url="https://help.example.edu/zoom", training_link_text="Zoom help"
    )
    page = await zoom.launch(teacher())
    assert (
        '<a href="https://help.example.edu/zoom" target="_blank" rel="noopener">Zoom help</a>'
        in page.page.text
    )


# -- the embedded provider ------------------------------------------------------------------------


async def test_jitsi_ignores_the_account_options_and_calls_nothing(harness: ToolHarness) -> None:
    credential = await harness.refresh_credential()
    await harness.tool.repo.set_options(
        credential,
        credential.options.updated(
            {
                "auto_provision": "everyone",
                "auto_upgrade": "everyone",
                "meeting_link_auto_login": True,
                "auto_populate_alternative_host": True,
                "tracking_fields": [["College", "college"]],
            }
        ),
    )
    instructor = Browser(harness, await harness.launch13(teacher(college="Sciences")))
    uid = await instructor.schedule("Lecture")
    learner = Browser(harness, await harness.launch13(student()))
    joined = await learner.post(f"/meetings/{uid}/join")
    assert joined.headers["location"].startswith("https://meet.jit.si/Lecture-")
    provider = await harness.tool.providers.for_credential(harness.tool, credential)
    assert not provider.has(Feature.PROVISIONING) and not provider.has(Feature.AUTO_LOGIN)
    outbound = [r.url.host for r in harness.transport.requests]
    assert "api.zoom.us" not in outbound
