"""HTTP requests on pooled libcurl handles, driven straight from the event loop.

curl_cffi's ``AsyncSession`` re-derives some two dozen options in Python for every
request, wraps every response in objects and runs a task per streamed body; its
``Curl`` and ``AsyncCurl`` wrappers still pass every body piece through two Python
layers and re-register a socket with the loop at every change. The Grok client sends a
handful of request shapes and reads one body per request, so this module speaks to
libcurl through curl_cffi's exported ``ffi`` and ``lib`` itself:

- a handle keeps its options (the browser fingerprint through ``impersonate``, proxy,
  timeouts) for the next request of the same shape, which sets only its URL, headers
  and body;
- libcurl calls one callback per body piece, which hands the bytes to the one reader;
  when the reader falls ``BUFFER_LIMIT`` bytes behind, curl stops reading the socket
  until it catches up;
- the multi handle tells the loop which sockets to watch and when to wake it; only
  what changed is re-registered, and an idle keep-alive connection stays registered
  for its next request (libcurl's own sockets are closed through this module, so none
  stays registered past its end).
"""

from __future__ import annotations

import asyncio
import functools
import os
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

from curl_cffi import CurlError, CurlHttpVersion, CurlMOpt, CurlOpt, ffi, lib
from curl_cffi.curl import DEFAULT_CACERT
from curl_cffi.requests.impersonate import resolve_latest_browser_type

T = TypeVar("T")
#: body bytes held for a reader that is behind; past this the transfer pauses
BUFFER_LIMIT = 1024 * 1024
#: what a handle is set up for: method, body or not, proxy, https, target, connect timeout, encodings
Shape = tuple[str, bool, str, bool, str, float, str]

# libcurl's constants (curl.h) that curl_cffi does not export as enums
_POLL_IN, _POLL_OUT, _POLL_REMOVE = 1, 2, 4
_CSELECT_IN, _CSELECT_OUT = 1, 2
_SOCKET_TIMEOUT = -1
_MSG_DONE = 1
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
        """The options a handle keeps between requests: the next request of the same
        shape sets only its URL, headers and body."""
        return (self.method, self.has_body, self.proxy, self.url.startswith("https:"), self.impersonate,
                self.connect_timeout, self.accept_encoding)


# libcurl's callbacks: each finds its Python object through the pointer it was given


@ffi.callback("size_t(char *, size_t, size_t, void *)", error=0)
def _on_body(data: Any, size: int, count: int, userdata: Any) -> int:
    """Body bytes (``size`` is always 1), for the reader. A body comes in dozens of
    pieces, one call each: this is kept to one Python frame."""
    transfer: Transfer = ffi.from_handle(userdata)
    if transfer._headless:
        transfer._head_arrived()
    if transfer.buffered >= BUFFER_LIMIT:
        transfer._paused = True
        return _WRITEFUNC_PAUSE  # curl keeps the bytes and hands them over again on resuming
    transfer._body.append(ffi.unpack(data, count))
    transfer.buffered += count
    if transfer._waiter is not None:
        transfer._wake()
    return count


@ffi.callback("size_t(char *, size_t, size_t, void *)", error=0)
def _on_header(data: Any, size: int, count: int, transfer: Any) -> int:
    ffi.from_handle(transfer).on_header(ffi.unpack(data, count))
    return count


@ffi.callback("int(void *, int, int, void *, void *)", error=-1)
def _on_socket(easy: Any, fd: int, what: int, http: Any, socket_data: Any) -> int:
    ffi.from_handle(http).watch(fd, what)
    return 0


@ffi.callback("int(void *, long, void *)", error=-1)
def _on_timer(multi: Any, timeout_ms: int, http: Any) -> int:
    ffi.from_handle(http).wake_after(timeout_ms)
    return 0


@ffi.callback("int(void *, int, int)", error=1)
def _on_connection_socket(http: Any, fd: int, purpose: int) -> int:
    ffi.from_handle(http).opened(fd)
    return 0


@ffi.callback("int(void *, int)", error=1)
def _on_close_socket(http: Any, fd: int) -> int:
    ffi.from_handle(http).closing(fd)
    os.close(fd)
    return 0


def _expire(waiter: asyncio.Future[Any]) -> None:
    if not waiter.done():
        waiter.set_exception(TimeoutError())


async def _until(waiter: asyncio.Future[T], deadline: float | None) -> T:
    """``waiter``'s result, or TimeoutError at ``deadline`` (loop time; None: no limit).
    A timer on a future of our own: lighter than ``asyncio.timeout``, which cancels the
    task, and an answer waits like this a few times."""
    if deadline is None:
        return await waiter
    timer = asyncio.get_running_loop().call_at(deadline, _expire, waiter)
    try:
        return await waiter
    finally:
        timer.cancel()


def _long(value: int) -> Any:
    return ffi.new("long *", value)  # curl_cffi's setopt shim reads long options through a pointer


def _slist(lines: Iterable[tuple[str, str]]) -> Any:
    """``name: value`` lines as a new libcurl list (NULL when there are none)."""
    head = ffi.NULL
    for name, value in lines:
        head = lib.curl_slist_append(head, f"{name}: {value}".encode())
    return head


def _common_prefix(a: tuple[tuple[str, str], ...], b: tuple[tuple[str, str], ...]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


class HeaderLines:
    """A handle's request headers as libcurl's list. The leading lines a request shares
    with the one before stay built for the next: Grok's browser headers are the same on
    every call but for the last four, and a line costs a libcurl call to build and one to
    free. libcurl reads the list during the transfer and never changes it."""

    def __init__(self) -> None:
        self._shared: tuple[tuple[str, str], ...] = ()
        self._shared_list: Any = ffi.NULL
        self._shared_end: Any = ffi.NULL  # its last node, linked to the request's own lines
        self._own: Any = ffi.NULL
        self._last: tuple[tuple[str, str], ...] = ()

    def build(self, headers: dict[str, str]) -> Any:
        """The list for ``headers``, valid until the next :meth:`build` or :meth:`release`."""
        self.release()
        lines = tuple(headers.items())
        if not self._shared or lines[:len(self._shared)] != self._shared:
            self._share(lines[:_common_prefix(lines, self._last)])
        self._last = lines
        self._own = _slist(lines[len(self._shared):])
        if self._shared_list == ffi.NULL:
            return self._own
        self._shared_end.next = self._own
        return self._shared_list

    def release(self) -> None:
        """Free the request's own lines; the shared ones stay for the next request."""
        if self._own != ffi.NULL:
            if self._shared_end != ffi.NULL:
                self._shared_end.next = ffi.NULL
            lib.curl_slist_free_all(self._own)
            self._own = ffi.NULL

    def close(self) -> None:
        self.release()
        self._share(())

    def _share(self, lines: tuple[tuple[str, str], ...]) -> None:
        if self._shared_list != ffi.NULL:
            lib.curl_slist_free_all(self._shared_list)
        self._shared, self._shared_list = lines, _slist(lines)
        end = self._shared_list
        while end != ffi.NULL and end.next != ffi.NULL:
            end = end.next
        self._shared_end = end


class Handle:
    """One libcurl easy handle with what its current request keeps alive."""

    def __init__(self, http: Any) -> None:
        self.easy = lib.curl_easy_init()
        self._http = http  # the ffi handle of the CurlHttp whose sockets these are
        self.shape: Shape | None = None  # the shape its options are set up for
        self.error = ffi.new("char[]", 256)
        self.headers = HeaderLines()

    def setopt(self, option: CurlOpt, value: Any) -> None:
        code = lib._curl_easy_setopt(self.easy, option, value)
        if code != 0:
            raise CurlError(f"curl refused option {option.name}: ({code})", code)

    def configure(self, request: HttpRequest, transfer: Any) -> None:
        """Set up for ``request``, its head and body going to ``transfer`` (an ffi handle)."""
        shape = request.shape
        if self.shape != shape:
            self.shape = None
            self._set_shape(request)
            self.shape = shape
        self.error[0] = b"\0"  # libcurl writes it only when a transfer fails
        self.setopt(CurlOpt.URL, request.url.encode())
        self.setopt(CurlOpt.HTTPHEADER, self.headers.build(request.headers))
        if request.has_body:
            body = request.body or b""
            self.setopt(CurlOpt.POSTFIELDSIZE, _long(len(body)))
            self.setopt(CurlOpt.COPYPOSTFIELDS, body)
        self.setopt(CurlOpt.WRITEDATA, transfer)
        self.setopt(CurlOpt.HEADERDATA, transfer)

    def _set_shape(self, request: HttpRequest) -> None:
        lib.curl_easy_reset(self.easy)
        if lib.curl_easy_impersonate(self.easy, resolve_latest_browser_type(request.impersonate).encode(), 0) != 0:
            raise CurlError(f"curl cannot impersonate {request.impersonate!r}")
        if not request.url.startswith("https:"):
            # the browser profile asks for HTTP/2, which over plain HTTP means offering an
            # ``Upgrade: h2c`` on every request; a browser speaks HTTP/1.1 there
            self.setopt(CurlOpt.HTTP_VERSION, _long(CurlHttpVersion.V1_1))
        self.setopt(CurlOpt.ERRORBUFFER, self.error)
        self.setopt(CurlOpt.NOSIGNAL, _long(1))  # no SIGPIPE juggling per call: Python ignores it
        self.setopt(CurlOpt.CAINFO, DEFAULT_CACERT.encode())
        self.setopt(CurlOpt.PROXY_CAINFO, DEFAULT_CACERT.encode())
        self.setopt(CurlOpt.WRITEFUNCTION, _on_body)
        self.setopt(CurlOpt.HEADERFUNCTION, _on_header)
        self.setopt(CurlOpt.SOCKOPTFUNCTION, _on_connection_socket)
        self.setopt(CurlOpt.SOCKOPTDATA, self._http)
        self.setopt(CurlOpt.CLOSESOCKETFUNCTION, _on_close_socket)
        self.setopt(CurlOpt.CLOSESOCKETDATA, self._http)
        if request.has_body:
            self.setopt(CurlOpt.POST, _long(1))
        if request.method != ("POST" if request.has_body else "GET"):
            self.setopt(CurlOpt.CUSTOMREQUEST, request.method.encode())
        # an empty PROXY and NOPROXY keep curl from reading proxies from the environment
        self.setopt(CurlOpt.PROXY, request.proxy.encode())
        self.setopt(CurlOpt.NOPROXY, b"")
        if request.proxy and request.url.startswith("https:") and not request.proxy.startswith("socks"):
            self.setopt(CurlOpt.HTTPPROXYTUNNEL, _long(1))
        self.setopt(CurlOpt.CONNECTTIMEOUT_MS, _long(max(1, int(request.connect_timeout * 1000))))
        self.setopt(CurlOpt.ACCEPT_ENCODING, request.accept_encoding.encode())

    def error_of(self, code: int) -> CurlError:
        message = ffi.string(self.error).decode(errors="replace") or ffi.string(lib.curl_easy_strerror(code)).decode()
        return CurlError(f"curl: ({code}) {message}", code)

    def close(self) -> None:
        lib.curl_easy_cleanup(self.easy)
        self.headers.close()


class Transfer:
    """One request in flight: its status and headers once they arrived, then body chunks.
    Made with its handle configured and added to the multi handle."""

    def __init__(self, http: CurlHttp, handle: Handle, request: HttpRequest) -> None:
        self._http = http
        self.handle = handle
        self._loop = http.loop
        self._self: Any = ffi.new_handle(self)  # what libcurl's callbacks are given
        self._head: asyncio.Future[None] = self._loop.create_future()
        self._lines: list[bytes] = []  # the head being received
        self._final: list[bytes] = []  # the last complete head
        self._body: deque[bytes] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self._headless = True  # until the status and headers are known
        self._paused = False
        self._ended = False
        self._error: CurlError | None = None
        self.buffered = 0  # body bytes received and not yet read
        self.status = 0
        handle.configure(request, self._self)
        http.start(handle.easy, self)

    # libcurl's callbacks (run inside ``curl_multi_socket_action``, on the loop) -----
    def on_header(self, line: bytes) -> None:
        if line not in (b"\r\n", b"\n"):
            self._lines.append(line)
        elif self._lines and self._lines[0].startswith(b"HTTP/"):
            # keep the last complete head: a proxy's answer to CONNECT and interim 1xx
            # answers come first; the response's own is the one before the body
            self._final, self._lines = self._lines, []
        else:
            self._lines = []

    def _head_arrived(self) -> None:
        parts = self._final[0].split(None, 2) if self._final else []
        self.status = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
        self._headless = False
        if not self._head.done():  # not when its waiter was cancelled
            self._head.set_result(None)

    def _wake(self) -> None:
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def finished(self, error: CurlError | None) -> None:
        """The transfer ended (completed, failed or aborted): the handle goes back."""
        self._ended, self._error = True, error
        if not self._head.done():
            if error is None and self._final:  # a complete answer without a body
                self._head_arrived()
            else:
                self._head.set_exception(error or CurlError("transfer ended without a response"))
                self._head.exception()  # retrieved: nobody may wait for it any more
        self._wake()
        # a handle that ended paused is set up afresh before its next request
        if self._paused:
            self.handle.shape = None
        self._self = None  # libcurl calls nothing here any more
        self._http.release(self.handle)

    # the reader's side --------------------------------------------------------------
    @functools.cached_property
    def headers(self) -> dict[str, str]:
        """The response's headers by lower-case name, parsed when first asked for (most
        answers are read without them)."""
        headers = {}
        for raw in self._final[1:] if not self._headless else ():
            name, sep, value = raw.decode("latin-1").partition(":")
            if sep:
                headers[name.strip().lower()] = value.strip()
        return headers

    async def head(self, deadline: float | None = None) -> None:
        """Wait until the status and headers arrived (known at the first body byte, or
        at the end of a transfer without a body); raises the transfer's CurlError, or
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
            self._waiter = self._loop.create_future()
            await _until(self._waiter, deadline)
        data = self._body[0] if len(self._body) == 1 else b"".join(self._body)
        self._body.clear()
        self.buffered = 0
        if self._paused and not self._ended:
            self._paused = False
            lib.curl_easy_pause(self.handle.easy, _PAUSE_CONT)  # may hand over held bytes at once
        return data

    def abort(self) -> None:
        """Stop the transfer now (a no-op once it ended); curl drops its connection."""
        if not self._ended:
            self._http.stop(self.handle.easy, CurlError("transfer aborted"))


class CurlHttp:
    """Reusable easy handles, at most ``limit`` transfers at once, on one multi handle
    whose sockets and timer the running loop watches."""

    def __init__(self) -> None:
        self._multi: Any = None
        self._self = ffi.new_handle(self)
        self.loop: asyncio.AbstractEventLoop | None = None
        self._idle: list[Handle] = []
        self._transfers: dict[Any, Transfer] = {}  # by easy handle
        self._watched: dict[int, int] = {}  # socket → the _POLL_ bits the loop watches
        self._connections: set[int] = set()  # sockets of connections: closed through _on_close_socket
        self._parked: set[int] = set()  # idle connections whose reader stays registered
        self._timer: asyncio.Handle | None = None
        self._running = ffi.new("int *")
        self._queued = ffi.new("int *")
        self._active = 0
        self._queue: deque[asyncio.Future[None]] = deque()

    def _open(self) -> None:
        if self._multi is None:
            self.loop = asyncio.get_running_loop()
            self._multi = lib.curl_multi_init()
            lib.curl_multi_setopt(self._multi, CurlMOpt.SOCKETFUNCTION, _on_socket)
            lib.curl_multi_setopt(self._multi, CurlMOpt.SOCKETDATA, self._self)
            lib.curl_multi_setopt(self._multi, CurlMOpt.TIMERFUNCTION, _on_timer)
            lib.curl_multi_setopt(self._multi, CurlMOpt.TIMERDATA, self._self)

    async def close(self) -> None:
        for easy in list(self._transfers):
            self.stop(easy, CurlError("client closed"))
        if self._multi is not None:
            lib.curl_multi_cleanup(self._multi)  # after this, no callback comes
            self._multi = None
        for fd in list(self._watched):
            self._unwatch(fd)
        self._parked.clear()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        for handle in self._idle:
            handle.close()
        self._idle.clear()

    # the multi handle and the loop ------------------------------------------------
    def opened(self, fd: int) -> None:
        """libcurl made a connection socket."""
        self._connections.add(fd)

    def closing(self, fd: int) -> None:
        """libcurl closes a connection socket: the loop stops watching it first."""
        self._connections.discard(fd)
        self._parked.discard(fd)
        self._unwatch(fd)

    def _unwatch(self, fd: int) -> None:
        watched = self._watched.pop(fd, 0)
        if watched & _POLL_IN:
            self.loop.remove_reader(fd)  # type: ignore[union-attr]
        if watched & _POLL_OUT:
            self.loop.remove_writer(fd)  # type: ignore[union-attr]

    def watch(self, fd: int, what: int) -> None:
        """libcurl: watch ``fd`` for ``what`` from now on (``_POLL_REMOVE``: not at all).

        A connection going idle keeps its reader: the next request on it asks for it
        again, and registering a socket anew costs the loop several system calls."""
        loop = self.loop
        assert loop is not None
        old = self._watched.get(fd, 0)
        new = 0 if what & _POLL_REMOVE else what
        if not new and old & _POLL_IN and fd in self._connections:
            if old & _POLL_OUT:
                loop.remove_writer(fd)
            self._watched[fd] = _POLL_IN
            self._parked.add(fd)
            return
        self._parked.discard(fd)
        if new & _POLL_IN and not old & _POLL_IN:
            loop.add_reader(fd, self._act, fd, _CSELECT_IN)
        elif old & _POLL_IN and not new & _POLL_IN:
            loop.remove_reader(fd)
        if new & _POLL_OUT and not old & _POLL_OUT:
            loop.add_writer(fd, self._act, fd, _CSELECT_OUT)
        elif old & _POLL_OUT and not new & _POLL_OUT:
            loop.remove_writer(fd)
        if new:
            self._watched[fd] = new
        else:
            self._watched.pop(fd, None)

    def wake_after(self, timeout_ms: int) -> None:
        """libcurl: act on timeouts after ``timeout_ms`` (-1: no timer)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        assert self.loop is not None
        if timeout_ms == 0:  # at once (a transfer was just added): no timer to set up
            self._timer = self.loop.call_soon(self._act, _SOCKET_TIMEOUT, 0)
        elif timeout_ms > 0:
            self._timer = self.loop.call_later(timeout_ms / 1000, self._act, _SOCKET_TIMEOUT, 0)

    def _act(self, fd: int, events: int) -> None:
        """Let libcurl do what a socket event or its timer asks, then end finished transfers."""
        if self._multi is None:
            return
        if fd in self._parked:  # an idle connection spoke: its peer closed it, most likely;
            self._parked.discard(fd)  # libcurl finds out when it next tries to reuse it
            self._unwatch(fd)
            return
        lib.curl_multi_socket_action(self._multi, fd, events, self._running)
        while (message := lib.curl_multi_info_read(self._multi, self._queued)) != ffi.NULL:
            if message.msg == _MSG_DONE:
                easy, code = message.easy_handle, message.data.result
                transfer = self._transfers.get(easy)
                self.stop(easy, transfer.handle.error_of(code) if transfer is not None and code else None)

    def start(self, easy: Any, transfer: Transfer) -> None:
        code = lib.curl_multi_add_handle(self._multi, easy)
        if code != 0:
            raise CurlError(f"curl cannot start the transfer: ({code})", code)
        self._transfers[easy] = transfer

    def stop(self, easy: Any, error: CurlError | None) -> None:
        """End a transfer: libcurl finished it (``error`` None for success), or we stop it
        before libcurl did, which closes its connection."""
        transfer = self._transfers.pop(easy, None)
        lib.curl_multi_remove_handle(self._multi, easy)
        if transfer is not None:
            transfer.finished(error)

    # handles and transfer slots ---------------------------------------------------
    async def _slot(self, limit: int, deadline: float | None) -> None:
        """Take one of ``limit`` transfer slots; waiters are served in order."""
        if self._active < limit and not self._queue:
            self._active += 1
            return
        waiter = asyncio.get_running_loop().create_future()
        self._queue.append(waiter)
        try:
            await _until(waiter, deadline)  # woken with the slot of a finished transfer handed over
        except BaseException:
            if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
                self._free_slot()  # handed over, but cancelled at the same time
            raise

    def _free_slot(self) -> None:
        while self._queue:
            waiter = self._queue.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        self._active -= 1

    def release(self, handle: Handle) -> None:
        handle.headers.release()
        self._idle.append(handle)
        self._free_slot()

    async def send(self, request: HttpRequest, limit: int, deadline: float | None = None) -> Transfer:
        """Start ``request`` and wait for its status and headers (TimeoutError at
        ``deadline``, loop time); on any failure or cancellation before that, the
        transfer is aborted."""
        await self._slot(limit, deadline)
        self._open()
        handle = self._idle.pop() if self._idle else Handle(self._self)
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
