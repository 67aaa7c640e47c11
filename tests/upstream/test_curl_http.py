"""The pooled-handle HTTP layer against scripted servers on loopback: heads that come in
several blocks, transfer slots freed by aborts and handed over in order, and a body
held back while its reader is behind."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from grok2api.upstream.curl_http import BUFFER_LIMIT, CurlHttp, HttpRequest, Transfer


class Scripted:
    """A TCP server that answers each of the first ``answers`` request heads on a
    connection with ``answer`` (None: never answers), then closes the connection
    ``close_after`` seconds later."""

    def __init__(self, answer: bytes | None, answers: int = 1, close_after: float = 0.0) -> None:
        self.answer = answer
        self.answers = answers
        self.close_after = close_after
        self.server: asyncio.Server | None = None
        self.heads: list[bytes] = []
        self.connections = 0

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}/x"

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        for _ in range(self.answers):
            self.heads.append(await reader.readuntil(b"\r\n\r\n"))
            if self.answer is None:
                await reader.read()  # hold the request until the client gives up
                break
            writer.write(self.answer)
            await writer.drain()
        await asyncio.sleep(self.close_after)
        writer.close()


@pytest_asyncio.fixture
async def http() -> AsyncIterator[CurlHttp]:
    pool = CurlHttp()
    yield pool
    await pool.close()


async def serve(answer: bytes | None, answers: int = 1, close_after: float = 0.0) -> Scripted:
    scripted = Scripted(answer, answers, close_after)
    scripted.server = await asyncio.start_server(scripted._handle, "127.0.0.1", 0)
    return scripted


def get(url: str) -> HttpRequest:
    return HttpRequest("GET", url, {"Accept": "*/*"}, None, "", "chrome136", 5.0, "gzip")


async def body(transfer: Transfer) -> bytes:
    data = b""
    while (chunk := await transfer.chunk()) is not None:
        data += chunk
    return data


async def test_the_last_head_before_the_body_is_the_answer(http: CurlHttp) -> None:
    server = await serve(b"HTTP/1.1 100 Continue\r\nX-Interim: 1\r\n\r\n"
                         b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello")
    transfer = await http.send(get(server.url), limit=4)
    assert transfer.status == 200
    assert transfer.headers["content-type"] == "text/plain" and "x-interim" not in transfer.headers
    assert await body(transfer) == b"hello"


async def test_an_answer_without_a_body(http: CurlHttp) -> None:
    server = await serve(b"HTTP/1.1 403 Forbidden\r\nRetry-After: 7\r\nContent-Length: 0\r\n\r\n")
    transfer = await http.send(get(server.url), limit=4)
    assert (transfer.status, transfer.headers["retry-after"]) == (403, "7")
    assert await body(transfer) == b""


async def test_a_cancelled_wait_frees_its_slot_for_the_next_in_line(http: CurlHttp) -> None:
    silent = await serve(None)
    answering = await serve(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
    held = asyncio.create_task(http.send(get(silent.url), limit=1))
    while not silent.heads:
        await asyncio.sleep(0.01)
    queued = asyncio.create_task(http.send(get(answering.url), limit=1))
    await asyncio.sleep(0.05)
    assert not queued.done()  # the only slot is taken
    held.cancel()
    transfer = await asyncio.wait_for(queued, 5)
    assert await body(transfer) == b"ok"


async def test_a_reader_that_falls_behind_pauses_the_transfer(http: CurlHttp) -> None:
    size = 8 * BUFFER_LIMIT
    payload = bytes(range(256)) * (size // 256)
    server = await serve(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % size + payload)
    transfer = await http.send(get(server.url), limit=4)
    await asyncio.sleep(0.3)  # the server could send it all by now; curl holds back
    assert transfer.buffered < BUFFER_LIMIT + 64 * 1024
    assert await body(transfer) == payload


async def test_a_handle_serves_requests_of_other_shapes(http: CurlHttp) -> None:
    server = await serve(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
    post = HttpRequest("POST", server.url, {"Content-Type": "application/json"}, b"{}", "", "chrome136", 5.0, "gzip")
    delete = HttpRequest("DELETE", server.url, {}, None, "", "chrome136", 5.0, "gzip")
    for request in (post, post, get(server.url), delete, post):  # limit 1: one handle serves them all
        assert await body(await http.send(request, limit=1)) == b"ok"
    assert [head.split(b" ", 1)[0] for head in server.heads] == [b"POST", b"POST", b"GET", b"DELETE", b"POST"]
    assert b"Content-Length: 2" in server.heads[-1] and b"Content-Length" not in server.heads[2]


async def test_a_handle_sends_each_request_its_own_headers_while_sharing_the_common_lines(http: CurlHttp) -> None:
    shared = {"X-A": "1", "X-B": "2", "X-C": "3"}
    requests = [
        {**shared, "X-Id": "first", "Cookie": "sso=a"},
        {**shared, "X-Id": "second", "Cookie": "sso=b"},  # the three shared lines are kept built
        {"X-A": "1", "X-B": "other", "X-Id": "third"},  # fewer lines in common: the shared part shrinks
        {},
        {**shared, "X-Id": "fifth"},
    ]
    server = await serve(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", answers=len(requests))
    for headers in requests:  # limit 1: one handle serves them all
        request = HttpRequest("GET", server.url, headers, None, "", "chrome136", 5.0, "gzip")
        assert await body(await http.send(request, limit=1)) == b"ok"
    for head, headers in zip(server.heads, requests, strict=True):
        sent = [line.decode() for line in head.split(b"\r\n") if line.startswith((b"X-", b"Cookie"))]
        assert sent == [f"{name}: {value}" for name, value in headers.items()]


async def test_plain_http_is_spoken_as_a_browser_does_without_an_h2c_upgrade(http: CurlHttp) -> None:
    server = await serve(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
    assert await body(await http.send(get(server.url), limit=1)) == b"ok"
    head = server.heads[0].lower()
    assert head.startswith(b"get /x http/1.1\r\n")
    assert b"upgrade" not in head and b"http2-settings" not in head


async def test_an_idle_connection_stays_watched_until_its_peer_closes_it(http: CurlHttp) -> None:
    keep = await serve(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", answers=2, close_after=0.2)
    for _ in range(2):
        assert await body(await http.send(get(keep.url), limit=4)) == b"ok"
        assert len(http._parked) == 1  # idle, still registered with the loop for the next request
    assert keep.connections == 1
    for _ in range(50):  # the peer closes it: the loop lets it go (no busy wake-ups on a dead socket)
        if not http._parked:
            break
        await asyncio.sleep(0.02)
    assert not http._parked
    assert await body(await http.send(get(keep.url), limit=4)) == b"ok"  # on a new connection
    assert keep.connections == 2
    await http.close()
    assert not http._watched  # every socket libcurl closed was let go first


async def test_a_wait_past_its_deadline_frees_nothing_it_did_not_take(http: CurlHttp) -> None:
    silent = await serve(None)
    answering = await serve(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
    loop = asyncio.get_running_loop()
    held = asyncio.create_task(http.send(get(silent.url), limit=1, deadline=loop.time() + 1))
    while not silent.heads:
        await asyncio.sleep(0.01)
    with pytest.raises(TimeoutError):  # the only slot is taken: the wait for one runs out
        await http.send(get(answering.url), limit=1, deadline=loop.time() + 0.1)
    assert http._active == 1  # still just the one taken
    with pytest.raises(TimeoutError):  # a head that does not come in time
        await held
    # only the first transfer's slot was ever taken, and its abort gave it back
    assert await body(await http.send(get(answering.url), limit=1, deadline=loop.time() + 5)) == b"ok"
