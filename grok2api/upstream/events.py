"""Typed events read from Grok's response stream, so no plugin touches raw upstream JSON.

Events are values: nothing changes one after it is made. They are plain slotted
dataclasses rather than frozen ones, as one is made for nearly every frame of a stream
and a frozen dataclass costs several times as much to construct.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(slots=True)
class ConversationStarted:
    conversation_id: str


@dataclass(slots=True)
class ResponseMeta:
    """The assistant response id and model hash, when a frame first carries them."""

    response_id: str
    model_hash: str = ""


@dataclass(slots=True)
class TextDelta:
    """A piece of text. ``thinking`` marks reasoning; ``tag`` is the upstream ``messageTag``
    (``final``, ``header``, ``analysis``, ``tool_usage_card``, ``raw_function_result``)."""

    text: str
    thinking: bool = False
    tag: str = ""
    step_id: int | None = None


@dataclass(slots=True)
class WebSearchResults:
    results: list[dict[str, str]]  # each {"url", "title", "preview"}


@dataclass(slots=True)
class CardAttachment:
    """A card referenced from text by ``<grok:render card_id=…>`` (citations, images)."""

    card: dict[str, Any]


@dataclass(slots=True)
class ImageProgress:
    image_id: str
    index: int
    progress: int
    url: str = ""
    moderated: bool = False


@dataclass(slots=True)
class VideoProgress:
    video_id: str
    progress: int
    post_id: str = ""
    url: str = ""
    thumbnail_url: str = ""
    moderated: bool = False


@dataclass(slots=True)
class ModelResponse:
    """The final assistant record: its ``message`` equals the concatenated final tokens."""

    response_id: str
    message: str
    generated_image_urls: list[str] = field(default_factory=list)
    file_attachments: list[str] = field(default_factory=list)
    card_attachments: list[dict[str, Any]] = field(default_factory=list)
    model_hash: str = ""
    stream_errors: list[str] = field(default_factory=list)


@dataclass(slots=True)
class InStreamError:
    """An ``error`` object inside the stream (usage limit, moderation, …); the client raises it."""

    code: int | str | None
    message: str


@dataclass(slots=True)
class StreamEnd:
    """The upstream said it is done (``isSoftStop`` or ``finalMetadata``)."""


Event = (
    ConversationStarted | ResponseMeta | TextDelta | WebSearchResults | CardAttachment
    | ImageProgress | VideoProgress | ModelResponse | InStreamError | StreamEnd
)


@dataclass(slots=True)
class ImagineSlotStarted:
    """The imagine WebSocket began one picture slot (``order`` is its position)."""

    image_id: str
    order: int
    width: int = 0
    height: int = 0


@dataclass(slots=True)
class ImagineImage:
    """A picture of a slot: previews first, then the ``final`` one (100 %)."""

    image_id: str
    order: int
    url: str
    blob_base64: str
    percentage: int
    final: bool
    mime_type: str = "image/jpeg"
    width: int = 0
    height: int = 0


@dataclass(slots=True)
class ImagineSlotDone:
    """A slot is finished; a ``moderated`` slot has no usable final picture.

    It may arrive before the slot's final :class:`ImagineImage`.
    """

    image_id: str
    order: int
    moderated: bool = False


ImagineEvent = ImagineSlotStarted | ImagineImage | ImagineSlotDone
