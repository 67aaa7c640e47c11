"""A real GrokClient pointed at a real FakeGrok over loopback, with short timeouts."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
import pytest_asyncio

from grok2api.config.settings import Settings
from grok2api.testing.fake_grok import FakeGrok
from grok2api.upstream import GrokClient

from .support import FAST_TIMEOUTS


@pytest.fixture
def settings(fake_grok: FakeGrok, make_settings: Callable[..., Settings]) -> Settings:
    return make_settings(grok={**fake_grok.grok_settings(), **FAST_TIMEOUTS})


@pytest_asyncio.fixture
async def client(settings: Settings) -> AsyncIterator[GrokClient]:
    grok = GrokClient(settings)
    yield grok
    await grok.close()


@pytest.fixture
def out(tmp_path: Path) -> Path:
    """Where downloads go (``tmp_path`` also holds the test's data dir)."""
    path = tmp_path / "out"
    path.mkdir()
    return path

