"""Known secrets, a raw HTTP/1.1 client for bytes no HTTP library would send, and a real
``grok2api serve`` subprocess in front of the fake Grok."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

ADMIN_PASSWORD = "Correct-Horse-Admin-8c1f"
API_KEY = "sk-global-secret-5d2e9a7b41"
MANAGED_KEY = "sk-managed-secret-77f3c2d10e"
SSO_TOKEN = "eyJhbGciOiJIUzI1NiJ9.eyJzZXNzaW9uX2lkIjoic2VjcmV0LXNzby0wMDcifQ.c2lnbmF0dXJlLXNzby0wMDc"
CF_CLEARANCE = "cfclear-secret-0a9b8c7d6e5f"
SECRETS = (ADMIN_PASSWORD, API_KEY, MANAGED_KEY, SSO_TOKEN, CF_CLEARANCE)


#: where :func:`json_nesting` splices deeply nested arrays into a JSON value
NESTED = "<nested>"


def json_nesting(value: object, depth: int = 0) -> bytes:
    """``value`` as JSON with every :data:`NESTED` string replaced by arrays ``depth`` deep
    (deeper than the encoders here accept, so spliced in as text)."""
    return orjson.dumps(value).replace(orjson.dumps(NESTED), b"[" * depth + b'"x"' + b"]" * depth)


@dataclass
class RawResponse:
    status: int
    headers: dict[str, str]
    body: bytes
    raw: bytes

    def json(self) -> Any:
        return orjson.loads(self.body)


def parse_response(raw: bytes) -> RawResponse:
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    if headers.get("transfer-encoding") == "chunked":
        body = _dechunk(body)
    return RawResponse(int(lines[0].split()[1]), headers, body, raw)


def _dechunk(data: bytes) -> bytes:
    out = b""
    while data:
        size_line, _, data = data.partition(b"\r\n")
        size = int(size_line.split(b";")[0] or b"0", 16)
        if size == 0:
            break
        out, data = out + data[:size], data[size + 2:]
    return out


def exchange(port: int, data: bytes, timeout: float = 10.0) -> RawResponse:
    """Send ``data`` as is (one request, ``Connection: close`` up to the caller) and read to EOF."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return parse_response(b"".join(chunks))


def request_bytes(method: str, path: str, headers: dict[str, str] | None = None, body: bytes = b"",
                  raw_headers: bytes = b"") -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", "Connection: close"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    if body or method == "POST":
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n").encode() + raw_headers + b"\r\n" + body


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Served:
    """A ``grok2api serve`` child; :meth:`stop` ends it and keeps what it wrote."""

    process: subprocess.Popen[bytes]
    port: int
    cwd: Path
    output: dict[str, bytes] = field(default_factory=dict)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
        out, err = self.process.communicate(timeout=30)
        self.output = {"stdout": out, "stderr": err}

    def log_files(self) -> dict[str, bytes]:
        return {str(p): p.read_bytes() for p in (self.cwd / "logs").glob("*")}


def gateway_env(data_dir: Path, port: int, grok_base: str, **settings: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GROK2API_", "SERVER_"))}
    env.update({
        "DATA_DIR": str(data_dir), "SERVER_HOST": "127.0.0.1", "SERVER_PORT": str(port),
        "GROK2API_APP__APP_KEY": ADMIN_PASSWORD, "GROK2API_APP__API_KEY": API_KEY,
        "GROK2API_GROK__CF_CLEARANCE": CF_CLEARANCE, "GROK2API_GROK__BASE_URL": grok_base,
        "GROK2API_GROK__ASSETS_URL": grok_base + "/assets", "GROK2API_TOKEN__AUTO_REFRESH": "false",
        "GROK2API_GROK__MAX_RETRY": "0", "LOG_LEVEL": "DEBUG",
    })
    env.update({f"GROK2API_{name.upper()}": value for name, value in settings.items()})
    return env


def cli(env: dict[str, str], cwd: Path, *args: str) -> None:
    subprocess.run([sys.executable, "-m", "grok2api", *args], env=env, cwd=cwd, check=True, capture_output=True,
                   timeout=60)


def serve(env: dict[str, str], cwd: Path, port: int) -> Served:
    process = subprocess.Popen([sys.executable, "-m", "grok2api", "serve"], env=env, cwd=cwd,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    served = Served(process, port, cwd)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            served.stop()
            raise RuntimeError(f"grok2api serve exited: {served.output['stderr'][-2000:]!r}")
        try:
            if exchange(port, request_bytes("GET", "/health"), timeout=2).status == 200:
                return served
        except OSError:
            time.sleep(0.1)
    served.stop()
    raise RuntimeError("grok2api serve did not answer /health within 30 s")
