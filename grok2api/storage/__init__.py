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
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

JSON = dict[str, Any]

#: the namespaces the kernel uses; plugins may add their own (``plugin:<name>``)
NS_ACCOUNTS = "accounts"
NS_API_KEYS = "api_keys"
NS_CONFIG = "config"
NS_SESSIONS = "sessions"
NS_META = "meta"


class StorageError(Exception):
    """The engine failed (unreachable, refused, corrupt beyond repair)."""


@dataclass(frozen=True, slots=True)
class Change:
    """One write, as the change feed reports it to other workers."""

    seq: int
    ns: str
    key: str
    op: Literal["put", "delete", "counter"]


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

    Change feed: every ``put``/``patch``/``delete``/``incr`` appends a :class:`Change`.
    ``changes_since(seq)`` returns later changes in order; ``wait_for_changes`` returns
    early when the engine can notify (Redis pub/sub, PostgreSQL LISTEN) and otherwise
    after ``timeout`` seconds.
    """

    #: the engine's name, as in ``SERVER_STORAGE_TYPE``
    name: str = ""
    #: version of the schema this code writes; stored by the engine on open
    schema_version: int = 1

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

    @abc.abstractmethod
    async def counters(self, ns: str, key: str) -> dict[str, int]: ...

    @abc.abstractmethod
    async def counters_many(self, ns: str) -> dict[str, dict[str, int]]:
        """Every counter of a namespace, by key."""

    @abc.abstractmethod
    async def drop_counters(self, ns: str) -> None:
        """Remove a whole counter namespace (old days of key usage)."""

    # locks -----------------------------------------------------------------
    @abc.abstractmethod
    async def acquire_lock(self, name: str, owner: str, ttl: float) -> bool:
        """Take the lock if free or expired (or already ours: then extend it)."""

    @abc.abstractmethod
    async def release_lock(self, name: str, owner: str) -> bool:
        """Release if we hold it; False otherwise."""

    # log -------------------------------------------------------------------
    @abc.abstractmethod
    async def append_log(self, stream: str, data: JSON, *, max_len: int = 10_000) -> None:
        """Append to a bounded log, trimming the oldest entries beyond ``max_len``."""

    @abc.abstractmethod
    async def read_log(self, stream: str, *, limit: int = 100, before_seq: int | None = None) -> list[LogEntry]:
        """Newest first."""

    # change feed -----------------------------------------------------------
    @abc.abstractmethod
    async def last_change(self) -> int:
        """The current end of the feed (0 when empty)."""

    @abc.abstractmethod
    async def changes_since(self, seq: int, *, limit: int = 1000) -> list[Change]: ...

    @abc.abstractmethod
    async def wait_for_changes(self, seq: int, timeout: float) -> list[Change]:
        """Changes after ``seq``; waits up to ``timeout`` seconds for the first."""

    async def watch(self, seq: int, poll: float) -> AsyncIterator[Change]:
        """Every change after ``seq``, forever (cancel the task to stop)."""
        while True:
            for change in await self.wait_for_changes(seq, poll):
                seq = change.seq
                yield change
