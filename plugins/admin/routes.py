"""Every route of the admin plugin (all under ``/api/v1/admin``, guarded by the kernel's middleware)."""

from __future__ import annotations

from aiohttp import web

from grok2api_plugins.admin.accounts import account_routes
from grok2api_plugins.admin.config import config_routes
from grok2api_plugins.admin.jobs import job_routes
from grok2api_plugins.admin.keys import key_routes
from grok2api_plugins.admin.logs import log_routes
from grok2api_plugins.admin.media import media_routes
from grok2api_plugins.admin.openapi import openapi_routes
from grok2api_plugins.admin.session_routes import session_routes
from grok2api_plugins.admin.status import status_routes


def admin_routes() -> list[web.AbstractRouteDef]:
    return [*session_routes(), *account_routes(), *job_routes(), *key_routes(), *config_routes(), *status_routes(),
            *media_routes(), *log_routes(), *openapi_routes()]
