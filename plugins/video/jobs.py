"""OpenAI's Videos API as durable jobs: ``POST /v1/videos`` and the routes that read,
list, download and delete them.

A job is a record in storage (``video_jobs``), listed in ``video_queue`` until it ends;
its source picture waits in ``video_inputs``. Every worker's :class:`JobRunner` takes
queued jobs while a cross-worker slot is free and claims each with a storage lock it
renews while it works. A worker that stops hands its jobs back (their locks are freed;
a crashed one's expire): the next runner to see such a job ``in_progress`` without a
holder runs it again, up to ``video.job_attempts`` runs, then marks it failed with the
reason. A job is visible to the API key that made it; the global key, open loopback
and admin sessions see every job. The key's video limit is reserved at creation and
settled once the job is stored (the job, durable, then owns the charge); the job keeps
the reservation's ticket, so a job that fails or is deleted before it delivered gives the
video back to the day it was charged on, from whichever worker ends it.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import time
from typing import Any

from aiohttp import web

from grok2api.api import (
    IDENTITY,
    KEYS,
    MEDIA,
    STORAGE,
    ApiError,
    Identity,
    ModelRequest,
    NoAccountAvailable,
    UploadedFile,
    has_admin_session,
    invalid,
    logger,
    random_hex,
    read_json,
    read_multipart,
)
from grok2api_plugins.chat.request import Attachment
from grok2api_plugins.chat.service import CHAT
from grok2api_plugins.images.request import sniff
from grok2api_plugins.video.catalog import VIDEO
from grok2api_plugins.video.generate import Made, Source, api_error, make_video
from grok2api_plugins.video.options import SIZES, VideoOptions, parse_job
from grok2api_plugins.video.render import resource
from grok2api_plugins.video.service import VIDEO_SERVICE, VideoService
from grok2api_plugins.video.slots import Held

NS_JOBS, NS_QUEUE, NS_INPUTS = "video_jobs", "video_queue", "video_inputs"
JOB_LOCK = "video-job:{}"
FINISHED = ("completed", "failed")
#: progress is stored when it moved this many points (each store is a write on every engine)
PROGRESS_STEP = 10
MAX_INPUT_BYTES = 20 * 1024 * 1024


# -- creating --------------------------------------------------------------------------------


async def read_create_body(request: web.Request) -> dict[str, Any]:
    """Multipart (the SDK's way, ``input_reference`` a file) or JSON (``input_reference``
    an ``{"image_url": …}`` object); ``model`` defaults to the video model."""
    body = await (read_multipart(request) if request.content_type.startswith("multipart/") else read_json(request))
    body.setdefault("model", VIDEO.id)
    return body


async def _source(req: ModelRequest) -> Source | None:
    reference = req.body.get("input_reference")
    if reference is None or reference == "":
        return None
    if isinstance(reference, list):
        files = [item for item in reference if isinstance(item, UploadedFile)]
        if len(files) != 1:
            raise invalid("'input_reference' must be one picture file", "input_reference", "invalid_input_reference")
        data, name = files[0].data, files[0].filename or "input"
    elif isinstance(reference, dict) and isinstance(reference.get("image_url"), str):
        blob = await req.app[CHAT].loader.load(Attachment("image", reference["image_url"],
                                                          "input_reference.image_url"))
        data, name = blob.data, blob.filename
    else:
        raise invalid("'input_reference' must be a picture file or {\"image_url\": …}; file_id is not supported",
                      "input_reference", "invalid_input_reference")
    mime = sniff(data)
    if mime is None:
        raise invalid("'input_reference' is not a PNG, JPEG or WebP picture", "input_reference", "invalid_image")
    if len(data) > MAX_INPUT_BYTES:
        raise invalid(f"'input_reference' is larger than {MAX_INPUT_BYTES // 1024 // 1024} MB", "input_reference",
                      "image_too_large")
    return Source(data, mime, name)


async def create_job(req: ModelRequest) -> web.StreamResponse:
    prompt, size, options = parse_job(req.body)
    source = await _source(req)
    app = req.app
    charge = await app[KEYS].reserve(req.identity, {"video": 1})
    now = time.time()
    job: dict[str, Any] = {
        "id": f"video_{random_hex(12)}", "object": "video", "model": req.model.id, "status": "queued",
        "progress": 0, "created_at": int(now), "completed_at": None, "expires_at": None, "prompt": prompt,
        "size": size, "seconds": str(options.length), "remixed_from_video_id": None, "error": None,
        "options": options.to_json(), "owner": req.identity.key_id, "attempts": 0, "created_ms": int(now * 1000),
        "identity": {"key_id": req.identity.key_id, "name": req.identity.name, "kind": req.identity.kind},
        "has_input": source is not None, "charge": charge.ticket(),
    }
    storage = app[STORAGE]
    async with charge:  # refunded if the job could not be stored
        if source is not None:
            await storage.put(NS_INPUTS, job["id"], {"data": base64.b64encode(source.data).decode(),
                                                     "mime": source.mime, "filename": source.filename})
        await storage.put(NS_JOBS, job["id"], job)
        await storage.put(NS_QUEUE, job["id"], {"created_ms": job["created_ms"]})
        await charge.settle()
    app[VIDEO_SERVICE].jobs.wake()
    return web.json_response(resource(job))


# -- reading -----------------------------------------------------------------------------------


async def _sees_all(request: web.Request) -> bool:
    return request[IDENTITY].kind != "managed" or await has_admin_session(request)


async def _visible(request: web.Request) -> dict[str, Any]:
    """The job the path names, if the caller may see it (else the same 404 as for no job)."""
    video_id = request.match_info["video_id"]
    job = await request.app[STORAGE].get(NS_JOBS, video_id)
    if job is None or not (job.get("owner") == request[IDENTITY].key_id or await _sees_all(request)):
        raise ApiError(404, f"No video with id '{video_id[:200]}'", param="video_id", code="video_not_found")
    return job


async def retrieve(request: web.Request) -> web.Response:
    return web.json_response(resource(await _visible(request)))


def _limit(value: str | None) -> int:
    if value is None:
        return 20
    if not value.isdigit() or not 0 <= int(value) <= 100:
        raise invalid("'limit' must be an integer from 0 to 100", "limit", "invalid_limit")
    return int(value)


async def list_jobs(request: web.Request) -> web.Response:
    """Newest first (``order=asc``: oldest first), ``limit`` per page, ``after`` the last id seen."""
    order = request.query.get("order", "desc")
    if order not in ("asc", "desc"):
        raise invalid("'order' must be 'asc' or 'desc'", "order", "invalid_order")
    limit = _limit(request.query.get("limit"))
    everyone, key = await _sees_all(request), request[IDENTITY].key_id
    jobs = [job for job in (await request.app[STORAGE].list(NS_JOBS)).values()
            if everyone or job.get("owner") == key]
    jobs.sort(key=lambda job: (job.get("created_ms", 0), job["id"]), reverse=order == "desc")
    after = request.query.get("after")
    if after:
        position = next((i for i, job in enumerate(jobs) if job["id"] == after), None)
        if position is None:
            raise invalid(f"'after' names no video of yours: '{after[:200]}'", "after", "invalid_after")
        jobs = jobs[position + 1:]
    page = [resource(job) for job in jobs[:limit]]
    return web.json_response({"object": "list", "data": page, "first_id": page[0]["id"] if page else None,
                              "last_id": page[-1]["id"] if page else None, "has_more": len(jobs) > limit})


async def content(request: web.Request) -> web.StreamResponse:
    """The MP4 (``variant=video``) or its poster (``thumbnail``) from the media cache."""
    job = await _visible(request)
    variant = request.query.get("variant", "video")
    if variant not in ("video", "thumbnail", "spritesheet"):
        raise invalid("'variant' must be video, thumbnail or spritesheet", "variant", "invalid_variant")
    if job["status"] != "completed":
        raise ApiError(409, f"Video '{job['id']}' is {job['status']}, not completed", code="video_not_ready")
    name = job.get("video_file") if variant == "video" else job.get("poster_file") if variant == "thumbnail" else None
    path = request.app[MEDIA].resolve("video" if variant == "video" else "image", name) if name else None
    if path is None:
        raise ApiError(404, f"Video '{job['id']}' has no {variant} (never made, or removed from the media cache)",
                       param="variant", code="content_not_found")
    if variant == "video":
        kind = "video/mp4"
    else:
        with path.open("rb") as file:
            kind = sniff(file.read(16)) or "image/jpeg"
    return web.FileResponse(path, headers={"Content-Type": kind})


async def delete(request: web.Request) -> web.Response:
    job = await _visible(request)
    app = request.app
    runner = app[VIDEO_SERVICE].jobs
    stopped_here = runner.cancel(job["id"])
    storage = app[STORAGE]
    await storage.delete(NS_JOBS, job["id"])
    await storage.delete(NS_QUEUE, job["id"])
    await storage.delete(NS_INPUTS, job["id"])
    if job["status"] == "queued" and not stopped_here:
        await runner.refund(job)
    runner.remove_files(job)
    return web.json_response({"object": "video.deleted", "deleted": True, "id": job["id"]})


def job_routes() -> list[web.AbstractRouteDef]:
    return [web.get("/v1/videos", list_jobs), web.get("/v1/videos/{video_id}", retrieve),
            web.delete("/v1/videos/{video_id}", delete), web.get("/v1/videos/{video_id}/content", content)]


# -- running ------------------------------------------------------------------------------------


class JobRunner:
    """This worker's share of the queue."""

    def __init__(self, app: web.Application, service: VideoService) -> None:
        self.app = app
        self.service = service
        self.running: dict[str, asyncio.Task[None]] = {}
        self._deleted: set[str] = set()
        self._wake = asyncio.Event()
        self._loop: asyncio.Task[None] | None = None
        self._checked = 0.0  # when jobs in progress elsewhere were last tried
        self._stopping = False

    def start(self) -> None:
        self._loop = asyncio.create_task(self._run())

    def wake(self) -> None:
        self._wake.set()

    async def stop(self) -> None:
        """Stop the loop and every job running here; their locks are released, so the
        next runner resumes them.

        Some storage clients swallow a cancellation that lands inside a call, so the loop
        also checks a flag, and each task is cancelled again until it has ended.
        """
        self._stopping = True
        self._wake.set()
        tasks = [t for t in (self._loop, *self.running.values()) if t is not None]
        for task in tasks:
            while not task.done():
                task.cancel()
                await asyncio.wait({task}, timeout=0.5)

    def cancel(self, job_id: str) -> bool:
        task = self.running.get(job_id)
        if task is None:
            return False
        self._deleted.add(job_id)
        task.cancel()
        return True

    async def _run(self) -> None:
        while not self._stopping:
            try:
                await self.tick()
            except Exception:
                logger.exception("video: the job runner's round failed; trying again")
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.service.settings().job_poll_sec):
                    await self._wake.wait()
            self._wake.clear()

    async def tick(self) -> None:
        """Start every queued job a free slot allows, oldest first.

        Jobs in progress elsewhere are tried (to take over a stopped worker's) only once
        per lease, and not at all while they fill every slot: a round then costs one read.
        """
        storage, now = self.app[STORAGE], time.monotonic()
        queue = await storage.list(NS_QUEUE)
        busy = sum(1 for entry in queue.values() if entry.get("status") == "in_progress")
        recheck = now - self._checked >= self.service.settings().job_lease_sec
        if recheck:
            self._checked = now
        elif busy >= self.service.settings().max_concurrent:
            return
        for job_id in sorted(queue, key=lambda key: (queue[key].get("created_ms", 0), key)):
            if job_id in self.running or (queue[job_id].get("status") == "in_progress" and not recheck):
                continue
            held = await self.service.slots.try_take()
            if held is None:
                return
            if not await held.add(JOB_LOCK.format(job_id)):
                await held.release()  # running on another worker
                continue
            job = await self._claim(job_id)
            if job is None:
                await held.release()
                continue
            self.running[job_id] = asyncio.create_task(self._work(job, held))

    async def _claim(self, job_id: str) -> dict[str, Any] | None:
        """The job, marked ``in_progress`` for one more run; None when it is not to run."""
        storage = self.app[STORAGE]
        job = await storage.get(NS_JOBS, job_id)
        if job is None or job.get("status") in FINISHED:
            await storage.delete(NS_QUEUE, job_id)
            return None
        attempts = int(job.get("attempts", 0))
        if job.get("status") == "in_progress" and attempts >= self.service.settings().job_attempts:
            await self._fail(job, "gateway_interrupted",
                             f"The gateway stopped while this video was being made ({attempts} time(s))")
            return None
        if job.get("status") == "in_progress":
            logger.info("video: resuming job {} (interrupted run {})", job_id, attempts)
        await storage.patch(NS_QUEUE, job_id, {"status": "in_progress"})
        return await storage.patch(NS_JOBS, job_id, {"status": "in_progress", "progress": 0,
                                                    "attempts": attempts + 1})

    async def _work(self, job: dict[str, Any], held: Held) -> None:
        storage, job_id = self.app[STORAGE], job["id"]
        stored = {"progress": 0}

        async def progress(value: int) -> None:
            if value < 100 and value - stored["progress"] >= PROGRESS_STEP:
                stored["progress"] = value
                await storage.patch(NS_JOBS, job_id, {"progress": value})

        try:
            made = await make_video(self.app, job["prompt"], VideoOptions.from_json(job["options"]),
                                    await self._input(job), progress)
            await self._complete(job, made)
        except asyncio.CancelledError:
            if job_id in self._deleted:
                await self.refund(job)
            else:  # handed back: the next round of any worker takes it up without waiting for a recheck
                with contextlib.suppress(Exception):
                    await storage.patch(NS_QUEUE, job_id, {"status": None})
            raise
        except NoAccountAvailable as exc:
            if exc.retry_after is None:  # no account can ever serve it
                await self._fail(job, "no_available_token", exc.message)
            else:  # every account busy: back in the queue, as it was, after the pool's wait
                await storage.patch(NS_JOBS, job_id, {"status": "queued", "attempts": job["attempts"] - 1})
                await asyncio.sleep(min(exc.retry_after, self.service.settings().job_lease_sec / 3))
                await storage.patch(NS_QUEUE, job_id, {"status": None})
        except Exception as exc:
            try:
                error = api_error(exc)
            except Exception:
                logger.exception("video: job {} failed", job_id)
                error = ApiError(500, f"Internal error: {type(exc).__name__}", code="internal_error")
            await self._fail(job, error.code or "video_failed", error.message)
        finally:
            self._deleted.discard(job_id)
            self.running.pop(job_id, None)
            await held.release()
            self.wake()

    async def _input(self, job: dict[str, Any]) -> Source | None:
        if not job.get("has_input"):
            return None
        stored = await self.app[STORAGE].get(NS_INPUTS, job["id"])
        if stored is None:
            return None
        return Source(base64.b64decode(stored["data"]), str(stored["mime"]), str(stored["filename"]))

    async def _complete(self, job: dict[str, Any], made: Made) -> None:
        storage = self.app[STORAGE]
        fields: dict[str, Any] = {
            "status": "completed", "progress": 100, "completed_at": int(time.time()), "video_file": made.video.name,
            "poster_file": made.poster.name if made.poster is not None else None}
        if made.upscale_error:
            fields |= {"upscale_error": made.upscale_error, "size": _sd_size(job["size"])}
        if await storage.patch(NS_JOBS, job["id"], fields) is None:  # deleted meanwhile
            await self.refund(job)
            self.remove_files({**job, **fields})
        await self._dequeue(job)

    async def _fail(self, job: dict[str, Any], code: str, message: str) -> None:
        logger.warning("video: job {} failed: {}", job["id"], message)
        await self.app[STORAGE].patch(NS_JOBS, job["id"], {"status": "failed", "error": {"code": code,
                                                                                         "message": message}})
        await self.refund(job)
        await self._dequeue(job)

    async def _dequeue(self, job: dict[str, Any]) -> None:
        storage = self.app[STORAGE]
        await storage.delete(NS_QUEUE, job["id"])
        if job.get("has_input"):
            await storage.delete(NS_INPUTS, job["id"])

    async def refund(self, job: dict[str, Any]) -> None:
        """Give the video charged at creation back to the key that made the job (never raises)."""
        who = job.get("identity") or {}
        identity = Identity(key_id=who.get("key_id"), name=str(who.get("name", "")), kind=who.get("kind", "open"))
        await self.app[KEYS].settled(identity, job.get("charge"), {"video": 1}).refund()

    def remove_files(self, job: dict[str, Any]) -> None:
        media = self.app[MEDIA]
        for kind, field in (("video", "video_file"), ("image", "poster_file")):
            path = media.resolve(kind, job[field]) if job.get(field) else None  # type: ignore[arg-type]
            if path is not None:
                path.unlink(missing_ok=True)


def _sd_size(size: str) -> str:
    """The SD size of the same shape (what an HD job delivers when the upscale failed)."""
    ratio = SIZES[size][0]
    return next(name for name, (r, resolution) in SIZES.items() if r == ratio and resolution == "SD")
