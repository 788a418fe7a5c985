"""The plugin manager: entry points, built-in plugins and per-credential enablement.

Plugins are found through the ``ltipro`` entry-point group; the built-in ``generic``
plugin is registered the same way (through its hooks, nothing special). The
``LTIPRO_PLUGINS`` setting limits which installed plugins load.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Iterable, Sequence
from importlib.metadata import entry_points
from typing import Any

import pluggy

from ltipro import hookspecs
from ltipro.context import LaunchMessage
from ltipro.extension import LmsDetails
from ltipro.utils import await_me_maybe, gather_hook_results

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "ltipro"
GENERIC = "generic"
DEFAULT_PLUGINS: dict[str, str] = {GENERIC: "ltipro.default_plugins.generic"}


class PluginError(RuntimeError):
    """A plugin cannot be loaded or implements a hook that does not exist."""


class Plugins:
    """The loaded plugins and the calls the core makes on them."""

    def __init__(self, pm: pluggy.PluginManager) -> None:
        self.pm = pm
        self.details: dict[str, LmsDetails] = {}
        self._subset_callers: dict[tuple[str, str], Any] = {}
        for name, plugin in pm.list_name_plugin():
            if name is None:
                continue
            answers = [
                a
                for a in pm.subset_hook_caller(
                    "lms_details", remove_plugins=[p for p in pm.get_plugins() if p is not plugin]
                )()
                if a is not None
            ]
            if answers:
                detail = answers[0]
                if detail.name != name:
                    raise PluginError(
                        f"plugin {name!r} describes itself as {detail.name!r}: the entry point "
                        "name and LmsDetails.name must be the same"
                    )
                self.details[name] = detail

    @classmethod
    def load(
        cls,
        only: Sequence[str] | None = None,
        extra: Iterable[tuple[str, Any]] = (),
    ) -> Plugins:
        """Load the built-in plugins and the installed ones (only those named in ``only``).

        ``extra`` registers further ``(name, plugin)`` pairs, as tests do.
        """
        pm = pluggy.PluginManager(hookspecs.PROJECT)
        pm.add_hookspecs(hookspecs)
        for name, module in DEFAULT_PLUGINS.items():
            pm.register(importlib.import_module(module), name=name)
        wanted = set(only) if only is not None else None
        found: set[str] = set()
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            if wanted is not None and ep.name not in wanted:
                continue
            if pm.has_plugin(ep.name):
                continue
            try:
                plugin = ep.load()
            except Exception as exc:
                raise PluginError(
                    f"the plugin {ep.name!r} ({ep.value}) failed to import: {exc}"
                ) from exc
            pm.register(plugin, name=ep.name)
            found.add(ep.name)
        for name, plugin in extra:
            pm.register(plugin, name=name)
            found.add(name)
        if wanted is not None:
            unknown = wanted - found - set(DEFAULT_PLUGINS)
            if unknown:
                raise PluginError(
                    "LTIPRO_PLUGINS names plugins that are not installed: "
                    + ", ".join(sorted(unknown))
                )
        try:
            pm.check_pending()
        except pluggy.PluginValidationError as exc:
            raise PluginError(f"a plugin implements a hook that does not exist: {exc}") from exc
        return cls(pm)

    # -- what is loaded -------------------------------------------------------------------

    @property
    def lms_names(self) -> list[str]:
        """Every loaded LMS plugin, ``generic`` last."""
        names = sorted(n for n in self.details if n != GENERIC)
        return [*names, GENERIC] if GENERIC in self.details else names

    def plugin(self, name: str) -> Any:
        return self.pm.get_plugin(name)

    def title(self, lms: str) -> str:
        detail = self.details.get(lms)
        return detail.title if detail else lms

    def register(self, plugin: Any, name: str) -> None:
        """Register a plugin after loading (tests); unregister it with :meth:`unregister`."""
        self.pm.register(plugin, name=name)
        self.__init__(self.pm)  # type: ignore[misc]

    def unregister(self, name: str) -> None:
        self.pm.unregister(name=name)
        self.__init__(self.pm)  # type: ignore[misc]

    # -- calls ----------------------------------------------------------------------------

    async def identify(self, message: LaunchMessage) -> str:
        """Which loaded plugin's LMS sent this launch.

        Every loaded plugin is asked, enabled or not. Failing an answer, the LMS the admin
        configured for the registration; failing that, ``generic``.
        """
        for answer in await gather_hook_results(self.pm.hook.identify_lms(message=message)):
            if isinstance(answer, str) and answer in self.details:
                return answer
        if message.configured_lms and message.configured_lms in self.details:
            return message.configured_lms
        return GENERIC

    def _lms_caller(self, lms: str, hook: str) -> Any:
        key = (lms, hook)
        caller = self._subset_callers.get(key)
        if caller is None:
            own = self.pm.get_plugin(lms)
            if own is None:
                raise PluginError(f"no plugin named {lms!r} is loaded")
            others = [p for p in self.pm.get_plugins() if p is not own]
            caller = self.pm.subset_hook_caller(hook, remove_plugins=others)
            self._subset_callers[key] = caller
        return caller

    def implements(self, lms: str, hook: str) -> bool:
        """Whether the plugin ``lms`` implements ``hook`` itself."""
        return bool(self._lms_caller(lms, hook).get_hookimpls())

    async def call_lms(self, lms: str, hook: str, **kwargs: Any) -> Any:
        """Call an LMS hook on the plugin of ``lms`` only, and return its answer."""
        results = self._lms_caller(lms, hook)(**kwargs)
        for result in results:
            value = await await_me_maybe(result)
            if value is not None:
                return value
        return None

    async def broadcast(
        self, hook: str, enabled: Iterable[str] | None = None, **kwargs: Any
    ) -> list[Any]:
        """Call a hook on every loaded plugin (or only those in ``enabled``), in order."""
        if enabled is None:
            caller = getattr(self.pm.hook, hook)
        else:
            keep = set(enabled)
            caller = self.pm.subset_hook_caller(
                hook,
                remove_plugins=[
                    p for n, p in self.pm.list_name_plugin() if n not in keep and n != GENERIC
                ],
            )
        return await gather_hook_results(caller(**kwargs))

    def broadcast_sync(self, hook: str, **kwargs: Any) -> list[tuple[str, Any]]:
        """Call a synchronous broadcast hook, with each answer's plugin name."""
        out = []
        for name, plugin in self.pm.list_name_plugin():
            impl = getattr(plugin, hook, None)
            if impl is None or not hasattr(impl, f"{hookspecs.PROJECT}_impl"):
                continue
            value = impl(**kwargs)
            if value is not None:
                out.append((name, value))
        return out
