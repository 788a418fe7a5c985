"""A credential's configuration options, their defaults and their validation.

Domain rules only: no web or database imports. Each option is described in
``docs/options.md``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from ltipro.utils import normalize_domain

DEFAULT_INSTRUCTOR_ROLES = ("Administrator", "Instructor", "Teaching Assistant", "Course Builder")


class OptionError(ValueError):
    """An option value the tool cannot use; the message names the option."""


@dataclass(frozen=True)
class CredentialOptions:
    """Every option on a credential's configuration page."""

    instructor_roles: tuple[str, ...] = DEFAULT_INSTRUCTOR_ROLES
    # Empty: the LMS's email. Else an attribute name, ``name_attr@domain_attr`` or
    # ``name_attr@literal.domain`` (the part after @ is an attribute if the launch has one).
    email_attribute: str = ""
    timezone_origin: str = "tool"  # "tool" or "lms"
    default_timezone: str = "UTC"
    approved_domains: tuple[str, ...] = ()
    launch_error_message: str = ""
    sign_in_url: str = ""
    students_may_host: bool = False
    meeting_link_auto_login: bool = False
    auto_login_via_lms_idp: bool = False
    auto_provision: str = "none"  # none / instructors / everyone
    auto_provision_user_type: str = "basic"  # basic / licensed / on_prem
    whitelisted_email_domains: tuple[str, ...] = ()
    auto_populate_alternative_host: bool = False
    attendance_report: bool = True
    recording_link_for_students: str = "off"  # off / all / published
    auto_upgrade: str = "none"  # none / instructors / everyone
    auto_upgrade_user_type: str = "licensed"  # licensed / corp
    tracking_fields: tuple[tuple[str, str], ...] = ()  # (field name, LTI attribute)
    group_rules: tuple[tuple[str, str, str], ...] = ()  # (attribute, value, group id)
    training_link_url: str = ""
    training_link_text: str = "Get Training"
    csv_import_max_rows: int = 1000
    # Meetings go into the course's LMS calendar where the LMS plugin supports it.
    calendar_sync: bool = True
    # Meetings scheduled and recordings published are announced in the LMS (Canvas
    # Conversations), by a course.notify job.
    notify_course: bool = False

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in data.items()}

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> CredentialOptions:
        """Options as stored; unknown keys (from a newer version) are ignored."""
        known = {f.name for f in fields(cls)}
        values: dict[str, Any] = {}
        for key, value in (data or {}).items():
            if key not in known:
                continue
            if isinstance(value, list):
                value = tuple(tuple(v) if isinstance(v, list) else v for v in value)
            values[key] = value
        return cls(**values)

    def updated(self, changes: Mapping[str, Any]) -> CredentialOptions:
        """A copy with ``changes`` validated and applied (raises :class:`OptionError`)."""
        data = self.to_json()
        for key, value in changes.items():
            if key not in data:
                raise OptionError(f"there is no option called {key!r}")
            data[key] = VALIDATORS.get(key, _same)(key, value)
        return CredentialOptions.from_json(data)


def _same(_key: str, value: Any) -> Any:
    return value


def _role_list(key: str, value: Any) -> list[str]:
    items = _list(key, value)
    if not items:
        raise OptionError("at least one role must identify an instructor")
    return items


def _list(key: str, value: Any) -> list[str]:
    if isinstance(value, str):
        value = [v for v in re.split(r"[,\n]", value)]
    if not isinstance(value, (list, tuple)):
        raise OptionError(f"{key} must be a list")
    return [str(v).strip() for v in value if str(v).strip()]


def _domains(key: str, value: Any) -> list[str]:
    out = []
    for item in _list(key, value):
        domain = normalize_domain(item)
        if (
            not domain
            or not re.fullmatch(r"[a-z0-9.-]+", domain)
            or ("." not in domain and domain != "localhost")
        ):
            raise OptionError(f"{key}: {item!r} is not a domain name")
        out.append(domain)
    return out


def _choice(*choices: str) -> Any:
    def check(key: str, value: Any) -> str:
        if value not in choices:
            raise OptionError(f"{key} must be one of: {', '.join(choices)}")
        return str(value)

    return check


def _bool(key: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise OptionError(f"{key} must be true or false")


def _timezone(key: str, value: Any) -> str:
    name = str(value).strip()
    if not valid_timezone(name):
        raise OptionError(f"{key}: {name!r} is not a time zone name (such as America/New_York)")
    return name


def _url_or_empty(key: str, value: Any) -> str:
    text = str(value or "").strip()
    if text and not re.match(r"^https?://[^\s/]+", text):
        raise OptionError(f"{key} must be an http(s) URL")
    return text


def _email_attribute(key: str, value: Any) -> str:
    text = str(value or "").strip()
    if text.count("@") > 1 or text.startswith("@") or text.endswith("@"):
        raise OptionError(
            f"{key} must be an attribute name, name_attribute@domain_attribute or "
            "name_attribute@domain"
        )
    return text


def _positive_int(key: str, value: Any) -> int:
    # true is not 1, and 2.5 rows is no number of rows.
    if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
        raise OptionError(f"{key} must be a whole number")
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise OptionError(f"{key} must be a whole number") from None
    if number < 1:
        raise OptionError(f"{key} must be at least 1")
    return number


def _pairs(size: int) -> Any:
    def check(key: str, value: Any) -> list[list[str]]:
        if not isinstance(value, (list, tuple)):
            raise OptionError(f"{key} must be a list")
        out = []
        for item in value:
            if not isinstance(item, (list, tuple)) or len(item) != size:
                raise OptionError(f"each entry of {key} must have {size} parts")
            parts = [str(part).strip() for part in item]
            # A row with a blank part would match nothing or set nothing: a mistake.
            if not all(parts):
                raise OptionError(f"each entry of {key} needs all {size} parts filled in")
            out.append(parts)
        return out

    return check


def _text(max_length: int) -> Any:
    def check(key: str, value: Any) -> str:
        if value is None:
            return ""
        if not isinstance(value, str):
            raise OptionError(f"{key} must be text")
        text = value.strip()
        if len(text) > max_length:
            raise OptionError(f"{key} must be at most {max_length} characters")
        return text

    return check


VALIDATORS: dict[str, Any] = {
    "instructor_roles": _role_list,
    "email_attribute": _email_attribute,
    "timezone_origin": _choice("tool", "lms"),
    "default_timezone": _timezone,
    "approved_domains": _domains,
    "launch_error_message": _text(2000),
    "sign_in_url": _url_or_empty,
    "students_may_host": _bool,
    "meeting_link_auto_login": _bool,
    "auto_login_via_lms_idp": _bool,
    "auto_provision": _choice("none", "instructors", "everyone"),
    "auto_provision_user_type": _choice("basic", "licensed", "on_prem"),
    "whitelisted_email_domains": _domains,
    "auto_populate_alternative_host": _bool,
    "attendance_report": _bool,
    "recording_link_for_students": _choice("off", "all", "published"),
    "auto_upgrade": _choice("none", "instructors", "everyone"),
    "auto_upgrade_user_type": _choice("licensed", "corp"),
    "tracking_fields": _pairs(2),
    "group_rules": _pairs(3),
    "training_link_url": _url_or_empty,
    "training_link_text": _text(100),
    "csv_import_max_rows": _positive_int,
    "calendar_sync": _bool,
    "notify_course": _bool,
}

_TIMEZONES: set[str] = set()


def valid_timezone(name: str) -> bool:
    """Whether ``name`` is an IANA time zone this machine knows."""
    if not _TIMEZONES:
        _TIMEZONES.update(available_timezones())
    if name in _TIMEZONES:
        return True
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


OPTION_NAMES: tuple[str, ...] = tuple(f.name for f in fields(CredentialOptions))
