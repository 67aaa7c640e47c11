"""Tiny but valid media files for the fake's assets.

Each file carries a label (its asset path) in a comment, so two assets never have the
same bytes, and can be padded with further comments to a realistic size.
"""

from __future__ import annotations

import struct
import zlib

_COMMENT_MAX = 65533  # a JPEG segment holds at most this many payload bytes


def _segment(marker: int, payload: bytes) -> bytes:
    return struct.pack(">HH", 0xFF00 | marker, len(payload) + 2) + payload


def jpeg(label: str, min_size: int = 0) -> bytes:
    """An 8x8 grey baseline JPEG whose only block is flat: one-code Huffman tables for
    DC "no difference" and AC "end of block" make its entire scan the byte ``0x3F``."""
    one_code = bytes([1] + [0] * 15) + b"\x00"
    head, tail = b"\xff\xd8" + _segment(0xFE, label.encode()), b"".join([
        _segment(0xDB, b"\x00" + b"\x01" * 64),
        _segment(0xC0, struct.pack(">BHHB", 8, 8, 8, 1) + b"\x01\x11\x00"),
        _segment(0xC4, b"\x00" + one_code),
        _segment(0xC4, b"\x10" + one_code),
        _segment(0xDA, b"\x01\x01\x00\x00\x3f\x00"),
        b"\x3f\xff\xd9",
    ])
    padding = []
    missing = min_size - len(head) - len(tail)
    while missing > 0:
        pad = max(1, min(_COMMENT_MAX, missing - 4))
        padding.append(_segment(0xFE, b"." * pad))
        missing -= pad + 4
    return head + b"".join(padding) + tail


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png(label: str, min_size: int = 0) -> bytes:
    """A 1x1 grey PNG with the label (and any padding) in a ``tEXt`` chunk."""
    text = b"Comment\x00" + label.encode() + b"." * max(0, min_size - 80 - len(label))
    return b"".join([
        b"\x89PNG\r\n\x1a\n",
        _chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0)),
        _chunk(b"tEXt", text),
        _chunk(b"IDAT", zlib.compress(b"\x00\x80")),
        _chunk(b"IEND", b""),
    ])


def _box(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload) + 8) + kind + payload


def mp4(label: str) -> bytes:
    """An MP4 container header (``ftyp``), the label in a ``free`` box, an empty ``mdat``."""
    return _box(b"ftyp", b"isom" + struct.pack(">I", 512) + b"isomiso2mp41") + \
        _box(b"free", label.encode()) + _box(b"mdat", b"")
