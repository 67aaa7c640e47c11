"""One-time import of a data directory written by the original product.

``token.json`` (pools of accounts), ``api_keys.json`` and ``api_key_usage.json`` go into
storage record by record, with every field kept; when the directory is the original's,
its ``config.toml`` (with ``setting.toml`` merged) becomes the stored run-time config.
The original files stay where they are; a ``meta`` record marks the import as done, so
it runs once per storage, whichever worker starts first (the import holds a lock).
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

import orjson

from grok2api.config.settings import SECTIONS, load_file_config
from grok2api.keys.service import BUCKETS, USAGE_NS, key_id, key_record
from grok2api.logs.logger import logger
from grok2api.storage import JSON, NS_ACCOUNTS, NS_API_KEYS, NS_CONFIG, NS_META, Storage
from grok2api.upstream import normalize_sso

MARKER = "legacy_import_v1"
_LEGACY_FILES = ("token.json", "api_keys.json", "api_key_usage.json", "setting.toml")
_STATUS = {"invalid": "expired"}


def _read_json(path: Path) -> Any:
    if not path.is_file():
        return None
    try:
        return orjson.loads(path.read_bytes())
    except orjson.JSONDecodeError as exc:
        logger.error("legacy import: {} is not valid JSON ({}); skipped", path.name, exc)
        return None


def account_records(data: Any) -> dict[str, JSON]:
    """``{pool: [TokenInfo | token string]}`` → account records keyed by normalised token."""
    records: dict[str, JSON] = {}
    if not isinstance(data, dict):
        return records
    for pool, items in data.items():
        for item in items if isinstance(items, list) else []:
            if not isinstance(item, (dict, str)):
                logger.warning("legacy import: skipping a {} in pool {} of token.json", type(item).__name__, pool)
                continue
            raw = item if isinstance(item, dict) else {"token": item}
            token = normalize_sso(str(raw.get("token") or ""))
            if not token:
                continue
            record = {**raw, "token": token, "pool": str(pool)}
            record["status"] = _STATUS.get(str(record.get("status", "active")), record.get("status", "active"))
            records[token] = {**records.get(token, {}), **record}
    return records


def key_records(rows: Any) -> dict[str, JSON]:
    """``api_keys.json`` rows → key records under the hash of the key (the text is not kept)."""
    records: dict[str, JSON] = {}
    for row in rows if isinstance(rows, list) else []:
        if not isinstance(row, dict) or not str(row.get("key") or "").strip():
            continue
        key = str(row["key"]).strip()
        extra = {k: v for k, v in row.items() if k != "key" and not k.endswith(("_limit", "_per_day"))}
        records[key_id(key)] = {
            **extra,
            **key_record(key, name=str(row.get("name") or ""), created_at=int(row.get("created_at") or time.time()),
                         is_active=row.get("is_active") is not False, limits=row),
        }
    return records


async def _import_usage(storage: Storage, usage: Any) -> int:
    count = 0
    for day, per_key in (usage.items() if isinstance(usage, dict) else ()):
        for key, used in (per_key.items() if isinstance(per_key, dict) else ()):
            if not isinstance(used, dict):
                continue
            values = {f"{b}_used": int(used.get(f"{b}_used") or 0) for b in BUCKETS}
            if any(values.values()):
                # set, not add: an import interrupted before its marker may run again
                ns, ident = USAGE_NS + str(day), key_id(str(key))
                current = await storage.counters(ns, ident)
                await storage.incr(ns, ident, {k: v - current.get(k, 0) for k, v in values.items()})
                count += 1
    return count


def _config_overrides(data_dir: Path) -> tuple[dict[str, JSON], list[str]]:
    """The original's config.toml (+ setting.toml) as per-section overrides of known keys, and the keys left out."""
    config = load_file_config(data_dir)
    out: dict[str, JSON] = {}
    ignored: list[str] = []
    for section, values in config.items():
        model = SECTIONS.get(section)
        if model is None or not isinstance(values, dict):
            ignored.append(section)
            continue
        known = {k: v for k, v in values.items() if k in model.model_fields}
        ignored += [f"{section}.{k}" for k in values if k not in known]
        if known:
            out[section] = known
    return out, ignored


async def import_legacy(storage: Storage, data_dir: Path) -> dict[str, int] | None:
    """Import once; returns the counts, or None when there was nothing to do."""
    if not any((data_dir / name).is_file() for name in _LEGACY_FILES):
        return None
    if await storage.get(NS_META, MARKER) is not None:
        return None
    owner = uuid.uuid4().hex
    if not await storage.acquire_lock(MARKER, owner, ttl=120):
        return None  # another worker is importing
    try:
        if await storage.get(NS_META, MARKER) is not None:
            return None
        counts, ignored = await _import(storage, data_dir)
        await storage.put(NS_META, MARKER, {"at": int(time.time()), "from": str(data_dir), "counts": counts,
                                            "config_ignored": ignored})
        if ignored:
            logger.warning("legacy import: config keys with no meaning here were left out: {}", ", ".join(ignored))
        logger.info("imported the original product's data from {}: {}", data_dir, counts)
        return counts
    finally:
        await storage.release_lock(MARKER, owner)


async def _import(storage: Storage, data_dir: Path) -> tuple[dict[str, int], list[str]]:
    accounts = account_records(_read_json(data_dir / "token.json"))
    existing = await storage.get_many(NS_ACCOUNTS, list(accounts))
    new_accounts = {t: r for t, r in accounts.items() if t not in existing}
    if new_accounts:
        await storage.put_many(NS_ACCOUNTS, new_accounts)
    keys = key_records(_read_json(data_dir / "api_keys.json"))
    existing = await storage.get_many(NS_API_KEYS, list(keys))
    new_keys = {k: r for k, r in keys.items() if k not in existing}
    if new_keys:
        await storage.put_many(NS_API_KEYS, new_keys)
    usage = await _import_usage(storage, _read_json(data_dir / "api_key_usage.json"))
    overrides, ignored = _config_overrides(data_dir)
    for section, values in overrides.items():
        stored = await storage.get(NS_CONFIG, section) or {}
        await storage.put(NS_CONFIG, section, {**values, **stored})
    counts = {"accounts": len(new_accounts), "api_keys": len(new_keys), "usage_rows": usage,
              "config_sections": len(overrides)}
    return counts, ignored
