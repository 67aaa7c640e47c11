#!/usr/bin/env python3
"""The admin API at 100,000 accounts, on SQLite and on PostgreSQL (issue 18, item 9).

    .venv-test/bin/python benchmarks/admin.py                    # both engines, about 5 minutes
    .venv-test/bin/python benchmarks/admin.py --engines local    # SQLite only
    .venv-test/bin/python benchmarks/admin.py --accounts 10000   # a smaller pool: a smoke run

Three processes on loopback, as ``benchmarks/gateway.py`` runs them: the fake Grok upstream
(every cookie accepted, no frame delay), the gateway (``grok2api serve``'s app with the
plugins grok2api ships, token auto-refresh off) and this client. PostgreSQL is the test
kit's server (``grok2api.testing.engines``: a fresh cluster with fsync off). Per engine:

* **import**: ``POST /api/v1/admin/tokens/import`` of that many TXT lines (``sso=…``, as
  long as real SSO cookies), until the report is back (target ≤ 15 s);
* **filtered page**: ``GET /tokens`` with a type, a status, a search and a sort, page 3 of
  50, p50 of ``SAMPLES`` calls (≤ 50 ms); **counts**: ``GET /tokens/counts``, p50 (≤ 100 ms);
* **export**: the full TXT and JSON exports (≤ 5 s);
* **start-up**: the gateway process started again on that pool, until ``/ready`` answers
  (the median of ``STARTS`` starts: one start varies by a fifth on a shared machine),
  the interpreter's start included, from bytecode caches as an installed gateway has them (≤ 3 s);
* **chat under a job**: non-stream chat requests per second at concurrency ``CHAT_CONCURRENCY``
  without a job, then while a refresh job over every account runs (the job's progress in
  the same window is shown, so a job that ended early is visible; a job counts an account
  once its chunk of 500 is through), their ratio, and then the job's own pace with no chat.

``BENCH_LOG_DIR=dir`` keeps the gateway's log files there.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from importlib.metadata import entry_points
from pathlib import Path

import aiohttp
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gateway import free_port, wait_ready  # noqa: E402  (a sibling script)

API_KEY = "sk-benchmark-admin-0123456789"
SAMPLES = 30
STARTS = 3
CHAT_CONCURRENCY = 16
CHAT_SECONDS = 15.0
JOB_ALONE_SECONDS = 20.0
TARGETS = {"import": 15.0, "page": 0.050, "counts": 0.100, "export": 5.0, "startup": 3.0}


def serve_fake(port: int) -> None:
    from grok2api.testing.fake_grok import FakeGrok

    async def main() -> None:
        async with FakeGrok(port=port, statsig="off"):  # no account registered: every cookie is accepted
            await asyncio.Event().wait()

    asyncio.run(main())


def p50(values: list[float]) -> float:
    return statistics.median(values)


def verdict(name: str, seconds: float) -> str:
    return "met" if seconds <= TARGETS[name] else "MISSED"


class Gateway:
    """The gateway as a child process on one storage engine."""

    def __init__(self, env: dict[str, str], port: int, log: Path) -> None:
        self.env, self.port, self.log = env, port, log
        self.url = f"http://127.0.0.1:{port}"
        self.process: subprocess.Popen[bytes] | None = None

    async def start(self) -> float:
        """Seconds from the spawn until ``/ready`` answers 200."""
        started = time.perf_counter()
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen([sys.executable, "-m", "grok2api", "serve"], env=self.env,
                                            stdout=log, stderr=log, cwd=self.env["DATA_DIR"])
        async with aiohttp.ClientSession() as session:
            while True:
                if self.process.poll() is not None:
                    tail = self.log.read_text(errors="replace")[-2000:]
                    raise RuntimeError(f"the gateway exited with {self.process.returncode}:\n{tail}")
                try:
                    async with session.get(self.url + "/ready") as response:
                        if response.status == 200:
                            return time.perf_counter() - started
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.02)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


async def timed(session: aiohttp.ClientSession, method: str, url: str, **kwargs: object) -> tuple[float, bytes]:
    started = time.perf_counter()
    async with session.request(method, url, **kwargs) as response:  # type: ignore[arg-type]
        body = await response.read()
        assert response.status < 300, (url, response.status, body[:300])
    return time.perf_counter() - started, body


async def chat_rps(session: aiohttp.ClientSession, url: str, seconds: float) -> float:
    """Answered chat requests per second over ``seconds`` at :data:`CHAT_CONCURRENCY`."""
    body = orjson.dumps({"model": "grok-3", "messages": [{"role": "user", "content": "Say hello"}]})
    headers = {"Authorization": f"Bearer {API_KEY}", "Content-Type": "application/json"}
    answered = 0
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal answered
        while time.perf_counter() < deadline:
            async with session.post(url + "/v1/chat/completions", data=body, headers=headers) as response:
                await response.read()
                assert response.status == 200, (response.status, await response.text())
                answered += 1

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(CHAT_CONCURRENCY)))
    return answered / (time.perf_counter() - started)


async def job_alone(session: aiohttp.ClientSession, job_url: str, headers: dict[str, str]) -> float:
    """Accounts the job syncs per second with no chat traffic, over :data:`JOB_ALONE_SECONDS`."""
    def moved(job: dict[str, int]) -> int:
        return job["done"] + job["failed"]

    first = orjson.loads((await timed(session, "GET", job_url, headers=headers))[1])["job"]
    started = time.perf_counter()
    await asyncio.sleep(JOB_ALONE_SECONDS)
    last = orjson.loads((await timed(session, "GET", job_url, headers=headers))[1])["job"]
    return (moved(last) - moved(first)) / (time.perf_counter() - started)


async def run_engine(kind: str, url: str, accounts: int, fake_url: str, tmp: Path) -> list[str]:
    data = tmp / kind
    data.mkdir()
    others = [ep.name for ep in entry_points(group="grok2api") if ep.dist is None or ep.dist.name != "grok2api"]
    env = {**os.environ, "DATA_DIR": str(data), "LOG_LEVEL": "WARNING", "SERVER_STORAGE_TYPE": kind,
           "SERVER_STORAGE_URL": url, "SERVER_HOST": "127.0.0.1", "SERVER_PORT": str(free_port()),
           "GROK2API_APP__API_KEY": API_KEY, "GROK2API_TOKEN__AUTO_REFRESH": "false",
           "GROK2API_GROK__BASE_URL": fake_url, "GROK2API_GROK__ASSETS_URL": fake_url + "/assets",
           "GROK2API_DISABLE_PLUGINS": ",".join(others)}
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # an installed gateway starts from its bytecode caches
    logs = Path(os.environ.get("BENCH_LOG_DIR") or tmp)  # the servers' logs, kept when this names a directory
    gateway = Gateway(env, int(env["SERVER_PORT"]), logs / f"{kind}.log")
    lines = [f"{kind}: {accounts:,} accounts"]
    empty = await gateway.start()
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=600)) as session:
            login = orjson.loads((await timed(session, "POST", gateway.url + "/api/v1/admin/login",
                                              json={"username": "admin", "password": "admin"}))[1])
            h = {"Authorization": f"Bearer {login['token']}"}
            text = "".join(f"sso=eyJbench{n:07d}.{'x' * 140}\n" for n in range(accounts))
            seconds, body = await timed(session, "POST", gateway.url + "/api/v1/admin/tokens/import", data=text,
                                        headers={**h, "Content-Type": "text/plain"})
            report = orjson.loads(body)
            assert report["added"] == accounts, report
            lines.append(f"  import of {accounts:,} TXT lines   {seconds:8.2f} s     (target <= 15 s: "
                         f"{verdict('import', seconds)})")
            page_url = (gateway.url + "/api/v1/admin/tokens?type=sso&status=active&search=bench00123&sort=created_at"
                        "&order=desc&page=3&page_size=50")
            pages = [(await timed(session, "GET", page_url, headers=h))[0] for _ in range(SAMPLES)]
            counts = [(await timed(session, "GET", gateway.url + "/api/v1/admin/tokens/counts", headers=h))[0]
                      for _ in range(SAMPLES)]
            lines.append(f"  filtered page p50           {p50(pages) * 1000:8.1f} ms    (target <= 50 ms: "
                         f"{verdict('page', p50(pages))})")
            lines.append(f"  counts per state p50        {p50(counts) * 1000:8.1f} ms    (target <= 100 ms: "
                         f"{verdict('counts', p50(counts))})")
            for fmt in ("txt", "json"):
                seconds, body = await timed(session, "GET", gateway.url + f"/api/v1/admin/tokens/export?format={fmt}",
                                            headers=h)
                lines.append(f"  full export ({fmt:4})          {seconds:8.2f} s     ({len(body) / 2**20:.1f} MiB; "
                             f"target <= 5 s: {verdict('export', seconds)})")
        starts = []
        for _ in range(STARTS):
            gateway.stop()
            starts.append(await gateway.start())
        seconds = p50(starts)
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=600)) as session:
            login = orjson.loads((await timed(session, "POST", gateway.url + "/api/v1/admin/login",
                                              json={"username": "admin", "password": "admin"}))[1])
            h = {"Authorization": f"Bearer {login['token']}"}
            total = orjson.loads((await timed(session, "GET", gateway.url + "/api/v1/admin/tokens/counts",
                                              headers=h))[1])["total"]
            lines.append(f"  start-up with the pool      {seconds:8.2f} s     (median of {STARTS}, "
                         f"{min(starts):.2f} to {max(starts):.2f} s; {total:,} accounts loaded; "
                         f"target <= 3 s: {verdict('startup', seconds)}; with no account: {empty:.2f} s)")
            await chat_rps(session, gateway.url, 1.0)  # warm-up: connections, caches
            quiet = await chat_rps(session, gateway.url, CHAT_SECONDS)
            job = orjson.loads((await timed(session, "POST", gateway.url + "/api/v1/admin/jobs",
                                            json={"kind": "refresh"}, headers=h))[1])["job"]
            job_url = gateway.url + f"/api/v1/admin/jobs/{job['id']}"
            await asyncio.sleep(1.0)  # the runner picks the job up
            before = orjson.loads((await timed(session, "GET", job_url, headers=h))[1])["job"]
            busy = await chat_rps(session, gateway.url, CHAT_SECONDS)
            after = orjson.loads((await timed(session, "GET", job_url, headers=h))[1])["job"]
            alone = await job_alone(session, job_url, h)
            await timed(session, "POST", job_url + "/cancel", headers=h)
            lines.append(f"  chat rps without a job      {quiet:8.1f}")
            moved = (after["done"] + after["failed"]) - (before["done"] + before["failed"])
            lines.append(f"  chat rps during the job     {busy:8.1f}       (ratio {busy / quiet:.2f}; meanwhile the "
                         f"job synced {moved:,} of {after['total']:,} accounts ({after['failed']:,} failed so far), "
                         f"state {after['state']})")
            lines.append(f"  the job alone               {alone:8.1f} accounts synced per second (over "
                         f"{JOB_ALONE_SECONDS:.0f} s without chat)")
            if after["errors"]:
                lines.append(f"  a job error: {next(iter(after['errors'].values()))}")
    finally:
        gateway.stop()
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--engines", default="local,pgsql", help="comma-separated: local, pgsql (default both)")
    parser.add_argument("--accounts", type=int, default=100_000)
    parser.add_argument("--child", choices=["fake"], help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child == "fake":
        serve_fake(args.port)
        return 0
    from grok2api.testing.engines import engine_url, stop_all

    port = free_port()
    fake_url = f"http://127.0.0.1:{port}"
    report: list[str] = []
    with tempfile.TemporaryDirectory(prefix="grok2api-bench-admin-") as name:
        tmp = Path(name)
        with open(tmp / "fake.log", "wb") as log:
            fake = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "--child", "fake",
                                     "--port", str(port)], stderr=log)
        try:
            asyncio.run(wait_ready(fake_url + "/__fake__/requests", fake))
            for kind in args.engines.split(","):
                url = "" if kind == "local" else engine_url(kind)
                report += asyncio.run(run_engine(kind, url, args.accounts, fake_url, tmp))
                print("\n".join(report), flush=True)
                report = []
        finally:
            fake.terminate()
            fake.wait()
            stop_all()
    return 0


if __name__ == "__main__":
    sys.exit(main())
