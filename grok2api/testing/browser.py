"""Real headless Chromium for page tests: one browser process per test session, a fresh
context per page, Playwright's async API over the DevTools protocol.

Debian's ``chromium`` is started once (installed with apt-get when missing and running as
root, like the engines) with the flags a closed network needs; each test connects to it,
so a test costs a connection rather than a browser start. Every page opened through
:class:`Browser` is watched: a console error, an uncaught exception or a request to
another origin fails :meth:`Browser.assert_clean`.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from grok2api.testing.engines import CHROMIUM, ensure_installed

if TYPE_CHECKING:
    from aiohttp.test_utils import TestClient
    from playwright.async_api import Browser as PlaywrightBrowser
    from playwright.async_api import BrowserContext, Page, Playwright


@dataclass(frozen=True)
class Viewport:
    name: str
    width: int
    height: int


DESKTOP = Viewport("desktop", 1280, 800)
PHONE = Viewport("phone", 390, 844)
VIEWPORTS = (DESKTOP, PHONE)

# --hide-scrollbars: a page is laid out at the viewport's full width, as on a phone (a classic
# scrollbar took 15 px and cut the right edge off full-page screenshots)
_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--disable-quic", "--no-first-run",
          "--disable-background-networking", "--disable-component-update", "--disable-sync",
          "--disable-default-apps", "--disable-extensions", "--mute-audio", "--remote-debugging-port=0")
_LISTENING = re.compile(r"DevTools listening on (ws://\S+)")


class ChromiumProcess:
    """``chromium`` listening for DevTools on a free loopback port, with a throwaway profile."""

    def __init__(self) -> None:
        ensure_installed("chromium")
        self.profile = tempfile.mkdtemp(prefix="grok2api-chromium-")
        self.process = subprocess.Popen([CHROMIUM, *_FLAGS, f"--user-data-dir={self.profile}", "about:blank"],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        self.endpoint = self._endpoint()

    def _endpoint(self) -> str:
        assert self.process.stderr is not None
        seen = []
        for line in self.process.stderr:
            found = _LISTENING.search(line)
            if found:
                return found.group(1)
            seen.append(line)
        self.stop()
        raise RuntimeError("chromium ended before it listened for DevTools:\n" + "".join(seen[-20:]))

    def stop(self) -> None:
        self.process.kill()
        self.process.wait(timeout=10)
        shutil.rmtree(self.profile, ignore_errors=True)


@dataclass
class Browser:
    """Pages of one gateway (``base_url``) in the shared Chromium, each watched for errors."""

    playwright: Playwright
    browser: PlaywrightBrowser
    base_url: str
    screenshots: Path
    problems: list[str] = field(default_factory=list)
    contexts: list[BrowserContext] = field(default_factory=list)

    async def open(self, path: str, viewport: Viewport = DESKTOP, *, login: tuple[str, str] | None = None) -> Page:
        """A new context (its own cookies) at ``viewport``, logged in first when ``login`` is given."""
        context = await self.browser.new_context(viewport={"width": viewport.width, "height": viewport.height},
                                                 base_url=self.base_url, service_workers="block")
        self.contexts.append(context)
        page = await context.new_page()
        origin = urlsplit(self.base_url)[:2]

        def on_console(message: object) -> None:
            if getattr(message, "type", "") == "error":
                self.problems.append(f"console error on {page.url}: {getattr(message, 'text', '')}")

        page.on("console", on_console)
        page.on("pageerror", lambda error: self.problems.append(f"uncaught on {page.url}: {error}"))
        page.on("request", lambda request: self._check_origin(request.url, origin))
        if login is not None:
            response = await context.request.post("/api/v1/admin/login",
                                                  data={"username": login[0], "password": login[1]})
            assert response.ok, await response.text()
        await page.goto(path)
        return page

    def _check_origin(self, url: str, origin: tuple[str, str]) -> None:
        parts = urlsplit(url)
        if parts.scheme in ("data", "blob", "about"):
            return
        scheme = {"ws": "http", "wss": "https"}.get(parts.scheme, parts.scheme)
        if (scheme, parts.netloc) != origin:
            self.problems.append(f"request to another origin: {url}")

    async def close(self) -> None:
        for context in self.contexts:
            await context.close()

    def assert_clean(self, *, expected: tuple[int, ...] = ()) -> None:
        """No console error, uncaught exception or foreign request on any page so far; the
        browser's own error line for a response whose status is in ``expected`` (a login
        refused on purpose) aside."""
        allowed = tuple(f"status of {status} " for status in expected)
        problems = [p for p in self.problems if not (allowed and "Failed to load resource" in p
                                                     and any(a in p for a in allowed))]
        self.problems[:] = []
        assert not problems, "\n".join(problems)

    async def screenshot(self, page: Page, name: str, viewport: Viewport, *, full_page: bool = True) -> Path:
        """``artifacts/screenshots/<name>-<viewport>.png``: the page as a person would see it,
        once its transitions (a drawer sliding in, a dialog scaling up) have ended. An overlay
        covers the screen, not the whole page: take those with ``full_page=False``."""
        self.screenshots.mkdir(parents=True, exist_ok=True)
        path = self.screenshots / f"{name}-{viewport.name}.png"
        await page.evaluate("window.scrollTo(0, 0)")  # a sticky header drawn where the page was scrolled to
        await page.evaluate("Promise.all(document.getAnimations().map(animation => animation.finished))")
        await page.screenshot(path=str(path), full_page=full_page)
        return path


#: the ``browser`` fixture: ``browser(client)`` gives the pages of that test gateway
BrowserFactory = Callable[["TestClient[Any, Any]"], Browser]
