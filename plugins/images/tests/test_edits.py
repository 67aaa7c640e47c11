"""``POST /v1/images/edits``: multipart sources checked by their bytes, uploaded to the
account that edits them, and nothing charged for a refused request."""

from __future__ import annotations

import asyncio
import io
from typing import Any

import openai
import pytest

from grok2api.testing.fake_grok.media import jpeg

from .conftest import StartGateway
from .support import is_picture, key_usage, picture_bytes


async def test_one_image_with_legacy(start_gateway: StartGateway, fake_png: bytes) -> None:
    live = await start_gateway()

    def edit() -> Any:
        return live.client().images.edit(model="grok-imagine-1.0-edit", prompt="make it blue", n=2,
                                         image=("cat.png", io.BytesIO(fake_png), "image/png"),
                                         mask=("mask.png", io.BytesIO(fake_png), "image/png"))

    answer = await asyncio.to_thread(edit)
    assert len(answer.data) == 2 and all([is_picture(await picture_bytes(item)) for item in answer.data])
    (upload,) = live.fake.requests_to("upload")
    assert upload.json["fileMimeType"] == "image/png" and upload.json["fileName"] == "cat.png"
    (chat,) = live.fake.requests_to("chat")
    assert chat.json["modelName"] == "imagine-image-edit" and chat.json["message"] == "Image Edit: make it blue"
    assert chat.json["fileAttachments"] == [next(a.asset_id for a in live.fake.assets.values() if a.name == "cat.png")]
    assert chat.sso == upload.sso


async def test_sixteen_images_with_the_imagine_method(start_gateway: StartGateway) -> None:
    live = await start_gateway("imagine_ws_experimental")
    sources = [(f"p{i}.jpg", jpeg(f"source {i}"), "image/jpeg") for i in range(16)]
    answer = await live.aclient().images.edit(model="grok-imagine-1.0-edit", prompt="as a mosaic", image=sources,
                                              response_format="b64_json")
    assert len(answer.data) == 1 and is_picture(await picture_bytes(answer.data[0]))
    uploads = live.fake.requests_to("upload")
    assert sorted(u.json["fileName"] for u in uploads) == sorted(name for name, _, _ in sources)
    (chat,) = live.fake.requests_to("chat")
    model_map = chat.json["responseMetadata"]["modelConfigOverride"]["modelMap"]
    assert model_map["imageEditModel"] == "imagine" and chat.json["toolOverrides"] == {"imageGen": True}
    references = model_map["imageEditModelConfig"]["imageReferences"]
    assert len(references) == 16 and all(r.startswith(live.fake.assets_url + "/users/") for r in references)


async def test_refused_sources_name_the_field_and_cost_nothing(start_gateway: StartGateway, fake_jpeg: bytes) -> None:
    live = await start_gateway(limits={"image_limit": 1}, app={"max_request_mb": 64})
    client = live.aclient()
    oversize = b"\xff\xd8\xff" + b"\x00" * (50 * 1024 * 1024)
    cases = [([("notes.png", b"plain text, not a picture", "image/png")], "invalid_image_type"),
             ([(f"{i}.jpg", fake_jpeg, "image/jpeg") for i in range(17)], "invalid_image_count"),
             ([("big.jpg", oversize, "image/jpeg")], "file_too_large"),
             ([("empty.png", b"", "image/png")], "empty_file")]
    for images, code in cases:
        with pytest.raises(openai.BadRequestError) as caught:
            await client.images.edit(model="grok-imagine-1.0-edit", prompt="x", image=images)
        assert (caught.value.param, caught.value.code) == ("image", code)
    with pytest.raises(openai.BadRequestError) as caught:
        await client.images.edit(model="grok-imagine-1.0", prompt="x", image=[("a.jpg", fake_jpeg, "image/jpeg")])
    assert caught.value.param == "model"
    assert live.fake.requests_to("upload") == [] and await key_usage(live) == 0
    webp = b"RIFF\x10\x00\x00\x00WEBPVP8 " + b"\x00" * 8  # told apart by its bytes, whatever the name says
    answer = await client.images.edit(model="grok-imagine-1.0-edit", prompt="x", image=[("a.bin", webp, "text/plain")])
    assert len(answer.data) == 1 and await key_usage(live) == 1
    assert live.fake.requests_to("upload")[0].json["fileMimeType"] == "image/webp"
    with pytest.raises(openai.RateLimitError) as limited:
        await client.images.edit(model="grok-imagine-1.0-edit", prompt="x", image=[("a.jpg", fake_jpeg, "image/jpeg")])
    assert limited.value.code == "daily_quota_exceeded"
