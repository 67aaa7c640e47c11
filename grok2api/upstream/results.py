"""What the non-streaming Grok operations return, normalised across response shapes."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class UploadedFile:
    """``file_id`` goes into a chat's ``file_attachments``; ``file_uri`` is the asset path."""

    file_id: str
    file_uri: str


@dataclass(frozen=True, slots=True)
class RateLimits:
    """One rate-limit bucket; ``None`` where the upstream did not say.

    ``wait_seconds`` is the time until the bucket refills, given only when it is empty.
    """

    remaining: int | None
    total: int | None
    window_seconds: int | None
    wait_seconds: float | None


@dataclass(frozen=True, slots=True)
class Asset:
    """One entry of the account's file list (uploads and generated media)."""

    asset_id: str
    mime_type: str = ""
    name: str = ""
    model_generated: bool = False


@dataclass(frozen=True, slots=True)
class DownloadedAsset:
    path: Path
    content_type: str
    size: int
    #: the body, when it was small enough to be written in one call (a picture): a caller
    #: that wants the bytes need not read the file back
    data: bytes | None = None
