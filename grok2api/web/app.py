"""``create_app``: one plugin manager, one set of registries, one aiohttp app.

Start-up order (aiohttp cleanup contexts, undone in reverse at shutdown): storage
(schema, data migrations, legacy import, stored config), API keys, the Grok client, the token pool, the
change-feed watcher that keeps workers in step, then each plugin's own context.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterable
from types import ModuleType

from aiohttp import web
from pydantic import ValidationError

from grok2api.config.runtime import load_stored, reload_section
from grok2api.config.settings import PLUGIN_OWNED_KEYS, SECTIONS, ConfigError, GrokSettings, Settings, describe_error
from grok2api.keys.service import KeyService
from grok2api.logs.logger import logger
from grok2api.logs.request_log import RequestLog
from grok2api.media.cache import MediaCache
from grok2api.plugin.filters import FilterChain
from grok2api.plugin.manager import Hooks, build_plugin_manager
from grok2api.plugin.registries import ConfigRegistry, Registries
from grok2api.pool import TokenPool
from grok2api.pool.account import NS_COUNTS
from grok2api.pool.claims import NS_CLAIMS
from grok2api.storage import NS_ACCOUNTS, NS_API_KEYS, NS_CONFIG, Change, StorageError
from grok2api.storage.legacy_import import import_legacy
from grok2api.storage.migrations import migrate
from grok2api.storage.sealed import Secrets, prepare
from grok2api.upstream import GrokClient
from grok2api.web.appkeys import (
    FILTERS,
    KEYS,
    MEDIA,
    OBSERVERS,
    PLUGIN_MANAGER,
    POOL,
    REGISTRIES,
    REQUEST_LOG,
    SESSIONS,
    SETTINGS,
    STORAGE,
    UPSTREAM,
)
from grok2api.web.auth import AdminSessions, auth_middleware
from grok2api.web.errors import error_middleware
from grok2api.web.middleware import cors_preflight_middleware, request_id_middleware, stamp_headers
from grok2api.web.pages import admin_page_routes
from grok2api.web.routes import kernel_routes

#: what is encrypted at rest when a credential key is configured (docs/security.md)
SECRETS = Secrets(accounts=NS_ACCOUNTS, token_counters=(NS_COUNTS, NS_CLAIMS),
                  fields={(NS_CONFIG, "grok"): ("cf_clearance",)})


def create_app(
    settings: Settings,
    plugins: Iterable[ModuleType | object] = (),
    *,
    load_entrypoints: bool = True,
) -> web.Application:
    """Build the gateway. ``plugins`` are registered in addition to (or, with
    ``load_entrypoints=False``, instead of) the installed ones.

    Order: plugins declare their config sections; every section is validated; the
    registration hooks run with the validated settings; then the app is assembled.
    Raises :class:`~grok2api.config.settings.ConfigError` for anything an operator must fix.
    """
    pm = build_plugin_manager(plugins, load_entrypoints=load_entrypoints, disabled=settings.plugins.disabled)
    hooks = Hooks(pm)
    registries = Registries(config=ConfigRegistry(reserved=set(SECTIONS)))
    hooks.add_config(registries)
    _validate_plugin_sections(settings, registries)
    hooks.register(registries, settings)
    _check_choices(settings, registries)

    app = web.Application(
        middlewares=[
            request_id_middleware,
            error_middleware,
            cors_preflight_middleware,
            auth_middleware(lambda: settings.app.api_key, lambda: app[KEYS], lambda: app[SESSIONS]),
        ],
        client_max_size=int(settings.app.max_request_mb * 1024 * 1024),
    )
    app[SETTINGS] = settings
    app[PLUGIN_MANAGER] = pm
    app[REGISTRIES] = registries
    app[FILTERS] = FilterChain(registries.filters.filters)
    app.on_response_prepare.append(stamp_headers)
    app.cleanup_ctx.extend([_storage_ctx, _services_ctx, _change_feed_ctx])
    app.cleanup_ctx.extend(hooks.cleanup_contexts(app))
    app.router.add_routes(kernel_routes(registries.capabilities.capabilities.values()))
    app.router.add_routes(admin_page_routes(registries.admin_pages))
    app.router.add_routes(hooks.routes(app))
    return app


def config_sections(registries: Registries) -> dict[str, type]:
    """Every section a run-time change may touch: the kernel's and the plugins'."""
    return {**SECTIONS, **registries.config.sections}


def _validate_plugin_sections(settings: Settings, registries: Registries) -> None:
    """Each plugin section from its own table plus the original's key names it took over
    (a value under the new name wins); a kernel-section key nobody takes is an error."""
    raw = settings.extra_sections
    unclaimed = dict(settings.unclaimed_keys)
    for name, model in registries.config.sections.items():
        table = dict(raw.get(name) or {})
        for dotted, field_name in registries.config.moved[name].items():
            if dotted in settings.unclaimed_keys:
                table.setdefault(field_name, settings.unclaimed_keys[dotted])
                unclaimed.pop(dotted, None)
        try:
            setattr(settings, name, model.model_validate(table))
        except ValidationError as exc:
            raise ConfigError(f"invalid configuration: {describe_error(exc, name)}") from exc
    for dotted in sorted(unclaimed):
        if dotted not in PLUGIN_OWNED_KEYS:
            raise ConfigError(f"invalid configuration: {dotted}: unknown key (no kernel section or "
                              "installed plugin takes it)")
        logger.warning("config key {} is used by a plugin that is not installed", dotted)
    for name in sorted(set(raw) - set(registries.config.sections)):
        logger.warning("config section [{}] is not used by any installed plugin", name)


def _check_choices(settings: Settings, registries: Registries) -> None:
    """Names in config that a plugin must provide: the storage engine and the image method."""
    if settings.server.storage_type not in registries.storage.factories:
        offered = ", ".join(sorted(registries.storage.factories)) or "none"
        raise ConfigError(
            f"server.storage_type: no installed plugin provides storage {settings.server.storage_type!r} "
            f"(available: {offered}); is the plugin installed and enabled?"
        )
    method = settings.grok.image_generation_method
    methods = registries.image_methods.methods
    if method not in methods and (methods or method != GrokSettings.model_fields["image_generation_method"].default):
        raise ConfigError(
            f"grok.image_generation_method: no installed plugin provides image method {method!r} "
            f"(installed: {', '.join(sorted(methods)) or 'none'})"
        )


async def _storage_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    storage = app[REGISTRIES].storage.factories[settings.server.storage_type](settings)
    try:
        await storage.open()
    except StorageError as exc:
        raise ConfigError(f"storage {settings.server.storage_type!r}: {exc}") from exc
    try:
        await migrate(storage)
        storage = await prepare(storage, settings.data_dir, SECRETS)
    except StorageError as exc:
        await storage.close()
        raise ConfigError(f"storage {settings.server.storage_type!r}: {exc}") from exc
    app[STORAGE] = storage
    try:
        await import_legacy(storage, settings.data_dir)
        await load_stored(storage, settings, config_sections(app[REGISTRIES]))
        yield
    finally:
        await storage.close()


async def _services_ctx(app: web.Application) -> AsyncIterator[None]:
    settings, storage = app[SETTINGS], app[STORAGE]
    app[KEYS] = KeyService(storage, settings)
    app[SESSIONS] = AdminSessions(storage, lambda: settings.app.app_key)
    app[UPSTREAM] = client = GrokClient(settings)
    app[MEDIA] = media = MediaCache(settings, client)
    app[POOL] = pool = TokenPool(storage, client, settings)
    app[REQUEST_LOG] = request_log = RequestLog(
        storage, interval=lambda: settings.performance.request_log_flush_ms / 1000)
    app[OBSERVERS] = [request_log, *app[REGISTRIES].observers.observers]
    await pool.start()
    request_log.start()
    try:
        yield
    finally:
        for step in (request_log.stop, pool.stop, app[KEYS].close, media.close, client.close):
            try:  # one step failing never skips the next: the pool's writes must happen
                await step()
            except Exception:
                logger.exception("shutdown: {} failed", step.__qualname__)


async def _route_change(app: web.Application, change: Change, sections: dict[str, type]) -> None:
    storage, settings = app[STORAGE], app[SETTINGS]
    if change.op == "reset":  # fell behind the trimmed feed: reload everything
        await app[POOL].apply_change(change)
        app[KEYS].apply_change(change)
        await load_stored(storage, settings, sections)
    elif change.ns == NS_ACCOUNTS:
        await app[POOL].apply_change(change)
    elif change.ns == NS_API_KEYS:
        app[KEYS].apply_change(change)
    elif change.ns == NS_CONFIG:
        await reload_section(storage, settings, change.key, sections)


async def _change_feed_ctx(app: web.Application) -> AsyncIterator[None]:
    """Route other workers' writes to the part of this process that caches them.

    Shutdown never waits on the engine's client honouring a cancellation (some swallow
    one): the loop also checks a flag, and the task is cancelled until it ends.
    """
    storage, settings = app[STORAGE], app[SETTINGS]
    sections = config_sections(app[REGISTRIES])
    stopping = asyncio.Event()
    seq = await storage.last_change()

    async def follow() -> None:
        nonlocal seq
        while not stopping.is_set():
            try:
                poll = max(0.05, min(settings.token.reload_interval_sec or 30, 30))
                for change in await storage.wait_for_changes(seq, poll):
                    seq = change.seq
                    await _route_change(app, change, sections)
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("change feed interrupted; resuming")
                await asyncio.sleep(1)

    task = asyncio.create_task(follow(), name=f"change-feed-{uuid.uuid4().hex[:6]}")
    try:
        yield
    finally:
        stopping.set()
        while not task.done():
            task.cancel()
            await asyncio.wait({task}, timeout=0.5)
