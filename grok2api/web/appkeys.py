"""Typed keys for what the app holds; plugins read ``request.app[POOL]`` and friends."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy
from aiohttp import web

from grok2api.config.settings import Settings
from grok2api.plugin.filters import FilterChain
from grok2api.plugin.registries import Registries, RequestObserver

if TYPE_CHECKING:
    from grok2api.keys.service import KeyService
    from grok2api.logs.request_log import RequestLog
    from grok2api.media.cache import MediaCache
    from grok2api.pool import TokenPool
    from grok2api.storage import Storage
    from grok2api.upstream import GrokClient
    from grok2api.web.auth import AdminSessions

SETTINGS = web.AppKey("settings", Settings)
PLUGIN_MANAGER = web.AppKey("plugin_manager", pluggy.PluginManager)
REGISTRIES = web.AppKey("registries", Registries)
FILTERS = web.AppKey("filters", FilterChain)
STORAGE: web.AppKey[Storage] = web.AppKey("storage")
KEYS: web.AppKey[KeyService] = web.AppKey("keys")
SESSIONS: web.AppKey[AdminSessions] = web.AppKey("sessions")
UPSTREAM: web.AppKey[GrokClient] = web.AppKey("upstream")
POOL: web.AppKey[TokenPool] = web.AppKey("pool")
MEDIA: web.AppKey[MediaCache] = web.AppKey("media")
REQUEST_LOG: web.AppKey[RequestLog] = web.AppKey("request_log")
#: the request observers: the kernel's request log first, then the plugins'
OBSERVERS: web.AppKey[list[RequestObserver]] = web.AppKey("observers")
