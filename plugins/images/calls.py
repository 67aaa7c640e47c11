"""What both methods share: numbering the pictures, running upstream calls side by side.

A request for ``n`` pictures makes several upstream calls, each producing a few
pictures. :class:`Slots` gives the first ``n`` upstream pictures that show up the
indices 0…n-1 (in order of first appearance, so a stream's indices never change) and
drops the rest: the answer has at most ``n``. :func:`run_calls` runs the calls at once
(at most ``limit`` at a time), passes on what they yield as it arrives, and decides
what a failure means: pictures from the calls that worked are still delivered, and
only when none arrived is an error raised.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Hashable

from grok2api.api import Failure, ImageEvent, ImagePartial, ImageReady, NoAccountAvailable, UpstreamError, logger

Call = Callable[[], AsyncIterator[ImageEvent]]
_DONE = object()


class Slots:
    """Upstream picture → answer index, for the first ``n`` pictures seen."""

    def __init__(self, n: int) -> None:
        self.n = n
        self._index: dict[Hashable, int] = {}
        self.moderated = 0

    def index(self, key: Hashable) -> int | None:
        found = self._index.get(key)
        if found is None and len(self._index) < self.n:
            found = self._index[key] = len(self._index)
        return found


async def run_calls(calls: list[Call], limit: int, slots: Slots) -> AsyncIterator[ImageEvent]:
    """Every event of every call as it comes; each finished picture once.

    A call that fails is logged and the others go on; one the pool refuses because our
other calls hold every account waits for one of them to end. When no picture arrived at all,
    the failure is raised: moderation first (every picture was refused), else the first
    call's error; calls that ended without a picture and without an error raise
    ``Failure.PROTOCOL``. Closing the iterator cancels the calls still running, which
    returns their accounts to the pool.
    """
    queue: asyncio.Queue[object] = asyncio.Queue()
    gate = asyncio.Semaphore(limit)
    errors: list[BaseException] = []
    ended = asyncio.Condition()
    state = {"busy": 0, "ended": 0}

    async def attempt(call: Call) -> None:
        """The call, again each time another one ends while the pool has no account free
        (the others hold them: one account serves only a few requests at once)."""
        while True:
            seen = state["ended"]
            state["busy"] += 1
            try:
                async for event in call():
                    await queue.put(event)
                return
            except NoAccountAvailable:
                if state["busy"] == 1:
                    raise  # nothing of ours holds an account: there is none
            finally:
                state["busy"] -= 1
            async with ended:
                await ended.wait_for(lambda seen=seen: state["ended"] > seen)  # type: ignore[misc]

    async def run(call: Call) -> None:
        try:
            async with gate:
                await attempt(call)
        except (UpstreamError, NoAccountAvailable) as exc:
            errors.append(exc)
        except Exception as exc:  # our own bug in one call must not hang the others
            logger.exception("image call failed")
            errors.append(exc)
        finally:
            queue.put_nowait(_DONE)
            state["ended"] += 1
            async with ended:
                ended.notify_all()

    tasks = [asyncio.create_task(run(call)) for call in calls]
    delivered, running = 0, len(tasks)
    try:
        while running:
            item = await queue.get()
            if item is _DONE:
                running -= 1
                continue
            assert isinstance(item, (ImagePartial, ImageReady))
            if isinstance(item, ImageReady):
                delivered += 1
            yield item
    finally:
        for task in tasks:
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(*tasks, return_exceptions=True)
    if delivered:
        for error in errors:
            logger.warning("images: {} of {} picture(s) delivered; one call failed: {}", delivered, slots.n, error)
        return
    moderated = next((e for e in errors if isinstance(e, UpstreamError) and e.failure is Failure.MODERATED), None)
    if moderated is not None:
        raise moderated
    if slots.moderated:
        raise UpstreamError(Failure.MODERATED, "Grok refused every picture (content moderation)")
    if errors:
        raise errors[0]
    raise UpstreamError(Failure.PROTOCOL, "Grok finished without a picture")
