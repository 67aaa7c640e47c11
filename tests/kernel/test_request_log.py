"""Every /v1 request lands in the shared request log and the hourly stats, without secrets."""

from __future__ import annotations

import asyncio

import pytest

from grok2api.logs.request_log import ALL, STREAM
from grok2api.web.appkeys import REQUEST_LOG, STORAGE

from .plugins_for_tests import EchoPlugin


async def test_requests_are_logged_and_counted(gateway) -> None:
    client = await gateway("storage_local", EchoPlugin())
    for _ in range(2):
        assert (await client.post("/v1/chat/completions", json={"model": "echo-1"})).status == 200
    assert (await client.post("/v1/chat/completions?api_key=sk-leaky-secret", json={"model": "nope"})).status == 404
    await client.get("/health")  # not a /v1 request: not logged
    log = client.app[REQUEST_LOG]
    await log.flush()
    entries = await client.app[STORAGE].read_log(STREAM, limit=10)
    assert [(e.data["path"], e.data["status"], e.data["model"]) for e in entries] == [
        ("/v1/chat/completions", 404, None),  # an unknown model id never becomes a storage key
        ("/v1/chat/completions", 200, "echo-1"),
        ("/v1/chat/completions", 200, "echo-1"),
    ]
    assert all(e.data["key"] == "loopback" for e in entries)
    assert "sk-leaky-secret" not in str([e.data for e in entries])
    (hour,) = (await log.stats()).values()
    assert hour[ALL]["requests"] == 3 and hour[ALL]["ok"] == 2 and hour[ALL]["client_error"] == 1
    assert hour["echo-1"] == {**hour["echo-1"], "requests": 2, "ok": 2}


async def test_unwritten_counts_survive_a_failed_flush(gateway) -> None:
    client = await gateway("storage_local", EchoPlugin())
    log = client.app[REQUEST_LOG]
    await client.post("/v1/chat/completions", json={"model": "echo-1"})
    await client.app[STORAGE].close()  # storage gone: the flush fails, nothing is dropped
    with pytest.raises(Exception):  # noqa: B017 - whatever the engine raises when closed
        await log.flush()
    await client.app[STORAGE].open()
    await log.flush()
    (hour,) = (await log.stats()).values()
    assert hour[ALL]["requests"] == 1


async def test_a_flush_under_load_writes_what_it_found_and_ends(gateway) -> None:
    client = await gateway("storage_local", EchoPlugin())
    log = client.app[REQUEST_LOG]
    busy, recorded = True, 0

    async def requests_keep_finishing() -> None:
        nonlocal recorded
        while busy:
            recorded += 1
            log.record(method="POST", path="/v1/chat/completions", status=200, duration_ms=1.0, model="echo-1",
                       key_name="k")
            await asyncio.sleep(0.0005)  # a busy gateway, not a spin that starves the storage thread of the GIL

    recorder = asyncio.create_task(requests_keep_finishing())
    try:
        await asyncio.sleep(0.01)
        await asyncio.wait_for(log.flush(), 60)  # ends (does not chase what is recorded while it writes)
    finally:  # a failure must not leave the recorder spinning through the app's shutdown
        busy = False
        await recorder
    await log.stop()  # and stopping writes the rest
    (hour,) = (await log.stats()).values()
    assert hour[ALL]["requests"] == recorded


async def test_an_overlong_model_name_is_a_404_and_never_stops_the_log(gateway) -> None:
    client = await gateway("storage_local", EchoPlugin())
    log = client.app[REQUEST_LOG]
    resp = await client.post("/v1/chat/completions", json={"model": "m" * 600})
    assert resp.status == 404 and len((await resp.json())["error"]["message"]) < 300
    assert (await client.post("/v1/chat/completions", json={"model": "echo-1"})).status == 200
    await log.flush()
    (hour,) = (await log.stats()).values()
    assert hour[ALL]["requests"] == 2 and hour["echo-1"]["requests"] == 1


async def test_a_counter_storage_refuses_is_dropped_and_counted_not_retried_for_ever(gateway) -> None:
    client = await gateway("storage_local", EchoPlugin())
    log = client.app[REQUEST_LOG]
    log.record(method="POST", path="/v1/chat/completions", status=200, duration_ms=1.0, model="k" * 600,
               key_name=None)
    await log.flush()  # the invalid counter key is dropped; the total and the entry are written
    assert log.dropped == 1
    (hour,) = (await log.stats()).values()
    assert hour[ALL]["requests"] == 1
    assert len(await client.app[STORAGE].read_log(STREAM, limit=10)) == 1


async def test_stopping_with_storage_gone_gives_up_and_does_not_raise(gateway) -> None:
    client = await gateway("storage_local", EchoPlugin())
    log = client.app[REQUEST_LOG]
    await client.post("/v1/chat/completions", json={"model": "echo-1"})
    await client.app[STORAGE].close()
    await log.stop()  # logged, not raised: the rest of shutdown goes on
    await client.app[STORAGE].open()

