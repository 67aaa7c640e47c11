"""HTTP and WebSocket transport to Grok over curl_cffi.

One long-lived ``AsyncSession`` per proxy setting keeps connections (and TLS sessions)
alive between calls. Every call runs under four limits read from ``grok.*`` when it
starts: connect (enforced by curl), first byte, idle gap between body chunks, and total.
Every failure leaves as one logged :class:`UpstreamError`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import orjson
from curl_cffi.const import CurlECode, CurlOpt, CurlWsFlag
from curl_cffi.curl import CurlError
from curl_cffi.requests import AsyncSession, AsyncWebSocket, Response
from curl_cffi.requests.websockets import WebSocketClosed

from grok2api.config import GrokSettings, Settings
from grok2api.logging import logger
from grok2api.upstream.classify import from_curl, from_status
from grok2api.upstream.errors import Failure, UpstreamError

ACCEPT_ENCODING = "gzip, deflate, br, zstd"
ERROR_BODY_LIMIT = 64 * 1024
_CLOSE_GRACE_SECONDS = 1.0

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Timeouts:
    connect: float
    first_byte: float
    idle: float
    total: float

    @classmethod
    def of(cls, grok: GrokSettings) -> Timeouts:
        return cls(grok.connect_timeout, grok.first_byte_timeout, grok.idle_timeout, grok.timeout)

    def for_curl(self) -> tuple[float, float]:
        """curl enforces the connect limit; its read limit is only a backstop behind ours."""
        return self.connect, max(self.first_byte, self.idle)


_TIMEOUT_TEXT = {
    Failure.TIMEOUT_FIRST_BYTE: "no answer within {:g} s",
    Failure.TIMEOUT_IDLE: "stream silent for {:g} s",
    Failure.TIMEOUT_TOTAL: "not finished within {:g} s",
}


class Clock:
    """The deadlines of one call: first byte until body data arrives, then the idle
    gap between chunks, and the total limit throughout."""

    def __init__(self, timeouts: Timeouts) -> None:
        self._timeouts = timeouts
        now = asyncio.get_running_loop().time()
        self._first_at = now + timeouts.first_byte
        self._total_at = now + timeouts.total
        self._receiving = False

    def data_arrived(self) -> None:
        self._receiving = True

    def _limit(self) -> tuple[float, Failure, float]:
        """The next deadline (loop time), the class it fails with, and its length."""
        if self._receiving:
            now = asyncio.get_running_loop().time()
            limit_at, failure, seconds = now + self._timeouts.idle, Failure.TIMEOUT_IDLE, self._timeouts.idle
        else:
            limit_at, failure, seconds = self._first_at, Failure.TIMEOUT_FIRST_BYTE, self._timeouts.first_byte
        if self._total_at <= limit_at:
            limit_at, failure, seconds = self._total_at, Failure.TIMEOUT_TOTAL, self._timeouts.total
        return limit_at, failure, seconds

    async def wait(self, awaitable: Awaitable[T], what: str) -> T:
        """Await in a task of its own (``wait_for``): for WebSocket frames and set-up steps."""
        limit_at, failure, seconds = self._limit()
        try:
            return await asyncio.wait_for(awaitable, max(0.0, limit_at - asyncio.get_running_loop().time()))
        except TimeoutError:
            raise UpstreamError(failure, f"{what}: {_TIMEOUT_TEXT[failure].format(seconds)}") from None

    async def next_chunk(self, body: AsyncIterator[bytes], what: str) -> bytes | None:
        """The next body chunk, awaited in place: a stream reads dozens per answer, and a
        task per chunk (as ``wait_for`` makes) was the gateway's largest CPU cost."""
        limit_at, failure, seconds = self._limit()
        try:
            async with asyncio.timeout_at(limit_at):
                return await anext(body, None)
        except TimeoutError:
            raise UpstreamError(failure, f"{what}: {_TIMEOUT_TEXT[failure].format(seconds)}") from None


def _abort(raw: Response) -> None:
    """Stop a streamed transfer now (a no-op once it finished); curl drops the connection."""
    if raw.quit_now is not None:
        raw.quit_now.set()
    task = raw.astream_task
    if isinstance(task, asyncio.Future) and not task.done():
        task.cancel()


def _abort_late(pending: asyncio.Future[Response]) -> None:
    """A response whose caller gave up while waiting for it is aborted as it arrives."""
    if not pending.cancelled() and pending.exception() is None:
        _abort(pending.result())


class UpstreamResponse:
    """A 2xx response whose body is read under the call's deadlines."""

    def __init__(self, raw: Response, clock: Clock, what: str) -> None:
        self._raw = raw
        self._clock = clock
        self._what = what

    @property
    def status(self) -> int:
        return self._raw.status_code

    @property
    def headers(self) -> Mapping[str, str | None]:
        return self._raw.headers

    async def chunks(self) -> AsyncIterator[bytes]:
        body: AsyncIterator[bytes] = self._raw.aiter_content()  # type: ignore[no-untyped-call]
        while True:
            try:
                chunk = await self._clock.next_chunk(body, self._what)
            except CurlError as exc:
                raise from_curl(exc, self._what, responded=True) from exc
            if chunk is None:
                return
            self._clock.data_arrived()
            yield chunk

    async def read(self, limit: int) -> bytes:
        data = bytearray()
        async for chunk in self.chunks():
            data += chunk
            if len(data) > limit:
                raise UpstreamError(Failure.PROTOCOL, f"{self._what}: answer larger than {limit} bytes")
        return bytes(data)

    async def read_excerpt(self, limit: int) -> bytes:
        """As much of an error body as arrives (up to ``limit``); failures end it quietly."""
        data = bytearray()
        try:
            async for chunk in self.chunks():
                data += chunk
                if len(data) >= limit:
                    break
        except UpstreamError:
            pass
        return bytes(data[:limit])

    def abort(self) -> None:
        _abort(self._raw)


class UpstreamSocket:
    """An open WebSocket whose frames are read under the call's deadlines."""

    def __init__(self, ws: AsyncWebSocket, clock: Clock, what: str) -> None:
        self._ws = ws
        self._clock = clock
        self._what = what

    async def send_json(self, message: Any) -> None:
        try:
            await self._ws.send_str(orjson.dumps(message).decode())
        except CurlError as exc:
            raise from_curl(exc, self._what, responded=True) from exc

    async def frames(self) -> AsyncIterator[dict[str, Any]]:
        """JSON object frames until the server closes; anything else is skipped."""
        while True:
            try:
                data, flags = await self._clock.wait(self._ws.recv(), self._what)
            except WebSocketClosed:
                return
            except CurlError as exc:
                raise from_curl(exc, self._what, responded=True) from exc
            if flags & CurlWsFlag.CLOSE:
                return
            self._clock.data_arrived()
            try:
                frame = orjson.loads(data)
            except orjson.JSONDecodeError:
                frame = None
            if isinstance(frame, dict):
                yield frame


def _log(error: UpstreamError) -> None:
    logger.warning("upstream {} ({}): {}{}", error.failure.value, error.status or "-", error.message,
                   f" | body: {error.body_excerpt}" if error.body_excerpt else "")


def _handshake_answer(lines: list[bytes]) -> tuple[int, dict[str, str]]:
    """Status and headers of a refused WebSocket upgrade, from the raw header lines."""
    status, headers = 0, dict[str, str]()
    for raw in lines:
        line = raw.decode("latin-1").strip()
        if line.startswith("HTTP/"):
            parts = line.split()
            status, headers = (int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0), {}
        elif ":" in line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    return status, headers


class Transport:
    """Sessions, limits and failure classification shared by every Grok operation."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._sessions: dict[tuple[str, int], AsyncSession[Response]] = {}

    def _session(self, proxy: str) -> AsyncSession[Response]:
        key = (proxy, self._settings.grok.max_connections)
        session = self._sessions.get(key)
        if session is None:
            session = AsyncSession(proxy=proxy or None, max_clients=key[1], discard_cookies=True,
                                   trust_env=False, allow_redirects=False, default_headers=False)
            self._sessions[key] = session
        return session

    async def close(self) -> None:
        sessions, self._sessions = list(self._sessions.values()), {}
        for session in sessions:
            await session.close()

    @asynccontextmanager
    async def request(
        self, method: str, url: str, *, headers: dict[str, str], proxy: str, what: str,
        body: Any = None, params: dict[str, str] | None = None,
    ) -> AsyncIterator[UpstreamResponse]:
        """Send one request; a non-2xx answer raises before the caller sees the body.
        Leaving the block aborts whatever the body still had to send."""
        grok = self._settings.grok
        timeouts = Timeouts.of(grok)
        clock = Clock(timeouts)
        response: UpstreamResponse | None = None
        # curl keeps a transfer going when the task awaiting its headers is cancelled, so
        # that wait is shielded and a late response is aborted the moment it shows up
        pending = asyncio.ensure_future(self._session(proxy).request(
            method, url, headers=headers, params=params,  # type: ignore[arg-type]
            content=orjson.dumps(body) if body is not None else None, stream=True,
            timeout=timeouts.for_curl(), impersonate=grok.impersonate,  # type: ignore[arg-type]
            accept_encoding=ACCEPT_ENCODING))
        try:
            try:
                raw = await clock.wait(asyncio.shield(pending), what)
            except CurlError as exc:
                raise from_curl(exc, what, responded=False) from exc
            except BaseException:
                pending.add_done_callback(_abort_late)
                raise
            response = UpstreamResponse(raw, clock, what)
            if not 200 <= raw.status_code < 300:
                excerpt = await response.read_excerpt(ERROR_BODY_LIMIT)
                raise from_status(raw.status_code, raw.headers, excerpt, what)
            yield response
        except UpstreamError as error:
            _log(error)
            raise
        finally:
            if response is not None:
                response.abort()

    @asynccontextmanager
    async def websocket(self, url: str, *, headers: dict[str, str], proxy: str,
                        what: str) -> AsyncIterator[UpstreamSocket]:
        """Open a WebSocket; a refused upgrade is classified by its status and headers
        (curl does not expose the body of a refused upgrade)."""
        grok = self._settings.grok
        timeouts = Timeouts.of(grok)
        clock = Clock(timeouts)
        answer: list[bytes] = []

        def keep_header(line: bytes) -> int:
            answer.append(line)
            return len(line)

        async def connect() -> AsyncWebSocket:
            return await self._session(proxy).ws_connect(
                url, headers=headers, timeout=(timeouts.connect, timeouts.first_byte),
                impersonate=grok.impersonate, curl_options={CurlOpt.HEADERFUNCTION: keep_header})

        try:
            try:
                ws = await clock.wait(connect(), what)
            except CurlError as exc:
                status, answer_headers = _handshake_answer(answer)
                if exc.code == CurlECode.HTTP_RETURNED_ERROR and status:
                    raise from_status(status, answer_headers, None, what) from exc
                raise from_curl(exc, what, responded=False) from exc
            try:
                yield UpstreamSocket(ws, clock, what)
            except BaseException:
                ws.terminate()
                raise
            await ws.close(timeout=_CLOSE_GRACE_SECONDS)
        except UpstreamError as error:
            _log(error)
            raise
