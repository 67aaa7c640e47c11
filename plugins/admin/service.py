"""Start-up of the admin plugin: seed the admin user, install the stored sessions, run the job runner."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from grok2api.api import SESSIONS, SETTINGS, STORAGE
from grok2api_plugins.admin.identity import StoredSessions
from grok2api_plugins.admin.jobs import running


async def admin_context(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    stored = StoredSessions(app[STORAGE], settings)
    await stored.users.seed(settings.app.admin_username, settings.app.app_key)
    app[SESSIONS] = stored
    async with running(app):
        yield
