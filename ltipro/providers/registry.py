"""Which meetings provider a credential uses, made once per configuration.

The choice is the ``provider`` setting of the built-in ``providers`` plugin; each
provider's own settings are stored under the plugin that offers it (the built-in ones
under ``providers``, keyed ``<provider>.<setting>``), so admins set them like any plugin
setting (`ltipro plugins set --credential NAME providers provider=jitsi ...`).
"""

from __future__ import annotations

import json
from typing import Any

from ltipro.extension import SettingSpec
from ltipro.plugins import PROVIDERS, Plugins
from ltipro.providers.base import MeetingsProvider, ProviderError, ProviderSpec
from ltipro.storage.repository import Credential

DEFAULT_PROVIDER = "jitsi"
CHOICE_KEY = "provider"


def choice_setting() -> SettingSpec:
    return SettingSpec(
        PROVIDERS,
        CHOICE_KEY,
        "Meetings provider",
        help="The service meetings are held on: jitsi (no account needed) or zoom.",
        default=DEFAULT_PROVIDER,
        validate=_provider_name,
    )


def _provider_name(raw: str) -> str:
    name = raw.strip().lower()
    if not name.isidentifier():
        raise ValueError("The meetings provider is a name such as jitsi or zoom")
    return name


class ProviderRegistry:
    """Every provider the loaded plugins offer, and one instance per configuration."""

    def __init__(self, plugins: Plugins) -> None:
        self.specs: dict[str, tuple[str, ProviderSpec]] = {}
        for plugin, specs in plugins.broadcast_sync("meetings_providers"):
            for spec in specs:
                self.specs.setdefault(spec.name, (plugin, spec))
        self._instances: dict[tuple[int, str], MeetingsProvider] = {}

    def spec(self, name: str) -> ProviderSpec:
        found = self.specs.get(name)
        if found is None:
            raise ProviderError(
                "provider_missing",
                f"The meetings provider {name!r} chosen for this tool is not installed.",
                status=409,
            )
        return found[1]

    async def for_credential(self, tool: Any, credential: Credential) -> MeetingsProvider:
        """The provider the credential's configuration names, with its settings."""
        from ltipro.plugin_settings import effective_settings

        chosen = await effective_settings(tool, credential, PROVIDERS)
        choice = chosen.get(CHOICE_KEY)
        name = str(choice or DEFAULT_PROVIDER)
        plugin, spec = self.specs.get(name) or (None, None)
        if spec is None or plugin is None:
            self.spec(name)  # raises the clear error
            raise AssertionError("unreachable")
        # The built-in providers' settings live beside the choice itself: read them once.
        values = (
            chosen if plugin == PROVIDERS else await effective_settings(tool, credential, plugin)
        )
        prefix = f"{name}."
        own = {
            key[len(prefix) :] if key.startswith(prefix) else key: value
            for key, value in values.items()
            if key.startswith(prefix) or plugin != PROVIDERS
        }
        cache_key = (credential.id, name + json.dumps(own, sort_keys=True, default=str))
        provider = self._instances.get(cache_key)
        if provider is None:
            try:
                provider = spec.factory(own, tool.http)
            except ValueError as exc:
                raise ProviderError(
                    "provider_misconfigured",
                    f"The meetings provider is not set up correctly: {exc}",
                    status=409,
                ) from exc
            self._instances = {k: v for k, v in self._instances.items() if k[0] != credential.id}
            self._instances[cache_key] = provider
        return provider
