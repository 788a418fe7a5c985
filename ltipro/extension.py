"""What plugins declare to the core: their LMS, settings, artefacts and examples.

Plain data, returned from the hooks in :mod:`ltipro.hookspecs`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from ltipro.context import LaunchContext


@dataclass(frozen=True)
class LmsDetails:
    """The LMS a plugin serves.

    ``name`` is the plugin's name (``canvas``) and what admins type in
    ``--lms``; ``product_family_codes`` are the codes the LMS sends in
    ``tool_platform.product_family_code`` (1.3) or
    ``tool_consumer_info_product_family_code`` (1.1). ``missing_email_help``
    tells an admin which LMS setting makes the LMS share email addresses.
    """

    name: str
    title: str
    product_family_codes: tuple[str, ...] = ()
    missing_email_help: str = (
        "Ask the LMS administrator to share the launching user's email address with the tool."
    )
    lms_course_id_parameter: str | None = None


@dataclass(frozen=True)
class ExampleLaunch:
    """A realistic launch of one LMS, for the simulator and the conformance kit.

    For LTI 1.3, ``claims`` holds the ``id_token`` claims the platform signs (the
    simulator fills in ``iss``, ``aud``, ``nonce``, ``exp``, ``iat`` and the deployment);
    for LTI 1.1, the form parameters before signing. ``expected`` lists fields of the
    resulting :class:`~ltipro.context.LaunchContext` the conformance kit checks.
    ``source`` names where the payload was published.
    """

    lms: str
    name: str
    version: Literal["1.3", "1.1"]
    role: Literal["instructor", "student", "admin", "ta"]
    claims: Mapping[str, Any]
    expected: Mapping[str, Any] = field(default_factory=dict)
    source: str = ""
    title: str = ""


@dataclass(frozen=True)
class CustomParameter:
    """A custom parameter an LMS admin adds so an attribute arrives in launches.

    ``name=value`` is what the admin types into the LMS's tool configuration, where
    ``value`` is the LMS's substitution variable (``$Canvas.account.name``); ``help``
    says where in the LMS to type it.
    """

    name: str
    value: str
    help: str = ""

    @property
    def line(self) -> str:
        return f"{self.name}={self.value}"


@dataclass(frozen=True)
class SettingSpec:
    """A setting a plugin declares, shown and validated on the configuration page.

    ``scope`` is ``credential`` (one value per credential) or ``platform`` (one per LMS
    platform registration). ``validate`` takes the submitted text and returns the value
    to store or raises :class:`ValueError` with a message for the admin.
    ``secret`` values are encrypted at rest and never shown again.
    """

    plugin: str
    key: str
    label: str
    scope: Literal["credential", "platform"] = "credential"
    help: str = ""
    default: Any = None
    secret: bool = False
    choices: Sequence[str] | None = None
    validate: Callable[[str], Any] | None = None

    def clean(self, raw: str) -> Any:
        """Validate submitted text into the stored value."""
        if self.choices is not None and raw not in self.choices:
            raise ValueError(f"{self.label} must be one of: {', '.join(self.choices)}")
        return self.validate(raw) if self.validate else raw


@dataclass(frozen=True)
class RegistrationArtifact:
    """A piece of tool configuration an admin pastes into an LMS.

    ``kind`` tells how to show it: ``json`` (Canvas developer key), ``xml`` (LTI 1.1
    cartridge), ``url`` (a dynamic-registration URL) or ``values`` (a table of fields for
    an LMS form, in ``content`` as ``name: value`` lines).
    """

    lms: str
    title: str
    kind: Literal["json", "xml", "url", "values"]
    content: str
    help: str = ""


@dataclass(frozen=True)
class Audience:
    """A part of a course a meeting can be for: a section or a group (Canvas has both).

    ``id`` is the LMS's own id of the section or group; ``name`` is what people see.
    """

    kind: Literal["section", "group"]
    id: str
    name: str

    @property
    def key(self) -> str:
        """``section:<id>`` or ``group:<id>``: how a meeting stores its audience."""
        return f"{self.kind}:{self.id}"


@dataclass(frozen=True)
class CalendarEvent:
    """A meeting (one occurrence of it) as an LMS calendar shows it.

    ``marker`` is a stable string the plugin puts into the event (its description) so a
    retried create finds the event it already made, and reconciliation recognises the
    tool's events. The core sends each occurrence of a recurring meeting as an event of
    its own, so plugins never translate recurrence rules; ``recurrence`` is a readable
    description of the series for the event's text only. ``audience`` is empty for the
    whole course, or the sections and groups the meeting is for.
    """

    marker: str
    title: str
    start: datetime
    end: datetime
    timezone: str
    join_url: str
    description: str = ""
    recurrence: str | None = None
    audience: tuple[Audience, ...] = ()


@dataclass(frozen=True)
class LmsCalendarEvent:
    """An event as found in an LMS calendar (by ``calendar_list_events``).

    ``marker`` is the tool's marker read back from the event, ``None`` for events the tool
    did not make.
    """

    id: str
    title: str
    start: datetime | None
    end: datetime | None
    marker: str | None


@dataclass(frozen=True)
class CourseNotice:
    """A message to a course's members, sent by an LMS plugin that can (Canvas Conversations).

    ``kind`` is ``meeting_scheduled`` or ``recording_published``; ``audience`` narrows the
    recipients to sections or groups (empty: the whole course); ``key`` is the notice's
    idempotency key, for a plugin that can look for a message it already sent.
    """

    kind: Literal["meeting_scheduled", "recording_published"]
    subject: str
    body: str
    url: str
    key: str
    audience: tuple[Audience, ...] = ()


@dataclass(frozen=True)
class PageContext:
    """Who is looking at a course's meetings page, for ``page_notices``.

    ``launch`` is the normalized launch context (user, course, roles, attributes);
    ``role`` is ``instructor`` or ``student`` as the credential's options decide it;
    ``may_schedule`` says whether this person may schedule meetings here;
    ``calendar_sync`` whether the credential sends meetings to the LMS calendar.
    """

    launch: LaunchContext
    role: Literal["instructor", "student"]
    may_schedule: bool
    calendar_sync: bool


@dataclass(frozen=True)
class PageNotice:
    """A short notice on the course's meetings page, with one button.

    ``action_url`` is a path of the tool itself (``/plugins/canvas/oauth/start``): a
    ``post`` action is a form that carries the page's session field, a ``get`` action a
    link. ``new_window`` opens the action in a new window, as pages that refuse to be
    framed (an LMS's sign-in) need. ``key`` names the notice in the page
    (``data-notice``), for scripts and tests.
    """

    text: str
    action_label: str
    action_url: str
    method: Literal["post", "get"] = "post"
    new_window: bool = False
    key: str = ""


ConnectionStatus = Literal["connected", "not_connected", "needs_reconnecting", "not_set_up"]


@dataclass(frozen=True)
class AdminConnection:
    """An authorisation an admin gives once in the admin console (a service connection).

    ``key`` names the connection within its plugin (``brightspace``); ``label`` is what
    the admin reads; ``status`` one of ``connected``, ``not_connected``,
    ``needs_reconnecting`` or ``not_set_up`` (settings missing: ``detail`` says which),
    and ``detail`` a sentence about it. ``start`` makes a fresh URL to send the admin's
    browser to, called only when the admin presses the button (``action_label``); the
    URL is never put in a page, so a one-time link cannot be copied from it. ``None``
    offers no button.
    """

    key: str
    label: str
    status: ConnectionStatus
    detail: str = ""
    action_label: str = "Connect"
    start: Callable[[], Awaitable[str]] | None = field(default=None, compare=False)
