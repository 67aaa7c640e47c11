"""``POST /v1/uploads/image`` over real HTTP, and its link sent to chat as an ``image_url`` part."""

from __future__ import annotations

import base64
from typing import Any

import httpx2 as httpx
import openai
import orjson
import pytest

from grok2api.api import KEYS, SETTINGS
from grok2api.testing.fake_grok.media import jpeg, png
from grok2api.testing.openai_schema import validate
from grok2api_plugins.images.settings import ImagesSettings

from .conftest import StartGateway
from .support import API_KEY, Live

WEBP = b"RIFF\x24\x00\x00\x00WEBPVP8 " + b"\x00" * 24
GIF = b"GIF89a\x01\x00\x01\x00\x80\x00\x00" + b"\x00" * 16
PICTURES = {"png": (png("upload", 256), "image/png"), "jpeg": (jpeg("upload", 512), "image/jpeg"),
            "webp": (WEBP, "image/webp"), "gif": (GIF, "image/gif")}


async def upload(live: Live, files: Any = None, data: Any = None, key: str = API_KEY, **options: Any) -> httpx.Response:
    async with httpx.AsyncClient(base_url=live.url, headers={"Authorization": f"Bearer {key}"}) as http:
        return await http.post("/v1/uploads/image", files=files, data=data, **options)


def refusal(response: httpx.Response, status: int, code: str) -> str:
    """The error's message, after checking it is OpenAI's error object naming ``file``."""
    body = response.json()
    validate("ErrorResponse", body)
    assert response.status_code == status and body["error"]["code"] == code, body
    assert body["error"]["param"] == "file"
    return str(body["error"]["message"])


@pytest.mark.parametrize("kind", sorted(PICTURES))
async def test_a_picture_is_cached_and_served_by_its_link(start_gateway: StartGateway, kind: str) -> None:
    live = await start_gateway()
    data, mime = PICTURES[kind]
    # the declared type and name are not what decides: the bytes are
    answer = await upload(live, files={"file": ("whatever.bin", data, "application/octet-stream")})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["url"] == f"{live.url}/v1/files/image/{body['name']}"
    assert body["name"].startswith("upload-") and len(body["name"].split(".")[0]) == len("upload-") + 32
    assert body["size_bytes"] == len(data) and body["mime_type"] == mime
    async with httpx.AsyncClient() as http:
        served = await http.get(body["url"])  # no key: media links open by name
    assert served.status_code == 200 and served.content == data
    assert served.headers["content-type"] == mime


async def test_what_is_not_a_picture_is_refused_by_its_bytes(start_gateway: StartGateway) -> None:
    live = await start_gateway()
    html = b"<html><script>alert(1)</script></html>"
    message = refusal(await upload(live, files={"file": ("cat.png", html, "image/png")}), 400, "invalid_image_type")
    assert "PNG, JPEG, WebP or GIF" in message
    refusal(await upload(live, files={"file": ("empty.png", b"", "image/png")}), 400, "empty_file")


async def test_a_picture_over_the_limit_is_413_naming_it(start_gateway: StartGateway) -> None:
    live = await start_gateway()
    live.app[SETTINGS].images = ImagesSettings(upload_max_mb=0.5)  # type: ignore[attr-defined]
    async with httpx.AsyncClient(base_url=live.url, headers={"Authorization": f"Bearer {API_KEY}"}) as http:
        rules = (await http.get("/v1/uploads/image")).json()  # what a page checks before it sends
    assert rules == {"field": "file", "max_bytes": 512 * 1024,
                     "mime_types": ["image/gif", "image/jpeg", "image/png", "image/webp"]}
    big = png("big", 600 * 1024)
    message = refusal(await upload(live, files={"file": ("big.png", big, "image/png")}), 413, "file_too_large")
    assert "0.5 MB" in message and "images.upload_max_mb" in message
    small = png("small", 400 * 1024)
    assert (await upload(live, files={"file": ("small.png", small, "image/png")})).status_code == 200


async def test_the_file_field_is_required_once(start_gateway: StartGateway) -> None:
    live = await start_gateway()
    picture = PICTURES["png"][0]
    refusal(await upload(live, files={"image": ("a.png", picture, "image/png")}), 400, "missing_file")
    refusal(await upload(live, data={"file": "not a file"}, files={"other": ("a.txt", b"x")}), 400, "invalid_file")
    twice = [("file", ("a.png", picture, "image/png")), ("file", ("b.png", picture, "image/png"))]
    refusal(await upload(live, files=twice), 400, "invalid_file_count")
    not_a_form = await upload(live, json={"file": "x"})
    assert not_a_form.status_code == 400 and not_a_form.json()["error"]["param"] == "body"


async def test_uploads_need_an_api_key(start_gateway: StartGateway) -> None:
    live = await start_gateway()
    refused = await upload(live, files={"file": ("a.png", PICTURES["png"][0], "image/png")}, key="sk-wrong")
    assert refused.status_code == 401 and refused.json()["error"]["code"] == "invalid_api_key"


async def test_uploads_count_against_the_keys_rpm_and_its_model_list_does_not_apply(
        start_gateway: StartGateway) -> None:
    live = await start_gateway()
    _, key = await live.app[KEYS].create(name="uploader", access={"rpm": 1, "models": ["grok-4"]})
    picture = ("a.png", PICTURES["png"][0], "image/png")
    assert (await upload(live, files={"file": picture}, key=key)).status_code == 200
    refused = await upload(live, files={"file": picture}, key=key)
    body = refused.json()
    validate("ErrorResponse", body)
    assert refused.status_code == 429 and body["error"]["code"] == "rpm_limit_exceeded", body
    assert int(refused.headers["Retry-After"]) >= 1


async def test_an_uploaded_picture_reaches_grok_as_a_chat_attachment(start_gateway: StartGateway) -> None:
    """The gateway is on loopback, which the attachment fetch refuses: its own links are read from the cache."""
    live = await start_gateway(plugins=("chat",))
    picture = PICTURES["jpeg"][0]
    link = (await upload(live, files={"file": ("me.jpg", picture, "image/jpeg")})).json()["url"]
    answer = await live.aclient().chat.completions.create(model="grok-4", messages=[{"role": "user", "content": [
        {"type": "text", "text": "What is this?"}, {"type": "image_url", "image_url": {"url": link}}]}])
    assert answer.choices[0].message.content == "Echo: What is this?"
    (sent,) = live.fake.requests_to("upload")
    assert base64.b64decode(sent.json["content"]) == picture and sent.json["fileMimeType"] == "image/jpeg"
    (chat,) = live.fake.requests_to("chat")
    assert len(chat.json["fileAttachments"]) == 1 and chat.sso == sent.sso


async def test_a_link_of_ours_to_a_file_gone_is_a_400(start_gateway: StartGateway) -> None:
    live = await start_gateway(plugins=("chat",))
    with pytest.raises(openai.BadRequestError) as caught:
        await live.aclient().chat.completions.create(model="grok-4", messages=[{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": f"{live.url}/v1/files/image/upload-gone.png"}}]}])
    error = orjson.loads(caught.value.response.content)["error"]
    assert error["code"] == "attachment_not_found" and error["param"].startswith("messages[0]")
    assert not live.fake.requests_to("chat")


async def test_an_uploaded_picture_is_a_video_reference(start_gateway: StartGateway) -> None:
    """The video model loads its reference through the same loader: the link is read from the cache too."""
    live = await start_gateway(plugins=("chat", "video"))
    picture = PICTURES["png"][0]
    link = (await upload(live, files={"file": ("ref.png", picture, "image/png")})).json()["url"]
    answer = await live.aclient().chat.completions.create(
        model="grok-imagine-1.0-video", extra_body={"video_config": {"video_length": 5}},
        messages=[{"role": "user", "content": [{"type": "text", "text": "make it move"},
                                               {"type": "image_url", "image_url": {"url": link}}]}])
    assert "/v1/files/video/" in (answer.choices[0].message.content or "")
    (sent,) = live.fake.requests_to("upload")
    assert base64.b64decode(sent.json["content"]) == picture
