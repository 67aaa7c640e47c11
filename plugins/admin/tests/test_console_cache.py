"""The cache page in real Chromium: a cached image listed with its preview (served by the
gateway's own /v1/files), viewed and deleted; online asset counts loaded for a selection and
the assets cleared by a job with progress, pause and resume, and a retry of the account
Grok refused."""

from __future__ import annotations

import re
import struct
import zlib

import pytest
from playwright.async_api import expect

from grok2api.api import MEDIA
from grok2api.testing.browser import VIEWPORTS, BrowserFactory, Viewport
from grok2api.testing.fake_grok import FakeGrok, StoredAsset
from grok2api_plugins.admin import jobs

from .support import Admin, auth, body_of, job_running, login

pytestmark = pytest.mark.parametrize("viewport", VIEWPORTS, ids=lambda v: v.name)



def png(width: int, height: int, rgb: tuple[int, int, int]) -> bytes:
    """A real PNG of one colour, so the browser decodes the preview."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\x00" + bytes(rgb) * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


PNG = png(2, 2, (37, 99, 235))
GOOD = ["cache-page-token-" + c * 24 for c in "ab"]
REFUSED = "cache-page-token-" + "z" * 24


@pytest.fixture(autouse=True)
def quick_jobs(monkeypatch: pytest.MonkeyPatch) -> None:
    """The job runner looks for new jobs often, so the page's job starts at once."""
    monkeypatch.setattr(jobs, "POLL_SEC", 0.1)


async def test_the_cache_page_lists_previews_deletes_and_clears_online_assets(
        admin: Admin, fake_grok: FakeGrok, browser: BrowserFactory, viewport: Viewport) -> None:
    owners = [fake_grok.add_account(token) for token in GOOD]
    for n, owner in enumerate(owners * 2):
        path = f"users/{owner.user_id}/c{n}/content"
        fake_grok.assets[path] = StoredAsset(f"c{n}", path, "image/png", PNG, owner.user_id)
    client = await admin(grok={**fake_grok.grok_settings(), "timeout": 5})
    await client.post("/api/v1/admin/tokens/add", json={"tokens": [*GOOD, REFUSED]},
                      headers=auth((await login(client))["token"]))
    images = client.app[MEDIA].directory("image")
    images.mkdir(parents=True, exist_ok=True)
    (images / "picture.png").write_bytes(PNG)
    videos = client.app[MEDIA].directory("video")
    videos.mkdir(parents=True, exist_ok=True)
    (videos / "picture.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42")  # its poster is the image of its name
    pages = browser(client)
    page = await pages.open("/admin/cache", viewport, login=("admin", "admin"))

    await expect(page.locator("[data-value=image]")).to_have_text("1")
    row = page.locator('[data-local-rows] tr[data-name="picture.png"]')
    thumb = row.locator("img.thumb")
    await expect(thumb).to_have_attribute("src", "/v1/files/image/picture.png")
    await page.wait_for_function("img => img.complete && img.naturalWidth === 2", arg=await thumb.element_handle())
    await pages.screenshot(page, "cache", viewport)
    assert await page.evaluate("document.documentElement.scrollWidth") <= viewport.width
    await row.locator("button", has_text="View").click()
    viewer = page.locator(".modal .viewer-media")
    await page.wait_for_function("img => img.complete && img.naturalWidth === 2", arg=await viewer.element_handle())
    await page.keyboard.press("Escape")
    await expect(page.locator(".modal")).to_have_count(0)

    await row.locator("button", has_text="Delete").click()
    await page.locator(".modal .button.danger", has_text="Delete").click()
    await expect(row).to_have_count(0)
    await expect(page.locator("[data-local-rows] .empty")).to_have_text("No cached images")
    await expect(page.locator("[data-value=image]")).to_have_text("0")
    assert not (images / "picture.png").exists()

    await page.click("[data-tab=video]")
    video = page.locator('[data-local-rows] tr[data-name="picture.mp4"]')
    await expect(video.locator(".thumb.placeholder")).to_have_count(1)  # its poster went with picture.png
    await expect(page.locator("[data-value=video]")).to_have_text("1")

    await page.click("[data-tab=online]")
    await expect(page.locator("[data-online-rows] tr[data-id]")).to_have_count(3)
    await page.check("[data-select-page=online]")
    await expect(page.locator("[data-batch-count]")).to_have_text("3 selected")
    await page.locator("[data-batch-actions] button", has_text="Load counts").click()
    await expect(page.locator("[data-batch-count]")).to_have_text("Counts loaded for 2 accounts, 1 failed")
    await expect(page.locator("[data-online-rows] .badge.green")).to_have_text(["2 assets", "2 assets"])
    await expect(page.locator("[data-online-rows] .badge.red")).to_have_count(1)
    await expect(page.locator("[data-value=online]")).to_have_text("4")

    await page.locator("[data-batch-actions] button", has_text="Close").click()
    await page.locator("[data-batch-actions] button", has_text="Clear assets").click()
    await page.locator(".modal .button.danger", has_text="Clear assets").click()
    await expect(page.locator("[data-batch-count]")).to_have_text("2 of 3 cleared, 1 failed", timeout=15_000)
    assert not fake_grok.assets
    await expect(page.locator("[data-online-rows] .badge.green")).to_have_text(["0 assets", "0 assets"])
    await page.locator("[data-batch-actions] button", has_text="Details").click()
    await expect(page.locator(".modal .failure-list li")).to_have_count(1)
    await page.keyboard.press("Escape")
    await page.locator("[data-batch-actions] button", has_text="Retry failed").click()
    await expect(page.locator("[data-batch-count]")).to_have_text("0 of 1 cleared, 1 failed", timeout=15_000)
    await pages.screenshot(page, "cache-online", viewport)
    pages.assert_clean()


async def test_clearing_online_assets_is_paused_and_resumed(
        admin: Admin, fake_grok: FakeGrok, browser: BrowserFactory, viewport: Viewport,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(jobs, "CHUNK", 1)  # a chunk per account
    tokens = [f"cache-pause-token-{n}-" + "p" * 24 for n in range(3)]
    for n, token in enumerate(tokens):
        owner = fake_grok.add_account(token)
        path = f"users/{owner.user_id}/p{n}/content"
        fake_grok.assets[path] = StoredAsset(f"p{n}", path, "image/png", PNG, owner.user_id)
    for token in tokens[:2]:  # the first two accounts' lists come slowly: the job is mid-way when paused
        fake_grok.inject("slow_first_byte", account=token, endpoint="list_assets", delay=1.5)
    client = await admin(grok={**fake_grok.grok_settings(), "timeout": 10})
    h = auth((await login(client))["token"])
    await body_of(await client.post("/api/v1/admin/tokens/add", json={"tokens": tokens}, headers=h))
    pages = browser(client)
    page = await pages.open("/admin/cache", viewport, login=("admin", "admin"))
    await page.click("[data-tab=online]")
    await expect(page.locator("[data-online-rows] tr[data-id]")).to_have_count(3)
    await page.check("[data-select-page=online]")
    await page.locator("[data-batch-actions] button", has_text="Clear assets").click()
    await page.locator(".modal .button.danger", has_text="Clear assets").click()
    await job_running(client, h)
    toggle = page.locator("[data-batch-actions] button", has_text=re.compile("^(Pause|Resume)$"))
    await toggle.click()
    text = page.locator("[data-batch] .progress-text")
    await expect(text).to_have_text(re.compile(r"^[12] / 3 · paused$"), timeout=30_000)
    await expect(toggle).to_have_text("Resume")
    job = (await body_of(await client.get("/api/v1/admin/jobs", headers=h)))["jobs"][0]
    assert job["state"] == "paused" and await text.text_content() == f"{job['done']} / 3 · paused"
    assert len(fake_grok.assets) == 3 - job["done"]  # the accounts after the pause keep their assets
    await pages.screenshot(page, "cache-job-paused", viewport)
    await toggle.click()
    await expect(page.locator("[data-batch-count]")).to_have_text("3 of 3 cleared", timeout=30_000)
    assert not fake_grok.assets
    pages.assert_clean()
