"""Loopback addresses that fail the way a broken network does: the two failure classes a
running server cannot inject (refused connection, connect timeout)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager


def refused_url() -> str:
    """An origin on a loopback port nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@contextmanager
def blackhole_url() -> Iterator[str]:
    """An origin whose connections never complete: its listener's accept queue is full
    and never drained, so new handshakes are dropped."""
    listener = socket.socket()
    fillers: list[socket.socket] = []
    try:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        for _ in range(4):
            filler = socket.socket()
            fillers.append(filler)
            filler.setblocking(False)
            filler.connect_ex(listener.getsockname())
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        for sock in (*fillers, listener):
            sock.close()
