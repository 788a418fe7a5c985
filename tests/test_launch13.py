"""Complete LTI 1.3 launches against the app, with a platform the tests run themselves."""

from __future__ import annotations

from ltipro.storage.schema import courses, launch_log
from ltipro.testing.harness import ToolHarness

CLAIM = "https://purl.imsglobal.org/spec/lti/claim/"

INSTRUCTOR = {
    "sub": "user-1",
    "name": "Ada Lovelace",
    "email": "Ada@Example.edu",
    CLAIM + "roles": ["http://purl.imsglobal.org/vocab/lis/v2/membership#Instructor"],
    CLAIM + "context": {"id": "course-1", "title": "Analytical Engines", "label": "AE101"},
    CLAIM + "resource_link": {"id": "link-1"},
    CLAIM + "launch_presentation": {"return_url": "https://LMS.example.edu:443/courses/1"},
}


async def test_complete_launch_opens_the_course_page_and_a_session(harness: ToolHarness) -> None:
    page = await harness.launch13(INSTRUCTOR)
    assert page.status_code == 200, page.text
    assert "Analytical Engines" in page.text
    me = await harness.me(page)
    assert me["user"]["id"] == "user-1"
    assert me["email"] == "ada@example.edu"
    assert me["role"] == "instructor"
    assert me["course"]["context_id"] == "course-1"
    assert me["lms"] == "generic"
    assert me["credential"] == "test"
    assert me["domain"] == "lms.example.edu"
    assert await harness.tool.repo.count(courses) == 1
    log = await harness.tool.repo.recent_launches()
    assert [(r.outcome, r.lms) for r in log] == [("ok", "generic")]
    assert await harness.tool.repo.count(launch_log) == 1
