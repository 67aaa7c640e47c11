"""``/api/v1/admin/cache…``: the local cache (listing, deletion, no path outside it) and the
online assets of a few accounts."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from grok2api.api import MEDIA, now_ms
from grok2api.testing.fake_grok import FakeGrok, StoredAsset

from .support import Admin, Client, account, ready

TOKEN = "media-token-" + "m" * 28


def put(client: Client, kind: Literal["image", "video"], name: str, size: int, mtime: float) -> Path:
    directory = client.app[MEDIA].directory(kind)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_bytes(b"x" * size)
    os.utime(path, (mtime, mtime))
    return path


async def test_local_cache_list_delete_clear(admin: Admin) -> None:
    client, h = await ready(admin)
    put(client, "image", "old.jpg", 1000, 1_000_000)
    put(client, "image", "clip.jpg", 10, 2_000_000)
    put(client, "video", "clip.mp4", 2048, 3_000_000)
    (client.app[MEDIA].directory("image").parent / "secret.txt").write_text("outside")
    stats = await (await client.get("/api/v1/admin/cache/local", headers=h)).json()
    assert stats["local_image"]["count"] == 2 and stats["local_video"]["count"] == 1
    listed = await (await client.get("/api/v1/admin/cache/list?type=image", headers=h)).json()
    assert [i["name"] for i in listed["items"]] == ["clip.jpg", "old.jpg"] and listed["total"] == 2
    assert listed["items"][0] == {"name": "clip.jpg", "size_bytes": 10, "mtime_ms": 2_000_000_000,
                                  "view_url": "/v1/files/image/clip.jpg"}
    videos = await (await client.get("/api/v1/admin/cache/list?cache_type=video&page_size=1", headers=h)).json()
    assert videos["items"][0]["preview_url"] == "/v1/files/image/clip.jpg"
    assert (await client.get("/api/v1/admin/cache/list?type=gif", headers=h)).status == 400
    for name in ("../secret.txt", "..", "/etc/passwd", "..\\secret.txt"):
        resp = await client.post("/api/v1/admin/cache/item/delete", json={"type": "image", "name": name}, headers=h)
        assert (await resp.json())["result"] == {"deleted": False}
    assert (client.app[MEDIA].directory("image").parent / "secret.txt").exists()
    gone = await client.post("/api/v1/admin/cache/item/delete", json={"type": "image", "name": "old.jpg"}, headers=h)
    assert (await gone.json())["result"] == {"deleted": True}
    missing = await client.post("/api/v1/admin/cache/item/delete", json={"type": "image"}, headers=h)
    assert missing.status == 400 and (await missing.json())["error"]["param"] == "name"
    cleared = await (await client.post("/api/v1/admin/cache/clear", json={"type": "video"}, headers=h)).json()
    assert cleared == {"status": "success", "result": {"count": 1, "size_mb": 0.0}}
    metrics = await (await client.get("/api/v1/admin/metrics", headers=h)).json()
    assert metrics["cache"]["local_image"]["count"] == 1 and metrics["cache"]["local_video"]["count"] == 0


async def test_online_assets_counted_and_cleared(admin: Admin, fake_grok: FakeGrok) -> None:
    grok_account = fake_grok.add_account(TOKEN)
    for n in range(5):
        path = f"users/{grok_account.user_id}/a{n}/content"
        fake_grok.assets[path] = StoredAsset(f"a{n}", path, "image/jpeg", b"x", grok_account.user_id, created=float(n))
    client, h = await ready(admin, grok={**fake_grok.grok_settings(), "timeout": 5})
    await client.post("/api/v1/admin/tokens/add", json={"token": TOKEN}, headers=h)
    account_id = (await (await client.get("/api/v1/admin/tokens", headers=h)).json())["ssoBasic"][0]["id"]
    overview = await (await client.get(f"/api/v1/admin/cache?ids={account_id}", headers=h)).json()
    assert overview["online"][account_id] == {"status": "ok", "count": 5, "last_asset_clear_at": None}
    assert "local_image" in overview
    before = now_ms()
    one = await (await client.post("/api/v1/admin/cache/online/clear", json={"id": account_id}, headers=h)).json()
    cleared_at = one["result"].pop("last_asset_clear_at")
    assert one["result"] == {"total": 5, "success": 5, "failed": 0} and before <= cleared_at <= now_ms()
    assert not fake_grok.assets
    overview = await (await client.get(f"/api/v1/admin/cache?ids={account_id}", headers=h)).json()
    assert overview["online"][account_id]["last_asset_clear_at"] == cleared_at
    listed = await (await client.get("/api/v1/admin/tokens", headers=h)).json()
    assert listed["ssoBasic"][0]["last_asset_clear_at"] == cleared_at
    assert account(await admin(), TOKEN).last_asset_clear_at == cleared_at  # stored: another worker reads it
    batch = await (await client.post("/api/v1/admin/cache/online/clear", json={"tokens": [TOKEN]}, headers=h)).json()
    again = batch["results"][TOKEN]["result"]
    assert again.pop("last_asset_clear_at") >= cleared_at
    assert batch["results"][TOKEN]["status"] == "success" and again == {"total": 0, "success": 0, "failed": 0}
    unknown = await client.post("/api/v1/admin/cache/online/clear", json={"ids": ["0" * 24]}, headers=h)
    assert unknown.status == 404
    assert (await client.post("/api/v1/admin/cache/online/clear", json={}, headers=h)).status == 400
