#!/usr/bin/env python3
"""Instructions per chat request, counted by callgrind: the gateway against the fake serving directly.

    .venv/bin/python benchmarks/instructions.py            # about a minute; needs valgrind
    .venv/bin/python benchmarks/instructions.py --requests 1000

Timings on a shared machine vary by ±15 % from run to run, so a change worth a few
per cent cannot be seen in ``gateway.py``'s requests per second. Instructions executed
per request do not vary with the machine's load: this script counts them with
valgrind's callgrind, once for the gateway (the same processes and request as
``gateway.py``'s JSON run, the fake running natively) and once for the fake answering
the same request directly, with counting switched on after a warm-up. Both serve
concurrency 16. The ratio gateway/direct is the figure to compare between versions.

Two limits: the kernel's work (system calls) is not counted, and a process runs about
fifty times slower under callgrind, so work done on a timer (the pool's writer, the
request log, quota syncs) weighs more per request than at full speed.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
from gateway import ACCOUNTS, API_KEY, INFLIGHT_PER_ACCOUNT, Sample, Target, free_port, wait_ready

CONCURRENCY = 16
WARM_UP = 100
#: generous limits: the process under callgrind answers slowly
SLOW = {"GROK2API_GROK__FIRST_BYTE_TIMEOUT": "300", "GROK2API_GROK__IDLE_TIMEOUT": "300",
        "GROK2API_GROK__TIMEOUT": "600"}


async def send(once: Callable[[], Awaitable[Sample]], requests: int) -> None:
    left = requests

    async def worker() -> None:
        nonlocal left
        while left > 0:
            left -= 1
            await once()

    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))


async def count(process: subprocess.Popen[bytes], out: Path, once: Callable[[], Awaitable[Sample]],
                requests: int) -> int:
    """Instructions ``process`` (started under callgrind, counting off) spends on ``requests``."""
    await send(once, WARM_UP)
    subprocess.run(["callgrind_control", "-i", "on", str(process.pid)], check=True, capture_output=True)
    await send(once, requests)
    subprocess.run(["callgrind_control", "-i", "off", str(process.pid)], check=True, capture_output=True)
    process.terminate()
    process.wait(120)
    totals = [int(line.split()[1]) for path in out.parent.glob(out.name + "*")
              for line in path.read_text().splitlines() if line.startswith(("summary:", "totals:"))]
    return max(totals)


async def measure(args: argparse.Namespace, tmp: Path, env: dict[str, str], log: object) -> tuple[int, int]:
    me = [sys.executable, str(Path(__file__).with_name("gateway.py"))]

    def start(child: str, port: int, *extra: str, counted: Path | None = None) -> subprocess.Popen[bytes]:
        valgrind = ["valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={counted}"]
        return subprocess.Popen([*(valgrind if counted else []), *me, "--child", child, "--port", str(port), *extra],
                                env=env, stdout=log, stderr=log, cwd=tmp)

    results = []
    for through_gateway in (False, True):
        fake_port, gateway_port = free_port(), free_port()
        fake_url, gateway_url = f"http://127.0.0.1:{fake_port}", f"http://127.0.0.1:{gateway_port}"
        out = tmp / f"callgrind-{'gateway' if through_gateway else 'direct'}.out"
        fake = start("fake", fake_port, counted=None if through_gateway else out)
        gateway = start("gateway", gateway_port, "--fake-url", fake_url, counted=out) if through_gateway else None
        try:
            await wait_ready(fake_url + "/__fake__/requests", fake, 300)
            if gateway is not None:
                await wait_ready(gateway_url + "/health", gateway, 300)
            timeout = aiohttp.ClientTimeout(total=600)
            async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0), timeout=timeout) as session:
                target = Target(session, fake_url, gateway_url)
                if gateway is None:
                    results.append(await count(fake, out, target.direct, args.requests))
                else:
                    results.append(await count(gateway, out, functools.partial(target.gateway, False), args.requests))
        finally:
            for process in (gateway, fake):
                if process is not None and process.poll() is None:
                    process.terminate()
                    process.wait(120)
    return results[0], results[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=400, help="requests counted in each run (default 400)")
    args = parser.parse_args()
    if shutil.which("valgrind") is None:
        sys.exit("valgrind is needed: apt-get install valgrind")
    with tempfile.TemporaryDirectory(prefix="grok2api-instructions-") as name:
        tmp = Path(name)
        env = {**os.environ, **SLOW, "DATA_DIR": str(tmp / "data"), "LOG_LEVEL": "WARNING",
               "SERVER_STORAGE_TYPE": "local", "GROK2API_APP__API_KEY": API_KEY,
               "GROK2API_TOKEN__AUTO_REFRESH": "false",
               "GROK2API_TOKEN__MAX_INFLIGHT_PER_ACCOUNT": str(INFLIGHT_PER_ACCOUNT)}
        with open(tmp / "servers.log", "wb") as log:
            try:
                direct, gateway = asyncio.run(measure(args, tmp, env, log))
            except BaseException:
                sys.stderr.write((tmp / "servers.log").read_text(errors="replace")[-4000:])
                raise
    print(f"grok2api instruction counts: {args.requests} JSON chat requests at concurrency {CONCURRENCY}, "
          f"{len(ACCOUNTS)} accounts, SQLite storage")
    print(f"  fake answering directly  {direct / args.requests / 1000:8.0f} k instructions/request")
    print(f"  gateway                  {gateway / args.requests / 1000:8.0f} k instructions/request   "
          f"ratio {gateway / direct:5.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
