"""The ``grok2api`` command. Every subcommand, the kernel's own included, comes from the
``grok2api_register_commands`` hook; ``fake-upstream`` is the one exception, as it needs
no settings, storage or plugins: it is the other side of the wire."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
from collections.abc import AsyncIterator, Iterable
from pathlib import Path

from aiohttp import web

from grok2api.config.settings import ConfigError, Settings, load_settings
from grok2api.logs.logger import setup_logging
from grok2api.plugin.manager import Hooks, build_plugin_manager
from grok2api.plugin.registries import AppCommandRunner, Command, CommandRegistry, RegistrationError

FAKE_UPSTREAM = "fake-upstream"


@contextlib.asynccontextmanager
async def started(settings: Settings, plugins: Iterable[object] = ()) -> AsyncIterator[web.Application]:
    """The app with storage, keys, the pool and plugins started, but no HTTP listener.

    One-shot commands never start the background quota refresher.
    """
    from grok2api.web.app import create_app

    settings.token.auto_refresh = False
    runner = web.AppRunner(create_app(settings, plugins))
    await runner.setup()
    try:
        yield runner.app
    finally:
        await runner.cleanup()


def commands(settings: Settings, plugins: Iterable[object] = ()) -> dict[str, Command]:
    """Every subcommand the enabled plugins (and the kernel) register."""
    registry = CommandRegistry(reserved={FAKE_UPSTREAM})
    Hooks(build_plugin_manager(plugins, disabled=settings.plugins.disabled)).commands(registry)
    return registry.commands


def build_parser(available: dict[str, Command]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="grok2api", description="An OpenAI-compatible gateway in front of Grok's web app.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in available.values():
        command_parser = sub.add_parser(command.name, help=command.help, description=command.help)
        if command.arguments is not None:
            command.arguments(command_parser)
    # listed for --help only: main() hands its arguments to the fake's own parser
    sub.add_parser(FAKE_UPSTREAM, add_help=False, help="run a fake Grok upstream on loopback (see its --help)")
    return parser


def _run_app(run_app: AppCommandRunner, args: argparse.Namespace, settings: Settings,
             plugins: Iterable[object]) -> int:
    async def main() -> int:
        async with started(settings, plugins) as app:
            return await run_app(args, app)

    return asyncio.run(main())


def main(argv: list[str] | None = None, plugins: Iterable[object] = ()) -> int:
    """Run one command; ``plugins`` are registered beside the installed ones (for tests)."""
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == [FAKE_UPSTREAM]:
        from grok2api.testing.fake_grok.__main__ import main as fake_main

        return fake_main(argv[1:])
    try:
        settings = load_settings()
        available = commands(settings, plugins)
        args = build_parser(available).parse_args(argv)
        setup_logging(settings.log_level, log_dir=Path("logs") if args.command == "serve" else None)
        command = available[args.command]
        if command.run is not None:
            return int(command.run(args, settings))
        assert command.run_app is not None  # the registry lets only one of the two be unset
        return _run_app(command.run_app, args, settings, plugins)
    except (ConfigError, RegistrationError) as exc:
        print(f"grok2api: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
