"""Batch operations on accounts as durable jobs: refresh, enable, disable, delete, clear_assets.

A job is a record in storage (``admin_jobs``) with its progress, and its accounts in
chunks beside it (``admin_job_items``, ``<job>:<n>``), so no record grows with the pool.
Chunks name accounts by id (:func:`account_id`), never by token, so no job keeps a
credential in plain text; a run maps ids to the pool's accounts once, at its first chunk,
and an id whose account is gone fails with "no such account" (a delete counts it done).
Every worker runs a :class:`JobRunner`; the one that holds a job's lock (a storage lock
with an expiry, renewed after every chunk) works it chunk by chunk and records how far
it got. A worker that dies stops renewing: when the lock expires, another worker (or
the next start) resumes the job at the chunk it had reached. A chunk is applied again
when its worker died midway; every operation tolerates that. Cancelling and pausing set
a flag the worker reads between chunks; a paused job keeps its cursor and its chunks, no
worker holds it, and resuming queues it again for any worker. A job no worker holds is
paused or cancelled at once, under its lock. The accounts a chunk failed on are kept
beside the job (``<job>:failed:<n>``, by id too), so a retry makes a new job of just
those. The record's ``errors`` name at most :data:`MAX_ERRORS` of them by masked token
(by id when the account is gone).
Finished jobs are kept for a week.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import orjson
from aiohttp import web

from grok2api.api import (
    JSON,
    POOL,
    STORAGE,
    Account,
    ApiError,
    Storage,
    UpstreamError,
    account_id,
    invalid,
    logger,
    mask_secret,
    mask_text,
    now_ms,
    random_hex,
    read_json,
)
from grok2api_plugins.admin.accounts import resolve_accounts, select_accounts
from grok2api_plugins.admin.media import clear_assets
from grok2api_plugins.admin.respond import principal, reply

NS_JOBS = "admin_jobs"
NS_ITEMS = "admin_job_items"
CHUNK = 500
LOCK_TTL = 30.0
POLL_SEC = 1.0
KEEP_SEC = 7 * 24 * 3600
MAX_ERRORS = 20
KEEPALIVE_POLLS = 30  # half-second polls of a quiet event stream between comments (15 s)
ACTIVE = ("queued", "running")  # what a runner works
UNFINISHED = (*ACTIVE, "paused")  # not ended: kept without expiry, followed, not retried
GONE = "no such account"
#: a chunk's account ids, each with its account's token (None: no account has that id)
Chunk = dict[str, str | None]
#: applies a kind to a chunk → how many are done, and why each failed one failed (by id)
Operation = Callable[[web.Application, Chunk], Awaitable[tuple[int, dict[str, str]]]]


def _failed_key(job_id: str, chunk: int) -> str:
    return f"{job_id}:failed:{chunk}"


def _lock(job_id: str) -> str:
    return f"admin:job:{job_id}"


def _due(job: JSON) -> bool:
    """A runner's to work: active, or paused with a cancel that came as its worker let it go."""
    return job.get("state") in ACTIVE or (job.get("state") == "paused" and bool(job.get("cancel")))


async def _finish(storage: Storage, job_id: str, job: JSON, state: str, reason: str | None) -> None:
    """The job's final record (kept a week) and its chunks gone."""
    final = {**job, "state": state, "reason": reason, "updated_at": now_ms(), "finished_at": now_ms()}
    await storage.put(NS_JOBS, job_id, final, ttl=KEEP_SEC)
    await storage.delete_many(NS_ITEMS, [f"{job_id}:{n}" for n in range(job["chunks"])])
    logger.info("admin job {} {}: {} done, {} failed", job_id, state, final["done"], final["failed"])


def _account(app: web.Application, token: str | None) -> Account | None:
    """The pool's account now (one deleted since the run mapped its id is gone too)."""
    return None if token is None else app[POOL].get(token)


async def _refresh(app: web.Application, chunk: Chunk) -> tuple[int, dict[str, str]]:
    """Synced without a new failure: done; else the failure the account recorded."""
    accounts = {i: a for i, t in chunk.items() if (a := _account(app, t)) is not None}
    before = {i: (a.last_sync_at, a.last_fail_at) for i, a in accounts.items()}
    await (await app[POOL].refresh([a.token for a in accounts.values()])).wait()
    errors = {i: GONE for i, t in chunk.items() if _account(app, t) is None}
    for i, account in accounts.items():
        synced, failed = before[i]
        if account.last_sync_at == synced or account.last_fail_at != failed:
            errors[i] = account.last_fail_reason or "no answer"
    return len(chunk) - len(errors), errors


def _status(status: str) -> Operation:
    async def apply(app: web.Application, chunk: Chunk) -> tuple[int, dict[str, str]]:
        errors = {}
        for i, token in chunk.items():
            account = _account(app, token)
            if account is None:
                errors[i] = GONE
            else:
                await app[POOL].update(account.token, status=status)
        return len(chunk) - len(errors), errors

    return apply


async def _delete(app: web.Application, chunk: Chunk) -> tuple[int, dict[str, str]]:
    # an account already gone is as good as deleted (a chunk run twice)
    await app[POOL].remove([t for t in chunk.values() if t is not None])
    return len(chunk), {}


async def _clear_assets(app: web.Application, chunk: Chunk) -> tuple[int, dict[str, str]]:
    """Every online asset of each account; one that Grok refuses, or an asset left, is a failure."""
    errors = {}
    for i, token in chunk.items():
        account = _account(app, token)
        if account is None:
            errors[i] = GONE
            continue
        try:
            result = await clear_assets(app, account)
        except UpstreamError as exc:
            errors[i] = mask_text(str(exc))[:300]
            continue
        if result["failed"]:
            errors[i] = f"{result['failed']} of {result['total']} assets not deleted"
    return len(chunk) - len(errors), errors


OPERATIONS: dict[str, Operation] = {
    "refresh": _refresh, "enable": _status("active"), "disable": _status("disabled"), "delete": _delete,
    "clear_assets": _clear_assets,
}


class Jobs:
    """Create, read, cancel, pause and resume jobs; :class:`JobRunner` works them."""

    def __init__(self, storage: Storage) -> None:
        self.storage = storage

    async def create(self, kind: str, ids: list[str], username: str) -> JSON:
        """A queued job over the accounts of ``ids`` (:func:`account_id` handles)."""
        if kind not in OPERATIONS:
            raise invalid(f"'kind' accepts {', '.join(OPERATIONS)}", "kind")
        job_id = "job-" + random_hex(8)
        chunks = [ids[i:i + CHUNK] for i in range(0, len(ids), CHUNK)]
        for start in range(0, len(chunks), 50):
            await self.storage.put_many(NS_ITEMS, {f"{job_id}:{n}": {"ids": chunk}
                                                   for n, chunk in enumerate(chunks[start:start + 50], start)})
        now = now_ms()
        job: JSON = {"id": job_id, "kind": kind, "state": "queued", "total": len(ids), "done": 0, "failed": 0,
                     "chunks": len(chunks), "cursor": 0, "errors": {}, "cancel": False, "reason": None,
                     "created_by": username, "created_at": now, "updated_at": now, "worker": None, "resumed": 0}
        await self.storage.put(NS_JOBS, job_id, job)
        return job

    async def get(self, job_id: str) -> JSON:
        job = await self.storage.get(NS_JOBS, job_id) if job_id.startswith("job-") else None
        if job is None:
            raise ApiError(404, "No such job", code="job_not_found")
        return job

    async def retry(self, job_id: str, username: str) -> JSON:
        """A new job of the same kind over the accounts an ended job failed on."""
        job = await self.get(job_id)
        if job["state"] in UNFINISHED:
            raise ApiError(409, "The job has not ended; retry its failed accounts once it has",
                           code="job_running")
        stored = await self.storage.get_many(NS_ITEMS, [_failed_key(job_id, n) for n in range(job["chunks"])])
        ids = list(dict.fromkeys(i for chunk in stored.values() for i in chunk["ids"]))
        if not ids:
            raise invalid("the job has no failed accounts to retry", "job_id")
        return await self.create(job["kind"], ids, username)

    async def cancel(self, job_id: str) -> JSON:
        """Its worker stops before the next chunk; a job no worker holds (paused) ends now."""
        job = await self.get(job_id)
        if job["state"] in UNFINISHED:
            job = await self._flag(job_id, {"cancel": True})
            job = await self._unheld(job_id, lambda held: _finish(self.storage, job_id, held, "cancelled",
                                                                 "cancelled by an admin")) or job
        return job

    async def pause(self, job_id: str) -> JSON:
        """Its worker stops before the next chunk and lets it go, cursor kept; a job no
        worker holds is paused now. An ended job → 409."""
        job = await self.get(job_id)
        if job["state"] not in UNFINISHED:
            raise ApiError(409, f"The job has ended ({job['state']}); there is nothing to pause", code="job_ended")
        if job["state"] == "paused":
            return job
        job = await self._flag(job_id, {"pause": True})
        return await self._unheld(job_id, lambda held: self._flag(job_id, {"state": "paused"})) or job

    async def resume(self, job_id: str) -> JSON:
        """A paused job back in the queue, for any worker to go on at its cursor; one whose
        worker has not reached the pause yet simply goes on. Any other job → 409."""
        job = await self.get(job_id)
        if job["state"] == "paused":
            return await self._flag(job_id, {"state": "queued", "pause": None})
        if job["state"] not in ACTIVE or not job.get("pause"):
            raise ApiError(409, f"The job is not paused ({job['state']})", code="job_not_paused")
        job = await self._flag(job_id, {"pause": None})
        if job["state"] == "paused":  # its worker paused it between our read and our write
            job = await self._flag(job_id, {"state": "queued"})
        return job

    async def _flag(self, job_id: str, fields: JSON) -> JSON:
        job = await self.storage.patch(NS_JOBS, job_id, {**fields, "updated_at": now_ms()})
        if job is None:
            raise ApiError(404, "No such job", code="job_not_found")
        return job

    async def _unheld(self, job_id: str, act: Callable[[JSON], Awaitable[object]]) -> JSON | None:
        """``act`` on the job, under its lock, if no worker holds it and it has not ended;
        then the job as it is. None when a worker has it: that worker reads the flag."""
        owner = f"{self.storage.origin}-api-{random_hex(4)}"  # never the runner's name: its lock is not ours
        if not await self.storage.acquire_lock(_lock(job_id), owner, LOCK_TTL):
            return None
        try:
            job = await self.get(job_id)
            if job["state"] in UNFINISHED:
                await act(job)
            return await self.get(job_id)
        finally:
            await self.storage.release_lock(_lock(job_id), owner)


class JobRunner:
    """One per worker: takes unlocked active jobs and works them."""

    def __init__(self, app: web.Application) -> None:
        self.app = app
        self.storage: Storage = app[STORAGE]
        self.owner = self.storage.origin
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="admin-jobs")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _loop(self) -> None:
        while True:
            try:
                await self.run_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("admin jobs: a pass failed; trying again")
            await asyncio.sleep(POLL_SEC)

    async def run_once(self) -> None:
        """Work every active job whose lock this worker can take."""
        for job_id, job in sorted((await self.storage.list(NS_JOBS)).items(), key=lambda kv: kv[1]["created_at"]):
            if _due(job) and await self.storage.acquire_lock(_lock(job_id), self.owner, LOCK_TTL):
                try:
                    await self._work(job_id)
                finally:
                    await self.storage.release_lock(_lock(job_id), self.owner)

    async def _work(self, job_id: str) -> None:
        job = await self.storage.get(NS_JOBS, job_id)
        if job is None or not _due(job):
            return
        if job["state"] != "paused":  # (a paused one is here to be cancelled, below)
            resumed = job["state"] == "running"  # its worker stopped renewing the lock: take over where it was
            job = await self._update(job_id, {"state": "running", "worker": self.owner,
                                              "resumed": job.get("resumed", 0) + int(resumed)})
        operation = OPERATIONS[job["kind"]]
        tokens: dict[str, str] | None = None  # id → token, mapped at the first chunk: one pass over the pool
        while job["cursor"] < job["chunks"]:
            if job.get("cancel"):
                await _finish(self.storage, job_id, job, "cancelled", "cancelled by an admin")
                return
            if job.get("pause"):
                paused = await self._update(job_id, {"state": "paused"})
                if not paused.get("pause"):  # resumed between our read and our write: back in the queue
                    await self._update(job_id, {"state": "queued"})
                return
            items = await self.storage.get(NS_ITEMS, f"{job_id}:{job['cursor']}")
            if items is None:
                await _finish(self.storage, job_id, job, "failed",
                              f"chunk {job['cursor']} of the job is missing from storage")
                return
            if tokens is None:
                tokens = {account_id(a.token): a.token for a in self.app[POOL].accounts()}
            chunk = {i: tokens.get(i) for i in items["ids"]}
            done, errors = await operation(self.app, chunk)
            if errors:  # kept for a retry of the failed ones (``POST …/retry``), as long as the job record
                await self.storage.put(NS_ITEMS, _failed_key(job_id, job["cursor"]), {"ids": list(errors)},
                                       ttl=KEEP_SEC)
            kept = dict(job.get("errors") or {})
            for i, error in errors.items():
                if len(kept) < MAX_ERRORS:
                    token = chunk[i]
                    kept[i if token is None else mask_secret(token)] = error
            job = await self._update(job_id, {"cursor": job["cursor"] + 1, "done": job["done"] + done,
                                              "failed": job["failed"] + len(errors), "errors": kept})
            if not await self.storage.acquire_lock(_lock(job_id), self.owner, LOCK_TTL):
                return  # another worker took it over (this one stalled past the lock's expiry)
            await asyncio.sleep(0)  # traffic first
        await _finish(self.storage, job_id, job, "finished", None)

    async def _update(self, job_id: str, fields: JSON) -> JSON:
        job = await self.storage.patch(NS_JOBS, job_id, {**fields, "updated_at": now_ms()})
        if job is None:
            raise LookupError(f"job {job_id} vanished")
        return job


JOBS = web.AppKey("admin_jobs", Jobs)


@contextlib.asynccontextmanager
async def running(app: web.Application) -> AsyncIterator[None]:
    """The jobs service and this worker's runner, for the plugin's start-up context."""
    app[JOBS] = Jobs(app[STORAGE])
    runner = JobRunner(app)
    runner.start()
    try:
        yield
    finally:
        await runner.stop()


async def create_job(request: web.Request) -> web.Response:
    """``{kind: refresh|enable|disable|delete, ids?|tokens?}``; naming none means every account
    (the list's filters in the query string narrow it) → 202 with the job."""
    body = await read_json(request)
    kind = body.get("kind")
    if not isinstance(kind, str):
        raise invalid(f"'kind' accepts {', '.join(OPERATIONS)}", "kind")
    if any(name in body for name in ("ids", "id", "tokens", "token")):
        accounts, _missing = resolve_accounts(request, body)
    else:
        accounts = select_accounts(request)
    if not accounts:
        raise invalid("the job would have no accounts", "ids")
    job = await request.app[JOBS].create(kind, [account_id(a.token) for a in accounts], principal(request).username)
    return reply(request, {"status": "success", "job": job}, status=202)


async def list_jobs(request: web.Request) -> web.Response:
    jobs = await request.app[STORAGE].list(NS_JOBS)
    rows = sorted(jobs.values(), key=lambda j: -int(j["created_at"]))
    return reply(request, {"jobs": rows})


async def get_job(request: web.Request) -> web.Response:
    return reply(request, {"job": await request.app[JOBS].get(request.match_info["job_id"])})


async def cancel_job(request: web.Request) -> web.Response:
    return reply(request, {"job": await request.app[JOBS].cancel(request.match_info["job_id"])})


async def pause_job(request: web.Request) -> web.Response:
    return reply(request, {"job": await request.app[JOBS].pause(request.match_info["job_id"])})


async def resume_job(request: web.Request) -> web.Response:
    return reply(request, {"job": await request.app[JOBS].resume(request.match_info["job_id"])})


async def retry_job(request: web.Request) -> web.Response:
    """A new job over the accounts the named one failed on → 202 with the new job."""
    job = await request.app[JOBS].retry(request.match_info["job_id"], principal(request).username)
    return reply(request, {"status": "success", "job": job}, status=202)


async def job_events(request: web.Request) -> web.StreamResponse:
    """Server-sent events: the job as it changes (``event: progress``), paused spells
    included, then ``event: end`` once it has ended; a comment now and then while it is
    quiet, so no proxy takes the stream for dead."""
    jobs = request.app[JOBS]
    job = await jobs.get(request.match_info["job_id"])
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store"})
    await response.prepare(request)
    last: Any = None
    quiet = 0
    while True:
        if job != last:
            await response.write(b"event: progress\ndata: " + orjson.dumps(job) + b"\n\n")
            last, quiet = job, 0
        elif quiet >= KEEPALIVE_POLLS:
            await response.write(b": still there\n\n")
            quiet = 0
        if job["state"] not in UNFINISHED:
            await response.write(b"event: end\ndata: " + orjson.dumps({"state": job["state"]}) + b"\n\n")
            return response
        await asyncio.sleep(0.5)
        quiet += 1
        job = await jobs.get(job["id"])


def job_routes() -> list[web.RouteDef]:
    return [
        web.post("/api/v1/admin/jobs", create_job),
        web.get("/api/v1/admin/jobs", list_jobs),
        web.get("/api/v1/admin/jobs/{job_id}", get_job),
        web.post("/api/v1/admin/jobs/{job_id}/cancel", cancel_job),
        web.post("/api/v1/admin/jobs/{job_id}/pause", pause_job),
        web.post("/api/v1/admin/jobs/{job_id}/resume", resume_job),
        web.post("/api/v1/admin/jobs/{job_id}/retry", retry_job),
        web.get("/api/v1/admin/jobs/{job_id}/events", job_events),
    ]
