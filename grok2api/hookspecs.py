"""Every hook a plugin may implement.

Hooks are synchronous and run once, while :func:`grok2api.app.create_app` builds the
app. They hand objects to typed registries; the async work lives in those objects'
methods. Nothing here runs per request or per stream chunk.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from aiohttp import web

    from grok2api.registry import (
        CleanupContext,
        ConfigRegistry,
        FilterRegistry,
        ImageMethodRegistry,
        ModelRegistry,
        StorageRegistry,
    )

hookspec = pluggy.HookspecMarker("grok2api")


@hookspec
def grok2api_add_config(config: ConfigRegistry) -> None:
    """Declare the plugin's config sections.

    Called first, before settings are validated. Call ``config.add_section(name, model)``
    with a pydantic model; the ``[name]`` table of ``config.toml`` and the
    ``GROK2API_<NAME>__<KEY>`` variables are validated against it and the result is
    available as ``settings.<name>``. Returns nothing. Two plugins claiming one section
    name stop start-up.
    """


@hookspec
def grok2api_register_models(models: ModelRegistry) -> None:
    """Register models and the handlers that serve them.

    Called once per app, after config. Call ``models.add(spec, chat=..., image=...,
    image_edit=...)`` with a :class:`~grok2api.registry.ModelSpec` and a handler per
    capability it serves. A model id registered twice stops start-up. Returns nothing.
    """


@hookspec
def grok2api_register_storage(storage: StorageRegistry) -> None:
    """Offer storage engines.

    Call ``storage.add(name, factory)`` where ``factory(settings)`` returns an unopened
    :class:`~grok2api.storage.Storage`. The engine named by ``SERVER_STORAGE_TYPE`` is
    built and opened when the app starts. Duplicate names stop start-up. Returns nothing.
    """


@hookspec
def grok2api_register_filters(filters: FilterRegistry) -> None:
    """Add response filters to the kernel's filter chain.

    Call ``filters.add(filter)`` with a :class:`~grok2api.filters.ResponseFilter`; its
    ``priority`` (lower runs first) fixes the order, never the plugin load order. The
    chain is built once; filters never run through pluggy per chunk. Returns nothing.
    """


@hookspec
def grok2api_register_image_methods(methods: ImageMethodRegistry) -> None:
    """Offer image-generation methods (``legacy``, ``imagine_ws_experimental``, …).

    Call ``methods.add(name, method)``. ``grok.image_generation_method`` picks one by
    name at request time. Duplicate names stop start-up. Returns nothing.
    """


@hookspec
def grok2api_add_routes(app: web.Application) -> list[web.AbstractRouteDef] | None:
    """Return extra routes (``aiohttp.web.RouteDef`` objects) for the app.

    Called once while the app is built. Paths under ``/v1/`` need an API key and paths
    under ``/api/v1/admin/`` an admin session; the kernel enforces both. Return None or
    an empty list to add nothing.
    """


@hookspec
def grok2api_cleanup_ctx(app: web.Application) -> CleanupContext | None:
    """Return an async-generator function run as an aiohttp cleanup context.

    The code before its ``yield`` runs at start-up (after storage, the pool and the
    upstream client are ready); the code after it at shutdown, in reverse order.
    Return None when the plugin has no lifecycle.
    """
