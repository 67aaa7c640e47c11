"""``/api/v1/admin/logs…``: files listed and tailed (no name outside the directory), followed
over SSE, and the request log queried with filters and paging."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from grok2api.api import REQUEST_LOG

from .support import Admin, Client, auth, changed


async def ready(admin: Admin, log_dir: Path) -> tuple[Client, dict[str, str]]:
    client = await admin(admin={"log_dir": str(log_dir)})
    return client, auth(await changed(client))


async def test_files_and_tail(admin: Admin, tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "app_2026-01-01.log").write_text("old\n")
    os.utime(logs / "app_2026-01-01.log", (1_000_000, 1_000_000))
    (logs / "app_2026-01-02.log").write_text("".join(f"line {n}\n" for n in range(20)))
    (tmp_path / "outside.log").write_text("secret\n")
    client, h = await ready(admin, logs)
    files = (await (await client.get("/api/v1/admin/logs/files", headers=h)).json())["files"]
    assert [f["name"] for f in files] == ["app_2026-01-02.log", "app_2026-01-01.log"]
    newest = await (await client.get("/api/v1/admin/logs/tail?lines=3", headers=h)).json()
    assert newest == {"file": "app_2026-01-02.log", "lines": ["line 17", "line 18", "line 19"]}
    clamped = await (await client.get("/api/v1/admin/logs/tail?file=app_2026-01-01.log&lines=0", headers=h)).json()
    assert clamped["lines"] == ["old"]
    for bad in ("../outside.log", "..%2Foutside.log", "app.txt", "sub\\x.log"):
        assert (await client.get(f"/api/v1/admin/logs/tail?file={bad}", headers=h)).status == 400
    assert (await client.get("/api/v1/admin/logs/tail?file=none.log", headers=h)).status == 404
    (logs / "link.log").symlink_to(tmp_path / "outside.log")
    assert (await client.get("/api/v1/admin/logs/tail?file=link.log", headers=h)).status == 400


async def test_follow_sends_new_lines(admin: Admin, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from grok2api_plugins.admin import logs as module

    monkeypatch.setattr(module, "FOLLOW_POLL_SEC", 0.05)
    (tmp_path / "app.log").write_text("before\n")
    client, h = await ready(admin, tmp_path)
    resp = await client.get("/api/v1/admin/logs/follow?file=app.log", headers=h)
    assert resp.headers["Content-Type"].startswith("text/event-stream")
    await asyncio.sleep(0.1)
    with open(tmp_path / "app.log", "a", encoding="utf-8") as fh:
        fh.write("first\nsecond\npart")
    seen = b""
    while seen.count(b"data:") < 2:
        seen += await asyncio.wait_for(resp.content.readany(), 5)
    assert b'data: "first"' in seen and b'data: "second"' in seen and b"before" not in seen and b"part" not in seen
    (tmp_path / "app.log").write_text("")  # rotated
    rest = await asyncio.wait_for(resp.content.read(), 5)
    assert b"event: end" in rest


async def test_request_log_filters_and_pages(admin: Admin, tmp_path: Path) -> None:
    client, h = await ready(admin, tmp_path)
    log = client.app[REQUEST_LOG]
    for n in range(12):
        log.record(method="POST", path="/v1/chat/completions" if n % 2 else "/v1/images/generations",
                   status=200 if n % 3 else 429, duration_ms=n, model="grok-3" if n % 2 else "grok-imagine",
                   key_name="team" if n < 6 else "other")
    await log.flush()
    page = await (await client.get("/api/v1/admin/logs/requests?limit=5", headers=h)).json()
    assert len(page["items"]) == 5 and page["next_before"] == page["items"][-1]["seq"]
    assert page["items"][0]["duration_ms"] == 11  # newest first
    rest = await (await client.get(f"/api/v1/admin/logs/requests?limit=50&before={page['next_before']}",
                                   headers=h)).json()
    assert len(rest["items"]) == 7 and rest["next_before"] is None
    limited = await (await client.get("/api/v1/admin/logs/requests?status=429", headers=h)).json()
    assert [i["duration_ms"] for i in limited["items"]] == [9, 6, 3, 0]
    mine = await (await client.get("/api/v1/admin/logs/requests?key=team&model=grok-3", headers=h)).json()
    assert [i["duration_ms"] for i in mine["items"]] == [5, 3, 1]
    ok = await (await client.get("/api/v1/admin/logs/requests?status=2xx&path=/v1/images", headers=h)).json()
    assert [i["duration_ms"] for i in ok["items"]] == [10, 8, 4, 2]
    assert (await client.get("/api/v1/admin/logs/requests?limit=9999", headers=h)).status == 400
