"""pytest fixtures for the fake upstream (registered by ``grok2api.testing.pytest_plugin``).

    async def test_chat(fake_grok, make_settings):
        settings = make_settings(grok=fake_grok.grok_settings())
        fake_grok.inject("rate_limited", retry_after=30)
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
import pytest_asyncio

from grok2api.testing.fake_grok.network import blackhole_url, refused_url
from grok2api.testing.fake_grok.server import FakeGrok


@pytest_asyncio.fixture
async def fake_grok() -> AsyncIterator[FakeGrok]:
    """A started fake on a free loopback port: no accounts (any cookie is a basic
    account), statsig check ``legacy``, no faults."""
    async with FakeGrok() as fake:
        yield fake


@pytest.fixture
def fake_grok_refused_url() -> str:
    """An origin that refuses connections (``Failure.NETWORK_BEFORE_SEND``)."""
    return refused_url()


@pytest.fixture
def fake_grok_blackhole_url() -> Iterator[str]:
    """An origin that never accepts (``Failure.TIMEOUT_CONNECT`` with a short connect timeout)."""
    with blackhole_url() as url:
        yield url
