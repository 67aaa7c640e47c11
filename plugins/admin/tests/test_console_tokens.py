"""The console's token page in real Chromium, at desktop and phone widths: signing in and
out, the filters against the server's counts, a batch refresh followed to its end, stopped,
paused and resumed, notes kept as text, and the phone's drawer and bottom batch bar."""

from __future__ import annotations

import re
from typing import Any

import orjson
import pytest
from playwright.async_api import FilePayload, Page, expect

from grok2api.api import mask_secret
from grok2api.testing.browser import DESKTOP, PHONE, VIEWPORTS, Browser, BrowserFactory, Viewport
from grok2api.testing.fake_grok import FakeGrok
from grok2api_plugins.admin import jobs

from .support import Admin, Client, auth, body_of, job_running, login

by_viewport = pytest.mark.parametrize("viewport", VIEWPORTS, ids=lambda v: v.name)
TOKENS = [f"console-token-{n:02d}-" + "q" * 28 for n in range(20)]
XSS = "<img src=x onerror=alert(1)>"


async def seeded(client: Client, *, notes: bool = True) -> dict[str, str]:
    """Six accounts: two super ones, one disabled, one with a known empty quota; the admin's headers."""
    h = auth((await login(client))["token"])
    await body_of(await client.post("/api/v1/admin/tokens/add", headers=h,
                                    json={"tokens": TOKENS[:4], "note": "eu batch" if notes else ""}))
    await body_of(await client.post("/api/v1/admin/tokens/add", headers=h,
                                    json={"tokens": TOKENS[4:6], "pool": "ssoSuper"}))
    await body_of(await client.post("/api/v1/admin/tokens/disable", headers=h, json={"tokens": [TOKENS[0]]}))
    await body_of(await client.post("/api/v1/admin/tokens/update", headers=h, json={"token": TOKENS[1], "quota": 0}))
    if notes:
        await body_of(await client.post("/api/v1/admin/tokens/update", headers=h,
                                        json={"token": TOKENS[2], "note": XSS}))
    return h


async def expect_count(page: Page, text: str) -> None:
    await expect(page.locator("[data-result-count]")).to_have_text(text)


@by_viewport
async def test_log_in_and_out(admin: Admin, browser: BrowserFactory, viewport: Viewport) -> None:
    pages = browser(await admin())
    page = await pages.open("/admin/token", viewport)
    await page.wait_for_url(re.compile(r"/login"))
    await page.fill("input[name=password]", "admin")
    await page.click("button[type=submit]")
    await page.wait_for_url(re.compile(r"/admin/token$"))
    await expect_count(page, "0 accounts")
    await expect(page.locator("[data-rows] .empty")).to_contain_text("No accounts yet")
    if viewport is PHONE:
        await page.click("[data-drawer-open]")
    await page.click("[data-logout]")
    await page.wait_for_url(re.compile(r"/login$"))
    await page.goto("/admin/token")
    await page.wait_for_url(re.compile(r"/login\?next="))
    await expect(page.locator("[data-login-form]")).to_be_visible()
    pages.assert_clean()


@by_viewport
async def test_the_filters_change_the_count_and_notes_stay_text(
        admin: Admin, browser: BrowserFactory, viewport: Viewport) -> None:
    client = await admin()
    await seeded(client)
    pages = browser(client)
    page = await pages.open("/admin/token", viewport, login=("admin", "admin"))
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: dialogs.append(dialog.message))
    lists: list[str] = []  # the page asks for one page at a time, never the whole pool
    page.on("request", lambda request: lists.append(request.url) if "/api/v1/admin/tokens?" in request.url
            or request.url.endswith("/api/v1/admin/tokens") else None)
    await expect_count(page, "6 accounts")
    await expect(page.locator("[data-count=total]")).to_have_text("6")
    await expect(page.locator("[data-count=invalid]")).to_have_text("1")
    await expect(page.locator("[data-count=exhausted]")).to_have_text("1")

    # the note is text: visible as typed, no element made of it, no script run
    await expect(page.locator("td.note", has_text=XSS)).to_have_count(1)
    assert await page.locator("[data-rows] img").count() == 0
    assert not dialogs

    await page.click("label.chip:has(input[value=supersso])")
    await expect_count(page, "2 of 6 accounts match")
    await page.click("label.chip:has(input[value=sso])")
    await expect_count(page, "6 of 6 accounts match")  # the types are a union
    await page.click("label.chip:has(input[value=sso])")
    await page.click("label.chip:has(input[value=supersso])")
    await page.click("label.chip:has(input[value=invalid])")
    await expect_count(page, "1 of 6 accounts match")
    await expect(page.locator("[data-rows] .badge.red")).to_have_count(1)
    await page.click("label.chip:has(input[value=exhausted])")
    await expect_count(page, "2 of 6 accounts match")  # invalid or exhausted
    await page.click("label.chip:has(input[value=exhausted])")
    await page.click("label.chip:has(input[value=invalid])")
    await page.fill("[data-search]", "eu batch")
    await expect_count(page, "3 of 6 accounts match")
    await page.click('[data-action="reset"]')
    await expect_count(page, "6 accounts")
    await expect(page.locator("[data-rows] .badge.green")).to_have_count(4)
    await expect(page.locator("[data-rows] .badge.orange")).to_have_count(1)
    await pages.screenshot(page, "token", viewport)
    assert not dialogs
    assert lists and all("page_size=50" in url for url in lists), lists
    if viewport is PHONE:  # the table scrolls sideways inside its card; the page itself does not
        assert await page.evaluate("document.documentElement.scrollWidth") <= viewport.width
        assert await page.locator(".table-wrap").evaluate("wrap => wrap.scrollWidth > wrap.clientWidth")
    pages.assert_clean()


@by_viewport
async def test_the_selection_survives_filters_and_paging(
        admin: Admin, browser: BrowserFactory, viewport: Viewport) -> None:
    client = await admin()
    await seeded(client, notes=False)
    pages = browser(client)
    page = await pages.open("/admin/token", viewport, login=("admin", "admin"))
    await page.select_option("[data-page-size]", "20")
    await expect_count(page, "6 accounts")
    await page.click("label.chip:has(input[value=supersso])")
    await expect_count(page, "2 of 6 accounts match")
    await page.check("[data-select-page]")
    await expect(page.locator("[data-selected-count]")).to_have_text("2 selected")
    await page.click("label.chip:has(input[value=supersso])")
    await page.click("label.chip:has(input[value=invalid])")
    await expect_count(page, "1 of 6 accounts match")
    await page.locator("[data-rows] input[type=checkbox]").first.check()
    await expect(page.locator("[data-selected-count]")).to_have_text("3 selected")
    await page.click('[data-action="reset"]')
    await expect(page.locator("[data-rows] input[type=checkbox]:checked")).to_have_count(3)
    await page.click('[data-action="select-matching"]')
    await expect(page.locator("[data-selected-count]")).to_have_text("All 6 matching selected")
    batch = await page.locator("[data-batch]").bounding_box()
    assert batch is not None
    if viewport is PHONE:  # a full-width card at the bottom of the screen
        assert batch["x"] <= 10 and batch["width"] >= viewport.width - 20
        assert batch["y"] + batch["height"] >= viewport.height - 10
    await page.click('[data-action="export-selected"]')
    async with page.expect_download() as download:
        await page.click(".modal-actions .button.primary")
    saved = await (await download.value).path()
    assert sorted(saved.read_text().split()) == sorted(TOKENS[:6])
    pages.assert_clean()


@by_viewport
async def test_a_batch_refresh_shows_progress_to_the_end(
        admin: Admin, browser: BrowserFactory, viewport: Viewport, fake_grok: FakeGrok,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(jobs, "CHUNK", 5)  # four chunks: the bar moves four times
    for token in TOKENS[:19]:
        fake_grok.add_account(token)  # the twentieth is unknown to Grok: its refresh fails
    client = await admin(grok={**fake_grok.grok_settings(), "timeout": 5})
    h = auth((await login(client))["token"])
    await body_of(await client.post("/api/v1/admin/tokens/add", headers=h, json={"tokens": TOKENS}))
    pages = browser(client)
    page = await pages.open("/admin/token", viewport, login=("admin", "admin"))
    await expect_count(page, "20 accounts")
    await page.check("[data-select-page]")
    await expect(page.locator("[data-selected-count]")).to_have_text("20 selected")
    await page.click('[data-job="refresh"]')
    title = page.locator("[data-job-title]")
    await expect(title).to_have_text("Refreshing 20 accounts: done", timeout=30_000)
    await expect(page.locator(".progress-text")).to_have_text("20 / 20 · 1 failed")
    assert await page.locator(".progress").get_attribute("aria-valuenow") == "100"
    await expect(page.locator("[data-job-errors]")).to_be_visible()
    await expect(page.locator("[data-job-error-list] code")).to_have_text(mask_secret(TOKENS[19]))  # the job keeps ids
    await pages.screenshot(page, "token-job", viewport)
    # the failed one again, as a new job
    await page.click('[data-action="retry-job"]')
    await expect(title).to_have_text("Refreshing 1 account: done", timeout=30_000)
    listed: list[dict[str, Any]] = (await body_of(await client.get("/api/v1/admin/jobs", headers=h)))["jobs"]
    assert [(j["kind"], j["total"], j["failed"]) for j in listed] == [("refresh", 1, 1), ("refresh", 20, 1)]
    await page.click('[data-action="close-job"]')
    await expect(page.locator("[data-batch-actions]")).to_be_visible()
    await expect(page.locator("[data-rows] td.quota", has_text=re.compile(r"\d"))).to_have_count(19)  # synced
    pages.assert_clean()


async def refresh_started(admin: Admin, browser: BrowserFactory, viewport: Viewport, fake_grok: FakeGrok,
                          tokens: list[str], *, slow: list[str], delay: float) -> tuple[Client, dict[str, str],
                                                                                       Browser, Page]:
    """The token page with a batch refresh of ``tokens`` just asked for, on a gateway whose Grok
    answers the quota of each ``slow`` account after ``delay`` s: the client, the admin's
    headers, the browser and the page."""
    for token in tokens:
        fake_grok.add_account(token)
    for token in slow:
        fake_grok.inject("slow_first_byte", account=token, endpoint="rate_limits", delay=delay)
    client = await admin(grok={**fake_grok.grok_settings(), "timeout": 10})
    h = auth((await login(client))["token"])
    await body_of(await client.post("/api/v1/admin/tokens/add", headers=h, json={"tokens": tokens}))
    pages = browser(client)
    page = await pages.open("/admin/token", viewport, login=("admin", "admin"))
    await expect_count(page, f"{len(tokens)} accounts")
    await page.check("[data-select-page]")
    await page.click('[data-job="refresh"]')
    return client, h, pages, page


@by_viewport
async def test_a_batch_job_is_stopped(
        admin: Admin, browser: BrowserFactory, viewport: Viewport, fake_grok: FakeGrok,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(jobs, "CHUNK", 5)
    # Grok answers the first account's quota slowly: the first chunk is still running when Stop is pressed
    client, h, pages, page = await refresh_started(admin, browser, viewport, fake_grok, TOKENS[:10],
                                                   slow=TOKENS[:1], delay=3)
    await expect(page.locator("[data-job-title]")).to_have_text("Refreshing 10 accounts…")
    await page.click('[data-action="stop-job"]')
    await expect(page.locator("[data-job-title]")).to_have_text("Refreshing 10 accounts: stopped", timeout=30_000)
    job = (await body_of(await client.get("/api/v1/admin/jobs", headers=h)))["jobs"][0]
    assert job["state"] == "cancelled" and job["done"] + job["failed"] < 10
    await expect(page.locator('[data-action="stop-job"]')).to_be_hidden()
    pages.assert_clean()


@by_viewport
async def test_a_batch_job_is_paused_and_resumed(
        admin: Admin, browser: BrowserFactory, viewport: Viewport, fake_grok: FakeGrok,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(jobs, "CHUNK", 5)
    # the first two chunks answer slowly: the job is mid-way when paused
    client, h, pages, page = await refresh_started(admin, browser, viewport, fake_grok, TOKENS,
                                                   slow=[TOKENS[0], TOKENS[5]], delay=1.5)
    title, text, toggle = page.locator("[data-job-title]"), page.locator(".progress-text"), page.locator(
        '[data-action="pause-job"]')
    await job_running(client, h)
    await toggle.click()
    await expect(title).to_have_text("Refreshing 20 accounts: paused", timeout=30_000)
    await expect(toggle).to_have_text("Resume")
    await expect(toggle).to_be_enabled()
    paused = (await body_of(await client.get("/api/v1/admin/jobs", headers=h)))["jobs"][0]
    assert paused["state"] == "paused" and 0 < paused["done"] < 20  # stopped between chunks, mid-way
    await expect(text).to_have_text(f"{paused['done']} / 20 · paused")  # the count the job stopped at
    await expect(page.locator(".progress")).to_have_class(re.compile(r"\bpaused\b"))
    await pages.screenshot(page, "token-job-paused", viewport)
    await toggle.click()
    await expect(title).to_have_text("Refreshing 20 accounts: done", timeout=30_000)
    await expect(text).to_have_text("20 / 20")
    await expect(page.locator(".progress")).not_to_have_class(re.compile(r"\bpaused\b"))
    await expect(toggle).to_be_hidden()
    final = (await body_of(await client.get("/api/v1/admin/jobs", headers=h)))["jobs"][0]
    assert (final["id"], final["state"], final["done"]) == (paused["id"], "finished", 20)
    pages.assert_clean()


@by_viewport
async def test_add_import_edit_and_delete(admin: Admin, browser: BrowserFactory, viewport: Viewport) -> None:
    client = await admin()
    pages = browser(client)
    page = await pages.open("/admin/token", viewport, login=("admin", "admin"))
    await expect_count(page, "0 accounts")
    await page.click('[data-action="add"]')
    await page.fill(".modal textarea[name=tokens]", f"sso={TOKENS[0]}\n{TOKENS[1]}\n{TOKENS[0]}")
    await page.fill(".modal input[name=note]", "added by hand")
    await page.click(".modal-actions .button.primary")
    await expect_count(page, "2 accounts")
    await expect(page.locator("td.note", has_text="added by hand")).to_have_count(2)

    await page.click('[data-action="import"]')
    await page.fill(".modal textarea[name=text]", '{"neither": "a pool list"}')
    await page.click(".modal-actions .button.primary")
    refused = page.locator(".modal .field:has(textarea[name=text]) .field-error")  # the backend's own words
    await expect(refused).to_be_visible()
    assert (await refused.text_content() or "").strip()
    await page.fill(".modal textarea[name=text]", f"{TOKENS[1]}\n{TOKENS[2]}\n# a comment\n")
    await page.select_option(".modal select[name=pool]", "ssoSuper")
    await page.click(".modal-actions .button.primary")
    await expect(page.locator(".modal .import-report")).to_have_text("Added 1, merged 1, skipped 0")
    original = orjson.dumps({"ssoBasic": [{"token": TOKENS[3], "note": "from a file"}, TOKENS[2]]})
    upload: FilePayload = {"name": "token.json", "mimeType": "application/json", "buffer": original}
    await page.set_input_files(".modal input[name=file]", files=[upload])
    await page.click(".modal-actions .button.primary")
    await expect(page.locator(".modal .import-report")).to_have_text("Added 1, merged 1, skipped 0")
    await pages.screenshot(page, "token-import", viewport)
    await page.keyboard.press("Escape")
    await expect(page.locator(".overlay")).to_have_count(0)
    await expect_count(page, "4 accounts")
    await expect(page.locator("td.note", has_text="from a file")).to_have_count(1)

    row = page.locator("[data-rows] tr", has_text="added by hand").first
    await row.locator("button", has_text="Edit").click()
    await page.fill(".modal input[name=note]", "x" * 60)  # the field stops at 50
    assert len(await page.input_value(".modal input[name=note]")) == 50
    await page.fill(".modal input[name=note]", "edited")
    await page.fill(".modal input[name=tags]", "eu, night")
    await page.click(".modal-actions .button.primary")
    edited = page.locator("[data-rows] tr", has_text="edited")
    await expect(edited.locator(".badge.tag")).to_have_text(["eu", "night"])

    await edited.locator("button", has_text="Delete").click()
    await page.click(".modal-actions .button.danger")
    await expect_count(page, "3 accounts")
    pages.assert_clean(expected=(400,))


async def test_pages_of_the_pool_and_a_selection_across_them(admin: Admin, browser: BrowserFactory) -> None:
    client = await admin()
    h = auth((await login(client))["token"])
    many = [f"paged-token-{n:03d}-" + "p" * 28 for n in range(45)]
    await body_of(await client.post("/api/v1/admin/tokens/add", headers=h, json={"tokens": many}))
    pages = browser(client)
    page = await pages.open("/admin/token", DESKTOP, login=("admin", "admin"))
    await page.select_option("[data-page-size]", "20")
    await expect(page.locator("[data-page-info]")).to_have_text("of 3")
    await expect(page.locator("[data-rows] tr")).to_have_count(20)
    await page.locator("[data-rows] input[type=checkbox]").first.check()
    await page.click('[data-page="next"]')
    await expect(page.locator("[data-page-number]")).to_have_value("2")
    await page.fill("[data-page-number]", "3")
    await page.press("[data-page-number]", "Enter")
    await expect(page.locator("[data-rows] tr")).to_have_count(5)
    assert await page.locator('[data-page="next"]').is_disabled()
    await page.check("[data-select-page]")
    await expect(page.locator("[data-selected-count]")).to_have_text("6 selected")
    await page.click('[data-page="prev"]')
    await expect(page.locator("[data-page-number]")).to_have_value("2")
    await expect(page.locator("[data-rows] input[type=checkbox]:checked")).to_have_count(0)
    await page.fill("[data-page-number]", "1")
    await page.press("[data-page-number]", "Enter")
    await expect(page.locator("[data-rows] input[type=checkbox]:checked")).to_have_count(1)
    await page.click('[data-action="select-matching"]')
    await expect(page.locator("[data-selected-count]")).to_have_text("All 45 matching selected")
    pages.assert_clean()


async def test_the_cards_follow_the_pool_and_leave_the_table_alone(admin: Admin, browser: BrowserFactory) -> None:
    client = await admin()
    h = await seeded(client, notes=False)
    pages = browser(client)
    page = await pages.open("/admin/token", DESKTOP, login=("admin", "admin"))
    await expect_count(page, "6 accounts")
    await page.locator("[data-rows] tr").first.evaluate("row => { row.dataset.seen = 'yes'; }")
    await body_of(await client.post("/api/v1/admin/tokens/add", headers=h, json={"tokens": TOKENS[6:8]}))
    await expect(page.locator("[data-count=total]")).to_have_text("8", timeout=15_000)  # the next 5 s refresh
    await expect(page.locator("[data-count=active]")).to_have_text("6")
    assert await page.locator("[data-rows] tr[data-seen=yes]").count() == 1  # the same rows, not re-rendered
    await expect_count(page, "6 accounts")
    pages.assert_clean()


async def test_the_drawer_opens_and_closes_on_a_phone(admin: Admin, browser: BrowserFactory) -> None:
    pages = browser(await admin())
    page = await pages.open("/admin/token", PHONE, login=("admin", "admin"))
    navigation = page.locator("#navigation")
    opener = page.locator("[data-drawer-open]")
    await expect(opener).to_be_visible()
    for close in ("overlay", "escape", "link"):
        await opener.click()
        await expect(navigation).to_have_class(re.compile(r"\bopen\b"))
        await expect(page.locator(".drawer-overlay")).to_be_visible()
        await expect(opener).to_have_attribute("aria-expanded", "true")
        if close == "overlay":
            await page.mouse.click(PHONE.width - 20, PHONE.height // 2)  # beside the drawer
        elif close == "escape":
            await page.keyboard.press("Escape")
        else:
            await navigation.locator('a[href="/admin/token"]').click()
        await expect(navigation).not_to_have_class(re.compile(r"\bopen\b"))
        await expect(page.locator(".drawer-overlay")).to_be_hidden()
    await opener.click()
    await pages.screenshot(page, "token-drawer", PHONE, full_page=False)
    pages.assert_clean()
