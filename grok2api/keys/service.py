"""Managed API keys with per-day limits and access limits, shared by every worker through storage.

A key is stored under the SHA-256 of its text, so a leaked database opens nothing; the
full key is returned once, by :meth:`KeyService.create`. Daily usage lives in counter
namespaces ``key_usage:<day>``: the quota check and the increment are one atomic
``incr`` with limits, so workers cannot race past a limit; work is charged by
reservation (:mod:`grok2api.keys.charges`). Requests per minute, concurrency, expiry and
the model allow-list are :mod:`grok2api.keys.limits`. Authentication is served from
memory; the change feed tells this worker when another one changed a key.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import string
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from grok2api.config.settings import Settings
from grok2api.keys.charges import USAGE_NS, Charges, Reservation, held_field, holds_by_origin, ticket_of
from grok2api.keys.leases import LEASE_TTL, Leases
from grok2api.keys.limits import Admission, KeyExpired, access_fields, access_of, check_model, expired
from grok2api.storage import JSON, NS_API_KEYS, Change, Storage

BUCKETS = ("chat", "heavy", "image", "video")
KEEP_DAYS = 31
_HASH = re.compile(r"^[0-9a-f]{64}$")
_ALPHANUMERIC = string.ascii_letters + string.digits


def random_alphanumeric(length: int) -> str:
    """Letters and digits only: a generated key never reads ``sk--…`` and survives any shell or URL."""
    return "".join(secrets.choice(_ALPHANUMERIC) for _ in range(length))


class QuotaExceeded(Exception):
    """A managed key's daily limit would be passed; ``buckets`` names which."""

    def __init__(self, buckets: list[str]) -> None:
        super().__init__(f"Daily quota exceeded: {'/'.join(buckets)}")
        self.buckets = buckets


class KeyNotFound(LookupError):
    """No managed key matches; the HTTP layer answers 404."""


class KeyExists(ValueError):
    """A key with that text is already stored; the HTTP layer answers 400."""


@dataclass(frozen=True, slots=True)
class Identity:
    """Who is calling ``/v1``: a managed key (``key_id`` is its hash), the global key, or open loopback."""

    key_id: str | None
    name: str
    kind: Literal["global", "managed", "open"]


def key_id(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def display_key(key: str) -> str:
    return key if len(key) <= 12 else f"{key[:6]}...{key[-4:]}"


def parse_limit(value: Any) -> int:
    """-1 unlimited, 0 blocked; blank, null or unparsable means unlimited, below -1 is clamped."""
    if value is None or isinstance(value, bool) or (isinstance(value, str) and not value.strip()):
        return -1
    try:
        number = int(float(value))
    except (TypeError, ValueError):
        return -1
    return max(-1, number)


def limits_from(data: Mapping[str, Any]) -> dict[str, int]:
    """``{bucket}_per_day`` or ``{bucket}_limit`` → ``{bucket}_limit``, for the buckets present."""
    out = {}
    for bucket in BUCKETS:
        for name in (f"{bucket}_per_day", f"{bucket}_limit"):
            if name in data:
                out[f"{bucket}_limit"] = parse_limit(data[name])
                break
    return out


def key_record(key: str, *, name: str, created_at: int, is_active: bool, limits: Mapping[str, Any],
               access: Mapping[str, Any] | None = None) -> JSON:
    """The stored form of a key: never its text, only a display form; unset limits unlimited.
    ``access`` (rpm, concurrency, expires_at, models) is checked: :class:`InvalidKeyField`."""
    return {
        "name": name,
        "display_key": display_key(key),
        "created_at": created_at,
        "is_active": is_active,
        **{f"{b}_limit": -1 for b in BUCKETS},
        **limits_from(limits),
        **access_of(access_fields(access or {})),
    }


def usage_day(now: float | None = None) -> str:
    """The current quota day: UTC shifted by ``CACHE_RESET_TZ_OFFSET_MINUTES`` (default UTC+8)."""
    try:
        offset = int(os.environ.get("CACHE_RESET_TZ_OFFSET_MINUTES", "480"))
    except ValueError:
        offset = 480
    offset = min(840, max(-720, offset))
    moment = datetime.fromtimestamp(time.time() if now is None else now, UTC) + timedelta(minutes=offset)
    return moment.date().isoformat()


class KeyService:
    def __init__(self, storage: Storage, settings: Settings, *, lease_ttl: float = LEASE_TTL) -> None:
        self.storage = storage
        self.settings = settings
        self._cache: dict[str, JSON] | None = None
        self._stale: set[str] = set()
        self._pruned_day = ""
        self.leases = Leases(storage, lease_ttl)
        self._charges = Charges(storage, self.leases)
        self._admission = Admission(storage, self.leases)

    async def close(self) -> None:
        """Release this process's slots and heartbeat (its open reservations can then be given back)."""
        await self.leases.close()

    # cache -------------------------------------------------------------------
    async def _records(self) -> dict[str, JSON]:
        if self._cache is None:
            self._cache = await self.storage.list(NS_API_KEYS)
            self._stale.clear()
        for stale in list(self._stale):
            record = await self.storage.get(NS_API_KEYS, stale)
            if record is None:
                self._cache.pop(stale, None)
            else:
                self._cache[stale] = record
            self._stale.discard(stale)
        return self._cache

    def apply_change(self, change: Change) -> None:
        """A key changed somewhere: re-read it before its next use."""
        if change.op == "reset":
            self._cache = None
        elif change.ns == NS_API_KEYS:
            self._stale.add(change.key)

    # auth --------------------------------------------------------------------
    async def authenticate(self, presented: str) -> Identity | None:
        """The caller's identity, None for an unknown or inactive key; :class:`KeyExpired`
        for a key past its ``expires_at``."""
        ident = key_id(presented)
        record = (await self._records()).get(ident)
        if record is None or not record.get("is_active", True):
            return None
        if expired(record):
            raise KeyExpired(record["expires_at"])
        return Identity(key_id=ident, name=str(record.get("name", "")), kind="managed")

    async def _record_of(self, identity: Identity) -> JSON | None:
        if identity.kind != "managed" or identity.key_id is None:
            return None
        return (await self._records()).get(identity.key_id)

    async def allowed_models(self, identity: Identity) -> frozenset[str] | None:
        """The models the key may use; None for every model."""
        record = await self._record_of(identity)
        models = (record or {}).get("models") or []
        return frozenset(models) if models else None

    @asynccontextmanager
    async def admit(self, identity: Identity, model: str | None) -> AsyncIterator[None]:
        """Hold the request inside the key's access limits for the block: the model
        allow-list (:class:`ModelNotAllowed`; ``None`` for a request that names no model,
        such as an upload), then requests per minute and concurrency
        (:class:`KeyLimitExceeded`); the concurrency slot is freed when the block ends."""
        record = await self._record_of(identity)
        if record is None or identity.key_id is None:
            yield
            return
        access = access_of(record)
        if model is not None:
            check_model(access, model)
        await self._admission.count_request(identity.key_id, access["rpm"])
        async with self._admission.slot(identity.key_id, access["concurrency"]):
            yield

    def in_flight(self, identity: Identity) -> int:
        """The key's requests this process serves under a concurrency limit."""
        return self._admission.in_flight(identity.key_id) if identity.key_id is not None else 0

    async def has_active_keys(self) -> bool:
        return any(r.get("is_active", True) for r in (await self._records()).values())

    async def reserve(self, identity: Identity, usage: Mapping[str, int]) -> Reservation:
        """Reserve ``usage`` from the key's daily limits, all or nothing (:class:`QuotaExceeded`
        names the bucket). The reservation counts at once; settle it when the answer ended
        and refund it when it failed (``async with`` refunds what was not settled). A
        crashed worker's reservations are given back after its heartbeat expires."""
        usage = {b: int(n) for b, n in usage.items() if n > 0}
        day = usage_day()
        record = await self._record_of(identity)
        if record is None or identity.key_id is None or not usage:
            return Reservation(None, identity, usage, day, held=False)
        if day != self._pruned_day:
            self._pruned_day = day
            await self._prune(day)
        limits = {f"{b}_used": parse_limit(record.get(f"{b}_limit", -1)) for b in usage}
        if all(limit < 0 for limit in limits.values()):  # nothing to refuse: charged when settled
            return Reservation(self._charges, identity, usage, day, held=False, deferred=True)
        await self.leases.beat()
        deltas = {f"{b}_used": n for b, n in usage.items()} | {held_field(b, self.storage.origin): -n
                                                               for b, n in usage.items()}
        ns = USAGE_NS + day
        for attempt in range(2):
            if await self.storage.incr(ns, identity.key_id, deltas, limits=limits) is not None:
                break
            used = await self.storage.counters(ns, identity.key_id)
            if attempt == 0 and await self._charges.sweep(day, identity.key_id, used):
                continue  # a crashed worker's reservations were given back: try again
            over = [b for b in usage if limits[f"{b}_used"] >= 0
                    and used.get(f"{b}_used", 0) + usage[b] > limits[f"{b}_used"]]
            raise QuotaExceeded(over or list(usage))
        return Reservation(self._charges, identity, usage, day, held=True)

    def settled(self, identity: Identity, ticket: object, usage: Mapping[str, int]) -> Reservation:
        """The settled reservation a :meth:`Reservation.ticket` describes (``usage`` on
        today for a ticket from before tickets), to refund it."""
        day, charged = ticket_of(ticket, usage, usage_day())
        return Reservation.charged(self._charges, identity, charged, day)

    async def _prune(self, today: str) -> None:
        oldest = (datetime.fromisoformat(today) - timedelta(days=KEEP_DAYS)).date().isoformat()
        for ns in await self.storage.counter_namespaces(USAGE_NS):
            if ns[len(USAGE_NS):] < oldest:
                await self.storage.drop_counters(ns)

    # management ----------------------------------------------------------------
    async def _resolve(self, key_or_id: str) -> str:
        records = await self._records()
        if _HASH.match(key_or_id) and key_or_id in records:
            return key_or_id
        ident = key_id(key_or_id)
        if ident not in records:
            raise KeyNotFound(key_or_id)
        return ident

    async def create(self, *, name: str | None = None, key: str | None = None, is_active: bool = True,
                     limits: Mapping[str, Any] | None = None, access: Mapping[str, Any] | None = None,
                     created_at: int | None = None) -> tuple[JSON, str]:
        """Store a new key; returns its row and the full key, which is never shown again.
        ``access`` holds any of rpm, concurrency, expires_at, models (:class:`InvalidKeyField`)."""
        key = (key or "").strip() or "sk-" + random_alphanumeric(32)
        ident = key_id(key)
        if await self.storage.get(NS_API_KEYS, ident) is not None:
            raise KeyExists("Key already exists")
        record = key_record(key, name=(name or "").strip() or "key-" + random_alphanumeric(8),
                            created_at=created_at if created_at is not None else int(time.time()),
                            is_active=bool(is_active), limits=limits or {}, access=access)
        await self.storage.put(NS_API_KEYS, ident, record)
        self._stale.add(ident)
        return await self._row(ident, record), key

    async def update(self, key_or_id: str, *, name: str | None = None, is_active: bool | None = None,
                     limits: Mapping[str, Any] | None = None, access: Mapping[str, Any] | None = None) -> JSON:
        """Change the fields given; an access field given as None returns to its default."""
        fields: JSON = {**limits_from(limits or {}), **access_fields(access or {})}  # None removes expires_at
        ident = await self._resolve(key_or_id)
        if name and name.strip():
            fields["name"] = name.strip()
        if is_active is not None:
            fields["is_active"] = bool(is_active)
        if fields:
            record = await self.storage.patch(NS_API_KEYS, ident, fields)
        else:
            record = await self.storage.get(NS_API_KEYS, ident)
        if record is None:
            raise KeyNotFound(key_or_id)
        self._stale.add(ident)
        return await self._row(ident, record)

    async def delete(self, key_or_id: str) -> None:
        ident = await self._resolve(key_or_id)
        if not await self.storage.delete(NS_API_KEYS, ident):
            raise KeyNotFound(key_or_id)
        self._stale.add(ident)

    async def list_rows(self) -> list[JSON]:
        records = await self._records()
        day = usage_day()
        used = await self.storage.counters_many(USAGE_NS + day)
        swept = [ident for ident, counters in used.items()
                 if holds_by_origin(counters) and await self._charges.sweep(day, ident, counters)]
        for ident in swept:  # crashed workers' reservations are not shown as used
            used[ident] = await self.storage.counters(USAGE_NS + day, ident)
        rows = [admin_row(ident, record, used.get(ident, {}), day) for ident, record in records.items()]
        return sorted(rows, key=lambda r: (r.get("created_at", 0), r["id"]))

    async def _row(self, ident: str, record: JSON) -> JSON:
        day = usage_day()
        return admin_row(ident, record, await self.storage.counters(USAGE_NS + day, ident), day)


def admin_row(ident: str, record: JSON, used: Mapping[str, int], day: str) -> JSON:
    """The admin view of one key: stored fields (access fields at their defaults when
    unset), whether it has expired, today's usage and what remains."""
    usage_today = {f"{b}_used": used.get(f"{b}_used", 0) for b in BUCKETS}
    remaining = {}
    for b in BUCKETS:
        limit = parse_limit(record.get(f"{b}_limit", -1))
        remaining[b] = None if limit < 0 else max(0, limit - usage_today[f"{b}_used"])
    return {"id": ident, **record, **access_of(record), "expired": expired(record), "usage_today": usage_today,
            "remaining_today": remaining, "day": day}
