"""The Grok web dialect: every request body and every response shape, in one place.

What drifted upstream during 2026 (protocol §10) — paths, Referers, bodies, the statsig
prefix, rate-limit shapes, stream frames, imagine frames — lives here and nowhere else.
:class:`Dialect` is the [T] baseline (February 2026: ``modelName``/``modelMode``, NDJSON);
a later dialect subclasses it and overrides what changed.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Any, Literal

import orjson

from grok2api.upstream.errors import Failure, UpstreamError
from grok2api.upstream.events import (
    CardAttachment,
    ConversationStarted,
    Event,
    ImageProgress,
    ImagineEvent,
    ImagineImage,
    ImagineSlotDone,
    ImagineSlotStarted,
    InStreamError,
    ModelResponse,
    ResponseMeta,
    StreamEnd,
    TextDelta,
    VideoProgress,
    WebSearchResults,
)
from grok2api.upstream.results import Asset, RateLimits, UploadedFile


@dataclass(slots=True)
class ChatRequest:
    """One ``conversations/new`` call. ``temporary=None`` means ``grok.temporary``."""

    model_name: str
    model_mode: str
    message: str
    file_attachments: list[str] = field(default_factory=list)
    tool_overrides: dict[str, Any] = field(default_factory=dict)
    model_map: dict[str, Any] = field(default_factory=dict)
    image_generation_count: int = 2
    temporary: bool | None = None


@dataclass(frozen=True, slots=True)
class RestCall:
    """A REST call on the base origin; ``referer`` is a path there."""

    method: Literal["GET", "POST", "DELETE"]
    path: str
    referer: str = "/"
    body: Any = None
    params: dict[str, str] | None = None


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value)
    return None


def _first(data: dict[str, Any], *keys: str) -> Any:
    """The first of several spellings the upstream used for one field."""
    for key in keys:
        if data.get(key) is not None:
            return data[key]
    return None


def _protocol(what: str, detail: str) -> UpstreamError:
    return UpstreamError(Failure.PROTOCOL, f"{what}: {detail}")


def _card(value: Any) -> dict[str, Any] | None:
    """Card JSON arrives as a string (or, in some versions, as an object)."""
    if isinstance(value, dict):
        return value
    if isinstance(value, str):
        try:
            card = orjson.loads(value)
        except orjson.JSONDecodeError:
            return None
        return card if isinstance(card, dict) else None
    return None


_DEVICE_ENV = {"darkModeEnabled": False, "devicePixelRatio": 2, "screenWidth": 2056,
               "screenHeight": 1329, "viewportWidth": 2056, "viewportHeight": 1083}
_MEDIA_TYPES = {"video": "MEDIA_POST_TYPE_VIDEO", "image": "MEDIA_POST_TYPE_IMAGE"}


#: keys of a ``response`` object that carry something besides a token; most frames have none
_RARE_KEYS = frozenset({"error", "llmInfo", "userResponse", "webSearchResults", "cardAttachment",
                        "streamingImageGenerationResponse", "streamingVideoGenerationResponse",
                        "modelResponse", "finalMetadata"})


class FrameReader:
    """Turns the frames of one chat stream into events, remembering the response id
    and model hash across frames. Frames it does not understand yield nothing.

    :meth:`read` runs once per frame, and an answer has a frame per token: the common
    frame (one token, the known response id) takes the shortest path."""

    def __init__(self) -> None:
        self._meta = ("", "")
        self._ended = False

    def read(self, frame: dict[str, Any]) -> list[Event]:
        result = frame.get("result")
        if type(result) is not dict or "error" in frame:
            return self._unusual(frame)
        response = result.get("response")
        if "conversation" in result or type(response) is not dict:
            return self._unusual(frame)
        if response.keys() & _RARE_KEYS or response.get("responseId", "") != self._meta[0] \
                or response.get("isSoftStop") is True:
            events: list[Event] = []
            self._response(response, events)
            return events
        token = response.get("token")
        if not token or not isinstance(token, str):
            return []
        tag = response.get("messageTag")
        step = response.get("messageStepId")
        return [TextDelta(token, response.get("isThinking") is True, tag if isinstance(tag, str) else "",
                          None if step is None else _int(step))]

    def _unusual(self, frame: dict[str, Any]) -> list[Event]:
        """A frame with an error, a conversation, or no response object."""
        error = frame.get("error")
        if isinstance(error, dict):
            return [InStreamError(_first(error, "code"), _str(error.get("message")))]
        result = _dict(frame.get("result"))
        events: list[Event] = []
        if "conversation" in result:
            conversation_id = _str(_dict(result["conversation"]).get("conversationId"))
            if conversation_id:
                events.append(ConversationStarted(conversation_id))
        response = result.get("response")
        if isinstance(response, dict):
            self._response(response, events)
        return events

    def _response(self, data: dict[str, Any], events: list[Event]) -> None:
        """Append the events of one ``response`` object, each part looked at only when
        its key is there."""
        if isinstance(error := data.get("error"), dict):
            events.append(InStreamError(_first(error, "code"), _str(error.get("message"))))
        self._meta_event(data, events)
        token = data.get("token")
        if token and isinstance(token, str):
            events.append(TextDelta(token, thinking=data.get("isThinking") is True,
                                    tag=_str(data.get("messageTag")),
                                    step_id=_int(data.get("messageStepId"))))
        if "webSearchResults" in data:
            searched = _dict(data["webSearchResults"]).get("results")
            if isinstance(searched, list):
                events.append(WebSearchResults([
                    {key: _str(item.get(key)) for key in ("url", "title", "preview")}
                    for item in searched if isinstance(item, dict)
                ]))
        if "cardAttachment" in data:
            card = _card(_dict(data["cardAttachment"]).get("jsonData"))
            if card is not None:
                events.append(CardAttachment(card))
        if isinstance(image := data.get("streamingImageGenerationResponse"), dict):
            events.append(self._image(image))
        if isinstance(video := data.get("streamingVideoGenerationResponse"), dict):
            events.append(VideoProgress(
                video_id=_str(video.get("videoId")), progress=_int(video.get("progress")) or 0,
                post_id=_str(video.get("videoPostId")), url=_str(video.get("videoUrl")),
                thumbnail_url=_str(video.get("thumbnailImageUrl")), moderated=video.get("moderated") is True,
            ))
        if isinstance(final := data.get("modelResponse"), dict):
            events.append(self._model_response(final))
        if not self._ended and (data.get("isSoftStop") is True or "finalMetadata" in data):
            self._ended = True
            events.append(StreamEnd())

    def _meta_event(self, data: dict[str, Any], events: list[Event]) -> None:
        """The assistant's id (frames echoing the user turn carry the user's id instead)
        and model hash, when they change."""
        known_id, known_hash = self._meta
        if "llmInfo" not in data and ("userResponse" in data or data.get("responseId", "") == known_id):
            return  # nothing here could change them
        response_id = known_id if "userResponse" in data else _str(data.get("responseId")) or known_id
        llm_info = data.get("llmInfo")
        model_hash = _str(llm_info.get("modelHash")) if isinstance(llm_info, dict) else ""
        model_hash = model_hash or known_hash
        if response_id and (response_id != known_id or model_hash != known_hash):
            self._meta = (response_id, model_hash)
            events.append(ResponseMeta(response_id, model_hash))

    @staticmethod
    def _image(data: dict[str, Any]) -> ImageProgress:
        url = _str(_first(data, "imageUrl", "url"))
        parts = url.split("/")
        image_id = _str(data.get("imageId")) or (parts[-2] if len(parts) >= 2 else "")
        return ImageProgress(image_id=image_id, index=_int(data.get("imageIndex")) or 0,
                             progress=_int(data.get("progress")) or 0, url=url,
                             moderated=data.get("moderated") is True)

    @staticmethod
    def _model_response(data: dict[str, Any]) -> ModelResponse:
        errors = []
        for item in data.get("streamErrors") or []:
            text = item if isinstance(item, str) else _str(_dict(item).get("message")) or orjson.dumps(item).decode()
            errors.append(text)
        if _str(data.get("error")):
            errors.append(data["error"])
        cards = [card for card in map(_card, data.get("cardAttachmentsJson") or []) if card is not None]
        return ModelResponse(
            response_id=_str(data.get("responseId")),
            message=_str(data.get("message")),
            generated_image_urls=[u for u in data.get("generatedImageUrls") or []
                                  if isinstance(u, str) and u.strip("/")],
            file_attachments=[f for f in data.get("fileAttachments") or [] if isinstance(f, str)],
            card_attachments=cards,
            model_hash=_str(_dict(_dict(data.get("metadata")).get("llm_info")).get("modelHash")),
            stream_errors=errors,
        )


class Dialect:
    """The [T] dialect (February 2026)."""

    statsig_prefix = "e:"
    imagine_path = "/ws/imagine/listen"

    # -- chat --------------------------------------------------------------------

    def chat_call(self, request: ChatRequest, *, temporary: bool) -> RestCall:
        body = {
            "temporary": temporary,
            "modelName": request.model_name,
            "modelMode": request.model_mode or None,
            "message": request.message,
            "fileAttachments": list(request.file_attachments),
            "imageAttachments": [],
            "disableSearch": False,
            "enableImageGeneration": True,
            "returnImageBytes": False,
            "returnRawGrokInXaiRequest": False,
            "enableImageStreaming": True,
            "imageGenerationCount": request.image_generation_count,
            "forceConcise": False,
            "toolOverrides": dict(request.tool_overrides),
            "enableSideBySide": True,
            "sendFinalMetadata": True,
            "isReasoning": False,
            "disableTextFollowUps": False,
            "responseMetadata": {
                "modelConfigOverride": {"modelMap": dict(request.model_map)},
                "requestModelDetails": {"modelId": request.model_name},
            },
            "disableMemory": False,
            "forceSideBySide": False,
            "isAsyncChat": False,
            "disableSelfHarmShortCircuit": False,
            "deviceEnvInfo": dict(_DEVICE_ENV),
        }
        media = bool(request.tool_overrides.get("videoGen") or request.tool_overrides.get("imageGen"))
        return RestCall("POST", "/rest/app-chat/conversations/new",
                        referer="/imagine" if media else "/", body=body)

    def frame_reader(self) -> FrameReader:
        return FrameReader()

    # -- files and quota ---------------------------------------------------------

    def upload_call(self, filename: str, mime: str, data: bytes) -> RestCall:
        body = {"fileName": filename, "fileMimeType": mime, "content": base64.b64encode(data).decode()}
        return RestCall("POST", "/rest/app-chat/upload-file", body=body)

    def uploaded_file(self, body: Any) -> UploadedFile:
        data = _dict(body)
        file_id = _str(_first(data, "fileMetadataId", "fileId"))
        if not file_id:
            raise _protocol("upload_file", "no fileMetadataId in the answer")
        return UploadedFile(file_id=file_id, file_uri=_str(data.get("fileUri")))

    def rate_limits_call(self, model_name: str, request_kind: str) -> RestCall:
        return RestCall("POST", "/rest/rate-limits", body={"requestKind": request_kind, "modelName": model_name})

    def rate_limits(self, body: Any) -> RateLimits:
        """Both shapes of §7.2: the token budget (read first, as [T] does) and the query count."""
        data = _dict(body)
        remaining = _int(_first(data, "remainingTokens", "remainingQueries"))
        total = _int(_first(data, "totalTokens", "totalQueries"))
        wait = _first(data, "waitTimeSeconds")
        if wait is None:
            wait = _first(_dict(data.get("lowEffortRateLimits")), "waitTimeSeconds") or None
        if remaining is None and total is None:
            raise _protocol("rate_limits", "no remaining count in the answer")
        return RateLimits(
            remaining=remaining,
            total=total if total is not None else remaining,
            window_seconds=_int(data.get("windowSizeSeconds")),
            wait_seconds=float(wait) if isinstance(wait, (int, float)) and not isinstance(wait, bool) else None,
        )

    def assets_call(self, page_token: str) -> RestCall:
        params = {"pageSize": "50", "orderBy": "ORDER_BY_LAST_USE_TIME", "source": "SOURCE_ANY",
                  "isLatest": "true"}
        if page_token:
            params["pageToken"] = page_token
        return RestCall("GET", "/rest/assets", referer="/files", params=params)

    def assets_page(self, body: Any) -> tuple[list[Asset], str]:
        data = _dict(body)
        assets = [
            Asset(asset_id=_str(item.get("assetId")), mime_type=_str(item.get("mimeType")),
                  name=_str(item.get("name")), model_generated=item.get("isModelGenerated") is True)
            for item in data.get("assets") or [] if isinstance(item, dict) and _str(item.get("assetId"))
        ]
        return assets, _str(data.get("nextPageToken"))

    def delete_asset_call(self, asset_id: str) -> RestCall:
        return RestCall("DELETE", f"/rest/assets-metadata/{asset_id}", referer="/files")

    # -- media ---------------------------------------------------------------------

    def media_post_call(self, media_type: str, prompt: str | None, media_url: str | None) -> RestCall:
        body: dict[str, Any] = {"mediaType": _MEDIA_TYPES.get(media_type.lower(), media_type)}
        if prompt is not None:
            body["prompt"] = prompt
        if media_url is not None:
            body["mediaUrl"] = media_url
        return RestCall("POST", "/rest/media/post/create", referer="/imagine", body=body)

    def media_post_id(self, body: Any) -> str:
        post_id = _str(_dict(_dict(body).get("post")).get("id"))
        if not post_id:
            raise _protocol("create_media_post", "no post id in the answer")
        return post_id

    def upscale_call(self, video_id: str) -> RestCall:
        return RestCall("POST", "/rest/media/video/upscale", referer="/imagine", body={"videoId": video_id})

    def upscaled_url(self, body: Any) -> str:
        url = _str(_dict(body).get("hdMediaUrl"))
        if not url:
            raise _protocol("upscale_video", "no hdMediaUrl in the answer")
        return url

    # -- imagine WebSocket ----------------------------------------------------------

    def imagine_messages(self, prompt: str, *, aspect_ratio: str, enable_nsfw: bool,
                         request_id: str, timestamp_ms: int) -> list[dict[str, Any]]:
        """What the client sends after the upgrade ([T]: no reset, ``input_scroll``)."""
        properties = {"section_count": 0, "is_kids_mode": False, "enable_nsfw": enable_nsfw,
                      "skip_upsampler": False, "is_initial": False, "aspect_ratio": aspect_ratio}
        content = {"requestId": request_id, "text": prompt, "type": "input_scroll", "properties": properties}
        return [{"type": "conversation.item.create", "timestamp": timestamp_ms,
                 "item": {"type": "message", "content": [content]}}]

    def imagine_events(self, frame: dict[str, Any], request_id: str) -> list[ImagineEvent | InStreamError]:
        """One server frame of the imagine socket; frames for other requests are dropped."""
        other = _str(_first(frame, "request_id", "requestId"))
        if other and other != request_id:
            return []
        kind = _str(frame.get("type"))
        status = _str(_first(frame, "current_status", "currentStatus"))
        image_id = _str(_first(frame, "image_id", "id", "job_id"))
        order = _int(_first(frame, "order", "grid_index", "side_by_side_index")) or 0
        width, height = _int(frame.get("width")) or 0, _int(frame.get("height")) or 0
        if kind == "error" or status == "error":
            return [InStreamError(_first(frame, "err_code", "errCode", "code"),
                                  _str(_first(frame, "err_msg", "err_message", "error", "message")))]
        if kind == "image":
            url = _str(_first(frame, "url", "imageUrl", "image_url"))
            percentage = _int(_first(frame, "percentage_complete", "percentageComplete", "progress")) or 0
            blob = _str(frame.get("blob"))
            if blob.startswith("data:"):
                blob = blob.partition(",")[2]
            image_id = image_id or url.rsplit("/", 1)[-1].split(".")[0]
            mime = "image/png" if url.lower().endswith(".png") else "image/jpeg"
            return [ImagineImage(image_id=image_id, order=order, url=url, blob_base64=blob,
                                 percentage=percentage, final=percentage >= 100, mime_type=mime,
                                 width=width, height=height)]
        if kind == "json" and status == "start_stage":
            return [ImagineSlotStarted(image_id=image_id, order=order, width=width, height=height)]
        if kind == "json" and status in ("completed", "done", "success"):
            return [ImagineSlotDone(image_id=image_id, order=order, moderated=frame.get("moderated") is True)]
        return []
