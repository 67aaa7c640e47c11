"""``grok2api serve``: one process, or several worker processes sharing one port."""

from __future__ import annotations

import argparse
import asyncio
import gc
import multiprocessing
import signal

from aiohttp import web

from grok2api.config.settings import Settings
from grok2api.logs.logger import logger, setup_logging
from grok2api.web.app import create_app


def new_event_loop() -> asyncio.AbstractEventLoop:
    """uvloop where it is installed (all but Windows): the gateway spends less CPU per request on it."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


async def _freeze_startup_objects(app: web.Application) -> None:
    """What start-up built lives as long as the process: the collector stops walking it."""
    gc.collect()
    gc.freeze()


def run_server(app: web.Application, settings: Settings, reuse_port: bool = False) -> None:
    """Serve ``app`` on ``server.host``/``server.port`` until SIGINT or SIGTERM.

    aiohttp closes a connection that waits for a request longer than its keep-alive
    timeout, half-received headers included: that is ``server.header_timeout_sec``."""
    app.on_startup.append(_freeze_startup_objects)
    web.run_app(app, host=settings.server.host, port=settings.server.port, access_log=None,
                reuse_port=reuse_port, print=None, handle_signals=True, loop=new_event_loop(),
                keepalive_timeout=settings.server.header_timeout_sec)


def _serve_worker(settings: Settings) -> None:
    """One of several worker processes (spawned: it sets up logging and builds its own app)."""
    setup_logging(settings.log_level)
    run_server(create_app(settings), settings, reuse_port=True)


def arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host")
    parser.add_argument("--port", type=int)
    parser.add_argument("--workers", type=int)


def serve(args: argparse.Namespace, settings: Settings) -> int:
    for name in ("host", "port", "workers"):
        if getattr(args, name) is not None:
            setattr(settings.server, name, getattr(args, name))
    app = create_app(settings)  # validates plugins and config before anything is forked
    workers = settings.server.workers
    logger.info("grok2api listening on http://{}:{} with {} worker(s), storage {}", settings.server.host,
                settings.server.port, workers, settings.server.storage_type)
    if workers == 1:
        run_server(app, settings)
        return 0
    ctx = multiprocessing.get_context("spawn")
    children = [ctx.Process(target=_serve_worker, args=(settings,), name=f"worker-{i}") for i in range(workers)]
    for child in children:
        child.start()

    def stop(signum: int, frame: object) -> None:
        for child in children:
            if child.is_alive():
                child.terminate()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    for child in children:
        child.join()
    return 1 if any(child.exitcode for child in children) else 0
