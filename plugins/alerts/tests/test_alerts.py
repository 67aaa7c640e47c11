"""Alerts end to end: the gateway in front of the fake upstream, a webhook receiver on
loopback, each kind raised by what really happens (accounts Grok refuses, failing
upstream calls, a video job moderation refuses), each format's body, deduplication
across workers, the rate limit, and the private-address guard.

The monitor's background round waits an hour here; tests run its checks themselves
and wait for the sender's queue to empty, so nothing depends on timing.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from loguru import logger

from grok2api.api import POOL, ConfigError, Settings, create_app, mask_secret
from grok2api.testing.fake_grok import FakeGrok
from grok2api.testing.pytest_plugin import GatewayFactory, load_plugin
from grok2api_plugins.admin.tests.support import PLUGINS as ADMIN
from grok2api_plugins.admin.tests.support import auth, body_of, changed
from grok2api_plugins.alerts.running import MONITOR, SENDER
from grok2api_plugins.chat.tests.support import FAST_TIMEOUTS

Client = TestClient[web.Request, web.Application]
BOT = "123456:SECRET-bot-token"
CHAT = {"model": "grok-4", "messages": [{"role": "user", "content": "hi"}]}


@dataclass
class Receiver:
    """A webhook receiver: records every POST; ``status`` is what it answers."""

    server: TestServer | None = None
    posts: list[tuple[str, Any]] = field(default_factory=list)
    status: int = 200
    hang: asyncio.Event | None = None

    @property
    def base(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.port}"

    def bodies(self, path: str) -> list[Any]:
        return [body for at, body in self.posts if at == path]


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    seen = Receiver()

    async def record(request: web.Request) -> web.Response:
        seen.posts.append((request.path, await request.json()))
        if seen.hang is not None:
            await seen.hang.wait()
        return web.json_response({"ok": True}, status=seen.status)

    app = web.Application()
    app.router.add_post("/{tail:.*}", record)
    seen.server = TestServer(app, host="127.0.0.1")
    await seen.server.start_server()
    yield seen
    if seen.hang is not None:
        seen.hang.set()
    await seen.server.close()


def toml_value(value: Any) -> str:
    return json.dumps(value) if not isinstance(value, bool) else str(value).lower()


def write_config(data_dir: Path, alerts: dict[str, Any], webhooks: list[dict[str, Any]],
                 video: dict[str, Any] | None = None) -> None:
    lines = ["[alerts]", "check_interval_sec = 3600"]
    lines += [f"{key} = {toml_value(value)}" for key, value in alerts.items()]
    for hook in webhooks:
        lines.append("[[alerts.webhooks]]")
        lines += [f"{key} = {toml_value(value)}" for key, value in hook.items()]
    if video:
        lines.append("[video]")
        lines += [f"{key} = {toml_value(value)}" for key, value in video.items()]
    (data_dir / "config.toml").write_text("\n".join(lines) + "\n")


Start = Callable[..., Any]


@pytest.fixture
def start(gateway: GatewayFactory, fake_grok: FakeGrok, make_settings: Callable[..., Settings], data_dir: Path,
          receiver: Receiver) -> Start:
    """``await start(accounts, alerts={...}, webhooks=[...])``: a gateway whose pool holds ``accounts``."""

    async def make(accounts: list[str], *, alerts: dict[str, Any] | None = None,
                   webhooks: list[dict[str, Any]] | None = None, plugins: tuple[str, ...] = ("chat",),
                   video: dict[str, Any] | None = None) -> Client:
        hooks = webhooks if webhooks is not None else [{"url": receiver.base + "/json", "allow_private": True}]
        write_config(data_dir, alerts or {}, hooks, video)
        for token in accounts:
            fake_grok.add_account(token)
        settings = make_settings(grok={**fake_grok.grok_settings(), **FAST_TIMEOUTS})
        client: Client = await gateway("storage_local", *plugins, "alerts", settings=settings)
        await client.app[POOL].add(accounts)
        await check(client)  # the baseline: the pool as it was before the test did anything
        return client

    return make


async def check(client: Client) -> None:
    """One round of the monitor, and every alert it raised sent."""
    await client.app[MONITOR].check()
    await client.app[SENDER].queue.join()


async def chat(client: Client) -> int:
    resp = await client.post("/v1/chat/completions", json=CHAT)
    await resp.read()
    return resp.status


def kinds(receiver: Receiver, path: str = "/json") -> list[str]:
    return [body["kind"] for body in receiver.bodies(path)]


@pytest.fixture
def warnings() -> Iterator[list[str]]:
    lines: list[str] = []
    sink = logger.add(lines.append, format="{message}", level="WARNING")
    yield lines
    logger.remove(sink)


async def test_every_format_gets_its_body(start: Start, fake_grok: FakeGrok, receiver: Receiver) -> None:
    base = receiver.base
    client = await start(["acct-only"], alerts={"account_expired": False}, webhooks=[
        {"url": f"{base}/json", "allow_private": True},
        {"url": f"{base}/slack/T000/B000/XXXX", "format": "slack", "allow_private": True},
        {"url": f"{base}/discord/api/webhooks/1/tok", "format": "discord", "allow_private": True},
        {"url": f"{base}/bot{BOT}/sendMessage", "format": "telegram", "chat_id": "-1001234", "allow_private": True},
    ])
    fake_grok.inject("blocked", account="acct-only", endpoint="chat")
    assert await chat(client) == 502
    await check(client)

    [generic] = receiver.bodies("/json")
    assert set(generic) == {"kind", "severity", "message", "details", "at"}
    assert generic["kind"] == "accounts_low" and generic["severity"] == "critical"
    assert generic["details"] == {"usable": 0, "accounts": 1, "share": 0.0, "threshold": 0.5}
    assert generic["message"].startswith("Only 0 of 1 accounts can serve") and generic["at"].endswith("Z")
    text = f"[grok2api critical] {generic['message']}"
    assert receiver.bodies("/slack/T000/B000/XXXX") == [{"text": text}]
    assert receiver.bodies("/discord/api/webhooks/1/tok") == [{"content": text}]
    assert receiver.bodies(f"/bot{BOT}/sendMessage") == [{"chat_id": "-1001234", "text": text}]


async def test_an_expired_account_is_named_once(start: Start, fake_grok: FakeGrok, receiver: Receiver) -> None:
    client = await start(["acct-one", "acct-two"], alerts={"usable_share_below": 0})
    fake_grok.inject("blocked", account="acct-one", endpoint="chat")
    fake_grok.inject("blocked", account="acct-two", endpoint="chat")
    assert await chat(client) == 502  # both refused: the pool tried each
    await check(client)
    await check(client)

    [alert] = receiver.bodies("/json")
    assert alert["kind"] == "account_expired" and alert["severity"] == "warning"
    assert alert["details"]["count"] == 2
    assert set(alert["details"]["accounts"]) == {mask_secret("acct-one"), mask_secret("acct-two")}
    assert "acct-one" not in json.dumps(alert)


async def test_upstream_error_rate(start: Start, fake_grok: FakeGrok, receiver: Receiver) -> None:
    client = await start(["acct-a", "acct-b"], alerts={
        "usable_share_below": 0, "account_expired": False, "error_rate_above": 0.5, "error_min_requests": 4})
    assert await chat(client) == 200
    fake_grok.inject("server_error", endpoint="chat", times=None)
    for _ in range(2):
        assert await chat(client) != 200
    await check(client)
    assert receiver.posts == []  # three requests are fewer than error_min_requests
    assert await chat(client) != 200  # 429 once every account cools down: the pool in front of Grok
    await check(client)

    [alert] = receiver.bodies("/json")
    assert alert["kind"] == "upstream_errors" and alert["severity"] == "critical"
    details = alert["details"]
    assert details["requests"] == 4 and details["failed"] == 3 and details["rate"] == 0.75
    assert sum(details["codes"].values()) == 3


async def test_a_failed_job(start: Start, receiver: Receiver) -> None:
    client = await start(["acct-video"], plugins=("chat", "video"), video={"job_poll_sec": 0.05},
                         alerts={"usable_share_below": 0})
    created = await client.post("/v1/videos", json={"prompt": "[moderate] no"})
    assert created.status == 200
    video_id = (await created.json())["id"]
    async with asyncio.timeout(30):
        while (await (await client.get(f"/v1/videos/{video_id}")).json())["status"] != "failed":
            await asyncio.sleep(0.05)
    await check(client)

    [alert] = receiver.bodies("/json")
    assert alert["kind"] == "job_failed"
    assert alert["details"]["job"] == video_id and alert["details"]["namespace"] == "video_jobs"
    assert "moderation" in alert["details"]["reason"]


async def test_one_worker_of_several_sends_and_the_rate_limit_holds(
        start: Start, fake_grok: FakeGrok, receiver: Receiver, make_settings: Callable[..., Settings],
        aiohttp_client: Any) -> None:
    tokens = ["acct-0", "acct-1", "acct-2"]
    client = await start(tokens, alerts={"usable_share_below": 0, "rate_limit": 2})
    pool = client.app[POOL]
    settings = make_settings(grok={**fake_grok.grok_settings(), **FAST_TIMEOUTS}, token={"reload_interval_sec": 0.05})
    other: Client = await aiohttp_client(create_app(  # a second worker on the same storage
        settings, [load_plugin("storage_local"), load_plugin("chat"), load_plugin("alerts")], load_entrypoints=False))
    await check(other)
    for token in tokens:  # one expiry at a time: three different alerts
        resting = [t for t in tokens if t != token and pool.get(t).status.value == "active"]
        for rest in resting:  # so the pool can only pick the account Grok refuses
            await pool.update(rest, status="disabled")
        fake_grok.inject("blocked", account=token, endpoint="chat")
        await chat(client)
        for rest in resting:
            await pool.update(rest, status="active")
        await pool.flush()
        async with asyncio.timeout(30):  # the second worker learns of it through the change feed
            while other.app[POOL].get(token).status.value != "expired":  # type: ignore[union-attr]
                await asyncio.sleep(0.02)
        await check(client)
        await check(other)

    sent = receiver.bodies("/json")
    assert [alert["kind"] for alert in sent] == ["account_expired", "account_expired"]
    assert [list(alert["details"]["accounts"]) for alert in sent] == [[mask_secret("acct-0")],
                                                                       [mask_secret("acct-1")]]


async def test_private_addresses_are_not_fetched_unless_allowed(start: Start, fake_grok: FakeGrok,
                                                                receiver: Receiver, warnings: list[str]) -> None:
    port = receiver.base.rsplit(":", 1)[1]
    client = await start(["acct-only"], alerts={"account_expired": False}, webhooks=[
        {"url": f"http://127.0.0.1:{port}/literal/{BOT}"},
        {"url": f"http://localhost:{port}/by-name/{BOT}"},
    ])
    fake_grok.inject("blocked", account="acct-only", endpoint="chat")
    await chat(client)
    await check(client)

    assert receiver.posts == []
    refused = [line for line in warnings if "not fetched" in line]
    assert len(refused) == 2 and "loopback" in refused[0] and "loopback" in refused[1]
    assert not any(BOT in line or "literal" in line for line in warnings)


async def test_failed_sends_are_logged_without_the_url_and_never_hold_up_requests(
        start: Start, fake_grok: FakeGrok, receiver: Receiver, warnings: list[str]) -> None:
    receiver.status = 500
    telegram = {"url": f"{receiver.base}/bot{BOT}/sendMessage", "format": "telegram", "chat_id": "42",
                "allow_private": True}
    client = await start(["acct-x", "acct-y"], webhooks=[telegram],
                         alerts={"account_expired": False, "timeout_sec": 0.2, "dedupe_sec": 0})
    fake_grok.inject("blocked", account="acct-x", endpoint="chat")
    fake_grok.inject("blocked", account="acct-y", endpoint="chat")
    assert await chat(client) == 502
    await check(client)
    assert any(f"{receiver.base}/… answered HTTP 500" in line for line in warnings)

    receiver.hang = asyncio.Event()  # the next alert's receiver never answers
    await client.app[MONITOR].check()  # the share is still low: without deduplication, sent again
    async with asyncio.timeout(30):
        while len(receiver.posts) < 2:
            await asyncio.sleep(0.01)
    assert await chat(client) == 503  # answered (no account is left) while the alert waits on its receiver
    await client.app[SENDER].queue.join()
    assert any("did not answer within 0.2 s" in line for line in warnings)
    assert not any(BOT in line for line in warnings)


async def test_refused_configuration(data_dir: Path, make_settings: Callable[..., Settings]) -> None:
    for hook, key in (({"url": "https://api.telegram.org/botX/sendMessage", "format": "telegram"},
                       "alerts.webhooks.0.chat_id"),
                      ({"url": "ftp://example.com/hook"}, "alerts.webhooks.0.url"),
                      ({"url": "https://example.com/hook", "format": "teams"}, "alerts.webhooks.0.format")):
        write_config(data_dir, {}, [hook])
        with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
            create_app(make_settings(), [load_plugin("storage_local"), load_plugin("alerts")],
                       load_entrypoints=False)


async def test_the_console_never_shows_the_webhooks(gateway: GatewayFactory, data_dir: Path,
                                                    make_settings: Callable[..., Settings]) -> None:
    write_config(data_dir, {}, [{"url": f"https://api.telegram.org/bot{BOT}/sendMessage", "format": "telegram",
                                 "chat_id": "42"}])
    client = await gateway(*ADMIN, "alerts", settings=make_settings())
    detail = await body_of(await client.get("/api/v1/admin/config?detail=1", headers=auth(await changed(client))))
    assert detail["fields"]["alerts.webhooks"]["secret"] is True
    assert BOT not in json.dumps(detail)
