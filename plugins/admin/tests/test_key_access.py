"""The keys API takes and returns a key's access limits (rpm, concurrency, expires_at, models),
checked with a 400 naming the field, beside the original's fields in their shapes."""

from __future__ import annotations

import time
from typing import Any

import pytest

from grok2api.testing.pytest_plugin import GatewayFactory

from .support import Client, auth, body_of, changed

KEYS = "/api/v1/admin/keys"


async def started(gateway: GatewayFactory) -> tuple[Client, dict[str, str]]:
    client: Client = await gateway("storage_local", "admin", "chat")
    return client, auth(await changed(client))


async def post(client: Client, h: dict[str, str], path: str, body: dict[str, Any], status: int = 200
               ) -> dict[str, Any]:
    return await body_of(await client.post(path, json=body, headers=h), status)


async def test_access_fields_are_stored_returned_and_reset(gateway: GatewayFactory) -> None:
    client, h = await started(gateway)
    soon = int(time.time()) + 3600
    made = (await post(client, h, KEYS, {"name": "team", "preset": "recommended", "rpm": 60, "concurrency": 2,
                                         "expires_at": soon, "models": ["grok-4", "grok-3"]}))["data"]
    assert (made["rpm"], made["concurrency"], made["expires_at"], made["models"], made["expired"]) == (
        60, 2, soon, ["grok-4", "grok-3"], False)
    assert made["chat_limit"] == 300 and made["key"].startswith("sk-")  # the original's fields as they were
    plain = (await post(client, h, KEYS, {"name": "plain"}))["data"]
    assert (plain["rpm"], plain["concurrency"], plain["expires_at"], plain["models"]) == (-1, -1, None, [])
    updated = (await post(client, h, f"{KEYS}/update", {"id": made["id"], "rpm": None, "models": [],
                                                         "expires_at": int(time.time()) - 5}))["data"]
    assert (updated["rpm"], updated["concurrency"], updated["models"], updated["expired"]) == (-1, 2, [], True)
    listed = await body_of(await client.get(KEYS, headers=h))
    row = next(r for r in listed["data"] if r["id"] == made["id"])
    assert {"rpm", "concurrency", "expires_at", "models", "expired", "usage_today", "remaining_today", "day",
            "display_key", "name", "is_active", "created_at", "chat_limit"} <= set(row)
    assert row["expired"] is True and row["remaining_today"]["chat"] == 300


@pytest.mark.parametrize(("body", "field"), [
    ({"rpm": "fast"}, "rpm"), ({"rpm": -3}, "rpm"), ({"concurrency": 1.5}, "concurrency"),
    ({"expires_at": "2027-01-01"}, "expires_at"), ({"models": "grok-4"}, "models"),
    ({"models": ["grok-4", "no-such-model"]}, "models"),
])
async def test_bad_access_fields_are_a_400_naming_the_field(gateway: GatewayFactory, body: dict[str, Any],
                                                            field: str) -> None:
    client, h = await started(gateway)
    refused = await post(client, h, KEYS, body, 400)
    assert refused["error"]["param"] == field and field in refused["error"]["message"]
    made = (await post(client, h, KEYS, {}))["data"]
    refused = await post(client, h, f"{KEYS}/update", {"id": made["id"], **body}, 400)
    assert refused["error"]["param"] == field
