"""A Canvas course in the sections, groups and Conversations double, and an API handle to it.

The course: Biology 101 (Canvas id 12) with two sections besides the default one, a
project group, a teacher who authorised the tool, a TA and four students.
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx
from ltipro_canvas.testing_conversations import CanvasCourse, CanvasCourseDouble

from ltipro.context import CourseIdentifiers
from ltipro.lmsapi import LmsApi, MemoryTokenStore, StoredToken

HOST = "school.instructure.com"
TEACHER_LTI_ID = "lti-teacher-1"
TEACHER_TOKEN = "canvas-token-teacher"
STUDENT_TOKEN = "canvas-token-student"


async def public_address(host: str) -> list[str]:
    """Test hosts resolve to a public address (never contacted: requests stay in-process)."""
    return ["93.184.215.14"]


@dataclass
class World:
    double: CanvasCourseDouble
    course: CanvasCourse
    identifiers: CourseIdentifiers
    http: httpx.AsyncClient
    teacher: int
    ta: int
    students: list[int]
    monday: int
    thursday: int
    project: int

    def api(self, user_id: str | None = TEACHER_LTI_ID, token: str = TEACHER_TOKEN) -> LmsApi:
        """The handle a hook gets, calling Canvas as ``user_id`` (their stored grant)."""
        tokens = MemoryTokenStore({user_id: StoredToken(token)} if user_id else {})
        return LmsApi(
            http=self.http,
            settings={},
            tokens=tokens,
            credential_id=1,
            user_id=user_id,
            resolver=public_address,
        )


def make_world(double: CanvasCourseDouble | None = None) -> World:
    double = double or CanvasCourseDouble()
    course = double.add_course(12, "Biology 101")
    monday = double.add_section(course, "Monday lab", section_id=41)
    thursday = double.add_section(course, "Thursday lab", section_id=42)
    teacher = double.add_user(1, "Ada Teacher", token=TEACHER_TOKEN)
    ta = double.add_user(2, "Tom Assistant")
    students = [
        double.add_user(10, "Sam Student", token=STUDENT_TOKEN),
        double.add_user(11, "Kim Student"),
        double.add_user(12, "Lee Student"),
        double.add_user(13, "Ray Student"),
    ]
    double.enrol(teacher, course, "teacher")
    double.enrol(ta, course, "ta", section=monday)
    double.enrol(students[0], course, "student", section=monday)
    double.enrol(students[1], course, "student", section=monday)
    double.enrol(students[2], course, "student", section=thursday)
    double.enrol(students[3], course, "student")
    project = double.add_group(course, "Project team A", members=students[1:3], group_id=77)
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=double))
    identifiers = CourseIdentifiers(context_id="ctx-bio-101", lms_course_id="12", domain=HOST)
    return World(
        double, course, identifiers, http, teacher, ta, students, monday, thursday, project
    )
