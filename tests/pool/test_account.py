"""Account records: the original's shape in, every field (and unknown ones) out; tokens normalised."""

from __future__ import annotations

import pytest

from grok2api.pool import UNKNOWN, Account, Status, normalize_token
from grok2api.pool.account import STORED_FIELDS

LEGACY = {
    "token": "sso=eyJhbGciOiJIUzI1NiJ9.legacy", "pool": "ssoSuper", "status": "invalid", "quota": 12,
    "heavy_quota": -1, "created_at": 1700000000000, "last_used_at": None, "use_count": 7, "fail_count": 3,
    "last_fail_at": 1700000001000, "last_fail_reason": "401", "last_sync_at": 1700000002000,
    "tags": ["team-a"], "note": "main", "last_asset_clear_at": 1700000003000, "custom_field": {"kept": True},
}


@pytest.mark.parametrize(("raw", "token"), [
    ("abc123", "abc123"),
    ("  sso=abc123 ", "abc123"),
    ('"abc123"', "abc123"),
    ("sso-rw=zzz; sso=abc123; cf_clearance=x", "abc123"),
    ("eyJhbGciOiJIUzI1NiJ9.eyJz.c2ln==", "eyJhbGciOiJIUzI1NiJ9.eyJz.c2ln=="),
    ("", ""),
    ("   ", ""),
    ("two words", ""),
    ("x" * 600, ""),
])
def test_tokens_are_normalised(raw: str, token: str) -> None:
    assert normalize_token(raw) == token


def test_the_original_record_loads_with_invalid_mapped_and_unknown_fields_kept() -> None:
    account = Account.from_record("eyJhbGciOiJIUzI1NiJ9.legacy", LEGACY)
    assert account.status is Status.EXPIRED  # "invalid" is the original admin view of expired
    assert (account.pool, account.quota, account.heavy_quota) == ("ssoSuper", 12, UNKNOWN)
    assert (account.use_count, account.fail_count, account.tags, account.note) == (7, 3, ("team-a",), "main")
    record = account.to_record()
    assert record["custom_field"] == {"kept": True}
    assert record["status"] == "expired" and record["token"] == account.token
    assert set(STORED_FIELDS) <= set(record)


@pytest.mark.parametrize(("stored", "quota"), [(None, UNKNOWN), ("", UNKNOWN), (-5, UNKNOWN), (0, 0), ("40", 40)])
def test_quota_null_empty_or_negative_is_unknown(stored: object, quota: int) -> None:
    assert Account.from_record("t", {"quota": stored}).quota == quota


def test_unknown_status_reads_as_active_so_nothing_is_dropped() -> None:
    assert Account.from_record("t", {"status": "weird"}).status is Status.ACTIVE
    assert Account.from_record("t", {}).status is Status.ACTIVE


def test_a_patch_record_holds_only_the_named_fields() -> None:
    account = Account.from_record("t", LEGACY)
    assert account.to_record({"quota", "status"}) == {"quota": 12, "status": "expired"}


def test_every_stored_field_round_trips_in_its_own_place() -> None:
    """from_record passes the fields positionally: a value read into its neighbour's place shows here."""
    record = {
        "token": "t", "pool": "ssoSuper", "status": "cooling", "quota": 1, "heavy_quota": 2, "heavy_reset_at": 3,
        "cooldown_until": 4, "created_at": 5, "last_used_at": 6, "use_count": 7, "fail_count": 8,
        "rate_limit_streak": 9, "failures": {"rate_limited": 10}, "last_fail_at": 11, "last_fail_reason": "429",
        "last_sync_at": 12, "tags": ["a"], "note": "n", "last_asset_clear_at": 13, "quota_epoch": [14, 15],
        "heavy_quota_epoch": [16, 17], "custom_field": 18,
    }
    assert set(record) == {"token", "custom_field", *STORED_FIELDS}
    assert Account.from_record("t", record).to_record() == record
