"""The conformance suite every storage engine passes, against a real server.

Engine authors subclass :class:`StorageConformance` in their tests::

    class TestMyEngine(StorageConformance):
        factory = "my_package.engine:MyStorage"      # factory(settings) -> Storage

        @pytest.fixture
        def settings(self, my_server_url) -> Settings:   # an empty database for every test
            ...

        async def corrupt(self, storage, ns, key):      # store undecodable bytes as one record
            ...

The two-process tests run this module as a script in a child process (``python -m
grok2api.testing.storage_conformance``), building the engine from ``factory`` and the
same settings.
"""

from __future__ import annotations

import asyncio
import importlib
import sys
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import orjson
import pytest
from sqlalchemy import update

from grok2api.config.settings import Settings
from grok2api.storage import Change, Storage, StorageError
from grok2api.storage.sql import SCHEMA_VERSION, SqlStorage, meta, metadata, records


def load_factory(path: str) -> Callable[[Settings], Storage]:
    """``"package.module:attr"`` to the object it names."""
    module, _, attr = path.partition(":")
    target: Any = importlib.import_module(module)
    for part in attr.split("."):
        target = getattr(target, part)
    return target


class StorageConformance:
    """Every behaviour the kernel relies on; see the module docstring for how to use it."""

    factory: str = ""

    # engine-specific parts -------------------------------------------------
    @pytest.fixture
    def settings(self) -> Settings:
        raise NotImplementedError("provide a `settings` fixture pointing at an empty database")

    async def corrupt(self, storage: Storage, ns: str, key: str) -> None:
        """Overwrite the stored form of an existing record with bytes that are not a JSON object."""
        raise NotImplementedError

    async def reset(self, settings: Settings) -> None:
        """Empty the database before a test (engines whose fixture does not give a fresh one)."""

    # fixtures --------------------------------------------------------------
    def build(self, settings: Settings) -> Storage:
        return load_factory(self.factory)(settings)

    @pytest.fixture
    async def storage(self, settings: Settings) -> AsyncIterator[Storage]:
        await self.reset(settings)
        store = self.build(settings)
        await store.open()
        yield store
        await store.close()

    @pytest.fixture
    async def other(self, settings: Settings, storage: Storage) -> AsyncIterator[Storage]:
        """A second instance on the same database, as another worker in this process."""
        store = self.build(settings)
        await store.open()
        yield store
        await store.close()

    async def child(self, settings: Settings, action: str, **args: Any) -> asyncio.subprocess.Process:
        """Another OS process running ``action`` against the same database."""
        return await asyncio.create_subprocess_exec(
            sys.executable, "-m", "grok2api.testing.storage_conformance", self.factory,
            settings.model_dump_json(), action, orjson.dumps(args).decode(),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)

    # records ---------------------------------------------------------------
    async def test_put_get_replace(self, storage: Storage) -> None:
        assert await storage.get("accounts", "a") is None
        record = {"token": "a", "n": 2**60 + 1, "tags": [], "nested": {"x": [1, "ü", None]}, "ok": True}
        await storage.put("accounts", "a", record)
        assert await storage.get("accounts", "a") == record
        await storage.put("accounts", "a", {"token": "a"})
        assert await storage.get("accounts", "a") == {"token": "a"}
        await storage.put("accounts", "empty", {})
        assert await storage.get("accounts", "empty") == {}

    async def test_namespaces_and_keys_are_distinct_and_case_sensitive(self, storage: Storage) -> None:
        await storage.put("accounts", "Key", {"v": 1})
        await storage.put("accounts", "key", {"v": 2})
        await storage.put("plugin:x", "Key", {"v": 3})
        await storage.put("accounts", "ключ:🙂 /%_", {"v": 4})
        assert await storage.get("accounts", "Key") == {"v": 1}
        assert await storage.get("accounts", "key") == {"v": 2}
        assert await storage.get("plugin:x", "Key") == {"v": 3}
        assert await storage.get("accounts", "ключ:🙂 /%_") == {"v": 4}
        assert set(await storage.list("accounts")) == {"Key", "key", "ключ:🙂 /%_"}

    async def test_bad_names_are_refused(self, storage: Storage) -> None:
        for ns in ("", "has space", "x" * 129, "a}b"):
            with pytest.raises(ValueError):
                await storage.put(ns, "k", {})
        with pytest.raises(ValueError):
            await storage.put("accounts", "", {})
        with pytest.raises(ValueError):
            await storage.put("accounts", "k" * 513, {})
        with pytest.raises(TypeError):
            await storage.put("accounts", "k", {"not json": object()})
        with pytest.raises(ValueError):
            await storage.incr("usage", "k", {"f" * 65: 1})
        with pytest.raises(ValueError):
            await storage.acquire_lock("lock", "o" * 513, 1)
        assert await storage.incr("usage", "k" * 512, {"f" * 64: 1}) == {"f" * 64: 1}
        assert await storage.acquire_lock("l" * 512, "o" * 512, 1) is True
        await storage.put("accounts", "k" * 512, {"long": True})
        assert await storage.get("accounts", "k" * 512) == {"long": True}

    async def test_get_many_and_list_with_prefix(self, storage: Storage) -> None:
        await storage.put_many("api_keys", {f"k{i}": {"i": i} for i in range(5)})
        await storage.put("api_keys", "other", {"i": -1})
        await storage.put("api_keys", "k_%", {"i": 99})
        assert await storage.get_many("api_keys", ["k1", "k3", "missing"]) == {"k1": {"i": 1}, "k3": {"i": 3}}
        assert await storage.get_many("api_keys", []) == {}
        assert len(await storage.list("api_keys")) == 7
        assert set(await storage.list("api_keys", prefix="k")) == {"k0", "k1", "k2", "k3", "k4", "k_%"}
        assert set(await storage.list("api_keys", prefix="k_")) == {"k_%"}  # no LIKE wildcards
        assert await storage.list("nothing") == {}
        await storage.put("sessions", "gone", {}, ttl=0.01)
        await storage.put("a.b", "x", {})
        await storage.delete("a.b", "x")
        await asyncio.sleep(0.05)
        assert await storage.namespaces() == ["api_keys"]

    async def test_put_many_large(self, storage: Storage) -> None:
        items = {f"tok{i:05d}": {"token": f"tok{i}", "quota": i} for i in range(1200)}
        await storage.put_many("accounts", items)
        assert await storage.list("accounts") == items
        assert len(await storage.get_many("accounts", list(items))) == 1200
        await storage.put_many("accounts", {})

    async def test_patch(self, storage: Storage) -> None:
        assert await storage.patch("accounts", "none", {"a": 1}) is None
        assert await storage.get("accounts", "none") is None
        await storage.put("accounts", "t", {"a": 1, "b": 2, "keep": [1]})
        assert await storage.patch("accounts", "t", {"b": None, "c": {"d": 1}, "a": 5}) == {
            "a": 5, "keep": [1], "c": {"d": 1}}
        assert await storage.get("accounts", "t") == {"a": 5, "keep": [1], "c": {"d": 1}}
        assert await storage.patch("accounts", "t", {}) == {"a": 5, "keep": [1], "c": {"d": 1}}

    async def test_patch_many(self, storage: Storage) -> None:
        await storage.put_many("accounts", {"a": {"x": 1}, "b": {"x": 2}})
        start = await storage.last_change()
        assert await storage.patch_many("accounts", {"a": {"y": 1}, "none": {"y": 1}, "b": {"x": None}}) == {
            "a": {"x": 1, "y": 1}, "b": {}}
        assert await storage.get_many("accounts", ["a", "b", "none"]) == {"a": {"x": 1, "y": 1}, "b": {}}
        assert sorted(c.key for c in await storage.changes_since(start)) == ["a", "b"]
        assert await storage.patch_many("accounts", {}) == {}

    async def test_concurrent_patches_of_one_record_keep_every_field(self, storage: Storage, other: Storage) -> None:
        await storage.put("accounts", "t", {"token": "t"})
        await asyncio.gather(*(s.patch("accounts", "t", {f"f{i}": i})
                               for i, s in enumerate([storage, other] * 15)))
        assert await storage.get("accounts", "t") == {"token": "t", **{f"f{i}": i for i in range(30)}}

    async def test_delete(self, storage: Storage) -> None:
        await storage.put_many("accounts", {"a": {}, "b": {}, "c": {}})
        assert await storage.delete("accounts", "a") is True
        assert await storage.delete("accounts", "a") is False
        assert await storage.delete_many("accounts", ["b", "c", "zz"]) == 2
        assert await storage.delete_many("accounts", []) == 0
        assert await storage.list("accounts") == {}

    async def test_ttl_expiry(self, storage: Storage) -> None:
        await storage.put("sessions", "s1", {"user": "admin"}, ttl=0.6)
        await storage.put("sessions", "s2", {"user": "admin"}, ttl=60)
        await storage.put("sessions", "s3", {"user": "admin"})
        assert set(await storage.list("sessions")) == {"s1", "s2", "s3"}
        assert await storage.patch("sessions", "s1", {"seen": 1}) == {"user": "admin", "seen": 1}
        await asyncio.sleep(1.0)
        assert await storage.get("sessions", "s1") is None
        assert await storage.get_many("sessions", ["s1", "s2"]) == {"s2": {"user": "admin"}}
        assert set(await storage.list("sessions")) == {"s2", "s3"}
        assert await storage.patch("sessions", "s1", {"seen": 2}) is None
        await storage.put("sessions", "s1", {"user": "again"})  # an expired key can be written anew
        assert await storage.get("sessions", "s1") == {"user": "again"}

    async def test_bad_stored_data_hides_nothing_else(self, storage: Storage) -> None:
        await storage.put_many("accounts", {"good1": {"token": "good1"}, "bad": {"token": "bad"},
                                            "good2": {"token": "good2", "field_from_the_future": {"x": 1}}})
        await self.corrupt(storage, "accounts", "bad")
        assert await storage.get("accounts", "bad") is None
        assert await storage.get_many("accounts", ["good1", "bad"]) == {"good1": {"token": "good1"}}
        assert await storage.list("accounts") == {
            "good1": {"token": "good1"}, "good2": {"token": "good2", "field_from_the_future": {"x": 1}}}
        await storage.put("accounts", "bad", {"token": "bad"})  # and it can be repaired
        assert await storage.get("accounts", "bad") == {"token": "bad"}

    # counters --------------------------------------------------------------
    async def test_counters(self, storage: Storage) -> None:
        assert await storage.counters("usage", "k") == {}
        assert await storage.incr("usage", "k", {"chat": 1}) == {"chat": 1}
        assert await storage.incr("usage", "k", {"chat": 2, "image": 4}) == {"chat": 3, "image": 4}
        assert await storage.incr("usage", "k", {"chat": -1}) == {"chat": 2, "image": 4}
        await storage.incr("usage", "j", {"video": 1})
        await storage.incr("usage:2026-01-02", "k", {"chat": 1})
        assert await storage.counters("usage", "k") == {"chat": 2, "image": 4}
        assert await storage.counters_many("usage") == {"k": {"chat": 2, "image": 4}, "j": {"video": 1}}
        assert await storage.counter_namespaces() == ["usage", "usage:2026-01-02"]
        assert await storage.counter_namespaces("usage:") == ["usage:2026-01-02"]
        await storage.drop_counters("usage")
        assert await storage.counters_many("usage") == {}
        assert await storage.counter_namespaces() == ["usage:2026-01-02"]
        assert await storage.counters("usage:2026-01-02", "k") == {"chat": 1}

    async def test_delete_counters_of_some_keys(self, storage: Storage) -> None:
        await storage.incr_many("moved", {"a": {"n": 1}, "b": {"n": 2, "m": 1}, "c": {"n": 3}})
        await storage.delete_counters("moved", ["a", "b", "never-counted"])
        assert await storage.counters_many("moved") == {"c": {"n": 3}}
        assert await storage.counters("moved", "b") == {}
        await storage.delete_counters("moved", ["c"])
        assert "moved" not in await storage.counter_namespaces()
        assert await storage.incr("moved", "a", {"n": 1}) == {"n": 1}  # counted again from 0

    async def test_limits_are_all_or_nothing(self, storage: Storage) -> None:
        assert await storage.incr("q", "k", {"chat": 2, "heavy": 1}, limits={"chat": 3, "heavy": 1}) == {
            "chat": 2, "heavy": 1}
        assert await storage.incr("q", "k", {"chat": 1, "heavy": 1}, limits={"chat": 3, "heavy": 1}) is None
        assert (await storage.counters("q", "k")).items() >= {"chat": 2, "heavy": 1}.items()
        assert await storage.incr("q", "k", {"chat": 1}, limits={"chat": 3, "heavy": 1}) == {"chat": 3, "heavy": 1}
        assert await storage.incr("q", "k", {"chat": 1}, limits={"chat": 3}) is None
        assert await storage.incr("q", "k", {"chat": 100}, limits={"chat": -1}) == {"chat": 103, "heavy": 1}
        assert await storage.incr("q", "z", {"video": 1}, limits={"video": 0}) is None
        assert (await storage.counters("q", "z")).get("video", 0) == 0

    async def test_incr_many(self, storage: Storage) -> None:
        await storage.incr("usage", "k", {"chat": 1, "image": 1})
        assert await storage.incr_many("usage", {"k": {"chat": 2}, "new": {"chat": 1, "video": 3}}) == {
            "k": {"chat": 3, "image": 1}, "new": {"chat": 1, "video": 3}}
        assert await storage.counters_many("usage") == {"k": {"chat": 3, "image": 1}, "new": {"chat": 1, "video": 3}}
        assert await storage.incr_many("usage", {}) == {}

    async def test_many_tasks_lose_no_update(self, storage: Storage, other: Storage) -> None:
        async def bump(store: Storage) -> None:
            for _ in range(10):
                await store.incr("usage", "hot", {"chat": 1, "image": 2})

        await asyncio.gather(*(bump(s) for s in [storage, other] * 10))
        assert await storage.counters("usage", "hot") == {"chat": 200, "image": 400}

    async def test_racing_for_the_last_units(self, storage: Storage, other: Storage) -> None:
        await storage.incr("usage", "k", {"chat": 7})
        results = await asyncio.gather(*(s.incr("usage", "k", {"chat": 1}, limits={"chat": 10})
                                         for s in [storage, other] * 15))
        assert sum(r is not None for r in results) == 3
        assert await storage.counters("usage", "k") == {"chat": 10}

    async def test_two_processes_lose_no_update_and_respect_limits(self, settings: Settings, storage: Storage) -> None:
        children = [await self.child(settings, "incr", times=40, limit=60) for _ in range(2)]
        outputs = [await c.communicate() for c in children]
        for child, (_out, err) in zip(children, outputs, strict=True):
            assert child.returncode == 0, err.decode()
        granted = [orjson.loads(out)["granted"] for out, _ in outputs]
        assert sum(granted) == 60 and all(g > 0 for g in granted), granted
        assert await storage.counters("usage", "shared") == {"chat": 80, "limited": 60}

    # locks -----------------------------------------------------------------
    async def test_lock_exclusion_extension_release(self, storage: Storage, other: Storage) -> None:
        assert await storage.acquire_lock("token_refresh", "w1", 30) is True
        assert await other.acquire_lock("token_refresh", "w2", 30) is False
        assert await storage.acquire_lock("token_refresh", "w1", 30) is True  # ours: extended
        assert await other.release_lock("token_refresh", "w2") is False  # only the owner releases
        assert await storage.release_lock("token_refresh", "w1") is True
        assert await storage.release_lock("token_refresh", "w1") is False
        assert await other.acquire_lock("token_refresh", "w2", 30) is True

    async def test_lock_contention_has_one_winner(self, storage: Storage, other: Storage) -> None:
        results = await asyncio.gather(*(s.acquire_lock("race", f"owner{i}", 30)
                                         for i, s in enumerate([storage, other] * 10)))
        assert sum(results) == 1

    async def test_lock_expiry(self, storage: Storage, other: Storage) -> None:
        assert await storage.acquire_lock("short", "w1", 0.4) is True
        assert await other.acquire_lock("short", "w2", 30) is False
        await asyncio.sleep(0.7)
        assert await other.acquire_lock("short", "w2", 30) is True
        assert await storage.release_lock("short", "w1") is False  # it expired and is someone else's

    # log -------------------------------------------------------------------
    async def test_a_batch_of_log_entries_keeps_its_order_and_the_bound(self, storage: Storage) -> None:
        await storage.append_logs("batch", [{"i": i} for i in range(8)], max_len=5)
        await storage.append_logs("batch", [], max_len=5)
        assert [e.data["i"] for e in await storage.read_log("batch", limit=100)] == [7, 6, 5, 4, 3]

    async def test_log_is_bounded_and_newest_first(self, storage: Storage) -> None:
        for i in range(25):
            await storage.append_log("requests", {"i": i}, max_len=10)
        await storage.append_log("other", {"i": "x"})
        entries = await storage.read_log("requests", limit=100)
        assert [e.data["i"] for e in entries] == list(range(24, 14, -1))
        assert all(a.seq > b.seq for a, b in zip(entries, entries[1:], strict=False))
        assert all(e.at_ms > 1_600_000_000_000 for e in entries)
        page = await storage.read_log("requests", limit=3, before_seq=entries[2].seq)
        assert [e.data["i"] for e in page] == [21, 20, 19]
        assert [e.data for e in await storage.read_log("other")] == [{"i": "x"}]
        assert await storage.read_log("empty") == []
        assert await storage.log_streams() == ["other", "requests"]

    # change feed -----------------------------------------------------------
    async def test_every_write_is_in_the_feed_in_order(self, storage: Storage) -> None:
        start = await storage.last_change()
        await storage.put("accounts", "a", {})
        await storage.put_many("accounts", {"b": {}, "c": {}})
        await storage.patch("accounts", "a", {"x": 1})
        await storage.patch("accounts", "missing", {"x": 1})
        await storage.delete("accounts", "b")
        await storage.delete("accounts", "b")
        await storage.incr("usage", "k", {"chat": 1})
        await storage.incr("usage", "k", {"chat": 1}, limits={"chat": 1})
        changes = await storage.changes_since(start)
        assert [(c.op, c.ns, c.key) for c in changes] == [
            ("put", "accounts", "a"), ("put", "accounts", "b"), ("put", "accounts", "c"),
            ("put", "accounts", "a"), ("delete", "accounts", "b")]
        assert [c.seq for c in changes] == list(range(start + 1, start + 6))
        assert await storage.last_change() == start + 5
        assert await storage.changes_since(start, limit=2) == changes[:2]
        assert await storage.changes_since(start + 5) == []

    async def test_each_change_names_its_writer(self, storage: Storage, other: Storage) -> None:
        start = await storage.last_change()
        await storage.put("accounts", "mine", {})
        await other.patch("accounts", "mine", {"x": 1})
        await other.delete_many("accounts", ["mine"])
        changes = await storage.changes_since(start)
        assert [(c.key, c.origin) for c in changes] == [
            ("mine", storage.origin), ("mine", other.origin), ("mine", other.origin)]
        assert storage.origin != other.origin and len(storage.origin) <= 16

    async def test_wait_for_changes(self, storage: Storage, other: Storage) -> None:
        seq = await storage.last_change()
        began = time.monotonic()
        assert await storage.wait_for_changes(seq, 0.3) == []
        assert time.monotonic() - began >= 0.25

        async def write_later() -> None:
            await asyncio.sleep(0.2)
            await other.put("config", "app", {"api_key": "x"})

        writer = asyncio.create_task(write_later())
        began = time.monotonic()
        changes = await storage.wait_for_changes(seq, 10)
        await writer
        assert [(c.ns, c.key, c.op) for c in changes] == [("config", "app", "put")]
        assert time.monotonic() - began < 3

    async def test_watch_yields_changes(self, storage: Storage, other: Storage) -> None:
        seen: list[Change] = []

        async def consume() -> None:
            async for change in storage.watch(await storage.last_change(), 0.2):
                seen.append(change)
                if len(seen) == 2:
                    return

        task = asyncio.create_task(consume())
        await asyncio.sleep(0.1)
        await other.put("api_keys", "h1", {})
        await other.delete("api_keys", "h1")
        await asyncio.wait_for(task, 10)
        assert [c.op for c in seen] == ["put", "delete"]

    async def test_feed_is_trimmed_and_reports_a_reset(self, storage: Storage) -> None:
        storage.feed_max = 50
        await storage.put_many("accounts", {f"t{i:03d}": {} for i in range(300)})
        end = await storage.last_change()
        assert end == 300
        changes = await storage.changes_since(0)
        assert len(changes) == 1 and changes[0].op == "reset"
        rest = await storage.changes_since(changes[0].seq)
        assert rest and rest[-1].seq == end and all(c.op == "put" for c in rest)
        assert len(await storage.changes_since(end - 50)) == 50
        ahead = await storage.changes_since(end + 100)  # the feed restarted (restored database)
        assert [(c.op, c.seq) for c in ahead] == [("reset", end)]

    async def test_another_process_sees_changes(self, settings: Settings, storage: Storage) -> None:
        child = await self.child(settings, "wait", timeout=20)
        assert child.stdout is not None
        ready = await asyncio.wait_for(child.stdout.readline(), 30)
        assert ready.strip() == b"ready", (ready, await child.stderr.read() if child.stderr else b"")
        await storage.put("config", "grok", {"temporary": False})
        out, err = await asyncio.wait_for(child.communicate(), 30)
        assert child.returncode == 0, err.decode()
        report = orjson.loads(out)
        assert report["changes"] == [["config", "grok", "put"]]
        assert report["elapsed"] < 5

    # lifecycle -------------------------------------------------------------
    async def test_data_survives_close_and_reopen(self, settings: Settings, storage: Storage) -> None:
        await storage.put("accounts", "a", {"quota": 80})
        await storage.put("sessions", "s", {"u": 1}, ttl=300)
        await storage.incr("usage", "k", {"chat": 3})
        await storage.append_log("requests", {"n": 1})
        await storage.acquire_lock("l", "me", 300)
        end = await storage.last_change()
        await storage.close()
        await storage.close()  # twice is fine
        again = self.build(settings)
        await again.open()
        try:
            assert await again.get("accounts", "a") == {"quota": 80}
            assert await again.get("sessions", "s") == {"u": 1}
            assert await again.counters("usage", "k") == {"chat": 3}
            assert [e.data for e in await again.read_log("requests")] == [{"n": 1}]
            assert await again.acquire_lock("l", "someone else", 1) is False
            assert await again.last_change() == end
            await again.put("accounts", "b", {})
            assert [c.seq for c in await again.changes_since(end)] == [end + 1]
        finally:
            await again.close()
        await storage.open()  # the fixture closes it again


    async def test_compact_empties_the_feed_and_keeps_the_records(self, storage: Storage) -> None:
        await storage.put_many("accounts", {"a": {"v": 1}, "b": {"v": 2}})
        await storage.delete("accounts", "b")
        end = await storage.last_change()
        await storage.compact()
        assert await storage.list("accounts") == {"a": {"v": 1}}
        assert await storage.last_change() == end
        assert [c.op for c in await storage.changes_since(0)] == ["reset"]  # a reader behind reloads
        assert await storage.changes_since(end) == []
        await storage.put("accounts", "c", {})
        assert [(c.seq, c.key) for c in await storage.changes_since(end)] == [(end + 1, "c")]

    async def test_workers_opening_a_new_database_together_agree_on_its_schema(
            self, settings: Settings, storage: Storage) -> None:
        await storage.close()
        await self.reset(settings)
        stores = [self.build(settings) for _ in range(4)]
        try:
            await asyncio.gather(*(store.open() for store in stores))  # one creates, the others wait
            await stores[0].put("accounts", "a", {"v": 1})
            assert await stores[3].get("accounts", "a") == {"v": 1}
        finally:
            for store in stores:
                await store.close()
        await storage.open()  # the fixture closes it again


class SqlConformance(StorageConformance):
    """The suite for engines built on :class:`~grok2api.storage.sql.SqlStorage` (shared server, tables dropped)."""

    async def reset(self, settings: Settings) -> None:
        store = self.build(settings)
        assert isinstance(store, SqlStorage)
        await store.open()
        try:
            await store.transaction(metadata.drop_all)
        finally:
            await store.close()

    async def corrupt(self, storage: Storage, ns: str, key: str) -> None:
        assert isinstance(storage, SqlStorage)
        await storage.transaction(lambda conn: conn.execute(
            update(records).where(records.c.ns == ns, records.c.key == key).values(data='{"token": "unterminated')))

    async def test_schema_version_is_recorded_and_a_newer_one_refused(self, settings: Settings,
                                                                      storage: Storage) -> None:
        assert isinstance(storage, SqlStorage)
        version = update(meta).where(meta.c.name == SCHEMA_VERSION)
        stored = await storage.transaction(lambda conn: conn.execute(meta.select().where(
            meta.c.name == SCHEMA_VERSION)).one())
        assert stored.value == storage.schema_version
        await storage.transaction(lambda conn: conn.execute(version.values(value=999)))
        try:
            with pytest.raises(StorageError, match="schema version 999"):
                await self.build(settings).open()
        finally:  # the database is shared with later tests
            await storage.transaction(lambda conn: conn.execute(version.values(value=storage.schema_version)))


# the child process of the two-process tests ----------------------------------
async def _child(factory: str, settings_json: str, action: str, args: dict[str, Any]) -> dict[str, Any]:
    store = load_factory(factory)(Settings.model_validate_json(settings_json))
    await store.open()
    try:
        if action == "incr":
            granted = 0
            for _ in range(args["times"]):
                await store.incr("usage", "shared", {"chat": 1})
                if await store.incr("usage", "shared", {"limited": 1}, limits={"limited": args["limit"]}):
                    granted += 1
            return {"granted": granted}
        seq = await store.last_change()
        print("ready", flush=True)
        began = time.monotonic()
        changes = await store.wait_for_changes(seq, args["timeout"])
        return {"changes": [[c.ns, c.key, c.op] for c in changes], "elapsed": time.monotonic() - began}
    finally:
        await store.close()


if __name__ == "__main__":
    result = asyncio.run(_child(sys.argv[1], sys.argv[2], sys.argv[3], orjson.loads(sys.argv[4])))
    print(orjson.dumps(result).decode(), flush=True)


async def assert_notified_promptly(waiting: Storage, writing: Storage, within: float = 1.0) -> None:
    """A write by one worker wakes another's ``wait_for_changes`` within ``within`` seconds,
    long before any poll would: for engines that notify (Redis pub/sub, PostgreSQL LISTEN)."""
    seq = await waiting.last_change()
    await waiting.wait_for_changes(seq, 0.01)  # lets the engine finish subscribing
    task = asyncio.create_task(waiting.wait_for_changes(seq, 10))
    await asyncio.sleep(0.3)
    began = time.monotonic()
    await writing.put("config", "app", {"x": 1})
    changes = await task
    assert [c.key for c in changes] == ["app"]
    assert time.monotonic() - began < within
