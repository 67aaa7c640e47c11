"""The console's login page in real Chromium, at desktop and phone widths."""

from __future__ import annotations

import pytest

from grok2api.testing.browser import VIEWPORTS, BrowserFactory, Viewport

from .support import PASSWORD, Admin

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


async def test_every_page_says_the_default_password_is_in_use_until_it_is_changed(
        admin: Admin, browser: BrowserFactory, viewport: Viewport) -> None:
    pages = browser(await admin())
    page = await pages.open("/admin/token", viewport, login=("admin", "admin"))
    banner = page.locator("[data-password-banner]")
    await banner.wait_for(state="visible")
    await page.click("[data-change-password]")
    await page.fill("input[name=current_password]", "admin")
    await page.fill("input[name=new_password]", "too-short")
    await page.fill("input[name=repeat]", "something else")
    await page.click(".modal-actions .button.primary")
    assert await page.locator(".field-error:visible").text_content() == "The two new passwords differ"
    await page.fill("input[name=repeat]", "too-short")
    await page.click(".modal-actions .button.primary")
    error = page.locator("input[name=new_password] ~ .field-error")
    await error.wait_for(state="visible")  # the server's rule, under the field it names
    await page.fill("input[name=new_password]", PASSWORD)
    await page.fill("input[name=repeat]", PASSWORD)
    await page.click(".modal-actions .button.primary")
    await banner.wait_for(state="hidden")
    await page.goto("/admin/keys")  # the new session cookie carries on, and the warning stays away
    await page.locator("h1").wait_for()
    assert not await banner.is_visible()
    pages.assert_clean(expected=(400,))
