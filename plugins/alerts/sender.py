"""Sending alerts: queued, so whoever raises one never waits; one POST per webhook.

A webhook whose host is loopback or private is never fetched unless it says
``allow_private``: its session resolves through the kernel's outbound guard, literal
addresses are refused before connecting, and redirects are not followed. Slack, Discord
and Telegram URLs carry their secret in the path, so logs name only the URL's origin.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

import aiohttp
from yarl import URL

from grok2api.api import FetchRefused, GuardedResolver, check_fetch_url, logger
from grok2api_plugins.alerts.alert import Alert, body
from grok2api_plugins.alerts.gate import Gate
from grok2api_plugins.alerts.settings import AlertsSettings, Webhook

#: alerts waiting to be sent; more are dropped (and logged) rather than held
QUEUE_SIZE = 100


def shown(url: str) -> str:
    """A webhook URL as logs may show it: scheme, host and port (the path holds tokens)."""
    return f"{URL(url).origin()}/…"


class Sender:
    def __init__(self, config: Callable[[], AlertsSettings], gate: Gate) -> None:
        self.config = config
        self.gate = gate
        self.queue: asyncio.Queue[Alert] = asyncio.Queue(QUEUE_SIZE)
        self._sessions: dict[bool, aiohttp.ClientSession] = {}
        self._task: asyncio.Task[None] | None = None

    def submit(self, alert: Alert) -> None:
        """Queue ``alert``; never blocks."""
        if not self.config().webhooks:
            return
        try:
            self.queue.put_nowait(alert)
        except asyncio.QueueFull:
            logger.warning("alerts: {} alerts are waiting; {} dropped: {}", QUEUE_SIZE, alert.kind, alert.message)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="alerts-sender")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for session in self._sessions.values():
            await session.close()
        self._sessions.clear()

    async def _run(self) -> None:
        while True:
            alert = await self.queue.get()
            try:
                await self.send(alert)
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("alerts: sending {} failed", alert.kind)
            finally:
                self.queue.task_done()

    async def send(self, alert: Alert) -> None:
        """Through the gate, then to every webhook at once."""
        config = self.config()
        if not config.webhooks:
            return
        refused = await self.gate.refusal(alert, config)
        if refused is not None:
            logger.info("alerts: {} not sent ({}): {}", alert.kind, refused, alert.message)
            return
        logger.warning("alerts: {} ({}): {}", alert.kind, alert.severity, alert.message)
        await asyncio.gather(*(self.post(webhook, alert, config.timeout_sec) for webhook in config.webhooks))

    def _session(self, allow_private: bool) -> aiohttp.ClientSession:
        session = self._sessions.get(allow_private)
        if session is None:
            connector = aiohttp.TCPConnector() if allow_private else aiohttp.TCPConnector(resolver=GuardedResolver())
            session = self._sessions[allow_private] = aiohttp.ClientSession(connector=connector, trust_env=False)
        return session

    async def post(self, webhook: Webhook, alert: Alert, timeout: float) -> str | None:
        """Send ``alert`` to one webhook, past the gate; None when it took it, else why not (logged)."""
        failure = await self._attempt(webhook, alert, timeout)
        if failure is not None:
            logger.warning("alerts: {} webhook {} {}", webhook.format, shown(webhook.url), failure)
        return failure

    async def _attempt(self, webhook: Webhook, alert: Alert, timeout: float) -> str | None:
        try:
            url = URL(webhook.url)
            if not webhook.allow_private:
                check_fetch_url(url)
            async with self._session(webhook.allow_private).post(
                    url, json=body(alert, webhook), allow_redirects=False,
                    timeout=aiohttp.ClientTimeout(total=timeout)) as resp:
                return f"answered HTTP {resp.status}" if resp.status >= 300 else None
        except FetchRefused as exc:
            return f"not fetched: {exc} (set allow_private for a receiver on this network)"
        except TimeoutError:
            return f"did not answer within {timeout:g} s"
        except aiohttp.ClientError as exc:
            return f"failed: {type(exc).__name__}"
