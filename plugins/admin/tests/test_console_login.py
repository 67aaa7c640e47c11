"""The console's login page in real Chromium, at desktop and phone widths."""

from __future__ import annotations

import pytest

from grok2api.testing.browser import VIEWPORTS, BrowserFactory, Viewport

from .support import Admin

pytestmark = pytest.mark.parametrize("viewport", VIEWPORTS, ids=lambda v: v.name)


async def test_the_login_page_loads_clean_and_refuses_a_wrong_password(
        admin: Admin, browser: BrowserFactory, viewport: Viewport) -> None:
    pages = browser(await admin())
    page = await pages.open("/admin", viewport)
    assert page.url.endswith("/login")
    await page.fill("input[name=password]", "wrong")
    await page.click("button[type=submit]")
    error = page.locator("[data-login-error]")
    await error.wait_for(state="visible")
    assert "password" in (await error.text_content() or "").lower()
    await pages.screenshot(page, "login", viewport)
    pages.assert_clean(expected=(401,))
