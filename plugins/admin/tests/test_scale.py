"""A pool of 100,000 accounts through the admin API: import, a filtered page, counts, export."""

from __future__ import annotations

import time

from .support import Admin, auth, changed

COUNT = 100_000


async def test_an_import_of_100000_lines(admin: Admin) -> None:
    client = await admin()
    h = auth(await changed(client))
    lines = "".join(f"sso=scale-{n:06d}-{'s' * 30}\n" for n in range(COUNT))
    started = time.perf_counter()
    resp = await client.post("/api/v1/admin/tokens/import", data=lines, headers=h)
    imported = time.perf_counter() - started
    report = await resp.json()
    assert (report["added"], report["merged"], report["skipped"]) == (COUNT, 0, 0)
    first = "".join(lines.splitlines(keepends=True)[:1000])
    again = await (await client.post("/api/v1/admin/tokens/import", data=first, headers=h)).json()
    assert again["added"] == 0 and again["merged"] == 1000
    page = await (await client.get("/api/v1/admin/tokens?page=2&page_size=50&search=scale-0999&sort=note",
                                   headers=h)).json()
    assert page["total"] == 100 and len(page["items"]) == 50 and page["counts"]["total"] == COUNT
    export = await client.get("/api/v1/admin/tokens/export", headers=h)
    assert (await export.text()).count("\n") == COUNT
    print(f"import of {COUNT} lines: {imported:.1f} s")
