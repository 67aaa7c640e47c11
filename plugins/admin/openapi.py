"""``GET /api/v1/admin/openapi.json``: an OpenAPI 3.1 document of the admin API.

The paths come from the app's router (every route under ``/api/v1/admin``, the
kernel's and other plugins' included), so the document never names a route that does
not exist; the summaries come from :data:`SUMMARIES` and the request and answer schemas
from :mod:`grok2api_plugins.admin.schemas`, and a test checks that every route of this
plugin and the kernel has both, and that real answers validate against their schema. ``docs/admin.md`` has the details.
"""

from __future__ import annotations

import re
from typing import Any

from aiohttp import web

from grok2api.api import __version__
from grok2api_plugins.admin.respond import reply
from grok2api_plugins.admin.schemas import COMPONENTS, OPERATIONS, Operation

PREFIX = "/api/v1/admin/"
#: (method, path) → (tag, summary, is the original product's route)
SUMMARIES: dict[tuple[str, str], tuple[str, str, bool]] = {
    ("POST", "/api/v1/admin/login"): ("session", "Trade the admin username and password for a session", True),
    ("POST", "/api/v1/admin/logout"): ("session", "End this session", False),
    ("GET", "/api/v1/admin/session"): ("session", "This session: user, CSRF token, password state", False),
    ("GET", "/api/v1/admin/sessions"): ("session", "This user's live sessions", False),
    ("DELETE", "/api/v1/admin/sessions/{session_id}"): ("session", "End one of this user's sessions", False),
    ("POST", "/api/v1/admin/password"): ("session", "Change the password; every earlier session ends", False),
    ("GET", "/api/v1/admin/tokens"): ("accounts", "Accounts as {pool: [item]}, or one page with counts", True),
    ("POST", "/api/v1/admin/tokens"): ("accounts", "Full replacement, applied as a diff (If-Match: version)", True),
    ("GET", "/api/v1/admin/tokens/counts"): ("accounts", "Accounts per state and type", False),
    ("POST", "/api/v1/admin/tokens/add"): ("accounts", "Add accounts by token", False),
    ("POST", "/api/v1/admin/tokens/import"): ("accounts", "Import a text file, token.json or our export", False),
    ("GET", "/api/v1/admin/tokens/export"): ("accounts", "Export full tokens as text or JSON", False),
    ("POST", "/api/v1/admin/tokens/export"): ("accounts", "Export the named accounts' full tokens", False),
    ("POST", "/api/v1/admin/tokens/update"): ("accounts", "Edit one account's note, tags, pool, quota or status",
                                              False),
    ("POST", "/api/v1/admin/tokens/enable"): ("accounts", "Enable accounts", False),
    ("POST", "/api/v1/admin/tokens/disable"): ("accounts", "Disable accounts", False),
    ("POST", "/api/v1/admin/tokens/delete"): ("accounts", "Delete accounts", False),
    ("POST", "/api/v1/admin/tokens/refresh"): ("accounts", "Sync the quota of a few accounts", True),
    ("POST", "/api/v1/admin/jobs"): ("jobs", "Start a batch job on many accounts", False),
    ("GET", "/api/v1/admin/jobs"): ("jobs", "Every job, newest first", False),
    ("GET", "/api/v1/admin/jobs/{job_id}"): ("jobs", "One job's state", False),
    ("POST", "/api/v1/admin/jobs/{job_id}/cancel"): ("jobs", "Cancel a job before its next chunk", False),
    ("POST", "/api/v1/admin/jobs/{job_id}/pause"): ("jobs", "Pause a job before its next chunk", False),
    ("POST", "/api/v1/admin/jobs/{job_id}/resume"): ("jobs", "Queue a paused job to go on where it stopped", False),
    ("POST", "/api/v1/admin/jobs/{job_id}/retry"): ("jobs", "A new job over the accounts a job failed on", False),
    ("GET", "/api/v1/admin/jobs/{job_id}/events"): ("jobs", "A job's progress as server-sent events", False),
    ("GET", "/api/v1/admin/keys"): ("keys", "Managed API keys with today's usage", True),
    ("POST", "/api/v1/admin/keys"): ("keys", "Create a key (generated unless given)", True),
    ("POST", "/api/v1/admin/keys/update"): ("keys", "Update a key's name, state or limits", True),
    ("POST", "/api/v1/admin/keys/delete"): ("keys", "Delete a key", True),
    ("GET", "/api/v1/admin/config"): ("config", "Every setting, secrets redacted (?detail=1: sources)", True),
    ("POST", "/api/v1/admin/config"): ("config", "Change settings, validated, on every worker", True),
    ("POST", "/api/v1/admin/config/reset"): ("config", "Reset keys to config.toml or their defaults", False),
    ("GET", "/api/v1/admin/storage"): ("status", "The storage engine", True),
    ("GET", "/api/v1/admin/version"): ("status", "The gateway's version", False),
    ("GET", "/api/v1/admin/metrics"): ("status", "Accounts, media cache and request counts", True),
    ("GET", "/api/v1/admin/openapi.json"): ("status", "This document", False),
    ("GET", "/api/v1/admin/logs/files"): ("logs", "The gateway's log files, newest first", True),
    ("GET", "/api/v1/admin/logs/tail"): ("logs", "The last lines of a log file", True),
    ("GET", "/api/v1/admin/logs/follow"): ("logs", "A log file's new lines as server-sent events", False),
    ("GET", "/api/v1/admin/logs/requests"): ("logs", "The request log, filtered and paged", False),
    ("GET", "/api/v1/admin/cache"): ("cache", "Local cache stats and accounts' online asset counts", True),
    ("GET", "/api/v1/admin/cache/local"): ("cache", "Local image and video cache stats", True),
    ("GET", "/api/v1/admin/cache/list"): ("cache", "Cached files, newest first", True),
    ("POST", "/api/v1/admin/cache/clear"): ("cache", "Delete every cached file of a type", True),
    ("POST", "/api/v1/admin/cache/item/delete"): ("cache", "Delete one cached file", True),
    ("POST", "/api/v1/admin/cache/online/clear"): ("cache", "Delete the online assets of a few accounts", True),
    ("GET", "/api/v1/admin/plugins"): ("status", "Installed plugins and their hooks", False),
    ("GET", "/api/v1/admin/pages"): ("status", "The console's navigation", False),
}
_PARAM = re.compile(r"{(\w+)(?::[^}]*)?}")


def admin_routes_of(app: web.Application) -> set[tuple[str, str]]:
    """Every (method, path) the app serves under the admin prefix (HEAD aside)."""
    found = set()
    for route in app.router.routes():
        info = route.resource.get_info() if route.resource is not None else {}
        path = str(info.get("path") or info.get("formatter") or "")
        if path.startswith(PREFIX) and route.method not in ("HEAD", "*"):
            found.add((route.method, path))
    return found


#: what every route may answer instead: an OpenAI error object
ERROR = {"description": "an OpenAI error object {error: {message, type, param, code}}",
         "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}


def _responses(spec: Operation | None) -> dict[str, Any]:
    if spec is None:  # a route another plugin added without a schema here
        return {"200": {"description": "success"}, "default": ERROR}
    return {str(spec.status): {"description": "success", "content": {spec.media: {"schema": spec.response}}},
            "default": ERROR}


def document(app: web.Application) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for method, path in sorted(admin_routes_of(app)):
        tag, summary, original = SUMMARIES.get((method, path), ("other", "Added by a plugin", False))
        spec = OPERATIONS.get((method, path))
        operation: dict[str, Any] = {"tags": [tag], "summary": summary, "x-original": original,
                                     "responses": _responses(spec)}
        if spec is not None and spec.request is not None:
            operation["requestBody"] = {"required": True,
                                        "content": {spec.request_media: {"schema": spec.request}}}
        if path != "/api/v1/admin/login":
            operation["security"] = [{"session": []}, {"cookie": []}]
        names = _PARAM.findall(path)
        if names:
            operation["parameters"] = [{"name": n, "in": "path", "required": True, "schema": {"type": "string"}}
                                       for n in names]
        paths.setdefault(path, {})[method.lower()] = operation
    return {
        "openapi": "3.1.0",
        "info": {"title": "grok2api admin API", "version": __version__,
                 "description": "docs/admin.md describes every route; x-original marks the original product's."},
        "paths": paths,
        "components": {"schemas": COMPONENTS, "securitySchemes": {
            "session": {"type": "http", "scheme": "bearer", "description": "a session token from the login"},
            "cookie": {"type": "apiKey", "in": "cookie", "name": "grok2api_session",
                       "description": "with X-CSRF-Token on every request but GET, HEAD and OPTIONS"},
        }},
    }


async def openapi(request: web.Request) -> web.Response:
    return reply(request, document(request.app))


def openapi_routes() -> list[web.RouteDef]:
    return [web.get("/api/v1/admin/openapi.json", openapi)]
