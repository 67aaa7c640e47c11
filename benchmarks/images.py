#!/usr/bin/env python3
"""What the images plugin adds: one generation of four pictures, straight to the fake Grok and through the gateway.

    .venv/bin/python benchmarks/images.py           # about a minute
    .venv/bin/python benchmarks/images.py --quick   # a smoke run

Processes on loopback: the fake Grok (statsig check off, accounts with unlimited
quota), one gateway per image method (``legacy`` and ``imagine_ws_experimental``, as
``grok2api serve`` builds it, SQLite in a temporary directory, log level WARNING) and
this load generator. The direct run does what the method does upstream for ``n = 4``:
``legacy`` posts two ``conversations/new`` image requests at once, reads their NDJSON and
downloads the four pictures with the account's cookie; the imagine method opens the
imagine WebSocket, asks for four pictures and reads the round to its last completion.
The gateway run posts ``/v1/images/generations`` with ``n = 4``, once with
``response_format = url`` and once with ``b64_json``. Each is measured at concurrency 1
and 16 after a warm-up; the direct and gateway runs of one concurrency take turns in
rounds so the machine's drift weighs on both alike.

Reported: latency p50/p99 of each run, the added latency (gateway minus direct) and the
ratio, the peak resident-memory growth of the serving process per request in flight
(the fake's in the direct run, the gateway's in the gateway run) with its ratio, and
the serving process's CPU time per request (on a shared machine the one figure other
load does not inflate). The
imagine pictures are ~80 KB, so four of them as ``b64_json`` are ~430 KB of base64: an
answer that held all four encoded (plus the JSON around them) at once would show here.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
import orjson

API_KEY = "sk-image-benchmark-0123456789"
ACCOUNTS = [f"image-bench-{i:02d}" for i in range(8)]
PROMPT = "a lighthouse at dusk"
METHODS = ("legacy", "imagine_ws_experimental")
FORMATS = ("url", "b64_json")
N = 4
ROUNDS = 3


# -- the servers (child processes of this script) --------------------------------------------

def serve_fake(port: int) -> None:
    from grok2api.testing.fake_grok import FakeGrok

    async def main() -> None:
        async with FakeGrok(port=port, statsig="off") as fake:
            for token in ACCOUNTS:
                fake.add_account(token, limits={"grok-3": 10**9})
            await asyncio.Event().wait()

    asyncio.run(main())


def serve_gateway(port: int, fake_url: str, method: str) -> None:
    from importlib.metadata import entry_points

    from grok2api.api import create_app, load_settings
    from grok2api.cli.serve import run_server
    from grok2api.logs.logger import setup_logging
    from grok2api.testing.seed import SeedAccounts
    from grok2api_plugins.images import hooks

    os.environ.update({"GROK2API_GROK__BASE_URL": fake_url, "GROK2API_GROK__ASSETS_URL": fake_url + "/assets",
                       "GROK2API_GROK__IMAGE_GENERATION_METHOD": method,
                       "GROK2API_APP__APP_URL": f"http://127.0.0.1:{port}"})
    settings = load_settings()
    settings.server.host, settings.server.port = "127.0.0.1", port
    setup_logging(settings.log_level)
    # the plugin's own entry point, or (in a checkout not reinstalled since it was added) its module
    seed = SeedAccounts(ACCOUNTS)
    plugins = [seed] if entry_points(group="grok2api", name="images") else [seed, hooks]
    run_server(create_app(settings, plugins), settings, announce=False)


# -- one request each way ------------------------------------------------------------------------

class Direct:
    """Grok's side of one generation, as the gateway's client would do it."""

    def __init__(self, session: aiohttp.ClientSession, fake_url: str) -> None:
        from grok2api.upstream.dialect import ChatRequest, Dialect

        self.session, self.fake_url = session, fake_url
        dialect = Dialect()
        call = dialect.chat_call(ChatRequest("grok-3", "MODEL_MODE_FAST", f"Image Generation: {PROMPT}",
                                             image_generation_count=2), temporary=True)
        self.chat_body = orjson.dumps(call.body)
        self.imagine = [orjson.dumps(m).decode() for m in dialect.imagine_messages(
            PROMPT, aspect_ratio="2:3", enable_nsfw=True, request_id="", timestamp_ms=0)]
        self.turn = 0

    def _cookie(self) -> dict[str, str]:
        self.turn += 1
        return {"Cookie": f"sso={ACCOUNTS[self.turn % len(ACCOUNTS)]}", "Content-Type": "application/json"}

    async def legacy(self) -> None:
        headers = self._cookie()

        async def chat() -> list[str]:
            async with self.session.post(self.fake_url + "/rest/app-chat/conversations/new", data=self.chat_body,
                                         headers=headers) as response:
                urls: list[str] = []
                async for line in response.content:
                    final = orjson.loads(line).get("result", {}).get("response", {}).get("modelResponse")
                    if final:
                        urls += final["generatedImageUrls"]
                return urls

        async def download(path: str) -> bytes:
            async with self.session.get(f"{self.fake_url}/assets/{path}", headers=headers) as response:
                return await response.read()

        paths = [p for urls in await asyncio.gather(chat(), chat()) for p in urls]
        assert len(paths) == N
        await asyncio.gather(*map(download, paths))

    async def imagine_ws_experimental(self) -> None:
        async with self.session.ws_connect(self.fake_url + "/ws/imagine/listen", headers=self._cookie()) as ws:
            for message in self.imagine:
                await ws.send_str(message)
            done = finals = 0
            async for frame in ws:
                data = orjson.loads(frame.data)
                done += data.get("current_status") == "completed"
                finals += data.get("type") == "image" and data.get("percentage_complete") == 100
                if done == N and finals == N:
                    return


async def through_gateway(session: aiohttp.ClientSession, url: str, fmt: str) -> None:
    body = orjson.dumps({"model": "grok-imagine-1.0", "prompt": PROMPT, "n": N, "response_format": fmt})
    async with session.post(url + "/v1/images/generations", data=body,
                            headers={"Authorization": f"Bearer {API_KEY}", "Content-Type": "application/json"}) as r:
        answer = await r.read()
        assert r.status == 200, answer[:300]
    assert len(orjson.loads(answer)["data"]) == N


# -- measuring ---------------------------------------------------------------------------------

def rss_kib(pid: int) -> int:
    return int(Path(f"/proc/{pid}/status").read_text().split("VmRSS:", 1)[1].split()[0])


def cpu_ms(pid: int) -> float:
    """User + system CPU time of a process: unlike latency, not inflated by other load on the machine."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * 1000 / os.sysconf("SC_CLK_TCK")


class Run:
    def __init__(self) -> None:
        self.latencies: list[float] = []
        self.peak_kib_per_request: list[float] = []
        self.cpu_ms = 0.0

    def percentile(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


async def measure(run: Run, once: Callable[[], Awaitable[None]], requests: int, concurrency: int, pid: int) -> None:
    """``requests`` calls, ``concurrency`` at a time, after a warm-up wave; the serving
    process's memory is sampled throughout."""
    left = concurrency

    async def worker() -> None:
        nonlocal left
        while left > 0:
            left -= 1
            started = time.perf_counter()
            await once()
            samples.append(time.perf_counter() - started)

    samples: list[float] = []
    await asyncio.gather(*(worker() for _ in range(concurrency)))  # warm-up
    samples.clear()
    before = peak = rss_kib(pid)
    cpu_before = cpu_ms(pid)
    left = requests
    workers = asyncio.gather(*(worker() for _ in range(concurrency)))
    while not workers.done():
        peak = max(peak, rss_kib(pid))
        await asyncio.sleep(0.005)
    await workers
    run.cpu_ms += cpu_ms(pid) - cpu_before
    run.latencies += samples
    run.peak_kib_per_request.append((peak - before) / concurrency)


def ratio(gateway: float, direct: float) -> str:
    return f"{gateway / direct:.2f}" if direct > 0 else "-"


async def bench(args: argparse.Namespace, fake_url: str, gateways: dict[str, str],
                pids: dict[str, int]) -> list[str]:
    lines = [f"{'method':24} {'format':8} {'c':>3} {'direct p50/p99 ms':>18} {'gateway p50/p99 ms':>19} "
             f"{'added p50/p99 ms':>17} {'p50 ratio':>9} {'KiB/req direct':>14} {'KiB/req gateway':>15} "
             f"{'mem ratio':>9} {'CPU ms/req direct/gateway':>25}"]
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=60)) as session:
        direct = Direct(session, fake_url)
        for method in METHODS:
            for concurrency, requests in args.runs:
                runs = {"direct": Run(), **{fmt: Run() for fmt in FORMATS}}
                for _ in range(args.rounds):
                    await measure(runs["direct"], getattr(direct, method), requests, concurrency, pids["fake"])
                    for fmt in FORMATS:
                        await measure(runs[fmt], functools.partial(through_gateway, session, gateways[method], fmt),
                                      requests, concurrency, pids[method])
                base = runs["direct"]
                base_memory = max(0.0, statistics.median(base.peak_kib_per_request))
                for fmt in FORMATS:
                    run = runs[fmt]
                    memory = max(0.0, statistics.median(run.peak_kib_per_request))
                    lines.append(
                        f"{method:24} {fmt:8} {concurrency:>3} "
                        f"{base.percentile(0.5):>8.1f}/{base.percentile(0.99):<9.1f} "
                        f"{run.percentile(0.5):>8.1f}/{run.percentile(0.99):<10.1f} "
                        f"{run.percentile(0.5) - base.percentile(0.5):>7.1f}/"
                        f"{run.percentile(0.99) - base.percentile(0.99):<9.1f} "
                        f"{ratio(run.percentile(0.5), base.percentile(0.5)):>9} {base_memory:>14.0f} "
                        f"{memory:>15.0f} {ratio(memory, base_memory) if base_memory >= 1 else '-':>9} "
                        f"{base.cpu_ms / len(base.latencies):>12.1f}/{run.cpu_ms / len(run.latencies):<12.1f}")
    return lines


# -- orchestration -----------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def wait_ready(url: str, process: subprocess.Popen[bytes], seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"{url}: server exited with {process.returncode}")
            with contextlib.suppress(aiohttp.ClientError):
                async with session.get(url) as response:
                    if response.status < 500:
                        return
            await asyncio.sleep(0.1)
    raise RuntimeError(f"{url}: not ready after {seconds} s")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="few requests: a smoke run")
    parser.add_argument("--child", choices=["fake", *METHODS], help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--fake-url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child == "fake":
        serve_fake(args.port)
        return 0
    if args.child:
        serve_gateway(args.port, args.fake_url, args.child)
        return 0
    args.runs, args.rounds = ([(1, 10), (16, 32)], 1) if args.quick else ([(1, 40), (16, 160)], ROUNDS)
    ports = {name: free_port() for name in ("fake", *METHODS)}
    urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    with tempfile.TemporaryDirectory(prefix="grok2api-images-bench-") as tmp:
        env = {**os.environ, "LOG_LEVEL": "WARNING", "SERVER_STORAGE_TYPE": "local",
               "GROK2API_APP__API_KEY": API_KEY, "GROK2API_TOKEN__AUTO_REFRESH": "false",
               "GROK2API_TOKEN__MAX_INFLIGHT_PER_ACCOUNT": "64"}
        logs = Path(tmp) / "servers.log"
        me = [sys.executable, str(Path(__file__).resolve())]
        processes: dict[str, subprocess.Popen[bytes]] = {}
        with open(logs, "wb") as log:
            processes["fake"] = subprocess.Popen([*me, "--child", "fake", "--port", str(ports["fake"])],
                                                 env=env, stderr=log)
            for method in METHODS:
                processes[method] = subprocess.Popen(
                    [*me, "--child", method, "--port", str(ports[method]), "--fake-url", urls["fake"]],
                    env={**env, "DATA_DIR": str(Path(tmp) / method)}, stderr=log, cwd=tmp)
            try:
                asyncio.run(wait_ready(urls["fake"] + "/__fake__/requests", processes["fake"]))
                for method in METHODS:
                    asyncio.run(wait_ready(urls[method] + "/health", processes[method]))
                report = asyncio.run(bench(args, urls["fake"], {m: urls[m] for m in METHODS},
                                           {name: p.pid for name, p in processes.items()}))
            except BaseException:
                sys.stderr.write(logs.read_text(errors="replace")[-4000:])
                raise
            finally:
                for process in processes.values():
                    process.terminate()
                for process in processes.values():
                    try:
                        process.wait(10)
                    except subprocess.TimeoutExpired:
                        process.kill()
    print(f"grok2api images benchmark: {os.cpu_count()} CPU(s), n={N}, {len(ACCOUNTS)} accounts, loopback, "
          f"log level WARNING; memory = peak RSS growth of the serving process per request in flight")
    print("\n".join(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
