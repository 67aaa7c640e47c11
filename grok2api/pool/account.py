"""One Grok account of the pool: its stored record, the normal form of its token, its quota buckets.

The stored shape is the original's ``TokenInfo`` (so records written by the legacy
import load as they are) plus what cooldowns and selection need. Fields this code does
not know are kept and written back untouched.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, fields
from enum import StrEnum
from typing import Any, overload

from grok2api.logs.logger import logger
from grok2api.plugin.registries import ModelSpec
from grok2api.storage import MAX_KEY_LEN
from grok2api.upstream.headers import normalize_sso

POOL_BASIC = "ssoBasic"
POOL_SUPER = "ssoSuper"
#: pools whose accounts serve requests; other pool names load and list but are never picked
SELECTABLE_POOLS = (POOL_BASIC, POOL_SUPER)

#: the counter namespace of the shared per-account counts, keyed by token
NS_COUNTS = "account_counts"
#: the counter field of successes; failures count as ``fail:<class>``
USE_COUNT = "use_count"
FAIL_PREFIX = "fail:"

#: quota value meaning "not known" (never synced, or a cooldown ended since)
UNKNOWN = -1


def now_ms() -> int:
    return int(time.time() * 1000)


class Status(StrEnum):
    ACTIVE = "active"
    COOLING = "cooling"
    EXPIRED = "expired"
    DISABLED = "disabled"

    @classmethod
    def parse(cls, value: object) -> Status:
        """Any stored or submitted status: ``invalid`` (the original's admin view of expired)
        means expired, anything unknown means active, so no account is ever dropped."""
        if type(value) is str and (status := _STATUS_NAMES.get(value)) is not None:
            return status  # as stored: the usual case, no need to clean it up
        text = str(value or "").strip().lower()
        status = _STATUS_NAMES.get(text)
        if status is None:
            if text:
                logger.warning("pool: unknown account status {!r} read as active", text)
            return cls.ACTIVE
        return status


_STATUS_NAMES = {**{s.value: s for s in Status}, "invalid": Status.EXPIRED}


class Bucket(StrEnum):
    """The two rate-limit budgets the pool tracks per account."""

    NORMAL = "normal"
    HEAVY = "heavy"

    @classmethod
    def of(cls, model: ModelSpec) -> Bucket:
        return cls.HEAVY if model.heavy else cls.NORMAL


#: the statuses of an account that serves again without an operator; with the buckets by pool
#: below, constants: on Python 3.11 looking an enum member up costs ten times a global name
_USABLE = frozenset({Status.ACTIVE, Status.COOLING})
_BUCKETS_OF_SUPER, _BUCKETS_OF_OTHERS = (Bucket.NORMAL, Bucket.HEAVY), (Bucket.NORMAL,)

#: the stored field of each bucket's remaining units
QUOTA_FIELDS = {Bucket.NORMAL: "quota", Bucket.HEAVY: "heavy_quota"}
#: the stored field of each bucket's claim epoch (``claims.py``)
EPOCH_FIELDS = {Bucket.NORMAL: "quota_epoch", Bucket.HEAVY: "heavy_quota_epoch"}


#: what a bare SSO value never holds (one regex search: a per-character loop cost seconds per 100,000)
_NOT_IN_TOKEN = re.compile(r"[\s;]")


def normalize_token(raw: str) -> str:
    """The bare SSO value of ``abc``, ``sso=abc`` or a whole cookie string; ``""`` when there is none
    (blank, a cookie string without ``sso``, spaces inside, longer than a storage key)."""
    text = normalize_sso(raw.strip().strip("\"'"))
    if not text or len(text) > MAX_KEY_LEN or _NOT_IN_TOKEN.search(text):
        return ""
    return text


@overload
def _int(value: Any, default: int) -> int: ...
@overload
def _int(value: Any, default: None) -> int | None: ...
def _int(value: Any, default: int | None) -> int | None:
    """``value`` as an integer (as it is when it is one), else ``default``."""
    if type(value) is int:
        return value
    if value is None or value == "" or isinstance(value, bool):
        return default
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def _quota(value: Any) -> int:
    """The original's rule: null, empty or negative means unknown."""
    number = _int(value, UNKNOWN)
    return UNKNOWN if number < 0 else number


@dataclass(slots=True, eq=False)
class Account:
    """An account as the pool holds it. The fields after ``extra`` live only in this process.

    ``use_count`` and ``failures`` are totals shared by every worker: the record holds a
    base (what the original product counted), the counter namespace :data:`NS_COUNTS`
    holds every worker's increments since. In memory each is base + ``counted`` (the
    stored counters as last read, plus this process's ``unsaved`` increments).
    """

    token: str
    pool: str = POOL_BASIC
    status: Status = Status.ACTIVE
    quota: int = UNKNOWN  # normal bucket: remaining units, or UNKNOWN
    heavy_quota: int = UNKNOWN
    heavy_reset_at: int = 0  # ms; when a heavy bucket known to be empty refills
    cooldown_until: int = 0  # ms; not selected before this (rate limit or soft cooldown)
    created_at: int = 0
    last_used_at: int | None = None
    use_count: int = 0
    fail_count: int = 0  # consecutive invalid-credential failures
    rate_limit_streak: int = 0  # consecutive rate limits: the exponent of the cooldown
    failures: dict[str, int] | None = None  # all failures so far, by class
    last_fail_at: int | None = None
    last_fail_reason: str | None = None
    last_sync_at: int | None = None
    tags: tuple[str, ...] = ()
    note: str = ""
    last_asset_clear_at: int | None = None
    quota_epoch: list[int] | None = None  # [epoch, quota] of the normal bucket's claims (claims.py)
    heavy_quota_epoch: list[int] | None = None
    extra: dict[str, Any] | None = None  # stored fields this code does not know
    # runtime only ------------------------------------------------------------
    inflight: int = 0
    stamp: int = 0  # changes on every re-index; older selection entries are stale
    indexed: tuple[str, bool] | None = None  # (pool, unusable) as last counted by the selector
    next_check: int | None = None  # when the refresher last planned to sync it
    counted: dict[str, int] | None = None  # counters above the record's base: stored + unsaved
    unsaved: dict[str, int] | None = None  # increments of this process not yet stored

    @classmethod
    def from_record(cls, key: str, record: Mapping[str, Any]) -> Account:
        """An account holding the stored values of ``record`` in their in-memory types; missing
        or unusable values are the defaults. One constructor call, its arguments in the order
        of the fields (keywords cost a tenth of a start with 100,000 accounts)."""
        if len(record) == 1 and "token" in record:  # a bare token (an import's line) is the defaults
            return cls(token=key)
        get = record.get
        tags = get("tags")
        return cls(
            key,
            str(get("pool") or POOL_BASIC),
            Status.parse(get("status")),
            _quota(get("quota")),
            _quota(get("heavy_quota")),
            _int(get("heavy_reset_at"), 0),
            _int(get("cooldown_until"), 0),
            _int(get("created_at"), 0),
            _int(get("last_used_at"), None),
            _int(get("use_count"), 0),
            _int(get("fail_count"), 0),
            _int(get("rate_limit_streak"), 0),
            _failures(get("failures")),
            _int(get("last_fail_at"), None),
            _str_or_none(get("last_fail_reason")),
            _int(get("last_sync_at"), None),
            tuple(map(str, tags)) if isinstance(tags, list | tuple) else (),
            str(get("note") or ""),
            _int(get("last_asset_clear_at"), None),
            _epoch(get("quota_epoch")),
            _epoch(get("heavy_quota_epoch")),
            _extra(record),
        )

    def assign(self, record: Mapping[str, Any], keep: frozenset[str] | set[str] = frozenset()) -> None:
        """Take the stored values of ``record``, except the fields named in ``keep``."""
        stored = self.from_record(self.token, record)
        for name in STORED_FIELDS:
            if name not in keep:
                setattr(self, name, getattr(stored, name))
        self._shift(self.counted, 1)
        self.extra = stored.extra

    def to_record(self, names: set[str] | frozenset[str] | None = None) -> dict[str, Any]:
        """The stored form of every field, or of ``names`` only (for a ``patch``)."""
        record: dict[str, Any] = {} if names is not None else {**(self.extra or {}), "token": self.token}
        for name in STORED_FIELDS if names is None else names:
            value = getattr(self, name)
            if name == "status":
                value = value.value
            elif name == "tags":
                value = list(value)
            elif name in ("failures", "quota_epoch", "heavy_quota_epoch") and value is not None:
                value = type(value)(value)
            record[name] = value
        return record

    # shared counters ---------------------------------------------------------
    def count(self, field: str) -> None:
        """One more of a shared counter (``use_count`` or ``fail:<class>``), stored by the writer later."""
        for counts in ("counted", "unsaved"):
            current = getattr(self, counts) or {}
            current[field] = current.get(field, 0) + 1
            setattr(self, counts, current)
        self._shift({field: 1}, 1)

    def take_unsaved(self) -> dict[str, int]:
        """The increments to store now; :meth:`restore_unsaved` gives them back if that fails."""
        unsaved, self.unsaved = self.unsaved or {}, None
        return unsaved

    def restore_unsaved(self, unsaved: dict[str, int]) -> None:
        merged = dict(self.unsaved or {})
        for field, n in unsaved.items():
            merged[field] = merged.get(field, 0) + n
        self.unsaved = merged or None

    def set_stored_counts(self, stored: dict[str, int]) -> None:
        """The counters storage holds now (every worker's increments, ours included)."""
        if not (stored or self.counted or self.unsaved):
            return  # nothing counted, nothing to count: most accounts of a load
        self._shift(self.counted, -1)
        counted = {k: v for k, v in stored.items() if v}
        for field, n in (self.unsaved or {}).items():
            counted[field] = counted.get(field, 0) + n
        self.counted = counted or None
        self._shift(self.counted, 1)

    def _shift(self, counts: dict[str, int] | None, sign: int) -> None:
        """Add (or take away) counter values to the totals ``use_count`` and ``failures``."""
        for field, n in (counts or {}).items():
            if field == USE_COUNT:
                self.use_count += sign * n
            elif field.startswith(FAIL_PREFIX):
                failures = dict(self.failures or {})
                name = field[len(FAIL_PREFIX):]
                failures[name] = failures.get(name, 0) + sign * n
                self.failures = {k: v for k, v in failures.items() if v} or None

    # quota -------------------------------------------------------------------
    def remaining(self, bucket: Bucket) -> int:
        return self.heavy_quota if bucket is Bucket.HEAVY else self.quota

    def set_remaining(self, bucket: Bucket, value: int) -> str:
        """Set a bucket's remaining units; returns the name of the field that holds them."""
        name = QUOTA_FIELDS[bucket]
        setattr(self, name, value)
        return name

    def epoch(self, bucket: Bucket) -> list[int] | None:
        """``[epoch, quota]`` of the claims on this bucket's quota, None when not known from a sync."""
        return self.heavy_quota_epoch if bucket is Bucket.HEAVY else self.quota_epoch

    def set_epoch(self, bucket: Bucket, value: list[int] | None) -> str:
        name = EPOCH_FIELDS[bucket]
        setattr(self, name, value)
        return name

    def take(self, bucket: Bucket, cost: int) -> int:
        """Charge a request's cost to a known quota (never below 0); returns what was charged."""
        remaining = self.remaining(bucket)
        if remaining <= 0:
            return 0
        charged = min(cost, remaining)
        self.set_remaining(bucket, remaining - charged)
        return charged

    @property
    def buckets(self) -> tuple[Bucket, ...]:
        """The buckets this account can serve: only super accounts have a heavy budget."""
        return _BUCKETS_OF_SUPER if self.pool == POOL_SUPER else _BUCKETS_OF_OTHERS

    @property
    def usable(self) -> bool:
        """Neither expired nor disabled: it will serve again without an operator."""
        return self.status in _USABLE


def _extra(record: Mapping[str, Any]) -> dict[str, Any] | None:
    """The fields of ``record`` this code does not know, in their stored order (usually none)."""
    if _KNOWN_KEYS.issuperset(record):
        return None
    return {k: v for k, v in record.items() if k not in _KNOWN_KEYS}


def _str_or_none(value: Any) -> str | None:
    return None if value is None else str(value)


def _epoch(value: Any) -> list[int] | None:
    if isinstance(value, list) and len(value) == 2 and type(value[0]) is int and type(value[1]) is int:
        return list(value)
    return None


def _failures(value: Any) -> dict[str, int] | None:
    if not isinstance(value, dict):
        return None
    counts = {str(k): n for k, v in value.items() if (n := _int(v, 0))}
    return counts or None


_RUNTIME_FIELDS = {"token", "extra", "inflight", "stamp", "indexed", "next_check", "counted", "unsaved"}
#: the record keys this code reads and writes (``token`` is the storage key)
STORED_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(Account) if f.name not in _RUNTIME_FIELDS)
_KNOWN_KEYS = frozenset({*STORED_FIELDS, "token"})
