"""The fake run from the command line, driven through its control API."""

from __future__ import annotations

import asyncio
import socket
import sys
from collections.abc import AsyncIterator, Callable

import aiohttp
import pytest
import pytest_asyncio

from grok2api.config.settings import Settings
from grok2api.testing.fake_grok.__main__ import main
from grok2api.upstream import ChatRequest, Failure, GrokClient, UpstreamError

from .support import FAST_TIMEOUTS


@pytest_asyncio.fixture
async def standalone() -> AsyncIterator[str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "grok2api.testing.fake_grok", "--port", str(port), "--frame-delay", "0",
        "--account", "tok-super:super", "--account", "tok-basic", stdout=asyncio.subprocess.PIPE)
    assert process.stdout is not None
    line = (await asyncio.wait_for(process.stdout.readline(), 20)).decode()
    assert f"grok.base_url = http://127.0.0.1:{port}" in line
    assert f"grok.assets_url = http://127.0.0.1:{port}/assets" in line
    yield f"http://127.0.0.1:{port}"
    process.terminate()
    await process.wait()


async def test_standalone_fake(standalone: str, make_settings: Callable[..., Settings]) -> None:
    client = GrokClient(make_settings(grok={"base_url": standalone, "assets_url": standalone + "/assets",
                                            **FAST_TIMEOUTS}))
    try:
        assert (await client.rate_limits("tok-super", "grok-3")).total == 140
        assert (await client.rate_limits("tok-basic", "grok-3")).total == 80
        with pytest.raises(UpstreamError) as caught:
            await client.rate_limits("unknown", "grok-3")
        assert caught.value.failure is Failure.INVALID_CREDENTIALS
        async with aiohttp.ClientSession() as http:
            answer = await http.post(standalone + "/__fake__/faults", json={"kind": "blocked", "account": "tok-basic"})
            assert answer.status == 200
            assert (await http.post(standalone + "/__fake__/faults", json={"kind": "nonsense"})).status == 400
            with pytest.raises(UpstreamError) as caught:
                [e async for e in client.chat("tok-basic", ChatRequest("grok-3", "MODEL_MODE_FAST", "hi"))]
            assert caught.value.failure is Failure.BLOCKED
            created = await (await http.post(standalone + "/__fake__/accounts", json={"sso": "new"})).json()
            assert created["tier"] == "basic" and created["user_id"]
            requests = await (await http.get(standalone + "/__fake__/requests")).json()
            assert [r["endpoint"] for r in requests] == ["rate_limits", "rate_limits", "rate_limits", "chat"]
            assert requests[-1]["json"]["message"] == "hi"
    finally:
        await client.close()


def test_main_rejects_bad_arguments(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--statsig", "sometimes"])
    assert "--statsig" in capsys.readouterr().err
