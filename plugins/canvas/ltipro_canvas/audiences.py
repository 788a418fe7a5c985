"""A Canvas course's sections and groups, which meetings can be scheduled for.

Canvas lists them with two paginated calls (``Link`` headers followed to the end):

- ``GET /api/v1/courses/:course_id/sections``
  (https://developerdocs.instructure.com/services/canvas/resources/sections),
- ``GET /api/v1/courses/:course_id/groups``, the course's active groups
  (https://developerdocs.instructure.com/services/canvas/resources/groups).

They are read with the asking instructor's own Canvas authorisation (else the admin
token), so they list what that instructor may see. A section's students can be told
apart at launch (``canvas_section_ids=$Canvas.course.sectionIds``), a group's cannot:
Canvas has no launch variable with a user's group ids in a course, so the core shows a
group's meetings to the whole course.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ltipro.context import CourseIdentifiers
from ltipro.extension import Audience
from ltipro.hookspecs import hookimpl
from ltipro.lmsapi import LmsApi
from ltipro_canvas.api import CanvasClient


def _audiences(kind: str, items: list[Any]) -> list[Audience]:
    out: list[Audience] = []
    for item in items:
        if not isinstance(item, Mapping) or item.get("id") is None:
            continue
        ident = str(item["id"])
        name = str(item.get("name") or "").strip() or f"{kind.capitalize()} {ident}"
        out.append(Audience("section" if kind == "section" else "group", ident, name))
    return out


async def list_audiences(client: CanvasClient) -> list[Audience]:
    """The course's sections, then its groups, in the order Canvas lists them."""
    course = client.course_id
    sections = await client.get_all(f"/api/v1/courses/{course}/sections")
    groups = await client.get_all(f"/api/v1/courses/{course}/groups")
    return _audiences("section", sections) + _audiences("group", groups)


@hookimpl
async def course_audiences(
    course: CourseIdentifiers, settings: Mapping[str, Any], api: LmsApi
) -> list[Audience]:
    """The course's sections and groups, from Canvas's REST API."""
    return await list_audiences(CanvasClient(api, course))
