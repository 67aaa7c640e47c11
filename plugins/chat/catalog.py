"""The chat models of the original catalog and the daily-quota buckets a request draws on."""

from __future__ import annotations

from grok2api.api import ModelSpec

_G41 = "grok-4-1-thinking-1129"

# id, display name, upstream modelName, modelMode, rate-limit name, tier, cost
_ROWS: tuple[tuple[str, str, str, str, str, str, int], ...] = (
    ("grok-3", "Grok 3", "grok-3", "MODEL_MODE_GROK_3", "grok-3", "basic", 1),
    ("grok-3-mini", "Grok 3 Mini", "grok-3", "MODEL_MODE_GROK_3_MINI_THINKING", "grok-3", "basic", 1),
    ("grok-3-thinking", "Grok 3 Thinking", "grok-3", "MODEL_MODE_GROK_3_THINKING", "grok-3", "basic", 1),
    ("grok-4", "Grok 4", "grok-4", "MODEL_MODE_GROK_4", "grok-4", "basic", 1),
    ("grok-4-mini", "Grok 4 Mini", "grok-4-mini", "MODEL_MODE_GROK_4_MINI_THINKING", "grok-4-mini", "basic", 1),
    ("grok-4-thinking", "Grok 4 Thinking", "grok-4", "MODEL_MODE_GROK_4_THINKING", "grok-4", "basic", 1),
    ("grok-4-heavy", "Grok 4 Heavy", "grok-4", "MODEL_MODE_HEAVY", "grok-4-heavy", "super", 4),
    ("grok-4.1-mini", "Grok 4.1 Mini", _G41, "MODEL_MODE_GROK_4_1_MINI_THINKING", _G41, "basic", 1),
    ("grok-4.1-fast", "Grok 4.1 Fast", _G41, "MODEL_MODE_FAST", _G41, "basic", 1),
    ("grok-4.1-expert", "Grok 4.1 Expert", _G41, "MODEL_MODE_EXPERT", _G41, "basic", 4),
    ("grok-4.1-thinking", "Grok 4.1 Thinking", _G41, "MODEL_MODE_GROK_4_1_THINKING", _G41, "basic", 4),
    ("grok-4.20-beta", "Grok 4.20 Beta", "grok-420", "MODEL_MODE_GROK_420", "grok-420", "basic", 1),
)

CHAT_MODELS: tuple[ModelSpec, ...] = tuple(
    ModelSpec(id=id_, display_name=name, upstream_model=upstream, upstream_mode=mode, rate_limit_model=limit,
              kind="chat", tier=tier, cost=cost, heavy=id_ == "grok-4-heavy")  # type: ignore[arg-type]
    for id_, name, upstream, mode, limit, tier, cost in _ROWS
)


def quota_buckets(model: ModelSpec) -> dict[str, int]:
    """What one chat-completions request takes from an API key's daily limits.

    Heavy draws on ``heavy`` and ``chat``, an image model asked through chat on ``image``
    (one call makes two images), the video model on ``video``, anything else on ``chat``.
    """
    if model.heavy:
        return {"heavy": 1, "chat": 1}
    if model.kind in ("image", "image_edit"):
        return {"image": 2}
    if model.kind == "video":
        return {"video": 1}
    return {"chat": 1}
