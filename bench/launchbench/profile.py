"""Summaries of collapsed-stack profiles: where the server's CPU went.

Both the cpusampler and ``py-spy record --format raw`` write one line per distinct stack,
``frame;frame;...;frame COUNT``, each frame ``function (path:line)``, root first.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

FRAME = re.compile(r"^(?P<func>.*?) \((?P<path>[^()]*?)(?::(?P<line>\d+))?\)$")


# What a sample is spent on: the first of these met walking from the running frame
# towards the root decides (so asyncio code run for a database driver counts as database).
CATEGORIES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("logging", ("<stdlib> logging",)),
    (
        "database access (SQLAlchemy, driver, pool)",
        ("sqlalchemy", "psycopg", "psycopg_binary", "aiosqlite", "<stdlib> sqlite3", "greenlet"),
    ),
    ("Redis client", ("redis",)),
    (
        "token checks (PyJWT, cryptography, pylti1p3)",
        ("jwt", "cryptography", "pylti1p3", "jwcrypto"),
    ),
    ("templates (Jinja2)", ("jinja2", "markupsafe")),
    (
        "HTTP server and framework",
        (
            "h11",
            "httptools",
            "uvicorn",
            "starlette",
            "multipart",
            "python_multipart",
            "gunicorn",
            "werkzeug",
            "flask",
            "flask_caching",
            "cachelib",
        ),
    ),
    ("plugin calls (pluggy)", ("pluggy",)),
)
EVENT_LOOP = "event loop and socket I/O (asyncio)"
TOOL_CODE = "the tool's own code"
LOOP_FRAMES = ("BaseEventLoop._run_once", "Handle._run")


def category_of(frames: list[tuple[str, str]]) -> str:
    """The category of one sample, from its frames ``(name, path)``, root first."""
    for name, path in reversed(frames):
        package = package_of(path)
        for category, packages in CATEGORIES:
            if package in packages:
                return category
        if package.startswith(("ltipro", "plugins", "bench.reference_tool")):
            return TOOL_CODE
        if name.startswith(LOOP_FRAMES):
            return EVENT_LOOP
    return EVENT_LOOP


@dataclass(frozen=True)
class Summary:
    samples: int
    by_category: list[tuple[str, int]]  # see CATEGORIES
    by_package: list[tuple[str, int]]  # self time by the package of the running frame
    inclusive: list[tuple[str, int]]  # time under each function (any depth)
    own: list[tuple[str, int]]  # self time of each function


def package_of(path: str) -> str:
    """``sqlalchemy``, ``ltipro.lti``, ``<stdlib>: asyncio``... from a frame's file path."""
    if "site-packages/" in path:
        rest = path.split("site-packages/", 1)[1]
        return rest.split("/", 1)[0].removesuffix(".py")
    match = re.search(r"/(ltipro|plugins/\w+/ltipro_\w+|bench)/(.*)$", path)
    if match:
        parts = [match.group(1).split("/")[-1], *match.group(2).split("/")[:-1]]
        return ".".join(parts[:2])
    if "/lib/python3" in path:
        module = path.split("/lib/python3", 1)[1].split("/", 2)
        name = module[1] if len(module) > 1 else path
        return "<stdlib> " + name.removesuffix(".py")
    return path or "<native>"


def _frame_key(frame: str) -> tuple[str, str]:
    match = FRAME.match(frame.strip())
    if not match:
        return frame.strip(), ""
    path = match.group("path")
    short = path.split("site-packages/", 1)[-1]
    short = re.sub(r"^.*/(ltipro|plugins)/", r"\1/", short)
    short = re.sub(r"^.*/lib/python3\.\d+/", "", short)
    return f"{match.group('func')} ({short})", path


def summarize(paths: list[Path], top: int = 30) -> Summary:
    """Every stack of every file (one per process) added up."""
    by_category: Counter[str] = Counter()
    by_package: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = 0
    lines = [line for path in paths for line in path.read_text(errors="replace").splitlines()]
    for line in lines:
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        total += count
        frames = [_frame_key(f) for f in stack.split(";") if f.strip()]
        # py-spy names the thread or process first when asked to; skip non-frames.
        frames = [f for f in frames if f[1]]
        if not frames:
            continue
        by_category[category_of(frames)] += count
        name, file_path = frames[-1]
        own[name] += count
        by_package[package_of(file_path)] += count
        for key in {n for n, _ in frames}:
            inclusive[key] += count
    return Summary(
        samples=total,
        by_category=by_category.most_common(),
        by_package=by_package.most_common(top),
        inclusive=inclusive.most_common(top),
        own=own.most_common(top),
    )


def render(summary: Summary, cpu_ms_per_launch: float | None = None) -> str:
    """The summary as text; with the CPU per launch, each share also in ms per launch."""

    def rows(items: list[tuple[str, int]]) -> list[str]:
        lines = []
        for name, count in items:
            share = count / summary.samples if summary.samples else 0.0
            ms = f"{share * cpu_ms_per_launch:6.3f} ms" if cpu_ms_per_launch else ""
            lines.append(f"  {share * 100:5.1f}%  {ms}  {name}")
        return lines

    out = [f"{summary.samples} samples"]
    out += ["", "By category:", *rows(summary.by_category)]
    out += ["", "Self time by package:", *rows(summary.by_package)]
    out += ["", "Inclusive time by function:", *rows(summary.inclusive)]
    out += ["", "Self time by function:", *rows(summary.own)]
    return "\n".join(out)
