"""Where alerts come from: the pool's accounts, the requests' outcomes, the jobs' records.

Each worker looks every ``check_interval_sec``: at the pool it holds (kept in step with
every other worker's through storage), at its own requests of the last
``error_window_sec`` (counted by a request observer in one-second buckets), and at the
change feed for job records that turned failed. Several workers notice the same thing;
the gate lets one alert through.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections import Counter, deque
from collections.abc import Callable
from typing import Any

from aiohttp import web

from grok2api.api import (
    POOL,
    SETTINGS,
    STORAGE,
    Account,
    Failure,
    RequestRecord,
    http_status,
    logger,
    mask_secret,
    mask_text,
)
from grok2api_plugins.alerts.alert import Alert
from grok2api_plugins.alerts.sender import Sender
from grok2api_plugins.alerts.settings import AlertsSettings

#: error codes a model request ends with when Grok, or the pool in front of it, failed it
#: (a prompt refused by moderation is the client's, not an upstream fault)
UPSTREAM_CODES = frozenset({http_status(f)[1] for f in Failure if f is not Failure.MODERATED}
                           | {"no_available_token"})
#: accounts an expiry alert names (the count is always complete)
NAMED = 20


def config_of(app: web.Application) -> AlertsSettings:
    """The section as it is now (an admin may change it while the gateway runs)."""
    config: AlertsSettings = app[SETTINGS].alerts  # type: ignore[attr-defined]
    return config


class ErrorWindow:
    """The request observer: model requests and upstream failures per second of the window."""

    name = "alerts"

    def __init__(self, window: Callable[[], float]) -> None:
        self.window = window
        self.buckets: deque[list[Any]] = deque()  # [second, requests, failed, Counter of codes]

    def request_finished(self, app: web.Application, record: RequestRecord) -> None:
        if record.model is None:
            return
        second = int(time.monotonic())
        if not self.buckets or self.buckets[-1][0] != second:
            self._prune(second)
            self.buckets.append([second, 0, 0, Counter()])
        bucket = self.buckets[-1]
        bucket[1] += 1
        if record.error_code in UPSTREAM_CODES:
            bucket[2] += 1
            bucket[3][record.error_code] += 1

    def _prune(self, now: int) -> None:
        oldest = now - self.window()
        while self.buckets and self.buckets[0][0] < oldest:
            self.buckets.popleft()

    def totals(self) -> tuple[int, int, Counter[str]]:
        """Requests, failures and failures by code within the window."""
        self._prune(int(time.monotonic()))
        codes: Counter[str] = Counter()
        for bucket in self.buckets:
            codes.update(bucket[3])
        return sum(b[1] for b in self.buckets), sum(b[2] for b in self.buckets), codes


def _digest(parts: list[str]) -> str:
    return hashlib.sha256("\n".join(sorted(parts)).encode()).hexdigest()[:24]


class Monitor:
    def __init__(self, app: web.Application, errors: ErrorWindow, sender: Sender) -> None:
        self.app = app
        self.errors = errors
        self.sender = sender
        self.statuses: dict[str, str] | None = None  # None until the first look: expiries before it are old
        self.seq: int | None = None
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="alerts-monitor")

    async def stop(self) -> None:
        while self._task is not None and not self._task.done():
            self._task.cancel()
            await asyncio.wait({self._task}, timeout=0.5)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(config_of(self.app).check_interval_sec)
            try:
                await self.check()
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("alerts: a check failed; trying again")

    async def baseline(self) -> None:
        """Take the state at start-up, raising nothing: expiries and failed jobs from before
        are not news, and a one-shot command (which starts the app too) sends no alert."""
        self.statuses = {a.token: a.status.value for a in self.app[POOL].accounts()}
        config = config_of(self.app)
        if config.job_failed and config.webhooks:
            self.seq = await self.app[STORAGE].last_change()

    async def check(self) -> None:
        config = config_of(self.app)
        accounts = self.app[POOL].accounts()
        self._usable_share(accounts, config)
        self._expired(accounts, config)
        self._error_rate(config)
        await self._jobs(config)

    def _usable_share(self, accounts: list[Account], config: AlertsSettings) -> None:
        counted = [a for a in accounts if a.status.value != "disabled"]
        if not counted or config.usable_share_below <= 0:
            return
        usable = sum(1 for a in counted if a.usable)
        share = usable / len(counted)
        if share <= config.usable_share_below:
            self.sender.submit(Alert(
                "accounts_low", "pool", "critical" if usable == 0 else "warning",
                f"Only {usable} of {len(counted)} accounts can serve ({share:.0%}; alert at "
                f"{config.usable_share_below:.0%} or less)",
                {"usable": usable, "accounts": len(counted), "share": round(share, 4),
                 "threshold": config.usable_share_below}))

    def _expired(self, accounts: list[Account], config: AlertsSettings) -> None:
        previous, self.statuses = self.statuses, {a.token: a.status.value for a in accounts}
        if previous is None or not config.account_expired:
            return
        expired = [a for a in accounts if a.status.value == "expired" and previous.get(a.token, "expired") != "expired"]
        if not expired:
            return
        named = {mask_secret(a.token): mask_text(a.last_fail_reason or "")[:200] for a in expired[:NAMED]}
        shown = ", ".join(list(named)[:5]) + (f" and {len(expired) - 5} more" if len(expired) > 5 else "")
        self.sender.submit(Alert(
            "account_expired", _digest([a.token for a in expired]), "warning",
            f"{len(expired)} account(s) expired: {shown}", {"count": len(expired), "accounts": named}))

    def _error_rate(self, config: AlertsSettings) -> None:
        if config.error_rate_above >= 1:
            return
        requests, failed, codes = self.errors.totals()
        if requests < config.error_min_requests or failed / requests <= config.error_rate_above:
            return
        rate = failed / requests
        self.sender.submit(Alert(
            "upstream_errors", "upstream", "critical",
            f"{failed} of {requests} model requests failed upstream in the last {config.error_window_sec:g} s "
            f"({rate:.0%}; alert above {config.error_rate_above:.0%})",
            {"requests": requests, "failed": failed, "rate": round(rate, 4), "threshold": config.error_rate_above,
             "window_sec": config.error_window_sec, "codes": dict(codes)}))

    async def _jobs(self, config: AlertsSettings) -> None:
        storage = self.app[STORAGE]
        if not config.job_failed or not config.webhooks:
            self.seq = None  # nothing to send: no feed reads, and no backlog when alerts come on
            return
        if self.seq is None:
            self.seq = await storage.last_change()
            return
        namespaces = set(config.job_namespaces)
        while True:
            changes = await storage.changes_since(self.seq)
            for change in changes:
                self.seq = change.seq
                if change.op == "put" and change.ns in namespaces:
                    record = await storage.get(change.ns, change.key)
                    if record is not None and "failed" in (record.get("state"), record.get("status")):
                        self.sender.submit(_job_alert(change.ns, change.key, record))
            if len(changes) < 1000:
                return


def _job_alert(ns: str, key: str, record: dict[str, Any]) -> Alert:
    error = record.get("error")
    reason = record.get("reason") or (error.get("message") if isinstance(error, dict) else error) or "no reason given"
    kind = str(record.get("kind") or record.get("object") or "job")
    reason = mask_text(str(reason))[:300]
    return Alert("job_failed", f"{ns}:{key}", "warning", f"{kind} job {key} failed: {reason}",
                 {"job": key, "namespace": ns, "kind": kind, "reason": reason})
