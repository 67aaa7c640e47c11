"""``grok2api storage export|import FILE`` and ``grok2api storage rotate-key [--new-key-file F]``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from grok2api.storage import Storage, StorageError, transfer
from grok2api.storage.credentials import KEY_ENV, KEY_FILE, NEW_KEY_FILE


def arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=["export", "import", "rotate-key"],
                        help="export or import FILE (to move between engines); rotate-key: encrypt the stored "
                             "credentials with a new key")
    parser.add_argument("file", type=Path, nargs="?", help="the export file (export and import)")
    parser.add_argument("--new-key-file", type=Path, metavar="PATH",
                        help=f"rotate-key: the new key (default: a new random key, written to {NEW_KEY_FILE} "
                             "in the data directory)")


async def run(args: argparse.Namespace, storage: Storage, data_dir: Path) -> int:
    """Run the parsed ``storage`` command on the started app's storage."""
    if args.action != "rotate-key":
        if args.file is None:
            print(f"grok2api: storage {args.action} needs a FILE", file=sys.stderr)
            return 2
        return await transfer.run(args, storage)
    from grok2api.storage.sealed import SealedStorage, rotate

    if not isinstance(storage, SealedStorage):
        print(f"grok2api: storage rotate-key: no credential key is configured ({KEY_ENV} or "
              f"{data_dir / KEY_FILE}), so nothing is encrypted to rotate", file=sys.stderr)
        return 2
    try:
        print(await rotate(storage, data_dir, args.new_key_file))
    except (StorageError, OSError) as exc:
        print(f"grok2api: storage rotate-key: {exc}", file=sys.stderr)
        return 1
    return 0
