"""Routes the kernel owns: health, the model list, admin login and plugins, and one route
per registered capability, dispatched by ``model`` to the plugin serving it."""

from __future__ import annotations

import time
from collections.abc import Iterable

from aiohttp import web

from grok2api import __version__
from grok2api.logs.request_log import CAPABILITY, MODEL_ID
from grok2api.media.cache import media_routes
from grok2api.plugin.manager import plugin_infos
from grok2api.plugin.registries import Capability, ModelRequest
from grok2api.web.appkeys import PLUGIN_MANAGER, REGISTRIES, SESSIONS, SETTINGS
from grok2api.web.auth import IDENTITY, admin_login
from grok2api.web.body import read_json
from grok2api.web.errors import ApiError, Handler, invalid

_STARTED = int(time.time())


def dispatch(capability: Capability) -> Handler:
    """A handler that reads the body, looks ``model`` up and hands the request to the
    handler the model registered for ``capability`` (auth ran before, in middleware)."""
    read_body = capability.read_body or read_json

    async def handle(request: web.Request) -> web.StreamResponse:
        request[CAPABILITY] = capability.name
        body = await read_body(request)
        model_id = body.get("model")
        if not isinstance(model_id, str) or not model_id.strip():
            raise invalid("'model' is required and must be a string", param="model", code="missing_model")
        request[MODEL_ID] = model_id
        registered = request.app[REGISTRIES].models.models.get(model_id)
        if registered is None:
            raise ApiError(404, f"The model '{model_id}' does not exist", param="model", code="model_not_found")
        handler = registered.handlers.get(capability.name)
        if handler is None:
            raise invalid(f"The model '{model_id}' does not support this endpoint", param="model",
                          code="model_not_supported")
        return await handler(ModelRequest(request, body, registered.spec, request[IDENTITY], capability.name))

    return handle


async def health(request: web.Request) -> web.Response:
    return web.json_response({"status": "healthy", "service": "grok2api", "runtime": "python-aiohttp",
                              "version": __version__})


async def list_models(request: web.Request) -> web.Response:
    models = request.app[REGISTRIES].models.models
    data = [m.spec.openai(_STARTED) for m in sorted(models.values(), key=lambda m: m.spec.id)]
    return web.json_response({"object": "list", "data": data})


async def get_model(request: web.Request) -> web.Response:
    model_id = request.match_info["model_id"]
    registered = request.app[REGISTRIES].models.models.get(model_id)
    if registered is None:
        raise ApiError(404, f"The model '{model_id}' does not exist", param="model", code="model_not_found")
    return web.json_response(registered.spec.openai(_STARTED))


async def login(request: web.Request) -> web.Response:
    app = request.app[SETTINGS].app
    return await admin_login(request, await read_json(request), app.admin_username, app.app_key, request.app[SESSIONS])


async def list_plugins(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS]
    infos = plugin_infos(request.app[PLUGIN_MANAGER], settings.plugins.disabled)
    return web.json_response({"plugins": [
        {"name": i.name, "version": i.version, "hooks": list(i.hooks), "enabled": i.enabled} for i in infos
    ]})


def kernel_routes(capabilities: Iterable[Capability]) -> list[web.RouteDef]:
    return [
        web.get("/health", health),
        web.get("/v1/models", list_models),
        web.get("/v1/models/{model_id}", get_model),
        *(web.route(c.method, c.path, dispatch(c)) for c in capabilities),
        web.post("/api/v1/admin/login", login),
        web.get("/api/v1/admin/plugins", list_plugins),
        *media_routes(),
    ]
