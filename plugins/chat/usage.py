"""Token counts for ``usage``: an offline estimate, because Grok reports none.

No tokenizer file can be downloaded here, and Grok's own tokenizer is not public, so
text is counted with a fixed rule close to GPT-style BPE tokenizers on English:
CJK characters count one each, runs of letters one per 5 UTF-8 bytes (rounded up), runs
of digits one per 3 digits, every other visible character one, whitespace nothing.
``prompt_tokens`` counts the prompt exactly as sent to Grok (the flattened
conversation); attachments are not counted. ``completion_tokens`` counts the reasoning
and the content the client received; ``reasoning_tokens`` is the reasoning part.
"""

from __future__ import annotations

import re
from typing import Any

_PIECES = re.compile(
    r"(?P<cjk>[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff])"
    r"|(?P<letters>[^\W\d_\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff]+)"
    r"|(?P<digits>\d+)"
    r"|(?P<other>\S)"
)


def count_tokens(text: str) -> int:
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


def usage(prompt_tokens: int, reasoning: str, content: str) -> dict[str, Any]:
    """The ``usage`` object of OpenAI's chat-completion schema."""
    reasoning_tokens, text_tokens = count_tokens(reasoning), count_tokens(content)
    completion = reasoning_tokens + text_tokens
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion,
        "total_tokens": prompt_tokens + completion,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0, "text_tokens": prompt_tokens},
        "completion_tokens_details": {"reasoning_tokens": reasoning_tokens, "audio_tokens": 0,
                                      "text_tokens": text_tokens, "accepted_prediction_tokens": 0,
                                      "rejected_prediction_tokens": 0},
    }
