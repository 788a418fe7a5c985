"""How each credential option is shown, explained and typed, for people and for scripts.

The admin console draws its configuration page from :data:`FIELDS`; ``ltipro config``
reads and writes values in the text forms :func:`value_from_text` and
:func:`value_as_text` define; the configuration API takes JSON values. All three check
changes with :func:`check_changes`, which asks :meth:`CredentialOptions.updated` about
each option, so the rules live in :mod:`ltipro.options` alone and every mistake is
reported against the option it concerns.

Domain rules only: no web or database imports.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any, Literal

from ltipro.options import OPTION_NAMES, CredentialOptions, OptionError

Control = Literal["checkbox", "select", "text", "textarea", "url", "number", "list", "rows"]


@dataclass(frozen=True)
class Section:
    id: str
    title: str
    intro: str = ""


@dataclass(frozen=True)
class OptionField:
    """One option as the configuration page shows it.

    ``control`` is the form control: ``list`` is one item per line, ``rows`` a table
    whose ``columns`` are the parts of each entry. ``choices`` pairs each value with
    the words an admin reads.
    """

    name: str
    section: str
    label: str
    help: str
    control: Control
    choices: tuple[tuple[str, str], ...] = ()
    columns: tuple[str, ...] = ()
    # For rows: one entry as JSON, shown when ``ltipro config set`` is given something else.
    example: str = ""


SECTIONS: tuple[Section, ...] = (
    Section(
        "people",
        "Instructors and students",
        "Who manages a course's meetings, and what students may do.",
    ),
    Section(
        "identity",
        "Matching users to their meetings account",
        "The email address links an LMS user to their meetings account; the time zone "
        "decides how meeting times are shown and scheduled.",
    ),
    Section("joining", "Joining meetings"),
    Section(
        "accounts",
        "Creating and upgrading accounts",
        "What happens when a user who launches the tool has no meetings account in the "
        "credential's account, or only a Basic one.",
    ),
    Section("meetings", "Meetings, reports and recordings"),
    Section(
        "errors",
        "When a launch is refused",
        "Most refusals come from users whose meetings account belongs to another "
        "account than this credential's. Tell them what to do instead.",
    ),
    Section("training", "The Get Training link"),
    Section("domains", "Approved domains"),
    Section("import", "Importing meetings from CSV"),
)

AUDIENCE = (
    ("none", "Nobody"),
    ("instructors", "Instructors only"),
    ("everyone", "Instructors and students"),
)

FIELDS: tuple[OptionField, ...] = (
    OptionField(
        "instructor_roles",
        "people",
        "Roles that make a user an instructor",
        "One role per line. A user with any of these LMS roles schedules, starts and "
        "manages the course's meetings; everyone else is a student. Case and spaces do "
        "not matter, so TeachingAssistant matches Teaching Assistant. The usual roles are "
        "Administrator, Instructor, Teaching Assistant and Course Builder.",
        "list",
    ),
    OptionField(
        "students_may_host",
        "people",
        "Students may schedule and host meetings",
        "Students can create meetings of their own, for study groups for example. Nobody "
        "gets an attendance report of a meeting a student hosts; instructors can still "
        "see and delete its recordings, which students see as the recording setting "
        "below allows; only instructors are made alternative hosts of it.",
        "checkbox",
    ),
    OptionField(
        "email_attribute",
        "identity",
        "Email address from LTI attributes",
        "Leave empty to use the email address the LMS sends. Otherwise name one attribute "
        "holding the whole address (custom_zoom_email), two attributes joined by @ "
        "(user_name@user_domain), or an attribute and a domain (user_name@example.edu): "
        "after the @, an attribute of that name is used when the launch carries one and "
        "the text itself otherwise. Names match with or without the custom_ prefix.",
        "text",
    ),
    OptionField(
        "timezone_origin",
        "identity",
        "Where a user's time zone comes from",
        "From the LMS, the user's zone is read from custom_person_address_timezone (add "
        "it as a custom parameter in the LMS); a user without one gets the default time "
        "zone.",
        "select",
        choices=(
            ("tool", "This tool: everyone gets the default time zone"),
            ("lms", "The LMS, or the default time zone when the LMS sends none"),
        ),
    ),
    OptionField(
        "default_timezone",
        "identity",
        "Default time zone",
        "A time zone name such as America/New_York or Europe/Berlin.",
        "text",
    ),
    OptionField(
        "meeting_link_auto_login",
        "joining",
        "Join links sign users in to the meetings app",
        "A join link on the tool's pages opens the meetings app already signed in to the "
        "user's account. Links the tool puts in LMS calendars never sign anyone in: "
        "everyone who can read the calendar could use them.",
        "checkbox",
    ),
    OptionField(
        "auto_login_via_lms_idp",
        "joining",
        "Sign in through the LMS's identity provider",
        "Users who signed in to the LMS with single sign-on join meetings signed in "
        "through the same identity provider. This needs the LMS and the meetings account "
        "to use one identity provider, and users who are single sign-on users.",
        "checkbox",
    ),
    OptionField(
        "auto_provision",
        "accounts",
        "Create accounts for users who have none",
        "A user with no account in the credential's meetings account gets one when they "
        "launch the tool. When their email domain is an associated domain of the account "
        "they are added at once; otherwise they must answer the activation email first.",
        "select",
        choices=AUDIENCE,
    ),
    OptionField(
        "auto_provision_user_type",
        "accounts",
        "Type of the accounts created",
        "On-Prem works only where the meetings account still offers it.",
        "select",
        choices=(("basic", "Basic"), ("licensed", "Licensed"), ("on_prem", "On-Prem")),
    ),
    OptionField(
        "whitelisted_email_domains",
        "accounts",
        "Create accounts only for these email domains",
        "One domain per line. Empty: every user the setting above covers gets an account. "
        "Otherwise only users whose email address is in one of these domains.",
        "list",
    ),
    OptionField(
        "auto_upgrade",
        "accounts",
        "Upgrade Basic users who use the tool",
        "Changes a Basic user to the type below when they use the tool.",
        "select",
        choices=AUDIENCE,
    ),
    OptionField(
        "auto_upgrade_user_type",
        "accounts",
        "Type to upgrade to",
        "Licensed is the type once called Pro. Corp is retired and works only where the "
        "meetings account still offers it.",
        "select",
        choices=(("licensed", "Licensed (formerly Pro)"), ("corp", "Corp")),
    ),
    OptionField(
        "auto_populate_alternative_host",
        "meetings",
        "Make the course's instructors alternative hosts",
        "Every instructor of the course becomes an alternative host of the meetings "
        "scheduled in it, so any of them can start one. Leave it off on a credential that "
        "imports meetings from CSV, or the importing admin becomes an alternative host.",
        "checkbox",
    ),
    OptionField(
        "attendance_report",
        "meetings",
        "Show attendance reports",
        "Previous meetings show who attended, with a CSV export. Turn it off to hide "
        "attendance from the tool.",
        "checkbox",
    ),
    OptionField(
        "recording_link_for_students",
        "meetings",
        "Cloud recording links for students",
        "What students see of cloud recordings, in previous meetings and on the recordings tab.",
        "select",
        choices=(
            ("off", "None: students see no recordings"),
            ("all", "All: every recording, once the meeting is over"),
            ("published", "Published: the recordings an instructor has published"),
        ),
    ),
    OptionField(
        "calendar_sync",
        "meetings",
        "Sync meetings to the LMS calendar",
        "Each meeting scheduled, changed or deleted in the tool is put into the course's "
        "calendar in the LMS, one event per occurrence, for LMSs whose plugin can (Canvas, "
        "Moodle, D2L Brightspace, Blackboard Learn) once its API access is set up. Turning "
        "it off stops further changes; events already in calendars stay.",
        "checkbox",
    ),
    OptionField(
        "notify_course",
        "meetings",
        "Notify the course in the LMS",
        "When a meeting is scheduled or a recording is published, the course (or the "
        "sections and groups the meeting is for) gets a message through the LMS, for LMSs "
        "whose plugin can send one (Canvas Conversations) once its API access is set up. "
        "Each meeting and each recording is announced once, however often it is published.",
        "checkbox",
    ),
    OptionField(
        "tracking_fields",
        "meetings",
        "Tracking fields from LTI attributes",
        "Each meeting scheduled in the tool gets these tracking fields, set from an LTI "
        "attribute of the launch (a College field from custom_college, for example), so "
        "the account's dashboard can filter meetings by them. With LTI 1.3 the LMS sends "
        "the attribute only as a custom parameter: each LMS's setup page lists the one to "
        "add. Leave a row empty to remove it.",
        "rows",
        columns=("Tracking field", "LTI attribute"),
        example='[["College", "custom_college"]]',
    ),
    OptionField(
        "group_rules",
        "meetings",
        "Groups by LTI attribute",
        "An instructor whose launch carries the attribute with this value is added to the "
        "group. An attribute name also matches with custom_ in front: group matches "
        "custom_group. Leave a row empty to remove it.",
        "rows",
        columns=("LTI attribute", "Value", "Group ID"),
        example='[["custom_department", "Physics", "physics-group-id"]]',
    ),
    OptionField(
        "launch_error_message",
        "errors",
        "Message for refused users",
        "Shown to a user whose meetings account is outside the credential's account, and "
        "on launches from a domain that is not approved. Empty: the tool's own message.",
        "textarea",
    ),
    OptionField(
        "sign_in_url",
        "errors",
        "Sign-in URL",
        "Shown with the message as a Sign in button: usually your account's or "
        "sub-account's own sign-in address (its vanity URL).",
        "url",
    ),
    OptionField(
        "training_link_url",
        "training",
        "Get Training link",
        "Where the Get Training link on the tool's pages leads: your own training or "
        "support pages. Empty: no link.",
        "url",
    ),
    OptionField(
        "training_link_text",
        "training",
        "Get Training link text",
        "The words of the link.",
        "text",
    ),
    OptionField(
        "approved_domains",
        "domains",
        "Approved domains",
        "One domain per line, without https:// or a trailing /. Launches from any other "
        "domain are refused, and only pages on these domains may show the tool in a "
        "frame. List every address your users reach the LMS by.",
        "list",
    ),
    OptionField(
        "csv_import_max_rows",
        "import",
        "Most meetings in one CSV file",
        "A larger file is refused whole. The installation's LTIPRO_IMPORT_MAX_ROWS "
        "(1,000 by default) is the most this can be.",
        "number",
    ),
)

FIELDS_BY_NAME: dict[str, OptionField] = {f.name: f for f in FIELDS}

EVERY_DOMAIN_WARNING = (
    "No approved domains: launches from every domain are accepted, and any web site may "
    "show the tool in a frame."
)


class InvalidOptions(OptionError):
    """Option changes that cannot be applied, each mistake under its option's name."""

    def __init__(self, errors: Mapping[str, str]) -> None:
        self.errors = dict(errors)
        super().__init__("; ".join(self.errors.values()))


def check_changes(current: CredentialOptions, changes: Mapping[str, Any]) -> CredentialOptions:
    """The options with ``changes`` applied, or :class:`InvalidOptions` naming every mistake.

    Each change is checked on its own first, so one mistake does not hide the next.
    """
    errors: dict[str, str] = {}
    for key, value in changes.items():
        try:
            current.updated({key: value})
        except OptionError as exc:
            errors[key] = str(exc)
    if errors:
        raise InvalidOptions(errors)
    try:
        return current.updated(changes)
    except OptionError as exc:  # a rule between options, should one be added
        raise InvalidOptions({"": str(exc)}) from None


# -- text forms, for the command line ------------------------------------------------------


def value_from_text(name: str, text: str) -> Any:
    """What ``ltipro config set NAME=TEXT`` means for an option, before validation.

    A list is comma-separated values or a JSON array; rows (tracking fields, group
    rules) are a JSON array of arrays; everything else is the text itself, which the
    option's validator reads (``true``/``false``, numbers, names).
    """
    field = FIELDS_BY_NAME.get(name)
    if field is None:
        raise InvalidOptions({name: f"there is no option called {name!r}"})
    stripped = text.strip()
    if field.control == "rows":
        if not stripped:
            return []
        try:
            return json.loads(stripped)
        except ValueError:
            parts = " / ".join(field.columns)
            raise InvalidOptions(
                {name: f"{name} takes a JSON list of rows ({parts}), such as {field.example}"}
            ) from None
    if field.control == "list":
        if stripped.startswith("["):
            try:
                return json.loads(stripped)
            except ValueError:
                raise InvalidOptions(
                    {name: f"{name}: {stripped!r} is neither a JSON list nor comma-separated"}
                ) from None
        return stripped
    return text


def value_as_text(name: str, value: Any) -> str:
    """An option's stored value in the form :func:`value_from_text` reads back."""
    field = FIELDS_BY_NAME[name]
    if field.control == "checkbox":
        return "true" if value else "false"
    if field.control == "rows":
        return json.dumps([list(row) for row in value], ensure_ascii=False)
    if field.control == "list":
        return ",".join(value)
    return str(value)


def undescribed_options() -> list[str]:
    """Options without an entry in :data:`FIELDS` (a test keeps this empty)."""
    described = {f.name for f in FIELDS}
    return [name for name in OPTION_NAMES if name not in described]


def _fallback(name: str) -> OptionField:
    # An option added without a description still appears, plainly, rather than vanish
    # from the page or break it.
    default = {f.name: f.default for f in fields(CredentialOptions)}[name]
    control: Control = (
        "checkbox"
        if isinstance(default, bool)
        else "number"
        if isinstance(default, int)
        else "list"
        if isinstance(default, tuple)
        else "text"
    )
    return OptionField(name, SECTIONS[-1].id, name.replace("_", " ").capitalize(), "", control)


FIELDS_BY_NAME.update({name: _fallback(name) for name in undescribed_options()})


def fields_in(section: str) -> list[OptionField]:
    """The options of one section of the configuration page, in order."""
    return [f for f in FIELDS_BY_NAME.values() if f.section == section]
