"""HTTP requests on pooled curl handles, driven by curl_cffi's ``AsyncCurl``.

curl_cffi's ``AsyncSession`` re-derives some two dozen options in Python for every
request, wraps every response in objects and runs a task per streamed body; at the
gateway's request rates that was its largest CPU cost. The Grok client sends a handful
of request shapes, so a handle keeps its options (the browser fingerprint through
``impersonate``, proxy, timeouts) for the next request of the same shape, which sets
only its URL, headers and body. Body bytes go straight to the one reader; when it falls
``BUFFER_LIMIT`` bytes behind, curl stops reading the socket until it catches up.
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass

from curl_cffi.aio import AsyncCurl
from curl_cffi.const import CurlOpt
from curl_cffi.curl import CURL_WRITEFUNC_PAUSE, CURLPAUSE_CONT, Curl, CurlError
from curl_cffi.requests.impersonate import resolve_latest_browser_type

#: body bytes held for a reader that is behind; past this the transfer pauses
BUFFER_LIMIT = 1024 * 1024
#: what a handle is set up for: method, body or not, proxy, https, target, connect timeout, encodings
Shape = tuple[str, bool, str, bool, str, float, str]


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
        """The options a handle keeps between requests: the next request of the same
        shape sets only its URL, headers, body and callbacks."""
        return (self.method, self.has_body, self.proxy, self.url.startswith("https:"), self.impersonate,
                self.connect_timeout, self.accept_encoding)


class Transfer:
    """One request in flight: its status and headers once they arrived, then body chunks.
    Made with its handle configured and added to the multi handle."""

    def __init__(self, http: CurlHttp, curl: Curl, configured: Shape | None, request: HttpRequest) -> None:
        self._http = http
        self._curl = curl
        self._shape = request.shape
        self._loop = asyncio.get_running_loop()
        self._head: asyncio.Future[None] = self._loop.create_future()
        self._lines: list[bytes] = []  # the head being received
        self._final: list[bytes] = []  # the last complete head
        self._body: deque[bytes] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self._paused = False
        self.buffered = 0  # body bytes received and not yet read
        self.status = 0
        self.headers: dict[str, str] = {}
        _configure(curl, request, self, keep=configured == self._shape)
        self._done = http.multi.add_handle(curl)
        self._done.add_done_callback(self._finished)

    # curl's callbacks (run inside ``socket_action``, on the loop) -------------------
    def on_header(self, line: bytes) -> int:
        if line not in (b"\r\n", b"\n"):
            self._lines.append(line)
        elif self._lines and self._lines[0].startswith(b"HTTP/"):
            # keep the last complete head: a proxy's answer to CONNECT and interim 1xx
            # answers come first; the response's own is the one before the body
            self._final, self._lines = self._lines, []
        else:
            self._lines = []
        return len(line)

    def _head_arrived(self) -> None:
        parts = self._final[0].split(None, 2) if self._final else []
        self.status = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
        for raw in self._final[1:]:
            name, sep, value = raw.decode("latin-1").partition(":")
            if sep:
                self.headers[name.strip().lower()] = value.strip()
        self._head.set_result(None)

    def on_body(self, data: bytes) -> int:
        if not self._head.done():
            self._head_arrived()
        if self.buffered >= BUFFER_LIMIT:
            self._paused = True
            return CURL_WRITEFUNC_PAUSE  # curl keeps ``data`` and hands it over again on resuming
        self._body.append(data)
        self.buffered += len(data)
        self._wake()
        return len(data)

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    @staticmethod
    def _error_of(done: asyncio.Future[None]) -> BaseException | None:
        return CurlError("transfer aborted") if done.cancelled() else done.exception()

    def _finished(self, done: asyncio.Future[None]) -> None:
        """The transfer ended (completed, failed or aborted): give the handle back."""
        if not self._head.done():
            error = self._error_of(done)
            if error is None and self._final:  # a complete answer without a body
                self._head_arrived()
            else:
                self._head.set_exception(error or CurlError("transfer ended without a response"))
                self._head.exception()  # retrieved: nobody may wait for it any more
        self._wake()
        # a handle that ended paused is set up afresh before its next request
        self._http.release(self._curl, None if self._paused else self._shape)

    # the reader's side --------------------------------------------------------------
    async def head(self) -> None:
        """Wait until the status and headers arrived (known at the first body byte, or
        at the end of a transfer without a body); raises the transfer's CurlError."""
        await self._head

    @property
    def ready(self) -> bool:
        """Whether :meth:`chunk` would return without waiting."""
        return bool(self._body) or self._done.done()

    async def chunk(self) -> bytes | None:
        """Body bytes received so far (waiting for some), or None at the end."""
        while not self._body:
            if self._done.done():
                error = self._error_of(self._done)
                if error is not None:
                    raise error
                return None
            self._waiter = self._loop.create_future()
            await self._waiter
        data = self._body[0] if len(self._body) == 1 else b"".join(self._body)
        self._body.clear()
        self.buffered = 0
        if self._paused and not self._done.done():
            self._paused = False
            self._curl.pause(CURLPAUSE_CONT)
        return data

    def abort(self) -> None:
        """Stop the transfer now (a no-op once it ended); curl drops its connection."""
        if not self._done.done():
            self._http.multi.remove_handle(self._curl)


class CurlHttp:
    """Reusable easy handles, at most ``limit`` transfers at once, on one multi handle."""

    def __init__(self) -> None:
        self._multi: AsyncCurl | None = None
        self._idle: list[tuple[Curl, Shape | None]] = []  # each with the shape it is set up for
        self._active = 0
        self._queue: deque[asyncio.Future[None]] = deque()

    @property
    def multi(self) -> AsyncCurl:
        if self._multi is None:
            self._multi = AsyncCurl()
        return self._multi

    async def close(self) -> None:
        multi, self._multi = self._multi, None
        if multi is not None:
            await multi.close()
        for curl, _shape in self._idle:
            curl.close()
        self._idle.clear()

    async def _slot(self, limit: int) -> None:
        """Take one of ``limit`` transfer slots; waiters are served in order."""
        if self._active < limit and not self._queue:
            self._active += 1
            return
        waiter = asyncio.get_running_loop().create_future()
        self._queue.append(waiter)
        try:
            await waiter  # woken with the slot of a finished transfer handed over
        except BaseException:
            if waiter.done() and not waiter.cancelled():
                self._free_slot()  # handed over, but cancelled at the same time
            raise

    def _free_slot(self) -> None:
        while self._queue:
            waiter = self._queue.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        self._active -= 1

    def release(self, curl: Curl, shape: Shape | None) -> None:
        curl.clean_handles_and_buffers()
        self._idle.append((curl, shape))
        self._free_slot()

    async def send(self, request: HttpRequest, limit: int) -> Transfer:
        """Start ``request`` and wait for its status and headers; on any failure or
        cancellation before that, the transfer is aborted."""
        await self._slot(limit)
        curl, configured = self._idle.pop() if self._idle else (Curl(), None)
        try:
            transfer = Transfer(self, curl, configured, request)
        except BaseException:
            self.release(curl, None)
            raise
        try:
            await transfer.head()
        except BaseException:
            transfer.abort()
            raise
        return transfer


def _configure(curl: Curl, request: HttpRequest, transfer: Transfer, *, keep: bool) -> None:
    """Set up the handle for ``request``, its head and body going to ``transfer``; with
    ``keep``, the handle's options from a request of the same shape stand."""
    if not keep:
        curl.reset()
        if curl.impersonate(resolve_latest_browser_type(request.impersonate), default_headers=False) != 0:
            raise CurlError(f"curl cannot impersonate {request.impersonate!r}")
        if request.method != ("POST" if request.has_body else "GET"):
            curl.setopt(CurlOpt.CUSTOMREQUEST, request.method.encode())
        # an empty PROXY and NOPROXY keep curl from reading proxies from the environment
        curl.setopt(CurlOpt.PROXY, request.proxy.encode())
        curl.setopt(CurlOpt.NOPROXY, b"")
        if request.proxy and request.url.startswith("https:") and not request.proxy.startswith("socks"):
            curl.setopt(CurlOpt.HTTPPROXYTUNNEL, 1)
        curl.setopt(CurlOpt.CONNECTTIMEOUT_MS, max(1, int(request.connect_timeout * 1000)))
        curl.setopt(CurlOpt.ACCEPT_ENCODING, request.accept_encoding.encode())
    curl.setopt(CurlOpt.URL, request.url.encode())
    curl.setopt(CurlOpt.HTTPHEADER, [f"{name}: {value}".encode() for name, value in request.headers.items()])
    if request.has_body:
        body = request.body or b""
        curl.setopt(CurlOpt.POSTFIELDS, body)
        curl.setopt(CurlOpt.POSTFIELDSIZE, len(body))
    curl.setopt(CurlOpt.HEADERFUNCTION, transfer.on_header)
    curl.setopt(CurlOpt.WRITEFUNCTION, transfer.on_body)
