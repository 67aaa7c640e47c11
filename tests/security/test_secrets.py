"""Item 1 of issue 14: no secret in any log line, in the child's output or in any response.

A real ``grok2api serve`` runs with a known admin password, global API key, managed
key, account SSO token and ``cf_clearance``; every error path of the hardening issue is
provoked, then its log files, stdout, stderr and every answer are searched for them.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from grok2api.logs.logger import logger, setup_logging
from grok2api.testing.fake_grok import FakeGrok

from .conftest import StartServed
from .support import (
    ADMIN_PASSWORD,
    API_KEY,
    MANAGED_KEY,
    NESTED,
    SECRETS,
    SSO_TOKEN,
    RawResponse,
    exchange,
    json_nesting,
    request_bytes,
)

AUTH = {"Authorization": f"Bearer {API_KEY}", "Content-Type": "application/json"}


def _chat(messages: object, headers: dict[str, str] | None = None, depth: int = 0) -> bytes:
    body = json_nesting({"model": "grok-4", "messages": messages}, depth)
    return request_bytes("POST", "/v1/chat/completions", {**AUTH, **(headers or {})}, body)


def _provocations() -> list[bytes]:
    """Every input the issue lists, and the key and login checks with wrong and right values."""
    user = {"role": "user", "content": "hi"}
    return [
        request_bytes("GET", "/v1/files/image/" + "a" * 300),
        request_bytes("GET", "/v1/files/image/loop-a"),
        request_bytes("GET", "/v1/models", raw_headers=b"Authorization: Bearer \xff\xfe" + API_KEY.encode() + b"\r\n"),
        request_bytes("GET", "/v1/models", {"Authorization": "Bearer sk-presented-but-wrong-0001"}),
        request_bytes("GET", "/v1/models", {"Authorization": f"Bearer {MANAGED_KEY}"}),
        _chat([{"role": ["user"], "content": "hi"}]),
        _chat([{"role": {"user": 1}, "content": "hi"}]),
        _chat([{"role": "user", "content": [{"type": "input_audio", "input_audio": {"data": "AAAA", "format": []}}]}]),
        _chat([user, {"role": "assistant", "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "f", "arguments": NESTED}}]}], depth=300),
        request_bytes("POST", "/api/v1/admin/login", {"Content-Type": "application/json"},
                      json_nesting({"username": NESTED, "password": "x"}, 1000)),
        request_bytes("POST", "/api/v1/admin/login", {"Content-Type": "application/json"},
                      orjson.dumps({"username": "admin", "password": "wrong-password"})),
        request_bytes("POST", "/api/v1/admin/login", {"Content-Type": "application/json"},
                      orjson.dumps({"username": "admin", "password": ADMIN_PASSWORD})),
        request_bytes("POST", "/v1/chat/completions", {**AUTH, "Content-Encoding": "gzip"}, b'{"model": "x"}'),
        request_bytes("POST", "/v1/chat/completions", {**AUTH, "Content-Encoding": "deflate"}, b'{"model": "x"}'),
        _chat([user], {"Authorization": f"Bearer {MANAGED_KEY}"}),
        # answered by aiohttp itself: an oversized header, too many, a bad method, a bad
        # path, an unknown Expect, Content-Length with Transfer-Encoding, a control byte
        request_bytes("GET", "/v1/models", {**AUTH, "X-Big": "b" * 9000}),
        request_bytes("GET", "/v1/models", {**AUTH, **{f"X-H{i}": "1" for i in range(200)}}),
        request_bytes("G@T", "/v1/models", AUTH),
        request_bytes("GET", "/v1/m\u00e9dels", AUTH),
        request_bytes("POST", "/v1/chat/completions", {**AUTH, "Expect": "garbage"}, b"{}"),
        request_bytes("POST", "/v1/chat/completions", {**AUTH, "Transfer-Encoding": "chunked"}, b"0\r\n\r\n"),
        request_bytes("GET", "/v1/models", AUTH, raw_headers=b"X-Other: bad\x01byte\r\n"),
    ]


async def test_no_secret_in_logs_output_or_answers(served: StartServed, fake_grok: FakeGrok) -> None:
    child = await served()
    image_dir = child.cwd / "data" / "tmp" / "image"
    image_dir.mkdir(parents=True, exist_ok=True)
    os.symlink("loop-b", image_dir / "loop-a")
    os.symlink("loop-a", image_dir / "loop-b")
    answers: list[RawResponse] = []
    for data in _provocations():
        answers.append(await asyncio.to_thread(exchange, child.port, data))
    fake_grok.inject("server_error", status=500)
    answers.append(await asyncio.to_thread(exchange, child.port, _chat([{"role": "user", "content": "hi"}])))
    fake_grok.inject("invalid_credentials")
    answers.append(await asyncio.to_thread(exchange, child.port, _chat([{"role": "user", "content": "hi"}])))
    await asyncio.to_thread(child.stop)

    assert all(a.status < 500 or a.json()["error"]["code"] != "internal_error" for a in answers)
    assert any(a.status == 200 for a in answers), "the managed key's chat should have succeeded"
    sinks = {**child.log_files(), **child.output, **{f"answer {i}": a.raw for i, a in enumerate(answers)}}
    assert child.log_files(), "the gateway wrote no log file"
    for name, text in sinks.items():
        for secret in SECRETS:
            assert secret.encode() not in text, f"{secret[:6]}… found in {name}"
    stderr = child.output["stderr"]
    assert b"malformed request" in stderr and b"failed login" in stderr  # the paths were logged


def test_tracebacks_show_no_variable_values(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """loguru's ``diagnose`` would print ``password`` next to the frame that holds it."""
    setup_logging("INFO", log_dir=tmp_path)
    password = ADMIN_PASSWORD

    def check(presented: str) -> None:
        raise ValueError(f"key check failed for Bearer {presented}")

    try:
        check(API_KEY + password[:0])
    except ValueError:
        logger.exception("unhandled error")
    logger.complete()
    written = capsys.readouterr().err + "".join(p.read_text() for p in tmp_path.glob("*.log"))
    assert "ValueError" in written and "check(" in written  # the traceback itself is there
    assert ADMIN_PASSWORD not in written and API_KEY not in written


def test_stdlib_records_are_masked(capsys: pytest.CaptureFixture[str]) -> None:
    import logging

    setup_logging("INFO", log_dir=None)
    logging.getLogger("aiohttp.server").error("Error handling request: Authorization: Bearer %s", API_KEY)
    err = capsys.readouterr().err
    assert "aiohttp.server" in err and API_KEY not in err


def test_errors_nothing_caught_are_masked() -> None:
    """Python would print an uncaught error's text as is; through loguru it is masked."""
    code = (
        "import threading\n"
        "from grok2api.logs.logger import setup_logging\n"
        "setup_logging('INFO', log_dir=None)\n"
        f"def fail(): raise RuntimeError('token={SSO_TOKEN}')\n"
        "thread = threading.Thread(target=fail); thread.start(); thread.join()\n"
        f"raise RuntimeError('connect postgresql://u:{ADMIN_PASSWORD}@db/x failed')\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 1 and result.stderr.count("uncaught error") == 2
    assert SSO_TOKEN not in result.stderr and ADMIN_PASSWORD not in result.stderr
