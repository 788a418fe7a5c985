"""The launch as the LMS sent it, and the one normalized launch context built from it.

These are plain data: LMS plugins build them, the core applies the credential's options
to them, pages and the API read them. Nothing here imports Starlette, SQLAlchemy or httpx.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

LTI13 = "1.3"
LTI11 = "1.1"

CLAIM = "https://purl.imsglobal.org/spec/lti/claim/"


@dataclass(frozen=True)
class LaunchMessage:
    """A validated launch, before any LMS-specific reading.

    ``claims`` holds the decoded ``id_token`` body for LTI 1.3 and the form parameters
    for LTI 1.1. ``configured_lms`` is the LMS the admin chose for the registration
    (``None`` for LTI 1.1 consumer keys, which are not tied to one LMS).
    """

    version: Literal["1.3", "1.1"]
    claims: Mapping[str, Any]
    credential: str
    configured_lms: str | None = None
    issuer: str | None = None
    client_id: str | None = None
    deployment_id: str | None = None

    def claim(self, name: str, default: Any = None) -> Any:
        """An LTI 1.3 claim by its short name (``"context"`` for ``.../claim/context``)."""
        return self.claims.get(CLAIM + name, default)

    @property
    def custom(self) -> dict[str, str]:
        """Custom parameters without their ``custom_`` prefix, values as strings."""
        if self.version == LTI13:
            raw = self.claim("custom") or {}
            if not isinstance(raw, Mapping):
                return {}
            return {str(k): _text(v) for k, v in raw.items()}
        return {
            k[len("custom_") :]: _text(v) for k, v in self.claims.items() if k.startswith("custom_")
        }

    @property
    def product_family_code(self) -> str | None:
        """What the LMS says it is (``canvas``, ``moodle``, ``desire2learn``, ...)."""
        if self.version == LTI13:
            platform = self.claim("tool_platform") or {}
            code = platform.get("product_family_code") if isinstance(platform, Mapping) else None
        else:
            code = self.claims.get("tool_consumer_info_product_family_code")
        return str(code) if code else None


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


@dataclass(frozen=True)
class CourseIdentifiers:
    """How a course is known: the LTI ``context_id`` and the LMS's own course id.

    ``history`` lists the context ids of the courses this one was copied from (newest
    first), where the LMS sends them, so a copied course can take over their meetings.
    """

    context_id: str
    lms_course_id: str | None = None
    title: str | None = None
    label: str | None = None
    history: tuple[str, ...] = ()
    # The LMS's host name, filled in by the core when it calls an LMS hook for a course
    # it recorded (launches carry the domain on the launch context instead).
    domain: str | None = None


@dataclass(frozen=True)
class LaunchContext:
    """The one normalized form of a launch, whatever the LMS and LTI version.

    ``roles`` holds readable role names (``Instructor``, ``Teaching Assistant``,
    ``Course Builder``, ``Learner``, ...), which the credential's instructor roles are
    compared against; ``raw_roles`` keeps what the LMS sent. ``attributes`` holds the
    launch's LTI attributes in their LTI 1.1 names (``lis_person_contact_email_primary``,
    ``custom_*``, ...) for the options that read an attribute by name.
    """

    lms: str
    lti_version: str
    credential: str
    user_id: str | None
    course: CourseIdentifiers | None
    domain: str
    name: str | None = None
    given_name: str | None = None
    family_name: str | None = None
    email: str | None = None
    username: str | None = None
    roles: tuple[str, ...] = ()
    raw_roles: tuple[str, ...] = ()
    timezone: str | None = None
    locale: str | None = None
    resource_link_id: str | None = None
    return_url: str | None = None
    message_type: str = "LtiResourceLinkRequest"
    attributes: Mapping[str, str] = field(default_factory=dict)

    @property
    def anonymous(self) -> bool:
        """An LTI 1.3 launch without ``sub``: a visitor the LMS did not identify."""
        return self.user_id is None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["attributes"] = dict(self.attributes)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LaunchContext:
        values = dict(data)
        course = values.get("course")
        if course is not None:
            course = dict(course)
            course["history"] = tuple(course.get("history") or ())
            values["course"] = CourseIdentifiers(**course)
        values["roles"] = tuple(values.get("roles") or ())
        values["raw_roles"] = tuple(values.get("raw_roles") or ())
        return cls(**values)
