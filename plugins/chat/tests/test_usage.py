"""Token counts of attachments: sizes read from real headers, and OpenAI's published rules."""

from __future__ import annotations

import io
import struct
import wave
import zlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from grok2api_plugins.chat.fetch import Blob
from grok2api_plugins.chat.media_size import image_size, wav_seconds
from grok2api_plugins.chat.usage import PromptTokens, count_ascii, count_pieces, count_tokens, image_tokens, usage


def png(width: int, height: int) -> bytes:
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    raw = b"".join(b"\x00" + b"\x00" * width for _ in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def jpeg(width: int, height: int) -> bytes:
    app0 = b"\xff\xe0" + struct.pack(">H", 16) + b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
    dht = b"\xff\xc4" + struct.pack(">H", 5) + b"\x00\x00\x00"  # a table, not a frame: skipped
    sof = b"\xff\xc2" + struct.pack(">HBHHB", 11, 8, height, width, 1) + b"\x01\x11\x00"
    return b"\xff\xd8" + app0 + dht + sof + b"\xff\xd9"


def wav(seconds: float, rate: int = 8000) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(b"\x00\x00" * int(rate * seconds))
    return out.getvalue()


@pytest.mark.parametrize(("data", "size"), [
    (png(3, 2), (3, 2)),
    (b"GIF89a" + struct.pack("<HH", 640, 480) + b"\x00" * 8, (640, 480)),
    (jpeg(1920, 1080), (1920, 1080)),
    (b"RIFF\x00\x00\x00\x00WEBPVP8X" + b"\x00" * 8 + (1023).to_bytes(3, "little") + (767).to_bytes(3, "little"),
     (1024, 768)),
    (b"RIFF\x00\x00\x00\x00WEBPVP8 " + b"\x00" * 10 + struct.pack("<HH", 300, 200), (300, 200)),
    (b"RIFF\x00\x00\x00\x00WEBPVP8L\x00\x00\x00\x00\x2f"
     + ((99) | (49 << 14)).to_bytes(4, "little"), (100, 50)),
    (b"\x89PNG\r\n\x1a\n" + b"\x01" * 32, None),
    (b"%PDF-1.4", None),
    (b"\xff\xd8\xff", None),
])
def test_image_sizes_come_from_the_header(data: bytes, size: tuple[int, int] | None) -> None:
    assert image_size(data) == size


@pytest.mark.parametrize(("size", "tokens"), [
    ((1024, 1024), 765),  # OpenAI's worked examples
    ((2048, 4096), 1105),
    ((100, 100), 255),  # small images are not scaled up: one tile
    (None, 85),
])
def test_image_tokens_follow_the_tile_rule(size: tuple[int, int] | None, tokens: int) -> None:
    assert image_tokens(size) == tokens


def test_wav_length_comes_from_the_header() -> None:
    assert wav_seconds(wav(1.5)) == pytest.approx(1.5)
    assert wav_seconds(b"RIFF\x00\x00\x00\x00WAVEfmt ") is None
    assert wav_seconds(b"ID3 an mp3") is None


def test_prompt_tokens_add_every_attachment() -> None:
    blobs = [Blob(png(1024, 1024), "image/png", "a.png"), Blob(wav(2.0), "audio/wav", "a.wav"),
             Blob(b"\x00" * 64_000, "audio/mpeg", "a.mp3"),  # 4 s at 128 kbit/s
             Blob(b"hello notes", "text/plain", "n.txt"), Blob(bytes(range(256)) * 4, "application/pdf", "b")]
    prompt = PromptTokens.of("What is in these?", blobs)
    assert prompt.text == count_tokens("What is in these?")
    assert prompt.audio == 20 + 40
    assert prompt.other == 765 + count_tokens("hello notes") + 1024 // 4
    body = usage(prompt, "", "An answer")
    assert body["prompt_tokens"] == prompt.text + prompt.audio + prompt.other
    assert body["prompt_tokens_details"]["audio_tokens"] == 60
    assert body["total_tokens"] == body["prompt_tokens"] + body["completion_tokens"]


@given(st.text(alphabet=st.characters(max_codepoint=127)))
def test_the_ascii_shortcut_counts_as_the_rule_does(text: str) -> None:
    assert count_ascii(text) == count_pieces(text)
