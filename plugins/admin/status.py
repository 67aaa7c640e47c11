"""``/api/v1/admin/storage``, ``/version`` and ``/metrics`` (the original's datacenter shape).

The request counts come from the kernel's request log, shared by every worker: hourly
buckets in UTC (the original used server local time), the last 24 hours, the last 7
days and the top 10 models of those days; the summary covers the 7 days shown.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web

from grok2api.api import POOL, REQUEST_LOG, SETTINGS, STORAGE, __version__
from grok2api_plugins.admin.media import local_stats
from grok2api_plugins.admin.respond import reply

ALL = "_all"
STATS_PREFIX = "stats:"
HOURS, DAYS, TOP_MODELS = 24, 7, 10


async def storage_info(request: web.Request) -> web.Response:
    storage = request.app[STORAGE]
    return reply(request, {"type": request.app[SETTINGS].server.storage_type, "engine": storage.name,
                           "schema_version": storage.schema_version})


async def version_info(request: web.Request) -> web.Response:
    return reply(request, {"version": __version__, "service": "grok2api", "runtime": "python-aiohttp"})


def _buckets(stats: dict[str, dict[str, dict[str, int]]]) -> dict[datetime, dict[str, dict[str, int]]]:
    out = {}
    for ns, keys in stats.items():
        try:
            out[datetime.strptime(ns[len(STATS_PREFIX):], "%Y-%m-%dT%H").replace(tzinfo=UTC)] = keys
        except ValueError:
            continue
    return out


def _counts(fields: dict[str, int] | None) -> dict[str, int]:
    total = (fields or {}).get("requests", 0)
    success = (fields or {}).get("ok", 0)
    return {"total": total, "success": success, "failed": total - success}


def request_stats(stats: dict[str, dict[str, dict[str, int]]], now: datetime) -> dict[str, Any]:
    buckets = _buckets(stats)
    hour = now.replace(minute=0, second=0, microsecond=0)
    hourly = []
    for back in range(HOURS - 1, -1, -1):
        at = hour - timedelta(hours=back)
        hourly.append({"hour": at.strftime("%H:00"), "date": at.strftime("%m-%d"),
                       **_counts(buckets.get(at, {}).get(ALL))})
    first_day = hour.replace(hour=0) - timedelta(days=DAYS - 1)
    daily: dict[str, dict[str, int]] = {
        (first_day + timedelta(days=n)).strftime("%Y-%m-%d"): {"total": 0, "success": 0, "failed": 0}
        for n in range(DAYS)}
    models: dict[str, int] = {}
    for at, keys in buckets.items():
        day = daily.get(at.strftime("%Y-%m-%d"))
        if day is None:
            continue
        for name, value in _counts(keys.get(ALL)).items():
            day[name] += value
        for model, fields in keys.items():
            if model != ALL:
                models[model] = models.get(model, 0) + fields.get("requests", 0)
    total = sum(d["total"] for d in daily.values())
    success = sum(d["success"] for d in daily.values())
    top = sorted(models.items(), key=lambda kv: (-kv[1], kv[0]))[:TOP_MODELS]
    return {
        "hourly": hourly,
        "daily": [{"date": date, **counts} for date, counts in daily.items()],
        "models": [{"model": model, "count": count} for model, count in top],
        "summary": {"total": total, "success": success, "failed": total - success,
                    "success_rate": round(success * 100 / total, 1) if total else 0.0},
    }


async def metrics(request: web.Request) -> web.Response:
    accounts = request.app[POOL].accounts()
    by_status = {s: sum(1 for a in accounts if a.status.value == s) for s in ("active", "cooling", "expired",
                                                                               "disabled")}
    chat_quota = sum(a.quota for a in accounts if a.status.value == "active" and a.quota > 0)
    stats = await request.app[REQUEST_LOG].stats(hours=DAYS * HOURS)
    return reply(request, {
        "tokens": {"total": len(accounts), **by_status, "chat_quota": chat_quota, "image_quota": chat_quota // 2,
                   "total_calls": sum(a.use_count for a in accounts)},
        "cache": await local_stats(request),
        "request_stats": request_stats(stats, datetime.now(UTC)),
    })


def status_routes() -> list[web.RouteDef]:
    return [
        web.get("/api/v1/admin/storage", storage_info),
        web.get("/api/v1/admin/version", version_info),
        web.get("/api/v1/admin/metrics", metrics),
    ]
