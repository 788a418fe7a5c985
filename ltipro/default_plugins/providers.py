"""The built-in ``providers`` plugin: the meetings providers that ship with the core.

Offered through the same ``meetings_providers`` hook any plugin can implement.
"""

from __future__ import annotations

from ltipro.extension import SettingSpec
from ltipro.hookspecs import hookimpl
from ltipro.providers import jitsi
from ltipro.providers.base import ProviderSpec
from ltipro.providers.registry import choice_setting
from ltipro.providers.zoom import provider as zoom


def _specs() -> list[ProviderSpec]:
    return [jitsi.provider_spec(), zoom.provider_spec()]


@hookimpl
def meetings_providers() -> list[ProviderSpec]:
    return _specs()


@hookimpl
def plugin_settings() -> list[SettingSpec]:
    """The provider choice, and the built-in providers' own settings."""
    return [choice_setting(), *(s for spec in _specs() for s in spec.settings)]
