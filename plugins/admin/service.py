"""Start-up of the admin plugin: seed the first admin user, install the stored sessions."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from grok2api.api import SESSIONS, SETTINGS, STORAGE
from grok2api_plugins.admin.identity import StoredSessions


async def admin_context(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    stored = StoredSessions(app[STORAGE], settings)
    await stored.users.seed(settings.app.admin_username, settings.app.app_key)
    app[SESSIONS] = stored
    yield
