"""The plugin contract: every hook an LMS plugin (or any plugin) may implement.

Two kinds of hooks:

- **Broadcast hooks** are called on every loaded plugin (``lms_details``,
  ``identify_lms``, ``example_launches``, ``plugin_settings``, ``plugin_routes``,
  ``plugin_migrations``, ``meetings_providers``).
- **LMS hooks** are called only on the plugin of the LMS that sent the launch, and only
  when the credential has that plugin enabled (``launch_context``,
  ``course_identifiers``, ``custom_parameter``, ``attribute_value``,
  ``registration_artifacts``, ``calendar_create_event``, ``calendar_update_event``,
  ``calendar_delete_event``, ``calendar_list_events``, ``course_audiences``,
  ``notify_course``, ``page_notices``, ``admin_connections``). The plugin does not need
  to check which LMS it is.

Any hook may return a value, a callable or an awaitable; the core resolves each with
:func:`ltipro.utils.await_me_maybe`. The hooks the core reads from synchronous code, at
start-up or in the simulator (``lms_details``, ``example_launches``, ``plugin_routes``,
``plugin_migrations``, ``meetings_providers``), take a value or a callable only. None uses ``firstresult``: the
core collects every answer and takes them in order (the last-registered plugin first,
built-in plugins last).

Every hook is documented with its full signature in ``docs/plugins.md``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from starlette.routing import BaseRoute

    from ltipro.context import CourseIdentifiers, LaunchContext, LaunchMessage
    from ltipro.extension import (
        AdminConnection,
        Audience,
        CalendarEvent,
        CourseNotice,
        CustomParameter,
        ExampleLaunch,
        LmsCalendarEvent,
        LmsDetails,
        PageContext,
        PageNotice,
        RegistrationArtifact,
        SettingSpec,
    )
    from ltipro.lmsapi import LmsApi
    from ltipro.providers.base import ProviderSpec
    from ltipro.storage.repository import Credential, Platform
    from ltipro.tool import Tool

PROJECT = "ltipro"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def lms_details() -> LmsDetails:
    """Describe the LMS this plugin serves.

    Called once when the plugin loads. Example::

        @hookimpl
        def lms_details():
            return LmsDetails(name="canvas", title="Canvas", product_family_codes=("canvas",))
    """


@hookspec
def identify_lms(message: LaunchMessage) -> str | None:
    """Say whether a launch came from this plugin's LMS: return its name, or ``None``.

    Called on every loaded plugin, enabled for the credential or not, so a launch from a
    disabled LMS is recognised and refused with a reason. Example::

        @hookimpl
        def identify_lms(message):
            if message.product_family_code == "canvas":
                return "canvas"
    """


@hookspec
def launch_context(message: LaunchMessage) -> LaunchContext:
    """Turn the LMS's raw claims into the normalized launch context (LMS hook).

    Raise :class:`ltipro.lti.errors.LaunchError` for claims the LMS should never send;
    the user sees its message and the launch log records it. Example::

        @hookimpl
        def launch_context(message):
            context = generic_launch_context(message, lms="canvas")
            return replace(context, username=message.custom.get("canvas_user_login_id"))
    """


@hookspec
def course_identifiers(message: LaunchMessage) -> CourseIdentifiers | None:
    """Name the launch's course: its LTI ``context_id`` and the LMS's own course id (LMS hook).

    Used for the launch context, CSV import and calendar sync. Return ``None`` for a
    launch outside a course. Example::

        @hookimpl
        def course_identifiers(message):
            context = message.claim("context") or {}
            return CourseIdentifiers(context["id"], lms_course_id=message.custom.get("canvas_course_id"))
    """


@hookspec
def custom_parameter(attribute: str) -> CustomParameter | None:
    """Tell the admin which custom parameter makes ``attribute`` arrive in launches (LMS hook).

    Asked for each LTI attribute an admin maps to a tracking field or group. Example::

        @hookimpl
        def custom_parameter(attribute):
            if attribute == "account_name":
                return CustomParameter("account_name", "$Canvas.account.name")
    """


@hookspec
def attribute_value(context: LaunchContext, name: str) -> str | None:
    """Read an attribute an admin named back from a launch (LMS hook).

    The core's default reads ``name`` or ``custom_name`` from ``context.attributes``;
    implement this only where the LMS sends the value somewhere else. Example::

        @hookimpl
        def attribute_value(context, name):
            if name == "org_unit":
                return context.attributes.get("ext_d2l_orgunit")
    """


@hookspec
def registration_artifacts(
    credential: str, base_url: str, settings: Mapping[str, Any]
) -> list[RegistrationArtifact]:
    """The configuration an admin pastes into this LMS to install the tool (LMS hook).

    ``base_url`` is the tool's public URL; ``settings`` the plugin's settings for the
    credential. Example::

        @hookimpl
        def registration_artifacts(credential, base_url, settings):
            return [RegistrationArtifact("canvas", "Developer key JSON", "json", json.dumps(...))]
    """


@hookspec
def example_launches() -> list[ExampleLaunch]:
    """Realistic launches of this plugin's LMS, for the simulator and the conformance kit.

    Example::

        @hookimpl
        def example_launches():
            return [ExampleLaunch("canvas", "teacher", "1.3", "instructor", claims={...})]
    """


@hookspec
def plugin_settings() -> list[SettingSpec]:
    """Settings this plugin needs, per credential or per platform registration.

    They appear on the credential's configuration page, are validated with the spec's
    ``validate`` and are handed back to the plugin's LMS hooks. Example::

        @hookimpl
        def plugin_settings():
            return [SettingSpec("canvas", "api_domain", "Canvas API domain", scope="platform")]
    """


@hookspec
def plugin_routes() -> list[BaseRoute]:
    """Starlette routes the plugin adds to the app (an OAuth callback, say).

    Mounted under ``/plugins/<name>/``. Example::

        @hookimpl
        def plugin_routes():
            return [Route("/oauth/callback", oauth_callback)]
    """


@hookspec
def plugin_migrations() -> str | None:
    """The folder of this plugin's Alembic migrations, for the tables it owns.

    The plugin's first migration sets ``branch_labels = ("<plugin>",)`` and
    ``depends_on`` the core's head it needs; ``ltipro db upgrade`` runs every branch.
    Example::

        @hookimpl
        def plugin_migrations():
            return str(Path(__file__).parent / "migrations")
    """


@hookspec
def meetings_providers() -> list[ProviderSpec]:
    """Meetings providers this plugin offers (Zoom, Jitsi, ...), with their settings.

    Called once at start-up; an admin picks one provider per credential. Synchronous
    only. Example::

        @hookimpl
        def meetings_providers():
            return [ProviderSpec("bbb", "BigBlueButton", settings=[...], factory=make_bbb)]
    """


@hookspec
async def calendar_create_event(
    course: CourseIdentifiers, event: CalendarEvent, settings: Mapping[str, Any], api: LmsApi
) -> str | None:
    """Create the LMS calendar event of a meeting and return the LMS's event id (LMS hook).

    Called by the job queue after the meeting is saved, once per occurrence of a
    recurring meeting. Look for an event carrying ``event.marker`` first, so a retried
    job never leaves two events. ``api`` holds the HTTP client, settings and tokens
    (:class:`ltipro.lmsapi.LmsApi`); failures are raised as :mod:`ltipro.lmsapi` errors.
    Example::

        @hookimpl
        async def calendar_create_event(course, event, settings, api):
            response = await api.http.post(f"{base}/api/v1/calendar_events", ...)
            raise_for_lms_status(response, "Canvas")
            return str(response.json()["id"])
    """


@hookspec
async def calendar_update_event(
    course: CourseIdentifiers,
    event_id: str,
    event: CalendarEvent,
    settings: Mapping[str, Any],
    api: LmsApi,
) -> str | None:
    """Change the LMS calendar event ``event_id``; return its (possibly new) id (LMS hook).

    An event that is gone at the LMS raises :class:`ltipro.lmsapi.LmsNotFound`; the core
    then creates it again. Example::

        @hookimpl
        async def calendar_update_event(course, event_id, event, settings, api):
            await api.http.put(f"{base}/api/v1/calendar_events/{event_id}", ...)
            return event_id
    """


@hookspec
async def calendar_delete_event(
    course: CourseIdentifiers, event_id: str, settings: Mapping[str, Any], api: LmsApi
) -> bool | None:
    """Delete the LMS calendar event ``event_id``; an event already gone is success (LMS hook).

    Example::

        @hookimpl
        async def calendar_delete_event(course, event_id, settings, api):
            await api.http.delete(f"{base}/api/v1/calendar_events/{event_id}")
            return True
    """


@hookspec
async def calendar_list_events(
    course: CourseIdentifiers,
    start: datetime,
    end: datetime,
    settings: Mapping[str, Any],
    api: LmsApi,
) -> list[LmsCalendarEvent] | None:
    """The course's calendar events between ``start`` and ``end`` (LMS hook).

    Used by ``ltipro calendar reconcile`` to find missing, stale, duplicate and orphaned
    events; return at least the events that carry a tool marker (``LmsCalendarEvent.marker``).
    Example::

        @hookimpl
        async def calendar_list_events(course, start, end, settings, api):
            return [LmsCalendarEvent(e["id"], e["title"], ..., marker=read_marker(e))
                    for e in await fetch_all(api, course, start, end)]
    """


@hookspec
async def course_audiences(
    course: CourseIdentifiers, settings: Mapping[str, Any], api: LmsApi
) -> list[Audience] | None:
    """The sections and groups of a course a meeting can be scheduled for (LMS hook).

    Return ``None`` when the LMS (or the plugin's configuration) cannot tell; the schedule
    form then offers the whole course only. Example::

        @hookimpl
        async def course_audiences(course, settings, api):
            sections = await fetch_sections(api, course)
            return [Audience("section", str(s["id"]), s["name"]) for s in sections]
    """


@hookspec
async def notify_course(
    course: CourseIdentifiers, notice: CourseNotice, settings: Mapping[str, Any], api: LmsApi
) -> bool | None:
    """Send a notice to the course's members through the LMS's messaging (LMS hook).

    Called by the job queue when a meeting is scheduled or a recording published and the
    credential has course notifications on. Return ``True`` once sent, ``None`` when the
    LMS cannot send messages. Example::

        @hookimpl
        async def notify_course(course, notice, settings, api):
            await api.http.post(f"{base}/api/v1/conversations", data={...})
            return True
    """


@hookspec
async def page_notices(
    context: PageContext, settings: Mapping[str, Any], api: LmsApi
) -> list[PageNotice] | None:
    """Short notices with one button each for the course's meetings page (LMS hook).

    For what only the person looking can do, such as authorising the tool in the LMS.
    ``api.user_id`` is that person. The page waits briefly and shows the page without
    the notices when the plugin is slow or fails. Example::

        @hookimpl
        async def page_notices(context, settings, api):
            if context.role == "instructor" and await api.tokens.get(api.user_id) is None:
                return [PageNotice("Connect Canvas ...", "Connect Canvas",
                                   "/plugins/canvas/oauth/start", new_window=True)]
    """


@hookspec
async def admin_connections(
    tool: Tool, credential: Credential, platform: Platform | None, settings: Mapping[str, Any]
) -> list[AdminConnection] | None:
    """Connections an admin authorises once, with their status, for the admin console (LMS hook).

    Called for the credential (``platform`` ``None``) and for each of its platform
    registrations of the plugin's LMS; ``settings`` are the plugin's effective settings
    there. The console calls a connection's ``start`` when the admin presses its button,
    and sends the browser to the URL it returns. Example::

        @hookimpl
        async def admin_connections(tool, credential, platform, settings):
            platform_id = platform.id if platform else None
            return [AdminConnection("brightspace", "Brightspace API", "not_connected",
                                    start=lambda: make_start_link(tool, credential, platform_id))]
    """


HOOK_KINDS: dict[str, str] = {
    "lms_details": "broadcast",
    "identify_lms": "broadcast",
    "example_launches": "broadcast",
    "plugin_settings": "broadcast",
    "plugin_routes": "broadcast",
    "plugin_migrations": "broadcast",
    "meetings_providers": "broadcast",
    "launch_context": "lms",
    "course_identifiers": "lms",
    "custom_parameter": "lms",
    "attribute_value": "lms",
    "registration_artifacts": "lms",
    "calendar_create_event": "lms",
    "calendar_update_event": "lms",
    "calendar_delete_event": "lms",
    "calendar_list_events": "lms",
    "course_audiences": "lms",
    "notify_course": "lms",
    "page_notices": "lms",
    "admin_connections": "lms",
}


def hook_names() -> list[str]:
    """Every hook specification in this module, in the order it is written."""
    import sys

    module = sys.modules[__name__]
    return [
        name
        for name in vars(module)
        if callable(getattr(module, name)) and hasattr(getattr(module, name), f"{PROJECT}_spec")
    ]


__all__ = ["HOOK_KINDS", "hook_names", "hookimpl", "hookspec"]
