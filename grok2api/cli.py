"""The ``grok2api`` command: serve, inspect plugins and config, manage keys, tokens and storage."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import multiprocessing
import signal
import sys
from collections.abc import AsyncIterator, Callable, Coroutine
from pathlib import Path
from typing import Any

import orjson
from aiohttp import web

from grok2api import keys_cli
from grok2api.app import create_app
from grok2api.appkeys import KEYS, PLUGIN_MANAGER, POOL, STORAGE
from grok2api.config import ConfigError, Settings, load_settings, masked
from grok2api.logging import logger, setup_logging
from grok2api.plugins import plugin_infos
from grok2api.pool import cli as pool_cli
from grok2api.storage import transfer


@contextlib.asynccontextmanager
async def started(settings: Settings) -> AsyncIterator[web.Application]:
    """The app with storage, keys, the pool and plugins started, but no HTTP listener.

    One-shot commands never start the background quota refresher.
    """
    settings.token.auto_refresh = False
    runner = web.AppRunner(create_app(settings))
    await runner.setup()
    try:
        yield runner.app
    finally:
        await runner.cleanup()


def new_event_loop() -> asyncio.AbstractEventLoop:
    """uvloop where it is installed (all but Windows): the gateway spends less CPU per request on it."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


#: net new container objects between two collections of the youngest generation
#: (CPython's default is 700; at 100,000 rather than 10,000 a chat request costs about
#: 1 % fewer instructions, as the older generations are walked less often too)
GC_YOUNG_THRESHOLD = 100_000


async def _settle_collector(app: web.Application) -> None:
    """Once started: what start-up built lives as long as the process, so the collector
    stops walking it, and young objects are collected less often, as a request allocates
    thousands that reference counting frees anyway."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_YOUNG_THRESHOLD, *gc.get_threshold()[1:])


def run_server(app: web.Application, settings: Settings, reuse_port: bool = False) -> None:
    """Serve ``app`` on ``server.host``/``server.port`` until SIGINT or SIGTERM."""
    app.on_startup.append(_settle_collector)
    web.run_app(app, host=settings.server.host, port=settings.server.port, access_log=None,
                reuse_port=reuse_port, print=None, handle_signals=True, loop=new_event_loop())


def _serve_worker(settings: Settings) -> None:
    """One of several worker processes (spawned: it sets up logging and builds its own app)."""
    setup_logging(settings.log_level)
    run_server(create_app(settings), settings, reuse_port=True)


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
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


def cmd_plugins(args: argparse.Namespace, settings: Settings) -> int:
    app = create_app(settings)
    infos = plugin_infos(app[PLUGIN_MANAGER], settings.plugins.disabled)
    width = max((len(i.name) for i in infos), default=4)
    for info in infos:
        state = "enabled" if info.enabled else "disabled"
        print(f"{info.name:<{width}}  {info.version or '-':<8}  {state:<8}  {', '.join(info.hooks) or '-'}")
    return 0


def cmd_config(args: argparse.Namespace, settings: Settings) -> int:
    create_app(settings)  # plugin sections are validated here
    if args.action == "show":
        sys.stdout.write(orjson.dumps(masked(settings), option=orjson.OPT_INDENT_2).decode() + "\n")
    else:
        print("configuration is valid")
    return 0


def run_async(fn: Callable[[argparse.Namespace, web.Application], Coroutine[Any, Any, int]]) -> Callable[..., int]:
    """Adapt an async command that needs the started app (storage, pool, keys)."""

    def command(args: argparse.Namespace, settings: Settings) -> int:
        async def main() -> int:
            async with started(settings) as app:
                return await fn(args, app)

        return asyncio.run(main())

    return command


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="grok2api", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the gateway")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.add_argument("--workers", type=int)
    serve.set_defaults(func=cmd_serve)

    plugins = sub.add_parser("plugins", help="list plugins, their hooks and whether they are enabled")
    plugins.set_defaults(func=cmd_plugins)

    config = sub.add_parser("config", help="show or check the configuration")
    config.add_argument("action", choices=["show", "check"])
    config.set_defaults(func=cmd_config)

    keys_cli.add_parser(sub).set_defaults(func=run_async(lambda args, app: keys_cli.run(args, app[KEYS])))
    pool_cli.add_parser(sub).set_defaults(func=run_async(lambda args, app: pool_cli.run(args, app[POOL])))
    transfer.add_parser(sub).set_defaults(func=run_async(lambda args, app: transfer.run(args, app[STORAGE])))

    # listed for --help only: main() hands its arguments to the fake's own parser
    sub.add_parser("fake-upstream", add_help=False, help="run a fake Grok upstream on loopback (see its --help)")
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["fake-upstream"]:  # needs no settings, storage or plugins: it is the other side of the wire
        from grok2api.testing.fake_grok.__main__ import main as fake_main

        return fake_main(argv[1:])
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings()
        setup_logging(settings.log_level, log_dir=Path("logs") if args.command == "serve" else None)
        return int(args.func(args, settings))
    except ConfigError as exc:
        print(f"grok2api: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
