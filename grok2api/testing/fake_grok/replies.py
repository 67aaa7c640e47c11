"""The fake's scripted answers to ``conversations/new`` ([T] frames, protocol §4.10).

Which answer a request gets, first rule that matches:

1. **video** — ``toolOverrides.videoGen`` is true (or ``modelName`` is ``imagine-video-gen``);
2. **image** — the message starts with ``Image Generation:``, ``Image Edit:`` or ``Drawing:``
   (any case), or ``toolOverrides.imageGen`` is true; ``imageGenerationCount`` images (an
   ``imagine-image-edit`` request must name pictures its account uploaded, else a 400);
3. **tools** — the message offers tools the way the gateway's default tool prompt does
   (a ``<tools>`` block of JSON lines) and does not end with a ``</tool_result>``: (on a
   thinking mode, a header and an analysis token, then) a sentence and a
   ``<tool_call>`` of the first tool (or of the one a ``must call the tool "name"`` rule
   names), with arguments made up from its schema's required properties (strings
   are the user's last line). ``[parallel]`` calls every tool, ``[malformed-tool]``
   writes a call whose JSON is broken, ``[bad-args]`` one whose arguments miss a
   required property;
4. **thinking** — ``modelMode`` contains ``THINKING`` or is ``MODEL_MODE_EXPERT``/``_HEAVY``:
   header and analysis tokens, a web search with results, a citation card and a
   ``<grok:render>`` tag in the final text;
5. **plain** — everything else.

A message that ends with a ``</tool_result>`` is answered (rule 4 or 5) as if the
result's text were the whole message, so the answer is ``Echo: <the result's last line>``.

The answer text is ``Echo: <last non-empty line of the message>`` (the thinking answer
adds the citation tag and a full stop), so a test can tell which prompt arrived.
``modelResponse.message`` always equals the concatenated ``final`` tokens. A message
containing ``[moderate]`` gets its images or video moderated.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote
from uuid import uuid4

import orjson

from grok2api.testing.fake_grok.media import jpeg, mp4

MODERATE_MARKER = "[moderate]"
_IMAGE_PREFIX = re.compile(r"^\s*(image generation|image edit|drawing)\s*:\s*", re.IGNORECASE)
_VIDEO_MODE = re.compile(r"\s+--mode=\S+\s*$")
_THINKING_MODES = {"MODEL_MODE_EXPERT", "MODEL_MODE_HEAVY"}
_RESOLUTIONS = {"SD": "480p", "HD": "720p"}
_TOOLS = re.compile(r"<tools>\n(.*?)\n</tools>", re.DOTALL)
_FORCED = re.compile(r'must call the tool "([^"]+)"')
_RESULT = re.compile(r"<tool_result[^>]*>\n(.*)\n</tool_result>\s*$", re.DOTALL)
_SAMPLES: dict[str, Any] = {"integer": 3, "number": 2.5, "boolean": True, "array": [], "object": {}, "null": None}


@dataclass
class StoredAsset:
    """A file on the fake's assets origin; ``owner`` is a user id (``None``: public)."""

    asset_id: str
    path: str
    content_type: str
    data: bytes
    owner: str | None
    name: str = ""
    listed: bool = True
    model_generated: bool = False
    created: float = field(default_factory=time.time)


@dataclass
class Reply:
    frames: list[dict[str, Any]]
    assets: list[StoredAsset] = field(default_factory=list)


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def answer_text(message: str) -> str:
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    return f"Echo: {lines[-1] if lines else ''}".rstrip()


def _tokens(text: str) -> list[str]:
    """Short fragments (a word with its leading space) that concatenate back to ``text``."""
    return re.findall(r"\s*\S+", text)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class _Script:
    """Frame builder for one turn: shared ids, the conversation and user-echo frames."""

    def __init__(self, body: dict[str, Any], user_id: str) -> None:
        self.body = body
        self.user_id = user_id
        self.message = _text(body.get("message"))
        self.model = _text(body.get("modelName"))
        self.user_response_id = str(uuid4())
        self.response_id = str(uuid4())
        self.model_hash = "fake" + uuid4().hex[:10]
        self.frames: list[dict[str, Any]] = [
            {"result": {"conversation": {"conversationId": str(uuid4()), "title": "New conversation",
                                         "createTime": _now(), "temporary": body.get("temporary", True)}}},
            {"result": {"response": {
                "userResponse": {"responseId": self.user_response_id, "message": self.message,
                                 "sender": "human", "createTime": _now(), "parentResponseId": "",
                                 "model": self.model},
                "isThinking": False, "isSoftStop": False, "responseId": self.user_response_id}}},
        ]

    def add(self, **fields: Any) -> None:
        self.frames.append({"result": {"response": {**fields, "responseId": self.response_id}}})

    def say(self, text: str, **fields: Any) -> None:
        for token in _tokens(text):
            self.add(token=token, isThinking=False, isSoftStop=False, messageTag="final", **fields)

    def finish(self, message: str, **fields: Any) -> None:
        self.add(modelResponse={
            "responseId": self.response_id, "message": message, "sender": "assistant",
            "createTime": _now(), "parentResponseId": self.user_response_id,
            "generatedImageUrls": [], "fileAttachments": [], "cardAttachmentsJson": [],
            "streamErrors": [], "metadata": {"llm_info": {"modelHash": self.model_hash}},
            "model": self.model, **fields,
        }, isThinking=False, isSoftStop=False)


def edit_sources(body: dict[str, Any], assets_url: str) -> list[str] | None:
    """The pictures an ``imagine-image-edit`` request edits (None for any other model):
    the legacy edit's ``fileAttachments`` ids, or the imagine edit's ``imageReferences``
    as asset paths (§4.3)."""
    if body.get("modelName") != "imagine-image-edit":
        return None
    config = body
    for key in ("responseMetadata", "modelConfigOverride", "modelMap", "imageEditModelConfig"):
        config = _mapping(config.get(key))
    references = config.get("imageReferences")
    sources = [_text(f) for f in body.get("fileAttachments") or []]
    sources += [_text(r).removeprefix(assets_url).lstrip("/") for r in references or [] if isinstance(r, str)]
    return sources


def reply_for(body: dict[str, Any], user_id: str) -> Reply:
    """The scripted answer to one chat request body (rules in the module docstring)."""
    script = _Script(body, user_id)
    tools = _mapping(body.get("toolOverrides"))
    mode = _text(body.get("modelMode"))
    if tools.get("videoGen") is True or script.model == "imagine-video-gen":
        return _video(script)
    if _IMAGE_PREFIX.match(script.message) or tools.get("imageGen") is True:
        return _image(script)
    thinking = "THINKING" in mode or mode in _THINKING_MODES
    result = _RESULT.search(script.message)
    if result:  # a tool's result came back, with or without tools still on offer
        script.message = result.group(1)
    elif offered := _TOOLS.search(script.message):
        return _tools(script, offered.group(1), thinking)
    return _thinking(script) if thinking else _plain(script)


def _arguments(schema: dict[str, Any], topic: str, broken: bool) -> dict[str, Any]:
    """Values for the schema's required properties (all of them when none is required)."""
    properties = _mapping(schema.get("properties"))
    names = [n for n in schema.get("required") or properties if isinstance(n, str)]
    values: dict[str, Any] = {}
    for name in names[1:] if broken else names:
        prop = _mapping(properties.get(name))
        enum = prop.get("enum")
        kind = _text(prop.get("type"))
        values[name] = enum[0] if isinstance(enum, list) and enum else _SAMPLES.get(kind, topic)
    return values


def _tools(script: _Script, listing: str, thinking: bool) -> Reply:
    """A tool-calling turn (module docstring)."""
    tools = [orjson.loads(line) for line in listing.splitlines() if line.strip()]
    forced = _FORCED.search(script.message)
    chosen = [t for t in tools if t.get("name") == forced.group(1)] if forced else tools
    chosen = chosen if "[parallel]" in script.message else chosen[:1]
    topic = answer_text(script.message).removeprefix("Echo: ")
    calls = "".join(
        "<tool_call>" + orjson.dumps({"name": tool["name"], "arguments": _arguments(
            _mapping(tool.get("parameters")), topic, "[bad-args]" in script.message)}).decode() + "</tool_call>\n"
        for tool in chosen)
    if "[malformed-tool]" in script.message:
        calls = calls.replace('"arguments":{', '"arguments":{{', 1)
    text = f"Let me use a tool for {topic}.\n{calls}".rstrip()
    script.add(llmInfo={"modelHash": script.model_hash}, isThinking=False, isSoftStop=False)
    if thinking:
        script.add(token="Choosing a tool", messageTag="header", messageStepId=0, isThinking=True)
        script.add(token=f"The user wrote: {topic}. A tool can answer that.", messageTag="analysis",
                   messageStepId=0, isThinking=True)
    script.say(text)
    script.add(token="", isThinking=False, isSoftStop=True)
    script.finish(text)
    return Reply(script.frames)


def _plain(script: _Script) -> Reply:
    text = answer_text(script.message)
    script.add(llmInfo={"modelHash": script.model_hash}, isThinking=False, isSoftStop=False)
    script.say(text)
    script.add(token="", isThinking=False, isSoftStop=True)
    script.add(finalMetadata={}, isThinking=False, isSoftStop=False)
    script.finish(text)
    return Reply(script.frames)


def _thinking(script: _Script) -> Reply:
    topic = answer_text(script.message).removeprefix("Echo: ")
    card_id = "card-" + script.response_id[:8]
    result = {"url": f"https://search.example/?q={quote(topic)}", "title": f"About {topic}",
              "preview": f"What the web says about {topic}"}
    citation = orjson.dumps({"id": "cite-01", "type": "render_inline_citation",
                             "cardType": "citation_card", "url": result["url"]}).decode()
    render = ('<grok:render card_id="cite-01" card_type="citation_card" type="render_inline_citation">'
              '<argument name="citation_id">0</argument></grok:render>')
    tool_card = (f"<xai:tool_usage_card><xai:tool_usage_card_id>{card_id}</xai:tool_usage_card_id>"
                 "<xai:tool_name>web_search</xai:tool_name><xai:tool_args><![CDATA["
                 f"{orjson.dumps({'query': topic}).decode()}]]></xai:tool_args></xai:tool_usage_card>")
    thinking = {"isThinking": True}
    script.add(token="Thinking about your request", messageTag="header", messageStepId=0, **thinking)
    script.add(token=f"The user wrote: {topic}. I should search the web.", messageTag="analysis",
               messageStepId=0, **thinking)
    script.add(token=tool_card, messageTag="tool_usage_card", toolUsageCardId=card_id,
               toolUsageCard={"toolUsageCardId": card_id, "webSearch": {"args": {"query": topic}}},
               rolloutId="rollout-1", messageStepId=1, **thinking)
    script.add(token="", toolUsageCardId=card_id, webSearchResults={"results": [result]},
               messageTag="raw_function_result", messageStepId=1, **thinking)
    script.add(cardAttachment={"jsonData": citation}, messageTag="final")
    text = answer_text(script.message)
    script.say(text)
    script.add(token=render + ".", isThinking=False, messageTag="final")
    script.add(token="", isThinking=False, isSoftStop=True)
    script.finish(text + render + ".", webSearchResults=[{"url": result["url"], "title": result["title"]}],
                  cardAttachmentsJson=[citation])
    return Reply(script.frames)


def _image(script: _Script) -> Reply:
    prompt = _IMAGE_PREFIX.sub("", script.message).strip()
    moderated = MODERATE_MARKER in script.message
    count = script.body.get("imageGenerationCount")
    count = count if isinstance(count, int) and 1 <= count <= 4 else 2
    ids = [str(uuid4()) for _ in range(count)]
    paths = [f"users/{script.user_id}/generated/{image_id}/image.jpg" for image_id in ids]
    text = f"I'll generate images of {prompt}."
    script.add(imageAttachmentInfo={})
    script.say(text)
    for progress in (5, 50):
        for index, image_id in enumerate(ids):
            script.add(streamingImageGenerationResponse={"imageId": image_id, "imageIndex": index,
                                                         "progress": progress})
    for index, (image_id, path) in enumerate(zip(ids, paths, strict=True)):
        final = {"imageId": image_id, "imageIndex": index, "progress": 100, "moderated": moderated}
        if not moderated:
            final["imageUrl"] = path
        script.add(streamingImageGenerationResponse=final)
    script.finish(text, generatedImageUrls=[] if moderated else paths)
    assets = [] if moderated else [
        StoredAsset(image_id, path, "image/jpeg", jpeg(path), script.user_id, name="image.jpg",
                    model_generated=True)
        for image_id, path in zip(ids, paths, strict=True)
    ]
    return Reply(script.frames, assets)


def _video(script: _Script) -> Reply:
    prompt = _VIDEO_MODE.sub("", script.message).strip()
    moderated = MODERATE_MARKER in script.message
    config = script.body
    for key in ("responseMetadata", "modelConfigOverride", "modelMap", "videoGenModelConfig"):
        config = _mapping(config.get(key))
    post_id = _text(config.get("parentPostId")) or str(uuid4())
    resolution = _text(config.get("resolutionName")) or _RESOLUTIONS.get(_text(config.get("videoResolution")), "480p")
    video_id = str(uuid4())
    folder = f"users/{script.user_id}/generated/{video_id}"
    base = {"videoId": video_id, "videoPostId": post_id}
    script.add(streamingVideoGenerationResponse={**base, "progress": 1, "resolutionName": resolution,
                                                 "videoPrompt": ""})
    for progress in (18, 47, 83):
        script.add(streamingVideoGenerationResponse={**base, "progress": progress})
    final: dict[str, Any] = {**base, "progress": 100, "moderated": moderated}
    if not moderated:
        final |= {"assetId": video_id, "videoUrl": f"{folder}/generated_video.mp4",
                  "thumbnailImageUrl": f"{folder}/preview_image.jpg"}
    script.add(streamingVideoGenerationResponse=final)
    script.finish("", fileAttachments=[] if moderated else [video_id])
    script.add(token=f"I generated a video with the prompt: {prompt}", isSoftStop=True)
    assets = [] if moderated else [
        StoredAsset(video_id, f"{folder}/generated_video.mp4", "video/mp4", mp4(folder), script.user_id,
                    name="generated_video.mp4", model_generated=True),
        StoredAsset(video_id, f"{folder}/preview_image.jpg", "image/jpeg", jpeg(folder), script.user_id,
                    listed=False, model_generated=True),
    ]
    return Reply(script.frames, assets)
