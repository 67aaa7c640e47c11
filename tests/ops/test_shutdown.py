"""SIGTERM with streams in flight: a real ``grok2api serve`` stops accepting at once, lets
the streams finish within ``server.shutdown_grace_sec``, ends the ones still running with
an error event, and stores every request exactly once before it exits; a request not yet
answered at the deadline is a 503."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import openai
import orjson
from aiohttp import web

from grok2api import hookimpl
from grok2api.cli.serve import Drain
from grok2api.config.settings import load_settings
from grok2api.logs.request_log import ALL, STREAM, RequestLog
from grok2api.testing.engines import free_port, storage_factory
from grok2api.testing.fake_grok import FakeGrok
from grok2api.testing.openai_schema import validate
from grok2api.testing.pytest_plugin import load_plugin
from grok2api.web.app import create_app

GRACE = 4.0
FINISHING, STALLED = 6, 2
CHAT: dict[str, Any] = {"model": "grok-4", "messages": [{"role": "user", "content": "hi"}], "stream": True}


def cli(env: dict[str, str], *args: str) -> str:
    out = subprocess.run([sys.executable, "-m", "grok2api", *args], env=env, capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    return out.stdout


async def stream(client: openai.AsyncOpenAI, first: asyncio.Event) -> list[dict[str, Any]]:
    """Every event of one stream, each checked against OpenAI's schemas; ``[DONE]`` last."""
    events: list[dict[str, Any]] = []
    async with client.chat.completions.with_streaming_response.create(**CHAT) as response:
        assert response.status_code == 200
        async for line in response.iter_lines():
            if not line.startswith("data:"):
                continue
            first.set()
            data = line[5:].strip()
            if data == "[DONE]":
                events.append({"done": True})
                continue
            event = orjson.loads(data)
            validate("ErrorResponse" if "error" in event else "CreateChatCompletionStreamResponse", event)
            events.append(event)
    return events


async def refused(url: str) -> bool:
    try:
        async with aiohttp.ClientSession() as http, http.get(f"{url}/health") as resp:
            await resp.read()
            return False
    except aiohttp.ClientConnectionError:
        return True


async def until(check: Any, within: float) -> None:
    deadline = time.monotonic() + within
    while not await check():
        assert time.monotonic() < deadline, f"not seen within {within}s"
        await asyncio.sleep(0.1)


async def test_sigterm_drains_streams_then_ends_the_rest_and_loses_nothing(fake_grok: FakeGrok,
                                                                           tmp_path: Path) -> None:
    fake_grok.frame_delay = 0.25  # a stream takes about two seconds
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GROK2API_", "SERVER_"))}
    env.update(DATA_DIR=str(tmp_path / "data"), SERVER_HOST="127.0.0.1", GROK2API_DISABLE_PLUGINS="hello",
               GROK2API_GROK__BASE_URL=fake_grok.base_url, GROK2API_GROK__ASSETS_URL=fake_grok.assets_url,
               GROK2API_TOKEN__AUTO_REFRESH="false", GROK2API_SERVER__SHUTDOWN_GRACE_SEC=str(GRACE),
               LOG_LEVEL="WARNING")
    cli(env, "tokens", "add", *(f"acct-{i}" for i in range(4)))
    key = re.search(r"key: (\S+)", cli(env, "keys", "create", "--name", "ops")).group(1)  # type: ignore[union-attr]
    proc = subprocess.Popen([sys.executable, "-m", "grok2api", "serve", "--port", str(port)], env=env,
                            cwd=tmp_path, stderr=subprocess.PIPE)
    client = openai.AsyncOpenAI(base_url=f"{url}/v1", api_key=key, max_retries=0, timeout=60)
    try:
        await until(lambda: _healthy(url), within=60)
        # these two go silent upstream after their first lines: the deadline ends them
        fake_grok.inject("idle_gap", endpoint="chat", delay=120, after_lines=4, times=STALLED)
        stalled_first = [asyncio.Event() for _ in range(STALLED)]
        stalled = [asyncio.create_task(stream(client, first)) for first in stalled_first]
        await asyncio.wait_for(asyncio.gather(*(first.wait() for first in stalled_first)), 30)
        finishing_first = [asyncio.Event() for _ in range(FINISHING)]
        finishing = [asyncio.create_task(stream(client, first)) for first in finishing_first]
        await asyncio.wait_for(asyncio.gather(*(first.wait() for first in finishing_first)), 30)

        signalled = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        await until(lambda: refused(url), within=2)  # no new connection while the old ones drain
        finished = await asyncio.wait_for(asyncio.gather(*finishing), GRACE)
        assert time.monotonic() - signalled < GRACE
        ended = await asyncio.wait_for(asyncio.gather(*stalled), GRACE + 10)
        assert time.monotonic() - signalled >= GRACE
        status = await asyncio.to_thread(proc.wait, 30)
    finally:
        await client.close()
        if proc.poll() is None:
            proc.kill()
        assert proc.stderr is not None
        log = proc.stderr.read().decode()
    assert status == 0, log

    for events in finished:  # whole answers: text, a stop, [DONE]
        assert events[-1] == {"done": True} and events[-2]["choices"][0]["finish_reason"] == "stop"
        assert not any("error" in e for e in events)
    for events in ended:  # cut at the deadline: an error event, then [DONE]
        assert events[-1] == {"done": True}
        assert events[-2]["error"]["code"] == "shutting_down", events[-2]
    assert "shutdown: ending 2 request(s) still running" in log

    # every request stored once, after the gateway is gone: the log, the hourly counts, the key's usage
    settings = load_settings(server={"storage_type": "local"}, data_dir=tmp_path / "data")
    storage = storage_factory("local")(settings)
    await storage.open()
    try:
        entries = [e.data for e in await storage.read_log(STREAM, limit=100)]
        counts = [c[ALL] for c in (await RequestLog(storage).stats()).values()]
    finally:
        await storage.close()
    chats = [e for e in entries if e["path"] == "/v1/chat/completions"]
    assert sorted(e["status"] for e in chats) == [200] * (FINISHING + STALLED), entries
    assert sum(c["requests"] for c in counts) == sum(c["ok"] for c in counts) == FINISHING + STALLED
    (row,) = [orjson.loads(line) for line in cli(env, "keys", "list", "--json").splitlines() if line.strip()]
    assert row["usage_today"]["chat_used"] == FINISHING + STALLED
    accounts = [orjson.loads(line) for line in cli(env, "tokens", "list", "--json").splitlines() if line.strip()]
    assert sum(a["use_count"] for a in accounts) == FINISHING  # a use is an answer Grok finished: not the cut two


async def _healthy(url: str) -> bool:
    try:
        async with aiohttp.ClientSession() as http, http.get(f"{url}/health") as resp:
            return resp.status == 200
    except aiohttp.ClientError:
        return False


class SlowRoutes:
    """Two handlers that outlive any grace period: one not yet answered, one streaming."""

    plugin_name = "slow"

    @hookimpl
    def grok2api_add_routes(self, app: web.Application) -> list[web.AbstractRouteDef]:
        async def unanswered(request: web.Request) -> web.StreamResponse:
            await asyncio.sleep(60)
            return web.json_response({})

        async def streaming(request: web.Request) -> web.StreamResponse:
            response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
            await response.prepare(request)
            await response.write(b'data: {"partial": true}\n\n')
            await asyncio.sleep(60)
            return response

        return [web.get("/slow/unanswered", unanswered), web.get("/slow/streaming", streaming)]


async def test_at_the_deadline_an_unanswered_request_is_a_503_and_a_stream_ends_with_an_error(
        aiohttp_client: Any, make_settings: Any) -> None:
    app = create_app(make_settings(), [load_plugin("storage_local"), SlowRoutes()], load_entrypoints=False)
    drain = Drain(grace=0.3)
    drain.install(app)
    client = await aiohttp_client(app)
    unanswered = asyncio.create_task(client.get("/slow/unanswered"))
    streaming = await client.get("/slow/streaming")
    assert await streaming.content.readline() == b'data: {"partial": true}\n'
    while len(drain.tasks) < 2:
        await asyncio.sleep(0.01)
    await drain.drain(app)  # what aiohttp's on_shutdown runs once the listener is closed
    first = await unanswered
    assert first.status == 503 and first.headers["Retry-After"] == "1"
    body = await first.json()
    validate("ErrorResponse", body)
    assert body["error"]["code"] == "shutting_down"
    rest = (await streaming.read()).decode()
    events = [line[6:] for line in rest.splitlines() if line.startswith("data: ")]
    assert events[-1] == "[DONE]" and orjson.loads(events[-2])["error"]["code"] == "shutting_down"
    validate("ErrorResponse", orjson.loads(events[-2]))
