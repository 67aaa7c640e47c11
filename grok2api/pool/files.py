"""Token files: one token per line, or the original's ``token.json`` (``{pool: [token or record]}``)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import orjson

from grok2api.pool.account import Account


def read_tokens(path: Path) -> list[str | dict[str, Any]]:
    """Bare tokens (text file; blank lines and ``#`` comments skipped) or records with
    their pool (JSON). Raises ValueError for JSON of another shape."""
    return parse_tokens(path.read_text(encoding="utf-8-sig"), str(path))


def parse_tokens(text: str, path: str = "input") -> list[str | dict[str, Any]]:
    """:func:`read_tokens` of text already read (an upload); ``path`` names it in errors."""
    if not text.lstrip().startswith(("{", "[")):
        return [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    try:
        data = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"{path}: not valid JSON ({exc})") from None
    if isinstance(data, list):
        return [item for item in data if isinstance(item, str | dict)]
    if isinstance(data, dict) and all(isinstance(items, list) for items in data.values()):
        return [{"token": item, "pool": pool} if isinstance(item, str) else {**item, "pool": pool}
                for pool, items in data.items() for item in items if isinstance(item, str | dict)]
    raise ValueError(f"{path}: expected a list of tokens or {{pool: [tokens or records]}}")


def tokens_text(accounts: Iterable[Account]) -> str:
    return "".join(f"{account.token}\n" for account in accounts)


def tokens_json(accounts: Iterable[Account]) -> bytes:
    """The original's ``token.json`` shape, every stored field included (re-importable by both)."""
    pools: dict[str, list[dict[str, Any]]] = {}
    for account in accounts:
        pools.setdefault(account.pool, []).append(account.to_record())
    return orjson.dumps(pools, option=orjson.OPT_INDENT_2)
