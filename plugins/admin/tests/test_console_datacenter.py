"""The datacenter page in real Chromium: cards and charts drawn from requests that went through
the gateway (the openai SDK against the fake Grok), and the log viewer's tail, filter and live tail."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import openai
import pytest
from playwright.async_api import expect

from grok2api.api import POOL, REQUEST_LOG, SETTINGS, Settings
from grok2api.testing.browser import VIEWPORTS, BrowserFactory, Viewport
from grok2api.testing.fake_grok import FakeGrok
from grok2api.testing.pytest_plugin import GatewayFactory
from grok2api_plugins.admin.settings import AdminSettings

from .support import PLUGINS, Client

pytestmark = pytest.mark.parametrize("viewport", VIEWPORTS, ids=lambda v: v.name)

API_KEY = "sk-datacenter-tests-0123456789"
MODEL = "grok-4.1-fast"


def log_line(message: str, level: str = "INFO") -> str:
    """One line as ``grok2api serve`` writes its log files (loguru's serialised records)."""
    record = {"level": {"name": level}, "message": message, "name": "grok2api.web", "function": "handle",
              "line": 42, "time": {"repr": "2026-12-02 01:02:03.456789+00:00"}, "exception": None}
    return json.dumps({"text": message, "record": record}) + "\n"


async def gateway_with_traffic(gateway: GatewayFactory, make_settings: Callable[..., Settings], fake_grok: FakeGrok,
                               logs: Path) -> Client:
    """A gateway with the admin and chat plugins in front of the fake Grok, three answered chat
    requests and one refused, all counted in the request log."""
    fake_grok.add_account("dc-account-1")
    settings = make_settings(grok={**fake_grok.grok_settings(), "timeout": 10}, app={"api_key": API_KEY})
    client: Client = await gateway(*PLUGINS, "chat", settings=settings)
    section = client.app[SETTINGS].admin  # type: ignore[attr-defined]
    client.app[SETTINGS].admin = AdminSettings.model_validate(  # type: ignore[attr-defined]
        {**section.model_dump(), "log_dir": str(logs)})
    await client.app[POOL].add(["dc-account-1"])
    sdk = openai.AsyncOpenAI(base_url=str(client.make_url("/v1")), api_key=API_KEY, max_retries=0)
    for n in range(3):
        answer = await sdk.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": f"hi {n}"}])
        assert answer.choices[0].message.content
    with pytest.raises(openai.APIStatusError):
        await sdk.chat.completions.create(model="no-such-model", messages=[{"role": "user", "content": "hi"}])
    await client.app[REQUEST_LOG].flush()
    return client


async def test_the_datacenter_shows_the_traffic_and_tails_the_log(
        gateway: GatewayFactory, make_settings: Callable[..., Settings], fake_grok: FakeGrok, tmp_path: Path,
        browser: BrowserFactory, viewport: Viewport) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    log = logs / "app_2026-12-02.log"
    log.write_text(log_line("gateway started") + log_line("upstream slow <b>answer</b>", "WARNING") + "plain line\n")
    client = await gateway_with_traffic(gateway, make_settings, fake_grok, logs)
    pages = browser(client)
    page = await pages.open("/admin/datacenter", viewport, login=("admin", "admin"))

    requests = page.locator("[data-cards=requests] .stat").first
    await expect(requests.locator(".value")).to_have_text("4")
    await expect(page.locator("[data-cards=requests] .stat", has_text="Failed").locator(".value")).to_have_text("1")
    await expect(page.locator("[data-cards=tokens] .stat", has_text="Accounts").locator(".value")).to_have_text("1")
    hourly = page.locator("[data-chart=hourly] svg")
    await expect(hourly.locator("polyline")).to_have_count(2)
    assert await hourly.locator("circle title", has_text="Succeeded: 3").count() == 1
    assert await page.locator("[data-chart=daily] svg rect").count() == 2  # today's success and failure
    await expect(page.locator("[data-chart=models] .rank-label", has_text=MODEL)).to_have_count(1)

    view = page.locator("[data-log-view]")
    await expect(view.locator(".log-line")).to_have_count(3)
    warning = view.locator(".log-line.level-warning")
    await expect(warning).to_have_text("2026-12-02 01:02:03 | WARNING  | grok2api.web:handle:42 - upstream slow "
                                       "<b>answer</b>")  # markup in a log line stays text
    assert await view.locator("b").count() == 0
    await page.fill("[data-log-filter]", "plain")
    await expect(view.locator(".log-line")).to_have_text(["plain line"])
    await page.fill("[data-log-filter]", "")

    await page.check("[data-follow]")
    await expect(page.locator("[data-log-status]")).to_contain_text("following")
    with log.open("a", encoding="utf-8") as fh:
        fh.write(log_line("a request came in", "ERROR"))
    await expect(view.locator(".log-line.level-error")).to_contain_text("a request came in")
    await page.uncheck("[data-follow]")
    await page.evaluate("window.scrollTo(0, 0)")  # the sticky header where a person first sees it
    await pages.screenshot(page, "datacenter", viewport)
    assert await page.evaluate("document.documentElement.scrollWidth") <= viewport.width
    pages.assert_clean()
