"""The Grok web client (see ``docs/upstream.md``): operations, typed stream events and
classified failures. Plugins and the pool import from here."""

from grok2api.upstream.client import GrokClient
from grok2api.upstream.dialect import ChatRequest, Dialect, FrameReader
from grok2api.upstream.errors import Failure, UpstreamError, http_status
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
from grok2api.upstream.headers import normalize_sso
from grok2api.upstream.results import Asset, DownloadedAsset, RateLimits, UploadedFile
from grok2api.upstream.stream import LineDecoder, read_events

__all__ = [
    "Asset",
    "CardAttachment",
    "ChatRequest",
    "ConversationStarted",
    "Dialect",
    "DownloadedAsset",
    "Event",
    "Failure",
    "FrameReader",
    "GrokClient",
    "ImageProgress",
    "ImagineEvent",
    "ImagineImage",
    "ImagineSlotDone",
    "ImagineSlotStarted",
    "InStreamError",
    "LineDecoder",
    "ModelResponse",
    "RateLimits",
    "ResponseMeta",
    "StreamEnd",
    "TextDelta",
    "UploadedFile",
    "UpstreamError",
    "VideoProgress",
    "WebSearchResults",
    "http_status",
    "normalize_sso",
    "read_events",
]
