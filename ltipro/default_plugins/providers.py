"""The built-in ``providers`` plugin: the meetings providers that ship with the core.

Offered through the same ``meetings_providers`` hook any plugin can implement.
"""

from __future__ import annotations

from ltipro.hookspecs import hookimpl
from ltipro.providers import jitsi
from ltipro.providers.base import ProviderSpec


@hookimpl
def meetings_providers() -> list[ProviderSpec]:
    return [jitsi.provider_spec()]
