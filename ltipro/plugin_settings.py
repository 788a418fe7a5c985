"""Plugin settings: declared by each plugin, set by admins, handed back to the plugin.

A plugin declares its settings with the ``plugin_settings`` hook, one
:class:`~ltipro.extension.SettingSpec` each. An admin sets a value for a credential (it
holds for every platform registration of that credential) or, for a ``platform``-scoped
setting, for one platform registration, whose value then overrides the credential's.
Values are validated with :meth:`SettingSpec.clean` before anything is stored; secret
values are encrypted at rest and decrypted only to be handed to the plugin.

:func:`effective_settings` is what the core passes as ``settings`` to the LMS hooks that
take it (``registration_artifacts`` and the calendar hooks).
"""

from __future__ import annotations

import json
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from ltipro.crypto import ENCRYPTED_PREFIX
from ltipro.extension import SettingSpec
from ltipro.plugins import PluginError, Plugins
from ltipro.storage.repository import Credential

if TYPE_CHECKING:
    from ltipro.tool import Tool

SCOPES = ("credential", "platform")
# The length of the ``plugin_settings.key`` column.
MAX_KEY_LENGTH = 100


class PluginSettingError(ValueError):
    """A setting an admin gave that cannot be stored; the message says why and what to do."""


@dataclass(frozen=True)
class SettingValue:
    """One declared setting and the value that holds for a credential (and platform).

    ``source`` says where the value comes from: ``platform`` (set for the platform
    registration), ``credential`` (set for the credential) or ``default`` (nothing set;
    the spec's default holds).
    """

    spec: SettingSpec
    value: Any
    source: Literal["platform", "credential", "default"]

    @property
    def is_set(self) -> bool:
        return self.source != "default"

    def shown(self) -> str:
        """The value as an admin may see it: secrets only as ``set`` or ``not set``."""
        if self.spec.secret:
            return "set" if self.is_set else "not set"
        if self.value is None:
            return "(none)"
        if isinstance(self.value, str):
            return self.value
        return json.dumps(self.value)


# The declarations last read, per loaded plugin set: (the hook's implementations then,
# the declarations). Weakly keyed, so a plugin set that is dropped (a test's) goes too.
_declared: weakref.WeakKeyDictionary[Plugins, tuple[list[Any], dict[str, list[SettingSpec]]]] = (
    weakref.WeakKeyDictionary()
)


async def declared_settings(plugins: Plugins) -> dict[str, list[SettingSpec]]:
    """Every loaded plugin's settings, by plugin name, in the order each declares them.

    Plugins that declare no settings are left out. A declaration the core cannot use (not
    a ``SettingSpec``, another plugin's name, an unknown scope, a key twice) raises
    :class:`~ltipro.plugins.PluginError` naming the plugin: it is the plugin's bug, not
    the admin's.

    Declarations are code, not configuration: they change only with the installed
    plugins, so they are collected once per loaded plugin set (every launch's first page
    asks for the provider's settings) and again only when a plugin is registered or
    unregistered since (the hook's implementations differ).
    """
    impls = plugins.pm.hook.plugin_settings.get_hookimpls()
    cached = _declared.get(plugins)
    if cached is not None and _same(cached[0], impls):
        return {name: list(specs) for name, specs in cached[1].items()}
    declared = await _collect_declarations(plugins)
    _declared[plugins] = (impls, declared)
    return {name: list(specs) for name, specs in declared.items()}


def _same(before: list[Any], now: list[Any]) -> bool:
    return len(before) == len(now) and all(a is b for a, b in zip(before, now, strict=True))


async def _collect_declarations(plugins: Plugins) -> dict[str, list[SettingSpec]]:
    declared: dict[str, list[SettingSpec]] = {}
    for name, answer in await plugins.broadcast_named("plugin_settings"):
        specs = declared.setdefault(name, [])
        if isinstance(answer, SettingSpec) or not isinstance(answer, Sequence):
            raise PluginError(
                f"the plugin {name!r} answered plugin_settings with "
                f"{type(answer).__name__}: it must return a list of SettingSpec"
            )
        for spec in answer:
            _check_declaration(name, spec, specs)
            specs.append(spec)
    return {name: specs for name, specs in declared.items() if specs}


def _check_declaration(plugin: str, spec: Any, earlier: Sequence[SettingSpec]) -> None:
    if not isinstance(spec, SettingSpec):
        raise PluginError(
            f"the plugin {plugin!r} declared a setting as {type(spec).__name__}: "
            "plugin_settings must return SettingSpec objects"
        )
    if spec.plugin != plugin:
        raise PluginError(
            f"the plugin {plugin!r} declared the setting {spec.key!r} for plugin "
            f"{spec.plugin!r}: SettingSpec.plugin must be the declaring plugin's name"
        )
    if spec.scope not in SCOPES:
        raise PluginError(
            f"the plugin {plugin!r} declared the setting {spec.key!r} with scope "
            f"{spec.scope!r}: the scope is 'credential' or 'platform'"
        )
    if not spec.key or len(spec.key) > MAX_KEY_LENGTH or "=" in spec.key:
        raise PluginError(
            f"the plugin {plugin!r} declared a setting key {spec.key!r}: keys are 1 to "
            f"{MAX_KEY_LENGTH} characters without '='"
        )
    if any(other.key == spec.key for other in earlier):
        raise PluginError(f"the plugin {plugin!r} declares the setting {spec.key!r} twice")


async def plugin_setting_specs(plugins: Plugins, plugin: str) -> dict[str, SettingSpec]:
    """The settings one loaded plugin declares, by key (empty if it declares none)."""
    if plugins.plugin(plugin) is None:
        loaded = ", ".join(name for name, _ in plugins.pm.list_name_plugin() if name)
        raise PluginSettingError(f"no plugin named {plugin!r} is loaded; loaded: {loaded}")
    specs = (await declared_settings(plugins)).get(plugin, [])
    return {spec.key: spec for spec in specs}


async def _check_platform(tool: Tool, credential: Credential, platform_id: int | None) -> None:
    """A platform given for a credential must be one of that credential's registrations."""
    if platform_id is None:
        return
    platform = await tool.repo.platform(platform_id)
    if platform.credential_id != credential.id:
        raise PluginSettingError(
            f"platform {platform_id} is not registered with credential {credential.name!r} "
            "(see `ltipro platforms list --credential " + credential.name + "`)"
        )


def _unknown_key(plugin: str, key: str, specs: Mapping[str, SettingSpec]) -> PluginSettingError:
    known = ", ".join(specs) if specs else "it declares no settings"
    return PluginSettingError(
        f"the plugin {plugin!r} has no setting {key!r} (its settings: {known})"
    )


def _storable(tool: Tool, spec: SettingSpec, value: Any) -> Any:
    """The value as it goes into the database: JSON, and encrypted when it is a secret."""
    try:
        text = json.dumps(value)
    except (TypeError, ValueError) as exc:
        raise PluginError(
            f"the plugin {spec.plugin!r} validates its setting {spec.key!r} to "
            f"{type(value).__name__}, which cannot be stored: return JSON data from validate"
        ) from exc
    return tool.repo.box.encrypt(text) if spec.secret else value


def _readable(tool: Tool, spec: SettingSpec, stored: Any) -> Any:
    if spec.secret and isinstance(stored, str) and stored.startswith(ENCRYPTED_PREFIX):
        return json.loads(tool.repo.box.decrypt(stored))
    # A value stored before the plugin marked the setting secret stays readable.
    return stored


async def set_plugin_settings(
    tool: Tool,
    credential: Credential,
    plugin: str,
    values: Mapping[str, str],
    platform_id: int | None = None,
) -> list[str]:
    """Validate and store settings of ``plugin`` for a credential, or for one platform.

    ``values`` maps keys to the text an admin typed; an empty text removes the stored
    value, so the credential's value or the default holds again. Every value is checked
    before any is stored: one bad value stores nothing. A ``credential``-scoped setting
    cannot be set for a platform. Returns the keys changed.
    """
    specs = await plugin_setting_specs(tool.plugins, plugin)
    await _check_platform(tool, credential, platform_id)
    to_store: dict[str, Any] = {}
    to_remove: list[str] = []
    for key, raw in values.items():
        spec = specs.get(key)
        if spec is None:
            raise _unknown_key(plugin, key, specs)
        if platform_id is not None and spec.scope == "credential":
            raise PluginSettingError(
                f"{plugin} setting {key!r} is set per credential, not per platform: "
                "set it without a platform"
            )
        if raw == "":
            to_remove.append(key)
            continue
        try:
            value = spec.clean(raw)
        except ValueError as exc:
            raise PluginSettingError(f"{plugin} setting {key!r}: {exc}") from None
        to_store[key] = _storable(tool, spec, value)
    for key, stored in to_store.items():
        await tool.repo.set_plugin_setting(credential.id, plugin, key, stored, platform_id)
    for key in to_remove:
        await tool.repo.delete_plugin_setting(credential.id, plugin, key, platform_id)
    return [*to_store, *to_remove]


async def setting_values(
    tool: Tool, credential: Credential, plugin: str, platform_id: int | None = None
) -> list[SettingValue]:
    """Every setting ``plugin`` declares, with the value that holds and where it comes from.

    Without a platform, a ``platform``-scoped setting shows the credential's value (the
    one every platform of the credential gets unless it has its own).
    """
    specs = await plugin_setting_specs(tool.plugins, plugin)
    await _check_platform(tool, credential, platform_id)
    at_credential = await tool.repo.stored_plugin_settings(credential.id, plugin)
    at_platform = (
        await tool.repo.stored_plugin_settings(credential.id, plugin, platform_id)
        if platform_id is not None
        else {}
    )
    out = []
    for key, spec in specs.items():
        if key in at_platform:
            out.append(SettingValue(spec, _readable(tool, spec, at_platform[key]), "platform"))
        elif key in at_credential:
            out.append(SettingValue(spec, _readable(tool, spec, at_credential[key]), "credential"))
        else:
            out.append(SettingValue(spec, spec.default, "default"))
    return out


async def effective_settings(
    tool: Tool, credential: Credential, plugin: str, platform_id: int | None = None
) -> dict[str, Any]:
    """The settings ``plugin`` gets for a credential and platform: every declared key.

    A platform's value overrides the credential's; the spec's default fills what is not
    set; secrets come decrypted. Keys the plugin no longer declares are left out.
    """
    specs = await plugin_setting_specs(tool.plugins, plugin)
    stored = await tool.repo.plugin_settings(credential.id, plugin, platform_id)
    return {
        key: _readable(tool, spec, stored[key]) if key in stored else spec.default
        for key, spec in specs.items()
    }


__all__ = [
    "PluginSettingError",
    "SettingValue",
    "declared_settings",
    "effective_settings",
    "plugin_setting_specs",
    "set_plugin_settings",
    "setting_values",
]
