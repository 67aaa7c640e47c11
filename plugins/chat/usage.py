"""Token counts for ``usage``: an offline estimate, because Grok reports none.

No tokenizer file can be downloaded here, and Grok's own tokenizer is not public, so
text is counted with a fixed rule close to GPT-style BPE tokenizers on English:
CJK characters count one each, runs of letters one per 5 UTF-8 bytes (rounded up), runs
of digits one per 3 digits, every other visible character one, whitespace nothing.

``prompt_tokens`` counts the prompt exactly as sent to Grok (the flattened
conversation) plus its attachments, by the rules OpenAI publishes for its own models:

- an image as 85 tokens plus 170 per 512-pixel tile, after scaling it down to fit
  2048×2048 and then to 768 pixels on its shorter side (its size is read from the PNG,
  JPEG, GIF or WebP header; an image of unknown size counts 85);
- audio as 10 tokens per second (a WAV file's length from its header, other formats
  estimated at 128 kbit/s), reported as ``audio_tokens``;
- a file of UTF-8 text by the text rule, any other file as one token per 4 bytes.

``completion_tokens`` counts the reasoning and the content the client received;
``reasoning_tokens`` is the reasoning part.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from grok2api_plugins.chat.fetch import Blob
from grok2api_plugins.chat.media_size import image_size, wav_seconds

_PIECES = re.compile(
    r"(?P<cjk>[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff])"
    r"|(?P<letters>[^\W\d_\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff]+)"
    r"|(?P<digits>\d+)"
    r"|(?P<other>\S)"
)
IMAGE_BASE, IMAGE_TILE, TILE = 85, 170, 512
AUDIO_PER_SECOND = 10
COMPRESSED_AUDIO_BYTES_PER_SECOND = 128_000 // 8
FILE_BYTES_PER_TOKEN = 4


#: one match per token of ASCII text: a run of letters splits into pieces of up to 5
#: (ceil(len/5) of them), a run of digits into pieces of up to 3
_ASCII_TOKEN = re.compile(r"[A-Za-z]{1,5}|[0-9]{1,3}|[^\sA-Za-z0-9]")


def count_tokens(text: str) -> int:
    return count_ascii(text) if text.isascii() else count_pieces(text)


def count_pieces(text: str) -> int:
    """The rule, piece by piece."""
    total = 0
    for match in _PIECES.finditer(text):
        kind = match.lastgroup
        if kind == "letters":
            total += -(-len(match.group().encode()) // 5)
        elif kind == "digits":
            total += -(-len(match.group()) // 3)
        else:
            total += 1
    return total


def count_ascii(text: str) -> int:
    """The rule for ASCII text (no CJK, one byte a letter), in one pass of the regex engine."""
    return len(_ASCII_TOKEN.findall(text))


def head(text: str, tokens: int) -> str:
    """The longest start of ``text`` that counts at most ``tokens`` (for an answer's token limit)."""
    low, high = 0, len(text)
    while low < high:
        middle = (low + high + 1) // 2
        if count_tokens(text[:middle]) <= tokens:
            low = middle
        else:
            high = middle - 1
    return text[:low]


def image_tokens(size: tuple[int, int] | None) -> int:
    if size is None:
        return IMAGE_BASE
    fit = min(1.0, 2048 / max(size))
    width, height = size[0] * fit, size[1] * fit
    short = min(1.0, 768 / min(width, height))
    return IMAGE_BASE + IMAGE_TILE * math.ceil(width * short / TILE) * math.ceil(height * short / TILE)


def audio_tokens(blob: Blob) -> int:
    seconds = wav_seconds(blob.data)
    if seconds is None:
        seconds = len(blob.data) / COMPRESSED_AUDIO_BYTES_PER_SECOND
    return math.ceil(seconds * AUDIO_PER_SECOND)


def file_tokens(blob: Blob) -> int:
    try:
        return count_tokens(blob.data.decode())
    except UnicodeDecodeError:
        return -(-len(blob.data) // FILE_BYTES_PER_TOKEN)


@dataclass(frozen=True, slots=True)
class PromptTokens:
    text: int
    audio: int = 0
    other: int = 0  # images and files

    @classmethod
    def of(cls, text: str, blobs: Iterable[Blob]) -> PromptTokens:
        audio = other = 0
        for blob in blobs:
            if blob.mime.startswith("image/"):
                other += image_tokens(image_size(blob.data))
            elif blob.mime.startswith("audio/"):
                audio += audio_tokens(blob)
            else:
                other += file_tokens(blob)
        return cls(count_tokens(text), audio, other)

    @property
    def total(self) -> int:
        return self.text + self.audio + self.other


def usage(prompt: PromptTokens, reasoning: str, content: str, call_tokens: int = 0) -> dict[str, Any]:
    """The ``usage`` object of OpenAI's chat-completion schema; tool calls count as text."""
    reasoning_tokens, text_tokens = count_tokens(reasoning), count_tokens(content) + call_tokens
    completion = reasoning_tokens + text_tokens
    return {
        "prompt_tokens": prompt.total,
        "completion_tokens": completion,
        "total_tokens": prompt.total + completion,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": prompt.audio, "text_tokens": prompt.text},
        "completion_tokens_details": {"reasoning_tokens": reasoning_tokens, "audio_tokens": 0,
                                      "text_tokens": text_tokens, "accepted_prediction_tokens": 0,
                                      "rejected_prediction_tokens": 0},
    }
