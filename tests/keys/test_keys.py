"""Managed API keys: the original's fields and limits, hashed storage, atomic daily quotas across workers."""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path

import pytest

from grok2api.keys.service import (
    USAGE_NS,
    Identity,
    KeyExists,
    KeyNotFound,
    KeyService,
    QuotaExceeded,
    limits_from,
    parse_limit,
    usage_day,
)
from grok2api.storage import NS_API_KEYS
from grok2api.testing.engines import storage_settings

ENGINES = ["local", "redis", "pgsql", "mysql"]


@pytest.fixture
async def keys(make_storage) -> KeyService:
    storage = await make_storage("local")
    return KeyService(storage, storage.settings)


@pytest.mark.parametrize(("value", "expected"), [
    (None, -1), ("", -1), ("  ", -1), ("abc", -1), (True, -1), (-5, -1), ("-3", -1),
    (0, 0), ("0", 0), (7, 7), ("12", 12), (3.9, 3), ("4.0", 4), (-1, -1),
])
def test_limits_parse_like_the_original(value: object, expected: int) -> None:
    assert parse_limit(value) == expected


def test_limits_accept_per_day_or_limit_names() -> None:
    assert limits_from({"chat_per_day": "5", "heavy_limit": None, "image_limit": 3, "other": 1}) == {
        "chat_limit": 5, "heavy_limit": -1, "image_limit": 3}


@pytest.mark.parametrize(("offset", "day"), [
    (None, "2026-03-02"),      # 480 minutes: 16:30 UTC is already the next day at UTC+8
    ("0", "2026-03-01"),
    ("-720", "2026-03-01"),
    ("5000", "2026-03-02"),    # clamped to 840
    ("junk", "2026-03-02"),    # unparsable: the default
])
def test_day_boundary(monkeypatch: pytest.MonkeyPatch, offset: str | None, day: str) -> None:
    if offset is None:
        monkeypatch.delenv("CACHE_RESET_TZ_OFFSET_MINUTES", raising=False)
    else:
        monkeypatch.setenv("CACHE_RESET_TZ_OFFSET_MINUTES", offset)
    assert usage_day(1772382600) == day  # 2026-03-01 16:30 UTC


async def test_create_returns_the_key_once_and_stores_only_its_hash(keys: KeyService, tmp_path: Path) -> None:
    row, key = await keys.create(name="team", limits={"chat_per_day": 10, "video_limit": ""})
    assert key.startswith("sk-") and len(key) > 30
    ident = hashlib.sha256(key.encode()).hexdigest()
    assert row["id"] == ident
    assert row["display_key"] == f"{key[:6]}...{key[-4:]}"
    assert row["chat_limit"] == 10 and row["video_limit"] == -1 and row["heavy_limit"] == -1
    assert row["usage_today"] == {"chat_used": 0, "heavy_used": 0, "image_used": 0, "video_used": 0}
    assert row["remaining_today"] == {"chat": 10, "heavy": None, "image": None, "video": None}
    assert row["day"] == usage_day()
    stored = await keys.storage.get(NS_API_KEYS, ident)
    assert stored is not None and key not in str(stored)
    await keys.storage.close()
    database = (tmp_path / "data" / "grok2api.db").read_bytes()
    assert key.encode() not in database and ident.encode() in database
    await keys.storage.open()
    assert all("key" not in r for r in await keys.list_rows())


async def test_given_keys_and_short_display(keys: KeyService) -> None:
    row, key = await keys.create(key="short-key", name="")
    assert key == "short-key" and row["display_key"] == "short-key" and row["name"].startswith("key-")
    with pytest.raises(KeyExists):
        await keys.create(key="short-key")


async def test_authenticate(keys: KeyService) -> None:
    _, key = await keys.create(name="a")
    assert await keys.has_active_keys()
    assert await keys.authenticate(key) == Identity(key_id=hashlib.sha256(key.encode()).hexdigest(),
                                                    name="a", kind="managed")
    assert await keys.authenticate(key + "x") is None
    await keys.update(key, is_active=False)
    assert await keys.authenticate(key) is None
    assert not await keys.has_active_keys()


async def test_update_and_delete(keys: KeyService) -> None:
    row, key = await keys.create(name="a", limits={"chat_per_day": 3})
    updated = await keys.update(row["id"], name="  ", limits={"chat_limit": "", "image_per_day": -9, "heavy_limit": 0})
    assert updated["name"] == "a"  # a blank name keeps the old one
    assert (updated["chat_limit"], updated["image_limit"], updated["heavy_limit"]) == (-1, -1, 0)
    assert (await keys.update(key, name="b"))["name"] == "b"
    with pytest.raises(KeyNotFound):
        await keys.update("sk-nope", name="x")
    with pytest.raises(KeyNotFound):
        await keys.delete("0" * 64)
    await keys.delete(key)
    assert await keys.authenticate(key) is None
    with pytest.raises(KeyNotFound):
        await keys.delete(key)
    assert await keys.list_rows() == []


async def charge(keys: KeyService, who: Identity, usage: dict[str, int]) -> None:
    """Usage charged at once: a reservation settled as reserved."""
    await (await keys.reserve(who, usage)).settle()


async def test_charge_is_all_or_nothing_and_names_the_bucket(keys: KeyService) -> None:
    _, key = await keys.create(limits={"chat_per_day": 2, "heavy_per_day": 1, "image_per_day": 0})
    who = await keys.authenticate(key)
    assert who is not None
    await charge(keys, who, {"heavy": 1, "chat": 1})
    with pytest.raises(QuotaExceeded) as refused:
        await charge(keys, who, {"heavy": 1, "chat": 1})
    assert refused.value.buckets == ["heavy"] and str(refused.value) == "Daily quota exceeded: heavy"
    (row,) = await keys.list_rows()
    assert row["usage_today"]["chat_used"] == 1  # nothing applied by the refused charge
    with pytest.raises(QuotaExceeded, match="Daily quota exceeded: image"):
        await charge(keys, who, {"image": 1})  # 0 means blocked
    await charge(keys, who, {"video": 50})  # -1 means unlimited
    await charge(keys, who, {"chat": 1})
    (row,) = await keys.list_rows()
    assert row["usage_today"] == {"chat_used": 2, "heavy_used": 1, "image_used": 0, "video_used": 50}
    assert row["remaining_today"] == {"chat": 0, "heavy": 0, "image": 0, "video": None}


async def test_the_global_key_and_open_mode_are_never_charged(keys: KeyService) -> None:
    before = await keys.storage.last_change()
    await charge(keys, Identity(None, "global", "global"), {"chat": 1})
    await charge(keys, Identity(None, "open", "open"), {"chat": 1})
    assert await keys.storage.last_change() == before


async def test_old_days_are_pruned(keys: KeyService) -> None:
    _, key = await keys.create()
    who = await keys.authenticate(key)
    assert who is not None and who.key_id is not None
    await keys.storage.incr(USAGE_NS + "2020-01-01", who.key_id, {"chat_used": 5})
    await charge(keys, who, {"chat": 1})
    assert await keys.storage.counter_namespaces(USAGE_NS) == [USAGE_NS + usage_day()]


async def test_unknown_fields_and_corrupt_records_do_not_break_listing(keys: KeyService) -> None:
    row, key = await keys.create(name="good")
    await keys.storage.patch(NS_API_KEYS, row["id"], {"from_a_newer_version": {"x": 1}})
    await keys.storage.put(NS_API_KEYS, "f" * 64, {"name": "broken"})
    from sqlalchemy import update

    from grok2api.storage.sql import records

    await keys.storage.transaction(  # type: ignore[attr-defined]
        lambda conn: conn.execute(update(records).where(records.c.key == "f" * 64).values(data="{oops")))
    fresh = KeyService(keys.storage, keys.storage.settings)  # type: ignore[attr-defined]
    (listed,) = await fresh.list_rows()
    assert listed["name"] == "good" and listed["from_a_newer_version"] == {"x": 1}
    assert await fresh.authenticate(key) is not None


@pytest.mark.parametrize("engine", ENGINES)
async def test_workers_share_keys_and_quota(engine: str, make_storage, tmp_path: Path) -> None:
    settings = storage_settings(engine, tmp_path / "data")
    first, second = await make_storage(engine, settings), await make_storage(engine, settings)
    a, b = KeyService(first, settings), KeyService(second, settings)
    await b.has_active_keys()  # b caches the keys as they are now
    seq = await second.last_change()
    _, key = await a.create(limits={"chat_per_day": 25})
    assert await b.authenticate(key) is None  # served from memory until the feed says otherwise
    for change in await second.wait_for_changes(seq, 5):
        b.apply_change(change)
    who_a, who_b = await a.authenticate(key), await b.authenticate(key)
    assert who_a is not None and who_a == who_b

    async def attempt(service: KeyService, who: Identity) -> bool:
        try:
            await charge(service, who, {"chat": 1})
            return True
        except QuotaExceeded:
            return False

    results = await asyncio.gather(*(attempt(s, w) for s, w in [(a, who_a), (b, who_b)] * 20))
    assert sum(results) == 25
    rows = {r["id"]: r for r in await b.list_rows()}
    assert rows[who_a.key_id]["usage_today"]["chat_used"] == 25

    seq = await second.last_change()
    await a.delete(key)
    for change in await second.wait_for_changes(seq, 5):
        b.apply_change(change)
    assert await b.authenticate(key) is None
