"""``grok2api serve``: one process, or several worker processes sharing one port.

Start-up ends with what an operator must do next (console, default password, API keys,
accounts). SIGTERM or SIGINT stop the listener at once; requests in flight get
``server.shutdown_grace_sec`` to finish, then each is ended as an error (a stream with
an error event and ``[DONE]``); the app's cleanup then writes the pool, the counters and
the request log.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import multiprocessing
import signal

import orjson
from aiohttp import web

from grok2api import __version__
from grok2api.config.settings import Settings
from grok2api.logs.logger import logger, setup_logging
from grok2api.web.app import create_app
from grok2api.web.appkeys import KEYS, POOL, REGISTRIES, SETTINGS
from grok2api.web.errors import ERROR_CODE, ApiError, Handler

#: how long requests ended at the deadline get to write their last words
CUT_SECONDS = 5.0
#: how long aiohttp reads (and drops) the rest of a body the app did not read before it
#: closes the connection (aiohttp's default; never more than ``server.body_timeout_sec``)
LINGERING_SECONDS = 10.0
_RESPONSE = web.RequestKey("drain_response", web.StreamResponse)


def new_event_loop() -> asyncio.AbstractEventLoop:
    """uvloop where it is installed (all but Windows): the gateway spends less CPU per request on it."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def _pause_collector() -> None:
    """Start-up makes objects that live as long as the process (with a large pool, a million
    accounts' worth) and frees few: the cyclic collector, set off by those allocations, would
    walk them again and again. :func:`_freeze_startup_objects` turns it back on."""
    gc.disable()


async def _freeze_startup_objects(app: web.Application) -> None:
    """What start-up built moves where the collector never looks, then the collector runs
    again. Without a collection first: it would walk the whole pool to find the few cycles
    start-up left, which are kept instead (CPython's advice for ``gc.freeze``)."""
    gc.freeze()
    gc.enable()


class Drain:
    """The requests in flight, so that shutdown can wait for them and then end them.

    Its middleware (the innermost) notes each request's task; at the deadline each task
    still running is cancelled, and the middleware turns that cancellation into an
    ordinary answer: the observers see the request once, with its real status.
    """

    def __init__(self, grace: float) -> None:
        self.grace = grace
        self.tasks: set[asyncio.Task[object]] = set()
        self.cut: set[asyncio.Task[object]] = set()
        self.emptied: asyncio.Event | None = None

    def install(self, app: web.Application) -> None:
        app.middlewares.append(self.middleware)
        app.on_response_prepare.append(self.prepared)
        app.on_shutdown.append(self.drain)

    async def prepared(self, request: web.Request, response: web.StreamResponse) -> None:
        request[_RESPONSE] = response

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        task = asyncio.current_task()
        assert task is not None
        self.tasks.add(task)
        try:
            response: web.StreamResponse = await handler(request)
            return response
        except asyncio.CancelledError:
            if task not in self.cut:
                raise
            task.uncancel()
            return await _cut_short(request)
        finally:
            self.tasks.discard(task)
            if not self.tasks and self.emptied is not None:
                self.emptied.set()

    async def drain(self, app: web.Application) -> None:
        """``on_shutdown``: the listener is closed; wait for the requests in flight, then end the rest."""
        if not self.tasks:
            return
        logger.info("shutdown: {} request(s) in flight get up to {}s to finish", len(self.tasks), self.grace)
        self.emptied = asyncio.Event()
        try:
            await asyncio.wait_for(self.emptied.wait(), self.grace)
            return
        except TimeoutError:
            pass
        logger.warning("shutdown: ending {} request(s) still running after {}s", len(self.tasks), self.grace)
        for task in list(self.tasks):
            self.cut.add(task)
            task.cancel()


def shutting_down() -> ApiError:
    return ApiError(503, "The gateway is shutting down; the request was ended before it finished",
                    code="shutting_down", headers={"Retry-After": "1"})


async def _cut_short(request: web.Request) -> web.StreamResponse:
    """A request the deadline ended: a stream under way gets an error event and ``[DONE]``,
    anything not yet answered a 503."""
    error = shutting_down()
    response: web.StreamResponse | None = request.get(_RESPONSE)
    if response is None:
        raise error
    request[ERROR_CODE] = "shutting_down"
    if response.content_type == "text/event-stream":
        await response.write_eof(b"data: " + orjson.dumps(error.body()) + b"\n\ndata: [DONE]\n\n")
    else:
        await response.write_eof()
    return response


async def _announce(app: web.Application) -> None:
    """``on_startup`` (after storage, keys and the pool): what the operator should do next."""
    settings = app[SETTINGS]
    base = settings.app.app_url.rstrip("/")
    if app[REGISTRIES].admin_pages.login_path is not None:
        logger.info("admin console: {}/admin", base)
    else:
        logger.info("no admin console is installed yet; the admin API is under {}/api/v1/admin/ "
                    "(sign in with POST /api/v1/admin/login)", base)
    if settings.app.app_key == "admin":
        logger.warning("the admin password is still the default 'admin' (accepted from loopback only): set "
                       "app.app_key in data/config.toml or GROK2API_APP__APP_KEY")
    if not settings.app.api_key and not await app[KEYS].has_active_keys():
        logger.warning("no API key exists, so /v1 serves loopback clients only: create one with "
                       "'grok2api keys create --name NAME' (or set app.api_key)")
    accounts = len(app[POOL].accounts())
    if accounts:
        logger.info("{} Grok account(s) in the pool; add more with 'grok2api tokens add TOKEN...' or "
                    "'grok2api tokens import FILE'", accounts)
    else:
        logger.warning("the account pool is empty, so chats fail: add Grok accounts (their sso cookie) with "
                       "'grok2api tokens add TOKEN...' or 'grok2api tokens import FILE'")


def run_server(app: web.Application, settings: Settings, reuse_port: bool = False, announce: bool = True) -> None:
    """Serve ``app`` on ``server.host``/``server.port`` until SIGINT or SIGTERM.

    aiohttp closes a connection that waits for a request longer than its keep-alive
    timeout, half-received headers included: that is ``server.header_timeout_sec``.
    ``shutdown_timeout`` is aiohttp's own wait after :meth:`Drain.drain` has waited the
    grace period: by then only requests it ended, writing their last words, are left."""
    app.on_startup.append(_freeze_startup_objects)
    if announce:
        app.on_startup.append(_announce)
    Drain(settings.server.shutdown_grace_sec).install(app)
    web.run_app(app, host=settings.server.host, port=settings.server.port, access_log=None,
                reuse_port=reuse_port, print=None, handle_signals=True, loop=new_event_loop(),
                keepalive_timeout=settings.server.header_timeout_sec, shutdown_timeout=CUT_SECONDS,
                lingering_time=min(LINGERING_SECONDS, settings.server.body_timeout_sec))


def _serve_worker(settings: Settings, announce: bool) -> None:
    """One of several worker processes (spawned: it sets up logging and builds its own app)."""
    _pause_collector()
    setup_logging(settings.log_level)
    run_server(create_app(settings), settings, reuse_port=True, announce=announce)


def arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host")
    parser.add_argument("--port", type=int)
    parser.add_argument("--workers", type=int)


def serve(args: argparse.Namespace, settings: Settings) -> int:
    for name in ("host", "port", "workers"):
        if getattr(args, name) is not None:
            setattr(settings.server, name, getattr(args, name))
    _pause_collector()
    app = create_app(settings)  # validates plugins and config before anything is forked
    workers = settings.server.workers
    logger.info("grok2api {} listening on http://{}:{} with {} worker(s), storage {}", __version__,
                settings.server.host, settings.server.port, workers, settings.server.storage_type)
    if workers == 1:
        run_server(app, settings)
        return 0
    gc.enable()  # this process only waits for its workers, which pause their own collector
    ctx = multiprocessing.get_context("spawn")
    children = [ctx.Process(target=_serve_worker, args=(settings, i == 0), name=f"worker-{i}")
                for i in range(workers)]
    for child in children:
        child.start()

    def stop(signum: int, frame: object) -> None:
        for child in children:
            if child.is_alive():
                child.terminate()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    for child in children:
        child.join()
    return 1 if any(child.exitcode for child in children) else 0
