"""The storage contract every engine plugin implements.

Storage is deliberately small and generic: namespaced JSON records written one by one,
atomic counters with limits, expiring locks, a bounded log, and a change feed. The
typed stores of the kernel (accounts, API keys, config, sessions) are built on it, so
a new engine only implements these methods and passes the conformance suite in
:mod:`grok2api.testing.storage_conformance`.

Nothing here ever rewrites a whole namespace: every write names its records.
"""

from __future__ import annotations

import abc
import builtins
import functools
import re
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import orjson

from grok2api.ids import random_hex
from grok2api.logs.logger import logger

JSON = dict[str, Any]

#: the namespaces the kernel uses; plugins may add their own (``plugin:<name>``)
NS_ACCOUNTS = "accounts"
NS_API_KEYS = "api_keys"
NS_CONFIG = "config"
NS_SESSIONS = "sessions"
NS_META = "meta"

#: longest record key, counter key, lock name or owner every engine accepts
MAX_KEY_LEN = 512
#: longest counter field name
MAX_FIELD_LEN = 64
_NS_RE = re.compile(r"[A-Za-z0-9_.:-]{1,128}")


class StorageError(Exception):
    """The engine failed (unreachable, refused, corrupt beyond repair)."""


@dataclass(frozen=True, slots=True)
class Change:
    """One write, as the change feed reports it to other workers."""

    seq: int
    ns: str
    key: str
    #: ``reset`` means the reader fell behind the trimmed feed (or the feed restarted):
    #: reload everything, then continue from ``seq``
    op: Literal["put", "delete", "reset"]
    #: the :attr:`Storage.origin` of the instance that wrote it ("" when not known)
    origin: str = ""


@dataclass(frozen=True, slots=True)
class LogEntry:
    seq: int
    at_ms: int
    data: JSON


class Storage(abc.ABC):
    """One storage engine. Methods are safe to call from many tasks and many processes.

    Records: ``put`` replaces one record, ``patch`` merges fields into one record
    atomically, ``delete`` removes one. A record that cannot be decoded is skipped by
    ``list`` and reported as None by ``get``; it never hides the other records.

    Counters: integers addressed by ``(ns, key, field)``. ``incr`` applies all deltas or
    none: when ``limits`` is given and any field would pass its limit (``new > limit``),
    nothing changes and None is returned. A limit of ``-1`` means unlimited.

    Locks: named, with an owner and an expiry, so a crashed holder cannot block forever.

    Change feed: every ``put``/``patch``/``delete`` appends a :class:`Change`
    (``put_many``/``delete_many`` one per record). Counters stay out of it: they change
    on every request, and their readers read them when needed (a change per ``incr``
    cost each worker a feed read per request). Sequence numbers follow commit order.
    ``changes_since(seq)`` returns later changes in order; ``wait_for_changes`` returns
    early when the engine can notify (Redis pub/sub, PostgreSQL LISTEN) and otherwise
    polls. The feed keeps the last :attr:`feed_max` changes; a reader behind that gets a
    single ``reset`` change first. Each change names its writer's :attr:`origin`, so a
    reader that already holds what its own process wrote can skip re-reading it.

    Namespaces are 1–128 characters of ``[A-Za-z0-9_.:-]``; keys, lock names and owners
    are non-empty and at most :data:`MAX_KEY_LEN` characters, counter fields at most
    :data:`MAX_FIELD_LEN` (:func:`check_name`).
    """

    #: the engine's name, as in ``SERVER_STORAGE_TYPE``
    name: str = ""
    #: version of the schema this code writes; stored by the engine on open
    schema_version: int = 1
    #: changes kept in the feed
    feed_max: int = 10_000

    @functools.cached_property
    def origin(self) -> str:
        """This instance's name in the changes it writes: unique per process and open storage."""
        return random_hex(8)

    # lifecycle ---------------------------------------------------------------
    @abc.abstractmethod
    async def open(self) -> None:
        """Connect, create or migrate the schema. Raise :class:`StorageError` with a clear message."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Release connections. Safe to call twice."""

    # records ---------------------------------------------------------------
    @abc.abstractmethod
    async def get(self, ns: str, key: str) -> JSON | None: ...

    @abc.abstractmethod
    async def get_many(self, ns: str, keys: Sequence[str]) -> dict[str, JSON]: ...

    @abc.abstractmethod
    async def list(self, ns: str, *, prefix: str = "") -> dict[str, JSON]:
        """Every decodable record of a namespace (optionally with a key prefix)."""

    @abc.abstractmethod
    async def namespaces(self) -> builtins.list[str]:
        """Names of the namespaces that hold records, sorted (for export)."""

    @abc.abstractmethod
    async def put(self, ns: str, key: str, data: JSON, *, ttl: float | None = None) -> None:
        """Create or replace one record; with ``ttl`` it expires after that many seconds."""

    @abc.abstractmethod
    async def put_many(self, ns: str, items: Mapping[str, JSON]) -> None:
        """Create or replace several records in one transaction (each still one record)."""

    @abc.abstractmethod
    async def patch(self, ns: str, key: str, fields: JSON) -> JSON | None:
        """Merge ``fields`` into an existing record atomically; a None value removes the field.

        Returns the new record, or None when there is no such record.
        """

    async def patch_many(self, ns: str, items: Mapping[str, JSON]) -> dict[str, JSON]:
        """:meth:`patch` for several records (each still merged atomically); returns the
        new records of those that exist. Engines that can write them in one transaction
        override this: the pool's writer stores every changed account at once."""
        merged = {key: await self.patch(ns, key, fields) for key, fields in items.items()}
        return {key: record for key, record in merged.items() if record is not None}

    @abc.abstractmethod
    async def delete(self, ns: str, key: str) -> bool: ...

    @abc.abstractmethod
    async def delete_many(self, ns: str, keys: Sequence[str]) -> int: ...

    # counters --------------------------------------------------------------
    @abc.abstractmethod
    async def incr(
        self, ns: str, key: str, deltas: Mapping[str, int], *, limits: Mapping[str, int] | None = None
    ) -> dict[str, int] | None:
        """Add every delta atomically; return all counters of ``(ns, key)``, or None if a limit refused it."""

    async def incr_many(self, ns: str, items: Mapping[str, Mapping[str, int]]) -> dict[str, dict[str, int]]:
        """:meth:`incr` without limits for several keys; returns every counter of each key.
        Engines that can apply them in one transaction override this."""
        return {key: await self.incr(ns, key, deltas) or {} for key, deltas in items.items()}

    @abc.abstractmethod
    async def counters(self, ns: str, key: str) -> dict[str, int]: ...

    @abc.abstractmethod
    async def counters_many(self, ns: str) -> dict[str, dict[str, int]]:
        """Every counter of a namespace, by key."""

    @abc.abstractmethod
    async def drop_counters(self, ns: str) -> None:
        """Remove a whole counter namespace (old days of key usage)."""

    @abc.abstractmethod
    async def delete_counters(self, ns: str, keys: Sequence[str]) -> None:
        """Remove every counter of these keys (a migration moving them to other keys)."""

    @abc.abstractmethod
    async def counter_namespaces(self, prefix: str = "") -> builtins.list[str]:
        """Names of the counter namespaces that hold counters, sorted (to prune old days)."""

    # locks -----------------------------------------------------------------
    @abc.abstractmethod
    async def acquire_lock(self, name: str, owner: str, ttl: float) -> bool:
        """Take the lock if free or expired (or already ours: then extend it)."""

    @abc.abstractmethod
    async def release_lock(self, name: str, owner: str) -> bool:
        """Release if we hold it; False otherwise."""

    # log -------------------------------------------------------------------
    @abc.abstractmethod
    async def append_logs(self, stream: str, entries: Sequence[JSON], *, max_len: int = 10_000) -> None:
        """Append entries, in order and in one round trip, to a bounded log, trimming the
        oldest entries beyond ``max_len``."""

    async def append_log(self, stream: str, data: JSON, *, max_len: int = 10_000) -> None:
        await self.append_logs(stream, [data], max_len=max_len)

    @abc.abstractmethod
    async def log_streams(self) -> builtins.list[str]:
        """Names of the logs that hold entries, sorted (for export)."""

    @abc.abstractmethod
    async def read_log(
        self, stream: str, *, limit: int = 100, before_seq: int | None = None
    ) -> builtins.list[LogEntry]:
        """Newest first."""

    # change feed -----------------------------------------------------------
    @abc.abstractmethod
    async def last_change(self) -> int:
        """The current end of the feed (0 when empty)."""

    @abc.abstractmethod
    async def changes_since(self, seq: int, *, limit: int = 1000) -> builtins.list[Change]: ...

    @abc.abstractmethod
    async def wait_for_changes(self, seq: int, timeout: float) -> builtins.list[Change]:
        """Changes after ``seq``; waits up to ``timeout`` seconds for the first."""

    @abc.abstractmethod
    async def compact(self) -> None:
        """Forget what was overwritten: empty the change feed (a reader behind it gets a
        ``reset``) and, where the engine can, rewrite its files without the freed space.
        Run after credentials were sealed, so no old plain-text copy stays readable."""

    async def watch(self, seq: int, poll: float) -> AsyncIterator[Change]:
        """Every change after ``seq``, forever (cancel the task to stop)."""
        while True:
            for change in await self.wait_for_changes(seq, poll):
                seq = change.seq
                yield change


def check_ns(ns: str) -> str:
    """Refuse namespaces that engines could not store unambiguously."""
    if not isinstance(ns, str) or not _NS_RE.fullmatch(ns):
        raise ValueError(f"invalid storage namespace {ns!r}: use 1-128 characters of A-Z a-z 0-9 _ . : -")
    return ns


def check_name(key: str, what: str = "key", limit: int = MAX_KEY_LEN) -> str:
    """Refuse empty or over-long record keys, counter keys and fields, lock names and owners."""
    if not isinstance(key, str) or not key or len(key) > limit:
        raise ValueError(f"invalid storage {what}: must be a non-empty string of at most {limit} characters")
    return key


def now_ms() -> int:
    return int(time.time() * 1000)


def encode(data: JSON) -> bytes:
    """The stored form of a record (orjson; refuses non-JSON values before anything is written)."""
    if not isinstance(data, dict):
        raise TypeError(f"a storage record must be a dict, not {type(data).__name__}")
    return orjson.dumps(data)


def decode(raw: bytes | str | None, *where: object) -> JSON | None:
    """A stored record, or None (logged) when it is not a JSON object: bad rows never hide good ones.
    ``where`` names it in the warning, joined with ``/`` only then (a load decodes 100,000)."""
    if raw is None:
        return None
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        logger.warning("storage: skipping undecodable record {}", "/".join(map(str, where)))
        return None
    if not isinstance(data, dict):
        logger.warning("storage: skipping record {}: not a JSON object", "/".join(map(str, where)))
        return None
    return data


def merge(record: JSON, fields: JSON) -> JSON:
    """``patch`` semantics: set each field, remove those given as None."""
    merged = dict(record)
    for name, value in fields.items():
        if value is None:
            merged.pop(name, None)
        else:
            merged[name] = value
    return merged


def feed_reset(seq: int, trimmed: int, end: int) -> Change | None:
    """The ``reset`` change a reader at ``seq`` must see first, if any."""
    if seq < trimmed:
        return Change(trimmed, "", "", "reset")
    if seq > end:
        return Change(end, "", "", "reset")
    return None
