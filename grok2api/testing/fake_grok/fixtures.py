"""pytest fixtures for the fake upstream (registered by ``grok2api.testing.pytest_plugin``).

    async def test_chat(fake_grok, make_settings):
        settings = make_settings(grok=fake_grok.grok_settings())
        fake_grok.inject("rate_limited", retry_after=30)
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest_asyncio

from grok2api.testing.fake_grok.server import FakeGrok


@pytest_asyncio.fixture
async def fake_grok() -> AsyncIterator[FakeGrok]:
    """A started fake on a free loopback port: no accounts (any cookie is a basic
    account), statsig check ``legacy``, no faults."""
    async with FakeGrok() as fake:
        yield fake
