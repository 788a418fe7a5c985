"""``ltipro plugins new``: a new LMS plugin's distribution, ready to install and test.

The generated plugin detects its LMS by product family code, reads launches with the
standard claim readers, names its course, offers example launches (an instructor and a
student in LTI 1.3 and 1.1) and runs the conformance suite, which passes as generated.
The author then teaches it what the LMS does differently (see docs/writing-a-plugin.md).

The templates are package data (``ltipro/scaffold/template/*.tmpl``), filled in by
replacing ``%%TOKEN%%`` markers, so they can hold ``$`` variables, ``{...}`` and
``${{ }}`` unchanged.
"""

from __future__ import annotations

import importlib.util
import re
from dataclasses import dataclass
from importlib.metadata import entry_points
from importlib.resources import files
from pathlib import Path

from ltipro import __version__

NAME = re.compile(r"[a-z][a-z0-9_]{0,39}")
TITLE = re.compile(r"[\w .,()&'/+:-]{1,80}")
FAMILY_CODE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,99}")
_TOKEN = re.compile(r"%%[A-Z_]+%%")

#: Each generated file (its path in the distribution, ``{name}`` filled in) and its template.
FILES: dict[str, str] = {
    "pyproject.toml": "pyproject.toml.tmpl",
    "README.md": "README.md.tmpl",
    ".gitignore": "gitignore.tmpl",
    ".github/workflows/tests.yml": "workflow.yml.tmpl",
    "ltipro_{name}/__init__.py": "plugin.py.tmpl",
    "ltipro_{name}/examples.py": "examples.py.tmpl",
    "tests/test_{name}_conformance.py": "test_conformance.py.tmpl",
    "tests/test_{name}_plugin.py": "test_plugin.py.tmpl",
}


class ScaffoldError(ValueError):
    """A name, title, code or folder the scaffold cannot use; the message says why."""


@dataclass(frozen=True)
class NewPlugin:
    """What ``ltipro plugins new`` makes: a plugin's names and where it goes."""

    name: str
    title: str
    family_code: str
    directory: Path

    @property
    def distribution(self) -> str:
        return f"ltipro-{self.name}"

    @property
    def package(self) -> str:
        return f"ltipro_{self.name}"

    def tokens(self) -> dict[str, str]:
        return {
            "%%NAME%%": self.name,
            "%%CLASS%%": "".join(part.capitalize() for part in self.name.split("_") if part),
            "%%TITLE%%": self.title,
            "%%FAMILY_CODE%%": self.family_code,
            "%%HOST%%": self.name.replace("_", "-") + ".example.edu",
            "%%CORE_VERSION%%": __version__,
        }


def taken_names() -> set[str]:
    """Plugin names already in use: the built-in plugins and every installed one."""
    from ltipro.plugins import DEFAULT_PLUGINS, ENTRY_POINT_GROUP

    return set(DEFAULT_PLUGINS) | {ep.name for ep in entry_points(group=ENTRY_POINT_GROUP)}


def check_name(name: str) -> str:
    """``name`` if a new plugin may have it, else a :class:`ScaffoldError` saying why."""
    if not NAME.fullmatch(name):
        raise ScaffoldError(
            f"a plugin name is a lowercase identifier: a letter, then up to 39 letters, "
            f"digits or '_' (got {name!r}); it names the entry point, the package "
            "ltipro_NAME and the distribution ltipro-NAME"
        )
    if name in taken_names():
        raise ScaffoldError(
            f"there is already a plugin named {name!r} (see `ltipro plugins list`): choose "
            "another name"
        )
    if importlib.util.find_spec(f"ltipro_{name}") is not None:
        raise ScaffoldError(
            f"a package named ltipro_{name} is already installed: choose another name"
        )
    return name


def plan(
    name: str,
    *,
    title: str | None = None,
    family_code: str | None = None,
    directory: Path | None = None,
) -> NewPlugin:
    """Check every choice before anything is written."""
    check_name(name)
    title = (title if title is not None else name.replace("_", " ").title()).strip()
    if not TITLE.fullmatch(title):
        raise ScaffoldError(
            f"--title is 1 to 80 letters, digits, spaces and . , ( ) & ' / + : - (got {title!r})"
        )
    code = (family_code if family_code is not None else name).strip()
    if not FAMILY_CODE.fullmatch(code):
        raise ScaffoldError(
            "--family-code is the LMS's product_family_code: letters, digits and . _ : - "
            f"without spaces (got {code!r})"
        )
    target = directory if directory is not None else Path.cwd() / f"ltipro-{name}"
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise ScaffoldError(
            f"{target} already exists and is not an empty folder: nothing was written "
            "(choose another --dir, or remove it)"
        )
    return NewPlugin(name=name, title=title, family_code=code, directory=target)


def render(plugin: NewPlugin) -> dict[str, str]:
    """Every generated file's text, by its path in the distribution."""
    template = files("ltipro.scaffold") / "template"
    tokens = plugin.tokens()
    out = {}
    for path, source in FILES.items():
        text = (template / source).read_text(encoding="utf-8")
        for token, value in tokens.items():
            text = text.replace(token, value)
        leftover = _TOKEN.search(text)
        if leftover:  # a template names a token the scaffold does not fill
            raise RuntimeError(f"{source} has an unknown marker {leftover.group(0)}")
        out[path.format(name=plugin.name)] = text
    return out


def create(plugin: NewPlugin) -> list[Path]:
    """Write the plugin's files; returns them in the order written."""
    texts = render(plugin)
    written = []
    for relative, text in texts.items():
        path = plugin.directory / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


__all__ = ["FILES", "NewPlugin", "ScaffoldError", "check_name", "create", "plan", "render"]
