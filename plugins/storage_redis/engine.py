"""Redis through redis.asyncio: every write is one Lua script, so it and its change-feed entry are atomic.

Layout (namespaces are validated, so the braces are unambiguous)::

    g2a:meta                  hash: schema_version (the layout's version; g2a:lock:schema while upgrading)
    g2a:r:{<ns>}:<key>        hash per record: "@" marks it, ".<field>" holds each field as JSON
    g2a:ri:{<ns>}             zset of record keys, scored by expiry (ms, or +inf); g2a:rns set of namespaces
    g2a:c:{<ns>}:<key>        hash of counters; g2a:ci:{<ns>} set of their keys; g2a:cns set of namespaces
    g2a:lock:<name>           lock owner, expiring natively
    g2a:log:{<stream>}        zset of "<seq> <at_ms> <json>", scored by seq; g2a:log:seq the sequence;
                              g2a:logs set of stream names
    g2a:feed                  zset of "<seq> [op, ns, key]", scored by seq; g2a:feed:seq, g2a:feed:trimmed
    channel g2a:changes       the new end of the feed after every write

Fields live in their own hash entries so ``patch`` merges inside Redis without
decoding JSON in Lua; records expire natively (``PEXPIRE``).
"""

from __future__ import annotations

import asyncio
import builtins
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from contextlib import suppress
from typing import Any, cast
from urllib.parse import urlsplit

import orjson
import redis.asyncio as redis
from redis.exceptions import RedisError

from grok2api.api import (
    JSON,
    MAX_FIELD_LEN,
    Change,
    FeedWaiter,
    LogEntry,
    Settings,
    Storage,
    StorageError,
    check_name,
    check_ns,
    encode,
    feed_reset,
    logger,
    mask_text,
    now_ms,
)

CHANNEL = "g2a:changes"
_SCHEMES = ("redis", "rediss", "unix")
_EXAMPLE = "redis://:password@host:6379/0"
_LISTEN_POLL, _FALLBACK_POLL = 5.0, 1.0
_CHUNK = 500

# feed(ns, keys, op, feed_max): append one change per key, trim, publish; every feeding
# script gets the writer's origin as its first argument (taken off ARGV here)
_FEED = """
local origin = table.remove(ARGV, 1)
local function feed(ns, keys, op, feed_max)
  local n = #keys
  if n == 0 then return end
  local last = redis.call('INCRBY', 'g2a:feed:seq', n)
  for i, k in ipairs(keys) do
    local seq = last - n + i
    redis.call('ZADD', 'g2a:feed', seq, seq .. ' ' .. cjson.encode({op, ns, k, origin}))
  end
  if last % 256 < n and last > feed_max then
    redis.call('ZREMRANGEBYSCORE', 'g2a:feed', '-inf', last - feed_max)
    redis.call('SET', 'g2a:feed:trimmed', last - feed_max)
  end
  redis.call('PUBLISH', 'g2a:changes', last)
end
local function rkey(ns, k) return 'g2a:r:{' .. ns .. '}:' .. k end
"""

# ARGV: ns, ttl_ms ('' = none), now, feed_max, then per record: key, n, n*(field, json)
_PUT = _FEED + """
local ns, ttl, now, fmax = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local idx = 'g2a:ri:{' .. ns .. '}'
local keys, i = {}, 5
while i <= #ARGV do
  local k, n = ARGV[i], tonumber(ARGV[i + 1])
  local rk = rkey(ns, k)
  redis.call('DEL', rk)
  redis.call('HSET', rk, '@', '1', unpack(ARGV, i + 2, i + 1 + 2 * n))
  if ttl then
    redis.call('PEXPIRE', rk, ttl)
    redis.call('ZADD', idx, now + ttl, k)
  else
    redis.call('ZADD', idx, 'inf', k)
  end
  keys[#keys + 1] = k
  i = i + 2 + 2 * n
end
redis.call('ZREMRANGEBYSCORE', idx, '-inf', now)
redis.call('SADD', 'g2a:rns', ns)
feed(ns, keys, 'put', fmax)
"""

# ARGV: ns, key, feed_max, n, n*(field, json), then fields to remove
_PATCH = _FEED + """
local ns, k, fmax, n = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local rk = rkey(ns, k)
if redis.call('HEXISTS', rk, '@') == 0 then return nil end
if n > 0 then redis.call('HSET', rk, unpack(ARGV, 5, 4 + 2 * n)) end
for j = 5 + 2 * n, #ARGV do redis.call('HDEL', rk, ARGV[j]) end
feed(ns, {k}, 'put', fmax)
return redis.call('HGETALL', rk)
"""

# ARGV: ns, feed_max, keys...
_DELETE = _FEED + """
local ns, fmax = ARGV[1], tonumber(ARGV[2])
local gone = {}
for j = 3, #ARGV do
  if redis.call('DEL', rkey(ns, ARGV[j])) == 1 then gone[#gone + 1] = ARGV[j] end
  redis.call('ZREM', 'g2a:ri:{' .. ns .. '}', ARGV[j])
end
feed(ns, gone, 'delete', fmax)
return #gone
"""

# ARGV: ns, key, then (field, delta, limit) triples; nil when a limit refuses
_INCR = """
local ns, k = ARGV[1], ARGV[2]
local ck = 'g2a:c:{' .. ns .. '}:' .. k
for j = 3, #ARGV, 3 do
  local limit = tonumber(ARGV[j + 2])
  local value = tonumber(redis.call('HGET', ck, ARGV[j]) or '0') + tonumber(ARGV[j + 1])
  if limit >= 0 and value > limit then return nil end
end
for j = 3, #ARGV, 3 do redis.call('HINCRBY', ck, ARGV[j], ARGV[j + 1]) end
redis.call('SADD', 'g2a:ci:{' .. ns .. '}', k)
redis.call('SADD', 'g2a:cns', ns)
return redis.call('HGETALL', ck)
"""

_DROP_COUNTERS = """
local idx = 'g2a:ci:{' .. ARGV[1] .. '}'
for _, k in ipairs(redis.call('SMEMBERS', idx)) do redis.call('DEL', 'g2a:c:{' .. ARGV[1] .. '}:' .. k) end
redis.call('DEL', idx)
redis.call('SREM', 'g2a:cns', ARGV[1])
"""

_COMPACT = """
redis.call('DEL', 'g2a:feed')
redis.call('SET', 'g2a:feed:trimmed', redis.call('GET', 'g2a:feed:seq') or 0)
"""

# ARGV: ns, keys...
_DELETE_COUNTERS = """
local idx = 'g2a:ci:{' .. ARGV[1] .. '}'
for j = 2, #ARGV do
  redis.call('DEL', 'g2a:c:{' .. ARGV[1] .. '}:' .. ARGV[j])
  redis.call('SREM', idx, ARGV[j])
end
if redis.call('SCARD', idx) == 0 then redis.call('SREM', 'g2a:cns', ARGV[1]) end
"""

_ACQUIRE = """
local holder = redis.call('GET', KEYS[1])
if holder and holder ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
"""

_RELEASE = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
return redis.call('DEL', KEYS[1])
"""

# KEYS: the stream's zset; ARGV: now, json, max_len, stream
_APPEND_LOG = """
local seq = redis.call('INCR', 'g2a:log:seq')
redis.call('SADD', 'g2a:logs', ARGV[4])
redis.call('ZADD', KEYS[1], seq, seq .. ' ' .. ARGV[1] .. ' ' .. ARGV[2])
redis.call('ZREMRANGEBYRANK', KEYS[1], 0, -1 - tonumber(ARGV[3]))
"""


async def _keys_v1(client: redis.Redis) -> None:
    """Layout v1, the keys above: created as they are first written."""


#: the layout's steps, applied in order to a database at an older ``schema_version``; a
#: new step is appended here (never inserted or changed) and must be safe to run twice
SCHEMA_STEPS: tuple[tuple[str, Callable[[redis.Redis], Awaitable[None]]], ...] = (
    ("keys", _keys_v1),
)
_SCHEMA_LOCK, _SCHEMA_LOCK_SEC = "g2a:lock:schema", 120.0


def _rkey(ns: str, key: str) -> str:
    return f"g2a:r:{{{ns}}}:{key}"


def _decode_hash(fields: Any, where: str) -> JSON | None:
    """A record hash as a dict; None (logged) when it is not one of ours or a field is not JSON."""
    if isinstance(fields, Exception):
        logger.warning("storage: skipping record {}: {}", where, fields)
        return None
    if isinstance(fields, list):  # script replies are flat lists
        fields = dict(zip(fields[::2], fields[1::2], strict=True))
    if not fields:
        return None
    out: JSON = {}
    try:
        for name, raw in fields.items():
            if name.startswith(b"."):
                out[name[1:].decode()] = orjson.loads(raw)
    except (orjson.JSONDecodeError, UnicodeDecodeError):
        logger.warning("storage: skipping undecodable record {}", where)
        return None
    return out


def _flat(data: JSON) -> list[Any]:
    """Record fields as ``.name, json`` pairs (values checked by :func:`encode` first)."""
    encode(data)
    return [part for name, value in data.items() for part in (f".{name}", orjson.dumps(value))]


def _members(reply: Iterable[object]) -> list[bytes]:
    """A reply's members as the bytes they are: this client never decodes them
    (``decode_responses=False``), while redis-py types replies for either setting."""
    return cast("list[bytes]", list(reply))


def _names(reply: Iterable[object]) -> list[str]:
    """A reply's members (names of namespaces, keys or logs) as text, sorted."""
    return sorted(member.decode() for member in _members(reply))


def _counts(reply: Mapping[Any, Any]) -> dict[str, int]:
    """A counter hash (bytes to bytes) as ``{field: value}``."""
    return {name.decode(): int(value) for name, value in reply.items()}


class RedisStorage(Storage):
    name = "redis"
    schema_version = len(SCHEMA_STEPS)

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._redis: redis.Redis | None = None
        self._waiter: FeedWaiter | None = None
        self._subscriber: asyncio.Task[None] | None = None
        self._subscribed = False

    @property
    def client(self) -> redis.Redis:
        if self._redis is None:
            raise StorageError("redis storage is not open")
        return self._redis

    # lifecycle ---------------------------------------------------------------
    def url(self) -> str:
        raw = self.settings.server.storage_url.strip()
        if not raw:
            raise StorageError(f"SERVER_STORAGE_URL is required with SERVER_STORAGE_TYPE=redis, e.g. {_EXAMPLE}")
        try:
            parts = urlsplit(raw)
            parts.port  # noqa: B018 - raises on a malformed port
        except ValueError as exc:
            raise StorageError(f"SERVER_STORAGE_URL is not a valid redis URL ({exc}); "
                               f"expected e.g. {_EXAMPLE}") from None
        if parts.scheme not in _SCHEMES or not (parts.hostname or parts.path):
            raise StorageError(f"SERVER_STORAGE_URL {mask_text(raw)!r} is not a redis URL; expected e.g. {_EXAMPLE}")
        return raw

    async def open(self) -> None:
        url = self.url()
        client = redis.from_url(url, decode_responses=False, socket_connect_timeout=10, health_check_interval=30)
        try:
            await client.ping()
            stored = await self._upgrade(client)
        except (RedisError, OSError, ValueError) as exc:
            await client.aclose()
            raise StorageError(f"redis storage at {mask_text(url)} cannot be opened: {exc}") from exc
        if stored > self.schema_version:
            await client.aclose()
            raise StorageError(f"the redis database has schema version {stored}, newer than this grok2api "
                               f"understands ({self.schema_version}); upgrade grok2api")
        self._redis = client
        self._scripts = {name: client.register_script(src) for name, src in (
            ("put", _PUT), ("patch", _PATCH), ("delete", _DELETE), ("incr", _INCR), ("drop", _DROP_COUNTERS),
            ("delete_counters", _DELETE_COUNTERS), ("compact", _COMPACT),
            ("acquire", _ACQUIRE), ("release", _RELEASE), ("log", _APPEND_LOG))}
        self._waiter = FeedWaiter()
        # subscribed before open() returns: from then on other workers' writes wake waiters
        try:
            pubsub = await self._subscribed_pubsub()
        except (RedisError, OSError) as exc:
            await self.close()
            raise StorageError(f"redis storage at {mask_text(url)} cannot subscribe to changes: {exc}") from exc
        self._subscriber = asyncio.create_task(self._listen(pubsub), name="redis-change-feed")
        logger.info("storage: redis at {} (schema v{})", mask_text(url), self.schema_version)

    async def _upgrade(self, client: redis.Redis) -> int:
        """Apply the layout steps the database lacks, under a lock so workers starting together
        migrate once; returns the version found. A database without a version is new."""
        owner = self.origin
        deadline = asyncio.get_running_loop().time() + _SCHEMA_LOCK_SEC
        while not await client.set(_SCHEMA_LOCK, owner, nx=True, px=int(_SCHEMA_LOCK_SEC * 1000)):
            if asyncio.get_running_loop().time() > deadline:
                raise StorageError(f"another worker held the schema lock for {_SCHEMA_LOCK_SEC:.0f} s; try again")
            await asyncio.sleep(0.05)
        try:
            stored = int(await client.hget("g2a:meta", "schema_version") or 0)
            for version in range(stored + 1, self.schema_version + 1):
                name, step = SCHEMA_STEPS[version - 1]
                await step(client)
                await client.hset("g2a:meta", "schema_version", version)
                if stored:
                    logger.info("storage: redis schema upgraded to v{} ({})", version, name)
            return stored
        finally:
            await client.eval(_RELEASE, 1, _SCHEMA_LOCK, owner)

    async def close(self) -> None:
        task, self._subscriber = self._subscriber, None
        if task is not None:
            task.cancel()
            await asyncio.wait({task}, timeout=5)  # redis-py can swallow a cancel while it reconnects
        client, self._redis = self._redis, None
        if client is not None:
            await client.aclose()

    async def _subscribed_pubsub(self) -> Any:
        pubsub = self.client.pubsub(ignore_subscribe_messages=True)
        await pubsub.subscribe(CHANNEL)
        return pubsub

    async def _listen(self, pubsub: Any) -> None:
        """Wake feed waiters on every published change; resubscribe after a lost connection."""
        while True:
            try:
                if pubsub is None:
                    pubsub = await self._subscribed_pubsub()
                    self._notify()  # anything published while we were away
                self._subscribed = True
                while True:
                    if await pubsub.get_message(timeout=30.0) is not None:
                        self._notify()
            except (RedisError, OSError) as exc:
                logger.warning("storage: redis change subscription lost, polling meanwhile: {}", exc)
            finally:
                self._subscribed = False
                if pubsub is not None:
                    with suppress(Exception):
                        await pubsub.aclose()
                pubsub = None
            await asyncio.sleep(1.0)

    def _notify(self) -> None:
        if self._waiter is not None:
            self._waiter.notify()

    async def _run_feeding(self, script: str, args: Sequence[Any]) -> Any:
        """Run a script that appends to the change feed, then wake this worker's readers."""
        result = await self._scripts[script](args=[self.origin, *args])
        self._notify()
        return result

    # records -----------------------------------------------------------------
    async def get(self, ns: str, key: str) -> JSON | None:
        return (await self.get_many(ns, [key])).get(key)

    async def get_many(self, ns: str, keys: Sequence[str]) -> dict[str, JSON]:
        check_ns(ns)
        return await self._fetch(ns, sorted({check_name(k) for k in keys}))

    async def _fetch(self, ns: str, keys: list[str]) -> dict[str, JSON]:
        found: dict[str, JSON] = {}
        for start in range(0, len(keys), _CHUNK):
            chunk = keys[start:start + _CHUNK]
            async with self.client.pipeline(transaction=False) as pipe:
                for key in chunk:
                    pipe.hgetall(_rkey(ns, key))
                replies = await pipe.execute(raise_on_error=False)
            for key, reply in zip(chunk, replies, strict=True):
                data = _decode_hash(reply, f"{ns}/{key}")
                if data is not None:
                    found[key] = data
        return found

    async def list(self, ns: str, *, prefix: str = "") -> dict[str, JSON]:
        check_ns(ns)
        members = await self.client.zrangebyscore(f"g2a:ri:{{{ns}}}", f"({now_ms()}", "+inf")
        keys = [key for key in _names(members) if key.startswith(prefix)]
        return await self._fetch(ns, keys)

    async def namespaces(self) -> builtins.list[str]:
        now = now_ms()
        names = _names(await self.client.smembers("g2a:rns"))
        async with self.client.pipeline(transaction=False) as pipe:
            for ns in names:
                pipe.zcount(f"g2a:ri:{{{ns}}}", f"({now}", "+inf")
            live = await pipe.execute()
        return [ns for ns, count in zip(names, live, strict=True) if count]

    async def put(self, ns: str, key: str, data: JSON, *, ttl: float | None = None) -> None:
        await self._put(ns, {key: data}, ttl)

    async def put_many(self, ns: str, items: Mapping[str, JSON]) -> None:
        await self._put(ns, items, None)

    async def _put(self, ns: str, items: Mapping[str, JSON], ttl: float | None) -> None:
        check_ns(ns)
        ttl_ms = "" if ttl is None else str(max(1, int(ttl * 1000)))
        head = [ns, ttl_ms, now_ms(), self.feed_max]
        batch: list[Any] = []
        for key in sorted(items):
            fields = _flat(items[key])
            batch += [check_name(key), len(fields) // 2, *fields]
            if len(batch) > 20_000:  # keep scripts' argument lists moderate
                await self._run_feeding("put", head + batch)
                batch = []
        if batch:
            await self._run_feeding("put", head + batch)

    async def patch(self, ns: str, key: str, fields: JSON) -> JSON | None:
        check_ns(ns)
        check_name(key)
        updates = _flat({k: v for k, v in fields.items() if v is not None})
        removed = [f".{k}" for k, v in fields.items() if v is None]
        reply = await self._run_feeding("patch", [ns, key, self.feed_max, len(updates) // 2, *updates, *removed])
        return None if reply is None else _decode_hash(reply, f"{ns}/{key}")

    async def delete(self, ns: str, key: str) -> bool:
        return await self.delete_many(ns, [key]) == 1

    async def delete_many(self, ns: str, keys: Sequence[str]) -> int:
        check_ns(ns)
        wanted = sorted({check_name(k) for k in keys})
        gone = 0
        for start in range(0, len(wanted), _CHUNK):
            gone += int(await self._run_feeding("delete", [ns, self.feed_max, *wanted[start:start + _CHUNK]]))
        return gone

    # counters ----------------------------------------------------------------
    async def incr(
        self, ns: str, key: str, deltas: Mapping[str, int], *, limits: Mapping[str, int] | None = None
    ) -> dict[str, int] | None:
        check_ns(ns)
        check_name(key)
        args: list[Any] = [ns, key]
        for field in sorted(deltas):
            check_name(field, "counter field", MAX_FIELD_LEN)
            args += [field, int(deltas[field]), int((limits or {}).get(field, -1))]
        reply = await self._scripts["incr"](args=args)
        if reply is None:
            return None
        return {name.decode(): int(value) for name, value in zip(reply[::2], reply[1::2], strict=True)}

    async def counters(self, ns: str, key: str) -> dict[str, int]:
        check_ns(ns)
        return _counts(await self.client.hgetall(f"g2a:c:{{{ns}}}:{check_name(key)}"))

    async def counters_many(self, ns: str) -> dict[str, dict[str, int]]:
        check_ns(ns)
        keys = _names(await self.client.smembers(f"g2a:ci:{{{ns}}}"))
        async with self.client.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.hgetall(f"g2a:c:{{{ns}}}:{key}")
            replies = await pipe.execute()
        return {key: _counts(raw) for key, raw in zip(keys, replies, strict=True) if raw}

    async def drop_counters(self, ns: str) -> None:
        await self._scripts["drop"](args=[check_ns(ns)])

    async def delete_counters(self, ns: str, keys: Sequence[str]) -> None:
        check_ns(ns)
        wanted = sorted({check_name(k) for k in keys})
        for start in range(0, len(wanted), _CHUNK):
            await self._scripts["delete_counters"](args=[ns, *wanted[start:start + _CHUNK]])

    async def counter_namespaces(self, prefix: str = "") -> builtins.list[str]:
        return [name for name in _names(await self.client.smembers("g2a:cns")) if name.startswith(prefix)]

    # locks -------------------------------------------------------------------
    async def acquire_lock(self, name: str, owner: str, ttl: float) -> bool:
        check_name(owner, "lock owner")
        key = f"g2a:lock:{check_name(name, 'lock name')}"
        return bool(await self._scripts["acquire"](keys=[key], args=[owner, max(1, int(ttl * 1000))]))

    async def release_lock(self, name: str, owner: str) -> bool:
        check_name(owner, "lock owner")
        key = f"g2a:lock:{check_name(name, 'lock name')}"
        return bool(await self._scripts["release"](keys=[key], args=[owner]))

    # log ---------------------------------------------------------------------
    async def append_logs(self, stream: str, entries: Sequence[JSON], *, max_len: int = 10_000) -> None:
        key = f"g2a:log:{{{check_ns(stream)}}}"
        raws = [encode(data) for data in entries]
        async with self.client.pipeline(transaction=False) as pipe:
            for raw in raws:
                await self._scripts["log"](keys=[key], args=[now_ms(), raw, max_len, stream], client=pipe)
            await pipe.execute()

    async def log_streams(self) -> builtins.list[str]:
        return _names(await self.client.smembers("g2a:logs"))

    async def read_log(
        self, stream: str, *, limit: int = 100, before_seq: int | None = None
    ) -> builtins.list[LogEntry]:
        key = f"g2a:log:{{{check_ns(stream)}}}"
        top = "+inf" if before_seq is None else f"({before_seq}"
        entries = []
        for member in _members(await self.client.zrevrangebyscore(key, top, "-inf", start=0, num=limit)):
            seq, at, raw = member.split(b" ", 2)
            try:
                entries.append(LogEntry(int(seq), int(at), orjson.loads(raw)))
            except (orjson.JSONDecodeError, ValueError):
                logger.warning("storage: skipping undecodable log entry {}/{}", stream, seq)
        return entries

    # change feed -------------------------------------------------------------
    async def last_change(self) -> int:
        return int(await self.client.get("g2a:feed:seq") or 0)

    async def changes_since(self, seq: int, *, limit: int = 1000) -> builtins.list[Change]:
        end, trimmed = await self.client.mget("g2a:feed:seq", "g2a:feed:trimmed")
        reset = feed_reset(seq, int(trimmed or 0), int(end or 0))
        if reset is not None:
            return [reset]
        out = []
        for member in _members(await self.client.zrangebyscore("g2a:feed", f"({seq}", "+inf", start=0, num=limit)):
            number, raw = member.split(b" ", 1)
            op, ns, key, *origin = orjson.loads(raw)  # entries of older versions name no origin
            out.append(Change(int(number), ns, key, op, origin[0] if origin else ""))
        return out

    async def compact(self) -> None:
        await self._scripts["compact"](args=[])

    async def wait_for_changes(self, seq: int, timeout: float) -> builtins.list[Change]:
        if self._waiter is None:
            raise StorageError("redis storage is not open")
        poll = _LISTEN_POLL if self._subscribed else _FALLBACK_POLL
        return await self._waiter.wait(lambda: self.changes_since(seq), timeout, poll)
