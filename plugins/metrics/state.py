"""What a scrape reads live: the pool and the media cache.

Every worker holds the same pool (kept in step through storage), and every worker of a
machine shares its media cache, so the worker that answers the scrape reads them for
all. The pool is one per deployment: across machines these are the same numbers, not
parts of a sum (take ``max``, not ``sum``, over instances).
"""

from __future__ import annotations

import contextlib
import os
import time
from collections import Counter
from collections.abc import Iterator
from typing import Literal

from aiohttp import web
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from grok2api.api import MEDIA, POOL, POOL_BASIC, POOL_SUPER, Account, __version__

TIERS = {POOL_BASIC: "basic", POOL_SUPER: "super"}
#: what the media cache serves (``/v1/files/<kind>/<name>``)
MEDIA_KINDS: tuple[Literal["image", "video"], ...] = ("image", "video")


def tier(account: Account) -> str:
    return TIERS.get(account.pool, account.pool)


class StateCollector(Collector):
    def __init__(self, app: web.Application) -> None:
        self.app = app

    def collect(self) -> Iterator[Metric]:
        info = GaugeMetricFamily("grok2api_build_info", "The gateway's version", labels=["version"])
        info.add_metric([__version__], 1)
        yield info
        accounts = self.app[POOL].accounts()
        yield from _accounts(accounts)
        yield from _media(self.app)


def _accounts(accounts: list[Account]) -> Iterator[Metric]:
    now_ms = time.time() * 1000
    states = GaugeMetricFamily("grok2api_accounts", "Accounts in the pool by state and tier", labels=["state", "tier"])
    for (state, group), count in sorted(Counter((a.status.value, tier(a)) for a in accounts).items()):
        states.add_metric([state, group], count)
    yield states
    cooling = GaugeMetricFamily("grok2api_accounts_cooling_down",
                                "Accounts waiting out a cooldown (rate limit or upstream trouble)", labels=["tier"])
    for group, count in sorted(Counter(tier(a) for a in accounts if a.cooldown_until > now_ms).items()):
        cooling.add_metric([group], count)
    yield cooling
    remaining = GaugeMetricFamily("grok2api_quota_remaining",
                                  "Queries left on usable accounts whose quota is known", labels=["bucket", "tier"])
    unknown = GaugeMetricFamily("grok2api_quota_unknown_accounts",
                                "Usable accounts whose quota is not known yet", labels=["bucket", "tier"])
    known: Counter[tuple[str, str]] = Counter()
    blind: Counter[tuple[str, str]] = Counter()
    for account in accounts:
        if not account.usable:
            continue
        for bucket, value in (("normal", account.quota), ("heavy", account.heavy_quota)):
            if bucket == "heavy" and account.pool != POOL_SUPER:
                continue
            if value < 0:
                blind[(bucket, tier(account))] += 1
            else:
                known[(bucket, tier(account))] += value
    for labels, value in sorted(known.items()):
        remaining.add_metric(list(labels), value)
    for labels, value in sorted(blind.items()):
        unknown.add_metric(list(labels), value)
    yield remaining
    yield unknown
    failures = CounterMetricFamily("grok2api_account_failures", "Upstream failures of the pool's accounts by class "
                                   "(totals every worker and machine shares)", labels=["failure"])
    totals: Counter[str] = Counter()
    for account in accounts:
        totals.update(account.failures or {})
    for failure, value in sorted(totals.items()):
        failures.add_metric([failure], value)
    yield failures


def _media(app: web.Application) -> Iterator[Metric]:
    size = GaugeMetricFamily("grok2api_media_cache_bytes", "Bytes in this machine's media cache", labels=["kind"])
    files = GaugeMetricFamily("grok2api_media_cache_files", "Files in this machine's media cache", labels=["kind"])
    media = app[MEDIA]
    for kind in MEDIA_KINDS:
        total = count = 0
        with contextlib.suppress(FileNotFoundError), os.scandir(media.directory(kind)) as entries:
            for entry in entries:
                if entry.is_file() and not entry.name.startswith("."):
                    total += entry.stat().st_size
                    count += 1
        size.add_metric([kind], total)
        files.add_metric([kind], count)
    yield size
    yield files
