"""The console's keys page in real Chromium, at desktop and phone widths: a key created in
the page works with the openai SDK (and one limited to a model chats with that model
only), the modal's presets, generated key, Esc and overlay, errors from the backend
beside their field, edit, filters and delete."""

from __future__ import annotations

import re
from collections.abc import Callable

import openai
import pytest
from playwright.async_api import expect

from grok2api.api import POOL, Settings
from grok2api.testing.browser import DESKTOP, VIEWPORTS, BrowserFactory, Viewport
from grok2api.testing.fake_grok import FakeGrok
from grok2api.testing.pytest_plugin import GatewayFactory

from .support import PLUGINS, Admin, auth, body_of, login

by_viewport = pytest.mark.parametrize("viewport", VIEWPORTS, ids=lambda v: v.name)
SUBMIT = ".modal-actions .button.primary"


@by_viewport
async def test_a_key_created_in_the_page_works_with_the_openai_sdk(
        admin: Admin, browser: BrowserFactory, viewport: Viewport) -> None:
    client = await admin()
    pages = browser(client)
    page = await pages.open("/admin/keys", viewport, login=("admin", "admin"))
    await page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=pages.base_url)
    await expect(page.locator("[data-result-count]")).to_have_text("0 keys")

    # Esc and the overlay close the modal
    await page.click('[data-action="create"]')
    await expect(page.locator(".modal")).to_be_visible()
    await page.keyboard.press("Escape")
    await expect(page.locator(".overlay")).to_have_count(0)
    await page.click('[data-action="create"]')
    await page.locator(".overlay").click(position={"x": 5, "y": 5})
    await expect(page.locator(".overlay")).to_have_count(0)

    await page.click('[data-action="create"]')
    form = page.locator(".modal form")
    assert await form.locator("input[name=chat_per_day]").input_value() == "300"  # recommended by default
    await form.locator('[data-preset="unlimited"]').click()
    assert [await form.locator(f"input[name={b}_per_day]").input_value() for b in ("chat", "video")] == ["", ""]
    await form.locator('[data-preset="recommended"]').click()
    assert [await form.locator(f"input[name={b}_per_day]").input_value()
            for b in ("chat", "heavy", "image", "video")] == ["300", "100", "100", "20"]
    await form.locator("button", has_text="Generate").click()
    key = await form.locator("input[name=key]").input_value()
    assert re.fullmatch(r"sk-[A-Za-z0-9]{24}", key), key
    await form.locator("input[name=name]").fill("ci-bot")
    await form.locator("input[name=rpm]").fill("60")
    await form.locator("input[name=concurrency]").fill("2")
    await pages.screenshot(page, "keys-form", viewport)
    await page.dblclick(SUBMIT)  # the button is disabled while the first submit runs: one key
    created = page.locator("[data-new-key]")
    await expect(created).to_have_text(key)
    assert await page.evaluate("navigator.clipboard.readText()") == key  # copied at once
    await page.click(".modal-actions button:has-text('Done')")

    row = page.locator("[data-rows] tr", has_text="ci-bot")
    await expect(row).to_contain_text("300 / 100 / 100 / 20")
    await expect(row.locator(".badge.green")).to_have_text("enabled")
    await expect(page.locator("[data-count=total]")).to_have_text("1")
    h = auth((await login(client))["token"])
    rows = (await body_of(await client.get("/api/v1/admin/keys", headers=h)))["data"]
    assert [(r["name"], r["rpm"], r["concurrency"], r["chat_limit"]) for r in rows] == [("ci-bot", 60, 2, 300)]
    await pages.screenshot(page, "keys", viewport)

    sdk = openai.AsyncOpenAI(base_url=str(client.make_url("/v1")), api_key=key, max_retries=0)
    listed = await sdk.models.list()
    assert listed.object == "list"
    wrong = openai.AsyncOpenAI(base_url=str(client.make_url("/v1")), api_key="sk-" + "x" * 24, max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        await wrong.models.list()
    pages.assert_clean()


@by_viewport
async def test_errors_show_beside_their_field_and_keys_are_edited_filtered_and_deleted(
        admin: Admin, browser: BrowserFactory, viewport: Viewport) -> None:
    client = await admin()
    h = auth((await login(client))["token"])
    await body_of(await client.post("/api/v1/admin/keys", headers=h, json={"name": "taken", "key": "sk-taken-0001"}))
    await body_of(await client.post("/api/v1/admin/keys", headers=h,
                                    json={"name": "spent", "limits": {"chat_per_day": 0}}))
    await body_of(await client.post("/api/v1/admin/keys", headers=h, json={"name": "old", "expires_at": 1000}))
    pages = browser(client)
    page = await pages.open("/admin/keys", viewport, login=("admin", "admin"))
    await expect(page.locator("[data-result-count]")).to_have_text("3 keys")
    await expect(page.locator("[data-count=exhausted]")).to_have_text("1")

    await page.click('[data-action="create"]')
    form = page.locator(".modal form")
    await form.locator("input[name=key]").fill("sk-taken-0001")
    await page.click(SUBMIT)
    error = form.locator(".field:has(input[name=key]) .field-error")
    await expect(error).to_have_text("Key already exists")
    await form.locator("input[name=key]").fill("")
    await form.locator("input[name=rpm]").fill("-3")
    await page.click(SUBMIT)
    await expect(form.locator(".field:has(input[name=rpm]) .field-error")).to_contain_text("whole number")
    await form.locator("input[name=rpm]").fill("")
    await form.locator("textarea[name=models]").fill("no-such-model")
    await page.click(SUBMIT)
    await expect(form.locator(".field:has(textarea[name=models]) .field-error")).to_contain_text("no-such-model")
    await pages.screenshot(page, "keys-errors", viewport)
    await page.keyboard.press("Escape")

    row = page.locator("[data-rows] tr", has_text="taken")
    await row.locator("button", has_text="Edit").click()
    assert await page.locator(".modal input[name=key]").is_disabled()
    await page.locator(".modal input[name=name]").fill("renamed <b>bold</b>")
    await page.locator(".modal label.switch").click()  # disabled
    await page.fill(".modal input[name=expires_at]", "2031-05-06T07:08")
    await page.click(SUBMIT)
    renamed = page.locator("[data-rows] tr", has_text="renamed <b>bold</b>")
    await expect(renamed.locator(".badge")).to_have_text("disabled")
    assert await page.locator("[data-rows] b").count() == 0
    expires = await page.evaluate("new Date('2031-05-06T07:08').getTime() / 1000")
    rows = {r["name"]: r for r in (await body_of(await client.get("/api/v1/admin/keys", headers=h)))["data"]}
    assert rows["renamed <b>bold</b>"]["expires_at"] == expires and not rows["renamed <b>bold</b>"]["is_active"]

    await page.select_option("[data-status]", "inactive")
    await expect(page.locator("[data-result-count]")).to_have_text("1 of 3 keys match")
    await page.select_option("[data-status]", "exhausted")
    await expect(page.locator("[data-rows] tr")).to_have_text([re.compile("spent")])
    await page.select_option("[data-status]", "expired")
    await expect(page.locator("[data-rows] tr .badge.red")).to_have_text(["expired"])
    await expect(page.locator("[data-rows] tr")).to_have_text([re.compile("old")])
    await page.click('[data-action="reset"]')
    await page.fill("[data-search]", "RENAMED")
    await expect(page.locator("[data-result-count]")).to_have_text("1 of 3 keys match")
    await page.click('[data-action="reset"]')

    await renamed.locator("button", has_text="Delete").click()
    await page.click(".modal-actions .button.danger")
    await expect(page.locator("[data-result-count]")).to_have_text("2 keys")
    left = (await body_of(await client.get("/api/v1/admin/keys", headers=h)))["data"]
    assert sorted(r["name"] for r in left) == ["old", "spent"]
    pages.assert_clean(expected=(400,))


async def test_a_key_limited_to_one_model_in_the_page_chats_with_that_model_only(
        gateway: GatewayFactory, make_settings: Callable[..., Settings], browser: BrowserFactory,
        fake_grok: FakeGrok) -> None:
    fake_grok.add_account("chat-account-1")
    client = await gateway(*PLUGINS, "chat", settings=make_settings(grok={**fake_grok.grok_settings(), "timeout": 5}))
    await client.app[POOL].add(["chat-account-1"])
    pages = browser(client)
    page = await pages.open("/admin/keys", DESKTOP, login=("admin", "admin"))
    await page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=pages.base_url)
    await page.click('[data-action="create"]')
    await page.fill(".modal input[name=name]", "grok-3 only")
    await page.fill(".modal textarea[name=models]", "grok-3")
    await page.click(SUBMIT)
    key = await page.locator("[data-new-key]").text_content() or ""
    assert key.startswith("sk-")
    await page.click(".modal-actions button:has-text('Done')")
    await expect(page.locator("[data-rows] tr", has_text="grok-3 only").locator("td.models")).to_have_text("grok-3")

    sdk = openai.AsyncOpenAI(base_url=str(client.make_url("/v1")), api_key=key, max_retries=0)
    assert [m.id for m in (await sdk.models.list()).data] == ["grok-3"]
    answer = await sdk.chat.completions.create(model="grok-3", messages=[{"role": "user", "content": "hello"}])
    assert answer.choices[0].message.content
    with pytest.raises(openai.PermissionDeniedError):
        await sdk.chat.completions.create(model="grok-4", messages=[{"role": "user", "content": "hello"}])
    pages.assert_clean()
