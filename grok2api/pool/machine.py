"""The account state machine: what each outcome of the Grok client does to an account.

Every function changes the account in place and returns the names of the stored
fields it changed, so the caller persists exactly those. ``use_count`` and the failure
counts are shared counters instead (:meth:`Account.count`): the writer stores them as
increments, so workers never overwrite each other's.

===========================  ================================================================
outcome                      effect on the account
===========================  ================================================================
success                      consecutive failure counts reset (``fail_count``,
                             ``rate_limit_streak``), ``use_count`` + 1; a quota sync follows
quota sync: remaining > 0    bucket quota := remaining; normal bucket: ``cooling`` → ``active``
quota sync: remaining = 0    as *rate limited* below, with the upstream's wait as reset time
invalid credentials (401)    ``fail_count`` + 1; at ``token.fail_threshold`` in a row → ``expired``
blocked (403 blocked-user)   → ``expired`` at once
rate limited (429, code 8)   bucket quota := 0; reset time := now + upstream wait when given,
                             else ``cooldown_base_sec · 2^(streak-1)`` capped at
                             ``cooldown_max_sec``. Normal bucket: ``active`` → ``cooling``
                             until then; heavy bucket: only the heavy budget waits
anti-bot, Cloudflare (403)   nothing: the account is not at fault; the event is counted
                             globally and the request moves to another account
5xx, network, timeouts,      soft cooldown: not selected for ``soft_cooldown_sec``; status
protocol                     unchanged
moderated, bad request       nothing (the request was at fault, not the account)
cooldown or reset time ends  ``cooling`` → ``active``; the bucket quota becomes unknown
                             (and the refresher re-checks it)
operator                     the only way into and out of ``disabled``, and out of ``expired``
===========================  ================================================================

``expired`` and ``disabled`` are never left by any outcome: only an operator revives
an account. Every failure is also counted on the account by class, with its time and
reason.

Which failures move a request to another account is :func:`retryable`.
"""

from __future__ import annotations

from grok2api.config.settings import GrokSettings, TokenSettings
from grok2api.logs.logger import mask_text
from grok2api.pool.account import FAIL_PREFIX, UNKNOWN, USE_COUNT, Account, Bucket, Status
from grok2api.upstream.errors import Failure, UpstreamError

Fields = set[str]

#: transient upstream trouble: a short pause for the account
TRANSIENT = frozenset({
    Failure.UPSTREAM_5XX, Failure.NETWORK_BEFORE_SEND, Failure.NETWORK_AFTER_SEND, Failure.TIMEOUT_CONNECT,
    Failure.TIMEOUT_FIRST_BYTE, Failure.TIMEOUT_IDLE, Failure.TIMEOUT_TOTAL, Failure.PROTOCOL,
})


#: the HTTP status a failure class stands for in ``grok.retry_status_codes``
_RETRY_STATUS = {
    Failure.INVALID_CREDENTIALS: 401,
    Failure.BLOCKED: 403,
    Failure.ANTI_BOT: 403,
    Failure.CLOUDFLARE: 403,
    Failure.RATE_LIMITED: 429,
    Failure.TIMEOUT_FIRST_BYTE: 504,
}
#: nothing reached Grok: another account is always safe to try
_NOT_SENT = frozenset({Failure.NETWORK_BEFORE_SEND, Failure.TIMEOUT_CONNECT})


def retryable(error: UpstreamError, cfg: GrokSettings) -> bool:
    """Whether a request that failed so, before any byte reached the client, moves to another account.

    The class decides, not the raw status: a moderation 403 is never retried even though
    403 is in the list. A 5xx counts with its own status, so operators opt in per code.
    """
    if error.failure in _NOT_SENT:
        return True
    status: int | None
    if error.failure is Failure.UPSTREAM_5XX:
        status = error.status or 500
    else:
        status = _RETRY_STATUS.get(error.failure)
    return status is not None and status in cfg.retry_status_codes


def on_success(account: Account, now: int) -> Fields:
    account.count(USE_COUNT)
    changed: Fields = set()
    if account.fail_count:
        account.fail_count = 0
        changed.add("fail_count")
    if account.rate_limit_streak:
        account.rate_limit_streak = 0
        changed.add("rate_limit_streak")
    return changed


def on_failure(account: Account, bucket: Bucket, error: UpstreamError, now: int, cfg: TokenSettings) -> Fields:
    failure = error.failure
    account.count(FAIL_PREFIX + failure.value)
    account.last_fail_at = now
    account.last_fail_reason = f"{failure.value}: {mask_text(error.message)[:200]}"
    changed = {"last_fail_at", "last_fail_reason"}
    if failure is Failure.INVALID_CREDENTIALS:
        account.fail_count += 1
        changed.add("fail_count")
        if account.fail_count >= cfg.fail_threshold:
            changed |= _expire(account)
    elif failure is Failure.BLOCKED:
        changed |= _expire(account)
    elif failure is Failure.RATE_LIMITED:
        changed |= _exhaust(account, bucket, error.retry_after, now, cfg)
    elif failure in TRANSIENT and cfg.soft_cooldown_sec > 0:
        until = now + int(cfg.soft_cooldown_sec * 1000)
        if until > account.cooldown_until:
            account.cooldown_until = until
            changed.add("cooldown_until")
    return changed


def on_quota(account: Account, bucket: Bucket, remaining: int | None, wait_seconds: float | None,
             now: int, cfg: TokenSettings) -> Fields:
    """A quota sync answered: ``remaining`` units left in ``bucket`` (None: it did not say)."""
    account.last_sync_at = now
    changed = {"last_sync_at"}
    if account.fail_count:  # the credentials just worked
        account.fail_count = 0
        changed.add("fail_count")
    if remaining is None:
        return changed
    if remaining <= 0:
        return changed | _exhaust(account, bucket, wait_seconds, now, cfg)
    changed.add(account.set_remaining(bucket, remaining))
    if account.rate_limit_streak:
        account.rate_limit_streak = 0
        changed.add("rate_limit_streak")
    if bucket is Bucket.HEAVY:
        if account.heavy_reset_at:
            account.heavy_reset_at = 0
            changed.add("heavy_reset_at")
    elif account.status is Status.COOLING:
        account.status = Status.ACTIVE
        account.cooldown_until = 0
        changed |= {"status", "cooldown_until"}
    return changed


def wake(account: Account, now: int) -> Fields:
    """Time passed: end a cooldown or a heavy reset that is due."""
    changed: Fields = set()
    if account.status is Status.COOLING and account.cooldown_until <= now:
        account.status = Status.ACTIVE
        changed.add("status")
        if account.quota == 0:
            account.quota = UNKNOWN
            changed.add("quota")
    if account.heavy_quota == 0 and account.heavy_reset_at and account.heavy_reset_at <= now:
        account.heavy_quota = UNKNOWN
        account.heavy_reset_at = 0
        changed |= {"heavy_quota", "heavy_reset_at"}
    return changed


def set_by_operator(account: Account, status: Status) -> Fields:
    """An operator enables or disables an account; enabling clears every penalty."""
    account.status = status
    if status is not Status.ACTIVE:
        return {"status"}
    account.fail_count = account.rate_limit_streak = 0
    account.cooldown_until = account.heavy_reset_at = 0
    if account.quota == 0:
        account.quota = UNKNOWN
    if account.heavy_quota == 0:
        account.heavy_quota = UNKNOWN
    return {"status", "fail_count", "rate_limit_streak", "cooldown_until", "heavy_reset_at", "quota", "heavy_quota"}


def cooldown_seconds(cfg: TokenSettings, streak: int) -> float:
    """The exponential cooldown after ``streak`` rate limits in a row."""
    return min(cfg.cooldown_base_sec * 2.0 ** max(0, streak - 1), cfg.cooldown_max_sec)


def _expire(account: Account) -> Fields:
    if account.status is Status.DISABLED or account.status is Status.EXPIRED:
        return set()
    account.status = Status.EXPIRED
    return {"status"}


def _exhaust(account: Account, bucket: Bucket, wait_seconds: float | None, now: int, cfg: TokenSettings) -> Fields:
    """The bucket is empty until the upstream's reset time, or an exponential cooldown."""
    account.rate_limit_streak += 1
    wait = wait_seconds if wait_seconds and wait_seconds > 0 else cooldown_seconds(cfg, account.rate_limit_streak)
    until = now + int(wait * 1000)
    changed = {"rate_limit_streak", account.set_remaining(bucket, 0)}
    if bucket is Bucket.HEAVY:
        account.heavy_reset_at = until
        return changed | {"heavy_reset_at"}
    account.cooldown_until = max(account.cooldown_until, until)
    changed.add("cooldown_until")
    if account.status is Status.ACTIVE:
        account.status = Status.COOLING
        changed.add("status")
    return changed
