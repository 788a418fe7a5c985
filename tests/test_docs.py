"""docs/plugins.md documents every hook with its real signature, and HOOK_KINDS is complete.

The checks are functions of the page's text and the hook specifications, so the tests
also show each check catching the mistake it is there for.
"""

from __future__ import annotations

import ast
import inspect
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from ltipro import hookspecs
from ltipro.plugins import ENTRY_POINT_GROUP

PLUGINS_DOC = Path(__file__).parent.parent / "docs" / "plugins.md"
SECTION_KINDS = {"Broadcast hook reference": "broadcast", "LMS hook reference": "lms"}
HOOK_HEADING = re.compile(r"^### `(?P<name>\w+)\((?P<params>.*)\)(?: -> (?P<returns>.+))?`$")
PARTS = ("**Arguments**", "**Returns**", "**When it runs**")


def real_signature(name: str) -> str:
    """A hook's signature as its specification spells it, annotations included."""
    spec = getattr(hookspecs, name)
    signature = inspect.signature(spec)
    params = ", ".join(f"{p.name}: {p.annotation}" for p in signature.parameters.values())
    return f"{name}({params}) -> {signature.return_annotation}"


def spec_names() -> list[str]:
    return hookspecs.hook_names()


@dataclass
class DocumentedHook:
    name: str
    signature: str
    section: str | None
    body: str


def documented_hooks(text: str) -> list[DocumentedHook]:
    """Every hook heading of the page, with the reference section it sits in and its text."""
    hooks: list[DocumentedHook] = []
    section: str | None = None
    in_code = False
    for line in text.splitlines():
        if line.startswith("```"):
            in_code = not in_code
        if in_code or line.startswith("```"):
            if hooks:
                hooks[-1].body += line + "\n"
            continue
        if line.startswith("## "):
            section = line[3:].strip()
            continue
        match = HOOK_HEADING.match(line)
        if match:
            signature = line[len("### `") : -1]
            hooks.append(DocumentedHook(match["name"], signature, section, ""))
            continue
        if line.startswith("### "):
            hooks.append(DocumentedHook("", line, section, ""))  # a heading that is no hook
            continue
        if hooks:
            hooks[-1].body += line + "\n"
    return [h for h in hooks if h.name or h.section in SECTION_KINDS]


def documentation_problems(
    text: str,
    names: list[str],
    signature_of: Callable[[str], str],
    kinds: dict[str, str],
) -> list[str]:
    """Everything wrong between the page and the hooks, one line each."""
    problems: list[str] = []
    documented = documented_hooks(text)
    by_name: dict[str, list[DocumentedHook]] = {}
    for hook in documented:
        if not hook.name:
            problems.append(
                f"a heading in the hook reference is not a hook signature: {hook.signature}"
            )
            continue
        by_name.setdefault(hook.name, []).append(hook)
    for name in names:
        found = by_name.get(name, [])
        if not found:
            problems.append(f"{name} is not documented")
            continue
        if len(found) > 1:
            problems.append(f"{name} is documented {len(found)} times")
        hook = found[0]
        expected = signature_of(name)
        if hook.signature != expected:
            problems.append(
                f"{name} is documented as {hook.signature!r}, its signature is {expected!r}"
            )
        if SECTION_KINDS.get(hook.section or "") != kinds.get(name):
            problems.append(
                f"{name} is documented under {hook.section!r}, but HOOK_KINDS says "
                f"{kinds.get(name)!r}"
            )
        problems.extend(f"{name} does not say {part}" for part in PARTS if part not in hook.body)
        problems.extend(example_problems(name, hook.body, signature_of))
    problems.extend(
        f"{name} is documented but is not a hook" for name in by_name if name not in names
    )
    return problems


def example_problems(name: str, body: str, signature_of: Callable[[str], str]) -> list[str]:
    """The hook's example is Python that implements that hook with arguments it has."""
    blocks = re.findall(r"```python\n(.*?)```", body, re.S)
    if not blocks:
        return [f"{name} has no example"]
    allowed = set(re.findall(r"(\w+):", signature_of(name).split("(", 1)[1].rsplit(")", 1)[0]))
    for block in blocks:
        try:
            tree = ast.parse(block)
        except SyntaxError as exc:
            return [f"the example of {name} is not valid Python: {exc}"]
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name == name:
                decorated = any(
                    isinstance(d, ast.Name) and d.id == "hookimpl" for d in node.decorator_list
                )
                arguments = {a.arg for a in node.args.args}
                if not decorated:
                    return [f"the example of {name} is not marked @hookimpl"]
                if not arguments <= allowed:
                    return [
                        f"the example of {name} takes {sorted(arguments - allowed)}, not arguments of the hook"
                    ]
                return []
    return [f"the example of {name} does not implement {name}"]


def hook_kind_problems(names: list[str], kinds: dict[str, str]) -> list[str]:
    problems = [f"HOOK_KINDS misses {name}" for name in names if name not in kinds]
    problems += [
        f"HOOK_KINDS names {name}, which is not a hook" for name in kinds if name not in names
    ]
    problems += [
        f"HOOK_KINDS says {name} is {kind!r}: a hook is 'broadcast' or 'lms'"
        for name, kind in kinds.items()
        if kind not in ("broadcast", "lms")
    ]
    return problems


@pytest.fixture(scope="module")
def plugins_doc() -> str:
    return PLUGINS_DOC.read_text()


# -- the real page and hooks ----------------------------------------------------------------------


def test_every_hook_is_documented_with_its_real_signature(plugins_doc: str) -> None:
    assert (
        documentation_problems(plugins_doc, spec_names(), real_signature, hookspecs.HOOK_KINDS)
        == []
    )


def test_hook_kinds_names_every_hook_and_nothing_else() -> None:
    assert hook_kind_problems(spec_names(), hookspecs.HOOK_KINDS) == []


def test_every_hook_specification_has_a_docstring_with_an_example() -> None:
    for name in spec_names():
        doc = inspect.getdoc(getattr(hookspecs, name)) or ""
        assert "Example::" in doc, f"{name} has no docstring example"


def test_the_page_shows_the_real_entry_point_group(plugins_doc: str) -> None:
    assert f"[project.entry-points.{ENTRY_POINT_GROUP}]" in plugins_doc
    assert "LTIPRO_PLUGINS" in plugins_doc


# -- each check catches its mistake -------------------------------------------------------------------


def test_a_hook_missing_from_the_page_is_reported(plugins_doc: str) -> None:
    start = plugins_doc.index("### `identify_lms(")
    end = plugins_doc.index("### ", start + 4)
    without = plugins_doc[:start] + plugins_doc[end:]
    problems = documentation_problems(without, spec_names(), real_signature, hookspecs.HOOK_KINDS)
    assert problems == ["identify_lms is not documented"]


def test_a_hook_added_to_the_specifications_but_not_the_page_is_reported(plugins_doc: str) -> None:
    def signature_of(name: str) -> str:
        return (
            "meeting_started(meeting: Meeting) -> None"
            if name == "meeting_started"
            else real_signature(name)
        )

    kinds = {**hookspecs.HOOK_KINDS, "meeting_started": "broadcast"}
    problems = documentation_problems(
        plugins_doc, [*spec_names(), "meeting_started"], signature_of, kinds
    )
    assert problems == ["meeting_started is not documented"]


def test_a_documented_signature_that_differs_from_the_real_one_is_reported(
    plugins_doc: str,
) -> None:
    changed = plugins_doc.replace(
        "### `attribute_value(context: LaunchContext, name: str) -> str | None`",
        "### `attribute_value(context: LaunchContext, key: str) -> str | None`",
    )
    assert changed != plugins_doc
    problems = documentation_problems(changed, spec_names(), real_signature, hookspecs.HOOK_KINDS)
    assert problems == [
        "attribute_value is documented as 'attribute_value(context: LaunchContext, key: str) -> "
        "str | None', its signature is 'attribute_value(context: LaunchContext, name: str) -> "
        "str | None'"
    ]


def test_a_changed_return_annotation_is_reported(plugins_doc: str) -> None:
    changed = plugins_doc.replace(
        "### `plugin_migrations() -> str | None`", "### `plugin_migrations() -> str`"
    )
    problems = documentation_problems(changed, spec_names(), real_signature, hookspecs.HOOK_KINDS)
    assert len(problems) == 1 and problems[0].startswith("plugin_migrations is documented as")


def test_a_hook_documented_under_the_wrong_kind_is_reported(plugins_doc: str) -> None:
    kinds = {**hookspecs.HOOK_KINDS, "plugin_routes": "lms"}
    problems = documentation_problems(plugins_doc, spec_names(), real_signature, kinds)
    assert problems == [
        "plugin_routes is documented under 'Broadcast hook reference', but HOOK_KINDS says 'lms'"
    ]


def test_a_hook_section_without_its_parts_or_example_is_reported(plugins_doc: str) -> None:
    start = plugins_doc.index("### `example_launches()")
    end = plugins_doc.index("### ", start + 4)
    stub = "### `example_launches() -> list[ExampleLaunch]`\n\nRealistic launches.\n\n"
    problems = documentation_problems(
        plugins_doc[:start] + stub + plugins_doc[end:],
        spec_names(),
        real_signature,
        hookspecs.HOOK_KINDS,
    )
    assert problems == [
        "example_launches does not say **Arguments**",
        "example_launches does not say **Returns**",
        "example_launches does not say **When it runs**",
        "example_launches has no example",
    ]


def test_an_example_with_an_argument_the_hook_lacks_is_reported(plugins_doc: str) -> None:
    changed = plugins_doc.replace(
        "def identify_lms(message):", "def identify_lms(message, request):"
    )
    problems = documentation_problems(changed, spec_names(), real_signature, hookspecs.HOOK_KINDS)
    assert problems == ["the example of identify_lms takes ['request'], not arguments of the hook"]


def test_a_documented_hook_that_does_not_exist_is_reported(plugins_doc: str) -> None:
    extra = plugins_doc + "\n### `meeting_started(meeting: Meeting) -> None`\n\nGone.\n"
    problems = documentation_problems(extra, spec_names(), real_signature, hookspecs.HOOK_KINDS)
    assert problems == ["meeting_started is documented but is not a hook"]


def test_hook_kinds_missing_a_hook_is_reported() -> None:
    kinds = {k: v for k, v in hookspecs.HOOK_KINDS.items() if k != "calendar_delete_event"}
    assert hook_kind_problems(spec_names(), kinds) == ["HOOK_KINDS misses calendar_delete_event"]


def test_hook_kinds_naming_no_hook_or_an_unknown_kind_is_reported() -> None:
    kinds = {**hookspecs.HOOK_KINDS, "meeting_started": "broadcast", "launch_context": "launch"}
    assert hook_kind_problems(spec_names(), kinds) == [
        "HOOK_KINDS names meeting_started, which is not a hook",
        "HOOK_KINDS says launch_context is 'launch': a hook is 'broadcast' or 'lms'",
    ]
