"""A key's access limits (rpm, concurrency, expiry, model allow-list) and charging by
reservation: refused through the openai SDK with the limit named, shared by gateways on
one storage, released however a request ends, and given back when a worker crashed."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam

from grok2api.keys.charges import USAGE_NS, held_field
from grok2api.keys.leases import WORKER_LOCK
from grok2api.keys.limits import SLOT_LOCK, InvalidKeyField, access_fields
from grok2api.keys.service import Identity, KeyService, QuotaExceeded, key_id, usage_day
from grok2api.storage import NS_API_KEYS, Storage
from grok2api.testing.engines import storage_settings
from grok2api.testing.fake_grok import FakeGrok

from .conftest import Gateway, StartGateways

ENGINES = ["local", "redis", "pgsql", "mysql"]
HI: list[ChatCompletionMessageParam] = [{"role": "user", "content": "hi"}]
LONG: list[ChatCompletionMessageParam] = [{"role": "user", "content": "a b c d e f g h i j k l m n o p"}]


def error_of(failure: openai.APIStatusError) -> dict[str, Any]:
    assert isinstance(failure.body, dict), failure.body
    return failure.body


async def eventually(check: Callable[[], Awaitable[bool]], within: float = 20.0) -> None:
    """Poll ``check`` until it holds (a bound, never a measured duration)."""
    deadline = time.monotonic() + within
    while not await check():
        assert time.monotonic() < deadline, "condition never held"
        await asyncio.sleep(0.05)


async def used(keys: KeyService, ident: str) -> dict[str, int]:
    (row,) = [r for r in await keys.list_rows() if r["id"] == ident]
    return {b.removesuffix("_used"): n for b, n in row["usage_today"].items()}


async def managed(keys: KeyService, **fields: Any) -> tuple[str, Identity]:
    limits = fields.pop("limits", {})
    row, key = await keys.create(limits=limits, access=fields)
    who = await keys.authenticate(key)
    assert who is not None and who.key_id == row["id"]
    return key, who


@pytest.fixture
async def keys(make_storage: Callable[..., Awaitable[Storage]]) -> Any:
    storage = await make_storage("local")
    service = KeyService(storage, storage.settings)  # type: ignore[attr-defined]
    yield service
    await service.close()


# -- the fields ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("field", "value"), [
    ("rpm", -2), ("rpm", "10"), ("rpm", True), ("rpm", 1.5), ("concurrency", 10**6), ("concurrency", []),
    ("expires_at", "tomorrow"), ("expires_at", -5), ("expires_at", float("inf")), ("expires_at", False),
    ("models", "grok-4"), ("models", [""]), ("models", [1]), ("models", ["x"] * 501),
])
def test_bad_access_fields_name_the_field(field: str, value: object) -> None:
    with pytest.raises(InvalidKeyField) as refused:
        access_fields({field: value})
    assert refused.value.field == field and f"'{field}'" in refused.value.message


def test_access_fields_null_means_unlimited_never_or_all() -> None:
    assert access_fields({"rpm": None, "concurrency": None, "expires_at": None, "models": None}) == {
        "rpm": -1, "concurrency": -1, "expires_at": None, "models": []}
    assert access_fields({"rpm": 0, "expires_at": 1.9e9, "models": ["a", " a ", "b"]}) == {
        "rpm": 0, "expires_at": 1900000000, "models": ["a", "b"]}


async def test_rows_carry_the_access_fields_also_for_keys_made_before_them(keys: KeyService) -> None:
    row, key = await keys.create(name="new", access={"rpm": 5, "models": ["grok-4"]})
    assert (row["rpm"], row["concurrency"], row["expires_at"], row["models"], row["expired"]) == (
        5, -1, None, ["grok-4"], False)
    await keys.storage.put(NS_API_KEYS, "e" * 64, {"name": "old", "display_key": "sk-old", "created_at": 1,
                                                   "is_active": True, "chat_limit": -1})
    old = next(r for r in await keys.list_rows() if r["id"] == "e" * 64)
    assert (old["rpm"], old["concurrency"], old["expires_at"], old["models"], old["expired"]) == (
        -1, -1, None, [], False)
    updated = await keys.update(key, access={"rpm": None, "concurrency": 2, "expires_at": int(time.time()) - 1})
    assert (updated["rpm"], updated["concurrency"], updated["models"], updated["expired"]) == (
        -1, 2, ["grok-4"], True)
    assert (await keys.update(key, access={"expires_at": None}))["expires_at"] is None
    with pytest.raises(InvalidKeyField):
        await keys.update(key, access={"concurrency": -7})


# -- reservations --------------------------------------------------------------------------------


async def test_a_reservation_counts_at_once_then_settles_or_refunds(keys: KeyService) -> None:
    _, who = await managed(keys, limits={"chat_per_day": 3, "image_per_day": 10})
    assert who.key_id is not None
    first = await keys.reserve(who, {"chat": 1})
    second = await keys.reserve(who, {"chat": 1})
    assert (await used(keys, who.key_id))["chat"] == 2  # both count before either answered
    await first.settle()
    await second.refund()
    await second.settle()  # only the first call counts
    assert (await used(keys, who.key_id))["chat"] == 1
    async with await keys.reserve(who, {"chat": 1}):
        pass  # never settled: refunded
    with pytest.raises(RuntimeError):
        async with await keys.reserve(who, {"chat": 1}):
            raise RuntimeError("the upstream call failed")
    pictures = await keys.reserve(who, {"image": 4})
    await pictures.settle({"image": 3})  # charged what was delivered
    assert await used(keys, who.key_id) == {"chat": 1, "heavy": 0, "image": 3, "video": 0}
    counters = await keys.storage.counters(USAGE_NS + usage_day(), who.key_id)
    assert all(n == 0 for f, n in counters.items() if "_held:" in f)  # nothing left open


async def test_a_key_without_limits_is_charged_once_its_answer_ended(keys: KeyService) -> None:
    _, who = await managed(keys)
    assert who.key_id is not None
    before = await keys.storage.counters(USAGE_NS + usage_day(), who.key_id)
    answered, failed = await keys.reserve(who, {"chat": 1}), await keys.reserve(who, {"chat": 1})
    assert await keys.storage.counters(USAGE_NS + usage_day(), who.key_id) == before  # nothing can refuse it
    await failed.refund()
    await answered.settle()
    assert (await used(keys, who.key_id))["chat"] == 1
    await answered.refund()  # a settled charge taken back (a video job that failed later)
    assert (await used(keys, who.key_id))["chat"] == 0


async def test_concurrent_reservations_cannot_overshoot(keys: KeyService) -> None:
    _, who = await managed(keys, limits={"chat_per_day": 3})

    async def attempt() -> bool:
        try:
            await keys.reserve(who, {"chat": 1})
            return True
        except QuotaExceeded:
            return False

    assert sum(await asyncio.gather(*(attempt() for _ in range(12)))) == 3


async def test_a_settled_reservation_is_refunded_from_its_ticket_by_another_worker(
        make_storage: Callable[..., Awaitable[Storage]], tmp_path: Path) -> None:
    settings = storage_settings("local", tmp_path / "data")
    a, b = KeyService(await make_storage("local", settings), settings), \
        KeyService(await make_storage("local", settings), settings)
    _, who = await managed(a, limits={"video_per_day": 1})
    assert who.key_id is not None
    job = await a.reserve(who, {"video": 1})
    await job.settle()
    ticket = job.ticket()
    assert ticket == {"day": usage_day(), "usage": {"video": 1}}
    await b.settled(who, ticket, {"video": 1}).refund()
    assert (await used(a, who.key_id))["video"] == 0
    await a.close()
    await b.close()


@pytest.mark.parametrize("engine", ENGINES)
async def test_a_crashed_workers_reservation_is_given_back(engine: str, make_storage: Callable[..., Awaitable[Storage]],
                                                           tmp_path: Path) -> None:
    settings = storage_settings(engine, tmp_path / "data")
    live_storage, other_storage = await make_storage(engine, settings), await make_storage(engine, settings)
    keys, other = KeyService(live_storage, settings), KeyService(other_storage, settings)
    _, who = await managed(keys, limits={"chat_per_day": 2})
    assert who.key_id is not None
    ns = USAGE_NS + usage_day()
    # a worker that crashed after reserving: its hold is written, its heartbeat is gone
    await live_storage.incr(ns, who.key_id, {"chat_used": 1, held_field("chat", "crashed0000000001"): -1})
    # a live worker's open reservation on the same key
    open_one = await other.reserve(who, {"chat": 1})
    assert (await live_storage.counters(ns, who.key_id))["chat_used"] == 2
    await keys.reserve(who, {"chat": 1})  # the crashed worker's hold was given back first
    with pytest.raises(QuotaExceeded):
        await keys.reserve(who, {"chat": 1})  # the live worker's hold still counts
    await open_one.settle()
    assert (await used(keys, who.key_id))["chat"] == 2
    # a worker whose heartbeat is still held: its hold counts until the lease expires
    await live_storage.acquire_lock(WORKER_LOCK.format("stalled000000001"), "stalled000000001", 1.0)
    await live_storage.incr(ns, who.key_id, {"chat_used": 1, held_field("chat", "stalled000000001"): -1})
    await keys.update(who.key_id, limits={"chat_per_day": 3})

    async def admitted() -> bool:
        try:
            await keys.reserve(who, {"chat": 1})
            return True
        except QuotaExceeded:
            return False

    assert not await admitted()
    await eventually(admitted)  # the lease ran out: the hold stopped counting
    await keys.close()
    await other.close()


async def test_a_worker_taken_for_dead_charges_what_it_delivered_again(
        make_storage: Callable[..., Awaitable[Storage]], tmp_path: Path) -> None:
    settings = storage_settings("local", tmp_path / "data")
    a = KeyService(await make_storage("local", settings), settings)
    b = KeyService(await make_storage("local", settings), settings)
    _, who = await managed(a, limits={"chat_per_day": 5})
    assert who.key_id is not None
    slow = await b.reserve(who, {"chat": 1})
    await b.leases.close()  # as if its heartbeat had expired while its request still ran
    await a._charges.sweep(usage_day(), who.key_id,
                           await a.storage.counters(USAGE_NS + usage_day(), who.key_id))
    assert (await used(a, who.key_id))["chat"] == 0
    await slow.settle()  # its hold is gone: the answer it delivered is charged anyway
    assert (await used(a, who.key_id))["chat"] == 1
    await a.close()


async def test_a_crashed_workers_slot_expires(keys: KeyService) -> None:
    _, who = await managed(keys, concurrency=1)
    assert who.key_id is not None
    await keys.storage.acquire_lock(SLOT_LOCK.format(who.key_id, 0), "crashed-request", 1.0)
    refused = 0

    async def admitted() -> bool:
        nonlocal refused
        try:
            async with keys.admit(who, "grok-4"):
                return True
        except Exception as exc:
            assert "1 concurrent request" in str(exc)
            refused += 1
            return False

    await eventually(admitted)
    assert refused >= 1 and keys.in_flight(who) == 0


# -- through the openai SDK ---------------------------------------------------------------------


async def test_an_expired_key_is_refused(start_gateways: StartGateways) -> None:
    (gw,) = await start_gateways()
    _, key = await gw.keys.create(access={"expires_at": int(time.time()) - 60})
    sdk = gw.sdk(key)
    with pytest.raises(openai.PermissionDeniedError) as caught:
        await sdk.chat.completions.create(model="grok-4", messages=HI)
    assert error_of(caught.value)["code"] == "key_expired" and "expired at" in error_of(caught.value)["message"]
    with pytest.raises(openai.PermissionDeniedError):
        await sdk.models.list()


async def test_a_model_outside_the_allow_list_is_refused(start_gateways: StartGateways) -> None:
    (gw,) = await start_gateways()
    _, key = await gw.keys.create(access={"models": ["grok-3", "grok-4"]})
    sdk = gw.sdk(key)
    with pytest.raises(openai.PermissionDeniedError) as caught:
        await sdk.chat.completions.create(model="grok-4-mini", messages=HI)
    error = error_of(caught.value)
    assert (error["code"], error["param"]) == ("model_not_allowed", "model")
    assert "'grok-4-mini'" in error["message"] and "grok-3, grok-4" in error["message"]
    assert (await sdk.chat.completions.create(model="grok-4", messages=HI)).choices
    assert sorted(m.id for m in (await sdk.models.list()).data) == ["grok-3", "grok-4"]
    with pytest.raises(openai.PermissionDeniedError):
        await sdk.models.retrieve("grok-4-mini")


@pytest.mark.parametrize("engine", ENGINES)
async def test_rpm_and_concurrency_are_shared_by_gateways_on_one_storage(
        engine: str, start_gateways: StartGateways, fake_grok: FakeGrok) -> None:
    a, b = await start_gateways(engine, count=2)
    _, key = await a.keys.create(access={"rpm": 3})
    await eventually(lambda: _known(b, key))
    while time.time() % 60 > 45:  # all of it inside one minute's window
        await asyncio.sleep(0.5)
    for gw in (a, b, a):
        await gw.sdk(key).chat.completions.create(model="grok-4", messages=HI)
    with pytest.raises(openai.RateLimitError) as caught:
        await b.sdk(key).chat.completions.create(model="grok-4", messages=HI)
    error = error_of(caught.value)
    assert (error["code"], error["param"]) == ("rpm_limit_exceeded", "rpm")
    assert "3 requests per minute" in error["message"]
    assert 1 <= int(caught.value.response.headers["retry-after"]) <= 60

    _, key = await a.keys.create(access={"concurrency": 1})
    await eventually(lambda: _known(b, key))
    fake_grok.inject("idle_gap", endpoint="chat", after_lines=5, delay=15.0)
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {key}"}) as http:
        response = await http.post(f"{a.url}/v1/chat/completions",
                                   json={"model": "grok-4", "messages": LONG, "stream": True})
        assert response.status == 200
        while b'"content":"Echo:' not in await response.content.readline():
            pass  # the answer is under way on gateway a
        with pytest.raises(openai.RateLimitError) as caught:
            await b.sdk(key).chat.completions.create(model="grok-4", messages=HI)
        error = error_of(caught.value)
        assert (error["code"], error["param"]) == ("concurrency_limit_exceeded", "concurrency")
        response.close()  # the client goes away mid-answer
    await eventually(lambda: _idle(a, key))
    assert (await b.sdk(key).chat.completions.create(model="grok-4", messages=HI)).choices


async def test_concurrency_is_released_after_streams_failures_and_disconnects(
        start_gateways: StartGateways, fake_grok: FakeGrok) -> None:
    (gw,) = await start_gateways()
    _, key = await gw.keys.create(access={"concurrency": 1})
    sdk = gw.sdk(key)
    for _ in range(2):  # a stream read to its end frees the slot
        stream = await sdk.chat.completions.create(model="grok-4", messages=HI, stream=True)
        assert [chunk async for chunk in stream]
    fake_grok.inject("server_error", endpoint="chat", times=None)
    with pytest.raises(openai.APIStatusError):
        await sdk.chat.completions.create(model="grok-4", messages=HI)
    fake_grok.clear_faults()
    fake_grok.inject("idle_gap", endpoint="chat", after_lines=5, delay=15.0)
    request = asyncio.ensure_future(sdk.chat.completions.create(model="grok-4", messages=LONG))
    await eventually(lambda: _busy(gw, key))
    request.cancel()  # a client of a JSON answer goes away
    with pytest.raises(asyncio.CancelledError):
        await request
    await eventually(lambda: _idle(gw, key))
    assert (await sdk.chat.completions.create(model="grok-4", messages=HI)).choices


async def test_the_daily_quota_is_refunded_when_the_answer_failed(start_gateways: StartGateways,
                                                                  fake_grok: FakeGrok) -> None:
    (gw,) = await start_gateways()
    row, key = await gw.keys.create(limits={"chat_per_day": 1})
    sdk = gw.sdk(key)
    fake_grok.inject("server_error", endpoint="chat", times=None)
    for stream in (False, True):
        with pytest.raises(openai.APIStatusError) as caught:
            await sdk.chat.completions.create(model="grok-4", messages=HI, stream=stream)
        assert caught.value.status_code >= 500
    fake_grok.clear_faults()
    assert (await used(gw.keys, row["id"]))["chat"] == 0
    fake_grok.inject("drop", endpoint="chat", after_lines=6)  # the stream began, then Grok went away
    stream_ = await sdk.chat.completions.create(model="grok-4", messages=LONG, stream=True)
    with pytest.raises(openai.APIError):
        async for _ in stream_:
            pass
    assert (await used(gw.keys, row["id"]))["chat"] == 0
    assert (await sdk.chat.completions.create(model="grok-4", messages=HI)).choices
    assert (await used(gw.keys, row["id"]))["chat"] == 1
    with pytest.raises(openai.RateLimitError) as refused:
        await sdk.chat.completions.create(model="grok-4", messages=HI)
    assert error_of(refused.value)["code"] == "daily_quota_exceeded"


async def _known(gw: Gateway, key: str) -> bool:
    return await gw.keys.authenticate(key) is not None


def _in_flight(gw: Gateway, key: str) -> int:
    return gw.keys.in_flight(Identity(key_id(key), "", "managed"))


async def _idle(gw: Gateway, key: str) -> bool:
    return _in_flight(gw, key) == 0


async def _busy(gw: Gateway, key: str) -> bool:
    return _in_flight(gw, key) == 1
