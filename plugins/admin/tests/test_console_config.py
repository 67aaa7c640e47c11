"""The config page in real Chromium: a change saved in the page takes effect (the API and the
gateway's behaviour show it), a bad value shows the server's error next to its key, the page
checks what it can before sending, and a secret is never shown back."""

from __future__ import annotations

import openai
import pytest
from playwright.async_api import expect

from grok2api.api import SETTINGS
from grok2api.testing.browser import VIEWPORTS, BrowserFactory, Viewport

from .support import Admin, auth, body_of, login

pytestmark = pytest.mark.parametrize("viewport", VIEWPORTS, ids=lambda v: v.name)

NEW_KEY = "sk-set-in-the-config-page-0123456789"


async def test_a_change_saved_in_the_page_takes_effect(admin: Admin, browser: BrowserFactory,
                                                       viewport: Viewport) -> None:
    client = await admin()
    pages = browser(client)
    page = await pages.open("/admin/config", viewport, login=("admin", "admin"))
    retry = page.locator('.config-row[data-key="grok.max_retry"]')
    await retry.wait_for()
    secret = page.locator('.config-row[data-key="app.api_key"]')
    await expect(secret.locator(".badge", has_text="not set")).to_be_visible()
    assert await secret.locator("input").get_attribute("type") == "password"
    await expect(page.locator('.config-row[data-key="app.app_key"] input')).to_be_disabled()
    assert await page.locator('.config-row[data-key="grok.thinking"] input[type=checkbox]').is_checked()
    assert await page.locator('.config-row[data-key="app.image_format"] select').input_value() == "url"
    assert await page.locator('.config-row[data-key="grok.filter_tags"] textarea').count() == 1

    await page.fill("[data-config-search]", "retry")
    await expect(page.locator(".config-row:visible")).to_have_count(2)  # max_retry, retry_status_codes
    await page.fill("[data-config-search]", "")

    # the page's own checks: nothing is sent
    timeout = page.locator('.config-row[data-key="grok.timeout"]')
    await timeout.locator("input").fill("-1")
    await timeout.locator("input").blur()
    await expect(timeout.locator(".field-error")).to_have_text("Must be greater than 0")
    await expect(timeout).to_have_class("config-row changed")
    await timeout.locator("input").fill("120")
    await expect(timeout.locator(".field-error")).to_be_hidden()
    tags = page.locator('.config-row[data-key="grok.filter_tags"] textarea')
    await tags.fill('["xaiartifact",')
    await tags.blur()
    await expect(page.locator('.config-row[data-key="grok.filter_tags"] .field-error')).to_contain_text("JSON")
    await tags.fill('["xaiartifact"]')

    # the server's check, shown under the key it names
    impersonate = page.locator('.config-row[data-key="grok.impersonate"]')
    await impersonate.locator("input").fill("netscape4")
    await page.click("[data-save]")
    await expect(impersonate.locator(".field-error")).to_contain_text("curl_cffi")
    await page.evaluate("window.scrollTo(0, 0)")
    await pages.screenshot(page, "config", viewport)  # two keys changed, the server's error under one
    assert await page.evaluate("document.documentElement.scrollWidth") <= viewport.width
    assert client.app[SETTINGS].grok.filter_tags != ["xaiartifact"]  # nothing applied
    await impersonate.locator("input").fill("chrome136")

    await retry.locator("input").fill("1")
    await page.locator('.config-row[data-key="grok.thinking"] .switch').click()
    await secret.locator("input").fill(NEW_KEY)
    await expect(page.locator("[data-save-count]")).to_have_text("4 unsaved changes")
    await page.click("[data-save]")
    await expect(page.locator("[data-save-bar]")).to_be_hidden()
    await expect(secret.locator(".badge", has_text="set")).to_have_text("set")
    assert await secret.locator("input").input_value() == ""
    assert NEW_KEY not in await page.content()
    await expect(retry.locator(".badge", has_text="runtime")).to_be_visible()

    h = auth((await login(client))["token"])
    config = await body_of(await client.get("/api/v1/admin/config", headers=h))
    assert config["grok"]["max_retry"] == 1 and config["grok"]["thinking"] is False
    assert config["grok"]["filter_tags"] == ["xaiartifact"] and config["app"]["api_key"] == "***"
    assert client.app[SETTINGS].grok.max_retry == 1
    sdk = openai.AsyncOpenAI(base_url=str(client.make_url("/v1")), api_key=NEW_KEY, max_retries=0)
    await sdk.models.list()  # the key set in the page opens /v1
    with pytest.raises(openai.AuthenticationError):
        await sdk.with_options(api_key="sk-some-other-key-0123456789").models.list()

    await retry.locator("button", has_text="Reset").click()
    await page.locator(".modal .button", has_text="Reset").click()
    await expect(retry.locator("input")).to_have_value("3")
    assert client.app[SETTINGS].grok.max_retry == 3
    pages.assert_clean(expected=(400,))
