"""Failure classes of the Grok web client: every upstream failure is one :class:`UpstreamError`.

The pool decides what each class does to an account (``grok2api.pool``); handlers map
the class to an HTTP status for the client with :func:`http_status`.
"""

from __future__ import annotations

from enum import StrEnum


class Failure(StrEnum):
    INVALID_CREDENTIALS = "invalid_credentials"  # 401, or the §8.1 markers
    BLOCKED = "blocked"  # the account is suspended or banned
    ANTI_BOT = "anti_bot"  # 403 "Request rejected by anti-bot rules" (code 7)
    CLOUDFLARE = "cloudflare"  # HTML challenge or empty 403
    MODERATED = "moderated"  # content refused by moderation
    RATE_LIMITED = "rate_limited"  # 429, in-stream code 8, usage-limit text
    UPSTREAM_5XX = "upstream_5xx"
    NETWORK_BEFORE_SEND = "network_before_send"  # nothing reached the upstream
    NETWORK_AFTER_SEND = "network_after_send"  # connection lost mid-request
    TIMEOUT_CONNECT = "timeout_connect"
    TIMEOUT_FIRST_BYTE = "timeout_first_byte"
    TIMEOUT_IDLE = "timeout_idle"  # gap between frames too long
    TIMEOUT_TOTAL = "timeout_total"
    BAD_REQUEST = "bad_request"  # another 4xx: our request was wrong
    PROTOCOL = "protocol"  # a 200 whose body made no sense (no answer, truncated)


class UpstreamError(Exception):
    """One failed upstream call, classified.

    ``retry_after`` is the upstream's own reset hint in seconds (``Retry-After`` or
    ``waitTimeSeconds``) when it gave one. ``body_excerpt`` is already truncated and
    masked, safe to log, never sent to clients.
    """

    def __init__(
        self,
        failure: Failure,
        message: str,
        *,
        status: int | None = None,
        retry_after: float | None = None,
        body_excerpt: str = "",
    ) -> None:
        super().__init__(message)
        self.failure = failure
        self.message = message
        self.status = status
        self.retry_after = retry_after
        self.body_excerpt = body_excerpt

    def __repr__(self) -> str:
        return f"UpstreamError({self.failure.value}, {self.message!r}, status={self.status})"


#: the status and OpenAI error code a client sees when this class ends its request
_CLIENT_STATUS: dict[Failure, tuple[int, str]] = {
    Failure.INVALID_CREDENTIALS: (502, "upstream_auth_failed"),
    Failure.BLOCKED: (502, "upstream_auth_failed"),
    Failure.ANTI_BOT: (502, "upstream_rejected"),
    Failure.CLOUDFLARE: (502, "upstream_rejected"),
    Failure.MODERATED: (400, "content_policy_violation"),  # OpenAI's code for a refused prompt
    Failure.RATE_LIMITED: (429, "rate_limit_exceeded"),
    Failure.UPSTREAM_5XX: (502, "upstream_error"),
    Failure.NETWORK_BEFORE_SEND: (502, "upstream_unreachable"),
    Failure.NETWORK_AFTER_SEND: (502, "upstream_error"),
    Failure.TIMEOUT_CONNECT: (504, "upstream_timeout"),
    Failure.TIMEOUT_FIRST_BYTE: (504, "upstream_timeout"),
    Failure.TIMEOUT_IDLE: (504, "upstream_timeout"),
    Failure.TIMEOUT_TOTAL: (504, "upstream_timeout"),
    Failure.BAD_REQUEST: (502, "upstream_error"),
    Failure.PROTOCOL: (502, "upstream_error"),
}


def http_status(failure: Failure) -> tuple[int, str]:
    """The client-facing status and code for a failure class."""
    return _CLIENT_STATUS[failure]
