"""What the config page needs to draw each key: its type, accepted values, bounds, default and
a description, read from the section models (their JSON schema and ``Field`` descriptions).

Kernel keys that predate descriptions on their fields get one here, so every key the page
lists says what it does. A field is secret when the kernel lists it in ``SECRET_KEYS`` or its
model marks it ``writeOnly`` (``Field(json_schema_extra={"writeOnly": True})``, as a plugin's
own token is): a secret is never shown back, only whether it is set.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from grok2api.api import SECRET_KEYS

#: descriptions of the keys whose fields carry none
DESCRIPTIONS = {
    "app.app_url": "the gateway's public URL, used to build links to cached images and videos",
    "app.admin_username": "the first admin user's name (admin users live in storage)",
    "app.app_key": "the first admin user's password, and the way back in when it is forgotten",
    "app.api_key": "the global API key for /v1 (empty: managed keys only, or open when there are none)",
    "app.image_format": "how generated images are returned: a URL to the cache, or base64",
    "app.video_format": "how generated videos are returned",
    "grok.temporary": "chats on Grok are temporary (not kept in the account's history)",
    "grok.stream": "stream answers when a request does not say",
    "grok.thinking": "show Grok's reasoning",
    "grok.dynamic_statsig": "compute a fresh x-statsig-id for each request",
    "grok.filter_tags": "Grok markup tags removed from answers",
    "grok.connect_timeout": "seconds to connect to Grok",
    "grok.first_byte_timeout": "seconds until Grok's first byte",
    "grok.base_proxy_url": "proxy for requests to Grok (credentials are kept secret)",
    "grok.asset_proxy_url": "proxy for downloading Grok's images and videos",
    "grok.cf_clearance": "Cloudflare clearance cookie sent to Grok",
    "grok.max_retry": "retries of a request on another account",
    "grok.retry_status_codes": "upstream statuses that make a request retry on another account",
    "grok.image_generation_method": "which installed method generates images",
    "grok.base_url": "Grok's web origin",
    "grok.assets_url": "the origin of Grok's images and videos",
    "grok.impersonate": "browser fingerprint (a curl_cffi target) the upstream client presents",
    "token.auto_refresh": "refresh accounts' quotas on a schedule",
    "token.refresh_interval_hours": "hours between scheduled quota refreshes",
    "token.fail_threshold": "consecutive failures after which an account is set aside",
    "token.save_delay_ms": "how long pool changes are gathered before they are written",
    "token.reload_interval_sec": "how often a worker re-reads the pool from storage",
    "token.max_inflight_per_account": "requests one account serves at once",
    "cache.enable_auto_clean": "remove the oldest cached files past limit_mb",
    "cache.limit_mb": "size of the local media cache, MB",
    "cache.keep_base64_cache": "also cache images that were returned as base64",
    "performance.assets_max_concurrent": "asset downloads in flight at once",
    "performance.usage_max_concurrent": "quota syncs in flight at once",
    "server.host": "address the server listens on",
    "server.port": "port the server listens on",
    "server.workers": "worker processes",
    "server.storage_type": "storage engine: local, redis, pgsql or mysql",
    "server.storage_url": "connection URL of the storage engine",
    "plugins.disabled": "plugins not loaded",
    "chat.fetch_max_redirects": "redirects followed when fetching an attachment URL",
}

#: JSON schema types the page knows how to edit, from the schema's names
_TYPES = {"boolean", "integer", "number", "string", "array", "object"}
_BOUNDS = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "minLength", "maxLength")


def _property(schema: dict[str, Any], key: str) -> dict[str, Any]:
    """A property's own schema; an optional one (``anyOf`` with null) is its non-null branch."""
    prop: dict[str, Any] = dict(schema.get("properties", {}).get(key, {}))
    for branch in prop.pop("anyOf", []):
        if branch.get("type") != "null":
            prop = {**branch, **prop}
            break
    return prop


def _type(prop: dict[str, Any]) -> str:
    kind = prop.get("type")
    if kind in _TYPES:
        return str(kind)
    if "enum" in prop:
        return "string" if all(isinstance(v, str) for v in prop["enum"]) else "number"
    return "object"  # a $ref to a nested model


def secret_keys(sections: dict[str, type[BaseModel]]) -> frozenset[str]:
    """The kernel's secrets plus every field a section marks ``writeOnly``."""
    marked = {f"{name}.{key}" for name, model in sections.items()
              for key, prop in model.model_json_schema().get("properties", {}).items() if prop.get("writeOnly")}
    return SECRET_KEYS | marked


def describe(sections: dict[str, type[BaseModel]], secrets: frozenset[str],
             choices: dict[str, list[str]]) -> dict[str, dict[str, Any]]:
    """``{"section.key": {type, description, choices?, items?, minimum?…, default?, secret}}``.
    ``choices`` names the accepted values of keys whose type does not (the installed image
    methods); a secret's default is left out (it would say nothing and could be a shared value)."""
    out: dict[str, dict[str, Any]] = {}
    for name, model in sections.items():
        schema = model.model_json_schema()
        for key, field in model.model_fields.items():
            dotted = f"{name}.{key}"
            prop = _property(schema, key)
            entry: dict[str, Any] = {"type": _type(prop),
                                     "description": field.description or DESCRIPTIONS.get(dotted, ""),
                                     "secret": dotted in secrets}
            enum = prop.get("enum") or choices.get(dotted)
            if enum:
                entry["choices"] = list(enum)
            if entry["type"] == "array":
                entry["items"] = _type(prop.get("items", {}))
            entry.update({bound: prop[bound] for bound in _BOUNDS if bound in prop})
            if not entry["secret"] and "default" in prop:
                entry["default"] = prop["default"]
            out[dotted] = entry
    return out
