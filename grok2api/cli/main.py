"""The ``grok2api`` command. Every subcommand, the kernel's own included, comes from the
``grok2api_register_commands`` hook; ``fake-upstream`` is the one exception, as it needs
no settings, storage or plugins: it is the other side of the wire.

Start-up is kept cheap: ``grok2api --help`` reads no settings models and imports neither
aiohttp nor a storage engine, and only the chosen command's options are declared.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import AsyncIterator, Iterable, Sequence
from typing import TYPE_CHECKING

from grok2api.plugin.manager import Hooks, build_plugin_manager
from grok2api.plugin.registries import Command, CommandRegistry, RegistrationError

if TYPE_CHECKING:
    from aiohttp import web

    from grok2api.config.settings import Settings
    from grok2api.plugin.registries import AppCommandRunner

FAKE_UPSTREAM = "fake-upstream"
#: what a shell reports for a process that SIGPIPE ended (``grok2api tokens list | head``)
EXIT_BROKEN_PIPE = 128 + 13


@contextlib.asynccontextmanager
async def started(settings: Settings, plugins: Iterable[object] = ()) -> AsyncIterator[web.Application]:
    """The app with storage, keys, the pool and plugins started, but no HTTP listener.

    One-shot commands never start the background quota refresher.
    """
    from aiohttp import web

    from grok2api.web.app import create_app

    settings.token.auto_refresh = False
    runner = web.AppRunner(create_app(settings, plugins))
    await runner.setup()
    try:
        yield runner.app
    finally:
        await runner.cleanup()


def commands(disabled: Sequence[str], plugins: Iterable[object] = ()) -> dict[str, Command]:
    """Every subcommand the enabled plugins (and the kernel) register."""
    registry = CommandRegistry(reserved={FAKE_UPSTREAM})
    Hooks(build_plugin_manager(plugins, disabled=disabled)).commands(registry)
    return registry.commands


def configured_disabled() -> list[str]:
    """``plugins.disabled`` from ``data/config.toml`` and the environment, read without the
    settings models, for ``grok2api --help`` alone (pydantic would cost more than all of
    it). A command that runs reads the full settings instead; an unreadable file here
    only means the help lists every installed plugin's commands."""
    import tomllib

    environ = os.environ
    if "GROK2API_PLUGINS__DISABLED" in environ:
        with contextlib.suppress(tomllib.TOMLDecodeError):
            names = tomllib.loads(f"v = {environ['GROK2API_PLUGINS__DISABLED']}")["v"]
            return [str(n) for n in names] if isinstance(names, list) else []
    if "GROK2API_DISABLE_PLUGINS" in environ:
        return [n.strip() for n in environ["GROK2API_DISABLE_PLUGINS"].split(",") if n.strip()]
    path = os.path.join(environ.get("DATA_DIR") or "data", "config.toml")
    try:
        with open(path, "rb") as file:
            names = tomllib.load(file).get("plugins", {}).get("disabled", [])
    except (OSError, tomllib.TOMLDecodeError, AttributeError):
        return []
    return [str(n) for n in names] if isinstance(names, list) else []


def _command_name(argv: Sequence[str]) -> str | None:
    """The first word that is not an option: the command (the global options take no values)."""
    return next((arg for arg in argv if not arg.startswith("-")), None)


def build_parser(available: dict[str, Command], chosen: str | None = None) -> argparse.ArgumentParser:
    """The parser; only the ``chosen`` command declares its options (others may import a lot to do so)."""
    parser = argparse.ArgumentParser(
        prog="grok2api", description="An OpenAI-compatible gateway in front of Grok's web app.",
        epilog="Run 'grok2api COMMAND --help' for a command's options.")
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="show the INFO log lines of a command (serve always shows them)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in available.values():
        command_parser = sub.add_parser(command.name, help=command.help, description=command.help)
        if command.arguments is not None and command.name == chosen:
            command.arguments(command_parser)
    # listed for --help only: main() hands its arguments to the fake's own parser
    sub.add_parser(FAKE_UPSTREAM, add_help=False, help="run a fake Grok upstream on loopback (see its --help)")
    return parser


def _run_app(run_app: AppCommandRunner, args: argparse.Namespace, settings: Settings,
             plugins: Iterable[object]) -> int:
    import asyncio

    async def main() -> int:
        async with started(settings, plugins) as app:
            return await run_app(args, app)

    return asyncio.run(main())


def _log_level(configured: str, command: str, verbose: bool) -> str:
    """``serve`` logs at the configured level; other commands show warnings and worse unless ``-v``."""
    from grok2api.logs.logger import logger

    if command == "serve" or verbose or logger.level(configured).no >= logger.level("WARNING").no:
        return configured
    return "WARNING"


def _run(argv: list[str], plugins: Iterable[object]) -> int:
    chosen = _command_name(argv)
    if chosen is None:  # --help, or no command: argparse prints the help or the usage error and exits
        build_parser(commands(configured_disabled(), plugins)).parse_args(argv)
        return 2
    from pathlib import Path

    from grok2api.config.settings import load_settings
    from grok2api.logs.logger import setup_logging

    settings = load_settings()
    available = commands(settings.plugins.disabled, plugins)
    args = build_parser(available, chosen).parse_args(argv)
    setup_logging(_log_level(settings.log_level, args.command, args.verbose),
                  log_dir=Path("logs") if args.command == "serve" else None)
    command = available[args.command]
    if command.run is not None:
        return int(command.run(args, settings))
    assert command.run_app is not None  # the registry lets only one of the two be unset
    return _run_app(command.run_app, args, settings, plugins)


def _stdout_gone() -> int:
    """The reader of our output left (``| head``): end quietly, as a SIGPIPE would, and keep
    the interpreter's final flush from printing a second traceback."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    return EXIT_BROKEN_PIPE


def main(argv: list[str] | None = None, plugins: Iterable[object] = ()) -> int:
    """Run one command; ``plugins`` are registered beside the installed ones (for tests)."""
    argv = sys.argv[1:] if argv is None else argv
    try:
        if argv[:1] == [FAKE_UPSTREAM]:
            from grok2api.testing.fake_grok.__main__ import main as fake_main

            status = fake_main(argv[1:])
        else:
            status = _run(argv, plugins)
        sys.stdout.flush()  # buffered output meets a closed pipe here, not at exit
        return status
    except BrokenPipeError:
        return _stdout_gone()
    except Exception as exc:
        from grok2api.config.settings import ConfigError  # only now: settings cost pydantic

        if not isinstance(exc, ConfigError | RegistrationError):
            raise
        from grok2api.logs.logger import mask_text  # a storage URL in the message may carry a password

        print(f"grok2api: {mask_text(str(exc))}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
