#!/usr/bin/env python3
"""What a video job costs: 200 jobs in flight against a fake Grok that takes seconds per video.

    .venv-test/bin/python benchmarks/video.py           # about half a minute
    .venv-test/bin/python benchmarks/video.py --quick   # a smoke run

The fake Grok runs in a child process (statsig check off, accounts with unlimited
quota), pacing its stream lines so one video takes ``--seconds`` (default 5). The
gateway runs in this process (chat and video plugins, SQLite in a temporary directory,
``[video] max_concurrent`` as large as the load, so every request is in flight at
once), with every storage write counted. Two runs of ``--jobs`` videos each:

- **baseline**: the videos asked through ``POST /v1/chat/completions`` (streaming), the
  path that keeps nothing in storage but what every request keeps;
- **jobs**: the videos asked through ``POST /v1/videos``, each client polling
  ``GET /v1/videos/{id}`` once per ``--seconds`` (as long as a video takes) until its
  job completed. (Polling every second, 200 clients keep SQLite busy with reads on a
  loaded machine, and the runner's writes queue behind them.)

Reported per run: wall time, the peak Python memory (``tracemalloc``) above the idle
gateway per video in flight, and storage writes per video (puts, patches, deletes,
counter increments, lock takes, renewals and releases), with the jobs' figures as a
ratio of the baseline's.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import contextvars
import multiprocessing
import socket
import sys
import tempfile
import time
import tracemalloc
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp

API_KEY = "sk-video-benchmark-0123456789"
ACCOUNTS = [f"video-bench-{i:03d}" for i in range(200)]  # so neither run waits for an account
WRITES = ("put", "put_many", "patch", "patch_many", "delete", "delete_many", "incr", "incr_many",
          "acquire_lock", "release_lock")
#: lines the fake writes for one video (progress frames, the model response, the closing text)
VIDEO_LINES = 8


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def serve_fake(port: int, frame_delay: float) -> None:
    from grok2api.testing.fake_grok import FakeGrok

    async def main() -> None:
        async with FakeGrok(port=port, statsig="off", frame_delay=frame_delay) as fake:
            for token in ACCOUNTS:
                fake.add_account(token, limits={"grok-3": 10**9})
            await asyncio.Event().wait()

    asyncio.run(main())


def count_writes(storage: Any, counts: Counter[str]) -> None:
    """Wrap the storage's write methods so each call from outside is counted once (an
    engine's ``patch`` may be its ``patch_many`` of one record: only the outer call counts)."""
    inside: contextvars.ContextVar[bool] = contextvars.ContextVar("inside", default=False)
    for name in WRITES:
        method = getattr(storage, name)

        async def counted(*args: Any, _method: Any = method, _name: str = name, **kwargs: Any) -> Any:
            if inside.get():
                return await _method(*args, **kwargs)
            counts[_name] += 1
            token = inside.set(True)
            try:
                return await _method(*args, **kwargs)
            finally:
                inside.reset(token)

        setattr(storage, name, counted)


async def chat_video(http: aiohttp.ClientSession, url: str, poll: float) -> None:
    body = {"model": "grok-imagine-1.0-video", "stream": True, "messages": [{"role": "user", "content": "a boat"}]}
    async with http.post(url + "/v1/chat/completions", json=body) as answer:
        text = await answer.text()
    assert answer.status == 200 and "<video" in text and "[DONE]" in text, text[-300:]


async def job_video(http: aiohttp.ClientSession, url: str, poll: float) -> None:
    async with http.post(url + "/v1/videos", json={"prompt": "a boat"}) as answer:
        job = await answer.json()
    assert answer.status == 200, job
    while job["status"] in ("queued", "in_progress"):
        await asyncio.sleep(poll)
        async with http.get(url + f"/v1/videos/{job['id']}") as answer:
            job = await answer.json()
    assert job["status"] == "completed", job


async def run(kind: str, jobs: int, url: str, counts: Counter[str], poll: float) -> dict[str, float]:
    counts.clear()
    headers = {"Authorization": f"Bearer {API_KEY}"}
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(headers=headers, connector=connector) as http:
        tracemalloc.reset_peak()
        idle = tracemalloc.get_traced_memory()[0]
        started = time.perf_counter()
        await asyncio.gather(*((chat_video if kind == "baseline" else job_video)(http, url, poll) for _ in range(jobs)))
        wall = time.perf_counter() - started
        peak = tracemalloc.get_traced_memory()[1]
    return {"wall": wall, "memory": (peak - idle) / jobs, "writes": sum(counts.values()) / jobs,
            **{f"w_{name}": n / jobs for name, n in counts.items()}}


async def main(jobs: int, seconds: float) -> None:
    from aiohttp import web

    from grok2api.api import KEYS, POOL, STORAGE, create_app, load_settings
    from grok2api.logs.logger import setup_logging
    from grok2api_plugins.chat import hooks as chat_hooks
    from grok2api_plugins.storage_local import hooks as storage_hooks
    from grok2api_plugins.video import hooks as video_hooks

    fake_port, port = free_port(), free_port()
    fake = multiprocessing.get_context("spawn").Process(target=serve_fake, args=(fake_port, seconds / VIDEO_LINES),
                                                         daemon=True)
    fake.start()
    with tempfile.TemporaryDirectory() as tmp:
        settings = load_settings()
        settings.data_dir = Path(tmp)
        settings.grok = settings.grok.model_validate({
            **settings.grok.model_dump(), "base_url": f"http://127.0.0.1:{fake_port}",
            "assets_url": f"http://127.0.0.1:{fake_port}/assets"})
        settings.app = settings.app.model_validate({**settings.app.model_dump(), "app_url": f"http://127.0.0.1:{port}"})
        settings.token.auto_refresh = False
        settings.token.sync_after_use = False  # the fake's quota is unlimited: no syncs in the figures
        setup_logging("WARNING", log_dir=None)
        app = create_app(settings, [storage_hooks, chat_hooks, video_hooks], load_entrypoints=False)
        settings.video = settings.video.model_validate(  # type: ignore[attr-defined]
            {**settings.video.model_dump(), "max_concurrent": jobs})  # type: ignore[attr-defined]
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        try:
            await app[KEYS].create(key=API_KEY, name="video-bench")
            await app[POOL].add(ACCOUNTS)
            async with asyncio.timeout(30):
                while True:  # the fake is up
                    with contextlib.suppress(OSError):
                        _, writer = await asyncio.open_connection("127.0.0.1", fake_port)
                        writer.close()
                        break
                    await asyncio.sleep(0.1)
            counts: Counter[str] = Counter()
            count_writes(app[STORAGE], counts)
            tracemalloc.start()
            await run("baseline", 2, f"http://127.0.0.1:{port}", counts, seconds)  # warm-up
            results = {kind: await run(kind, jobs, f"http://127.0.0.1:{port}", counts, seconds)
                       for kind in ("baseline", "jobs")}
            tracemalloc.stop()
        finally:
            await runner.cleanup()
            fake.terminate()
    base, job = results["baseline"], results["jobs"]
    print(f"{jobs} videos in flight, {seconds:g} s each at the fake")
    print(f"{'':24}{'baseline (chat)':>18}{'jobs':>12}{'ratio':>8}")
    print(f"{'wall time (s)':24}{base['wall']:>18.1f}{job['wall']:>12.1f}{job['wall'] / base['wall']:>8.2f}")
    print(f"{'peak memory/video (KB)':24}{base['memory'] / 1024:>18.1f}{job['memory'] / 1024:>12.1f}"
          f"{job['memory'] / base['memory']:>8.2f}")
    print(f"{'storage writes/video':24}{base['writes']:>18.1f}{job['writes']:>12.1f}"
          f"{job['writes'] / base['writes']:>8.2f}")
    for name in WRITES:
        b, j = base.get(f"w_{name}", 0.0), job.get(f"w_{name}", 0.0)
        if b or j:
            print(f"{'  ' + name:24}{b:>18.2f}{j:>12.2f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=5.0, help="how long the fake takes per video")
    parser.add_argument("--quick", action="store_true", help="20 videos of 1 s: a smoke run")
    options = parser.parse_args()
    if options.quick:
        options.jobs, options.seconds = 20, 1.0
    sys.exit(asyncio.run(main(options.jobs, options.seconds)))
