"""A managed key's access limits beside its daily quotas: requests per minute, concurrent
requests, an expiry time and a model allow-list, enforced on every ``/v1`` capability.

Every limit is shared by all workers through storage. Requests per minute are one
``incr`` with a limit on the minute's counter (``key_rpm:<unix minute>``, a fixed window;
old minutes are dropped). A concurrent request holds one of the key's ``concurrency``
slots, each a storage lock (``key-slot:<key id>:<n>``) renewed while the request runs
and released when it ends, however it ends; a crashed worker's slot expires after
:data:`~grok2api.keys.leases.LEASE_TTL` seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import random
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Literal

from grok2api.ids import random_hex
from grok2api.keys.leases import Leases
from grok2api.storage import JSON, Storage

RPM_NS = "key_rpm:"
SLOT_LOCK = "key-slot:{}:{}"
#: the access fields of a key record and their values when unset
DEFAULTS: dict[str, Any] = {"rpm": -1, "concurrency": -1, "expires_at": None, "models": []}
MAX_RPM = 1_000_000
#: a request looks for a free slot among this many locks at most
MAX_CONCURRENCY = 1_000
MAX_MODELS = 500
MAX_EXPIRES_AT = 10**11  # the year 5138: anything later is a typo


class InvalidKeyField(ValueError):
    """An access field that cannot be stored; the admin API answers 400 naming ``field``."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


class KeyLimitExceeded(Exception):
    """The key's ``rpm`` or ``concurrency`` refuses this request (429)."""

    def __init__(self, limit: Literal["rpm", "concurrency"], message: str, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.limit = limit
        self.message = message
        self.retry_after = retry_after


class KeyExpired(Exception):
    """The key's ``expires_at`` has passed (403)."""

    def __init__(self, expires_at: int) -> None:
        moment = datetime.fromtimestamp(expires_at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        super().__init__(f"This API key expired at {moment}")
        self.expires_at = expires_at


class ModelNotAllowed(Exception):
    """The key's ``models`` allow-list does not name the model (403)."""

    def __init__(self, model: str, allowed: Sequence[str]) -> None:
        shown = ", ".join(allowed[:20]) + (f" and {len(allowed) - 20} more" if len(allowed) > 20 else "")
        super().__init__(f"The model '{model[:200]}' is not allowed for this API key (allowed: {shown})")
        self.model = model
        self.allowed = list(allowed)


def _count(field: str, value: Any, limit: int, what: str) -> int:
    if value is None:
        return -1
    if isinstance(value, bool) or not isinstance(value, int) or not -1 <= value <= limit:
        raise InvalidKeyField(field, f"'{field}' must be an integer from -1 (unlimited) or 0 (blocked) "
                                     f"to {limit} {what}, or null")
    return value


def access_fields(data: Mapping[str, Any]) -> JSON:
    """The access fields present in ``data``, checked; null resets a field to unlimited / never / all."""
    out: JSON = {}
    if "rpm" in data:
        out["rpm"] = _count("rpm", data["rpm"], MAX_RPM, "requests per minute")
    if "concurrency" in data:
        out["concurrency"] = _count("concurrency", data["concurrency"], MAX_CONCURRENCY, "requests at once")
    if "expires_at" in data:
        value = data["expires_at"]
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))
                                  or not math.isfinite(value) or not 0 < value < MAX_EXPIRES_AT):
            raise InvalidKeyField("expires_at", "'expires_at' must be a time in unix seconds, or null for never")
        out["expires_at"] = None if value is None else int(value)
    if "models" in data:
        out["models"] = _models(data["models"])
    return out


def _models(value: Any) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or len(value) > MAX_MODELS or not all(
            isinstance(m, str) and m.strip() and len(m) <= 200 for m in value):
        raise InvalidKeyField("models", f"'models' must be a list of at most {MAX_MODELS} model ids "
                                        "(empty: every model)")
    return list(dict.fromkeys(m.strip() for m in value))


def access_of(record: Mapping[str, Any]) -> JSON:
    """The record's access fields, unset ones at their defaults (records from before them have none)."""
    return {name: record.get(name, default) if record.get(name) is not None else default
            for name, default in DEFAULTS.items()}


def expired(record: Mapping[str, Any], now: float | None = None) -> bool:
    at = record.get("expires_at")
    return isinstance(at, int) and at <= (time.time() if now is None else now)


def check_model(record: Mapping[str, Any], model: str) -> None:
    allowed = record.get("models") or []
    if allowed and model not in allowed:
        raise ModelNotAllowed(model, allowed)


class Admission:
    """Requests per minute and concurrency slots of the keys, for one process."""

    def __init__(self, storage: Storage, leases: Leases) -> None:
        self.storage = storage
        self.leases = leases
        self._mine: dict[str, set[int]] = {}  # key id -> the slots this process holds (never asked for)
        self._pruned_minute = 0

    def in_flight(self, key_id: str) -> int:
        """Requests of the key this process serves under a concurrency limit."""
        return len(self._mine.get(key_id, ()))

    async def count_request(self, key_id: str, rpm: int) -> None:
        if rpm < 0:
            return
        now = time.time()
        minute = int(now // 60)
        if await self.storage.incr(f"{RPM_NS}{minute}", key_id, {"requests": 1}, limits={"requests": rpm}) is None:
            wait = max(1, math.ceil((minute + 1) * 60 - now))
            raise KeyLimitExceeded("rpm", f"This API key allows {rpm} requests per minute; try again in {wait} s",
                                   retry_after=wait)
        if minute != self._pruned_minute:
            self._pruned_minute = minute
            for ns in await self.storage.counter_namespaces(RPM_NS):
                if not ns[len(RPM_NS):].isdigit() or int(ns[len(RPM_NS):]) < minute - 1:
                    await self.storage.drop_counters(ns)

    @contextlib.asynccontextmanager
    async def slot(self, key_id: str, concurrency: int) -> AsyncIterator[None]:
        """Hold one of the key's slots for the block (tried from a random one, so workers do
        not all queue on slot 0; those this process holds are skipped unasked)."""
        if concurrency < 0:
            yield
            return
        mine = self._mine.setdefault(key_id, set())
        owner = random_hex(8)
        start = random.randrange(concurrency) if concurrency else 0
        taken: int | None = None
        for step in range(concurrency):
            index = (start + step) % concurrency
            if index in mine:
                continue
            mine.add(index)
            if await self.leases.take(SLOT_LOCK.format(key_id, index), owner):
                taken = index
                break
            mine.discard(index)
        if taken is None:
            if not mine:
                self._mine.pop(key_id, None)
            raise KeyLimitExceeded("concurrency", f"This API key allows {concurrency} concurrent request"
                                                  f"{'' if concurrency == 1 else 's'}; wait for one to finish")
        try:
            yield
        finally:
            mine.discard(taken)
            if not mine:
                self._mine.pop(key_id, None)
            with contextlib.suppress(Exception):  # the lock then expires by itself
                await asyncio.shield(self.leases.drop(SLOT_LOCK.format(key_id, taken)))
