"""The chat pages (/chat and /admin/chat) in real Chromium at desktop and phone widths, in
front of the fake Grok: an answer streamed and retried, reasoning apart, a <script> answer
kept as text, a picture attached through /v1/uploads/image, a broken picture retried, the
image tab's progress and pictures (a run and continuous generation), a video with a
reference picture, and the admin page's key picker."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from playwright.async_api import Page, expect

from grok2api.api import KEYS, MEDIA, POOL, SETTINGS, Settings
from grok2api.testing.browser import VIEWPORTS, Browser, BrowserFactory, Viewport
from grok2api.testing.fake_grok import FakeGrok
from grok2api.testing.fake_grok.media import png
from grok2api.testing.pytest_plugin import GatewayFactory

from .support import Client

pytestmark = pytest.mark.parametrize("viewport", VIEWPORTS, ids=lambda v: v.name)
KEY = "sk-chat-page-0123456789"
PLUGINS = ("storage_local", "admin", "chat", "images", "video")
FAST = {"connect_timeout": 1.0, "first_byte_timeout": 2.0, "idle_timeout": 2.0, "timeout": 10.0}


@dataclass
class Site:
    client: Client
    fake: FakeGrok
    pages: Browser

    def chats(self) -> list[Any]:
        return self.fake.requests_to("chat")


@pytest_asyncio.fixture
async def site(gateway: GatewayFactory, make_settings: Callable[..., Settings], fake_grok: FakeGrok,
               browser: BrowserFactory) -> AsyncIterator[Callable[..., Any]]:
    """``await site(method="legacy")``: the gateway with chat, images and video, a managed key and one account."""

    async def make(method: str = "legacy") -> Site:
        settings = make_settings(grok={**fake_grok.grok_settings(), **FAST, "image_generation_method": method})
        client: Client = await gateway(*PLUGINS, settings=settings)
        url = str(client.make_url("")).rstrip("/")
        client.app[SETTINGS].app = client.app[SETTINGS].app.model_copy(update={"app_url": url})  # links to this port
        fake_grok.add_account("basic-1")
        await client.app[POOL].add(["basic-1"])
        await client.app[KEYS].create(key=KEY, name="page-tests")
        return Site(client, fake_grok, browser(client))

    yield make


async def open_chat(site: Site, viewport: Viewport, path: str = "/chat", **options: Any) -> Page:
    page = await site.pages.open(path, viewport, **options)
    await page.fill("[data-key]", KEY)
    await page.click("[data-key-save]")
    await expect(page.locator('[data-model="chat"] option[value="grok-4.20-beta"]')).to_have_count(1)
    return page


async def say(page: Page, text: str) -> None:
    await page.fill("[data-prompt]", text)
    await page.click("[data-send]")


async def test_an_answer_streams_and_is_retried(site: Callable[..., Any], viewport: Viewport) -> None:
    live: Site = await site()
    page = await open_chat(live, viewport)
    assert await page.locator('[data-model="chat"]').input_value() == "grok-4.20-beta"
    chat_models = await page.locator('[data-model="chat"] option').all_text_contents()
    assert chat_models and not any("imagine" in m for m in chat_models)
    assert await page.locator('[data-model="image"] option').all_text_contents() == ["grok-imagine-1.0"]
    await say(page, "hello there")
    answer = page.locator(".bubble.assistant .answer")
    await expect(answer).to_have_text("Echo: hello there")
    assert live.chats()[-1].json["message"].endswith("hello there")
    await page.click("[data-retry]")
    await expect(page.locator("[data-retry]")).to_be_visible()
    assert len(live.chats()) == 2
    await expect(page.locator(".bubble.assistant")).to_have_count(1)
    await expect(answer).to_have_text("Echo: hello there")
    # the key is kept for this tab only
    assert await page.evaluate("sessionStorage.getItem('grok2api.chat.api_key')") == KEY
    assert await page.evaluate("localStorage.length") == 0
    await say(page, "and again")
    await expect(page.locator(".bubble.assistant")).to_have_count(2)
    await expect(page.locator("[data-retry]")).to_have_count(1)  # under the last answer only
    await live.pages.screenshot(page, "chat", viewport)
    live.pages.assert_clean()


async def test_reasoning_is_shown_apart_from_the_answer(site: Callable[..., Any], viewport: Viewport) -> None:
    live: Site = await site()
    page = await open_chat(live, viewport)
    await page.select_option('[data-model="chat"]', "grok-4-thinking")
    await say(page, "think first")
    answer = page.locator(".bubble.assistant .answer")
    await expect(answer).to_contain_text("Echo: think first")
    reasoning = page.locator(".bubble.assistant .reasoning")
    await expect(reasoning).to_be_visible()
    thought = await reasoning.locator(".reasoning-text").text_content()
    assert thought and thought.strip() and thought.strip() not in (await answer.text_content() or "")
    await page.click("label.switch")  # the same as one JSON answer
    assert not await page.locator("[data-stream]").is_checked()
    await say(page, "no stream now")
    await expect(page.locator(".bubble.assistant .answer").nth(1)).to_contain_text("Echo: no stream now")
    await expect(page.locator(".bubble.assistant .reasoning").nth(1)).to_be_visible()
    assert live.chats()[-1].json["message"].endswith("no stream now")
    live.pages.assert_clean()


async def test_markup_in_an_answer_stays_text(site: Callable[..., Any], viewport: Viewport) -> None:
    live: Site = await site()
    page = await open_chat(live, viewport)
    hostile = "<script>window.pwned = 1</script><img src=x onerror=\"window.pwned = 2\">"
    await say(page, hostile)
    answer = page.locator(".bubble.assistant .answer")
    await expect(answer).to_have_text(f"Echo: {hostile}")
    assert await answer.locator("script, img").count() == 0
    assert await page.evaluate("window.pwned") is None
    live.pages.assert_clean()


async def test_a_picture_is_attached_through_the_upload_helper(site: Callable[..., Any], viewport: Viewport,
                                                               tmp_path: Path) -> None:
    live: Site = await site()
    page = await open_chat(live, viewport)
    picture = tmp_path / "cat.png"
    picture.write_bytes(png("a cat", 2048))
    not_a_picture = tmp_path / "notes.png"
    not_a_picture.write_bytes(b"just text, named like a picture")
    await page.set_input_files("[data-attach]", [str(not_a_picture)])
    await say(page, "what is this?")
    await expect(page.locator(".toast.error")).to_contain_text("not a PNG, JPEG, WebP or GIF")
    assert not live.chats()  # checked in the page: nothing was sent
    await page.click(".attachment .icon-button")
    await page.set_input_files("[data-attach]", [str(picture)])
    await expect(page.locator(".attachment img")).to_have_count(1)
    await page.click("[data-send]")
    await expect(page.locator(".bubble.assistant .answer")).to_have_text("Echo: what is this?")
    (upload,) = live.fake.requests_to("upload")
    assert upload.json["fileMimeType"] == "image/png"
    assert len(live.chats()[-1].json["fileAttachments"]) == 1
    await expect(page.locator(".bubble.user .bubble-pictures img")).to_have_count(1)
    live.pages.assert_clean()


async def test_a_broken_picture_is_retried_by_a_click(site: Callable[..., Any], viewport: Viewport) -> None:
    live: Site = await site()
    page = await open_chat(live, viewport)
    await say(page, "![late](/v1/files/image/late-picture.png)")
    retry = page.locator(".broken-image")
    await expect(retry).to_be_visible()
    media = live.client.app[MEDIA]
    media.directory("image").mkdir(parents=True, exist_ok=True)
    (media.directory("image") / "late-picture.png").write_bytes(png("late", 512))
    await retry.click()
    picture = page.locator(".bubble.assistant .answer img")
    await expect(picture).to_be_visible()
    assert "_retry=" in (await picture.get_attribute("src") or "")
    live.pages.assert_clean(expected=(404,))


async def test_the_image_tab_shows_progress_and_pictures(site: Callable[..., Any], viewport: Viewport) -> None:
    live: Site = await site()
    page = await open_chat(live, viewport)
    await page.click('[data-tab="image"]')
    await expect(page.locator("[data-method]")).to_have_text("Image method: legacy")
    assert await page.locator("[data-experimental]").first.is_hidden()
    await page.fill("[data-image-prompt]", "a red fox in snow")
    await page.fill("[data-image-form] input[name=n]", "2")
    await page.click("[data-image-go]")
    cards = page.locator(".picture-card")
    await expect(cards).to_have_count(2)
    await expect(page.locator(".picture-card .progress-text", has_text="done")).to_have_count(2)
    await expect(page.locator(".picture-card img")).to_have_count(2)
    for image in await page.locator(".picture-card img").all():
        assert await image.evaluate("img => img.complete && img.naturalWidth > 0")
    await live.pages.screenshot(page, "chat-image", viewport)
    await page.fill("[data-image-form] input[name=n]", "3")  # more than a stream makes: one JSON answer
    await page.click("[data-image-go]")
    await expect(page.locator(".picture-card img")).to_have_count(3)
    live.pages.assert_clean()


async def test_a_run_of_the_imagine_method_shows_previews_then_pictures(site: Callable[..., Any],
                                                                       viewport: Viewport) -> None:
    live: Site = await site("imagine_ws_experimental")
    page = await open_chat(live, viewport)
    await page.click('[data-tab="image"]')
    await expect(page.locator("[data-method]")).to_have_text("Image method: imagine_ws_experimental")
    await page.fill("[data-image-prompt]", "a harbour at night")
    await page.fill("[data-image-form] input[name=n]", "2")
    await page.select_option("[data-image-form] select[name=aspect]", "1:1")
    await page.fill("[data-image-form] input[name=concurrency]", "2")
    await page.evaluate("""() => { window.seen = new Set();  // every progress label, however fast they pass
      new MutationObserver(() => document.querySelectorAll('.picture-card .progress-text')
        .forEach((label) => window.seen.add(label.textContent))).observe(document.querySelector('[data-image-results]'),
        { subtree: true, childList: true, characterData: true }); }""")
    await page.click("[data-image-go]")
    await expect(page.locator(".picture-card .progress-text", has_text="done")).to_have_count(2)
    labels = await page.evaluate("[...window.seen]")
    assert any(label.endswith("%") and label != "100%" for label in labels), labels  # the previews' progress
    await expect(page.locator(".picture-card img")).to_have_count(2)
    (round_,) = live.fake.requests_to("imagine")
    assert round_.ws_messages[0]["item"]["content"][0]["properties"]["aspect_ratio"] == "1:1"
    live.pages.assert_clean()


async def test_continuous_generation_over_the_socket(site: Callable[..., Any], viewport: Viewport) -> None:
    live: Site = await site("imagine_ws_experimental")
    page = await open_chat(live, viewport)
    await page.click('[data-tab="image"]')
    await expect(page.locator("[data-method]")).to_have_text("Image method: imagine_ws_experimental")
    await page.fill("[data-image-prompt]", "a lighthouse at dusk")
    await page.select_option("[data-image-form] select[name=aspect]", "16:9")
    await page.select_option("[data-image-form] select[name=mode]", "continuous")
    await page.click("[data-image-go]")
    await expect(page.locator('[data-metric="status"]')).to_have_text("running")
    await expect(page.locator(".picture-card img").nth(6)).to_be_visible()  # past the first batch of six
    await expect(page.locator('[data-metric="sockets"]')).to_have_text("1")
    await live.pages.screenshot(page, "chat-continuous", viewport)
    await page.click("[data-image-stop]")
    await expect(page.locator('[data-metric="status"]')).to_have_text("stopped")
    rounds = live.fake.requests_to("imagine")
    assert {r.ws_messages[0]["item"]["content"][0]["properties"]["aspect_ratio"] for r in rounds} == {"16:9"}
    live.pages.assert_clean()


async def test_a_refused_key_shows_on_the_socket_metrics(site: Callable[..., Any], viewport: Viewport) -> None:
    live: Site = await site("imagine_ws_experimental")
    page = await open_chat(live, viewport)
    await page.click('[data-tab="image"]')
    await expect(page.locator("[data-experimental]").first).to_be_visible()
    await live.client.app[KEYS].update(KEY, is_active=False)
    await page.fill("[data-image-prompt]", "not with this key")
    await page.select_option("[data-image-form] select[name=mode]", "continuous")
    assert await page.locator("[data-image-form] input[name=n]").is_hidden()
    await page.click("[data-image-go]")
    await expect(page.locator('[data-metric="status"]')).to_have_text("auth rejected")
    await expect(page.locator('[data-metric="error"]')).to_have_text("Invalid API key")
    await expect(page.locator("[data-image-go]")).to_be_enabled()
    assert not live.fake.requests_to("imagine")
    live.pages.assert_clean()


async def test_the_video_tab_sends_every_field_and_a_reference(site: Callable[..., Any], viewport: Viewport,
                                                              tmp_path: Path) -> None:
    live: Site = await site()
    page = await open_chat(live, viewport)
    await page.click('[data-tab="video"]')
    await expect(page.locator('[data-model="video"]')).to_have_value("grok-imagine-1.0-video")
    form = page.locator("[data-video-form]")
    await form.locator("textarea[name=prompt]").fill("the fox runs")
    await form.locator("select[name=aspect_ratio]").select_option("16:9")
    await form.locator("input[name=video_length]").fill("10")
    await form.locator("select[name=resolution]").select_option("HD")
    await form.locator("select[name=preset]").select_option("fun")
    reference = tmp_path / "fox.png"
    reference.write_bytes(png("the fox", 1024))
    await form.locator("input[name=reference]").set_input_files(str(reference))
    await page.click("[data-video-go]")
    await expect(page.locator(".video-card video")).to_have_count(1)
    (upload,) = live.fake.requests_to("upload")
    assert upload.json["fileMimeType"] == "image/png"
    (chat,) = live.chats()
    sent = str(chat.json)
    assert "--mode=extremely-crazy" in sent and "16:9" in sent
    await live.pages.screenshot(page, "chat-video", viewport)
    live.pages.assert_clean()


async def test_the_admin_page_picks_or_makes_a_key(site: Callable[..., Any], viewport: Viewport) -> None:
    live: Site = await site()
    page = await live.pages.open("/admin/chat", viewport, login=("admin", "admin"))
    assert await page.locator("[data-key]").input_value() == ""  # nothing secret is filled in
    pick = page.locator("[data-key-pick] option", has_text="page-tests")
    await expect(pick).to_have_count(1)
    await page.click("[data-key-create]")
    await expect(page.locator('[data-model="chat"] option[value="grok-4.20-beta"]')).to_have_count(1)
    made = await page.locator("[data-key]").input_value()
    assert made.startswith("sk-") and made != KEY
    await say(page, "from the admin page")
    await expect(page.locator(".bubble.assistant .answer")).to_have_text("Echo: from the admin page")
    await live.pages.screenshot(page, "admin-chat", viewport)
    live.pages.assert_clean()
    public = await live.pages.open("/chat", viewport)
    assert await public.locator("#navigation").count() == 0  # the public page has no console navigation
    live.pages.assert_clean()




async def test_nothing_is_wider_than_the_screen(site: Callable[..., Any], viewport: Viewport) -> None:
    live: Site = await site()
    for path in ("/chat", "/admin/chat"):
        page = await open_chat(live, viewport, path, login=("admin", "admin"))
        for tab in ("chat", "image", "video"):
            await page.click(f'[data-tab="{tab}"]')
            wide = await page.evaluate("""() => [...document.querySelectorAll('body *')]
              .filter((e) => e.getBoundingClientRect().right > document.documentElement.clientWidth + 1)
              .map((e) => `${e.tagName}.${e.className}`)""")
            assert not wide, (path, tab, wide)
    live.pages.assert_clean()
