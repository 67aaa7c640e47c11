"""``grok2api tokens add|import|list|export|remove|refresh``: the pool from the command line.

:func:`add_parser` declares the sub-commands and their arguments; :func:`run` executes
the parsed command on a started :class:`TokenPool` and returns the exit status. Each
command is also a function of its own taking ``(args, pool)``:

=========  ===================================================================
command    arguments (``args`` attributes)
=========  ===================================================================
add        ``tokens: list[str]`` (``sso=`` and cookie strings accepted), ``pool: str | None``
import     ``file: Path`` (text, one token per line, or ``token.json``), ``pool: str | None``
list       ``pool: str | None``, ``status: str | None``, ``json: bool``
export     ``output: Path``, ``format: "txt" | "json" | None`` (from the suffix), ``pool``, ``status``
remove     ``tokens: list[str]``, ``file: Path | None``
refresh    ``tokens: list[str]`` (none: every usable account)
=========  ===================================================================
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

import orjson

from grok2api.logs.logger import mask_secret
from grok2api.pool.account import POOL_BASIC, POOL_SUPER, UNKNOWN, Status
from grok2api.pool.files import read_tokens, tokens_json, tokens_text
from grok2api.pool.pool import TokenPool

Command = Callable[[argparse.Namespace, TokenPool], Awaitable[int]]


async def add(args: argparse.Namespace, pool: TokenPool) -> int:
    added, merged = await pool.add(args.tokens, pool=args.pool)
    print(f"added {added}, merged {merged}, skipped {len(args.tokens) - added - merged}")
    return 0


async def import_file(args: argparse.Namespace, pool: TokenPool) -> int:
    try:
        items = read_tokens(args.file)
    except (OSError, ValueError) as exc:
        print(f"grok2api: cannot import {args.file}: {exc}", file=sys.stderr)
        return 1
    added, merged = await pool.add(items, pool=args.pool)
    print(f"{args.file}: added {added}, merged {merged}, skipped {len(items) - added - merged}")
    return 0


async def list_accounts(args: argparse.Namespace, pool: TokenPool) -> int:
    accounts = pool.accounts(pool=args.pool, status=args.status)
    if args.json:
        for account in accounts:
            sys.stdout.write(orjson.dumps({**account.to_record(), "token": mask_secret(account.token)}).decode() + "\n")
        return 0
    print(f"{'token':<14} {'pool':<9} {'status':<9} {'quota':>6} {'heavy':>6} {'used':>6} {'fails':>5}  note")
    for account in accounts:
        print(f"{mask_secret(account.token):<14} {account.pool:<9} {account.status.value:<9} "
              f"{_quota(account.quota):>6} {_quota(account.heavy_quota):>6} {account.use_count:>6} "
              f"{account.fail_count:>5}  {account.note}")
    print(f"{len(accounts)} account(s)")
    return 0


async def export(args: argparse.Namespace, pool: TokenPool) -> int:
    accounts = pool.accounts(pool=args.pool, status=args.status)
    fmt = args.format or ("json" if args.output.suffix.lower() == ".json" else "txt")
    data = tokens_json(accounts) if fmt == "json" else tokens_text(accounts).encode()
    args.output.write_bytes(data)
    print(f"exported {len(accounts)} account(s) to {args.output} ({fmt})")
    return 0


async def remove(args: argparse.Namespace, pool: TokenPool) -> int:
    tokens = [t for t in read_tokens(args.file) if isinstance(t, str)] if args.file else []
    removed = await pool.remove([*args.tokens, *tokens])
    print(f"removed {removed}")
    return 0


async def refresh(args: argparse.Namespace, pool: TokenPool) -> int:
    progress = await (await pool.refresh(args.tokens or None)).wait()
    print(f"refreshed {progress.total}: {progress.done} ok, {progress.failed} failed ({progress.state})")
    for token, failure in progress.errors.items():
        print(f"  {token}: {failure}")
    return 0 if progress.state == "finished" and not progress.failed else 1


def _quota(value: int) -> str:
    return "-" if value == UNKNOWN else str(value)


_COMMANDS: dict[str, Command] = {
    "add": add, "import": import_file, "list": list_accounts, "export": export, "remove": remove, "refresh": refresh,
}


def arguments(tokens: argparse.ArgumentParser) -> None:
    """The ``tokens`` sub-commands and their options."""
    sub = tokens.add_subparsers(dest="tokens_command", required=True)
    pools = f"pool for new accounts ({POOL_BASIC} or {POOL_SUPER}; default: the file's, else {POOL_BASIC})"
    statuses = [s.value for s in Status]

    cmd = sub.add_parser("add", help="add accounts by token")
    cmd.add_argument("tokens", nargs="+", help="SSO tokens, sso=… values or whole cookie strings")
    cmd.add_argument("--pool", help=pools)

    cmd = sub.add_parser("import", help="import a text file (one token per line) or the original's token.json")
    cmd.add_argument("file", type=Path)
    cmd.add_argument("--pool", help=pools)

    cmd = sub.add_parser("list", help="list accounts with status and quota")
    cmd.add_argument("--pool")
    cmd.add_argument("--status", choices=statuses)
    cmd.add_argument("--json", action="store_true", help="one JSON record per line (tokens masked)")

    cmd = sub.add_parser("export", help="write tokens to a file")
    cmd.add_argument("output", type=Path)
    cmd.add_argument("--format", choices=["txt", "json"], help="default: json for *.json, else txt")
    cmd.add_argument("--pool")
    cmd.add_argument("--status", choices=statuses)

    cmd = sub.add_parser("remove", help="remove accounts")
    cmd.add_argument("tokens", nargs="*")
    cmd.add_argument("--file", type=Path, help="a file of tokens to remove, one per line")

    cmd = sub.add_parser("refresh", help="sync quotas now")
    cmd.add_argument("tokens", nargs="*", help="default: every active or cooling account")


async def run(args: argparse.Namespace, pool: TokenPool) -> int:
    """Run the parsed ``tokens`` command on a started pool."""
    return await _COMMANDS[args.tokens_command](args, pool)
