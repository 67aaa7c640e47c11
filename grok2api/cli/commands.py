"""The kernel's own subcommands, registered through the same hook a plugin uses.

Each command's module (and aiohttp, pydantic, the storage engines behind them) is
imported only when its command runs or its options are parsed, so ``grok2api --help``
stays quick.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from grok2api import hookimpl
from grok2api.plugin.registries import Command, CommandRegistry

if TYPE_CHECKING:
    from aiohttp import web

    from grok2api.config.settings import Settings

PLUGIN_NAME = "kernel:commands"


def _serve_arguments(parser: argparse.ArgumentParser) -> None:
    from grok2api.cli.serve import arguments

    arguments(parser)


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    from grok2api.cli.serve import serve

    return serve(args, settings)


def _plugins(args: argparse.Namespace, settings: Settings) -> int:
    from grok2api.plugin.manager import plugin_infos
    from grok2api.web.app import create_app
    from grok2api.web.appkeys import PLUGIN_MANAGER

    app = create_app(settings)
    infos = plugin_infos(app[PLUGIN_MANAGER], settings.plugins.disabled)
    width = max((len(i.name) for i in infos), default=4)
    for info in infos:
        state = "enabled" if info.enabled else "disabled"
        print(f"{info.name:<{width}}  {info.version or '-':<8}  {state:<8}  {', '.join(info.hooks) or '-'}")
    return 0


def _config_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=["show", "check"])


def _config(args: argparse.Namespace, settings: Settings) -> int:
    import orjson

    from grok2api.config.settings import masked
    from grok2api.web.app import create_app

    create_app(settings)  # plugin sections are validated here
    if args.action == "show":
        sys.stdout.write(orjson.dumps(masked(settings), option=orjson.OPT_INDENT_2).decode() + "\n")
    else:
        print("configuration is valid")
    return 0


def _keys_arguments(parser: argparse.ArgumentParser) -> None:
    from grok2api.keys.cli import arguments

    arguments(parser)


async def _keys(args: argparse.Namespace, app: web.Application) -> int:
    from grok2api.keys.cli import run
    from grok2api.web.appkeys import KEYS

    return await run(args, app[KEYS])


def _tokens_arguments(parser: argparse.ArgumentParser) -> None:
    from grok2api.pool.cli import arguments

    arguments(parser)


async def _tokens(args: argparse.Namespace, app: web.Application) -> int:
    from grok2api.pool.cli import run
    from grok2api.web.appkeys import POOL

    return await run(args, app[POOL])


def _storage_arguments(parser: argparse.ArgumentParser) -> None:
    from grok2api.storage.cli import arguments

    arguments(parser)


async def _storage(args: argparse.Namespace, app: web.Application) -> int:
    from grok2api.storage.cli import run
    from grok2api.web.appkeys import SETTINGS, STORAGE

    return await run(args, app[STORAGE], app[SETTINGS].data_dir)


def _smoke_arguments(parser: argparse.ArgumentParser) -> None:
    from grok2api.cli.smoke import arguments

    arguments(parser)


def _smoke(args: argparse.Namespace, settings: Settings) -> int:
    from grok2api.cli.smoke import run

    return run(args)


@hookimpl
def grok2api_register_commands(commands: CommandRegistry) -> None:
    commands.add(Command("serve", "run the gateway", arguments=_serve_arguments, run=_serve))
    commands.add(Command("plugins", "list plugins, their hooks and whether they are enabled", run=_plugins))
    commands.add(Command("config", "show or check the configuration", arguments=_config_arguments, run=_config))
    commands.add(Command("keys", "manage API keys and their daily limits", arguments=_keys_arguments,
                         run_app=_keys))
    commands.add(Command("tokens", "manage the account pool", arguments=_tokens_arguments, run_app=_tokens))
    commands.add(Command("storage", "export all stored data to a file, or import such a file (to move between "
                         "engines); rotate-key: encrypt the stored credentials with a new key",
                         arguments=_storage_arguments, run_app=_storage))
    commands.add(Command("smoke", "check a running gateway end to end: health, login page, models, chat, images",
                         arguments=_smoke_arguments, run=_smoke))
