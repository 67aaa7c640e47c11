"""Real database servers for tests: Redis, PostgreSQL and MariaDB, each on loopback, a free port, a temp dir.

Each server starts once per test process (the fixtures are session-scoped and the
servers are cached here, so importing the fixtures into several modules still starts
one) and stops at exit; if the test process is killed, the kernel kills the servers
too (``PR_SET_PDEATHSIG``). Missing binaries are installed with apt-get when running as
root, under a file lock so parallel test processes do not race. Nothing is skipped: a
server that cannot start fails the test with the reason.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import fcntl
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import pytest

from grok2api.config.settings import ServerSettings, Settings
from grok2api.plugin.manager import GROUP
from grok2api.plugin.registries import StorageFactory, StorageRegistry
from grok2api.storage import Storage

_PACKAGES = {"redis": "redis-server", "pgsql": "postgresql", "mysql": "mariadb-server", "chromium": "chromium"}
_APT_LOCK = Path(tempfile.gettempdir()) / "grok2api-apt.lock"
#: Debian's Chromium, which the console's browser tests drive through Playwright
CHROMIUM = "/usr/bin/chromium"
_PATH = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/usr/bin", "/sbin"])
_START_TIMEOUT = 60.0


class EngineStartError(RuntimeError):
    """A test database server could not be installed or started."""


@dataclass
class Server:
    url: str
    stop: Callable[[], None]


_servers: dict[str, Server] = {}
_guard = threading.Lock()


def engine_url(kind: str) -> str:
    """The URL of a running server of ``kind`` (``redis``, ``pgsql``, ``mysql``), started on first use."""
    with _guard:
        if kind not in _servers:
            _servers[kind] = _STARTERS[kind]()
        return _servers[kind].url


def stop_all() -> None:
    with _guard:
        while _servers:
            _kind, server = _servers.popitem()
            with contextlib.suppress(Exception):
                server.stop()


atexit.register(stop_all)


# installation --------------------------------------------------------------
def _which(name: str) -> str | None:
    return shutil.which(name, path=_PATH)


def _pg_bin() -> Path | None:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parent.parent.name))
    return found[-1].parent if found else None


def _installed(kind: str) -> bool:
    if kind == "redis":
        return _which("redis-server") is not None
    if kind == "pgsql":
        return _pg_bin() is not None
    if kind == "chromium":
        return Path(CHROMIUM).is_file()
    return _which("mariadbd") is not None and _which("mariadb-install-db") is not None


def ensure_installed(kind: str) -> None:
    """Install the Debian package of ``kind`` (an engine, or ``chromium`` for the browser tests)
    if its binaries are missing (as root, once, under a lock)."""
    if _installed(kind):
        return
    if os.geteuid() != 0:
        raise EngineStartError(f"{_PACKAGES[kind]} is not installed and this process is not root: "
                               f"run `apt-get install -y {_PACKAGES[kind]}` first")
    with open(_APT_LOCK, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another test process may be installing right now
        if _installed(kind):
            return
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        for command in (["apt-get", "update"],
                        ["apt-get", "install", "-y", "--no-install-recommends", *_PACKAGES.values()]):
            done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)
            if done.returncode != 0:
                raise EngineStartError(f"`{' '.join(command)}` failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    if not _installed(kind):
        raise EngineStartError(f"{_PACKAGES[kind]} was installed but its binaries are still missing")


# helpers -------------------------------------------------------------------
_PR_SET_PDEATHSIG = 1


def _child_setup(user: str | None = None) -> Callable[[], None]:
    """``preexec_fn``: run as ``user`` (if given) and die with the test process."""
    account = pwd.getpwnam(user) if user else None

    def setup() -> None:
        if account is not None:
            os.setgid(account.pw_gid)
            os.setuid(account.pw_uid)  # clears the death signal, so it is set after
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)

    return setup


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _workdir(kind: str) -> Path:
    path = Path(tempfile.mkdtemp(prefix=f"g2a-{kind}-"))
    path.chmod(0o755)  # PostgreSQL runs as another user and must reach it
    return path


def _run(command: list[str], what: str, **kwargs: object) -> None:
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, **kwargs)  # type: ignore[call-overload]
    if done.returncode != 0:
        raise EngineStartError(f"{what} failed ({done.returncode}): {done.stdout[-2000:]}{done.stderr[-2000:]}")


def _wait(ready: Callable[[], bool], what: str, log: Path, proc: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + _START_TIMEOUT
    while time.monotonic() < deadline:
        if ready():
            return
        if proc is not None and proc.poll() is not None:
            break
        time.sleep(0.1)
    tail = log.read_text(errors="replace")[-3000:] if log.exists() else "(no log)"
    raise EngineStartError(f"{what} did not become ready:\n{tail}")


def _start(command: list[str], user: str | None = None, output: Path | None = None) -> subprocess.Popen[bytes]:
    """A server process that dies with us; its output goes to ``output`` (or nowhere)."""
    with open(output or os.devnull, "ab") as sink:
        return subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT, preexec_fn=_child_setup(user))


def _stop_process(proc: subprocess.Popen[bytes], workdir: Path,
                  sig: signal.Signals = signal.SIGTERM) -> Callable[[], None]:
    def stop() -> None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        shutil.rmtree(workdir, ignore_errors=True)

    return stop


# servers -------------------------------------------------------------------
def start_redis() -> Server:
    ensure_installed("redis")
    workdir, port = _workdir("redis"), free_port()
    log = workdir / "redis.log"
    proc = _start([_which("redis-server") or "redis-server", "--port", str(port), "--bind", "127.0.0.1",
                   "--save", "", "--appendonly", "no", "--dir", str(workdir), "--logfile", str(log),
                   "--daemonize", "no"])

    def ready() -> bool:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    _wait(ready, "redis-server", log, proc)
    return Server(f"redis://127.0.0.1:{port}/0", _stop_process(proc, workdir))


def start_postgres() -> Server:
    ensure_installed("pgsql")
    bindir = _pg_bin()
    assert bindir is not None
    workdir, port = _workdir("pgsql"), free_port()
    data, log = workdir / "data", workdir / "postgres.log"
    user = None
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root
        shutil.chown(workdir, "postgres")
        user = "postgres"
    _run([str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres", "-N"], "initdb",
         cwd=workdir, preexec_fn=_child_setup(user))
    # the postmaster itself (not pg_ctl, which detaches it) so it dies with us
    proc = _start([str(bindir / "postgres"), "-D", str(data), "-p", str(port), "-k", str(workdir),
                   "-h", "127.0.0.1", "-c", "fsync=off", "-c", "full_page_writes=off", "-c", "synchronous_commit=off"],
                  user, log)

    def ready() -> bool:
        done = subprocess.run([str(bindir / "pg_isready"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres"],
                              capture_output=True, timeout=10)
        return done.returncode == 0

    _wait(ready, "postgres", log, proc)
    return Server(f"postgresql+asyncpg://postgres@127.0.0.1:{port}/postgres",
                  _stop_process(proc, workdir, signal.SIGINT))  # SIGINT: fast shutdown


def start_mariadb() -> Server:
    ensure_installed("mysql")
    workdir, port = _workdir("mysql"), free_port()
    data, log = workdir / "data", workdir / "mariadb.log"
    user = ["--user=root"] if os.geteuid() == 0 else []
    _run([_which("mariadb-install-db") or "mariadb-install-db", "--no-defaults", *user, f"--datadir={data}",
          "--auth-root-authentication-method=normal", "--skip-test-db"], "mariadb-install-db")
    proc = _start([_which("mariadbd") or "mariadbd", "--no-defaults", *user, f"--datadir={data}", f"--port={port}",
                   "--bind-address=127.0.0.1", f"--socket={workdir}/sock", f"--pid-file={workdir}/pid",
                   f"--log-error={log}", "--skip-log-bin", "--innodb-flush-log-at-trx-commit=0",
                   "--innodb-buffer-pool-size=64M", "--max-connections=500"])
    client = _which("mariadb") or _which("mysql") or "mariadb"

    def ready() -> bool:
        done = subprocess.run([client, "--no-defaults", "-h", "127.0.0.1", "-P", str(port), "-u", "root",
                               "-e", "CREATE DATABASE IF NOT EXISTS grok2api"], capture_output=True, timeout=10)
        return done.returncode == 0

    _wait(ready, "mariadbd", log, proc)
    return Server(f"mysql+aiomysql://root@127.0.0.1:{port}/grok2api", _stop_process(proc, workdir))


_STARTERS: dict[str, Callable[[], Server]] = {"redis": start_redis, "pgsql": start_postgres, "mysql": start_mariadb}


# fixtures ------------------------------------------------------------------
@pytest.fixture(scope="session")
def redis_url() -> str:
    """``redis://127.0.0.1:<port>/0`` of a redis-server started for this test session."""
    return engine_url("redis")


@pytest.fixture(scope="session")
def pgsql_url() -> str:
    """``postgresql+asyncpg://postgres@127.0.0.1:<port>/postgres`` of a PostgreSQL started for this session."""
    return engine_url("pgsql")


@pytest.fixture(scope="session")
def mysql_url() -> str:
    """``mysql+aiomysql://root@127.0.0.1:<port>/grok2api`` of a MariaDB started for this session."""
    return engine_url("mysql")


async def fresh_database(kind: str) -> str:
    """The URL of a database of ``kind``'s test server that no other test has written to:
    a new PostgreSQL or MariaDB database, or a Redis database number emptied first."""
    base = engine_url(kind)
    name = f"w{uuid.uuid4().hex[:10]}"
    if kind == "redis":
        import redis.asyncio as redis

        url = re.sub(r"/\d+$", f"/{1 + uuid.uuid4().int % 15}", base)
        async with redis.from_url(url) as client:
            await client.flushdb()
        return url
    if kind == "pgsql":
        import asyncpg

        conn = await asyncpg.connect(base.replace("postgresql+asyncpg://", "postgresql://"))
        await conn.execute(f"CREATE DATABASE {name}")
        await conn.close()
    else:
        import aiomysql  # type: ignore[import-untyped]

        host, port = re.search(r"@([\d.]+):(\d+)/", base).groups()  # type: ignore[union-attr]
        conn = await aiomysql.connect(host=host, port=int(port), user="root")
        async with conn.cursor() as cur:
            await cur.execute(f"CREATE DATABASE {name}")
        conn.close()
    return re.sub(r"/[^/]+$", f"/{name}", base)


def storage_settings(kind: str, data_dir: Path) -> Settings:
    """Settings for the storage engine ``kind`` on its test server (SQLite: a file in ``data_dir``)."""
    url = "" if kind == "local" else engine_url(kind)
    return Settings(data_dir=data_dir, server=ServerSettings(storage_type=kind, storage_url=url))


def storage_factory(kind: str) -> StorageFactory:
    """The factory the installed plugin ``storage_<kind>`` registers."""
    registry = StorageRegistry()
    for entry in metadata.entry_points(group=GROUP, name=f"storage_{kind}"):
        entry.load().grok2api_register_storage(storage=registry)
    if kind not in registry.factories:
        raise LookupError(f"no installed storage plugin registers {kind!r}")
    return registry.factories[kind]


@pytest.fixture
async def make_storage(tmp_path: Path) -> AsyncIterator[Callable[..., Awaitable[Storage]]]:
    """``await make_storage("pgsql")``: an opened storage of that engine on its test server, closed after the test.

    Calls with the same ``settings`` share one database, as two workers would. Server
    engines keep the data of earlier tests: use unique keys.
    """
    opened: list[Storage] = []

    async def make(kind: str = "local", settings: Settings | None = None) -> Storage:
        store = storage_factory(kind)(settings or storage_settings(kind, tmp_path / "data"))
        await store.open()
        opened.append(store)
        return store

    yield make
    for store in opened:
        await store.close()
