"""What plugins declare to the core: their LMS, settings, artefacts and examples.

Plain data, returned from the hooks in :mod:`ltipro.hookspecs`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal


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
class CalendarEvent:
    """A meeting as an LMS calendar shows it.

    ``marker`` is a stable string put into the event (its description) so a retried
    create finds the event it already made.
    """

    marker: str
    title: str
    start: datetime
    end: datetime
    timezone: str
    join_url: str
    description: str = ""
    recurrence: str | None = None
