"""Waiting on the change feed: wake on a notification, otherwise poll.

Every engine reads its feed the same way; they differ only in what wakes a waiter
(its own writes always do; Redis pub/sub and PostgreSQL LISTEN also carry other
workers' writes) and in how often they poll when nothing does.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable

from grok2api.storage import Change

#: seconds a notified waiter waits before reading: writes come in bursts (a round of the
#: pool's writer, an import), and one read then takes them all instead of one read each
SETTLE = 0.02


class FeedWaiter:
    """Wake-ups for ``wait_for_changes``; :meth:`notify` never loses a wake-up."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def notify(self) -> None:
        """Something was written: wake every current waiter."""
        event, self._event = self._event, asyncio.Event()
        event.set()

    async def wait(
        self, read: Callable[[], Awaitable[list[Change]]], timeout: float, poll: float
    ) -> list[Change]:
        """Call ``read`` until it returns changes, a notification or ``poll`` seconds apart, up to ``timeout``."""
        deadline = time.monotonic() + max(0.0, timeout)
        while True:
            event = self._event  # taken before reading, so a write in between still wakes us
            changes = await read()
            remaining = deadline - time.monotonic()
            if changes or remaining <= 0:
                return changes
            # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancellation,
            # which would keep the kernel's feed watcher (and so shutdown) from ending
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(min(remaining, poll)):
                    await event.wait()
            if event.is_set():  # notified: the rest of a burst is read with it
                await asyncio.sleep(SETTLE)
