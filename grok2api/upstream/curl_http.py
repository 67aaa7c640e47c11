"""HTTP requests on curl_cffi's public low-level API: pooled ``Curl`` handles on one ``AsyncCurl``.

``AsyncCurl`` is one libcurl multi handle driven by the running loop; its connection cache
keeps connections and TLS sessions alive between requests. curl_cffi's ``AsyncSession``
(which the WebSockets use) does not carry the HTTP requests: a streamed response of it
cannot be stopped before its end (``Response.aclose`` waits for the rest of the body), it
queues a body without bound however far behind its reader is, and a request cancelled
before its headers leaves its transfer running. Here:

- a transfer is stopped at once by taking its handle off the multi handle
  (``AsyncCurl.remove_handle``), which drops its connection;
- a reader that falls ``BUFFER_LIMIT`` bytes behind pauses its transfer (curl stops reading
  the socket) until it catches up;
- the status is known at the first body byte, or at the end of a transfer without a body;
- a handle keeps its options for the next request of the same shape, which sets only its
  URL, headers, body and callbacks: curl_cffi's ``Curl.setopt`` costs some 25,000
  instructions a call, and a request from scratch takes about twenty.
"""

from __future__ import annotations

import asyncio
import functools
from collections import deque
from dataclasses import dataclass
from io import BytesIO
from typing import Any, TypeVar, cast

from curl_cffi import AsyncCurl, Curl, CurlError, CurlHttpVersion, CurlInfo, CurlOpt

T = TypeVar("T")
#: what a handle is set up for: method, body or not, proxy, https, target, connect timeout, encodings
Shape = tuple[str, bool, str, bool, str, float, str]
#: body bytes held for a reader that is behind; past this the transfer pauses
BUFFER_LIMIT = 1024 * 1024
# libcurl's values (curl.h) for a write callback that cannot take the bytes yet, and for resuming
_WRITEFUNC_PAUSE = 0x10000001
_PAUSE_CONT = 0


@dataclass(frozen=True, slots=True)
class HttpRequest:
    method: str
    url: str
    headers: dict[str, str]
    body: bytes | None
    proxy: str
    impersonate: str
    connect_timeout: float
    accept_encoding: str

    @property
    def has_body(self) -> bool:
        return self.body is not None or self.method == "POST"

    @property
    def shape(self) -> Shape:
        """The options a handle keeps between requests: the next request of the same shape
        sets only its URL, headers and body."""
        return (self.method, self.has_body, self.proxy, self.url.startswith("https:"), self.impersonate,
                self.connect_timeout, self.accept_encoding)


def parse_head(raw: bytes) -> tuple[int, dict[str, str]]:
    """Status and headers (by lower-case name) of the last response head in the header
    lines curl received: a proxy's answer to CONNECT and interim 1xx answers come first."""
    status, headers = 0, dict[str, str]()
    for line in raw.decode("latin-1").splitlines():
        if line.startswith("HTTP/"):
            parts = line.split(None, 2)
            status, headers = (int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0), {}
        else:
            name, sep, value = line.partition(":")
            if sep:
                headers[name.strip().lower()] = value.strip()
    return status, headers


def _expire(waiter: asyncio.Future[Any]) -> None:
    if not waiter.done():
        waiter.set_exception(TimeoutError())


async def _until(waiter: asyncio.Future[T], deadline: float | None) -> T:
    """``waiter``'s result, or TimeoutError at ``deadline`` (loop time; None: no limit).
    A timer on a future of our own: lighter than ``asyncio.timeout``, and a body is
    waited for a few times per answer."""
    if deadline is None:
        return await waiter
    timer = asyncio.get_running_loop().call_at(deadline, _expire, waiter)
    try:
        return await waiter
    finally:
        timer.cancel()


def _set_shape(curl: Curl, request: HttpRequest) -> None:
    """The options requests of ``request``'s shape share, on a fresh (reset) handle."""
    if curl.impersonate(request.impersonate, default_headers=False) != 0:
        raise CurlError(f"curl_cffi cannot impersonate {request.impersonate!r} (grok.impersonate must name "
                        "one of curl_cffi's BrowserType targets, such as chrome136)")
    https = request.url.startswith("https:")
    if not https:
        # the browser profile asks for HTTP/2, which over plain HTTP means offering an
        # ``Upgrade: h2c`` on every request; a browser speaks HTTP/1.1 there
        curl.setopt(CurlOpt.HTTP_VERSION, CurlHttpVersion.V1_1)
    curl.setopt(CurlOpt.NOSIGNAL, 1)  # several threads: libcurl must not touch signal handlers
    if request.has_body:
        curl.setopt(CurlOpt.POST, 1)
    if request.method != ("POST" if request.has_body else "GET"):
        curl.setopt(CurlOpt.CUSTOMREQUEST, request.method.encode())
    # an empty PROXY and NOPROXY keep curl from reading proxies from the environment
    curl.setopt(CurlOpt.PROXY, request.proxy.encode())
    curl.setopt(CurlOpt.NOPROXY, b"")
    if request.proxy and https and not request.proxy.startswith("socks"):
        curl.setopt(CurlOpt.HTTPPROXYTUNNEL, 1)
    curl.setopt(CurlOpt.CONNECTTIMEOUT_MS, max(1, int(request.connect_timeout * 1000)))
    curl.setopt(CurlOpt.ACCEPT_ENCODING, request.accept_encoding.encode())


class Handle:
    """A ``Curl`` handle that keeps its options for the next request of the same shape."""

    def __init__(self) -> None:
        self.curl = Curl()
        self.shape: Shape | None = None

    def prepare(self, request: HttpRequest) -> None:
        shape = request.shape
        if shape != self.shape:
            self.shape = None
            self.curl.reset()
            _set_shape(self.curl, request)
            self.shape = shape
        curl = self.curl
        curl.setopt(CurlOpt.URL, request.url.encode())
        # "Expect:" keeps curl from asking a large upload to wait for a 100 Continue: browsers never do
        curl.setopt(CurlOpt.HTTPHEADER, [f"{name}: {value}".encode() for name, value in request.headers.items()]
                    + [b"Expect:"])
        if request.has_body:
            body = request.body or b""
            curl.setopt(CurlOpt.POSTFIELDSIZE, len(body))
            curl.setopt(CurlOpt.POSTFIELDS, body)


class Transfer:
    """One request in flight: its status and headers once they arrived, then body chunks."""

    def __init__(self, http: CurlHttp, handle: Handle, request: HttpRequest) -> None:
        self._http = http
        self._handle = handle
        self._curl = curl = handle.curl
        loop = asyncio.get_running_loop()
        self._head_lines = BytesIO()
        self._head: asyncio.Future[None] = loop.create_future()
        self._body: deque[bytes] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self._headless = True  # until the status and headers are known
        self._paused = False
        self._ended = False
        self._error: CurlError | None = None
        self.buffered = 0  # body bytes received and not yet read
        self.status = 0
        handle.prepare(request)
        curl.setopt(CurlOpt.HEADERDATA, self._head_lines)
        curl.setopt(CurlOpt.WRITEFUNCTION, self._on_body)
        self._done = http.acurl.add_handle(curl)
        self._done.add_done_callback(self._finished)

    # curl's side (inside ``AsyncCurl``'s socket handling, on the loop) ----------------
    def _on_body(self, data: bytes) -> int:
        if self.buffered >= BUFFER_LIMIT:
            self._paused = True
            return _WRITEFUNC_PAUSE  # curl keeps the bytes and hands them over again on resuming
        if self._headless:
            self._head_arrived()
        self._body.append(data)
        self.buffered += len(data)
        if self._waiter is not None:
            self._wake()
        return len(data)

    def _head_arrived(self) -> None:
        self.status = cast(int, self._curl.getinfo(CurlInfo.RESPONSE_CODE))
        self._headless = False
        if not self._head.done():  # not when its waiter was cancelled
            self._head.set_result(None)

    def _wake(self) -> None:
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _finished(self, done: asyncio.Future[None]) -> None:
        """The transfer ended (completed, failed or aborted): the handle goes back."""
        if done.cancelled():
            error: CurlError | None = CurlError("transfer aborted")
        else:
            failure = done.exception()
            error = failure if isinstance(failure, CurlError) or failure is None else CurlError(str(failure))
        self._ended, self._error = True, error
        if self._headless:
            if error is None and self._head_lines.tell():  # a complete answer without a body
                self._head_arrived()
            elif not self._head.done():
                self._head.set_exception(error or CurlError("transfer ended without a response"))
                self._head.exception()  # retrieved: nobody may wait for it any more
        self._wake()
        if self._paused:  # a handle that ended paused is set up afresh before its next request
            self._handle.shape = None
        self._http.release(self._handle)

    # the reader's side --------------------------------------------------------------
    @functools.cached_property
    def headers(self) -> dict[str, str]:
        """The response's headers by lower-case name, parsed when first asked for (most
        answers are read without them)."""
        return parse_head(self._head_lines.getvalue())[1] if not self._headless else {}

    async def head(self, deadline: float | None = None) -> None:
        """Wait until the status and headers arrived; raises the transfer's CurlError, or
        TimeoutError at ``deadline``."""
        await _until(self._head, deadline)

    @property
    def ready(self) -> bool:
        """Whether :meth:`chunk` would return without waiting."""
        return bool(self._body) or self._ended

    async def chunk(self, deadline: float | None = None) -> bytes | None:
        """Body bytes received so far (waiting for some, until TimeoutError at
        ``deadline``), or None at the end."""
        while not self._body:
            if self._ended:
                if self._error is not None:
                    raise self._error
                return None
            self._waiter = asyncio.get_running_loop().create_future()
            await _until(self._waiter, deadline)
        data = self._body[0] if len(self._body) == 1 else b"".join(self._body)
        self._body.clear()
        self.buffered = 0
        if self._paused and not self._ended:
            self._paused = False
            self._curl.pause(_PAUSE_CONT)  # may hand over held bytes at once
        return data

    def abort(self) -> None:
        """Stop the transfer now (a no-op once it ended); curl drops its connection."""
        if not self._done.done():
            self._http.acurl.remove_handle(self._curl)


class CurlHttp:
    """Reusable ``Curl`` handles on one ``AsyncCurl``, at most ``limit`` transfers at once."""

    def __init__(self) -> None:
        self._acurl: AsyncCurl | None = None
        self._idle: list[Handle] = []
        self._busy: dict[Handle, asyncio.Semaphore] = {}  # handle in use → the slots it took one of
        self._slots = asyncio.Semaphore(0)
        self._limit = 0

    @property
    def acurl(self) -> AsyncCurl:
        """The multi handle, made on first use on the running loop."""
        if self._acurl is None:
            self._acurl = AsyncCurl()
        return self._acurl

    async def close(self) -> None:
        if self._acurl is not None:
            for handle in list(self._busy):
                self._acurl.remove_handle(handle.curl)
            await self._acurl.close()
            self._acurl = None
        for handle in self._idle:
            handle.curl.close()
        self._idle.clear()

    def release(self, handle: Handle) -> None:
        handle.curl.clean_handles_and_buffers()  # frees the header list, drops the callbacks
        self._idle.append(handle)
        self._busy.pop(handle).release()

    async def send(self, request: HttpRequest, limit: int, deadline: float | None = None) -> Transfer:
        """Start ``request`` and wait for its status and headers (TimeoutError at
        ``deadline``, loop time); on any failure or cancellation before that, the
        transfer is aborted."""
        if limit != self._limit:  # requests still holding slots of the old limit give them back there
            self._slots, self._limit = asyncio.Semaphore(limit), limit
        slots = self._slots
        async with asyncio.timeout_at(deadline):
            await slots.acquire()
        handle = self._idle.pop() if self._idle else Handle()
        self._busy[handle] = slots
        try:
            transfer = Transfer(self, handle, request)
        except BaseException:
            handle.shape = None
            self.release(handle)
            raise
        try:
            await transfer.head(deadline)
        except BaseException:
            transfer.abort()
            raise
        return transfer
