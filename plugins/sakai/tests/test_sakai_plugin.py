"""Sakai's own ways, tested on the plugin's hooks (sources of the payloads: examples.py).

``example_message`` turns an example launch (or a variant of its claims) into the
message the tool hands the hooks, as the simulated platform signs it.
"""

from __future__ import annotations

import copy
from typing import Any

from ltipro_sakai import NAME, identify_lms, launch_context
from ltipro_sakai.examples import CLAIM, EXAMPLES

from ltipro.extension import ExampleLaunch
from ltipro.testing.conformance import example_message


def with_family_code(example: ExampleLaunch, code: str | None) -> dict[str, Any]:
    """The example's claims with another product family code (``None``: without one)."""
    claims = copy.deepcopy(dict(example.claims))
    if example.version == "1.3":
        platform = claims.setdefault(CLAIM + "tool_platform", {})
        platform.pop("product_family_code", None)
        if code is not None:
            platform["product_family_code"] = code
    else:
        claims.pop("tool_consumer_info_product_family_code", None)
        if code is not None:
            claims["tool_consumer_info_product_family_code"] = code
    return claims


def test_launches_are_recognised_by_the_product_family_code_in_any_case() -> None:
    for example in EXAMPLES:
        code = example_message(example).product_family_code or ""
        for variant in (code, code.upper(), f" {code} "):
            message = example_message(example, with_family_code(example, variant))
            assert identify_lms(message) == NAME, (example.name, variant)


def test_launches_of_another_lms_are_not_claimed() -> None:
    for example in EXAMPLES:
        for code in ("canvas", "moodle", "desire2learn"):
            message = example_message(example, with_family_code(example, code))
            assert identify_lms(message) is None, (example.name, code)


def test_the_context_names_this_lms_and_keeps_every_standard_field() -> None:
    for example in EXAMPLES:
        context = launch_context(example_message(example))
        assert context.lms == NAME
        assert context.email == example.expected["email"]
        assert context.domain == example.expected["domain"]
