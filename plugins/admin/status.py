"""``/api/v1/admin/storage``, ``/version`` and ``/metrics`` (the original's datacenter shape, and more).

The request figures come from the kernel's request log, whose hourly counters every
worker adds to in storage, so every worker answers the same: buckets in UTC (the
original used server local time), the last 24 hours, the last 7 days, the top 10
models and every API key of those days (by id and name, never the key); the summary
covers the 7 days shown. Time to first token is read from the log's time-to-first-byte
buckets (answered model requests; a stream's head leaves with its first text), so its
p50 and p95 are estimates within a bucket. Accounts come from the pool, which every
worker holds in step with storage. ``docs/admin.md`` shows the whole shape.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web

from grok2api.api import JSON, KEYS, POOL, POOL_BASIC, REQUEST_LOG, SETTINGS, STORAGE, Account, __version__
from grok2api_plugins.admin.accounts import counts
from grok2api_plugins.admin.media import local_stats
from grok2api_plugins.admin.respond import reply

#: the request log's counter keys (``grok2api/logs/request_log.py``)
ALL = "_all"
KEY_PREFIX = "key:"
STATS_PREFIX = "stats:"
FAILURES = ("rate_limited", "client_error", "server_error")
HOURS, DAYS, TOP_MODELS, TOP_KEYS = 24, 7, 10, 100
Fields = dict[str, int]


async def storage_info(request: web.Request) -> web.Response:
    storage = request.app[STORAGE]
    return reply(request, {"type": request.app[SETTINGS].server.storage_type, "engine": storage.name,
                           "schema_version": storage.schema_version})


async def version_info(request: web.Request) -> web.Response:
    return reply(request, {"version": __version__, "service": "grok2api", "runtime": "python-aiohttp"})


def _buckets(stats: dict[str, dict[str, Fields]]) -> dict[datetime, dict[str, Fields]]:
    out = {}
    for ns, keys in stats.items():
        try:
            out[datetime.strptime(ns[len(STATS_PREFIX):], "%Y-%m-%dT%H").replace(tzinfo=UTC)] = keys
        except ValueError:
            continue
    return out


def _add(into: Fields, fields: Fields | None) -> Fields:
    for name, value in (fields or {}).items():
        into[name] = into.get(name, 0) + value
    return into


def _rate(success: int, total: int) -> float:
    return round(success * 100 / total, 1) if total else 0.0


def _row(fields: Fields | None) -> dict[str, int]:
    """The original's counts of a bucket, plus the tokens in and out."""
    fields = fields or {}
    total, success = fields.get("requests", 0), fields.get("ok", 0)
    return {"total": total, "success": success, "failed": total - success,
            "tokens_in": fields.get("tokens_in", 0), "tokens_out": fields.get("tokens_out", 0)}


def _bucket(name: str) -> tuple[float, float] | None:
    """The bounds (low, high] in ms of a time-to-first-byte field ``ttfb_<low>_<high>``."""
    parts = name.split("_")
    try:
        return (float(parts[1]), float(parts[2])) if len(parts) == 3 and parts[0] == "ttfb" else None
    except ValueError:
        return None


def percentile(fields: Fields, share: float) -> float | None:
    """The ``share`` quantile (0..1) of the time-to-first-byte buckets in ``fields``, in ms,
    interpolated within its bucket (the lower bound for the open last bucket); None without any."""
    buckets = sorted((bounds, count) for name, count in fields.items()
                     if count > 0 and (bounds := _bucket(name)) is not None)
    total = sum(count for _, count in buckets)
    if not total:
        return None
    rank, seen = share * total, 0
    for (low, high), count in buckets:
        if seen + count >= rank:
            return round(low if high == math.inf else low + (high - low) * (rank - seen) / count, 1)
        seen += count
    return round(buckets[-1][0][0], 1)


def _ttft(fields: Fields) -> dict[str, Any]:
    return {"p50": percentile(fields, 0.5), "p95": percentile(fields, 0.95),
            "count": sum(v for k, v in fields.items() if _bucket(k) is not None)}


def _model_row(model: str, fields: Fields) -> JSON:
    row = _row(fields)
    return {"model": model, "count": row.pop("total"), **row}


def _key_row(ident: str, fields: Fields, known: dict[str, JSON]) -> JSON:
    """A key of the stats by its id; a managed key with its name and display form."""
    row = known.get(ident)
    counted = _row(fields)
    return {"id": ident, "name": row.get("name", "") if row else ident,
            "display_key": row.get("display_key") if row else None, "managed": row is not None,
            "count": counted["total"], "success": counted["success"], "failed": counted["failed"],
            "success_rate": _rate(counted["success"], counted["total"]),
            "tokens_in": counted["tokens_in"], "tokens_out": counted["tokens_out"]}


def request_stats(stats: dict[str, dict[str, Fields]], now: datetime,
                  known_keys: dict[str, JSON] | None = None) -> dict[str, Any]:
    """Hourly (24), daily (7), models (top 10), keys and a summary of the 7 days shown."""
    buckets = _buckets(stats)
    hour = now.replace(minute=0, second=0, microsecond=0)
    hourly = []
    for back in range(HOURS - 1, -1, -1):
        at = hour - timedelta(hours=back)
        hourly.append({"hour": at.strftime("%H:00"), "date": at.strftime("%m-%d"),
                       **_row(buckets.get(at, {}).get(ALL))})
    first_day = hour.replace(hour=0) - timedelta(days=DAYS - 1)
    days: dict[str, Fields] = {(first_day + timedelta(days=n)).strftime("%Y-%m-%d"): {} for n in range(DAYS)}
    models: dict[str, Fields] = {}
    keys: dict[str, Fields] = {}
    for at, counters in buckets.items():
        day = days.get(at.strftime("%Y-%m-%d"))
        if day is None:
            continue
        _add(day, counters.get(ALL))
        for name, fields in counters.items():
            if name.startswith(KEY_PREFIX):
                _add(keys.setdefault(name[len(KEY_PREFIX):], {}), fields)
            elif name != ALL:
                _add(models.setdefault(name, {}), fields)
    whole: Fields = {}
    for fields in days.values():
        _add(whole, fields)
    daily = []
    for date, fields in days.items():
        row = _row(fields)
        daily.append({"date": date, **row, "success_rate": _rate(row["success"], row["total"]),
                      "ttft_ms": _ttft(fields)})
    top = sorted(models.items(), key=lambda kv: (-kv[1].get("requests", 0), kv[0]))[:TOP_MODELS]
    by_key = sorted(keys.items(), key=lambda kv: (-kv[1].get("requests", 0), kv[0]))[:TOP_KEYS]
    summary = _row(whole)
    return {
        "hourly": hourly,
        "daily": daily,
        "models": [_model_row(model, fields) for model, fields in top],
        "keys": [_key_row(ident, fields, known_keys or {}) for ident, fields in by_key],
        "summary": {"total": summary["total"], "success": summary["success"], "failed": summary["failed"],
                    "success_rate": _rate(summary["success"], summary["total"]),
                    **{name: whole.get(name, 0) for name in FAILURES},
                    "tokens_in": summary["tokens_in"], "tokens_out": summary["tokens_out"],
                    "avg_duration_ms": round(whole.get("duration_ms", 0) / summary["total"], 1)
                    if summary["total"] else 0.0,
                    "ttft_ms": _ttft(whole)},
    }


def account_figures(accounts: list[Account]) -> JSON:
    """Accounts by stored status, by the console's states (an account may be invalid and
    exhausted), by type and by pool."""
    by_status = dict.fromkeys(("active", "cooling", "expired", "disabled"), 0)
    by_pool: dict[str, int] = {}
    for account in accounts:
        by_status[account.status.value] = by_status.get(account.status.value, 0) + 1
        by_pool[account.pool] = by_pool.get(account.pool, 0) + 1
    figures = counts(accounts)
    return {"total": len(accounts), "by_status": by_status,
            "by_state": {name: figures[name] for name in ("active", "invalid", "exhausted")},
            "by_type": {name: figures[name] for name in ("sso", "supersso")},
            "by_pool": dict(sorted(by_pool.items(), key=lambda kv: (kv[0] != POOL_BASIC, kv[0])))}


async def metrics(request: web.Request) -> web.Response:
    accounts = request.app[POOL].accounts()
    figures = account_figures(accounts)
    chat_quota = sum(a.quota for a in accounts if a.status.value == "active" and a.quota > 0)
    stats = await request.app[REQUEST_LOG].stats(hours=DAYS * HOURS)
    known = {row["id"]: row for row in await request.app[KEYS].list_rows()}
    return reply(request, {
        "tokens": {"total": len(accounts), **figures["by_status"], "chat_quota": chat_quota,
                   "image_quota": chat_quota // 2, "total_calls": sum(a.use_count for a in accounts)},
        "cache": await local_stats(request),
        "request_stats": request_stats(stats, datetime.now(UTC), known),
        "accounts": figures,
    })


def status_routes() -> list[web.RouteDef]:
    return [
        web.get("/api/v1/admin/storage", storage_info),
        web.get("/api/v1/admin/version", version_info),
        web.get("/api/v1/admin/metrics", metrics),
    ]
