"""``/health`` says the process answers; ``/ready`` says it can serve: storage, pool, Grok client."""

from __future__ import annotations

import asyncio

import pytest

from grok2api.storage import StorageError
from grok2api.web.appkeys import POOL, STORAGE


async def test_ready_reports_each_part(gateway) -> None:
    client = await gateway("storage_local")
    await client.app[POOL].add(["acct-ready-1", "acct-ready-2"])
    await client.app[POOL].update("acct-ready-2", status="disabled")
    resp = await client.get("/ready")
    assert resp.status == 200
    body = await resp.json()
    assert body["status"] == "ready"
    assert body["checks"]["storage"]["ok"] and body["checks"]["storage"]["engine"] == "local"
    assert body["checks"]["pool"] == {"ok": True, "accounts": 2, "usable": 1}
    assert body["checks"]["upstream"] == {"ok": True}


@pytest.mark.parametrize("failure", ["error", "silence"])
async def test_storage_trouble_is_a_503_with_details_while_health_stays_up(
        gateway, monkeypatch: pytest.MonkeyPatch, failure: str) -> None:
    client = await gateway("storage_local")

    async def broken() -> int:
        if failure == "silence":
            await asyncio.sleep(60)
        raise StorageError("database is locked; url sqlite://user:hunter2@host/db")

    monkeypatch.setattr("grok2api.web.routes.READY_STORAGE_TIMEOUT", 0.2)
    monkeypatch.setattr(client.app[STORAGE], "last_change", broken)
    resp = await client.get("/ready")
    assert resp.status == 503
    body = await resp.json()
    storage = body["checks"]["storage"]
    assert body["status"] == "not_ready" and storage["ok"] is False
    if failure == "silence":
        assert storage["error"] == "no answer within 0.2s"
    else:
        assert storage["error"].startswith("StorageError: database is locked") and "hunter2" not in storage["error"]
    assert body["checks"]["pool"]["ok"] and body["checks"]["upstream"]["ok"]
    assert (await client.get("/health")).status == 200
