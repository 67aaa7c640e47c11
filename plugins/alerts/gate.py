"""Deduplication and rate limits, shared by every worker and machine through storage locks.

A lock that is never released expires after its time to live, which makes it a "sent
recently" mark any worker can test and set in one call. Deduplication takes one lock per
kind and subject for ``dedupe_sec``; the rate limit of a kind is ``rate_limit`` slots,
each a lock held for ``rate_window_sec`` by the alert that took it, so no window of that
length ever holds more sends. Owners are unique per alert, so a worker never "extends"
a mark it set itself.
"""

from __future__ import annotations

import hashlib

from grok2api.api import Storage, random_hex
from grok2api_plugins.alerts.alert import Alert
from grok2api_plugins.alerts.settings import AlertsSettings


class Gate:
    def __init__(self, storage: Storage) -> None:
        self.storage = storage

    async def refusal(self, alert: Alert, config: AlertsSettings) -> str | None:
        """None when ``alert`` may be sent now (and is marked sent); else why not."""
        owner = random_hex(8)
        if config.dedupe_sec > 0:
            subject = hashlib.sha256(alert.subject.encode()).hexdigest()[:24]
            if not await self.storage.acquire_lock(f"alerts:dedupe:{alert.kind}:{subject}", owner,
                                                   config.dedupe_sec):
                return "duplicate"
        for slot in range(config.rate_limit):
            if await self.storage.acquire_lock(f"alerts:rate:{alert.kind}:{slot}", owner, config.rate_window_sec):
                return None
        return f"rate limit ({config.rate_limit} per {config.rate_window_sec:g} s)"
