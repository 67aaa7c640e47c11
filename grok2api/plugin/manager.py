"""The plugin manager of one app, entry-point discovery, and the typed hook facade.

Kernel code calls hooks only through :class:`Hooks`, never ``pm.hook.x(...)`` directly,
so every call site is typed and every registration knows which plugin made it. Nothing
here imports aiohttp or the settings models at run time: the ``grok2api`` command
builds a manager before it knows whether it will need either.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib import metadata
from types import ModuleType
from typing import TYPE_CHECKING, Any

import pluggy

from grok2api.plugin import hookspecs
from grok2api.plugin.registries import Attribution, CleanupContext, CommandRegistry, RegistrationError, Registries

if TYPE_CHECKING:
    from aiohttp import web

    from grok2api.config.settings import Settings

GROUP = "grok2api"
KERNEL_PREFIX = "kernel:"


@dataclass(frozen=True, slots=True)
class PluginInfo:
    name: str
    version: str
    hooks: tuple[str, ...]
    enabled: bool


def installed_entry_points() -> list[metadata.EntryPoint]:
    return sorted(metadata.entry_points(group=GROUP), key=lambda ep: ep.name)


def build_plugin_manager(
    plugins: Iterable[ModuleType | object] = (),
    *,
    load_entrypoints: bool = True,
    disabled: Sequence[str] = (),
) -> pluggy.PluginManager:
    """A fresh manager with the given plugin objects and (optionally) every installed one.

    A name in ``disabled`` that no installed or given plugin has is a configuration
    error: it is most likely a typo, and silently ignoring it would leave the plugin on.
    """
    pm = pluggy.PluginManager(GROUP)
    pm.add_hookspecs(hookspecs)
    for builtin in _kernel_plugins():
        pm.register(builtin, name=builtin.PLUGIN_NAME)
    known = {ep.name for ep in installed_entry_points()} if load_entrypoints else set()
    for plugin in plugins:
        known.add(plugin_name(plugin))
    unknown = sorted(set(disabled) - known)
    if unknown:
        from grok2api.config.settings import ConfigError

        raise ConfigError(
            f"plugins.disabled names {', '.join(map(repr, unknown))}, which no installed plugin provides "
            f"(installed: {', '.join(sorted(known)) or 'none'})"
        )
    for name in disabled:
        pm.set_blocked(name)
    for plugin in plugins:
        name = plugin_name(plugin)
        if not pm.is_blocked(name):
            pm.register(plugin, name=name)
    if load_entrypoints:
        pm.load_setuptools_entrypoints(GROUP)
    pm.check_pending()
    return pm


def _kernel_plugins() -> list[ModuleType]:
    """The kernel's own hook implementations (its capabilities and commands): always on,
    and not listed among the plugins."""
    from grok2api.cli import commands
    from grok2api.web import capabilities

    return [capabilities, commands]


def plugin_name(plugin: object) -> str:
    """A plugin's name: an explicit ``name`` attribute, else the plugin folder's name."""
    explicit = getattr(plugin, "plugin_name", None)
    if isinstance(explicit, str):
        return explicit
    module = getattr(plugin, "__name__", type(plugin).__name__)
    parts = module.split(".")
    return parts[-2] if parts[-1] == "hooks" and len(parts) > 1 else parts[-1]


def plugin_infos(pm: pluggy.PluginManager, disabled: Sequence[str] = ()) -> list[PluginInfo]:
    """Every plugin known to the app, installed-but-disabled ones included."""
    versions = {ep.name: (ep.dist.version if ep.dist else "") for ep in installed_entry_points()}
    infos = []
    for name, plugin in pm.list_name_plugin():
        if plugin is None or name.startswith(KERNEL_PREFIX):
            continue
        hooks = tuple(sorted(c.name for c in pm.get_hookcallers(plugin) or ()))
        infos.append(PluginInfo(name, versions.get(name, ""), hooks, True))
    for name in sorted(set(disabled)):
        infos.append(PluginInfo(name, versions.get(name, ""), (), False))
    return sorted(infos, key=lambda info: info.name)


class Hooks:
    """Typed calls into the plugins, through pluggy's own hook calling.

    Before each call the registries' :class:`~grok2api.plugin.registries.Attribution`
    learns which function belongs to which plugin, so a registration (or a crash) inside
    an implementation is reported with the plugin's name.
    """

    def __init__(self, pm: pluggy.PluginManager) -> None:
        self.pm = pm

    def _call(self, hook_name: str, attribution: Attribution, **kwargs: object) -> list[Any]:
        caller = getattr(self.pm.hook, hook_name)
        attribution.plugins = {impl.function.__code__: impl.plugin_name for impl in caller.get_hookimpls()}
        try:
            return list(caller(**kwargs))
        except RegistrationError:
            raise
        except Exception as exc:
            culprit = _culprit(exc, attribution)
            raise RegistrationError(f"plugin {culprit!r}: {hook_name} failed: {exc!r}") from exc
        finally:
            attribution.plugins = {}

    def add_config(self, registries: Registries) -> None:
        self._call("grok2api_add_config", registries.attribution, config=registries.config)

    def register(self, registries: Registries, settings: Settings) -> None:
        """Every registration hook after config, each given the validated settings."""
        a = registries.attribution
        self._call("grok2api_register_capabilities", a, capabilities=registries.capabilities, settings=settings)
        self._call("grok2api_register_storage", a, storage=registries.storage, settings=settings)
        self._call("grok2api_register_models", a, models=registries.models, settings=settings)
        self._call("grok2api_register_filters", a, filters=registries.filters, settings=settings)
        self._call("grok2api_register_image_methods", a, methods=registries.image_methods, settings=settings)
        self._call("grok2api_register_observers", a, observers=registries.observers, settings=settings)
        self._call("grok2api_register_admin_pages", a, pages=registries.admin_pages, settings=settings)
        registries.models.check(registries.capabilities.capabilities)

    def commands(self, commands: CommandRegistry) -> None:
        self._call("grok2api_register_commands", commands.attribution, commands=commands)

    def routes(self, app: web.Application) -> list[web.AbstractRouteDef]:
        routes: list[web.AbstractRouteDef] = []
        for result in self._call("grok2api_add_routes", Attribution(), app=app):
            routes.extend(result or ())
        return routes

    def cleanup_contexts(self, app: web.Application) -> list[CleanupContext]:
        results = self._call("grok2api_cleanup_ctx", Attribution(), app=app)
        return [ctx for ctx in reversed(results) if ctx is not None]


def _culprit(exc: BaseException, attribution: Attribution) -> str:
    """The plugin whose implementation the traceback of ``exc`` passes through."""
    tb = exc.__traceback__
    while tb is not None:
        name = attribution.plugins.get(tb.tb_frame.f_code)
        if name is not None:
            return name
        tb = tb.tb_next
    return "?"
