"""``grok2api smoke`` and the original's smoke test against a real ``grok2api serve`` in
front of the fake upstream; and what the command says when a check fails."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from grok2api.api import KEYS, POOL, Settings
from grok2api.cli.main import main
from grok2api.testing.engines import free_port
from grok2api.testing.fake_grok import FakeGrok
from grok2api.testing.pytest_plugin import GatewayFactory

ORIGINAL = Path(__file__).with_name("original_smoke.py")
KEY = "sk-smoke0123456789abcdef"


def run(*command: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(command), env=env, capture_output=True, text=True, timeout=120)


async def healthy(url: str) -> bool:
    try:
        async with aiohttp.ClientSession() as http, http.get(f"{url}/health") as resp:
            return resp.status == 200
    except aiohttp.ClientError:
        return False


@pytest.fixture
async def served(fake_grok: FakeGrok, tmp_path: Path) -> AsyncIterator[tuple[str, dict[str, str]]]:
    """A real ``grok2api serve`` (every installed plugin but the example) on a free port."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GROK2API_", "SERVER_"))}
    env.update(DATA_DIR=str(tmp_path / "data"), SERVER_HOST="127.0.0.1", GROK2API_DISABLE_PLUGINS="hello",
               GROK2API_GROK__BASE_URL=fake_grok.base_url, GROK2API_GROK__ASSETS_URL=fake_grok.assets_url,
               GROK2API_TOKEN__AUTO_REFRESH="false", LOG_LEVEL="WARNING")
    grok2api = (sys.executable, "-m", "grok2api")
    for command in (("tokens", "add", "acct-smoke-1", "acct-smoke-2"), ("keys", "create", "--name", "smoke",
                                                                       "--key", KEY)):
        done = await asyncio.to_thread(run, *grok2api, *command, env=env)
        assert done.returncode == 0, done.stderr
    proc = subprocess.Popen([*grok2api, "serve", "--port", str(port)], env=env, cwd=tmp_path,
                            stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while not await healthy(url):
            assert proc.poll() is None and time.monotonic() < deadline, "the gateway did not start"
            await asyncio.sleep(0.1)
        yield url, env
    finally:
        proc.terminate()
        await asyncio.to_thread(proc.wait, 30)
        assert proc.stderr is not None
        proc.stderr.close()


async def test_ours_and_the_originals_pass_against_a_served_gateway(
        served: tuple[str, dict[str, str]]) -> None:
    url, env = served
    ours = await asyncio.to_thread(run, sys.executable, "-m", "grok2api", "smoke", "--base-url", url,
                                   "--api-key", KEY, "--check-image-stream", env=env)
    assert ours.returncode == 0, ours.stdout + ours.stderr
    checks = re.findall(r"^ok +(.+?)  ", ours.stdout, re.MULTILINE)
    assert [c.strip() for c in checks] == ["health", "login page", "models", "chat", "chat stream", "image method",
                                          "image", "image stream"]
    assert "runtime python-aiohttp" in ours.stdout and ours.stdout.rstrip().endswith(f"smoke test passed: {url}")

    original = await asyncio.to_thread(run, sys.executable, str(ORIGINAL), "--check-image-stream",
                                       env={**env, "GROK2API_BASE_URL": url, "GROK2API_API_KEY": KEY})
    assert original.returncode == 0, original.stdout + original.stderr
    assert "runtime: python-aiohttp" in original.stdout and "smoke test passed" in original.stdout

    # without a key (the gateway has one, so it wants one): the /v1 checks are skipped, as the original did
    for command in ((sys.executable, "-m", "grok2api", "smoke"), (sys.executable, str(ORIGINAL))):
        done = await asyncio.to_thread(run, *command, env={**env, "GROK2API_BASE_URL": url})
        assert done.returncode == 0 and "skip" in done.stdout, done.stdout + done.stderr


async def smoke(*args: str) -> int:
    return await asyncio.to_thread(main, ["smoke", *args])


async def test_an_empty_base_url_is_a_usage_error(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert await smoke("--base-url", " ") == 2
    assert "--base-url" in capsys.readouterr().err
    done = await asyncio.to_thread(run, sys.executable, str(ORIGINAL), "--base-url", "")
    assert done.returncode == 2


@pytest.fixture
async def broken_login() -> AsyncIterator[str]:
    """A server whose health is fine and whose login page fails with a long body."""
    async def health(request: web.Request) -> web.Response:
        return web.json_response({"status": "healthy", "runtime": "other"})

    async def login(request: web.Request) -> web.Response:
        return web.Response(status=500, text="x" * 499 + "END" + "y" * 1000)

    app = web.Application()
    app.router.add_get("/health", health)
    app.router.add_get("/login", login)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    yield f"http://127.0.0.1:{server.port}"
    await server.close()


async def test_a_failed_check_shows_its_status_and_the_start_of_the_body(
        data_dir: Path, broken_login: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert await smoke("--base-url", broken_login) == 1
    err = capsys.readouterr().err
    assert "GET /login: HTTP 500: " + "x" * 499 + "E\n" in err
    done = await asyncio.to_thread(run, sys.executable, str(ORIGINAL), "--base-url", broken_login)
    assert done.returncode == 1 and "status=500" in done.stderr


async def test_an_unreachable_gateway_fails(data_dir: Path, fake_grok_refused_url: str,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    assert await smoke("--base-url", fake_grok_refused_url) == 1
    assert "GET /health: no answer from" in capsys.readouterr().err


async def test_a_failing_chat_fails_the_smoke_test(gateway: GatewayFactory, fake_grok: FakeGrok,
                                                   make_settings: Callable[..., Settings],
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    fake_grok.add_account("acct-fails")
    client: Any = await gateway("storage_local", "chat", "images", "admin",
                                settings=make_settings(grok=fake_grok.grok_settings()))
    await client.app[POOL].add(["acct-fails"])
    await client.app[KEYS].create(key=KEY, name="smoke")
    fake_grok.inject("server_error", endpoint="chat", times=None)
    assert await smoke("--base-url", str(client.make_url("")), "--api-key", KEY) == 1
    captured = capsys.readouterr()
    assert "ok    models" in captured.out
    assert re.search(r"POST /v1/chat/completions: HTTP 5\d\d: \{\"error\"", captured.err), captured.err
