"""Images in answers: downloaded with the answering account, linked from the media cache or inlined."""

from __future__ import annotations

import asyncio
import base64
import re

import httpx2 as httpx
from openai.types.chat import ChatCompletionMessageParam

from grok2api.api import MEDIA

from .conftest import StartGateway
from .support import content_of

LINK = re.compile(r"!\[([^\]]+)\]\(([^)]+)\)")
ASK: list[ChatCompletionMessageParam] = [{"role": "user", "content": "Image Generation: a red fox in snow"}]


async def test_generated_images_are_cached_and_served(start_gateway: StartGateway) -> None:
    live = await start_gateway()
    answer = await live.aclient().chat.completions.create(model="grok-3", messages=ASK)
    content = content_of(answer)
    assert content.startswith("I'll generate images of a red fox in snow.\n")
    links = LINK.findall(content)
    assert len(links) == 2
    (chat,) = live.chats()
    async with httpx.AsyncClient() as http:
        for alt, url in links:
            assert url.startswith(f"{live.url}/v1/files/image/users-") and url.endswith(f"-{alt}-image.jpg")
            served = await http.get(url)
            assert served.status_code == 200 and served.headers["content-type"] == "image/jpeg"
            stored = next(a for a in live.fake.assets.values() if a.asset_id == alt)
            assert served.content == stored.data
    downloads = live.fake.requests_to("asset")
    assert len(downloads) == 2 and {d.sso for d in downloads} == {chat.sso}


async def test_streamed_images_and_base64_mode(start_gateway: StartGateway) -> None:
    live = await start_gateway(app={"image_format": "base64"})
    stream = await live.aclient().chat.completions.create(model="grok-3", messages=ASK, stream=True)
    content = "".join([c.choices[0].delta.content or "" async for c in stream])
    links = LINK.findall(content)
    assert len(links) == 2
    for _, uri in links:
        assert uri.startswith("data:image/jpeg;base64,")
        assert base64.b64decode(uri.split(",", 1)[1]).startswith(b"\xff\xd8")


async def test_a_failed_download_still_links_the_image(start_gateway: StartGateway) -> None:
    live = await start_gateway()
    live.fake.inject("server_error", endpoint="asset", times=None)
    answer = await live.aclient().chat.completions.create(model="grok-3", messages=ASK)
    links = LINK.findall(content_of(answer))
    assert [url.startswith(live.fake.assets_url + "/users/") for _, url in links] == [True, True]


async def test_one_download_per_file_and_no_way_out_of_the_cache(start_gateway: StartGateway) -> None:
    live = await start_gateway()
    await live.aclient().chat.completions.create(model="grok-3", messages=ASK)
    media = live.app[MEDIA]
    path = next(a.path for a in live.fake.assets.values())
    cached = media.directory("image") / path.replace("/", "-")
    cached.unlink()
    before = len(live.fake.requests_to("asset"))
    results = await asyncio.gather(*(media.fetch(live.tokens[0], path) for _ in range(8)))
    assert set(results) == {cached} and len(live.fake.requests_to("asset")) == before + 1
    (media.directory("image").parent.parent / "secret.txt").write_text("no")
    assert await raw_get(live.url, f"/v1/files/image/{path}") == 200  # slashes map to dashes
    for probe in ("../../secret.txt", "..%2F..%2Fsecret.txt", "..%5C..%5Csecret.txt", "..\\..\\secret.txt",
                  "%2e%2e/%2e%2e/secret.txt", ".x", ".."):
        assert await raw_get(live.url, f"/v1/files/image/{probe}") == 404, probe
    assert await raw_get(live.url, f"/v1/files/video/{path}") == 404


async def raw_get(url: str, target: str) -> int:
    """The status of a GET sent byte for byte (HTTP clients would normalise ``..`` away)."""
    host, port = url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(f"GET {target} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
    status = int((await reader.readline()).split()[1])
    writer.close()
    return status


async def test_the_cache_trims_its_oldest_files(start_gateway: StartGateway) -> None:
    live = await start_gateway()
    media = live.app[MEDIA]
    client = live.aclient()
    await client.chat.completions.create(model="grok-3", messages=ASK)
    first = sorted(media.directory("image").iterdir())
    size = sum(p.stat().st_size for p in first)
    media.settings.cache = media.settings.cache.model_copy(
        update={"limit_mb": size * 1.5 / 1024 / 1024})
    await asyncio.sleep(0.05)  # distinct modification times
    await client.chat.completions.create(model="grok-3", messages=ASK)
    for _ in range(100):
        if not any(p.exists() for p in first):
            break
        await asyncio.sleep(0.01)
    remaining = list(media.directory("image").iterdir())
    assert not any(p.exists() for p in first) and len(remaining) == 2
    assert sum(p.stat().st_size for p in remaining) <= size * 1.5 * 0.8
