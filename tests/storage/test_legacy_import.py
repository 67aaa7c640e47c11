"""The original product's data directory is imported once, record by record, with every field kept."""

from __future__ import annotations

import hashlib
from pathlib import Path

import orjson

from grok2api.keys.service import USAGE_NS
from grok2api.storage import NS_ACCOUNTS, NS_API_KEYS, NS_CONFIG, NS_META
from grok2api.storage.legacy_import import MARKER, import_legacy
from grok2api.web.appkeys import KEYS, STORAGE

FULL = {
    "token": "sso=eyJhbGciOiJIUzI1NiJ9.basic-one",
    "status": "invalid",
    "quota": 12,
    "heavy_quota": -1,
    "created_at": 1760000000000,
    "last_used_at": 1760000500000,
    "use_count": 40,
    "fail_count": 2,
    "last_fail_at": 1760000400000,
    "last_fail_reason": "401 Unauthorized",
    "last_sync_at": 1760000300000,
    "tags": ["team-a", "backup"],
    "note": "from the old box",
    "last_asset_clear_at": 1760000200000,
    "field_only_the_original_knew": {"x": 1},
}
TOKENS = {
    "ssoBasic": [FULL, "sso=bare-basic-token", "  plain-basic-token  ", {"token": ""}, 42],
    "ssoSuper": [{"token": "sso-rw=abc; sso=super-token; x-anonuserid=1", "status": "cooling", "quota": 0}],
}
KEYS_JSON = [
    {"key": "sk-legacy-active-key-0001", "name": "customer", "created_at": 1750000000, "is_active": True,
     "chat_limit": 100, "heavy_limit": "", "image_per_day": "5", "video_limit": -7, "comment": "kept"},
    {"key": "sk-legacy-inactive-0002", "name": "old", "created_at": 1750000001, "is_active": False,
     "chat_limit": None, "heavy_limit": 0, "image_limit": "junk", "video_limit": 2},
    {"key": "", "name": "broken row"},
]
USAGE = {
    "2026-03-01": {"sk-legacy-active-key-0001": {"chat_used": 7, "heavy_used": 0, "image_used": 2, "video_used": 0,
                                                 "updated_at": 1772370000000}},
    "2026-03-02": {"sk-legacy-inactive-0002": {"chat_used": 0, "heavy_used": 0, "image_used": 0, "video_used": 1}},
}
CONFIG = """
[app]
app_key = "s3cret-admin"
api_key = "sk-global-from-original"
image_format = "base64"

[grok]
temporary = false
retry_status_codes = [401, 429]

[token]
reload_interval_sec = 10
nsfw_refresh_concurrency = 10

[register]
worker_domain = "example.invalid"
"""
SETTING = """
[grok]
proxy_url = "http://proxy.internal:3128"
filtered_tags = "xaiartifact, grok:render"
"""


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def write_original(data_dir: Path, config: str = CONFIG) -> dict[str, bytes]:
    """Lay out a data dir as the original left it; returns the bytes of each file."""
    files = {
        "token.json": orjson.dumps(TOKENS, option=orjson.OPT_INDENT_2),
        "api_keys.json": orjson.dumps(KEYS_JSON),
        "api_key_usage.json": orjson.dumps(USAGE),
        "config.toml": config.encode(),
        "setting.toml": SETTING.encode(),
    }
    for name, content in files.items():
        (data_dir / name).write_bytes(content)
    return files


async def test_everything_is_imported_once_and_the_files_stay(make_storage, data_dir: Path) -> None:
    storage = await make_storage("local")
    original = write_original(data_dir)
    counts = await import_legacy(storage, data_dir)
    assert counts == {"accounts": 4, "api_keys": 2, "usage_rows": 2, "config_sections": 3}

    accounts = await storage.list(NS_ACCOUNTS)
    assert set(accounts) == {"eyJhbGciOiJIUzI1NiJ9.basic-one", "bare-basic-token", "plain-basic-token", "super-token"}
    full = accounts["eyJhbGciOiJIUzI1NiJ9.basic-one"]
    assert full == {**FULL, "token": "eyJhbGciOiJIUzI1NiJ9.basic-one", "status": "expired", "pool": "ssoBasic"}
    assert accounts["bare-basic-token"] == {"token": "bare-basic-token", "pool": "ssoBasic", "status": "active"}
    assert accounts["super-token"] == {"token": "super-token", "pool": "ssoSuper", "status": "cooling", "quota": 0}

    keys = await storage.list(NS_API_KEYS)
    assert set(keys) == {sha("sk-legacy-active-key-0001"), sha("sk-legacy-inactive-0002")}
    active = keys[sha("sk-legacy-active-key-0001")]
    assert active == {"name": "customer", "created_at": 1750000000, "is_active": True, "comment": "kept",
                      "display_key": "sk-leg...0001", "chat_limit": 100, "heavy_limit": -1, "image_limit": 5,
                      "video_limit": -1, "rpm": -1, "concurrency": -1, "expires_at": None, "models": []}
    inactive = keys[sha("sk-legacy-inactive-0002")]
    assert (inactive["is_active"], inactive["chat_limit"], inactive["heavy_limit"], inactive["image_limit"],
            inactive["video_limit"]) == (False, -1, 0, -1, 2)
    assert "sk-legacy" not in orjson.dumps(keys).decode().replace("sk-leg...", "")

    assert await storage.counters(USAGE_NS + "2026-03-01", sha("sk-legacy-active-key-0001")) == {
        "chat_used": 7, "heavy_used": 0, "image_used": 2, "video_used": 0}
    assert (await storage.counters(USAGE_NS + "2026-03-02", sha("sk-legacy-inactive-0002")))["video_used"] == 1

    config = await storage.list(NS_CONFIG)
    assert config["app"] == {"app_key": "s3cret-admin", "api_key": "sk-global-from-original", "image_format": "base64"}
    assert config["grok"] == {"temporary": False, "retry_status_codes": [401, 429],
                              "base_proxy_url": "http://proxy.internal:3128",
                              "filter_tags": ["xaiartifact", "grok:render"]}
    assert config["token"] == {"reload_interval_sec": 10}

    marker = await storage.get(NS_META, MARKER)
    assert marker is not None and marker["counts"] == counts
    assert marker["config_ignored"] == []  # the config loader already dropped token.nsfw_* and [register]
    assert {name: (data_dir / name).read_bytes() for name in original} == original

    assert await import_legacy(storage, data_dir) is None  # once per storage
    assert (await storage.counters(USAGE_NS + "2026-03-01", sha("sk-legacy-active-key-0001")))["chat_used"] == 7


async def test_stored_data_wins_over_the_files(make_storage, data_dir: Path) -> None:
    storage = await make_storage("local")
    write_original(data_dir)
    await storage.put(NS_ACCOUNTS, "super-token", {"token": "super-token", "pool": "ssoSuper", "quota": 55})
    await storage.put(NS_CONFIG, "app", {"api_key": "sk-set-in-the-admin-ui"})
    counts = await import_legacy(storage, data_dir)
    assert counts is not None and counts["accounts"] == 3
    assert (await storage.get(NS_ACCOUNTS, "super-token"))["quota"] == 55
    assert (await storage.get(NS_CONFIG, "app"))["api_key"] == "sk-set-in-the-admin-ui"


async def test_a_broken_file_is_skipped_without_losing_the_others(make_storage, data_dir: Path) -> None:
    storage = await make_storage("local")
    write_original(data_dir)
    (data_dir / "token.json").write_text('{"ssoBasic": [')
    counts = await import_legacy(storage, data_dir)
    assert counts is not None and counts["accounts"] == 0 and counts["api_keys"] == 2


async def test_nothing_to_import_leaves_no_marker(make_storage, data_dir: Path) -> None:
    storage = await make_storage("local")
    assert await import_legacy(storage, data_dir) is None
    assert await storage.get(NS_META, MARKER) is None


async def test_the_gateway_imports_on_first_start(gateway, data_dir: Path) -> None:
    write_original(data_dir, CONFIG)  # out-of-scope keys (token.nsfw_*, [register]) are ignored
    client = await gateway("storage_local")
    keys = client.app[KEYS]
    assert (await keys.authenticate("sk-legacy-active-key-0001")) is not None
    assert (await keys.authenticate("sk-legacy-inactive-0002")) is None
    assert await client.app[STORAGE].get(NS_META, MARKER) is not None
