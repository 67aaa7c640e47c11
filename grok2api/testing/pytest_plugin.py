"""The project's pytest plugin (entry point ``pytest11``): apps with exactly the plugins a test names.

    async def test_models(gateway):
        client = await gateway("storage_local", "chat")
        assert (await client.get("/v1/models")).status == 200

Plugins are named by entry-point name or given as objects; installed plugins are not
loaded unless ``entrypoints=True``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import pytest
from aiohttp.test_utils import TestClient

from grok2api.config.settings import Settings, load_settings
from grok2api.plugin.manager import GROUP
from grok2api.testing.engines import make_storage, mysql_url, pgsql_url, redis_url  # noqa: F401
from grok2api.testing.fake_grok.fixtures import fake_grok, fake_grok_blackhole_url, fake_grok_refused_url  # noqa: F401

if TYPE_CHECKING:
    from grok2api.testing.browser import Browser, BrowserFactory


class GatewayFactory(Protocol):
    def __call__(self, *plugins: str | object, settings: Settings | None = None,
                 entrypoints: bool = False) -> Awaitable[TestClient]: ...


def load_plugin(name: str) -> object:
    """The module an installed plugin's entry point names."""
    for ep in metadata.entry_points(group=GROUP, name=name):
        return ep.load()
    raise LookupError(f"no installed grok2api plugin named {name!r}")


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private data directory; the environment points ``DATA_DIR`` at it."""
    path = tmp_path / "data"
    path.mkdir()
    monkeypatch.setenv("DATA_DIR", str(path))
    for name in ("SERVER_STORAGE_TYPE", "SERVER_STORAGE_URL", "GROK2API_DISABLE_PLUGINS"):
        monkeypatch.delenv(name, raising=False)
    return path


@pytest.fixture
def make_settings(data_dir: Path) -> Callable[..., Settings]:
    """Settings from the test's data dir plus keyword overrides (``grok={"base_url": ...}``)."""

    def make(**overrides: Any) -> Settings:
        settings = load_settings()
        for section, values in overrides.items():
            current = getattr(settings, section)
            setattr(settings, section, current.model_validate({**current.model_dump(), **values})
                    if hasattr(current, "model_dump") else values)
        settings.token.auto_refresh = overrides.get("token", {}).get("auto_refresh", False)
        return settings

    return make


@pytest.fixture
def gateway(aiohttp_client: Any, make_settings: Callable[..., Settings]) -> GatewayFactory:
    """Build and start an app in-process; returns an aiohttp test client."""

    async def make(*plugins: str | object, settings: Settings | None = None,
                   entrypoints: bool = False) -> TestClient:
        from grok2api.web.app import create_app  # imported late: this plugin loads in every pytest run

        objects = [load_plugin(p) if isinstance(p, str) else p for p in plugins]
        app = create_app(settings or make_settings(), objects, load_entrypoints=entrypoints)
        return await aiohttp_client(app)

    return make


@pytest.fixture(scope="session")
def chromium() -> Iterator[str]:
    """Debian's Chromium for the whole test session: its DevTools endpoint."""
    from grok2api.testing.browser import ChromiumProcess  # imported late: only page tests need it

    process = ChromiumProcess()
    yield process.endpoint
    process.stop()


@pytest.fixture
async def browser(chromium: str, request: pytest.FixtureRequest) -> AsyncIterator[BrowserFactory]:
    """``browser(client)``: pages of that test gateway in real Chromium (see :mod:`grok2api.testing.browser`)."""
    from playwright.async_api import async_playwright

    from grok2api.testing.browser import Browser

    async with async_playwright() as playwright:
        connected = await playwright.chromium.connect_over_cdp(chromium)
        shots = request.config.rootpath / "artifacts" / "screenshots"
        made: list[Browser] = []

        def make(client: TestClient) -> Browser:
            made.append(Browser(playwright, connected, str(client.make_url("")).rstrip("/"), shots))
            return made[-1]

        try:
            yield make
        finally:
            for each in made:
                await each.close()
            await connected.close()
