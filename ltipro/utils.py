"""Small helpers shared by every layer; nothing here knows about the web or the database."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar
from urllib.parse import urlsplit

T = TypeVar("T")


async def await_me_maybe(value: Any) -> Any:
    """Turn a hook result into a value: call a callable, await an awaitable.

    Hooks may return a plain value, a callable returning one, or an awaitable, so a
    plugin can be synchronous or asynchronous as it likes.
    """
    if callable(value) and not inspect.isclass(value):
        value = value()
    if inspect.isawaitable(value):
        value = await value
    return value


async def gather_hook_results(results: list[Any]) -> list[Any]:
    """Await every hook result in order and drop the ``None`` answers."""
    out = []
    for result in results:
        value = await await_me_maybe(result)
        if value is not None:
            out.append(value)
    return out


def normalize_domain(value: str | None) -> str:
    """The one form a domain takes everywhere: lower case, no scheme, port, path or ``/``.

    >>> normalize_domain("HTTPS://Canvas.Example.edu:443/courses/1")
    'canvas.example.edu'
    """
    if not value:
        return ""
    text = value.strip()
    if "://" not in text:
        text = "//" + text
    try:
        host = urlsplit(text).hostname or ""
    except ValueError:
        return ""
    return host.strip(".").lower()


def missing(value: object) -> bool:
    """True for values an LMS sends when it has nothing to say.

    Canvas and others send unresolved substitution variables literally (``$Canvas.user.id``)
    and Blackboard leaves ``@X@...@X@`` templates; both mean the value is absent.
    """
    if value is None:
        return True
    if isinstance(value, str):
        text = value.strip()
        return (
            text == "" or text.startswith("$") or (text.startswith("@X@") and text.endswith("@X@"))
        )
    return False


def first_present(*values: object) -> str | None:
    """The first value that is not :func:`missing`, as a stripped string."""
    for value in values:
        if not missing(value):
            return str(value).strip()
    return None


def run_sync(func: Callable[..., Awaitable[T]], *args: Any) -> T:
    """Run a coroutine function to completion from synchronous code (the CLI)."""
    import asyncio

    return asyncio.run(func(*args))  # type: ignore[arg-type]
