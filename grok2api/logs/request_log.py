"""The request log and hourly request stats, kept in storage so every worker adds to one total.

Requests never wait on storage: :meth:`RequestLog.record` appends to a buffer, and a
background task writes it every ``performance.request_log_flush_ms`` (and once more at
shutdown): each entry to the bounded log stream ``requests``, and the counts as atomic
increments of the counter namespace ``stats:<YYYY-MM-DDTHH>`` (UTC), key ``_all`` and
the model id. Flushes start an interval apart, counted from the start of the previous
one, so a crash loses at most what finished in the last interval and during one write.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections import defaultdict, deque
from collections.abc import Callable
from datetime import UTC, datetime

from aiohttp import web

from grok2api.logs.logger import logger
from grok2api.plugin.registries import RequestRecord
from grok2api.storage import JSON, Storage
from grok2api.web.auth import needs_api_key

#: the model and capability of a dispatched ``/v1`` request, set by the kernel's dispatcher
MODEL_ID = web.RequestKey("model_id", str)
CAPABILITY = web.RequestKey("capability", str)
STREAM = "requests"
STATS_NS = "stats:"
ALL = "_all"
#: flushes tried at shutdown before what is left is given up (and logged)
STOP_ATTEMPTS = 3
#: entries held while storage is down; past this the oldest are dropped
MAX_PENDING = 100_000


def stats_namespace(at: float) -> str:
    return _hour_namespace(int(at // 3600))


@functools.lru_cache(maxsize=4)
def _hour_namespace(hour: int) -> str:
    return STATS_NS + datetime.fromtimestamp(hour * 3600, UTC).strftime("%Y-%m-%dT%H")


def _outcome(status: int) -> str:
    if status < 400:
        return "ok"
    if status == 429:
        return "rate_limited"
    return "client_error" if status < 500 else "server_error"


class RequestLog:
    """The kernel's own request observer: ``/v1`` calls (but media files) into storage."""

    name = "request_log"

    def __init__(self, storage: Storage, *, interval: Callable[[], float] = lambda: 1.0,
                 max_len: int = 10_000) -> None:
        self.storage = storage
        #: seconds between flushes, read before each wait (a config change applies at once)
        self.interval = interval
        self.max_len = max_len
        self._entries: deque[JSON] = deque()
        self._counts: dict[tuple[str, str], dict[str, int]] = defaultdict(lambda: defaultdict(int))
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        #: requests whose log entry or counts could not be kept (see :meth:`flush`)
        self.dropped = 0

    def record(self, *, method: str, path: str, status: int, duration_ms: float, model: str | None,
               key_name: str | None) -> None:
        """Note one finished request (the path only: query strings may carry secrets)."""
        at = time.time()
        self._entries.append({"at": at, "method": method, "path": path, "status": status,
                              "duration_ms": round(duration_ms, 1), "model": model, "key": key_name})
        ns = stats_namespace(at)
        for key in {ALL, model or ALL}:
            fields = self._counts[(ns, key)]
            fields["requests"] += 1
            fields[_outcome(status)] += 1
            fields["duration_ms"] += int(duration_ms)

    def request_finished(self, app: web.Application, record: RequestRecord) -> None:
        if needs_api_key(record.path):
            self.record(method=record.method, path=record.path, status=record.status,
                        duration_ms=record.duration_ms, model=record.model, key_name=record.key_name)

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="request-log")

    async def stop(self) -> None:
        """Write what is left, trying :data:`STOP_ATTEMPTS` times; never raises, so the
        rest of shutdown (the pool's writes) always runs."""
        if self._task is not None:  # a flush under way ends first: cancelled, it might be stored twice
            self._stopping.set()
            await asyncio.wait({self._task})
        for _ in range(STOP_ATTEMPTS):  # what requests finishing meanwhile recorded, too
            if not (self._counts or self._entries):
                return
            try:
                await self.flush()
            except Exception as exc:
                logger.warning("request log: write at shutdown failed: {}", exc)
        if self._counts or self._entries:
            logger.error("request log: {} entries and {} counters not written at shutdown", len(self._entries),
                         len(self._counts))

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        while not self._stopping.is_set():
            started = loop.time()
            try:
                await self.flush()
            except Exception as exc:  # storage trouble must not end the loop; what is unwritten waits
                logger.warning("request log: write failed, will retry: {}", exc)
            wait = started + self.interval() - loop.time()
            if wait > 0:
                try:
                    await asyncio.wait_for(self._stopping.wait(), wait)
                except TimeoutError:
                    pass

    async def flush(self) -> None:
        """Write what is buffered; each piece leaves the buffer only once it is stored.

        A counter that storage refuses as invalid (``ValueError``: it can never be written)
        is dropped and counted in :attr:`dropped`, so it cannot hold up the others; any
        other failure keeps everything for the next flush. Past :data:`MAX_PENDING`
        buffered entries the oldest are dropped and counted.
        """
        # what is counted now; requests recorded meanwhile start fresh counts for the next
        # flush (taking them too would keep a busy gateway's flush writing for ever)
        for target in list(self._counts):
            fields = self._counts.pop(target)
            try:
                await self.storage.incr(*target, dict(fields))
            except ValueError as exc:
                self.dropped += fields.get("requests", 0)
                logger.error("request log: dropped the counters of {}: {}", target, exc)
            except BaseException:
                for name, value in fields.items():
                    self._counts[target][name] += value
                raise
        while len(self._entries) > MAX_PENDING:
            self._entries.popleft()
            self.dropped += 1
        batch = list(self._entries)  # entries recorded meanwhile are appended after these
        if batch:
            await self.storage.append_logs(STREAM, batch, max_len=self.max_len)
            for _ in batch:
                self._entries.popleft()

    async def stats(self, hours: int = 24) -> dict[str, dict[str, dict[str, int]]]:
        """The last ``hours`` hourly buckets that hold anything, by namespace and key."""
        names = await self.storage.counter_namespaces(STATS_NS)
        return {ns: await self.storage.counters_many(ns) for ns in names[-hours:]}
