"""``grok2api keys create|list|update|delete``: managed API keys from the command line.

:func:`arguments` declares the sub-commands; :func:`run` executes the parsed command
on a :class:`~grok2api.keys.KeyService` and returns the exit status. Each command is
also a function of its own taking ``(args, keys)``:

=======  =======================================================================
command  arguments (``args`` attributes)
=======  =======================================================================
create   ``name``, ``key`` (None: generated), ``inactive: bool``, ``chat``/``heavy``/``image``/``video``,
         ``rpm``, ``concurrency``, ``expires_at``, ``models``
list     ``json: bool``
update   ``key`` (the key or its id), ``name``, ``active: bool | None``, the four limits, the access limits
delete   ``key`` (the key or its id)
=======  =======================================================================

Limits are per day: -1 unlimited, 0 blocked; None leaves a limit as it is. The access
limits (:mod:`grok2api.keys.limits`): ``rpm`` and ``concurrency`` as the daily ones,
``expires_at`` unix seconds or ``"never"``, ``models`` a comma-separated list ("" for all).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Awaitable, Callable

import orjson

from grok2api.keys.limits import InvalidKeyField
from grok2api.keys.service import BUCKETS, KeyExists, KeyNotFound, KeyService
from grok2api.storage import JSON

Command = Callable[[argparse.Namespace, KeyService], Awaitable[int]]


def _limits(args: argparse.Namespace) -> dict[str, int]:
    return {f"{b}_per_day": getattr(args, b) for b in BUCKETS if getattr(args, b, None) is not None}


def _access(args: argparse.Namespace) -> JSON:
    out: JSON = {name: getattr(args, name) for name in ("rpm", "concurrency") if getattr(args, name, None) is not None}
    if getattr(args, "expires_at", None) is not None:
        out["expires_at"] = None if args.expires_at == "never" else args.expires_at
    if getattr(args, "models", None) is not None:
        out["models"] = [m.strip() for m in args.models.split(",") if m.strip()]
    return out


def _expires_at(value: str) -> int | str:
    if value == "never":
        return value
    try:
        return int(value)
    except ValueError:
        raise argparse.ArgumentTypeError("unix seconds, or never") from None


def _refused(exc: InvalidKeyField) -> int:
    print(f"grok2api: {exc.message}", file=sys.stderr)
    return 2


def _limit_text(value: int | None) -> str:
    return "∞" if value is None or value < 0 else str(value)


def _print_row(row: JSON) -> None:
    limits = " ".join(f"{b}={row['usage_today'][f'{b}_used']}/{_limit_text(row.get(f'{b}_limit'))}" for b in BUCKETS)
    state = "expired" if row.get("expired") else "active" if row.get("is_active", True) else "inactive"
    access = [f"{name}={row[name]}" for name in ("rpm", "concurrency") if row.get(name, -1) >= 0]
    access += [f"expires_at={row['expires_at']}"] if row.get("expires_at") else []
    access += [f"models={','.join(row['models'])}"] if row.get("models") else []
    print(f"{row['id'][:12]}  {row['display_key']:<13}  {state:<8}  {row.get('name', '')}  {limits}"
          + "".join(f"  {item}" for item in access))


async def create(args: argparse.Namespace, keys: KeyService) -> int:
    try:
        row, key = await keys.create(name=args.name, key=args.key, is_active=not args.inactive, limits=_limits(args),
                                     access=_access(args))
    except KeyExists:
        print("grok2api: that key already exists", file=sys.stderr)
        return 1
    except InvalidKeyField as exc:
        return _refused(exc)
    print(f"created {row['name']} (id {row['id']})")
    print(f"key: {key}")
    print("the key is shown only now: store it safely")
    return 0


async def list_keys(args: argparse.Namespace, keys: KeyService) -> int:
    rows = await keys.list_rows()
    if args.json:
        for row in rows:
            sys.stdout.write(orjson.dumps(row).decode() + "\n")
        return 0
    print(f"{'id':<12}  {'key':<13}  {'state':<8}  name  usage today/limit")
    for row in rows:
        _print_row(row)
    print(f"{len(rows)} key(s)")
    return 0


async def update(args: argparse.Namespace, keys: KeyService) -> int:
    try:
        row = await keys.update(args.key, name=args.name, is_active=args.active, limits=_limits(args),
                                access=_access(args))
    except KeyNotFound:
        print("grok2api: no such key", file=sys.stderr)
        return 1
    except InvalidKeyField as exc:
        return _refused(exc)
    _print_row(row)
    return 0


async def delete(args: argparse.Namespace, keys: KeyService) -> int:
    try:
        await keys.delete(args.key)
    except KeyNotFound:
        print("grok2api: no such key", file=sys.stderr)
        return 1
    print("deleted")
    return 0


COMMANDS: dict[str, Command] = {"create": create, "list": list_keys, "update": update, "delete": delete}


def _add_limits(parser: argparse.ArgumentParser) -> None:
    for bucket in BUCKETS:
        parser.add_argument(f"--{bucket}", type=int, metavar="N",
                            help=f"{bucket} requests per day (-1 unlimited, 0 blocked)")
    parser.add_argument("--rpm", type=int, metavar="N", help="requests per minute (-1 unlimited, 0 blocked)")
    parser.add_argument("--concurrency", type=int, metavar="N", help="requests at once (-1 unlimited, 0 blocked)")
    parser.add_argument("--expires-at", type=_expires_at, metavar="UNIX",
                        help="refuse the key from this time on (unix seconds), or never")
    parser.add_argument("--models", metavar="A,B", help="the only models the key may use (\"\" for every model)")


def arguments(parser: argparse.ArgumentParser) -> None:
    """The ``keys`` sub-commands and their options."""
    actions = parser.add_subparsers(dest="keys_command", required=True)
    made = actions.add_parser("create", help="create a key; its text is printed once")
    made.add_argument("--name")
    made.add_argument("--key", help="use this text instead of a generated sk-… key")
    made.add_argument("--inactive", action="store_true", help="create it switched off")
    _add_limits(made)
    listed = actions.add_parser("list", help="every key with today's usage")
    listed.add_argument("--json", action="store_true", help="one JSON object per line")
    changed = actions.add_parser("update", help="rename, switch on or off, or change limits")
    changed.add_argument("key", help="the key or its id")
    changed.add_argument("--name")
    switch = changed.add_mutually_exclusive_group()
    switch.add_argument("--activate", dest="active", action="store_const", const=True)
    switch.add_argument("--deactivate", dest="active", action="store_const", const=False)
    _add_limits(changed)
    removed = actions.add_parser("delete", help="delete a key")
    removed.add_argument("key", help="the key or its id")


async def run(args: argparse.Namespace, keys: KeyService) -> int:
    return await COMMANDS[args.keys_command](args, keys)
