"""Jinja2 templates: the instance's own folder first, then the shipped defaults.

``{% extends "default:base.html" %}`` reaches the shipped template even when the
instance folder overrides it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jinja2
from starlette.requests import Request
from starlette.responses import HTMLResponse

import ltipro


def default_templates_dir() -> Path:
    """Inside the wheel: ``ltipro/templates``; in a source checkout: ``templates/``."""
    packaged = Path(ltipro.__file__).parent / "templates"
    if packaged.is_dir():
        return packaged
    return Path(ltipro.__file__).parent.parent / "templates"


def make_environment(instance: Path | None = None) -> jinja2.Environment:
    defaults = jinja2.FileSystemLoader(str(default_templates_dir()))
    loaders: list[jinja2.BaseLoader] = []
    if instance is not None and (instance / "templates").is_dir():
        loaders.append(jinja2.FileSystemLoader(str(instance / "templates")))
    loaders.append(defaults)
    return jinja2.Environment(
        loader=jinja2.ChoiceLoader(
            [*loaders, jinja2.PrefixLoader({"default": defaults}, delimiter=":")]
        ),
        autoescape=True,
        enable_async=False,
    )


def render(
    request: Request, template: str, context: dict[str, Any], status_code: int = 200
) -> HTMLResponse:
    env: jinja2.Environment = request.app.state.templates
    html = env.get_template(template).render(request=request, **context)
    return HTMLResponse(html, status_code=status_code)
