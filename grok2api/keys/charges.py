"""Charging API keys by reservation: reserve at the start, settle when the answer ended, refund on failure.

A reservation is one atomic ``incr`` on the key's day (``key_usage:<day>``): it adds the
usage to ``<bucket>_used`` (so it counts against the limit at once, and concurrent
requests cannot overshoot) and subtracts it from ``<bucket>_held:<origin>``, the
reservations this process holds open. Settling adds the hold back (and corrects
``_used`` to what was delivered); refunding also takes the usage off ``_used``.

A key with no limit on the reserved buckets cannot be refused, so nothing is written
until the answer ended: its reservation is *deferred*, and settling charges it in one
write (a crash then charges nothing).

A process that crashed leaves its holds behind. Its heartbeat lock
(:mod:`grok2api.keys.leases`) expires, and the next worker a key's limit refuses gives
them back before it refuses. Holds are counted downwards so that giving one back can be
an ``incr`` limited to 0: it is refused when the hold is no longer there (its holder
settled it, or another worker gave it back first), so nothing is given back twice. A
live process that finds its own hold taken away charges what it delivered again.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any

from grok2api.keys.leases import Leases
from grok2api.logs.logger import logger
from grok2api.storage import JSON, Storage

if TYPE_CHECKING:
    from grok2api.keys.service import Identity

USAGE_NS = "key_usage:"
HELD = "_held:"


def held_field(bucket: str, origin: str) -> str:
    return f"{bucket}{HELD}{origin}"


def holds_by_origin(counters: Mapping[str, int]) -> dict[str, dict[str, int]]:
    """The open holds in a key's counters: origin -> bucket -> units (positive)."""
    out: dict[str, dict[str, int]] = {}
    for field, value in counters.items():
        bucket, sep, origin = field.partition(HELD)
        if sep and value < 0:
            out.setdefault(origin, {})[bucket] = -value
    return out


class Charges:
    """The reservations of one process: their storage writes, and the retries of those that failed."""

    def __init__(self, storage: Storage, leases: Leases) -> None:
        self.storage = storage
        self.leases = leases
        self._retry: list[Reservation] = []
        leases.after_round = self.retry

    async def sweep(self, day: str, key_id: str, counters: Mapping[str, int]) -> bool:
        """Give back the holds of crashed processes found in ``counters``; True if any was."""
        swept = False
        for origin, holds in holds_by_origin(counters).items():
            if not await self.leases.dead(origin):
                continue
            deltas = {f"{b}_used": -n for b, n in holds.items()} | {held_field(b, origin): n for b, n in holds.items()}
            limits = {held_field(b, origin): 0 for b in holds}
            if await self.storage.incr(USAGE_NS + day, key_id, deltas, limits=limits) is not None:
                logger.info("API keys: gave back {} reserved by a stopped worker", holds)
                swept = True
        return swept

    async def retry(self) -> None:
        """Write the settlements that failed (a storage hiccup): until then their holds count."""
        pending, self._retry = self._retry, []
        for reservation in pending:
            await reservation.write()

    def later(self, reservation: Reservation) -> None:
        self._retry.append(reservation)


class Reservation:
    """Usage taken from a key's daily limits for one piece of work.

    ``await reservation.settle()`` charges what was reserved, ``settle({"image": 2})``
    what was delivered, ``refund()`` nothing; only the first call counts. Used as
    ``async with``, whatever was not settled when the block ends is refunded. A settled
    reservation's :meth:`ticket` lets durable work (a video job) refund it later, from
    any worker, with :meth:`KeyService.settled`.
    """

    def __init__(self, charges: Charges | None, identity: Identity, usage: Mapping[str, int], day: str, *,
                 held: bool, deferred: bool = False) -> None:
        self._charges = charges
        self.identity = identity
        self.usage = dict(usage)
        self.day = day
        self._held = held  # the hold is in storage and not yet settled
        self._deferred = deferred  # nothing is in storage yet: settling charges it
        self._final: dict[str, int] | None = None
        self._written = False

    @classmethod
    def charged(cls, charges: Charges, identity: Identity, usage: Mapping[str, int], day: str) -> Reservation:
        """A reservation settled earlier (from its :meth:`ticket`), to refund it."""
        reservation = cls(charges, identity, usage, day, held=False)
        reservation._final, reservation._written = dict(usage), True
        return reservation

    @property
    def settled(self) -> bool:
        return self._final is not None

    async def settle(self, usage: Mapping[str, int] | None = None) -> None:
        """Charge ``usage`` (default: what was reserved) and close the reservation. Never
        raises: a write that fails is retried by this process's lease keeper."""
        if self._final is not None:
            return
        self._final = self.usage if usage is None else {b: max(0, int(usage.get(b, 0))) for b in self.usage}
        await asyncio.shield(self.write())

    async def refund(self) -> None:
        """Charge nothing; after a settle, take back what it charged (once)."""
        if self._final is None:
            await self.settle({})
        elif not self._held and not self._deferred and self._written and any(self._final.values()):
            charged, self._final = self._final, {b: 0 for b in self._final}
            await asyncio.shield(self._give_back(charged))

    def ticket(self) -> JSON:
        """What a later :meth:`refund` needs: the day and what was (or will be) charged."""
        return {"day": self.day, "usage": dict(self._final if self._final is not None else self.usage)}

    async def write(self) -> None:
        """Store the settlement (also called by the retries)."""
        charges, key = self._charges, self.identity.key_id
        if charges is None or key is None or self._written or self._final is None:
            self._written = True
            return
        final, ns = self._final, USAGE_NS + self.day
        try:
            if self._held:
                origin = charges.leases.origin
                deltas = {**{f"{b}_used": final.get(b, 0) - n for b, n in self.usage.items()},
                          **{held_field(b, origin): n for b, n in self.usage.items()}}
                limits = {held_field(b, origin): 0 for b in self.usage}
                if await charges.storage.incr(ns, key, {f: d for f, d in deltas.items() if d}, limits=limits) is None:
                    # another worker took this process for dead and gave the reservation back
                    again = {f"{b}_used": n for b, n in final.items() if n}
                    if again:
                        await charges.storage.incr(ns, key, again)
                self._held = False
            elif self._deferred:
                charged = {f"{b}_used": n for b, n in final.items() if n}
                if charged:
                    await charges.storage.incr(ns, key, charged)
                self._deferred = False
            self._written = True
        except Exception as exc:
            logger.warning("API keys: settling a reservation failed ({}); retrying", exc)
            charges.later(self)

    async def _give_back(self, charged: Mapping[str, int]) -> None:
        charges, key = self._charges, self.identity.key_id
        if charges is None or key is None:
            return
        with contextlib.suppress(Exception):  # a refund that fails leaves the charge: never an error
            await charges.storage.incr(USAGE_NS + self.day, key, {f"{b}_used": -n for b, n in charged.items() if n})

    async def __aenter__(self) -> Reservation:
        return self

    async def __aexit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        if self._final is None:
            await self.refund()

    def __repr__(self) -> str:
        return f"Reservation({self.usage}, day={self.day}, settled={self._final})"


def ticket_of(data: Any, default_usage: Mapping[str, int], today: str) -> tuple[str, dict[str, int]]:
    """A stored ticket's day and usage; what a record from before tickets charged otherwise."""
    if isinstance(data, dict) and isinstance(data.get("day"), str) and isinstance(data.get("usage"), dict):
        usage = {str(b): int(n) for b, n in data["usage"].items() if isinstance(n, int) and not isinstance(n, bool)}
        return data["day"], usage
    return today, dict(default_usage)
