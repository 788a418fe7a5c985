"""Applying a credential's identity options to a launch context.

The LMS plugin says who the user is as the LMS sees them; these rules decide who they
are for the tool: instructor or student, which email links them to the meetings
provider, which time zone, and whether their LMS domain is approved.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from ltipro.context import LaunchContext
from ltipro.extension import LmsDetails
from ltipro.lti.errors import LaunchError
from ltipro.options import CredentialOptions, valid_timezone
from ltipro.utils import normalize_domain

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def _role_key(role: str) -> str:
    return re.sub(r"[\s_-]+", "", role).casefold()


def is_instructor(context: LaunchContext, options: CredentialOptions) -> bool:
    """Whether any of the user's roles is one the credential treats as instructor.

    Compared without case or spaces, so ``TeachingAssistant`` matches
    ``Teaching Assistant``.
    """
    wanted = {_role_key(r) for r in options.instructor_roles}
    return any(_role_key(role) in wanted for role in context.roles)


def _attribute(attributes: Mapping[str, str], name: str) -> str | None:
    value = attributes.get(name)
    if value is None and not name.startswith("custom_"):
        value = attributes.get(f"custom_{name}")
    return value.strip() if value and value.strip() else None


def resolve_email(context: LaunchContext, options: CredentialOptions) -> str | None:
    """The email that links the user to the provider, by the credential's email format.

    - empty: the email the LMS sent;
    - ``attr``: the value of that attribute;
    - ``name_attr@domain_attr``: two attributes joined with ``@``;
    - ``name_attr@example.edu``: where ``example.edu`` is not an attribute of the launch,
      it is taken literally as the domain.
    """
    spec = options.email_attribute.strip()
    if not spec:
        email = context.email
    elif "@" in spec:
        name_attr, domain_part = spec.split("@", 1)
        name = _attribute(context.attributes, name_attr)
        domain = _attribute(context.attributes, domain_part) or domain_part
        email = f"{name}@{domain}" if name else None
    else:
        email = _attribute(context.attributes, spec)
    if email is None:
        return None
    email = email.strip()
    return email.lower() if _EMAIL.match(email) else None


def resolve_timezone(context: LaunchContext, options: CredentialOptions) -> str:
    """The user's time zone: the LMS's when the origin is ``lms`` and it sent a valid one."""
    if options.timezone_origin == "lms" and context.timezone and valid_timezone(context.timezone):
        return context.timezone
    return options.default_timezone


def domain_approved(domain: str, options: CredentialOptions) -> bool:
    """An empty approved list allows every domain; otherwise the domain must be listed."""
    if not options.approved_domains:
        return True
    return normalize_domain(domain) in {normalize_domain(d) for d in options.approved_domains}


@dataclass(frozen=True)
class Identity:
    """Who the user is for the tool, after the credential's options."""

    role: str  # "instructor" or "student"
    email: str | None
    timezone: str


def apply_options(
    context: LaunchContext, options: CredentialOptions, lms: LmsDetails | None
) -> Identity:
    """Apply the identity options, refusing launches the options do not allow."""
    if not domain_approved(context.domain, options):
        raise LaunchError(
            "domain_not_approved",
            options.launch_error_message
            or f"This tool is not set up for launches from {context.domain or 'this LMS'}.",
            status=403,
            hint=(
                f"Add {context.domain} to the credential's approved domains if it is one of "
                "your LMS's addresses."
            ),
        )
    email = resolve_email(context, options)
    if email is None and not context.anonymous:
        help_text = lms.missing_email_help if lms else ""
        raise LaunchError(
            "missing_email",
            "Your LMS did not send an email address for you, and the tool needs one to link "
            "you to your meetings account.",
            status=400,
            hint=help_text,
        )
    return Identity(
        role="instructor" if is_instructor(context, options) else "student",
        email=email,
        timezone=resolve_timezone(context, options),
    )
