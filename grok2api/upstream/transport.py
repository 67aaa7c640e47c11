"""HTTP and WebSocket transport to Grok over curl_cffi.

HTTP requests run on pooled ``Curl`` handles (:mod:`grok2api.upstream.curl_http`) on one
``AsyncCurl``, which keeps connections (and TLS sessions) alive between calls; WebSockets use
a long-lived ``AsyncSession`` per proxy setting, given that same ``AsyncCurl``, so the process
runs one multi handle. Every call runs under four limits read from ``grok.*`` when it
starts: connect (enforced by curl), first byte, idle gap between body chunks, and total.
Every failure leaves as one logged :class:`UpstreamError`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from io import BytesIO
from typing import Any, TypeVar
from urllib.parse import urlencode

import orjson
from curl_cffi import CurlECode, CurlError, CurlOpt, CurlWsFlag
from curl_cffi.requests import AsyncSession, AsyncWebSocket, Response, WebSocketClosed

from grok2api.config.settings import GrokSettings, Settings
from grok2api.logs.logger import logger
from grok2api.upstream.classify import from_curl, from_status
from grok2api.upstream.curl_http import CurlHttp, HttpRequest, Transfer, parse_head
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
        self._loop = asyncio.get_running_loop()
        now = self._loop.time()
        self._first_at = now + timeouts.first_byte
        self._total_at = now + timeouts.total
        self._receiving = False
        self._waiting_on = (Failure.TIMEOUT_TOTAL, timeouts.total)  # what the last deadline given was

    def data_arrived(self) -> None:
        self._receiving = True

    def _limit(self) -> tuple[float, Failure, float]:
        """The next deadline (loop time), the class it fails with, and its length."""
        if self._receiving:
            limit_at, failure, seconds = self._loop.time() + self._timeouts.idle, Failure.TIMEOUT_IDLE, \
                self._timeouts.idle
        else:
            limit_at, failure, seconds = self._first_at, Failure.TIMEOUT_FIRST_BYTE, self._timeouts.first_byte
        if self._total_at <= limit_at:
            limit_at, failure, seconds = self._total_at, Failure.TIMEOUT_TOTAL, self._timeouts.total
        return limit_at, failure, seconds

    def deadline(self) -> float:
        """The next deadline, for a wait that raises TimeoutError at it (see :meth:`expired`)."""
        limit_at, failure, seconds = self._limit()
        self._waiting_on = (failure, seconds)
        return limit_at

    def expired(self, what: str) -> UpstreamError:
        """The failure for a wait that reached the last :meth:`deadline`."""
        failure, seconds = self._waiting_on
        return UpstreamError(failure, f"{what}: {_TIMEOUT_TEXT[failure].format(seconds)}")

    async def wait_in_task(self, awaitable: Awaitable[T], what: str) -> T:
        """Await in a task of its own (``wait_for``), for curl_cffi's WebSocket calls: its
        ``recv`` tells a dropped connection from a closed one only once its reader task
        ran, which the extra task lets happen first."""
        limit_at = self.deadline()
        try:
            return await asyncio.wait_for(awaitable, max(0.0, limit_at - self._loop.time()))
        except TimeoutError:
            raise self.expired(what) from None


class UpstreamResponse:
    """A 2xx response whose body is read under the call's deadlines."""

    def __init__(self, transfer: Transfer, clock: Clock, what: str) -> None:
        self._transfer = transfer
        self._clock = clock
        self._what = what

    @property
    def status(self) -> int:
        return self._transfer.status

    @property
    def headers(self) -> Mapping[str, str]:
        """Response headers by lower-case name."""
        return self._transfer.headers

    async def chunks(self) -> AsyncIterator[bytes]:
        transfer = self._transfer
        while True:
            try:
                chunk = await transfer.chunk(None if transfer.ready else self._clock.deadline())
            except CurlError as exc:
                raise from_curl(exc, self._what, responded=True) from exc
            except TimeoutError:
                raise self._clock.expired(self._what) from None
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
                data, flags = await self._clock.wait_in_task(self._ws.recv(), self._what)
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


class Call:
    """One HTTP request as an async context manager (a class, not ``@asynccontextmanager``:
    every chat request makes one, and a generator-based manager costs several times more)."""

    __slots__ = ("_http", "_request", "_limit", "_timeouts", "_what", "_transfer")

    def __init__(self, http: CurlHttp, request: HttpRequest, limit: int, timeouts: Timeouts, what: str) -> None:
        self._http = http
        self._request = request
        self._limit = limit
        self._timeouts = timeouts
        self._what = what
        self._transfer: Transfer | None = None

    async def __aenter__(self) -> UpstreamResponse:
        clock, what = Clock(self._timeouts), self._what
        try:
            try:
                self._transfer = transfer = await self._http.send(self._request, self._limit, clock.deadline())
            except CurlError as exc:
                raise from_curl(exc, what, responded=False) from exc
            except TimeoutError:
                raise clock.expired(what) from None
            response = UpstreamResponse(transfer, clock, what)
            if not 200 <= transfer.status < 300:
                excerpt = await response.read_excerpt(ERROR_BODY_LIMIT)
                raise from_status(transfer.status, transfer.headers, excerpt, what)
            return response
        except BaseException as error:
            await self.__aexit__(type(error), error, None)
            raise

    async def __aexit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: object) -> None:
        if self._transfer is not None:
            self._transfer.abort()
        if isinstance(error, UpstreamError):
            _log(error)


class Transport:
    """Sessions, limits and failure classification shared by every Grok operation."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._http = CurlHttp()
        self._sessions: dict[tuple[str, int], AsyncSession[Response]] = {}

    def _session(self, proxy: str) -> AsyncSession[Response]:
        key = (proxy, self._settings.grok.max_connections)
        session = self._sessions.get(key)
        if session is None:
            session = AsyncSession(proxy=proxy or None, max_clients=key[1], discard_cookies=True,
                                   trust_env=False, allow_redirects=False, default_headers=False,
                                   async_curl=self._http.acurl)
            self._sessions[key] = session
        return session

    async def close(self) -> None:
        sessions, self._sessions = list(self._sessions.values()), {}
        for session in sessions:
            await session.close()
        await self._http.close()

    def request(
        self, method: str, url: str, *, headers: dict[str, str], proxy: str, what: str,
        body: Any = None, params: dict[str, str] | None = None,
    ) -> Call:
        """Send one request (``async with``); a non-2xx answer raises before the caller sees
        the body. Leaving the block aborts whatever the body still had to send."""
        grok = self._settings.grok
        timeouts = Timeouts.of(grok)
        request = HttpRequest(method, f"{url}?{urlencode(params)}" if params else url, headers,
                              orjson.dumps(body) if body is not None else None, proxy, grok.impersonate,
                              timeouts.connect, ACCEPT_ENCODING)
        return Call(self._http, request, grok.max_connections, timeouts, what)

    @asynccontextmanager
    async def websocket(self, url: str, *, headers: dict[str, str], proxy: str,
                        what: str) -> AsyncIterator[UpstreamSocket]:
        """Open a WebSocket; a refused upgrade is classified by its status and headers
        (curl does not expose the body of a refused upgrade)."""
        grok = self._settings.grok
        timeouts = Timeouts.of(grok)
        clock = Clock(timeouts)
        answer = BytesIO()  # the handshake's header lines

        async def connect() -> AsyncWebSocket:
            return await self._session(proxy).ws_connect(
                url, headers=headers, timeout=(timeouts.connect, timeouts.first_byte),
                impersonate=grok.impersonate, curl_options={CurlOpt.HEADERDATA: answer})

        try:
            try:
                ws = await clock.wait_in_task(connect(), what)
            except CurlError as exc:
                status, answer_headers = parse_head(answer.getvalue())
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
