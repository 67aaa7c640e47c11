"""Routes the kernel owns: health, the model list, and ``/v1`` dispatch by model and capability."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web

from grok2api import __version__
from grok2api.appkeys import PLUGIN_MANAGER, REGISTRIES, SESSIONS, SETTINGS
from grok2api.auth import IDENTITY, admin_login
from grok2api.errors import ApiError, invalid
from grok2api.media import media_routes
from grok2api.plugins import plugin_infos
from grok2api.registry import Capability, ModelRequest
from grok2api.request_log import MODEL_ID

_STARTED = int(time.time())


@dataclass(frozen=True, slots=True)
class UploadedFile:
    """One file part of a multipart body, read whole (the body size limit bounds it)."""

    filename: str
    content_type: str
    data: bytes


async def read_json(request: web.Request) -> dict[str, Any]:
    raw = await request.read()
    if not raw.strip():
        raise invalid("Request body is empty; send a JSON object", param="body", code="empty_body")
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise invalid(f"Invalid JSON in request body: {exc}", param="body", code="invalid_json") from None
    if not isinstance(body, dict):
        raise invalid("Request body must be a JSON object", param="body", code="invalid_json")
    return body


async def read_multipart(request: web.Request) -> dict[str, Any]:
    """Fields as strings; repeated fields and files as lists (``image[]`` and ``image`` alike)."""
    if not request.content_type.startswith("multipart/"):
        raise invalid("Expected a multipart/form-data body", param="body", code="invalid_content_type")
    body: dict[str, Any] = {}
    reader = await request.multipart()
    async for part in reader:
        if not isinstance(part, web.BodyPartReader) or not part.name:
            continue
        name = part.name.removesuffix("[]")
        if part.filename is not None:
            value: Any = UploadedFile(part.filename, part.headers.get("Content-Type", "application/octet-stream"),
                                      bytes(await part.read()))
            body.setdefault(name, []).append(value)
        else:
            text = await part.text()
            if name in body:
                existing = body[name]
                body[name] = (existing if isinstance(existing, list) else [existing]) + [text]
            else:
                body[name] = text
    return body


def dispatcher(capability: Capability, multipart: bool = False) -> Any:
    """A handler that validates ``model`` and hands the request to the plugin serving it."""

    async def handle(request: web.Request) -> web.StreamResponse:
        body = await (read_multipart(request) if multipart else read_json(request))
        model_id = body.get("model")
        if not isinstance(model_id, str) or not model_id.strip():
            raise invalid("'model' is required and must be a string", param="model", code="missing_model")
        request[MODEL_ID] = model_id
        registered = request.app[REGISTRIES].models.models.get(model_id)
        if registered is None:
            raise ApiError(404, f"The model '{model_id}' does not exist", param="model", code="model_not_found")
        handler = registered.handlers.get(capability)
        if handler is None:
            raise invalid(f"The model '{model_id}' does not support this endpoint", param="model",
                          code="model_not_supported")
        return await handler(ModelRequest(request, body, registered.spec, request[IDENTITY]))

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


def kernel_routes() -> list[web.RouteDef]:
    return [
        web.get("/health", health),
        web.get("/v1/models", list_models),
        web.get("/v1/models/{model_id}", get_model),
        web.post("/v1/chat/completions", dispatcher("chat")),
        web.post("/v1/images/generations", dispatcher("image")),
        web.post("/v1/images/edits", dispatcher("image_edit", multipart=True)),
        web.post("/api/v1/admin/login", login),
        web.get("/api/v1/admin/plugins", list_plugins),
        *media_routes(),
    ]
