"""The request log and hourly request stats, kept in storage so every worker adds to one total.

Requests never wait on storage: :meth:`RequestLog.record` appends to a buffer, and a
background task writes it every ``performance.request_log_flush_ms`` (and once more at
shutdown): each entry to the bounded log stream ``requests``, and the counts as atomic
increments of the counter namespace ``stats:<YYYY-MM-DDTHH>`` (UTC), key ``_all``, the
model id and ``key:<key id>`` (``key:global``, ``key:loopback`` for the global key and
open loopback). Each key counts ``requests``, one outcome (``ok``, ``rate_limited``,
``client_error``, ``server_error``), ``duration_ms`` and the tokens in and out
(``tokens_in``, ``tokens_out``); ``_all`` also counts the time to first byte of answered
model requests in buckets named by their bounds in ms (``ttfb_0_100``, ``ttfb_100_250``,
… :data:`TTFB_BOUNDS`, ``ttfb_60000_inf``): sums every worker adds to, so percentiles
are read from them.
Flushes start an interval apart, counted from the start of the previous one, so a crash
loses at most what finished in the last interval and during one write.
"""

from __future__ import annotations

import asyncio
import bisect
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
#: the tokens a model's answer counted in its ``usage`` (prompt and completion), set by its plugin
PROMPT_TOKENS = web.RequestKey("prompt_tokens", int)
COMPLETION_TOKENS = web.RequestKey("completion_tokens", int)
STREAM = "requests"
STATS_NS = "stats:"
ALL = "_all"
KEY_PREFIX = "key:"
#: upper bounds (ms) of the time-to-first-byte buckets
TTFB_BOUNDS = (100, 250, 500, 750, 1000, 1500, 2000, 3000, 5000, 7500, 10_000, 20_000, 30_000, 60_000)
#: flushes tried at shutdown before what is left is given up (and logged)
STOP_ATTEMPTS = 3
#: entries held while storage is down; past this the oldest are dropped
MAX_PENDING = 100_000


def stats_namespace(at: float) -> str:
    return _hour_namespace(int(at // 3600))


@functools.lru_cache(maxsize=4)
def _hour_namespace(hour: int) -> str:
    return STATS_NS + datetime.fromtimestamp(hour * 3600, UTC).strftime("%Y-%m-%dT%H")


def ttfb_field(ms: float) -> str:
    """``ttfb_<low>_<high>``: the bucket (low, high] in ms holding ``ms``; its name says its bounds."""
    at = bisect.bisect_left(TTFB_BOUNDS, ms)
    low = TTFB_BOUNDS[at - 1] if at else 0
    return f"ttfb_{low}_{TTFB_BOUNDS[at]}" if at < len(TTFB_BOUNDS) else f"ttfb_{low}_inf"


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
               key_name: str | None, key_id: str | None = None, first_byte_ms: float | None = None,
               prompt_tokens: int | None = None, completion_tokens: int | None = None) -> None:
        """Note one finished request (the path only: query strings may carry secrets; a key
        only by its id and name)."""
        at = time.time()
        entry: JSON = {"at": at, "method": method, "path": path, "status": status,
                       "duration_ms": round(duration_ms, 1), "model": model, "key": key_name}
        if key_id is not None:
            entry["key_id"] = key_id
        if first_byte_ms is not None:
            entry["first_byte_ms"] = round(first_byte_ms, 1)
        deltas = {"requests": 1, _outcome(status): 1, "duration_ms": int(duration_ms)}
        for field, tokens in (("tokens_in", prompt_tokens), ("tokens_out", completion_tokens)):
            if tokens:
                entry[field] = deltas[field] = tokens
        self._entries.append(entry)
        ns = stats_namespace(at)
        keys = {ALL, model or ALL}
        if key_id or key_name:
            keys.add(KEY_PREFIX + (key_id or key_name or ""))
        for key in keys:
            fields = self._counts[(ns, key)]
            for field, value in deltas.items():
                fields[field] += value
        if model is not None and status < 400 and first_byte_ms is not None:
            self._counts[(ns, ALL)][ttfb_field(first_byte_ms)] += 1

    def request_finished(self, app: web.Application, record: RequestRecord) -> None:
        if needs_api_key(record.path):
            self.record(method=record.method, path=record.path, status=record.status,
                        duration_ms=record.duration_ms, model=record.model, key_name=record.key_name,
                        key_id=record.key_id, first_byte_ms=record.first_byte_ms,
                        prompt_tokens=record.prompt_tokens, completion_tokens=record.completion_tokens)

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
