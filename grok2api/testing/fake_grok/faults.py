"""Fault injection: what the fake does wrong, for which account and endpoint, how often."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Endpoint(StrEnum):
    CHAT = "chat"
    UPLOAD = "upload"
    RATE_LIMITS = "rate_limits"
    LIST_ASSETS = "list_assets"
    DELETE_ASSET = "delete_asset"
    ASSET = "asset"  # a download on the assets origin
    MEDIA_POST = "media_post"
    UPSCALE = "upscale"
    IMAGINE = "imagine"


class FaultKind(StrEnum):
    # answered instead of the request, on any endpoint (WebSocket upgrades included)
    INVALID_CREDENTIALS = "invalid_credentials"  # 401, invalid-credentials marker
    BLOCKED = "blocked"  # 403 blocked-user
    ANTI_BOT = "anti_bot"  # 403 code 7 "Request rejected by anti-bot rules."
    CLOUDFLARE = "cloudflare"  # 403 "Just a moment..." HTML, cf-mitigated: challenge
    CLOUDFLARE_EMPTY = "cloudflare_empty"  # 403 with an empty body
    MODERATED = "moderated"  # 403 content-moderated JSON
    RATE_LIMITED = "rate_limited"  # 429 code 8, Retry-After when retry_after is set
    SERVER_ERROR = "server_error"  # `status` (default 503)
    DISCONNECT = "disconnect"  # connection closed after the request, no answer at all
    # delays the answer, then serves it (combines with everything else)
    SLOW_FIRST_BYTE = "slow_first_byte"  # `delay` seconds before the status line
    # inside a 200 chat stream
    RATE_LIMITED_IN_STREAM = "rate_limited_in_stream"  # the only line: {"error":{"code":8,…}}
    USAGE_LIMIT = "usage_limit"  # usage-limit response.error as line `after_lines`, then the end
    STREAM_ERROR = "stream_error"  # modelResponse.streamErrors = [`message`]
    IDLE_GAP = "idle_gap"  # `delay` seconds of silence before line `after_lines`
    TRUNCATE = "truncate"  # body ends cleanly before line `after_lines` (`mid_line`: half of it sent)
    DROP = "drop"  # connection reset before line `after_lines`
    SPLIT_LINES = "split_lines"  # every line cut at random offsets (`seed`) into separate writes
    MERGE_LINES = "merge_lines"  # all lines in one write
    SSE = "sse"  # SSE framing: event: and data: lines, blank lines, data: [DONE]
    # elsewhere
    IMAGINE_ERROR = "imagine_error"  # an error frame instead of pictures (`message`)
    IMAGINE_ERROR_MID = "imagine_error_mid"  # the round's first `after_lines` frames, then an internal_error frame
    IMAGINE_DROP = "imagine_drop"  # the socket closes after the round's first `after_lines` frames
    REPEAT_PAGE_TOKEN = "repeat_page_token"  # the asset list hands out the same page token forever


ANSWERS = frozenset({
    FaultKind.INVALID_CREDENTIALS, FaultKind.BLOCKED, FaultKind.ANTI_BOT, FaultKind.CLOUDFLARE,
    FaultKind.CLOUDFLARE_EMPTY, FaultKind.MODERATED, FaultKind.RATE_LIMITED, FaultKind.SERVER_ERROR,
    FaultKind.DISCONNECT,
})
IMAGINE_FAULTS = frozenset({FaultKind.IMAGINE_ERROR, FaultKind.IMAGINE_ERROR_MID, FaultKind.IMAGINE_DROP})
_ONLY_ON = {
    **{kind: Endpoint.CHAT for kind in (
        FaultKind.RATE_LIMITED_IN_STREAM, FaultKind.USAGE_LIMIT, FaultKind.STREAM_ERROR,
        FaultKind.IDLE_GAP, FaultKind.TRUNCATE, FaultKind.DROP, FaultKind.SPLIT_LINES,
        FaultKind.MERGE_LINES, FaultKind.SSE)},
    **dict.fromkeys(IMAGINE_FAULTS, Endpoint.IMAGINE),
    FaultKind.REPEAT_PAGE_TOKEN: Endpoint.LIST_ASSETS,
}


@dataclass
class Fault:
    """One injected fault. ``account`` (an sso value) and ``endpoint`` narrow it (``None``:
    any); ``times`` is how many requests it hits (``None``: until cleared)."""

    kind: FaultKind
    account: str | None = None
    endpoint: Endpoint | None = None
    times: int | None = 1
    status: int = 503
    retry_after: float | None = None
    delay: float = 0.0
    after_lines: int = 3
    mid_line: bool = False
    seed: int = 0
    message: str = ""

    def applies(self, endpoint: Endpoint, sso: str | None) -> bool:
        only = _ONLY_ON.get(self.kind)
        return (self.times is None or self.times > 0) \
            and (self.account is None or self.account == sso) \
            and (self.endpoint is None or self.endpoint == endpoint) \
            and (only is None or only == endpoint)


class FaultBook:
    """Pending faults, consumed by the requests they hit."""

    def __init__(self) -> None:
        self.pending: list[Fault] = []

    def add(self, fault: Fault) -> Fault:
        self.pending.append(fault)
        return fault

    def clear(self) -> None:
        self.pending.clear()

    def take(self, endpoint: Endpoint, sso: str | None) -> list[Fault]:
        """The faults this request gets: the first matching answer fault (with any
        delay) or else every other matching fault; each loses one use."""
        matching = [fault for fault in self.pending if fault.applies(endpoint, sso)]
        answer = next((fault for fault in matching if fault.kind in ANSWERS), None)
        if answer is not None:
            matching = [f for f in matching if f is answer or f.kind == FaultKind.SLOW_FIRST_BYTE]
        for fault in matching:
            if fault.times is not None:
                fault.times -= 1
        self.pending = [fault for fault in self.pending if fault.times is None or fault.times > 0]
        return matching
