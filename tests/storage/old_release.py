"""The previous release's databases under ``fixtures/``, loaded into a fresh database of each engine."""

from __future__ import annotations

import base64
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import orjson
import redis.asyncio as redis

from grok2api.testing.engines import fresh_database

FIXTURES = Path(__file__).parent / "fixtures"
EXPECTED: dict[str, Any] = orjson.loads((FIXTURES / "expected.json").read_bytes())
FIRST = next(iter(EXPECTED["tokens"]))


def _b64(text: str) -> bytes:
    return base64.b64decode(text)


def _server(url: str) -> tuple[str, str, str]:
    host, port, database = re.search(r"@([\d.]+):(\d+)/([^/?]+)", url).groups()  # type: ignore[union-attr]
    return host, port, database


async def restore(kind: str, data_dir: Path) -> str:
    """A fresh database of ``kind`` holding the old release's fixture; returns its storage URL."""
    if kind == "local":
        shutil.copy(FIXTURES / "local.db", data_dir / "grok2api.db")
        return ""
    url = await fresh_database(kind)
    if kind == "redis":
        async with redis.from_url(url) as client:
            for item in orjson.loads((FIXTURES / "redis.json").read_bytes()):
                key, value = _b64(item["key"]), item["value"]
                if item["type"] == "string":
                    await client.set(key, _b64(value))
                elif item["type"] == "hash":
                    await client.hset(key, mapping={_b64(f): _b64(v) for f, v in value.items()})
                elif item["type"] == "set":
                    await client.sadd(key, *(_b64(m) for m in value))
                else:
                    # JSON has no infinity: the dump holds a record index's +inf scores as null
                    await client.zadd(key, {_b64(m): float("inf") if score is None else score for m, score in value})
        return url
    host, port, database = _server(url)
    if kind == "pgsql":
        psql = sorted(Path("/usr/lib/postgresql").glob("*/bin/psql"))[-1]
        command = [str(psql), "-h", host, "-p", port, "-U", "postgres", "-d", database, "-q", "-v", "ON_ERROR_STOP=1",
                   "-f", str(FIXTURES / "pgsql.sql")]
        subprocess.run(command, check=True, capture_output=True, timeout=60)
    else:
        client = shutil.which("mariadb", path="/usr/bin:/usr/sbin") or "mysql"
        with (FIXTURES / "mysql.sql").open("rb") as dump:
            subprocess.run([client, "--no-defaults", "-h", host, "-P", port, "-u", "root", database], stdin=dump,
                           check=True, capture_output=True, timeout=60)
    return url
