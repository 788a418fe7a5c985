"""What each credential option asks of the meetings provider, as plain decisions.

Domain rules only (no web framework, database or HTTP): the providers and the
meetings service ask these functions, so the rules read the same wherever they apply.
Every rule here is described, with the provider calls it causes, in ``docs/options.md``.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping, Sequence

from ltipro.options import CredentialOptions

INSTRUCTOR = "instructor"

# Zoom's user types (``type`` of a user): 1 Basic, 2 Licensed, 3 the retired
# On-prem/Corp type that some accounts still report and accept.
BASIC = 1
LICENSED = 2
ON_PREM = 3
PROVISION_TYPES = {"basic": BASIC, "licensed": LICENSED, "on_prem": ON_PREM}
UPGRADE_TYPES = {"licensed": LICENSED, "corp": ON_PREM}


def _covers(audience: str, role: str) -> bool:
    return audience == "everyone" or (audience == "instructors" and role == INSTRUCTOR)


def email_domain(email: str) -> str:
    return email.rsplit("@", 1)[-1].strip().lower() if "@" in email else ""


def should_provision(options: CredentialOptions, role: str, email: str | None) -> bool:
    """Whether a user without an account gets one: the audience covers their role and,
    when whitelisted domains are set, their email domain is one of them."""
    if not email or not _covers(options.auto_provision, role):
        return False
    allowed = {d.lower() for d in options.whitelisted_email_domains}
    return not allowed or email_domain(email) in allowed


def provision_type(options: CredentialOptions) -> int:
    """The user type a provisioned account gets (1 Basic, 2 Licensed, 3 On-Prem)."""
    return PROVISION_TYPES.get(options.auto_provision_user_type, BASIC)


def should_upgrade(options: CredentialOptions, role: str, user_type: int | None) -> bool:
    """Whether a Basic user of this role is upgraded when they launch."""
    return user_type == BASIC and _covers(options.auto_upgrade, role)


def upgrade_type(options: CredentialOptions) -> int:
    """The type an upgraded user gets: Licensed (2, the guide's "Pro") or Corp (3)."""
    return UPGRADE_TYPES.get(options.auto_upgrade_user_type, LICENSED)


def attribute(attributes: Mapping[str, str], name: str) -> str | None:
    """An LTI attribute by ``name`` or ``custom_name``, blank counting as absent."""
    key = name.strip()
    value = attributes.get(key)
    if value is None and not key.startswith("custom_"):
        value = attributes.get(f"custom_{key}")
    if value is None and key.startswith("custom_"):
        value = attributes.get(key.removeprefix("custom_"))
    return value.strip() if isinstance(value, str) and value.strip() else None


def tracking_values(
    options: CredentialOptions, attributes: Mapping[str, str]
) -> tuple[tuple[str, str], ...] | None:
    """(tracking field, value) pairs from the launch's attributes.

    None when no tracking field is configured or the launch carries none of their
    attributes: the meeting's tracking fields are then left as they are.
    """
    values = tuple(
        (field, value)
        for field, name in options.tracking_fields
        if (value := attribute(attributes, name)) is not None
    )
    return values or None


def matching_groups(
    options: CredentialOptions, role: str, attributes: Mapping[str, str]
) -> list[str]:
    """The group ids an instructor joins: rules whose attribute has the rule's value
    (compared without case or surrounding spaces). Students join none."""
    if role != INSTRUCTOR:
        return []
    found: list[str] = []
    for name, wanted, group_id in options.group_rules:
        value = attribute(attributes, name)
        if value is not None and value.casefold() == wanted.strip().casefold():
            if group_id not in found:
                found.append(group_id)
    return found


def hosts_get_alternatives(options: CredentialOptions, host_role: str) -> bool:
    """Whether a meeting hosted by someone of ``host_role`` gets the course's instructors
    as alternative hosts: instructors' meetings, and students' where students host."""
    if not options.auto_populate_alternative_host:
        return False
    return host_role == INSTRUCTOR or options.students_may_host


def alternative_hosts(
    instructors: Iterable[str], host_email: str, limit: int = 50
) -> tuple[str, ...]:
    """The alternative hosts of a meeting: the course's eligible instructors but its host,
    sorted so that the same people always give the same value."""
    host = host_email.strip().lower()
    chosen = sorted({e.strip().lower() for e in instructors if e and e.strip().lower() != host})
    return tuple(chosen[:limit])


def students_see_recording(options: CredentialOptions, published: bool) -> bool:
    """Whether a student sees a recording: never (off), always (all), or once published."""
    mode = options.recording_link_for_students
    return mode == "all" or (mode == "published" and published)


# A cell starting with one of these is run as a formula by spreadsheet programs.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: object) -> str:
    """A CSV cell a spreadsheet shows as text: a leading formula character gets a ``'``."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_START) else text


def csv_text(header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """A CSV document whose every cell is safe to open in a spreadsheet."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([safe_cell(h) for h in header])
    for row in rows:
        writer.writerow([safe_cell(cell) for cell in row])
    return out.getvalue()
