"""JSON Schemas (OpenAPI 3.1) of the admin API's request bodies and answers.

:data:`OPERATIONS` gives each route its request body (None: no body) and its answer;
:data:`COMPONENTS` holds the shapes several routes share, the error object first. Objects
allow properties they do not list: the API only ever adds fields (the original's
scripts keep working), so a schema names what a client may rely on. A test validates
real answers of several routes against these schemas and checks that every route has
an entry.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

Schema = dict[str, Any]

STR: Schema = {"type": "string"}
INT: Schema = {"type": "integer"}
NUM: Schema = {"type": "number"}
BOOL: Schema = {"type": "boolean"}
ANY_OBJECT: Schema = {"type": "object"}


def obj(required: dict[str, Schema], optional: dict[str, Schema] | None = None) -> Schema:
    return {"type": "object", "required": sorted(required), "properties": {**required, **(optional or {})}}


def arr(items: Schema) -> Schema:
    return {"type": "array", "items": items}


def ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def maybe(schema: Schema) -> Schema:
    return {"anyOf": [schema, {"type": "null"}]}


def text(description: str) -> Schema:
    return {**STR, "description": description}


#: what every answer carries while the default password is in use (so a map of other things names it)
DUE = {"password_change_required": BOOL}
SUCCESS = obj({"status": {"const": "success"}})
COUNT = obj({"count": INT, "size_mb": NUM})
NAMES_ACCOUNTS = {"ids": arr(STR), "id": STR, "tokens": arr(STR), "token": STR}
#: a selection of accounts by the list's ids (or, for the original's scripts, full tokens)
SELECTION = {"type": "object", "properties": NAMES_ACCOUNTS,
             "description": "name accounts by 'ids' (the list's handles) or 'tokens'"}
#: a key's access limits: -1 unlimited, 0 blocked; expires_at in unix seconds; models empty for all
KEY_ACCESS: dict[str, Schema] = {"rpm": INT, "concurrency": INT, "expires_at": maybe(INT), "models": arr(STR)}
ROW = obj({"total": INT, "success": INT, "failed": INT, "tokens_in": INT, "tokens_out": INT})
TTFT = obj({"p50": maybe(NUM), "p95": maybe(NUM), "count": INT})

COMPONENTS: dict[str, Schema] = {
    "Error": obj({"error": obj({"message": STR, "type": STR},
                               {"param": maybe(STR), "code": maybe(STR)})}),
    "AccountItem": obj({
        "id": STR, "token": text("masked"), "status": {"enum": ["active", "cooling", "invalid", "disabled"]},
        "quota": INT, "quota_known": BOOL, "heavy_quota": INT, "heavy_quota_known": BOOL, "token_type": STR,
        "note": STR, "fail_count": INT, "use_count": INT, "pool": STR, "tags": arr(STR),
        "states": arr({"enum": ["active", "invalid", "exhausted"]}), "created_at": INT,
    }, {"last_used_at": maybe(INT), "last_sync_at": maybe(INT), "last_fail_reason": maybe(STR),
        "last_asset_clear_at": maybe(INT)}),
    "AccountCounts": obj({"total": INT, "active": INT, "invalid": INT, "exhausted": INT, "sso": INT,
                          "supersso": INT, "chat_quota": INT, "use_count": INT}),
    "AccountPage": obj({"items": arr(ref("AccountItem")), "total": INT, "page": INT, "page_size": INT,
                        "pages": INT, "counts": ref("AccountCounts"), "version": STR}),
    "AccountsByPool": {"type": "object", "properties": DUE, "additionalProperties": arr(ref("AccountItem")),
                       "description": "the original's {pool: [item]}"},
    "AddReport": obj({"status": {"const": "success"}, "added": INT, "merged": INT, "skipped": INT,
                      "version": STR}),
    "BatchReport": obj({"status": {"const": "success"}, "count": INT, "missing": arr(STR)}),
    "Job": obj({"id": STR, "kind": STR,
                "state": {"enum": ["queued", "running", "paused", "finished", "failed", "cancelled"]},
                "total": INT, "done": INT, "failed": INT, "created_at": INT, "updated_at": INT},
               {"chunks": INT, "cursor": INT, "errors": ANY_OBJECT, "cancel": BOOL, "pause": BOOL, "reason": maybe(STR),
                "created_by": STR, "worker": maybe(STR), "resumed": INT, "finished_at": INT}),
    "JobAnswer": obj({"job": ref("Job")}, {"status": {"const": "success"}}),
    "KeyRow": obj({"id": STR, "display_key": STR}, {"name": STR, "is_active": BOOL, "usage_today": ANY_OBJECT,
                                                     "remaining_today": ANY_OBJECT, "day": STR, **KEY_ACCESS,
                                                     "expired": BOOL}),
    "KeyFields": {"type": "object", "properties": {
        "name": STR, "is_active": BOOL, "preset": {"enum": ["recommended", "unlimited"]}, "limits": ANY_OBJECT,
        **{name: maybe(schema) for name, schema in KEY_ACCESS.items()}}},
    "LocalStats": obj({"local_image": COUNT, "local_video": COUNT}),
    "ConfigValues": {"type": "object", "properties": DUE, "additionalProperties": ANY_OBJECT,
                     "description": "{section: {key: value}}, secrets redacted"},
    "Session": obj({"status": {"const": "success"}, "token": STR, "csrf_token": STR, "username": STR,
                    "expires_in": INT}, {"max_age": INT, "password_change_required": BOOL}),
    "Metrics": obj({
        "tokens": obj({"total": INT, "active": INT, "cooling": INT, "expired": INT, "disabled": INT,
                       "chat_quota": INT, "image_quota": INT, "total_calls": INT}),
        "cache": ref("LocalStats"),
        "request_stats": obj({
            "hourly": arr({**ROW, "required": [*ROW["required"], "date", "hour"],
                           "properties": {**ROW["properties"], "hour": STR, "date": STR}}),
            "daily": arr({**ROW, "required": [*ROW["required"], "date", "success_rate", "ttft_ms"],
                          "properties": {**ROW["properties"], "date": STR, "success_rate": NUM, "ttft_ms": TTFT}}),
            "models": arr(obj({"model": STR, "count": INT, "success": INT, "failed": INT, "tokens_in": INT,
                               "tokens_out": INT})),
            "keys": arr(obj({"id": STR, "name": STR, "display_key": maybe(STR), "managed": BOOL, "count": INT,
                             "success": INT, "failed": INT, "success_rate": NUM, "tokens_in": INT,
                             "tokens_out": INT})),
            "summary": obj({"total": INT, "success": INT, "failed": INT, "success_rate": NUM, "rate_limited": INT,
                            "client_error": INT, "server_error": INT, "tokens_in": INT, "tokens_out": INT,
                            "avg_duration_ms": NUM, "ttft_ms": TTFT}),
        }),
        "accounts": obj({"total": INT,
                         "by_status": obj({"active": INT, "cooling": INT, "expired": INT, "disabled": INT}),
                         "by_state": obj({"active": INT, "invalid": INT, "exhausted": INT}),
                         "by_type": obj({"sso": INT, "supersso": INT}),
                         "by_pool": {"type": "object", "additionalProperties": INT}}),
    }),
}


@dataclass(frozen=True, slots=True)
class Operation:
    """One route's request body (None: none) and its answer; ``media`` is the answer's type
    (``request_media`` the body's), ``status`` its success status."""

    response: Schema
    request: Schema | None = None
    status: int = 200
    media: str = "application/json"
    request_media: str = "application/json"


EVENTS = Operation(text("server-sent events"), media="text/event-stream")
ADMIN = "/api/v1/admin"
OPERATIONS: dict[tuple[str, str], Operation] = {
    ("POST", f"{ADMIN}/login"): Operation(ref("Session"), obj({"username": STR, "password": STR})),
    ("POST", f"{ADMIN}/logout"): Operation(SUCCESS),
    ("GET", f"{ADMIN}/session"): Operation(obj({"username": STR, "session_id": STR, "csrf_token": STR,
                                               "password_change_required": BOOL})),
    ("GET", f"{ADMIN}/sessions"): Operation(obj({"sessions": arr(obj({
        "id": STR, "created_at": maybe(INT), "last_seen": maybe(INT), "address": STR, "user_agent": STR,
        "current": BOOL}))})),
    ("DELETE", f"{ADMIN}/sessions/{{session_id}}"): Operation(SUCCESS),
    ("POST", f"{ADMIN}/password"): Operation(ref("Session"), obj({"current_password": STR, "new_password": STR})),
    ("GET", f"{ADMIN}/tokens"): Operation({"anyOf": [ref("AccountsByPool"), ref("AccountPage")],
                                           "description": "with page or page_size: one page"}),
    ("POST", f"{ADMIN}/tokens"): Operation(
        obj({"status": {"const": "success"}, "message": STR, "added": INT, "merged": INT, "updated": INT,
             "removed": INT, "kept_unlisted": INT, "skipped": INT, "version": STR}),
        {"type": "object", "properties": {"version": STR},
         "additionalProperties": arr({"anyOf": [STR, ANY_OBJECT]}),
         "description": "the original's {pool: [item or token]}; the version read (or If-Match)"}),
    ("GET", f"{ADMIN}/tokens/counts"): Operation({**ref("AccountCounts"), "allOf": [obj({"version": STR})]}),
    ("POST", f"{ADMIN}/tokens/add"): Operation(ref("AddReport"), {"type": "object", "properties": {
        "tokens": arr(STR), "token": STR, "pool": STR, "note": STR, "tags": arr(STR)}}),
    ("POST", f"{ADMIN}/tokens/import"): Operation(
        ref("AddReport"), text("one token per line (sso= or not), the original's token.json or our JSON export"),
        request_media="text/plain"),
    ("GET", f"{ADMIN}/tokens/export"): Operation(text("one token per line (format=txt) or token.json (json)"),
                                                 media="text/plain"),
    ("POST", f"{ADMIN}/tokens/export"): Operation(
        text("one token per line (format=txt) or token.json (json)"),
        {**SELECTION, "properties": {**NAMES_ACCOUNTS, "format": {"enum": ["txt", "json"]}}}, media="text/plain"),
    ("POST", f"{ADMIN}/tokens/update"): Operation(
        obj({"status": {"const": "success"}, "token": ref("AccountItem")}),
        {**SELECTION, "properties": {"id": STR, "token": STR, "note": STR, "tags": arr(STR), "pool": STR,
                                     "quota": INT, "heavy_quota": INT, "status": {"enum": ["active", "disabled"]}}}),
    ("POST", f"{ADMIN}/tokens/enable"): Operation(ref("BatchReport"), SELECTION),
    ("POST", f"{ADMIN}/tokens/disable"): Operation(ref("BatchReport"), SELECTION),
    ("POST", f"{ADMIN}/tokens/delete"): Operation(ref("BatchReport"), SELECTION),
    ("POST", f"{ADMIN}/tokens/refresh"): Operation(
        obj({"status": {"const": "success"}, "results": {"type": "object", "additionalProperties": BOOL}}),
        SELECTION),
    ("POST", f"{ADMIN}/jobs"): Operation(
        ref("JobAnswer"), {**obj({"kind": {"enum": ["refresh", "enable", "disable", "delete", "clear_assets"]}}),
                           "properties": {"kind": STR, **NAMES_ACCOUNTS},
                           "description": "naming no account means every one the query's filters select"},
        status=202),
    ("GET", f"{ADMIN}/jobs"): Operation(obj({"jobs": arr(ref("Job"))})),
    ("GET", f"{ADMIN}/jobs/{{job_id}}"): Operation(ref("JobAnswer")),
    ("POST", f"{ADMIN}/jobs/{{job_id}}/cancel"): Operation(ref("JobAnswer")),
    ("POST", f"{ADMIN}/jobs/{{job_id}}/pause"): Operation(ref("JobAnswer")),
    ("POST", f"{ADMIN}/jobs/{{job_id}}/resume"): Operation(ref("JobAnswer")),
    ("POST", f"{ADMIN}/jobs/{{job_id}}/retry"): Operation(ref("JobAnswer"), status=202),
    ("GET", f"{ADMIN}/jobs/{{job_id}}/events"): EVENTS,
    ("GET", f"{ADMIN}/keys"): Operation(obj({"success": {"const": True}, "data": arr(ref("KeyRow"))})),
    ("POST", f"{ADMIN}/keys"): Operation(
        obj({"success": {"const": True}, "data": {**ref("KeyRow"), "allOf": [obj({"key": STR})]}}),
        {**ref("KeyFields"), "allOf": [{"type": "object", "properties": {"key": STR}}]}),
    ("POST", f"{ADMIN}/keys/update"): Operation(
        obj({"success": {"const": True}}, {"data": ref("KeyRow")}),
        {**ref("KeyFields"), "allOf": [obj({"key": text("the key or its id")})]}),
    ("POST", f"{ADMIN}/keys/delete"): Operation(obj({"success": {"const": True}}),
                                                obj({"key": text("the key or its id")})),
    ("GET", f"{ADMIN}/config"): Operation({"anyOf": [ref("ConfigValues"), obj({
        "config": ref("ConfigValues"), "sources": {"type": "object", "additionalProperties": {
            "enum": ["default", "file", "runtime", "environment"]}}, "fields": ANY_OBJECT,
        "secrets": arr(STR)})], "description": "?detail=1: with each key's source and description"}),
    ("POST", f"{ADMIN}/config"): Operation(
        obj({"status": {"const": "success"}, "message": STR, "changed": arr(STR),
             "overridden_by_environment": arr(STR)}), ref("ConfigValues")),
    ("POST", f"{ADMIN}/config/reset"): Operation(obj({"status": {"const": "success"}, "reset": arr(STR)}),
                                                 obj({"keys": arr(text("section.key"))})),
    ("GET", f"{ADMIN}/storage"): Operation(obj({"type": STR, "engine": STR, "schema_version": INT})),
    ("GET", f"{ADMIN}/version"): Operation(obj({"version": STR, "service": STR, "runtime": STR})),
    ("GET", f"{ADMIN}/metrics"): Operation(ref("Metrics")),
    ("GET", f"{ADMIN}/openapi.json"): Operation(obj({"openapi": STR, "info": ANY_OBJECT, "paths": ANY_OBJECT})),
    ("GET", f"{ADMIN}/logs/files"): Operation(obj({"files": arr(obj({"name": STR, "size_bytes": INT,
                                                                     "mtime_ms": INT}))})),
    ("GET", f"{ADMIN}/logs/tail"): Operation(obj({"file": STR, "lines": arr(STR)})),
    ("GET", f"{ADMIN}/logs/follow"): EVENTS,
    ("GET", f"{ADMIN}/logs/requests"): Operation(obj({"items": arr(obj({"seq": INT, "at_ms": INT, "method": STR,
                                                                        "path": STR, "status": INT})),
                                                      "next_before": maybe(INT)})),
    ("GET", f"{ADMIN}/cache"): Operation({**ref("LocalStats"), "allOf": [obj({"online": {
        "type": "object", "additionalProperties": obj({"status": {"enum": ["ok", "error"]},
                                                       "last_asset_clear_at": maybe(INT)},
                                                      {"count": INT, "error": STR})}})]}),
    ("GET", f"{ADMIN}/cache/local"): Operation(ref("LocalStats")),
    ("GET", f"{ADMIN}/cache/list"): Operation(obj({
        "status": {"const": "success"}, "total": INT, "page": INT, "page_size": INT,
        "items": arr(obj({"name": STR, "size_bytes": INT, "mtime_ms": INT, "view_url": STR},
                         {"preview_url": STR}))})),
    ("POST", f"{ADMIN}/cache/clear"): Operation(obj({"status": {"const": "success"}, "result": COUNT}),
                                                obj({"type": {"enum": ["image", "video"]}})),
    ("POST", f"{ADMIN}/cache/item/delete"): Operation(
        obj({"status": {"const": "success"}, "result": obj({"deleted": BOOL})}),
        obj({"type": {"enum": ["image", "video"]}, "name": STR})),
    ("POST", f"{ADMIN}/cache/online/clear"): Operation(
        {"anyOf": [obj({"status": {"const": "success"}, "result": ANY_OBJECT}),
                   obj({"status": {"const": "success"}, "results": ANY_OBJECT})],
         "description": "one account: result {total, success, failed, last_asset_clear_at}; several: results"},
        SELECTION),
    ("GET", f"{ADMIN}/plugins"): Operation(obj({"plugins": arr(obj({"name": STR, "version": STR,
                                                                    "hooks": arr(STR), "enabled": BOOL}))})),
    ("GET", f"{ADMIN}/pages"): Operation(obj({"pages": arr(obj({"path": STR, "title": STR, "plugin": STR}))})),
}
