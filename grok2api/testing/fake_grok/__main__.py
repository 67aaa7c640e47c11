"""``python -m grok2api.testing.fake_grok`` (and ``grok2api fake-upstream``): run the fake
on a fixed port until interrupted, then point ``grok.base_url``/``grok.assets_url`` at it."""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import get_args

from grok2api.testing.fake_grok.accounts import Tier
from grok2api.testing.fake_grok.server import FakeGrok, StatsigCheck


def _account(text: str) -> tuple[str, Tier]:
    token, _, tier = text.rpartition(":")
    if token and tier in get_args(Tier):
        return token, tier  # type: ignore[return-value]
    return text, "basic"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="grok2api fake-upstream",
                                     description="A fake Grok web upstream on loopback ([T] dialect).")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument("--account", action="append", default=[], metavar="TOKEN[:basic|super]",
                        help="an SSO token the fake accepts (repeatable); without any, every token is a basic account")
    parser.add_argument("--statsig", choices=get_args(StatsigCheck), default="legacy",
                        help="x-statsig-id validation on /rest/* (default: legacy)")
    parser.add_argument("--frame-delay", type=float, default=0.02, metavar="SECONDS",
                        help="pause between stream lines (default: 0.02)")
    return parser


async def _serve(args: argparse.Namespace) -> None:
    async with FakeGrok(host=args.host, port=args.port, statsig=args.statsig, frame_delay=args.frame_delay) as fake:
        for text in args.account:
            token, tier = _account(text)
            fake.add_account(token, tier=tier)
        print(f"fake Grok upstream: grok.base_url = {fake.base_url}  grok.assets_url = {fake.assets_url}",
              flush=True)
        await asyncio.Event().wait()


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        asyncio.run(_serve(args))
    except KeyboardInterrupt:
        pass
    except OSError as exc:
        print(f"fake-upstream: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
