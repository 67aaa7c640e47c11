"""``/api/v1/admin/tokens…``: masked lists with paging and filters, import and export, edits,
and the original's full replacement applied as a diff under a version check."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson

from grok2api.api import POOL, mask_secret
from grok2api.testing.fake_grok import FakeGrok

from .support import Admin, Client, account, body_of, ready

ORIGINAL_FIELDS = {"token", "status", "quota", "quota_known", "heavy_quota", "heavy_quota_known", "token_type",
                   "note", "fail_count", "use_count"}
TOKENS = [f"tok-{n:02d}-" + "x" * 30 for n in range(6)]


async def post(client: Client, headers: dict[str, str], path: str, body: dict[str, Any],
               status: int = 200) -> dict[str, Any]:
    return await body_of(await client.post(f"/api/v1/admin/tokens{path}", json=body, headers=headers), status)


async def get(client: Client, headers: dict[str, str], query: str = "", status: int = 200) -> dict[str, Any]:
    return await body_of(await client.get(f"/api/v1/admin/tokens{query}", headers=headers), status)


async def test_add_dedupes_and_reports(admin: Admin) -> None:
    client, h = await ready(admin)
    report = await post(client, h, "/add", {"tokens": [TOKENS[0], f"sso={TOKENS[0]}", TOKENS[1], "has space"],
                                            "note": "first", "tags": ["eu"]})
    assert (report["added"], report["merged"], report["skipped"]) == (2, 1, 1)
    super_ = await post(client, h, "/add", {"token": TOKENS[2], "pool": "ssoSuper"})
    assert super_["added"] == 1
    assert (await post(client, h, "/add", {"tokens": []}, 400))["error"]["param"] == "tokens"


async def test_list_in_the_original_shape_with_masked_tokens(admin: Admin) -> None:
    client, h = await ready(admin)
    await post(client, h, "/add", {"tokens": TOKENS[:2], "note": "n"})
    await post(client, h, "/add", {"token": TOKENS[2], "pool": "ssoSuper"})
    resp = await client.get("/api/v1/admin/tokens", headers=h)
    body = await resp.json()
    assert set(body) == {"ssoBasic", "ssoSuper"} and resp.headers["ETag"]
    first = body["ssoBasic"][0]
    assert ORIGINAL_FIELDS <= set(first)
    assert first["quota"] == 0 and first["quota_known"] is False and first["heavy_quota"] == -1
    assert first["token_type"] == "sso" and body["ssoSuper"][0]["token_type"] == "ssoSuper"
    text = await resp.text()
    assert not any(t in text for t in TOKENS)


async def _states(client: Client, h: dict[str, str]) -> None:
    """tok-00 active, tok-01 disabled (invalid), tok-02 quota 0 (exhausted), tok-03 super with heavy 0
    (exhausted), tok-04 disabled and quota 0 (both), tok-05 active, tagged."""
    await post(client, h, "/add", {"tokens": [TOKENS[0], TOKENS[1], TOKENS[2], TOKENS[4]], "note": "basic"})
    await post(client, h, "/add", {"token": TOKENS[3], "pool": "ssoSuper", "note": "Super one"})
    await post(client, h, "/add", {"token": TOKENS[5], "tags": ["vip"]})
    for token, fields in ((TOKENS[1], {"status": "disabled"}), (TOKENS[2], {"quota": 0}),
                          (TOKENS[3], {"heavy_quota": 0, "quota": 5}), (TOKENS[4], {"status": "disabled"})):
        await post(client, h, "/update", {"token": token, **fields})
    await post(client, h, "/update", {"token": TOKENS[4], "quota": 0})


async def test_paging_filters_sorting_and_counts(admin: Admin) -> None:
    client, h = await ready(admin)
    await _states(client, h)
    page = await get(client, h, "?page=1&page_size=4")
    assert page["total"] == 6 and page["pages"] == 2 and len(page["items"]) == 4
    expected = {"total": 6, "active": 2, "invalid": 2, "exhausted": 3, "sso": 5, "supersso": 1}
    assert page["counts"].items() >= expected.items()
    assert len((await get(client, h, "?page=2&page_size=4"))["items"]) == 2
    union = await get(client, h, "?page=1&status=invalid,exhausted")
    assert union["total"] == 4
    assert (await get(client, h, "?page=1&status=active"))["total"] == 2
    assert (await get(client, h, "?page=1&type=supersso"))["items"][0]["note"] == "Super one"
    assert (await get(client, h, "?page=1&search=super"))["total"] == 1
    assert (await get(client, h, "?page=1&search=tok-05"))["total"] == 1  # a token fragment
    assert (await get(client, h, "?page=1&tag=vip"))["total"] == 1
    ordered = await get(client, h, "?page=1&sort=note&order=desc")
    assert ordered["items"][0]["note"] == "Super one"
    filtered = await get(client, h, "?status=exhausted")  # filters apply to the original shape too
    assert sum(len(v) for v in filtered.values()) == 3
    for bad in ("?status=gone", "?type=x", "?sort=token", "?page=0", "?page_size=5000", "?order=up"):
        await get(client, h, bad, 400)
    counts = await (await client.get("/api/v1/admin/tokens/counts", headers=h)).json()
    assert counts["total"] == 6 and counts["version"]


async def test_import_text_original_json_and_our_export(admin: Admin) -> None:
    client, h = await ready(admin)
    text = f"# accounts\n{TOKENS[0]}\nsso={TOKENS[1]}\n\n{TOKENS[0]}\n"
    resp = await client.post("/api/v1/admin/tokens/import?pool=ssoSuper", data=text, headers=h)
    report = await resp.json()
    assert (report["added"], report["merged"], report["skipped"]) == (2, 1, 0)
    original = {"ssoBasic": [TOKENS[2], {"token": TOKENS[3], "note": "legacy", "status": "expired", "quota": 12}]}
    resp = await client.post("/api/v1/admin/tokens/import", data=orjson.dumps(original), headers=h)
    assert (await resp.json())["added"] == 2
    exported = await client.get("/api/v1/admin/tokens/export?format=json", headers=h)
    assert exported.headers["Cache-Control"] == "no-store"
    dump = await exported.read()
    assert set(orjson.loads(dump)) == {"ssoBasic", "ssoSuper"}
    ids = [i["id"] for items in (await get(client, h)).values() for i in items]
    assert (await post(client, h, "/delete", {"ids": ids}))["count"] == 4
    again = await (await client.post("/api/v1/admin/tokens/import", data=dump, headers=h)).json()
    assert again["added"] == 4
    legacy = client.app[POOL].get(TOKENS[3])
    assert legacy is not None and legacy.note == "legacy" and legacy.status.value == "expired" and legacy.quota == 12
    txt = await (await client.get("/api/v1/admin/tokens/export?type=supersso", headers=h)).text()
    assert sorted(txt.split()) == sorted(TOKENS[:2])
    bad = await client.post("/api/v1/admin/tokens/import", data=b'{"a": 1}', headers=h)
    assert bad.status == 400
    assert (await client.post("/api/v1/admin/tokens/import", data=b"\n# none\n", headers=h)).status == 400
    assert (await client.get("/api/v1/admin/tokens/export?format=csv", headers=h)).status == 400


async def test_export_of_the_accounts_a_console_selected(admin: Admin) -> None:
    client, h = await ready(admin)
    await post(client, h, "/add", {"tokens": TOKENS[:4]})
    ids = [i["id"] for i in (await get(client, h, "?page=1&sort=created_at"))["items"]][:2]
    resp = await client.post("/api/v1/admin/tokens/export", json={"ids": ids}, headers=h)
    assert resp.headers["Cache-Control"] == "no-store" and "attachment" in resp.headers["Content-Disposition"]
    assert sorted((await resp.text()).split()) == sorted(TOKENS[:2])
    resp = await client.post("/api/v1/admin/tokens/export", json={"ids": ids[:1], "format": "json"}, headers=h)
    assert [i["token"] for i in orjson.loads(await resp.read())["ssoBasic"]] == TOKENS[:1]
    bad = await post(client, h, "/export", {"ids": ids, "format": "csv"}, 400)
    assert bad["error"]["param"] == "format"
    assert (await post(client, h, "/export", {}, 400))["error"]["param"] == "ids"


async def test_edit_enable_disable_delete(admin: Admin) -> None:
    client, h = await ready(admin)
    await post(client, h, "/add", {"tokens": TOKENS[:3]})
    ids = [i["id"] for i in (await get(client, h))["ssoBasic"]]  # masks can look alike: ids tell apart
    first = ids[0]
    edited = await post(client, h, "/update", {"id": first, "note": "edited", "tags": ["a"], "pool": "ssoSuper"})
    assert edited["token"]["note"] == "edited" and edited["token"]["token_type"] == "ssoSuper"
    assert (await post(client, h, "/update", {"id": "f" * 24, "note": "x"}, 404))["error"]["code"] == "token_not_found"
    assert (await post(client, h, "/update", {"id": first, "status": "invalid"}, 400))["error"]["param"] == "status"
    assert (await post(client, h, "/update", {"id": first, "tags": "a"}, 400))["error"]["param"] == "tags"
    done = await post(client, h, "/disable", {"ids": [*ids, "0" * 24]})
    assert done["count"] == 3 and done["missing"] == ["0" * 24]
    assert all(a.status.value == "disabled" for a in client.app[POOL].accounts())
    assert (await post(client, h, "/enable", {"tokens": [TOKENS[0]]}))["count"] == 1
    assert account(client, TOKENS[0]).status.value == "active"
    assert (await post(client, h, "/delete", {"tokens": [TOKENS[1]]}))["count"] == 1
    assert client.app[POOL].get(TOKENS[1]) is None
    await post(client, h, "/delete", {}, 400)


async def test_full_replacement_is_a_diff_checked_against_the_version(admin: Admin) -> None:
    client, h = await ready(admin)
    await post(client, h, "/add", {"tokens": TOKENS[:3]})
    await post(client, h, "/update", {"token": TOKENS[2], "quota": 7})
    resp = await client.get("/api/v1/admin/tokens", headers=h)
    etag, listed = resp.headers["ETag"], await resp.json()
    # the console posts back what it read: masked tokens, statuses shown as "invalid", one row dropped
    rows = [row for row in listed["ssoBasic"] if row["id"] != listed["ssoBasic"][0]["id"]]
    rows[0] = {**rows[0], "note": "changed", "status": "invalid", "quota": 99}
    result = await post(client, {**h, "If-Match": etag}, "", {"ssoBasic": rows, "ssoSuper": [TOKENS[3]]})
    assert (result["added"], result["updated"], result["removed"]) == (1, 1, 1)
    pool = client.app[POOL]
    assert len(pool.accounts()) == 3 and account(client, TOKENS[3]).pool == "ssoSuper"
    changed_row = next(a for a in pool.accounts() if a.note == "changed")
    assert changed_row.status.value == "active" and changed_row.quota != 99
    # stale: the pool changed since the version was read
    conflict = await post(client, {**h, "If-Match": etag}, "", {"ssoBasic": []}, 409)
    assert conflict["error"]["code"] == "pool_changed" and len(pool.accounts()) == 3
    # an old script without a version: additions and edits apply, unlisted accounts stay
    kept = await post(client, h, "", {"ssoBasic": [TOKENS[4]]})
    assert kept["added"] == 1 and kept["removed"] == 0 and kept["kept_unlisted"] == 3 and len(pool.accounts()) == 4
    await post(client, h, "", {"ssoBasic": "nope"}, 400)


async def test_a_concurrent_edit_is_never_lost_to_a_replacement(admin: Admin) -> None:
    client, h = await ready(admin)
    await post(client, h, "/add", {"tokens": TOKENS[:2]})
    resp = await client.get("/api/v1/admin/tokens", headers=h)
    etag, listed = resp.headers["ETag"], await resp.json()
    await post(client, h, "/update", {"token": TOKENS[0], "note": "edited meanwhile"})
    await post(client, {**h, "If-Match": etag}, "", {"ssoBasic": listed["ssoBasic"][:1]}, 409)
    assert account(client, TOKENS[0]).note == "edited meanwhile" and len(client.app[POOL].accounts()) == 2
    # at the same moment: the replacement never deletes an account added while it ran
    fresh = await client.get("/api/v1/admin/tokens", headers=h)
    body = {"ssoBasic": (await fresh.json())["ssoBasic"], "version": fresh.headers["ETag"].strip('"')}
    results = await asyncio.gather(
        client.post("/api/v1/admin/tokens", json=body, headers=h),
        client.post("/api/v1/admin/tokens/add", json={"token": TOKENS[5]}, headers=h),
    )
    assert {r.status for r in results} <= {200, 409}
    assert client.app[POOL].get(TOKENS[5]) is not None


async def test_refresh_keeps_the_original_shape(admin: Admin, fake_grok: FakeGrok) -> None:
    fake_grok.add_account(TOKENS[0])
    client, h = await ready(admin, grok={**fake_grok.grok_settings(), "timeout": 5})
    await post(client, h, "/add", {"tokens": TOKENS[:2]})
    result = await post(client, h, "/refresh", {"tokens": [TOKENS[0], TOKENS[1], "unknown-token"]})
    assert result == {"status": "success", "results": {TOKENS[0]: True, TOKENS[1]: False, "unknown-token": False}}
    assert account(client, TOKENS[0]).last_sync_at is not None
    ids = {i["token"]: i["id"] for i in (await get(client, h))["ssoBasic"]}
    first, second = ids[mask_secret(TOKENS[0])], ids[mask_secret(TOKENS[1])]
    by_id = await post(client, h, "/refresh", {"ids": [first, second]})  # a console holds only the handles
    assert by_id["results"] == {first: True, second: False}
    assert (await post(client, h, "/refresh", {}, 400))["error"]["param"] == "tokens"


async def test_counts_and_version_follow_changes_of_another_worker_and_of_traffic(admin: Admin) -> None:
    """Both are kept between calls and made again once any account changed (TokenPool.changes)."""
    one, h = await ready(admin, token={"reload_interval_sec": 0.1})
    two = await admin()
    await post(one, h, "/add", {"tokens": TOKENS[:3]})
    for _ in range(200):  # the other worker reads the change feed
        if len(two.app[POOL].accounts()) == 3:
            break
        await asyncio.sleep(0.05)
    before = await body_of(await two.get("/api/v1/admin/tokens/counts", headers=h))
    assert before == await body_of(await two.get("/api/v1/admin/tokens/counts", headers=h))
    assert (before["total"], before["invalid"]) == (3, 0)
    await post(one, h, "/disable", {"tokens": TOKENS[:1]})
    for _ in range(200):
        after = await body_of(await two.get("/api/v1/admin/tokens/counts", headers=h))
        if after["invalid"] == 1:
            break
        await asyncio.sleep(0.05)
    assert after["invalid"] == 1 and after["version"] != before["version"]
    await two.app[POOL].update(TOKENS[1], quota=0)  # a quota a sync brought moves the counts, not the version
    exhausted = await body_of(await two.get("/api/v1/admin/tokens/counts", headers=h))
    assert exhausted["exhausted"] == 1 and exhausted["version"] == after["version"]
