"""``/api/v1/admin/config``: every setting with secrets redacted and where it came from;
changes validated by the start-up models and applied on every worker.

A change is stored per section (``config`` namespace) and reaches the other workers
through the change feed; it never touches accounts or keys. The admin credentials are
the admin users' business (``POST /api/v1/admin/password``), and ``server`` and
``plugins`` take effect only at a restart, so a change to them is refused.
"""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from aiohttp import web
from pydantic import BaseModel

from grok2api.api import (
    REGISTRIES,
    SETTINGS,
    STORAGE,
    ConfigError,
    Settings,
    config_sections,
    environment_config,
    invalid,
    load_file_config,
    read_json,
    save_config,
)
from grok2api_plugins.admin.config_schema import describe, secret_keys
from grok2api_plugins.admin.respond import reply

REDACTED = "***"
NS_CONFIG = "config"
#: keys a run-time change may not set, and why
REFUSED = {
    "app.app_key": "the admin password is changed with POST /api/v1/admin/password (or, to recover it, "
                   "in config.toml and a restart)",
    "app.admin_username": "admin users live in storage; the first start seeded them from this key",
}
RESTART_SECTIONS = ("server", "plugins")


def redact(dotted: str, value: Any, secrets: frozenset[str]) -> Any:
    """Secrets become ``***``; a proxy URL keeps its scheme and host, never its credentials."""
    if dotted not in secrets or not value:
        return value
    if dotted.endswith("proxy_url") and isinstance(value, str):
        parts = urlsplit(value)
        if not (parts.username or parts.password):
            return value
        host = parts.hostname or ""
        return urlunsplit(parts._replace(netloc=f"{REDACTED}@{host}" + (f":{parts.port}" if parts.port else "")))
    return REDACTED


def _sections(request: web.Request) -> dict[str, type[BaseModel]]:
    return config_sections(request.app[REGISTRIES])


def _values(settings: Settings, sections: dict[str, type[BaseModel]]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    secrets = secret_keys(sections)
    for name in sections:
        section = getattr(settings, name, None)
        if isinstance(section, BaseModel):
            out[name] = {k: redact(f"{name}.{k}", v, secrets) for k, v in section.model_dump(mode="json").items()}
    return out


async def sources(request: web.Request, values: dict[str, dict[str, Any]]) -> dict[str, str]:
    """Where each key's value came from, highest precedence first: environment, runtime, file, default."""
    settings = request.app[SETTINGS]
    env = environment_config(os.environ)
    stored = await request.app[STORAGE].list(NS_CONFIG)
    try:
        file = load_file_config(settings.data_dir)
    except ConfigError:
        file = {}
    out = {}
    for name, keys in values.items():
        for key in keys:
            layers = (("environment", env), ("runtime", stored), ("file", file))
            out[f"{name}.{key}"] = next((label for label, layer in layers
                                         if key in (layer.get(name) or {})), "default")
    return out


async def get_config(request: web.Request) -> web.Response:
    """The original's ``{section: {key: value}}``; ``?detail=1`` adds sources, the secret keys
    and each key's type, accepted values and description (``fields``, for the config page)."""
    sections = _sections(request)
    values = _values(request.app[SETTINGS], sections)
    if request.query.get("detail") not in ("1", "true"):
        return reply(request, values)
    secrets = secret_keys(sections)
    methods = sorted(request.app[REGISTRIES].image_methods.methods)
    fields = describe(sections, secrets, {"grok.image_generation_method": methods} if methods else {})
    return reply(request, {"config": values, "sources": await sources(request, values), "fields": fields,
                           "secrets": sorted(secrets), "refused": {**REFUSED, **{
                               f"{s}.*": "takes effect at a restart: set it in config.toml or the environment"
                               for s in RESTART_SECTIONS}}})


def _update(request: web.Request, body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The changes of ``body``: redacted secrets posted back and unchanged values dropped."""
    settings, sections = request.app[SETTINGS], _sections(request)
    secrets = secret_keys(sections)
    update: dict[str, dict[str, Any]] = {}
    for name, table in body.items():
        if name not in sections:
            raise invalid(f"{name}: unknown config section (accepted: {', '.join(sections)})", name)
        if not isinstance(table, dict):
            raise invalid(f"{name}: expected a table of keys", name)
        current = getattr(settings, name).model_dump(mode="json")
        for key, value in table.items():
            dotted = f"{name}.{key}"
            if key in current and (value == current[key] or (dotted in secrets and value == redact(
                    dotted, current[key], secrets))):
                continue  # what GET showed, posted back
            if dotted in REFUSED:
                raise invalid(f"{dotted}: {REFUSED[dotted]}", dotted)
            if name in RESTART_SECTIONS:
                raise invalid(f"{dotted}: takes effect at a restart; set it in config.toml or the environment",
                              dotted)
            update.setdefault(name, {})[key] = value
    return update


async def post_config(request: web.Request) -> web.Response:
    """``{section: {key: value}}``, validated whole: a 400 names the key and what it accepts."""
    body = await read_json(request)
    update = _update(request, body)
    try:
        await save_config(request.app[STORAGE], request.app[SETTINGS], update, _sections(request))
    except ConfigError as exc:
        raise invalid(str(exc), str(exc).split(":", 1)[0]) from None
    changed = sorted(f"{s}.{k}" for s, table in update.items() for k in table)
    env = environment_config(os.environ)
    shadowed = [d for d in changed if d.split(".", 1)[1] in (env.get(d.split(".", 1)[0]) or {})]
    return reply(request, {"status": "success", "message": "Config updated", "changed": changed,
                           "overridden_by_environment": shadowed})


async def reset_config(request: web.Request) -> web.Response:
    """``{keys: ["section.key", …]}``: each back to its ``config.toml`` value, else its default.

    The value is stored as a run-time change (the change feed applies it on every worker),
    so the source of a reset key reads ``runtime`` until the next restart without it."""
    body = await read_json(request)
    keys = body.get("keys")
    if not isinstance(keys, list) or not keys or not all(isinstance(k, str) for k in keys):
        raise invalid("'keys' must be a list of \"section.key\" names", "keys")
    settings, sections = request.app[SETTINGS], _sections(request)
    file = load_file_config(settings.data_dir)
    update: dict[str, dict[str, Any]] = {}
    for dotted in keys:
        name, _, key = dotted.partition(".")
        model = sections.get(name)
        if model is None or key not in model.model_fields:
            raise invalid(f"{dotted}: unknown config key", "keys")
        if dotted in REFUSED or name in RESTART_SECTIONS:
            raise invalid(f"{dotted}: cannot be reset at run time", "keys")
        table = file.get(name) or {}
        field = model.model_fields[key]
        default = field.get_default(call_default_factory=True)
        update.setdefault(name, {})[key] = table.get(key, default)
    try:
        await save_config(request.app[STORAGE], settings, update, sections)
    except ConfigError as exc:
        raise invalid(str(exc), "keys") from None
    return reply(request, {"status": "success", "reset": sorted(keys)})


def config_routes() -> list[web.RouteDef]:
    return [
        web.get("/api/v1/admin/config", get_config),
        web.post("/api/v1/admin/config", post_config),
        web.post("/api/v1/admin/config/reset", reset_config),
    ]
