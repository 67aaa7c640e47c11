"""A plugin that puts accounts into the pool when the app starts, for benchmarks and demos."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

from aiohttp import web

from grok2api.api import POOL, CleanupContext, hookimpl


class SeedAccounts:
    """Register it beside the other plugins: ``create_app(settings, [SeedAccounts(tokens)])``."""

    plugin_name = "seed_accounts"

    def __init__(self, tokens: Sequence[str]) -> None:
        self.tokens = list(tokens)

    @hookimpl
    def grok2api_cleanup_ctx(self, app: web.Application) -> CleanupContext:
        return self._seed

    async def _seed(self, app: web.Application) -> AsyncIterator[None]:
        await app[POOL].add(self.tokens)
        yield
