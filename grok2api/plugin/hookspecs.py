"""Every hook a plugin may implement.

Hooks are synchronous and run while :func:`grok2api.web.app.create_app` builds the app
(or, for commands, while the ``grok2api`` command builds its parser). They hand objects
to typed registries; the async work lives in those objects' methods. Nothing here runs
per request or per stream chunk.

Order of calls at start-up: :func:`grok2api_add_config`; then every config section is
validated; then the registration hooks, each given the validated ``settings``:
capabilities, storage, models, filters, image methods, observers, admin pages; then
routes and cleanup contexts. An implementation may take any subset of a hook's
arguments. Hooks are called through pluggy, so ``tryfirst``, ``trylast`` and
``wrapper=True`` behave as pluggy documents.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from aiohttp import web

    from grok2api.config.settings import Settings
    from grok2api.plugin.registries import (
        AdminPageRegistry,
        CapabilityRegistry,
        CleanupContext,
        CommandRegistry,
        ConfigRegistry,
        FilterRegistry,
        ImageMethodRegistry,
        ModelRegistry,
        ObserverRegistry,
        StorageRegistry,
    )

hookspec = pluggy.HookspecMarker("grok2api")


@hookspec
def grok2api_add_config(config: ConfigRegistry) -> None:
    """Declare the plugin's config sections.

    Called first, before settings are validated. Call
    ``config.add_section(name, model, moved={...})`` with a pydantic model; the ``[name]``
    table of ``config.toml`` and the ``GROK2API_<NAME>__<KEY>`` variables are validated
    against it and the result is available as ``settings.<name>``. ``moved`` maps key
    names of the original product that now belong to this section
    (``{"grok.video_poster_preview": "poster_preview"}``): a value written under the old
    name is read into the new field. Two plugins claiming one section name stop
    start-up. Returns nothing.
    """


@hookspec
def grok2api_register_capabilities(capabilities: CapabilityRegistry, settings: Settings) -> None:
    """Add endpoints the kernel dispatches by model.

    Call ``capabilities.add(Capability(name, method, path, read_body=..., render_error=...))``.
    The kernel serves the route: API-key authentication, reading the body, ``model``
    lookup (404 for an unknown model, 400 for a model without a handler for this
    capability), then the model's handler; every error leaves through ``render_error``
    (the API's own error shape) or as an OpenAI error object. The kernel registers
    ``chat`` (``/v1/chat/completions``), ``image`` (``/v1/images/generations``) and
    ``image_edit`` (``/v1/images/edits``, multipart) itself. Returns nothing.
    """


@hookspec
def grok2api_register_models(models: ModelRegistry, settings: Settings) -> None:
    """Register models and the handlers that serve them.

    Call ``models.add(spec, chat=handler, image=..., <capability>=...)`` with a
    :class:`~grok2api.api.ModelSpec` and one handler per capability name. A model id
    registered twice, or a handler for a capability nobody registered, stops start-up.
    Returns nothing.
    """


@hookspec
def grok2api_register_storage(storage: StorageRegistry, settings: Settings) -> None:
    """Offer storage engines.

    Call ``storage.add(name, factory)`` where ``factory(settings)`` returns an unopened
    :class:`~grok2api.api.Storage`. The engine named by ``SERVER_STORAGE_TYPE`` is
    built and opened when the app starts. Duplicate names stop start-up. Returns nothing.
    """


@hookspec
def grok2api_register_filters(filters: FilterRegistry, settings: Settings) -> None:
    """Add response filters to the kernel's filter chain.

    Call ``filters.add(filter)`` with a :class:`~grok2api.api.ResponseFilter`; its
    ``priority`` (lower runs first) fixes the order, never the plugin load order. The
    chain is built once; filters never run through pluggy per chunk. Returns nothing.
    """


@hookspec
def grok2api_register_image_methods(methods: ImageMethodRegistry, settings: Settings) -> None:
    """Offer image-generation methods (``legacy``, ``imagine_ws_experimental``, …).

    Call ``methods.add(method)`` with an :class:`~grok2api.api.ImageMethod`.
    ``grok.image_generation_method`` picks one by name (the original's aliases
    included); a name no plugin registered stops start-up with the list of installed
    methods. Duplicate names stop start-up. Returns nothing.
    """


@hookspec
def grok2api_register_observers(observers: ObserverRegistry, settings: Settings) -> None:
    """Watch requests, for metrics and audit.

    Call ``observers.add(observer)`` with a :class:`~grok2api.api.RequestObserver`.
    Its ``request_finished(app, record)`` runs once per request after the response
    ended, never per chunk; it must not block, and its exceptions are logged and
    ignored. With no observer registered the kernel builds no record. Returns nothing.
    """


@hookspec
def grok2api_register_admin_pages(pages: AdminPageRegistry, settings: Settings) -> None:
    """Add pages to the admin console, their navigation entries and static files.

    Call ``pages.add(AdminPage(path, handler, title=..., order=...))`` and
    ``pages.add_static(StaticFiles(name, directory))``. Pages need an admin session
    (bearer token or session cookie) unless ``public=True``; a browser without one is
    redirected to the page added with ``login=True``. Static files are served under
    ``/static/<name>/`` to anyone, so they must hold no secrets. The navigation is
    served at ``GET /api/v1/admin/pages``. Returns nothing.
    """


@hookspec
def grok2api_register_commands(commands: CommandRegistry) -> None:
    """Add ``grok2api <name>`` subcommands.

    Called while the ``grok2api`` command builds its parser, before settings are loaded
    (only ``plugins.disabled`` is read, so ``--help`` stays quick; a command's ``run``
    receives the settings). Keep imports inside the hook implementation. Call
    ``commands.add(Command(name, help, arguments=..., run=...))``, or with ``run_app=``
    for a command that needs the started app. A name already taken stops the command.
    Returns nothing.
    """


@hookspec
def grok2api_add_routes(app: web.Application) -> list[web.AbstractRouteDef] | None:
    """Return extra routes (``aiohttp.web.RouteDef`` objects) for the app.

    Called once while the app is built. The kernel's authentication applies by path:
    paths under ``/v1/`` need an API key (except ``/v1/files/``, the media cache, whose
    file names are unguessable), paths under ``/api/v1/admin/`` an admin session (except
    the login route); everything else is public. Return None or an empty list to add
    nothing.
    """


@hookspec
def grok2api_cleanup_ctx(app: web.Application) -> CleanupContext | None:
    """Return an async-generator function run as an aiohttp cleanup context.

    The code before its ``yield`` runs at start-up (after storage, the pool and the
    upstream client are ready); the code after it at shutdown, in reverse order.
    Return None when the plugin has no lifecycle.
    """
