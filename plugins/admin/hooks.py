"""Hook implementations only: the ``[admin]`` section, the admin JSON routes, the console's pages,
the start-up context."""

from __future__ import annotations

from typing import TYPE_CHECKING

from grok2api import hookimpl

if TYPE_CHECKING:
    from aiohttp import web

    from grok2api.api import AdminPageRegistry, CleanupContext, ConfigRegistry, Settings


@hookimpl
def grok2api_add_config(config: ConfigRegistry) -> None:
    from grok2api_plugins.admin.settings import AdminSettings

    config.add_section("admin", AdminSettings, moved={
        "performance.assets_delete_batch_size": "assets_delete_batch_size",
        "performance.admin_assets_batch_size": "assets_batch_size",
    })


@hookimpl
def grok2api_register_admin_pages(pages: AdminPageRegistry, settings: Settings) -> None:
    from grok2api_plugins.admin.pages import register_pages

    register_pages(pages)


@hookimpl
def grok2api_add_routes(app: web.Application) -> list[web.AbstractRouteDef]:
    from grok2api_plugins.admin.respond import mark_password_due
    from grok2api_plugins.admin.routes import admin_routes

    app.on_response_prepare.append(mark_password_due)  # signals freeze before start-up contexts run
    return admin_routes()


@hookimpl
def grok2api_cleanup_ctx(app: web.Application) -> CleanupContext:
    from grok2api_plugins.admin.service import admin_context

    return admin_context
