"""The HTTP layer on curl_cffi's ``Curl``/``AsyncCurl`` against scripted servers on loopback:
heads that come in several blocks, exact request heads and bodies on reused handles,
kept-alive connections, transfer slots freed by aborts and deadlines and handed over in
order, an abort that drops the connection, and a body held back while its reader is behind."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from grok2api.upstream.curl_http import BUFFER_LIMIT, CurlHttp, HttpRequest, Transfer


class Scripted:
    """A TCP server that answers each of the first ``answers`` requests on a connection
    with ``answer`` (None: never answers), then closes the connection ``close_after``
    seconds later. It records each request's head and body."""

    def __init__(self, answer: bytes | None, answers: int = 1, close_after: float = 0.0) -> None:
        self.answer = answer
        self.answers = answers
        self.close_after = close_after
        self.server: asyncio.Server | None = None
        self.heads: list[bytes] = []
        self.bodies: list[bytes] = []
        self.connections = 0
        self.closed_by_client = asyncio.Event()

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}/x"

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        for _ in range(self.answers):
            head = await reader.readuntil(b"\r\n\r\n")
            self.heads.append(head)
            length = next((int(line.split(b":")[1]) for line in head.lower().split(b"\r\n")
                           if line.startswith(b"content-length:")), 0)
            self.bodies.append(await reader.readexactly(length))
            if self.answer is None:
                await reader.read()  # hold the request until the client gives up
                self.closed_by_client.set()
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


def request(url: str, method: str = "GET", headers: dict[str, str] | None = None,
            body: bytes | None = None) -> HttpRequest:
    return HttpRequest(method, url, {"Accept": "*/*"} if headers is None else headers, body, "", "chrome136", 5.0,
                       "gzip")


async def body(transfer: Transfer) -> bytes:
    data = b""
    while (chunk := await transfer.chunk()) is not None:
        data += chunk
    return data


OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


async def test_the_last_head_before_the_body_is_the_answer(http: CurlHttp) -> None:
    server = await serve(b"HTTP/1.1 100 Continue\r\nX-Interim: 1\r\n\r\n"
                         b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello")
    transfer = await http.send(request(server.url), limit=4)
    assert transfer.status == 200
    assert transfer.headers["content-type"] == "text/plain" and "x-interim" not in transfer.headers
    assert await body(transfer) == b"hello"


async def test_an_answer_without_a_body(http: CurlHttp) -> None:
    server = await serve(b"HTTP/1.1 403 Forbidden\r\nRetry-After: 7\r\nContent-Length: 0\r\n\r\n")
    transfer = await http.send(request(server.url), limit=4)
    assert (transfer.status, transfer.headers["retry-after"]) == (403, "7")
    assert await body(transfer) == b""


async def test_a_cancelled_wait_frees_its_slot_for_the_next_in_line(http: CurlHttp) -> None:
    silent = await serve(None)
    answering = await serve(OK)
    held = asyncio.create_task(http.send(request(silent.url), limit=1))
    while not silent.heads:
        await asyncio.sleep(0.01)
    queued = asyncio.create_task(http.send(request(answering.url), limit=1))
    await asyncio.sleep(0.05)
    assert not queued.done()  # the only slot is taken
    held.cancel()
    transfer = await asyncio.wait_for(queued, 5)
    assert await body(transfer) == b"ok"
    await asyncio.wait_for(silent.closed_by_client.wait(), 2)  # the cancelled request was aborted


async def test_a_reader_that_falls_behind_pauses_the_transfer(http: CurlHttp) -> None:
    size = 8 * BUFFER_LIMIT
    payload = bytes(range(256)) * (size // 256)
    server = await serve(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % size + payload)
    transfer = await http.send(request(server.url), limit=4)
    await asyncio.sleep(0.3)  # the server could send it all by now; curl holds back
    assert transfer.buffered < BUFFER_LIMIT + 64 * 1024
    assert await body(transfer) == payload


async def test_reused_handles_send_each_method_and_body_as_given(http: CurlHttp) -> None:
    server = await serve(OK, answers=5)
    post = request(server.url, "POST", {"Content-Type": "application/json"}, b"{}")
    delete = request(server.url, "DELETE", {})
    for each in (post, post, request(server.url), delete, post):  # limit 1: one handle serves them all
        assert await body(await http.send(each, limit=1)) == b"ok"
    assert [head.split(b" ", 1)[0] for head in server.heads] == [b"POST", b"POST", b"GET", b"DELETE", b"POST"]
    assert server.bodies == [b"{}", b"{}", b"", b"", b"{}"]
    assert b"Content-Length: 2" in server.heads[-1] and b"Content-Length" not in server.heads[2]
    assert server.connections == 1  # and all on one kept-alive connection


async def test_each_request_sends_exactly_its_own_headers(http: CurlHttp) -> None:
    requests = [
        {"X-A": "1", "X-B": "2", "X-Id": "first", "Cookie": "sso=a"},
        {"X-A": "1", "X-B": "2", "X-Id": "second", "Cookie": "sso=b"},
        {"X-A": "1", "X-B": "other", "X-Id": "third"},
        {},
    ]
    server = await serve(OK, answers=len(requests) + 1)
    for headers in requests:  # limit 1: one handle serves them all
        assert await body(await http.send(request(server.url, headers=headers), limit=1)) == b"ok"
    for head, headers in zip(server.heads, requests, strict=True):
        sent = [line.decode() for line in head.split(b"\r\n") if line.startswith((b"X-", b"Cookie"))]
        assert sent == [f"{name}: {value}" for name, value in headers.items()]
    upload = b"x" * (2 * 1024 * 1024)  # large enough for curl to ask for a 100 Continue, as browsers never do
    assert await body(await http.send(request(server.url, "POST", {}, upload), limit=1)) == b"ok"
    assert b"expect" not in server.heads[-1].lower() and server.bodies[-1] == upload


async def test_plain_http_is_spoken_as_a_browser_does_without_an_h2c_upgrade(http: CurlHttp) -> None:
    server = await serve(OK)
    assert await body(await http.send(request(server.url), limit=1)) == b"ok"
    head = server.heads[0].lower()
    assert head.startswith(b"get /x http/1.1\r\n")
    assert b"upgrade" not in head and b"http2-settings" not in head


async def test_a_kept_alive_connection_serves_the_next_request_until_its_peer_closes_it(http: CurlHttp) -> None:
    keep = await serve(OK, answers=2, close_after=0.1)
    for _ in range(2):
        assert await body(await http.send(request(keep.url), limit=4)) == b"ok"
    assert keep.connections == 1
    await asyncio.sleep(0.3)  # the peer closes it
    assert await body(await http.send(request(keep.url), limit=4)) == b"ok"  # on a new connection
    assert keep.connections == 2


async def test_an_abort_drops_the_connection_and_frees_the_slot(http: CurlHttp) -> None:
    endless = await serve(b"HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\npartial")
    answering = await serve(OK)
    transfer = await http.send(request(endless.url), limit=1)
    assert await transfer.chunk() == b"partial"
    transfer.abort()
    with pytest.raises(Exception, match="aborted"):
        await transfer.chunk()
    assert await body(await http.send(request(answering.url), limit=1, deadline=None)) == b"ok"


async def test_a_wait_past_its_deadline_frees_nothing_it_did_not_take(http: CurlHttp) -> None:
    silent = await serve(None)
    answering = await serve(OK)
    loop = asyncio.get_running_loop()
    held = asyncio.create_task(http.send(request(silent.url), limit=1, deadline=loop.time() + 1))
    while not silent.heads:
        await asyncio.sleep(0.01)
    for _ in range(2):  # the only slot is taken: each wait for one runs out, and gives back nothing
        with pytest.raises(TimeoutError):
            await http.send(request(answering.url), limit=1, deadline=loop.time() + 0.1)
    with pytest.raises(TimeoutError):  # a head that does not come in time
        await held
    # the first transfer's abort gave its slot back
    assert await body(await http.send(request(answering.url), limit=1, deadline=loop.time() + 5)) == b"ok"
