"""``/api/v1/admin/keys…``: managed API keys in the original's shapes (``{success, data}``).

A row is the original's (the stored fields, ``display_key``, ``usage_today``,
``remaining_today``, ``day``) plus ``id``, the key's hash, the access limits ``rpm``,
``concurrency``, ``expires_at``, ``models`` and ``expired``; the key itself is stored
only as that hash, so its text is returned once, by create. Update and delete take
the key's text or its ``id``; an unknown one is a 404.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from grok2api.api import KEYS, REGISTRIES, ApiError, InvalidKeyField, KeyExists, KeyNotFound, invalid, read_json
from grok2api_plugins.admin.respond import reply

#: the console's quota presets (daily limits; -1 is unlimited)
PRESETS: dict[str, dict[str, int]] = {
    "recommended": {"chat_limit": 300, "heavy_limit": 100, "image_limit": 100, "video_limit": 20},
    "unlimited": {"chat_limit": -1, "heavy_limit": -1, "image_limit": -1, "video_limit": -1},
}
MAX_NAME = 50
ACCESS_FIELDS = ("rpm", "concurrency", "expires_at", "models")


def _access(request: web.Request, body: dict[str, Any]) -> dict[str, Any]:
    """The access limits given (checked by the key service; models must be served here)."""
    access = {name: body[name] for name in ACCESS_FIELDS if name in body}
    models = access.get("models")
    if isinstance(models, list):
        known = request.app[REGISTRIES].models.models
        unknown = [m for m in models if isinstance(m, str) and m.strip() and m.strip() not in known]
        if unknown:
            raise invalid(f"'models' names models this gateway does not serve: {', '.join(unknown[:10])[:300]}",
                          "models", "model_not_found")
    return access


def _fields(request: web.Request, body: dict[str, Any]) -> dict[str, Any]:
    """``name``, ``is_active``, ``limits`` (a ``preset`` fills the limits it does not name)
    and the access limits, checked."""
    out: dict[str, Any] = {"access": _access(request, body)}
    if body.get("name") is not None:
        if not isinstance(body["name"], str) or len(body["name"].strip()) > MAX_NAME:
            raise invalid(f"'name' must be a string of at most {MAX_NAME} characters", "name")
        out["name"] = body["name"]
    if "is_active" in body:
        if not isinstance(body["is_active"], bool):
            raise invalid("'is_active' must be true or false", "is_active")
        out["is_active"] = body["is_active"]
    limits = body.get("limits") or {}
    if not isinstance(limits, dict):
        raise invalid("'limits' must be an object such as {\"chat_per_day\": 300}", "limits")
    preset = body.get("preset")
    if preset is not None:
        if preset not in PRESETS:
            raise invalid(f"'preset' accepts {', '.join(PRESETS)}", "preset")
        limits = {**PRESETS[preset], **limits}
    if limits:
        out["limits"] = limits
    return out


def _key(body: dict[str, Any]) -> str:
    key = body.get("key") or body.get("id")
    if not isinstance(key, str) or not key.strip():
        raise invalid("Missing key", "key")
    return key.strip()


async def list_keys(request: web.Request) -> web.Response:
    return reply(request, {"success": True, "data": await request.app[KEYS].list_rows()})


async def create_key(request: web.Request) -> web.Response:
    """Without ``key`` one is generated; the full key is in ``data.key``, this once."""
    body = await read_json(request)
    key = body.get("key")
    if key is not None and (not isinstance(key, str) or len(key) > 200):
        raise invalid("'key' must be a string of at most 200 characters", "key")
    try:
        row, full = await request.app[KEYS].create(key=key, **_fields(request, body))
    except KeyExists:
        raise invalid("Key already exists", "key") from None
    except InvalidKeyField as exc:
        raise invalid(exc.message, exc.field) from None
    return reply(request, {"success": True, "data": {**row, "key": full}})


async def update_key(request: web.Request) -> web.Response:
    body = await read_json(request)
    key, fields = _key(body), _fields(request, body)
    try:
        row = await request.app[KEYS].update(key, **fields)
    except KeyNotFound:
        raise ApiError(404, "Key not found", param="key", code="key_not_found") from None
    except InvalidKeyField as exc:
        raise invalid(exc.message, exc.field) from None
    return reply(request, {"success": True, "data": row})


async def delete_key(request: web.Request) -> web.Response:
    key = _key(await read_json(request))
    try:
        await request.app[KEYS].delete(key)
    except KeyNotFound:
        raise ApiError(404, "Key not found", param="key", code="key_not_found") from None
    return reply(request, {"success": True})


def key_routes() -> list[web.RouteDef]:
    return [
        web.get("/api/v1/admin/keys", list_keys),
        web.post("/api/v1/admin/keys", create_key),
        web.post("/api/v1/admin/keys/update", update_key),
        web.post("/api/v1/admin/keys/delete", delete_key),
    ]
