#!/usr/bin/env python3
"""What the gateway adds: one chat request sent straight to the fake Grok and through the gateway.

    .venv/bin/python benchmarks/gateway.py            # about a minute
    .venv/bin/python benchmarks/gateway.py --quick    # a smoke run
    .venv/bin/python benchmarks/gateway.py --workers 2  # the gateway in two processes
    .venv/bin/python benchmarks/gateway.py --latency  # answers that take about 3 s, as Grok's do

Three processes on loopback: the fake Grok upstream (no frame delay, statsig check off,
accounts with unlimited quota), the gateway (built as ``grok2api serve`` builds it, with
the plugins grok2api ships (others installed, such as the example plugin, are disabled),
SQLite storage in a temporary directory, log level WARNING; ``--workers`` processes
sharing its port, as ``server.workers`` runs them) and this
load generator (aiohttp). The direct run posts the very request the gateway's Grok client
sends to ``conversations/new``, its body and its browser headers (made before the clock
starts, one set per account), and reads the NDJSON answer; the gateway run posts an
OpenAI chat-completions request for ``grok-3`` with the same prompt. Each run is
measured at concurrency 1 and 64, as a JSON answer and as a stream, after a warm-up at
the same concurrency. The direct, JSON and stream runs of one concurrency take turns in
``ROUNDS`` rounds and each figure pools its rounds, so the machine's drift during the
script (about ±15 % here) weighs on the baseline and the gateway alike.

With ``--latency`` the fake answers as Grok does, in seconds rather than microseconds: it
waits ``LATENCY_FIRST_BYTE`` before its status line and ``LATENCY_FRAME_DELAY`` between the
12 lines of the answer (about 3 s in all); the runs are at concurrency 1, 64 and 512, with
one wave of warm-up each and the workers' starts spread over one answer time (answers of
equal length would otherwise arrive in waves of the whole concurrency at once); the memory
run is left out.

After the latency runs, ``/metrics`` is scraped: its request counter must show every
chat request the load generator saw answered.

Reported per run: latency p50/p99 (until the answer is complete), time to first token
(first answer text) for streams, requests per second; and the added latency, added
time to first token and the gateway/direct ratios. Memory: resident-set growth of the
serving process while N streams are held open mid-answer (the fake pauses them after
the first word), scaled to 1,000 streams, gateway against fake-serving-direct.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path

import aiohttp
import orjson

MODEL, UPSTREAM_MODEL, UPSTREAM_MODE = "grok-3", "grok-3", "MODEL_MODE_GROK_3"
PROMPT = "Say hello in five words"
API_KEY = "sk-benchmark-0123456789abcdef"
METRICS_TOKEN = "benchmark-metrics-token"
ACCOUNTS = [f"bench-account-{i:02d}" for i in range(20)]
#: sized for 1,000 held streams: the pool's in-flight cap and the client's connection cap
INFLIGHT_PER_ACCOUNT = 64
UPSTREAM_CONNECTIONS = 1200
HOLD_SECONDS = 4.0
ROUNDS = 4
#: --latency: the fake's wait before it answers and between the lines of an answer (seconds)
LATENCY_FIRST_BYTE = 0.8
LATENCY_FRAME_DELAY = 0.2
LATENCY_ANSWER = LATENCY_FIRST_BYTE + 11 * LATENCY_FRAME_DELAY  # the answer has 12 lines


# -- the two servers (run as child processes of this script) ------------------------------

def serve_fake(port: int, latency: bool) -> None:
    from grok2api.testing.fake_grok import FakeGrok

    async def main() -> None:
        async with FakeGrok(port=port, statsig="off", frame_delay=LATENCY_FRAME_DELAY if latency else 0.0) as fake:
            for token in ACCOUNTS:
                fake.add_account(token, tier="super", limits={UPSTREAM_MODEL: 10**9})
            if latency:
                fake.inject("slow_first_byte", endpoint="chat", times=None, delay=LATENCY_FIRST_BYTE)
            await asyncio.Event().wait()

    asyncio.run(main())


def serve_gateway(port: int, fake_url: str) -> None:
    from grok2api.cli.serve import run_server
    from grok2api.config.settings import load_settings
    from grok2api.logs.logger import setup_logging
    from grok2api.testing.seed import SeedAccounts
    from grok2api.web.app import create_app

    settings = load_settings()
    settings.plugins.disabled += [ep.name for ep in entry_points(group="grok2api")
                                  if ep.dist is None or ep.dist.name != "grok2api"]
    settings.grok = settings.grok.model_validate({**settings.grok.model_dump(), "base_url": fake_url,
                                                  "assets_url": fake_url + "/assets"})
    settings.server.host, settings.server.port = "127.0.0.1", port
    setup_logging(settings.log_level)
    run_server(create_app(settings, [SeedAccounts(ACCOUNTS)]), settings, reuse_port=True)


# -- measuring -------------------------------------------------------------------------------

@dataclass
class Sample:
    total: float
    first_token: float | None


@dataclass
class Run:
    label: str
    samples: list[Sample]
    wall: float
    cpu: dict[str, float]  # CPU milliseconds per request, by process

    def cpu_text(self) -> str:
        return ", ".join(f"{name} {ms:.2f}" for name, ms in self.cpu.items() if ms >= 0.005)

    def pct(self, q: float, first: bool = False) -> float:
        values = sorted(s.first_token if first else s.total for s in self.samples
                        if not first or s.first_token is not None)
        return values[min(len(values) - 1, int(q * len(values)))] * 1000

    @property
    def rps(self) -> float:
        return len(self.samples) / self.wall

    @classmethod
    def pooled(cls, runs: list[Run]) -> Run:
        """One run made of several rounds: their samples, wall time and CPU together."""
        count = sum(len(run.samples) for run in runs)
        cpu = {name: sum(run.cpu[name] * len(run.samples) for run in runs) / count for name in runs[0].cpu}
        return cls(runs[0].label, [s for run in runs for s in run.samples], sum(run.wall for run in runs), cpu)


class Target:
    """One way of asking: ``once`` returns (total seconds, seconds to first answer text)."""

    def __init__(self, session: aiohttp.ClientSession, direct_url: str, gateway_url: str) -> None:
        from grok2api.config.settings import GrokSettings
        from grok2api.upstream import ChatRequest, Dialect
        from grok2api.upstream.headers import api_headers, statsig_id

        self.session = session
        self.direct_url = direct_url + "/rest/app-chat/conversations/new"
        self.gateway_url = gateway_url + "/v1/chat/completions"
        dialect = Dialect()
        call = dialect.chat_call(ChatRequest(UPSTREAM_MODEL, UPSTREAM_MODE, PROMPT), temporary=True)
        self.direct_body = orjson.dumps(call.body)
        grok = GrokSettings(base_url=direct_url)
        self.direct_headers = [api_headers(grok, token, referer=call.referer, json_body=True,
                                           statsig=statsig_id(grok, dialect.statsig_prefix))
                               for token in ACCOUNTS]
        self._turn = 0
        self.answered = 0  # chat requests the gateway answered 200, warm-ups included

    async def direct(self) -> Sample:
        self._turn += 1
        headers = self.direct_headers[self._turn % len(ACCOUNTS)]
        started = time.perf_counter()
        first = None
        async with self.session.post(self.direct_url, data=self.direct_body, headers=headers) as response:
            assert response.status == 200, response.status
            async for line in response.content:
                if first is None and b'"messageTag":"final"' in line and b'"token":""' not in line:
                    first = time.perf_counter() - started
        return Sample(time.perf_counter() - started, first)

    async def gateway(self, stream: bool) -> Sample:
        body = orjson.dumps({"model": MODEL, "stream": stream, "messages": [{"role": "user", "content": PROMPT}]})
        headers = {"Content-Type": "application/json", "Authorization": f"Bearer {API_KEY}"}
        started = time.perf_counter()
        first = None
        async with self.session.post(self.gateway_url, data=body, headers=headers) as response:
            assert response.status == 200, (response.status, await response.text())
            self.answered += 1
            if not stream:
                answer = orjson.loads(await response.read())
                assert answer["choices"][0]["message"]["content"], answer
                return Sample(time.perf_counter() - started, None)
            async for line in response.content:
                if first is None and line.startswith(b"data: {") and b'"content":"' in line \
                        and b'"content":""' not in line:
                    first = time.perf_counter() - started
        return Sample(time.perf_counter() - started, first)


def cpu_seconds(pids: tuple[int, ...]) -> float:
    """User + system CPU time of these processes (of this one when there are none)."""
    if not pids:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return usage.ru_utime + usage.ru_stime
    ticks = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


async def measure(label: str, once: Callable[[], Awaitable[Sample]], requests: int, concurrency: int,
                  processes: dict[str, tuple[int, ...]], warm_up: int, stagger: float = 0.0) -> Run:
    """``stagger``: seconds between the workers' starts, so that answers of equal length do not
    arrive at the gateway in waves of ``concurrency`` at once."""
    samples: list[Sample] = []
    left = 0

    async def worker(n: int) -> None:
        nonlocal left
        await asyncio.sleep(n * stagger)
        while left > 0:
            left -= 1
            samples.append(await once())

    # warm-up at the measured concurrency, so every connection (client to server, and the
    # gateway's to the fake) is open before the clock starts; also caches, the pool's first writes
    left = warm_up
    await asyncio.gather(*(worker(n) for n in range(concurrency)))
    samples.clear()
    left = requests
    cpu_before = {name: cpu_seconds(pids) for name, pids in processes.items()}
    started = time.perf_counter()
    await asyncio.gather(*(worker(n) for n in range(concurrency)))
    wall = time.perf_counter() - started
    cpu = {name: (cpu_seconds(pids) - cpu_before[name]) * 1000 / requests for name, pids in processes.items()}
    return Run(label, samples, wall, cpu)


def rss_kib(pids: tuple[int, ...]) -> int:
    """Resident memory of these processes, summed."""
    total = 0
    for pid in pids:
        status = Path(f"/proc/{pid}/status").read_text()
        total += int(status.split("VmRSS:", 1)[1].split()[0])
    return total


async def held_memory(session: aiohttp.ClientSession, url: str, body: bytes, headers: Callable[[int], dict[str, str]],
                      pids: tuple[int, ...], streams: int, fake_url: str) -> float:
    """KiB the serving processes grow by per 1,000 streams held open at once."""
    fault = {"kind": "idle_gap", "endpoint": "chat", "after_lines": 4, "delay": HOLD_SECONDS, "times": streams}
    async with session.post(fake_url + "/__fake__/faults", json=fault) as response:
        assert response.status == 200
    await asyncio.sleep(0.5)
    before = rss_kib(pids)
    opened = 0
    all_open = asyncio.Event()
    peak = before

    async def hold(n: int) -> None:
        nonlocal opened
        async with session.post(url, data=body, headers=headers(n)) as response:
            assert response.status == 200, response.status
            async for line in response.content:
                if b"Echo" in line and opened < streams:
                    opened += 1
                    if opened == streams:
                        all_open.set()
                    break
            await response.read()

    tasks = [asyncio.create_task(hold(n)) for n in range(streams)]
    await asyncio.wait_for(all_open.wait(), HOLD_SECONDS + 20)
    for _ in range(5):
        peak = max(peak, rss_kib(pids))
        await asyncio.sleep(0.05)
    await asyncio.gather(*tasks)
    return (peak - before) * 1000 / streams


# -- orchestration -------------------------------------------------------------------------------

def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


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


def row(name: str, direct: Run, gateway: Run, stream: bool) -> list[str]:
    def compare(what: str, d: float, g: float, suffix: str = "") -> str:
        return (f"  {what:<11}  direct {d:7.2f} ms   gateway {g:7.2f} ms   added {g - d:+7.2f} ms   "
                f"ratio {g / d:5.2f}{suffix}")

    lines = [name,
             compare("latency p50", direct.pct(0.5), gateway.pct(0.5)),
             compare("latency p99", direct.pct(0.99), gateway.pct(0.99))]
    if stream:
        lines.append(compare("first token", direct.pct(0.5, first=True), gateway.pct(0.5, first=True), "  (p50)"))
    lines.append(f"  throughput   direct {direct.rps:7.1f} rps  gateway {gateway.rps:7.1f} rps  "
                 f"ratio {gateway.rps / direct.rps:5.2f}")
    lines.append(f"  CPU ms/request  direct: {direct.cpu_text()}   via gateway: {gateway.cpu_text()}")
    return lines


async def bench(args: argparse.Namespace, fake: subprocess.Popen[bytes], gateways: list[subprocess.Popen[bytes]],
                fake_url: str, gateway_url: str) -> list[str]:
    report = []
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=60)) as session:
        target = Target(session, fake_url, gateway_url)
        results: dict[tuple[str, int], tuple[Run, Run]] = {}
        gateway_pids = tuple(g.pid for g in gateways)
        processes = {"gateway": gateway_pids, "fake": (fake.pid,), "load generator": ()}
        kinds: dict[str, Callable[[], Awaitable[Sample]]] = {
            "direct": target.direct,
            "json": lambda: target.gateway(False),
            "stream": lambda: target.gateway(True),
        }
        for concurrency, requests in args.runs:
            rounds: dict[str, list[Run]] = {kind: [] for kind in kinds}
            warm_up = concurrency if args.latency else min(requests, max(20, 2 * concurrency))
            stagger = LATENCY_ANSWER / concurrency if args.latency else 0.0
            for _ in range(args.rounds):
                for kind, once in kinds.items():
                    rounds[kind].append(await measure(kind, once, requests // args.rounds, concurrency, processes,
                                                      warm_up, stagger))
            direct = Run.pooled(rounds["direct"])
            for mode in ("json", "stream"):
                gateway_run = Run.pooled(rounds[mode])
                results[(mode, concurrency)] = (direct, gateway_run)
                title = f"{mode:6} concurrency {concurrency:2} ({requests} requests in {args.rounds} rounds)"
                report += row(title, direct, gateway_run, mode == "stream")
        report.append(await scraped(session, gateway_url, target.answered))
        if args.latency:
            return report
        streams = args.streams
        body = orjson.dumps({"model": MODEL, "stream": True, "messages": [{"role": "user", "content": PROMPT}]})
        gateway_kib = await held_memory(session, gateway_url + "/v1/chat/completions", body,
                                        lambda n: {"Authorization": f"Bearer {API_KEY}",
                                                   "Content-Type": "application/json"},
                                        gateway_pids, streams, fake_url)
        direct_kib = await held_memory(session, target.direct_url, target.direct_body,
                                       lambda n: target.direct_headers[n % len(ACCOUNTS)],
                                       (fake.pid,), streams, fake_url)
        report.append(f"memory: {streams} streams held open, per 1,000 streams: gateway {gateway_kib / 1024:6.1f} MiB"
                      f"   fake serving them directly {direct_kib / 1024:6.1f} MiB"
                      f"   ratio {gateway_kib / max(direct_kib, 1):5.2f}")
        json_c1, json_c64 = results[("json", 1)], results[("json", 64)]
        added = json_c1[1].pct(0.5) - json_c1[0].pct(0.5)
        ratio = json_c64[1].rps / json_c64[0].rps
        report.append(f"targets: added p50 (json, c=1) {added:.2f} ms <= 2 ms: {'met' if added <= 2 else 'MISSED'};"
                      f"  rps ratio (json, c=64) {ratio:.2f} >= 0.50: {'met' if ratio >= 0.5 else 'MISSED'}")
    return report


async def scraped(session: aiohttp.ClientSession, gateway_url: str, answered: int) -> str:
    """What ``/metrics`` (the metrics plugin, scraped with its token) counted of the chat requests
    the load generator saw answered: with several workers, one scrape covers them all."""
    async with session.get(gateway_url + "/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}) as response:
        assert response.status == 200, (response.status, await response.text())
        text = await response.text()
    counted = sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                  if line.startswith("grok2api_requests_total{") and 'route="/v1/chat/completions"' in line
                  and 'status="200"' in line)
    return (f"/metrics: grok2api_requests_total counted {counted:.0f} answered chat requests of the {answered} "
            f"the load generator saw (ratio {counted / max(answered, 1):.3f})")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="few requests: a smoke run")
    parser.add_argument("--workers", type=int, default=1, help="gateway processes sharing its port (default 1)")
    parser.add_argument("--latency", action="store_true", help="the fake takes about 3 s per answer, as Grok does")
    parser.add_argument("--child", choices=["fake", "gateway"], help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--fake-url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child == "fake":
        serve_fake(args.port, args.latency)
        return 0
    if args.child == "gateway":
        serve_gateway(args.port, args.fake_url)
        return 0
    args.streams = 200 if args.quick else 1000
    if args.latency:
        args.runs, args.rounds = ([(1, 2), (64, 64)], 1) if args.quick else ([(1, 8), (64, 256), (512, 1024)], 2)
    else:
        args.runs, args.rounds = ([(1, 50), (64, 200)] if args.quick else [(1, 400), (64, 8000)]), ROUNDS
    args.streams = int(os.environ.get("BENCH_STREAMS", args.streams))

    fake_port, gateway_port = free_port(), free_port()
    fake_url, gateway_url = f"http://127.0.0.1:{fake_port}", f"http://127.0.0.1:{gateway_port}"
    with tempfile.TemporaryDirectory(prefix="grok2api-bench-") as tmp:
        env = {**os.environ, "DATA_DIR": str(Path(tmp) / "data"), "LOG_LEVEL": "WARNING",
               "SERVER_STORAGE_TYPE": "local", "GROK2API_APP__API_KEY": API_KEY,
               "GROK2API_TOKEN__AUTO_REFRESH": "false", "GROK2API_METRICS__TOKEN": METRICS_TOKEN,
               "GROK2API_TOKEN__MAX_INFLIGHT_PER_ACCOUNT": str(INFLIGHT_PER_ACCOUNT),
               "GROK2API_GROK__MAX_CONNECTIONS": str(UPSTREAM_CONNECTIONS)}
        logs = Path(os.environ.get("BENCH_LOG") or Path(tmp) / "servers.log")
        with open(logs, "wb") as log:
            me = [sys.executable, str(Path(__file__).resolve())]
            fake = subprocess.Popen([*me, "--child", "fake", "--port", str(fake_port),
                                     *(["--latency"] if args.latency else [])], env=env, stderr=log)
            gateways = [subprocess.Popen([*me, "--child", "gateway", "--port", str(gateway_port), "--fake-url",
                                          fake_url], env=env, stderr=log, cwd=tmp) for _ in range(args.workers)]
            try:
                asyncio.run(wait_ready(fake_url + "/__fake__/requests", fake))
                for gateway in gateways:
                    asyncio.run(wait_ready(gateway_url + "/health", gateway))
                report = asyncio.run(bench(args, fake, gateways, fake_url, gateway_url))
            except BaseException:
                sys.stderr.write(logs.read_text(errors="replace")[-4000:])
                raise
            finally:
                for process in (*gateways, fake):
                    process.terminate()
                for process in (*gateways, fake):
                    try:
                        process.wait(10)
                    except subprocess.TimeoutExpired:
                        process.kill()
    print(f"grok2api gateway benchmark: {os.cpu_count()} CPU(s), model {MODEL}, loopback; gateway defaults but "
          f"{len(ACCOUNTS)} accounts, token.max_inflight_per_account={INFLIGHT_PER_ACCOUNT}, "
          f"grok.max_connections={UPSTREAM_CONNECTIONS}, global API key, log level WARNING, "
          f"{args.workers} worker process(es)")
    if args.latency:
        print(f"fake Grok with realistic latency: {LATENCY_FIRST_BYTE:g} s to the first byte, "
              f"{LATENCY_FRAME_DELAY:g} s between lines")
    print("\n".join(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
