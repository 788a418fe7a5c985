"""The plugin manager: entry points, built-in plugins and per-credential enablement.

Plugins are found through the ``ltipro`` entry-point group; the built-in ``generic``
plugin is registered the same way (through its hooks, nothing special). The
``LTIPRO_PLUGINS`` setting limits which installed plugins load.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
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
PROVIDERS = "providers"
DEFAULT_PLUGINS: dict[str, str] = {
    GENERIC: "ltipro.default_plugins.generic",
    PROVIDERS: "ltipro.default_plugins.providers",
}


class PluginError(RuntimeError):
    """A plugin cannot be loaded or implements a hook that does not exist."""


class Plugins:
    """The loaded plugins and the calls the core makes on them."""

    def __init__(self, pm: pluggy.PluginManager) -> None:
        self.pm = pm
        self.details: dict[str, LmsDetails] = {}
        self._subset_callers: dict[tuple[str, str], Any] = {}
        for impl in pm.hook.lms_details.get_hookimpls():
            detail = _value_now(impl.function(), impl.plugin_name, "lms_details")
            if detail is None:
                continue
            if not isinstance(detail, LmsDetails):
                raise PluginError(
                    f"the plugin {impl.plugin_name!r} returned {type(detail).__name__} from "
                    "lms_details: it must return an ltipro.extension.LmsDetails"
                )
            if detail.name != impl.plugin_name:
                raise PluginError(
                    f"plugin {impl.plugin_name!r} describes itself as {detail.name!r}: the "
                    "entry point name and LmsDetails.name must be the same"
                )
            self.details[impl.plugin_name] = detail

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
                    f"the plugin {ep.name!r} ({ep.value}) failed to import: "
                    f"{type(exc).__name__}: {exc}"
                ) from exc
            _register(pm, plugin, ep.name)
            found.add(ep.name)
        for name, plugin in extra:
            _register(pm, plugin, name)
            found.add(name)
        if wanted is not None:
            unknown = wanted - found - set(DEFAULT_PLUGINS)
            if unknown:
                raise PluginError(
                    "LTIPRO_PLUGINS names plugins that are not installed: "
                    + ", ".join(sorted(unknown))
                )
        _check_hook_names(pm)
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
        """Register a plugin after loading (tests); unregister it with :meth:`unregister`.

        The plugin is checked as at load time: a hook name that does not exist, or an
        ``lms_details`` that names another plugin, raises :class:`PluginError` and leaves
        the loaded plugins as they were.
        """
        _register(self.pm, plugin, name)
        try:
            _check_hook_names(self.pm)
            self.__init__(self.pm)  # type: ignore[misc]
        except PluginError:
            self.pm.unregister(name=name)
            self.__init__(self.pm)  # type: ignore[misc]
            raise

    def unregister(self, name: str) -> None:
        """Remove a plugin registered with :meth:`register` (or loaded)."""
        if self.pm.get_plugin(name) is None:
            raise PluginError(f"no plugin named {name!r} is loaded")
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

    async def broadcast_named(self, hook: str, **kwargs: Any) -> list[tuple[str, Any]]:
        """Call a broadcast hook on every loaded plugin; each answer with its plugin's name.

        Answers come in call order (the last-registered plugin first) and ``None``
        answers are dropped. Used where the core must know who said what, as for the
        settings each plugin declares.
        """
        out = []
        for impl in self._impls(hook):
            value = await await_me_maybe(impl.function(*[kwargs[a] for a in impl.argnames]))
            if value is not None:
                out.append((impl.plugin_name, value))
        return out

    def broadcast_sync(self, hook: str, **kwargs: Any) -> list[tuple[str, Any]]:
        """Call a broadcast hook from synchronous code, with each answer's plugin name.

        The app's routes and the migrations are assembled before any event loop runs and
        the simulator lists examples synchronously, so these hooks may return a value or
        a callable, but not an awaitable.
        """
        out = []
        for impl in self._impls(hook):
            value = _value_now(
                impl.function(*[kwargs[a] for a in impl.argnames]), impl.plugin_name, hook
            )
            if value is not None:
                out.append((impl.plugin_name, value))
        return out

    def _impls(self, hook: str) -> list[Any]:
        """A hook's implementations in the order pluggy calls them (wrappers aside)."""
        impls = getattr(self.pm.hook, hook).get_hookimpls()
        return [i for i in reversed(impls) if not (i.wrapper or i.hookwrapper)]


def _value_now(value: Any, plugin: str, hook: str) -> Any:
    """Resolve an answer without an event loop: call a callable, refuse an awaitable."""
    if callable(value) and not inspect.isclass(value):
        value = value()
    if inspect.isawaitable(value):
        if inspect.iscoroutine(value):
            value.close()  # never awaited: close it so Python does not warn about it
        raise PluginError(
            f"the plugin {plugin!r} answered {hook} with an awaitable, but the core reads "
            f"{hook} from synchronous code: return the value itself (a plain function, "
            "not async)"
        )
    return value


def _register(pm: pluggy.PluginManager, plugin: Any, name: str) -> None:
    """Register one plugin, turning pluggy's complaints into a :class:`PluginError`."""
    if pm.has_plugin(name):
        raise PluginError(f"two plugins are named {name!r}: plugin names must be unique")
    try:
        pm.register(plugin, name=name)
    except pluggy.PluginValidationError as exc:
        # A hook with arguments its specification does not have.
        raise PluginError(f"the plugin {name!r} does not match the ltipro hooks: {exc}") from exc
    except ValueError as exc:
        raise PluginError(f"the plugin {name!r} cannot be registered: {exc}") from exc


def _check_hook_names(pm: pluggy.PluginManager) -> None:
    """Fail loudly on a ``hookimpl`` whose name is not a hook (a typo never goes unnoticed)."""
    known = hookspecs.hook_names()
    for hook in list(vars(pm.hook)):
        if hook.startswith("_"):
            continue
        caller = getattr(pm.hook, hook)
        if caller.has_spec():
            continue
        for impl in caller.get_hookimpls():
            if impl.optionalhook:
                continue
            close = difflib.get_close_matches(hook, known, n=1)
            suggestion = f" (did you mean {close[0]!r}?)" if close else ""
            raise PluginError(
                f"the plugin {impl.plugin_name!r} implements {hook!r}, which is not an "
                f"ltipro hook{suggestion}; the hooks are listed in docs/plugins.md"
            )
