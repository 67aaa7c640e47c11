"""Several workers: whichever one answers the scrape, it shows every worker's requests."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import openai
import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

from grok2api.testing.engines import free_port
from grok2api.testing.fake_grok import FakeGrok
from grok2api.testing.openai_schema import validate
from grok2api_plugins.metrics.workers import MULTIPROC_ENV, multiprocess_dir

TOKEN = "scrape-token-workers-01"
KEY = "sk-metricsworkers0123456789"
CHATS = 12


def test_serve_makes_a_private_folder_only_for_several_workers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(MULTIPROC_ENV, "")  # unset, as far as the plugin goes; the test's end restores it
    assert multiprocess_dir(1) is None and not os.environ[MULTIPROC_ENV]
    made = multiprocess_dir(3)
    assert made is not None and Path(made).is_dir() and os.environ[MULTIPROC_ENV] == made
    assert multiprocess_dir(3) == made  # a worker inherits the parent's folder
    monkeypatch.setenv(MULTIPROC_ENV, "/srv/metrics")
    assert multiprocess_dir(1) == "/srv/metrics"  # the operator's folder wins


async def chat(url: str) -> None:
    """One chat on a connection of its own, so that the kernel spreads them over the workers."""
    async with openai.AsyncOpenAI(base_url=f"{url}/v1", api_key=KEY, max_retries=0, timeout=30) as sdk:
        raw = await sdk.chat.completions.with_raw_response.create(
            model="grok-3", messages=[{"role": "user", "content": "hi"}])
        validate("CreateChatCompletionResponse", orjson.loads(raw.content))


async def chats_counted(url: str) -> float:
    async with aiohttp.ClientSession() as http, http.get(
            f"{url}/metrics", headers={"Authorization": f"Bearer {TOKEN}", "Connection": "close"}) as resp:
        assert resp.status == 200
        text = await resp.text()
    return sum(s.value for family in text_string_to_metric_families(text) for s in family.samples
               if s.name == "grok2api_requests_total" and s.labels["route"] == "/v1/chat/completions"
               and s.labels["status"] == "200")


async def test_every_scrape_shows_the_whole_process_group(fake_grok: FakeGrok, tmp_path: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    shared = tmp_path / "prometheus"
    shared.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GROK2API_", "SERVER_", MULTIPROC_ENV))}
    env.update(DATA_DIR=str(tmp_path / "data"), SERVER_HOST="127.0.0.1", GROK2API_DISABLE_PLUGINS="hello",
               GROK2API_GROK__BASE_URL=fake_grok.base_url, GROK2API_GROK__ASSETS_URL=fake_grok.assets_url,
               GROK2API_TOKEN__AUTO_REFRESH="false", GROK2API_METRICS__TOKEN=TOKEN, GROK2API_APP__API_KEY=KEY,
               # the kernel spreads connections at random: one worker may hold 9 or more of the
               # 11 chats at once, past 2 accounts x 4 in flight, and would rightly answer 429
               GROK2API_TOKEN__MAX_INFLIGHT_PER_ACCOUNT=str(CHATS),
               LOG_LEVEL="WARNING", PROMETHEUS_MULTIPROC_DIR=str(shared))
    subprocess.run([sys.executable, "-m", "grok2api", "tokens", "add", "acct-1", "acct-2"], env=env, check=True,
                   capture_output=True, timeout=60)
    proc = subprocess.Popen([sys.executable, "-m", "grok2api", "serve", "--port", str(port), "--workers", "2"],
                            env=env, cwd=tmp_path)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                await chat(url)
                break
            except openai.APIConnectionError:
                assert time.monotonic() < deadline, "the gateway did not start"
                await asyncio.sleep(0.3)
        await asyncio.gather(*(chat(url) for _ in range(CHATS - 1)))
        counted = [await chats_counted(url) for _ in range(8)]
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    assert counted == [CHATS] * 8
    writers = {p.stem.rsplit("_", 1)[1] for p in shared.glob("counter_*.db")}
    assert len(writers) >= 2, writers  # both workers counted requests, and every scrape summed them
