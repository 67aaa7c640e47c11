"""Routes the kernel owns: health and readiness, the model list, admin login and plugins,
and one route per registered capability, dispatched by ``model`` to the plugin serving it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable

from aiohttp import web

from grok2api import __version__
from grok2api.keys.limits import ModelNotAllowed
from grok2api.logs.logger import mask_text
from grok2api.logs.request_log import CAPABILITY, MODEL_ID
from grok2api.media.cache import media_routes
from grok2api.plugin.manager import plugin_infos
from grok2api.plugin.registries import Capability, ModelRequest
from grok2api.web.appkeys import KEYS, PLUGIN_MANAGER, POOL, REGISTRIES, SESSIONS, SETTINGS, STORAGE, UPSTREAM
from grok2api.web.auth import IDENTITY
from grok2api.web.body import read_json
from grok2api.web.errors import ApiError, Handler, invalid

_STARTED = int(time.time())
#: longest wait for the storage engine's answer to the readiness ping
READY_STORAGE_TIMEOUT = 2.0


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
        registered = request.app[REGISTRIES].models.models.get(model_id)
        if registered is None:
            raise ApiError(404, f"The model '{model_id[:200]}' does not exist", param="model",
                           code="model_not_found")
        request[MODEL_ID] = model_id  # a registered id, so bounded: it becomes a storage key
        handler = registered.handlers.get(capability.name)
        if handler is None:
            raise invalid(f"The model '{model_id}' does not support this endpoint", param="model",
                          code="model_not_supported")
        identity = request[IDENTITY]
        async with request.app[KEYS].admit(identity, model_id):  # the key's allow-list, rpm and concurrency
            return await handler(ModelRequest(request, body, registered.spec, identity, capability.name))

    return handle


async def health(request: web.Request) -> web.Response:
    return web.json_response({"status": "healthy", "service": "grok2api", "runtime": "python-aiohttp",
                              "version": __version__})


async def ready(request: web.Request) -> web.Response:
    """Readiness, for load balancers and orchestrators (``/health`` says only that the process
    answers): the storage engine answers a cheap call, the pool is loaded, the Grok client
    is open. 503 with the failing check's details otherwise."""
    app = request.app
    checks: dict[str, dict[str, object]] = {}
    started = time.perf_counter()
    try:
        await asyncio.wait_for(app[STORAGE].last_change(), READY_STORAGE_TIMEOUT)
        checks["storage"] = {"ok": True, "engine": app[SETTINGS].server.storage_type,
                             "ms": round((time.perf_counter() - started) * 1000, 1)}
    except Exception as exc:  # any failure of the engine is the answer
        reason = f"no answer within {READY_STORAGE_TIMEOUT}s" if isinstance(exc, TimeoutError) else \
            mask_text(f"{type(exc).__name__}: {exc}")[:300]
        checks["storage"] = {"ok": False, "engine": app[SETTINGS].server.storage_type, "error": reason}
    pool = app.get(POOL)
    accounts = pool.accounts() if pool is not None else []
    checks["pool"] = {"ok": pool is not None, "accounts": len(accounts),
                      "usable": sum(1 for a in accounts if a.usable)}
    checks["upstream"] = {"ok": app.get(UPSTREAM) is not None}
    ok = all(check["ok"] for check in checks.values())
    return web.json_response({"status": "ready" if ok else "not_ready", "checks": checks}, status=200 if ok else 503)


async def list_models(request: web.Request) -> web.Response:
    """Every model, or those the key's allow-list names."""
    models = request.app[REGISTRIES].models.models
    allowed = await request.app[KEYS].allowed_models(request[IDENTITY])
    data = [m.spec.openai(_STARTED) for m in sorted(models.values(), key=lambda m: m.spec.id)
            if allowed is None or m.spec.id in allowed]
    return web.json_response({"object": "list", "data": data})


async def get_model(request: web.Request) -> web.Response:
    model_id = request.match_info["model_id"]
    registered = request.app[REGISTRIES].models.models.get(model_id)
    if registered is None:
        raise ApiError(404, f"The model '{model_id[:200]}' does not exist", param="model", code="model_not_found")
    allowed = await request.app[KEYS].allowed_models(request[IDENTITY])
    if allowed is not None and model_id not in allowed:
        raise ModelNotAllowed(model_id, sorted(allowed))
    return web.json_response(registered.spec.openai(_STARTED))


async def login(request: web.Request) -> web.Response:
    """Served by whichever sessions object the app holds (the admin plugin replaces the kernel's)."""
    return await request.app[SESSIONS].login(request)


async def list_plugins(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS]
    infos = plugin_infos(request.app[PLUGIN_MANAGER], settings.plugins.disabled)
    return web.json_response({"plugins": [
        {"name": i.name, "version": i.version, "hooks": list(i.hooks), "enabled": i.enabled} for i in infos
    ]})


def kernel_routes(capabilities: Iterable[Capability]) -> list[web.RouteDef]:
    return [
        web.get("/health", health),
        web.get("/ready", ready),
        web.get("/v1/models", list_models),
        web.get("/v1/models/{model_id}", get_model),
        *(web.route(c.method, c.path, dispatch(c)) for c in capabilities),
        web.post("/api/v1/admin/login", login),
        web.get("/api/v1/admin/plugins", list_plugins),
        *media_routes(),
    ]
