"""Ids that guard nothing: well formed, and different in every forked worker."""

from __future__ import annotations

import os
import uuid

from grok2api.ids import random_hex, random_uuid


def test_shapes() -> None:
    assert len(random_hex()) == 32 and int(random_hex(), 16) >= 0
    assert len(random_hex(4)) == 8
    ids = [random_uuid() for _ in range(2000)]
    assert len(set(ids)) == len(ids)
    for text in ids:
        parsed = uuid.UUID(text)
        assert (str(parsed), parsed.version, parsed.variant) == (text, 4, uuid.RFC_4122)
    # every random digit takes every value: none is stuck by the formatting
    assert all(len({text[i] for text in ids}) == 16 for i in range(36) if i not in (8, 13, 14, 18, 19, 23))
    assert {text[19] for text in ids} == set("89ab")


def test_a_forked_worker_draws_its_own_ids() -> None:
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: random reseeds itself after a fork
        os.write(write, random_hex().encode())
        os._exit(0)
    os.close(write)
    mine = random_hex()
    os.waitpid(pid, 0)
    assert os.read(read, 64).decode() != mine
