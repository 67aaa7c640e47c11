"""Batch jobs: created by the API, worked chunk by chunk by whichever worker holds the lock,
resumed when that worker dies, cancelled, paused and resumed between chunks, followed over SSE."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
import pytest
from aiohttp import ClientResponse

from grok2api.api import POOL, STORAGE, Settings, account_id
from grok2api.testing.engines import fresh_database
from grok2api.testing.fake_grok import FakeGrok, StoredAsset
from grok2api.testing.pytest_plugin import GatewayFactory
from grok2api_plugins.admin import jobs
from grok2api_plugins.admin.jobs import NS_ITEMS, NS_JOBS, JobRunner, Jobs

from .support import PLUGINS, Admin, Client, account, auth, body_of, changed

TOKENS = [f"job-token-{n:02d}-" + "z" * 24 for n in range(7)]


@pytest.fixture
def manual(monkeypatch: pytest.MonkeyPatch) -> None:
    """The app's runner makes its first pass, then sleeps: the test drives :class:`JobRunner` itself."""
    monkeypatch.setattr(jobs, "POLL_SEC", 3600)
    monkeypatch.setattr(jobs, "CHUNK", 3)


async def ready(admin: Admin) -> tuple[Client, dict[str, str]]:
    client = await admin()
    h = auth(await changed(client))
    resp = await client.post("/api/v1/admin/tokens/add", json={"tokens": TOKENS}, headers=h)
    assert resp.status == 200
    return client, h


def runner(client: Client) -> JobRunner:
    return JobRunner(client.app)


async def job_record(client: Client, job_id: str) -> dict[str, Any]:
    """The stored record of a job the test has created."""
    record = await client.app[STORAGE].get(NS_JOBS, job_id)
    assert record is not None, f"no job {job_id}"
    return record


async def test_a_job_runs_in_chunks_to_the_end(admin: Admin, manual: None) -> None:
    client, h = await ready(admin)
    resp = await client.post("/api/v1/admin/jobs?type=sso", json={"kind": "disable"}, headers=h)
    assert resp.status == 202
    job = (await resp.json())["job"]
    assert job["state"] == "queued" and job["total"] == 7 and job["chunks"] == 3
    await runner(client).run_once()
    done = (await (await client.get(f"/api/v1/admin/jobs/{job['id']}", headers=h)).json())["job"]
    assert (done["state"], done["done"], done["failed"], done["cursor"]) == ("finished", 7, 0, 3)
    assert all(a.status.value == "disabled" for a in client.app[POOL].accounts())
    assert await client.app[STORAGE].list(NS_ITEMS) == {}
    listed = (await (await client.get("/api/v1/admin/jobs", headers=h)).json())["jobs"]
    assert [j["id"] for j in listed] == [job["id"]]


async def test_a_job_by_ids_reported_over_sse(admin: Admin, manual: None) -> None:
    client, h = await ready(admin)
    ids = [i["id"] for i in (await (await client.get("/api/v1/admin/tokens", headers=h)).json())["ssoBasic"]][:2]
    job = (await (await client.post("/api/v1/admin/jobs", json={"kind": "delete", "ids": ids},
                                    headers=h)).json())["job"]
    events = asyncio.create_task(client.get(f"/api/v1/admin/jobs/{job['id']}/events", headers=h))
    await asyncio.sleep(0.2)
    await runner(client).run_once()
    resp = await events
    assert resp.headers["Content-Type"].startswith("text/event-stream")
    text = await resp.text()
    assert text.count("event: progress") >= 1 and text.rstrip().endswith('data: {"state":"finished"}')
    assert len(client.app[POOL].accounts()) == 5


async def test_cancel_stops_between_chunks(admin: Admin, manual: None) -> None:
    client, h = await ready(admin)
    job = (await (await client.post("/api/v1/admin/jobs", json={"kind": "disable"}, headers=h)).json())["job"]
    cancelled = (await (await client.post(f"/api/v1/admin/jobs/{job['id']}/cancel", headers=h)).json())["job"]
    assert cancelled["cancel"] is True
    await runner(client).run_once()
    final = await job_record(client, job["id"])
    assert final["state"] == "cancelled" and final["done"] == 0
    assert not any(a.status.value == "disabled" for a in client.app[POOL].accounts())


async def test_a_dead_workers_job_is_resumed_where_it_stopped(admin: Admin, manual: None) -> None:
    client, h = await ready(admin)
    storage = client.app[STORAGE]
    job = await Jobs(storage).create("disable", [account_id(t) for t in TOKENS], "admin")
    # a worker took it, did the first chunk, and died holding the lock
    await storage.patch(NS_JOBS, job["id"], {"state": "running", "cursor": 1, "done": 3, "worker": "dead"})
    assert await storage.acquire_lock(f"admin:job:{job['id']}", "dead-worker", 0.5)
    await runner(client).run_once()
    assert (await job_record(client, job["id"]))["cursor"] == 1  # still locked: left alone
    await asyncio.sleep(0.6)
    await runner(client).run_once()
    final = await job_record(client, job["id"])
    assert (final["state"], final["done"], final["resumed"]) == ("finished", 7, 1)
    disabled = [t for t in TOKENS if account(client, t).status.value == "disabled"]
    assert disabled == TOKENS[3:]  # the dead worker's chunk is its business; the rest were done here


async def test_a_job_whose_chunk_is_lost_fails_with_a_reason(admin: Admin, manual: None) -> None:
    client, h = await ready(admin)
    storage = client.app[STORAGE]
    job = await Jobs(storage).create("enable", [account_id(t) for t in TOKENS], "admin")
    await storage.delete(NS_ITEMS, f"{job['id']}:1")
    await runner(client).run_once()
    final = await job_record(client, job["id"])
    assert final["state"] == "failed" and "chunk 1" in final["reason"] and final["done"] == 3


async def test_jobs_store_ids_and_an_account_gone_before_its_chunk_fails_by_id(admin: Admin, manual: None) -> None:
    client, h = await ready(admin)
    storage, pool = client.app[STORAGE], client.app[POOL]
    job = (await body_of(await client.post("/api/v1/admin/jobs", json={"kind": "disable"}, headers=h), 202))["job"]
    items = await storage.list(NS_ITEMS)
    assert sorted(i for chunk in items.values() for i in chunk["ids"]) == sorted(account_id(t) for t in TOKENS)
    assert not any(t in orjson.dumps(items).decode() for t in TOKENS)  # no token is stored, in any form
    await pool.remove([TOKENS[4]])
    await runner(client).run_once()
    final = await job_record(client, job["id"])
    gone = account_id(TOKENS[4])
    assert (final["state"], final["done"], final["failed"]) == ("finished", 6, 1)
    assert final["errors"] == {gone: "no such account"}  # by id: there is no token left to mask
    assert [chunk["ids"] for chunk in (await storage.list(NS_ITEMS)).values()] == [[gone]]  # the failed list

    await pool.add([TOKENS[4]])  # back, so a retry over the failed list finds it
    again = (await body_of(await client.post(f"/api/v1/admin/jobs/{job['id']}/retry", headers=h), 202))["job"]
    await runner(client).run_once()
    assert (await job_record(client, again["id"]))["done"] == 1 and account(client, TOKENS[4]).status == "disabled"

    deleted = await Jobs(storage).create("delete", [account_id(t) for t in TOKENS[:2]], "admin")
    await pool.remove([TOKENS[0]])  # as when a delete's chunk runs again after its worker died
    await runner(client).run_once()
    assert ((await job_record(client, deleted["id"]))["done"], pool.get(TOKENS[1])) == (2, None)


async def test_a_job_the_previous_release_stored_by_token_runs_after_the_upgrade(admin: Admin, manual: None) -> None:
    """Its chunk and failed lists name tokens; the next start's data migration names them by id."""
    client, h = await ready(admin)
    storage = client.app[STORAGE]
    job = await Jobs(storage).create("disable", [account_id(t) for t in TOKENS[:3]], "admin")  # one chunk
    await storage.patch(NS_JOBS, job["id"], {"state": "paused"})  # no runner takes it before the upgrade
    await storage.put(NS_ITEMS, f"{job['id']}:0", {"tokens": TOKENS[:3]})  # as that release wrote them
    await storage.put(NS_ITEMS, "job-00000000:failed:0", {"tokens": TOKENS[5:]}, ttl=60)
    for _ in range(2):  # a step runs again when its worker died before recording it
        await storage.patch("storage", "migrations", {"version": 4})  # the data version before ``job_ids``
        client = await admin()  # the next start upgrades the database
    assert await client.app[STORAGE].list(NS_ITEMS) == {
        f"{job['id']}:0": {"ids": [account_id(t) for t in TOKENS[:3]]},
        "job-00000000:failed:0": {"ids": [account_id(t) for t in TOKENS[5:]]}}
    await body_of(await client.post(f"/api/v1/admin/jobs/{job['id']}/resume", headers=h))
    await runner(client).run_once()
    assert (await job_record(client, job["id"]))["state"] == "finished"
    assert [t for t in TOKENS if account(client, t).status == "disabled"] == TOKENS[:3]


async def test_job_refusals(admin: Admin, manual: None) -> None:
    client, h = await ready(admin)
    assert (await client.post("/api/v1/admin/jobs", json={"kind": "explode"}, headers=h)).status == 400
    assert (await client.post("/api/v1/admin/jobs", json={}, headers=h)).status == 400
    none = await client.post("/api/v1/admin/jobs?search=nothing-matches", json={"kind": "delete"}, headers=h)
    assert none.status == 400
    assert (await client.get("/api/v1/admin/jobs/job-00000000", headers=h)).status == 404
    assert (await client.get("/api/v1/admin/jobs")).status == 401


async def test_clearing_online_assets_as_a_job(admin: Admin, manual: None, fake_grok: FakeGrok) -> None:
    owners = [fake_grok.add_account(t) for t in TOKENS[:2]]
    for n, owner in enumerate(owners * 2):
        path = f"users/{owner.user_id}/j{n}/content"
        fake_grok.assets[path] = StoredAsset(f"j{n}", path, "image/jpeg", b"x", owner.user_id)
    client = await admin(grok={**fake_grok.grok_settings(), "timeout": 5})
    h = auth(await changed(client))
    await client.post("/api/v1/admin/tokens/add", json={"tokens": TOKENS[:3]}, headers=h)
    job = (await (await client.post("/api/v1/admin/jobs", json={"kind": "clear_assets"}, headers=h)).json())["job"]
    await runner(client).run_once()
    final = await job_record(client, job["id"])
    assert (final["state"], final["done"], final["failed"]) == ("finished", 2, 1)  # the third: Grok says 401
    assert not fake_grok.assets


async def test_a_retry_is_a_new_job_over_the_failed_accounts(admin: Admin, manual: None, fake_grok: FakeGrok) -> None:
    fake_grok.add_account(TOKENS[0])
    client = await admin(grok={**fake_grok.grok_settings(), "timeout": 5})
    h = auth(await changed(client))
    await client.post("/api/v1/admin/tokens/add", json={"tokens": TOKENS[:4]}, headers=h)
    job = (await (await client.post("/api/v1/admin/jobs", json={"kind": "clear_assets"}, headers=h)).json())["job"]
    early = await client.post(f"/api/v1/admin/jobs/{job['id']}/retry", headers=h)
    assert early.status == 409  # still queued
    await runner(client).run_once()
    assert (await job_record(client, job["id"]))["failed"] == 3  # Grok knows only the first account
    resp = await client.post(f"/api/v1/admin/jobs/{job['id']}/retry", headers=h)
    assert resp.status == 202
    again = (await resp.json())["job"]
    assert (again["kind"], again["total"], again["state"]) == ("clear_assets", 3, "queued")
    for token in TOKENS[1:4]:
        fake_grok.add_account(token)
    await runner(client).run_once()
    final = await job_record(client, again["id"])
    assert (final["state"], final["done"], final["failed"]) == ("finished", 3, 0)
    none = await client.post(f"/api/v1/admin/jobs/{again['id']}/retry", headers=h)
    assert none.status == 400 and (await none.json())["error"]["param"] == "job_id"


async def next_event(stream: ClientResponse) -> tuple[str, dict[str, Any]]:
    """The next event of a job's event stream (comments skipped): its name and data."""
    name = ""
    while raw := await stream.content.readline():  # b"" only at the end
        line = raw.decode().rstrip("\n")
        if not line or line.startswith(":"):
            continue
        if line.startswith("event: "):
            name = line[7:]
        elif line.startswith("data: "):
            return name, orjson.loads(line[6:])
        else:
            raise AssertionError(f"not an event line: {line!r}")
    raise AssertionError("the stream ended")


async def event_with(stream: ClientResponse, check: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    """Reads a job's events until one's job passes ``check`` (the stream must not end first)."""
    while True:
        name, data = await next_event(stream)
        assert name == "progress", (name, data)
        if check(data):
            return data


async def until_state(client: Client, job_id: str, state: str) -> dict[str, Any]:
    """The job's record once it is in ``state`` (a state, not a time, is awaited)."""
    while (record := await job_record(client, job_id))["state"] != state:
        await asyncio.sleep(0.02)
    return record


Workers = Callable[..., Awaitable[Client]]


@pytest.fixture(params=["sqlite", "redis"])
async def workers(request: pytest.FixtureRequest, admin: Admin, gateway: GatewayFactory,
                  make_settings: Callable[..., Settings]) -> Workers:
    """``await workers(grok=...)``: one more worker on the same storage each call (the
    first call's settings hold): the local SQLite file, or a fresh Redis database."""
    if request.param == "sqlite":
        return admin
    settings: list[Settings] = []

    async def worker(**sections: dict[str, Any]) -> Client:
        if not settings:
            url = await fresh_database("redis")
            settings.append(make_settings(server={"storage_type": "redis", "storage_url": url}, **sections))
        client: Client = await gateway("storage_redis", *PLUGINS[1:], settings=settings[0])
        return client

    return worker


async def test_a_paused_job_keeps_its_place_and_another_worker_finishes_it(
        workers: Workers, manual: None, fake_grok: FakeGrok) -> None:
    for token in TOKENS:
        fake_grok.add_account(token)
    for token in (TOKENS[0], TOKENS[3]):  # the first two chunks answer slowly: the pause lands mid-job
        fake_grok.inject("slow_first_byte", account=token, endpoint="rate_limits", delay=1.5)
    one = await workers(grok={**fake_grok.grok_settings(), "timeout": 10})
    h = auth(await changed(one))
    await body_of(await one.post("/api/v1/admin/tokens/add", json={"tokens": TOKENS}, headers=h))
    two = await workers()  # another worker on the same storage
    job = (await body_of(await one.post("/api/v1/admin/jobs", json={"kind": "refresh"}, headers=h), 202))["job"]
    work = asyncio.create_task(runner(one).run_once())
    await until_state(one, job["id"], "running")
    stream = await two.get(f"/api/v1/admin/jobs/{job['id']}/events", headers=h)
    asked = (await body_of(await two.post(f"/api/v1/admin/jobs/{job['id']}/pause", headers=h)))["job"]
    assert asked["pause"] is True and asked["state"] == "running"  # worker one holds it: it stops between chunks
    await work
    paused = await job_record(one, job["id"])
    assert paused["state"] == "paused"
    assert 0 < paused["cursor"] < paused["chunks"] and paused["done"] + paused["failed"] == 3 * paused["cursor"]
    seen = await event_with(stream, lambda j: j["state"] == "paused")  # reported, and the stream goes on
    assert seen["cursor"] == paused["cursor"]
    await runner(one).run_once()
    await runner(two).run_once()
    assert await job_record(one, job["id"]) == paused  # no worker takes a paused job: its progress stands still
    retry = await one.post(f"/api/v1/admin/jobs/{job['id']}/retry", headers=h)
    assert retry.status == 409  # not ended

    resumed = (await body_of(await one.post(f"/api/v1/admin/jobs/{job['id']}/resume", headers=h)))["job"]
    assert resumed["state"] == "queued" and "pause" not in resumed
    await runner(two).run_once()
    final = await job_record(two, job["id"])
    assert (final["state"], final["done"], final["failed"], final["cursor"]) == ("finished", 7, 0, 3)
    assert final["worker"] == two.app[STORAGE].origin and final["resumed"] == 0  # a resume is no take-over
    synced = Counter(r.sso for r in fake_grok.requests_to("rate_limits"))
    assert set(synced) == set(TOKENS) and len(set(synced.values())) == 1  # each account refreshed once
    await event_with(stream, lambda j: j["state"] == "finished")
    assert await next_event(stream) == ("end", {"state": "finished"})
    stream.close()


async def test_pause_and_resume_refusals_and_a_job_no_worker_holds(admin: Admin, manual: None) -> None:
    client, h = await ready(admin)
    for verb in ("pause", "resume"):
        missing = await client.post(f"/api/v1/admin/jobs/job-00000000/{verb}", headers=h)
        assert missing.status == 404 and (await missing.json())["error"]["code"] == "job_not_found"
    job = (await body_of(await client.post("/api/v1/admin/jobs", json={"kind": "disable"}, headers=h), 202))["job"]
    url = f"/api/v1/admin/jobs/{job['id']}"
    early = await client.post(f"{url}/resume", headers=h)
    assert early.status == 409 and (await early.json())["error"]["code"] == "job_not_paused"
    paused = (await body_of(await client.post(f"{url}/pause", headers=h)))["job"]
    assert paused["state"] == "paused"  # queued, held by no worker: paused at once
    assert (await body_of(await client.post(f"{url}/pause", headers=h)))["job"]["state"] == "paused"
    await runner(client).run_once()
    assert (await job_record(client, job["id"]))["done"] == 0
    assert len(await client.app[STORAGE].list(NS_ITEMS)) == 3  # its chunks are kept for the resume
    cancelled = (await body_of(await client.post(f"{url}/cancel", headers=h)))["job"]
    assert (cancelled["state"], cancelled["done"]) == ("cancelled", 0)  # no worker to wait for
    assert await client.app[STORAGE].list(NS_ITEMS) == {}
    for verb, code in (("pause", "job_ended"), ("resume", "job_not_paused")):
        refused = await client.post(f"{url}/{verb}", headers=h)
        assert refused.status == 409 and (await refused.json())["error"]["code"] == code
    assert not any(a.status.value == "disabled" for a in client.app[POOL].accounts())

    again = (await body_of(await client.post("/api/v1/admin/jobs", json={"kind": "disable"}, headers=h), 202))["job"]
    await body_of(await client.post(f"/api/v1/admin/jobs/{again['id']}/pause", headers=h))
    await body_of(await client.post(f"/api/v1/admin/jobs/{again['id']}/resume", headers=h))
    await runner(client).run_once()
    assert (await job_record(client, again["id"]))["state"] == "finished"
    done = await client.post(f"/api/v1/admin/jobs/{again['id']}/pause", headers=h)
    assert done.status == 409 and (await done.json())["error"]["code"] == "job_ended"
