"""The plugin manager of one app, entry-point discovery, and the typed hook facade.

Kernel code calls hooks only through :class:`Hooks`, never ``pm.hook.x(...)`` directly,
so every call site is typed and every registration knows which plugin made it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib import metadata
from types import ModuleType

import pluggy
from aiohttp import web

from grok2api import hookspecs
from grok2api.config import ConfigError
from grok2api.registry import CleanupContext, Registries, _Registry

GROUP = "grok2api"


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
    known = {ep.name for ep in installed_entry_points()} if load_entrypoints else set()
    for plugin in plugins:
        known.add(plugin_name(plugin))
    unknown = sorted(set(disabled) - known)
    if unknown:
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
        if plugin is None:
            continue
        hooks = tuple(sorted(c.name for c in pm.get_hookcallers(plugin) or ()))
        infos.append(PluginInfo(name, versions.get(name, ""), hooks, True))
    for name in sorted(set(disabled)):
        infos.append(PluginInfo(name, versions.get(name, ""), (), False))
    return sorted(infos, key=lambda info: info.name)


class Hooks:
    """Typed calls into the plugins. Each hook implementation runs with its registry
    told which plugin is speaking, so errors name the culprit."""

    def __init__(self, pm: pluggy.PluginManager) -> None:
        self.pm = pm

    def _each(self, hook_name: str, registry: _Registry) -> None:
        caller = getattr(self.pm.hook, hook_name)
        for impl in reversed(caller.get_hookimpls()):  # pluggy calls last-registered first
            registry.current_plugin = impl.plugin_name
            impl.function(**{arg: registry for arg in impl.argnames})
        registry.current_plugin = "?"

    def fill(self, registries: Registries) -> None:
        """Run every registration hook, in the order start-up needs them."""
        self._each("grok2api_add_config", registries.config)
        self._each("grok2api_register_storage", registries.storage)
        self._each("grok2api_register_models", registries.models)
        self._each("grok2api_register_filters", registries.filters)
        self._each("grok2api_register_image_methods", registries.image_methods)

    def routes(self, app: web.Application) -> list[web.AbstractRouteDef]:
        routes: list[web.AbstractRouteDef] = []
        for result in self.pm.hook.grok2api_add_routes(app=app):
            routes.extend(result or ())
        return routes

    def cleanup_contexts(self, app: web.Application) -> list[CleanupContext]:
        return [ctx for ctx in reversed(self.pm.hook.grok2api_cleanup_ctx(app=app)) if ctx is not None]
