"""The plugin's start-up context: the sender and the monitor of this worker."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from grok2api.api import REGISTRIES, STORAGE
from grok2api_plugins.alerts.gate import Gate
from grok2api_plugins.alerts.monitor import ErrorWindow, Monitor, config_of
from grok2api_plugins.alerts.sender import Sender

SENDER = web.AppKey("alerts_sender", Sender)
MONITOR = web.AppKey("alerts_monitor", Monitor)


async def running(app: web.Application) -> AsyncIterator[None]:
    errors = next(o for o in app[REGISTRIES].observers.observers if isinstance(o, ErrorWindow))
    app[SENDER] = sender = Sender(lambda: config_of(app), Gate(app[STORAGE]))
    app[MONITOR] = monitor = Monitor(app, errors, sender)
    sender.start()
    await monitor.baseline()
    monitor.start()
    try:
        yield
    finally:
        await monitor.stop()
        await sender.stop()
