"""Launches and checks that the tests of ltipro and of its plugins share.

The conformance suite (:mod:`ltipro.testing.conformance`) is built on them, and a
plugin's own tests may use them too::

    session, me = await launched(harness, "1.3", claims)
    check_expected(example.expected, session, me, lms="canvas")
"""

from __future__ import annotations

import ast
import importlib
import sys
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest

from ltipro.context import CLAIM, LTI13, CourseIdentifiers, LaunchContext, LaunchMessage
from ltipro.extension import ExampleLaunch
from ltipro.plugins import GENERIC
from ltipro.sessions import Session
from ltipro.simulator.platform import SimulatedPlatform
from ltipro.testing.harness import TOOL_URL, ToolHarness

#: Each key an example's ``expected`` may hold, and the ``/api/v1/me`` field it is
#: compared with (a path into the JSON answer). Course fields are ``None`` for a launch
#: outside a course.
EXPECTED_FIELDS: dict[str, tuple[str, ...]] = {
    "user_id": ("user", "id"),
    "name": ("user", "name"),
    "given_name": ("user", "given_name"),
    "family_name": ("user", "family_name"),
    "username": ("user", "username"),
    "anonymous": ("user", "anonymous"),
    "email": ("email",),
    "role": ("role",),
    "roles": ("roles",),
    "timezone": ("timezone",),
    "context_id": ("course", "context_id"),
    "lms_course_id": ("course", "lms_course_id"),
    "course_title": ("course", "title"),
    "course_label": ("course", "label"),
    "history": ("course", "history"),
    "domain": ("domain",),
    "locale": ("locale",),
    "lti_version": ("lti_version",),
}

#: The ``expected`` keys every example of the LMS plugins shipped with ltipro carries
#: (the conformance suite asks fewer of any plugin).
DETAILED_EXPECTATIONS: frozenset[str] = frozenset(
    {
        "user_id",
        "email",
        "role",
        "roles",
        "name",
        "username",
        "context_id",
        "lms_course_id",
        "history",
        "domain",
        "lti_version",
    }
)

#: Claims the platform adds when it signs an LTI 1.3 launch; examples leave them out.
SIGNED_BY_PLATFORM = (
    "iss",
    "aud",
    "azp",
    "nonce",
    "iat",
    "exp",
    CLAIM + "deployment_id",
    CLAIM + "target_link_uri",
)


# -- launches -------------------------------------------------------------------------------


async def launch(harness: ToolHarness, version: str, claims: Mapping[str, Any]) -> httpx.Response:
    """A complete launch of ``claims`` in ``version`` through the tool."""
    if version == LTI13:
        return await harness.launch13(claims)
    return await harness.launch11(claims)


async def launched(
    harness: ToolHarness, version: str, claims: Mapping[str, Any]
) -> tuple[Session, dict[str, Any]]:
    """Launch, and return the session the launch opened with ``/api/v1/me``'s answer."""
    page = await launch(harness, version, claims)
    assert page.status_code == 200, page.text
    session = await harness.tool.sessions.load(harness.session_token(page))
    assert session is not None
    return session, await harness.me(page)


def platform_message(
    platform: SimulatedPlatform, version: str, claims: Mapping[str, Any], nonce: str
) -> LaunchMessage:
    """The message the tool validates for ``claims``, as ``platform`` signs them.

    The registration is configured as ``generic``, as the harness registers its platform,
    so a plugin must recognise its LMS from the launch itself.
    """
    if version == LTI13:
        return LaunchMessage(
            version="1.3",
            claims=platform.full_claims(claims, nonce=nonce),
            credential="test",
            configured_lms=GENERIC,
            issuer=platform.issuer,
            client_id=platform.client_id,
            deployment_id=platform.deployment_id,
        )
    form = platform.lti11_form(claims, url=f"{TOOL_URL}/lti/launch")
    return LaunchMessage(version="1.1", claims=form, credential="test")


def signed_message(harness: ToolHarness, version: str, claims: Mapping[str, Any]) -> LaunchMessage:
    """The message the tool validates for ``claims``, as the harness's platform signs it."""
    return platform_message(harness.platform, version, claims, nonce="n")


# -- what a launch shows --------------------------------------------------------------------


def me_field(me: Mapping[str, Any], key: str) -> Any:
    """The ``/api/v1/me`` value an ``expected`` key is checked against (see EXPECTED_FIELDS)."""
    value: Any = me
    for part in EXPECTED_FIELDS[key]:
        if value is None:
            return None
        value = value[part]
    return value


def session_field(session: Session, key: str) -> Any:
    """The value a session holds for an ``expected`` key (``/api/v1/me`` reports it)."""
    context, identity, course = session.context, session.identity, session.context.course
    values = {
        "user_id": context.user_id,
        "name": context.name,
        "given_name": context.given_name,
        "family_name": context.family_name,
        "username": context.username,
        "anonymous": context.anonymous,
        "email": identity.email,
        "role": identity.role,
        "roles": list(context.roles),
        "timezone": identity.timezone,
        "context_id": course.context_id if course else None,
        "lms_course_id": course.lms_course_id if course else None,
        "course_title": course.title if course else None,
        "course_label": course.label if course else None,
        "history": list(course.history) if course else None,
        "domain": context.domain,
        "locale": context.locale,
        "lti_version": context.lti_version,
    }
    return values[key]


def expected_mismatches(expected: Mapping[str, Any], me: Mapping[str, Any]) -> list[str]:
    """Each ``expected`` field that ``/api/v1/me`` does not show, as a readable line."""
    out = []
    for key, value in expected.items():
        if key not in EXPECTED_FIELDS:
            out.append(f"{key}: not a field the kit checks (known: {', '.join(EXPECTED_FIELDS)})")
            continue
        actual = me_field(me, key)
        if actual != value:
            out.append(f"{key}: expected {value!r}, /api/v1/me has {actual!r}")
    return out


def check_expected(
    expected: Mapping[str, Any], session: Session, me: Mapping[str, Any], lms: str
) -> None:
    """Assert each ``expected`` field both in the session and in ``/api/v1/me``, and that
    ``lms`` served the launch."""
    for key, value in expected.items():
        assert key in EXPECTED_FIELDS, f"the test does not know how to check {key!r}"
        actual = (session_field(session, key), me_field(me, key))
        assert actual == (value, value), f"{key}: {actual} != {value!r}"
    assert me["lms"] == session.context.lms == lms


async def check_example_launch(
    harness: ToolHarness,
    example: ExampleLaunch,
    *,
    lms: str,
    launch_context: Callable[[LaunchMessage], LaunchContext],
    course_identifiers: Callable[[LaunchMessage], CourseIdentifiers | None],
) -> None:
    """Launch ``example`` through the whole tool and assert what the launch opened.

    Each ``expected`` field is in the session and in ``/api/v1/me``, ``lms`` served the
    launch, and every other field of the session's context is what the plugin's own
    ``launch_context`` and ``course_identifiers`` read from the signed message (the course
    put in the context, as the core combines them): nothing is lost or changed between
    the LMS and the session.
    """
    claims = dict(example.claims)
    session, me = await launched(harness, example.version, claims)
    check_expected(example.expected, session, me, lms=lms)
    message = signed_message(harness, example.version, claims)
    assert session.context == replace(launch_context(message), course=course_identifiers(message))
    assert me["credential"] == "test"


def check_examples(
    examples: Sequence[ExampleLaunch],
    lms: str,
    *,
    roles: Collection[str],
    versions: Collection[str] = ("1.3", "1.1"),
    required: Collection[str] = DETAILED_EXPECTATIONS,
) -> None:
    """Assert that ``examples`` are ``lms``'s, cover exactly ``roles`` and ``versions``,
    name their source and title, expect at least the ``required`` fields, and leave out
    what the platform adds when it signs a launch."""
    assert {e.role for e in examples} == set(roles)
    assert {e.version for e in examples} == set(versions)
    for example in examples:
        assert example.lms == lms
        assert example.source and example.title
        assert set(required) <= set(example.expected), example.name
        if example.version == LTI13:
            assert not set(SIGNED_BY_PLATFORM) & set(example.claims), example.name
        else:
            assert not [k for k in example.claims if k.startswith("oauth_")], example.name


def check_disabled_refusal(page: httpx.Response, lms: str, title: str) -> None:
    """Assert that ``page`` refuses a launch because the credential has ``lms`` (whose
    users read ``title``) turned off, and says how to turn it on."""
    assert page.status_code == 403
    assert 'data-error-code="plugin_disabled"' in page.text
    assert f"Launches from {title} are turned off" in page.text
    assert f"ltipro plugins enable --credential test {lms}" in page.text


# -- a plugin installed on its own ----------------------------------------------------------


def other_plugin_imports(package_dir: Path) -> list[str]:
    """Each import of another ltipro plugin in a plugin's package, as ``file imports name``.

    The package may import ltipro and itself; any other ``ltipro*`` module is another
    plugin, which may not be installed.
    """
    allowed = {"ltipro", package_dir.name}
    found = []
    for path in sorted(package_dir.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            else:
                continue
            for name in names:
                root = name.split(".")[0]
                if root.startswith("ltipro") and root not in allowed:
                    found.append(f"{path.name} imports {name}")
    return found


def import_without(
    monkeypatch: pytest.MonkeyPatch, package: str, unimportable: Iterable[str]
) -> ModuleType:
    """Import ``package`` afresh while none of the ``unimportable`` modules can be imported."""
    for name in unimportable:
        monkeypatch.setitem(sys.modules, name, None)  # importing it now fails
    for name in [m for m in sys.modules if m.split(".")[0] == package]:
        monkeypatch.delitem(sys.modules, name)
    return importlib.import_module(package)


__all__ = [
    "DETAILED_EXPECTATIONS",
    "EXPECTED_FIELDS",
    "SIGNED_BY_PLATFORM",
    "check_disabled_refusal",
    "check_example_launch",
    "check_examples",
    "check_expected",
    "expected_mismatches",
    "import_without",
    "launch",
    "launched",
    "me_field",
    "other_plugin_imports",
    "platform_message",
    "session_field",
    "signed_message",
]
