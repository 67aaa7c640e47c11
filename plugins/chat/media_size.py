"""Sizes read from media headers, for counting attachments' tokens without decoding them."""

from __future__ import annotations

import struct

#: JPEG start-of-frame markers (the frame header holds the size); C4, C8 and CC are not frames
_JPEG_FRAMES = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


def image_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) of a PNG, GIF, JPEG or WebP image, or None when unreadable."""
    size: tuple[int, int] | None = None
    if data.startswith(b"\x89PNG\r\n\x1a\n") and data[12:16] == b"IHDR":
        size = struct.unpack(">II", data[16:24])
    elif data[:6] in (b"GIF87a", b"GIF89a") and len(data) >= 10:
        size = struct.unpack("<HH", data[6:10])
    elif data.startswith(b"\xff\xd8"):
        size = _jpeg_size(data)
    elif data.startswith(b"RIFF") and data[8:12] == b"WEBP":
        size = _webp_size(data)
    return size if size and size[0] > 0 and size[1] > 0 else None


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    pos = 2
    while pos + 9 <= len(data):
        if data[pos] != 0xFF:
            return None
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        length = struct.unpack(">H", data[pos + 2:pos + 4])[0]
        if marker in _JPEG_FRAMES:
            height, width = struct.unpack(">HH", data[pos + 5:pos + 9])
            return width, height
        pos += 2 + length
    return None


def _webp_size(data: bytes) -> tuple[int, int] | None:
    chunk = data[12:16]
    if chunk == b"VP8 " and len(data) >= 30:
        width, height = struct.unpack("<HH", data[26:30])
        return width & 0x3FFF, height & 0x3FFF
    if chunk == b"VP8L" and len(data) >= 25:
        bits = int.from_bytes(data[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8X" and len(data) >= 30:
        return int.from_bytes(data[24:27], "little") + 1, int.from_bytes(data[27:30], "little") + 1
    return None


def wav_seconds(data: bytes) -> float | None:
    """The length of a PCM WAV file from its ``fmt `` and ``data`` chunks, or None."""
    if not (data.startswith(b"RIFF") and data[8:12] == b"WAVE"):
        return None
    pos, byte_rate = 12, 0
    while pos + 8 <= len(data):
        name, length = data[pos:pos + 4], struct.unpack("<I", data[pos + 4:pos + 8])[0]
        if name == b"fmt " and length >= 12:
            byte_rate = struct.unpack("<I", data[pos + 16:pos + 20])[0]
        elif name == b"data":
            return min(length, len(data) - pos - 8) / byte_rate if byte_rate else None
        pos += 8 + length + (length & 1)
    return None
