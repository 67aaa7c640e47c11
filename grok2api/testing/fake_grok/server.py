"""``FakeGrok``: Grok's web upstream on loopback, speaking the [T] dialect.

Point ``grok.base_url`` at :attr:`FakeGrok.base_url` and ``grok.assets_url`` at
:attr:`FakeGrok.assets_url` (the same server under ``/assets``). It serves chat streams,
uploads, rate limits, the asset list, downloads and deletion, media posts, video upscale
and the imagine WebSocket; it refuses what the real upstream refuses, keeps quota per
account and bucket, records every request and misbehaves on demand (:meth:`inject`).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal
from uuid import uuid4

import orjson
from aiohttp import web
from multidict import CIMultiDictProxy

from grok2api.testing.fake_grok.accounts import Account, Bucket, Tier, bucket_name
from grok2api.testing.fake_grok.faults import ANSWERS, IMAGINE_FAULTS, Endpoint, Fault, FaultBook, FaultKind
from grok2api.testing.fake_grok.imagine import serve_imagine
from grok2api.testing.fake_grok.media import mp4
from grok2api.testing.fake_grok.replies import StoredAsset, edit_sources, reply_for
from grok2api.testing.fake_grok.streaming import StreamPlan, write_stream

StatsigCheck = Literal["off", "legacy", "x1-only", "signed"]
ASSETS_PREFIX = "/assets"
CONTROL_PREFIX = "/__fake__"

_CHALLENGE_PAGE = (
    '<!DOCTYPE html><html lang="en-US"><head><title>Just a moment...</title></head><body>'
    '<div id="challenge-platform"></div><script src="/cdn-cgi/challenge-platform/h/b/orchestrate/'
    'chl_page/v1?ray=fake"></script></body></html>'
)
RECORDED_REQUESTS = 10_000
_USAGE_LIMIT = "You've reached your usage limit. Please try again later."


@dataclass
class RecordedRequest:
    """What the client sent; ``disconnected`` is set when it left before the answer ended."""

    method: str
    path: str
    query: dict[str, str]
    headers: CIMultiDictProxy[str]
    json: Any
    endpoint: Endpoint
    sso: str | None
    peer: tuple[str, int] | None
    ws_messages: list[Any] = field(default_factory=list)
    disconnected: bool = False


@dataclass
class _Context:
    record: RecordedRequest
    account: Account | None
    faults: list[Fault]


Handler = Callable[[web.Request, _Context], Awaitable[web.StreamResponse]]


def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    response = web.Response(body=orjson.dumps(data), status=status, headers=headers,
                            content_type="application/json")
    response.enable_compression()
    return response


def _error(status: int, code: int | str, message: str, headers: dict[str, str] | None = None) -> web.Response:
    return _json({"error": {"code": code, "message": message, "details": []}}, status, headers)


def _rate_limited(wait: float | None) -> web.Response:
    headers = {"Retry-After": f"{wait:g}"} if wait is not None else None
    return _json({"code": 8, "message": "Too many requests", "details": []}, 429, headers)


def _fault_answer(fault: Fault) -> web.Response:
    match fault.kind:
        case FaultKind.INVALID_CREDENTIALS:
            return _error(401, 16, "Failed to look up session ID. [WKE=unauthorized:invalid-credentials]")
        case FaultKind.BLOCKED:
            return _error(403, 7, "User is blocked [WKE=unauthorized:blocked-user]")
        case FaultKind.ANTI_BOT:
            return _error(403, 7, "Request rejected by anti-bot rules.")
        case FaultKind.CLOUDFLARE:
            return web.Response(status=403, text=_CHALLENGE_PAGE, content_type="text/html",
                                headers={"cf-mitigated": "challenge"})
        case FaultKind.CLOUDFLARE_EMPTY:
            return web.Response(status=403)
        case FaultKind.MODERATED:
            return _json({"error": {"code": "content-moderated", "message": fault.message or "rejected"}}, 403)
        case FaultKind.RATE_LIMITED:
            return _rate_limited(fault.retry_after)
        case _:
            return web.Response(status=fault.status, text=fault.message or "upstream connect error")


def statsig_valid(value: str | None, mode: StatsigCheck) -> bool:
    """``legacy`` takes the ``e:``/``x1:`` fallback ids, ``x1-only`` only ``x1:``, ``signed``
    any base64 of exactly 70 bytes (protocol §2.4)."""
    if mode == "off":
        return True
    try:
        raw = base64.b64decode(value or "", validate=True)
    except (binascii.Error, ValueError):
        return False
    if mode == "signed":
        return len(raw) == 70
    return raw.startswith(b"x1:") or (mode == "legacy" and raw.startswith(b"e:"))


def _page_offset(token: str) -> int | None:
    if not token or token == "again":
        return 0
    return int(token[1:]) if token.startswith("p") and token[1:].isdigit() else None


class FakeGrok:
    """A running fake upstream (use ``async with FakeGrok() as fake`` or start/stop).

    ``statsig`` validates ``x-statsig-id`` on ``/rest/*``; ``require_clearance`` demands
    that ``cf_clearance`` cookie value (else a Cloudflare challenge); ``rate_limits_shape``
    picks the §7.2 answer shape (``tokens``: the superset with token budget, or
    ``queries``); ``quota_exhausted`` answers a chat on an empty bucket with a 429
    (``http``) or an in-stream code-8 error (``in_stream``); ``frame_delay`` paces
    stream lines and imagine frames; ``imagine_close_after_round`` closes the imagine socket after a round.
    """

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0, statsig: StatsigCheck = "legacy",
                 require_clearance: str = "", rate_limits_shape: Literal["tokens", "queries"] = "tokens",
                 quota_exhausted: Literal["http", "in_stream"] = "http", frame_delay: float = 0.0,
                 imagine_close_after_round: bool = False) -> None:
        self.host, self.port = host, port
        self.statsig = statsig
        self.require_clearance = require_clearance
        self.rate_limits_shape = rate_limits_shape
        self.quota_exhausted = quota_exhausted
        self.frame_delay = frame_delay
        self.imagine_close_after_round = imagine_close_after_round
        self.accounts: dict[str, Account] = {}
        #: the last requests, for tests and ``/__fake__/requests`` (bounded: a long-running
        #: fake, as in the benchmarks, must not grow without end)
        self.requests: deque[RecordedRequest] = deque(maxlen=RECORDED_REQUESTS)
        self.faults = FaultBook()
        self.assets: dict[str, StoredAsset] = {}
        self.posts: dict[str, dict[str, Any]] = {}
        self._configured = False
        self._runner: web.AppRunner | None = None

    # -- lifecycle ------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def assets_url(self) -> str:
        return self.base_url + ASSETS_PREFIX

    def grok_settings(self) -> dict[str, str]:
        """The ``grok`` settings that point a gateway at this fake."""
        return {"base_url": self.base_url, "assets_url": self.assets_url}

    async def start(self) -> FakeGrok:
        self._runner = web.AppRunner(self._app(), handler_cancellation=True, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        self.port = self._runner.addresses[0][1]
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeGrok:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- test API ---------------------------------------------------------------------

    def add_account(self, sso: str, *, tier: Tier = "basic", user_id: str | None = None,
                    limits: dict[str, int] | None = None, window_seconds: int | None = None) -> Account:
        """Register an account; once any is registered, unknown cookies get a 401."""
        self._configured = True
        account = Account(sso, tier, user_id or str(uuid4()), dict(limits or {}), window_seconds)
        self.accounts[sso] = account
        return account

    def inject(self, kind: FaultKind | str, *, account: str | None = None,
               endpoint: Endpoint | str | None = None, times: int | None = 1, **params: Any) -> Fault:
        """Misbehave on the next ``times`` matching requests (see :class:`FaultKind` for
        the kinds and the parameters each reads: ``status``, ``retry_after``, ``delay``,
        ``after_lines``, ``mid_line``, ``seed``, ``message``)."""
        return self.faults.add(Fault(FaultKind(kind), account, Endpoint(endpoint) if endpoint else None,
                                     times, **params))

    def clear_faults(self) -> None:
        self.faults.clear()

    def requests_to(self, endpoint: Endpoint | str) -> list[RecordedRequest]:
        return [r for r in self.requests if r.endpoint == Endpoint(endpoint)]

    def _account(self, sso: str | None) -> Account | None:
        if not sso:
            return None
        if sso not in self.accounts and not self._configured:
            self.accounts[sso] = Account(sso)
        return self.accounts.get(sso)

    def _store(self, assets: list[StoredAsset]) -> None:
        for asset in assets:
            self.assets[asset.path] = asset

    # -- plumbing ---------------------------------------------------------------------

    def _app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        routes = [
            ("POST", "/rest/app-chat/conversations/new", Endpoint.CHAT, self._chat),
            ("POST", "/rest/app-chat/upload-file", Endpoint.UPLOAD, self._upload),
            ("POST", "/rest/rate-limits", Endpoint.RATE_LIMITS, self._rate_limits),
            ("GET", "/rest/assets", Endpoint.LIST_ASSETS, self._list_assets),
            ("DELETE", "/rest/assets-metadata/{asset_id}", Endpoint.DELETE_ASSET, self._delete_asset),
            ("POST", "/rest/media/post/create", Endpoint.MEDIA_POST, self._media_post),
            ("POST", "/rest/media/video/upscale", Endpoint.UPSCALE, self._upscale),
            ("GET", "/ws/imagine/listen", Endpoint.IMAGINE, self._imagine),
            ("GET", ASSETS_PREFIX + "/{path:.+}", Endpoint.ASSET, self._asset),
        ]
        for method, path, endpoint, handler in routes:
            app.router.add_route(method, path, self._endpoint(endpoint, handler))
        app.router.add_post(CONTROL_PREFIX + "/accounts", self._control_account)
        app.router.add_post(CONTROL_PREFIX + "/faults", self._control_fault)
        app.router.add_delete(CONTROL_PREFIX + "/faults", self._control_clear)
        app.router.add_get(CONTROL_PREFIX + "/requests", self._control_requests)
        return app

    def _endpoint(self, endpoint: Endpoint, handler: Handler) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def handle(request: web.Request) -> web.StreamResponse:
            body = await request.read()
            try:
                data = orjson.loads(body) if body else None
            except orjson.JSONDecodeError:
                data = None
            sso = request.cookies.get("sso") or request.cookies.get("sso-rw") or None
            peer = request.transport.get_extra_info("peername") if request.transport else None
            record = RecordedRequest(request.method, request.path, dict(request.query),
                                     request.headers, data, endpoint, sso, peer)
            self.requests.append(record)
            try:
                return await self._serve(request, record, handler)
            except (asyncio.CancelledError, ConnectionResetError):
                record.disconnected = True
                raise
        return handle

    async def _serve(self, request: web.Request, record: RecordedRequest, handler: Handler) -> web.StreamResponse:
        faults = self.faults.take(record.endpoint, record.sso)
        for fault in faults:
            if fault.kind == FaultKind.SLOW_FIRST_BYTE:
                await asyncio.sleep(fault.delay)
        answer = next((fault for fault in faults if fault.kind in ANSWERS), None)
        if answer is not None and answer.kind == FaultKind.DISCONNECT:
            if request.transport is not None:
                request.transport.abort()
            return web.Response()
        if answer is not None:
            return _fault_answer(answer)
        if self.require_clearance and request.cookies.get("cf_clearance") != self.require_clearance:
            return _fault_answer(Fault(FaultKind.CLOUDFLARE))
        account = self._account(record.sso)
        if account is None and record.endpoint != Endpoint.ASSET:
            return _error(401, 16, "Failed to look up session ID. [WKE=unauthorized:invalid-credentials]")
        if request.path.startswith("/rest/") and not statsig_valid(request.headers.get("x-statsig-id"), self.statsig):
            return _error(403, 7, "Request rejected by anti-bot rules.")
        return await handler(request, _Context(record, account, faults))

    # -- endpoints (the account is known on all but assets) --------------------------------

    async def _chat(self, request: web.Request, ctx: _Context) -> web.StreamResponse:
        assert ctx.account is not None
        body = ctx.record.json
        if not isinstance(body, dict) or not isinstance(body.get("message"), str):
            return _error(400, 3, "message is required")
        sources = edit_sources(body, self.assets_url)
        if sources is not None and not self._owns(ctx.account, sources):
            return _error(400, 3, "an image edit needs images this account uploaded")
        bucket = ctx.account.bucket(bucket_name(str(body.get("modelName") or ""), str(body.get("modelMode") or "")))
        exhausted = not bucket.take()
        if exhausted and self.quota_exhausted == "http":
            return _rate_limited(bucket.wait_seconds)
        kinds = {fault.kind for fault in ctx.faults}
        if exhausted or FaultKind.RATE_LIMITED_IN_STREAM in kinds:
            frames = [{"error": {"code": 8, "message": "Too many requests", "details": []}}]
        else:
            reply = reply_for(body, ctx.account.user_id)
            self._store(reply.assets)
            frames = self._spoil(reply.frames, ctx.faults)
        return await write_stream(request, frames, StreamPlan.from_faults(ctx.faults, self.frame_delay))

    def _owns(self, account: Account, sources: list[str]) -> bool:
        """Every source (an upload's file id or asset path) is an upload of this account."""
        uploads = {key for asset in self.assets.values() if asset.owner == account.user_id
                   for key in (asset.asset_id, asset.path)}
        return bool(sources) and all(source in uploads for source in sources)

    @staticmethod
    def _spoil(frames: list[dict[str, Any]], faults: list[Fault]) -> list[dict[str, Any]]:
        """Apply the faults that change what the stream says (not how it is written)."""
        for fault in faults:
            if fault.kind == FaultKind.USAGE_LIMIT:
                response_id = frames[-1]["result"]["response"]["responseId"]
                frames = [*frames[: fault.after_lines], {"result": {"response": {
                    "error": {"message": fault.message or _USAGE_LIMIT}, "responseId": response_id}}}]
            elif fault.kind == FaultKind.STREAM_ERROR:
                for frame in frames:
                    final = frame.get("result", {}).get("response", {}).get("modelResponse")
                    if final is not None:
                        final["streamErrors"] = [{"message": fault.message or "Model failed to respond", "code": 13}]
        return frames

    async def _upload(self, request: web.Request, ctx: _Context) -> web.StreamResponse:
        assert ctx.account is not None
        body = ctx.record.json if isinstance(ctx.record.json, dict) else {}
        name, mime, content = body.get("fileName"), body.get("fileMimeType"), body.get("content")
        if not (isinstance(name, str) and isinstance(mime, str) and isinstance(content, str)):
            return _error(400, 3, "fileName, fileMimeType and content are required")
        try:
            data = base64.b64decode(content, validate=True)
        except (binascii.Error, ValueError):
            return _error(400, 3, "content is not base64")
        file_id = str(uuid4())
        path = f"users/{ctx.account.user_id}/{file_id}/content"
        self._store([StoredAsset(file_id, path, mime, data, ctx.account.user_id, name=name)])
        return _json({"fileMetadataId": file_id, "fileMimeType": mime, "fileName": name, "fileUri": path})

    async def _rate_limits(self, request: web.Request, ctx: _Context) -> web.StreamResponse:
        assert ctx.account is not None
        body = ctx.record.json if isinstance(ctx.record.json, dict) else {}
        if not isinstance(body.get("modelName"), str) or not body["modelName"]:
            return _error(400, 3, "modelName is required")
        return _json(self._quota_answer(ctx.account.bucket(body["modelName"])))

    def _quota_answer(self, bucket: Bucket) -> dict[str, Any]:
        remaining, total, wait = bucket.remaining, bucket.limit, bucket.wait_seconds
        answer: dict[str, Any] = {"windowSizeSeconds": bucket.window_seconds}
        if self.rate_limits_shape == "tokens":
            answer |= {
                "remainingTokens": remaining, "totalTokens": total,
                "remainingQueries": remaining // 4, "totalQueries": total // 4,
                "lowEffortRateLimits": {"cost": 1, "remainingQueries": remaining, "waitTimeSeconds": wait},
                "highEffortRateLimits": {"cost": 4, "remainingQueries": remaining // 4, "waitTimeSeconds": wait},
            }
        else:
            answer |= {"remainingQueries": remaining, "totalQueries": total,
                       "lowEffortRateLimits": None, "highEffortRateLimits": None}
        if remaining == 0:
            answer["waitTimeSeconds"] = wait
        return answer

    async def _list_assets(self, request: web.Request, ctx: _Context) -> web.StreamResponse:
        assert ctx.account is not None
        offset = _page_offset(request.query.get("pageToken", ""))
        size = request.query.get("pageSize", "50")
        if offset is None or not size.isdigit() or not 1 <= int(size) <= 100:
            return _error(400, 3, "bad pageToken or pageSize")
        owned = sorted((a for a in self.assets.values() if a.owner == ctx.account.user_id and a.listed),
                       key=lambda a: a.created, reverse=True)
        end = offset + int(size)
        next_token = f"p{end}" if end < len(owned) else ""
        if any(fault.kind == FaultKind.REPEAT_PAGE_TOKEN for fault in ctx.faults):
            next_token = "again"
        return _json({"assets": [{"assetId": a.asset_id, "mimeType": a.content_type, "name": a.name,
                                  "isModelGenerated": a.model_generated} for a in owned[offset:end]],
                      "nextPageToken": next_token})

    async def _delete_asset(self, request: web.Request, ctx: _Context) -> web.StreamResponse:
        assert ctx.account is not None
        asset_id = request.match_info["asset_id"]
        paths = [path for path, a in self.assets.items() if a.asset_id == asset_id and a.owner == ctx.account.user_id]
        if not paths:
            return _error(404, 5, "asset not found")
        for path in paths:
            del self.assets[path]
        return _json({})

    async def _media_post(self, request: web.Request, ctx: _Context) -> web.StreamResponse:
        assert ctx.account is not None
        body = ctx.record.json if isinstance(ctx.record.json, dict) else {}
        kind, prompt, media_url = body.get("mediaType"), body.get("prompt"), body.get("mediaUrl")
        if not ((kind == "MEDIA_POST_TYPE_VIDEO" and isinstance(prompt, str))
                or (kind == "MEDIA_POST_TYPE_IMAGE" and isinstance(media_url, str))):
            return _error(400, 3, "a VIDEO post needs a prompt, an IMAGE post a mediaUrl")
        post = {"id": str(uuid4()), "userId": ctx.account.user_id, "mediaType": kind,
                "createTime": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        post |= {"prompt": prompt} if kind == "MEDIA_POST_TYPE_VIDEO" else {"mediaUrl": media_url}
        self.posts[post["id"]] = post
        return _json({"post": post})

    async def _upscale(self, request: web.Request, ctx: _Context) -> web.StreamResponse:
        assert ctx.account is not None
        body = ctx.record.json if isinstance(ctx.record.json, dict) else {}
        video_id = body.get("videoId")
        owned = any(a.asset_id == video_id and a.owner == ctx.account.user_id and a.content_type == "video/mp4"
                    for a in self.assets.values())
        if not owned:
            return _error(404, 5, "video not found")
        path = f"users/{ctx.account.user_id}/generated/{video_id}/generated_video_hd.mp4"
        self._store([StoredAsset(str(video_id), path, "video/mp4", mp4(path), ctx.account.user_id,
                                 listed=False, model_generated=True)])
        return _json({"hdMediaUrl": f"{self.assets_url}/{path}"})

    async def _imagine(self, request: web.Request, ctx: _Context) -> web.StreamResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        spoilers = [fault for fault in ctx.faults if fault.kind in IMAGINE_FAULTS]
        await serve_imagine(ws, ctx.record.ws_messages, spoilers, self.assets_url, self._store,
                            self.imagine_close_after_round, self.frame_delay)
        return ws

    async def _asset(self, request: web.Request, ctx: _Context) -> web.StreamResponse:
        """Public assets to anyone; the rest only to the owning account's cookie."""
        asset = self.assets.get(request.match_info["path"])
        if asset is None:
            return web.Response(status=404, text="Not Found")
        if asset.owner is not None and (ctx.account is None or ctx.account.user_id != asset.owner):
            return web.Response(status=403, text="Forbidden")
        return web.Response(body=asset.data, content_type=asset.content_type)

    # -- control API, for a fake started from the command line ------------------------------

    async def _control_account(self, request: web.Request) -> web.Response:
        try:
            data = await request.json(loads=orjson.loads)
            account = self.add_account(data["sso"], tier=data.get("tier", "basic"), user_id=data.get("user_id"),
                                       limits=data.get("limits"), window_seconds=data.get("window_seconds"))
        except (KeyError, TypeError, ValueError) as exc:
            return _error(400, 3, f"bad account: {exc!r}")
        return _json({"sso": account.sso, "user_id": account.user_id, "tier": account.tier})

    async def _control_fault(self, request: web.Request) -> web.Response:
        try:
            data = dict(await request.json(loads=orjson.loads))
            fault = self.inject(data.pop("kind"), **data)
        except (KeyError, TypeError, ValueError) as exc:
            return _error(400, 3, f"bad fault: {exc!r}")
        return _json({"kind": fault.kind.value, "times": fault.times})

    async def _control_clear(self, request: web.Request) -> web.Response:
        self.clear_faults()
        return _json({})

    async def _control_requests(self, request: web.Request) -> web.Response:
        return _json([{"method": r.method, "path": r.path, "query": r.query, "endpoint": r.endpoint.value,
                       "headers": {str(k): v for k, v in r.headers.items()}, "json": r.json,
                       "ws_messages": r.ws_messages, "disconnected": r.disconnected} for r in self.requests])
