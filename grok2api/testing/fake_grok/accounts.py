"""Simulated Grok accounts: tier, user id and one quota bucket per rate-limit name."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Literal
from uuid import uuid4

Tier = Literal["basic", "super"]

#: queries per window of a fresh bucket; heavy mode is for super accounts only
DEFAULT_LIMITS: dict[Tier, int] = {"basic": 80, "super": 140}
DEFAULT_WINDOWS: dict[Tier, int] = {"basic": 72000, "super": 7200}
HEAVY_BUCKET = "grok-4-heavy"
_MEDIA_MODELS = {"imagine-image-edit", "imagine-video-gen"}


def bucket_name(model_name: str, model_mode: str) -> str:
    """The rate-limit name a conversation counts against (protocol §3.3)."""
    if model_mode == "MODEL_MODE_HEAVY":
        return HEAVY_BUCKET
    if model_name in _MEDIA_MODELS or not model_name:
        return "grok-3"
    return model_name


@dataclass
class Bucket:
    """A quota that refills ``window_seconds`` after its first use."""

    limit: int
    window_seconds: int
    used: int = 0
    window_started: float | None = None

    def _roll(self) -> None:
        if self.window_started is not None and time.monotonic() >= self.window_started + self.window_seconds:
            self.used, self.window_started = 0, None

    @property
    def remaining(self) -> int:
        self._roll()
        return max(0, self.limit - self.used)

    @property
    def wait_seconds(self) -> int:
        """Seconds until the bucket refills (0 while it has queries left)."""
        if self.remaining:
            return 0
        if self.window_started is None:  # a bucket with no allowance at all
            return self.window_seconds
        return max(1, math.ceil(self.window_started + self.window_seconds - time.monotonic()))

    def take(self) -> bool:
        if not self.remaining:
            return False
        if self.window_started is None:
            self.window_started = time.monotonic()
        self.used += 1
        return True


@dataclass
class Account:
    """``limits`` overrides the tier's default per bucket (``{"grok-3": 2}``)."""

    sso: str
    tier: Tier = "basic"
    user_id: str = field(default_factory=lambda: str(uuid4()))
    limits: dict[str, int] = field(default_factory=dict)
    window_seconds: int | None = None
    buckets: dict[str, Bucket] = field(default_factory=dict)

    def bucket(self, name: str) -> Bucket:
        if name not in self.buckets:
            default = 0 if name == HEAVY_BUCKET and self.tier == "basic" else DEFAULT_LIMITS[self.tier]
            self.buckets[name] = Bucket(self.limits.get(name, default),
                                        self.window_seconds or DEFAULT_WINDOWS[self.tier])
        return self.buckets[name]
