"""Every route of the admin plugin (all under ``/api/v1/admin``, guarded by the kernel's middleware)."""

from __future__ import annotations

from aiohttp import web

from grok2api_plugins.admin.accounts import account_routes
from grok2api_plugins.admin.session_routes import session_routes


def admin_routes() -> list[web.AbstractRouteDef]:
    return [*session_routes(), *account_routes()]
