"""Move every record, counter and log between engines: ``grok2api storage export|import FILE``.

The file is JSON lines: a header, then one line per record, counter key and log entry,
so a large pool streams through without being held in memory twice. Import writes
records one by one (replacing records with the same key), sets counters to the
exported values and appends log entries oldest first. Admin sessions expire and are
not moved: operators log in again.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import orjson

from grok2api.storage import JSON, NS_SESSIONS, Storage
from grok2api.storage.migrations import NS_STORAGE

FORMAT = "grok2api-storage-export"
VERSION = 1
_BATCH = 500
_LOG_PAGE = 1000


def _line(out: IO[bytes], item: JSON) -> None:
    out.write(orjson.dumps(item) + b"\n")


async def export_to(storage: Storage, path: Path) -> dict[str, int]:
    """Write everything in ``storage`` to ``path``; returns the count per namespace, counter ns and log."""
    counts: Counter[str] = Counter()
    with path.open("wb") as out:
        _line(out, {"format": FORMAT, "version": VERSION, "engine": storage.name})
        for ns in await storage.namespaces():
            if ns in (NS_SESSIONS, NS_STORAGE):  # the database's own versions and key state stay with it
                continue
            for key, data in (await storage.list(ns)).items():
                _line(out, {"record": ns, "key": key, "data": data})
                counts[ns] += 1
        for ns in await storage.counter_namespaces():
            for key, values in (await storage.counters_many(ns)).items():
                _line(out, {"counters": ns, "key": key, "values": values})
                counts[f"counters {ns}"] += 1
        for stream in await storage.log_streams():
            entries, before = [], None
            while page := await storage.read_log(stream, limit=_LOG_PAGE, before_seq=before):
                entries.extend(page)
                before = page[-1].seq
            for entry in reversed(entries):
                _line(out, {"log": stream, "at_ms": entry.at_ms, "data": entry.data})
            counts[f"log {stream}"] += len(entries)
    return dict(counts)


def _items(path: Path) -> Iterator[JSON]:
    with path.open("rb") as source:
        header = orjson.loads(source.readline() or b"{}")
        if not isinstance(header, dict) or header.get("format") != FORMAT:
            raise ValueError(f"{path} is not a grok2api storage export")
        if header.get("version", 0) > VERSION:
            raise ValueError(f"{path} was written by a newer grok2api (export version {header['version']})")
        for number, line in enumerate(source, start=2):
            if line.strip():
                try:
                    yield orjson.loads(line)
                except orjson.JSONDecodeError as exc:
                    raise ValueError(f"{path}:{number}: not JSON ({exc})") from None


async def import_from(storage: Storage, path: Path) -> dict[str, int]:
    """Load an export into ``storage``; returns the count per namespace, counter ns and log."""
    counts: Counter[str] = Counter()
    pending: dict[str, dict[str, JSON]] = {}

    async def flush(ns: str) -> None:
        await storage.put_many(ns, pending.pop(ns, {}))

    for item in _items(path):
        if "record" in item:
            ns = item["record"]
            pending.setdefault(ns, {})[item["key"]] = item["data"]
            if len(pending[ns]) >= _BATCH:
                await flush(ns)
            counts[ns] += 1
        elif "counters" in item:
            ns, key, values = item["counters"], item["key"], item["values"]
            current = await storage.counters(ns, key)
            await storage.incr(ns, key, {f: int(v) - current.get(f, 0) for f, v in values.items()})
            counts[f"counters {ns}"] += 1
        elif "log" in item:
            await storage.append_log(item["log"], item["data"], max_len=1_000_000)
            counts[f"log {item['log']}"] += 1
    for ns in list(pending):
        await flush(ns)
    return dict(counts)


# command line --------------------------------------------------------------
async def run(args: argparse.Namespace, storage: Storage) -> int:
    """Run the parsed ``storage`` command on an opened storage; prints the counts per namespace."""
    try:
        if args.action == "export":
            counts = await export_to(storage, args.file)
        else:
            counts = await import_from(storage, args.file)
    except (OSError, ValueError) as exc:
        print(f"grok2api: storage {args.action} {args.file}: {exc}", file=sys.stderr)
        return 1
    verb = "exported to" if args.action == "export" else "imported from"
    print(f"{verb} {args.file} ({storage.name}):")
    for name, count in sorted(counts.items()):
        print(f"  {name}: {count}")
    if not counts:
        print("  nothing")
    return 0
