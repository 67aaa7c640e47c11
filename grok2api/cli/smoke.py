"""``grok2api smoke``: does a running gateway answer as it should, end to end?

Health, the console's login page, the model list, a chat answer as JSON and as a stream,
the image method and one picture (as a stream too with ``--check-image-stream``). Each
check prints one line; the first that fails prints the status and the first 500
characters of the body and ends the command with 1. An empty base URL is a usage error
(2). Without ``--api-key`` the ``/v1`` checks run only if the gateway serves this caller
without one (a loopback client while no key exists), else they are skipped, as the
original's smoke test skipped them. Standard library only, so it runs anywhere Python
does.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

LOGIN_STATUSES = (200, 302, 307, 308)
IMAGE_METHODS = ("legacy", "imagine_ws_experimental")
#: ids that are not chat models: skipped when ``--model`` does not name one
NOT_CHAT = ("imagine", "video", "heavy")
BODY_SHOWN = 500


def _env_timeout() -> float:
    try:
        return float(os.environ.get("GROK2API_SMOKE_TIMEOUT") or 5)
    except ValueError:
        return 5.0


def arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--base-url", default=os.environ.get("GROK2API_BASE_URL", "http://127.0.0.1:8000"),
                        help="the gateway (env GROK2API_BASE_URL; default http://127.0.0.1:8000)")
    parser.add_argument("--api-key", default=os.environ.get("GROK2API_API_KEY", ""),
                        help="an API key for the /v1 checks (env GROK2API_API_KEY)")
    parser.add_argument("--timeout", type=float, default=_env_timeout(),
                        help="seconds each quick check may wait (env GROK2API_SMOKE_TIMEOUT; default 5, at least 0.5)")
    parser.add_argument("--upstream-timeout", type=float, default=120.0,
                        help="seconds the chat and image checks may wait between bytes: they reach Grok (default 120)")
    parser.add_argument("--model", default="", help="the chat model (default: the first chat model /v1/models lists)")
    parser.add_argument("--image-model", default="grok-imagine-1.0", help="the image model (default grok-imagine-1.0)")
    parser.add_argument("--check-image-stream", action="store_true", help="also ask for a picture as a stream")


class CheckFailed(Exception):
    pass


@dataclass
class Answer:
    status: int
    content_type: str
    body: bytes

    def json(self) -> dict[str, Any]:
        """The body's JSON object; ``{}`` when it is none (the check then finds what it needs missing)."""
        try:
            data = json.loads(self.body)
        except ValueError:
            return {}
        return data if isinstance(data, dict) else {}

    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """The login check wants the redirect itself, not the page it leads to."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


class Smoke:
    def __init__(self, args: argparse.Namespace) -> None:
        self.base = args.base_url.strip().rstrip("/")
        self.key = args.api_key.strip()
        self.timeout = max(0.5, args.timeout)
        self.upstream_timeout = max(self.timeout, args.upstream_timeout)
        self.args = args
        self._opener = urllib.request.build_opener(_NoRedirects())

    def request(self, method: str, path: str, body: dict[str, Any] | None = None, *, auth: bool = True,
                timeout: float | None = None) -> Answer:
        headers = {"Accept": "*/*"}
        if auth and self.key:
            headers["Authorization"] = f"Bearer {self.key}"
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        request = urllib.request.Request(self.base + path, data=data, headers=headers, method=method)
        try:
            with self._opener.open(request, timeout=timeout or self.timeout) as resp:
                return Answer(resp.status, resp.headers.get("Content-Type", ""), resp.read())
        except urllib.error.HTTPError as exc:
            return Answer(exc.code, exc.headers.get("Content-Type", ""), exc.read())
        except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:  # refused, timed out, cut off
            reason = getattr(exc, "reason", exc)
            raise CheckFailed(f"{method} {path}: no answer from {self.base}: {reason}") from None

    @staticmethod
    def fail(what: str, answer: Answer, why: str = "") -> CheckFailed:
        detail = f" ({why})" if why else ""
        return CheckFailed(f"{what}: HTTP {answer.status}{detail}: {answer.text()[:BODY_SHOWN]}")

    def expect(self, what: str, answer: Answer, statuses: tuple[int, ...] = (200,)) -> Answer:
        if answer.status not in statuses:
            raise self.fail(what, answer)
        return answer

    # -- the checks ------------------------------------------------------------------

    def run(self) -> None:
        health = self.expect("GET /health", self.request("GET", "/health", auth=False)).json()
        ok("health", f"runtime {health.get('runtime', '?')}, version {health.get('version', '?')}")
        login = self.expect("GET /login", self.request("GET", "/login", auth=False), LOGIN_STATUSES)
        ok("login page", f"HTTP {login.status}")
        models = self.request("GET", "/v1/models")
        if models.status == 401 and not self.key:
            print("skip  /v1 checks: the gateway wants an API key (give --api-key)")
            return
        listed = [m.get("id") for m in self.expect("GET /v1/models", models).json().get("data") or []
                  if isinstance(m, dict)]
        ok("models", f"{len(listed)} listed")
        model = self.chat_model(listed)
        self.chat(model)
        self.chat_stream(model)
        method = self.expect("GET /v1/images/method", self.request("GET", "/v1/images/method")).json()
        if method.get("image_generation_method") not in IMAGE_METHODS:
            raise CheckFailed(f"GET /v1/images/method: image_generation_method is "
                              f"{method.get('image_generation_method')!r}, not one of {', '.join(IMAGE_METHODS)}")
        ok("image method", method["image_generation_method"])
        if self.args.image_model not in listed:
            raise CheckFailed(f"the image model {self.args.image_model!r} is not in /v1/models")
        self.image()
        if self.args.check_image_stream:
            self.image_stream()

    def chat_model(self, listed: list[Any]) -> str:
        if self.args.model:
            if self.args.model not in listed:
                raise CheckFailed(f"the model {self.args.model!r} is not in /v1/models")
            return str(self.args.model)
        for model in listed:
            if isinstance(model, str) and not any(word in model for word in NOT_CHAT):
                return model
        raise CheckFailed("/v1/models lists no chat model")

    def _chat_body(self, model: str, stream: bool) -> dict[str, Any]:
        return {"model": model, "messages": [{"role": "user", "content": "Reply with the word OK."}],
                "stream": stream}

    def chat(self, model: str) -> None:
        what = "POST /v1/chat/completions"
        answer = self.expect(what, self.request("POST", "/v1/chat/completions", self._chat_body(model, False),
                                                timeout=self.upstream_timeout))
        choices = answer.json().get("choices") or [{}]
        content = ((choices[0] or {}).get("message") or {}).get("content")
        if not isinstance(content, str) or not content.strip():
            raise self.fail(what, answer, "no answer text")
        ok("chat", f"{model}: {content.strip()[:60]!r}")

    def chat_stream(self, model: str) -> None:
        what = "POST /v1/chat/completions (stream)"
        answer = self.expect(what, self.request("POST", "/v1/chat/completions", self._chat_body(model, True),
                                                timeout=self.upstream_timeout))
        events = self.events(what, answer)
        if not events or events[-1] != "[DONE]":
            raise self.fail(what, answer, "the stream did not end with data: [DONE]")
        chunks = events[:-1]
        if not chunks or any("error" in c for c in chunks):
            raise self.fail(what, answer, "no chunks, or an error chunk")
        ok("chat stream", f"{model}: {len(chunks)} chunks")

    def _image_body(self, stream: bool) -> dict[str, Any]:
        return {"prompt": "smoke test image", "model": self.args.image_model, "n": 1, "stream": stream,
                "response_format": "b64_json"}

    def image(self) -> None:
        what = "POST /v1/images/generations"
        answer = self.expect(what, self.request("POST", "/v1/images/generations", self._image_body(False),
                                                timeout=self.upstream_timeout))
        data = answer.json().get("data") or [{}]
        if not ((data[0] or {}).get("b64_json") or (data[0] or {}).get("url")):
            raise self.fail(what, answer, "no picture")
        ok("image", self.args.image_model)

    def image_stream(self) -> None:
        what = "POST /v1/images/generations (stream)"
        answer = self.expect(what, self.request("POST", "/v1/images/generations", self._image_body(True),
                                                timeout=self.upstream_timeout))
        events = [e for e in self.events(what, answer) if e != "[DONE]"]
        if any("error" in e for e in events) or not any(str(e.get("type", "")).endswith(".completed")
                                                        for e in events):
            raise self.fail(what, answer, "no completed picture, or an error event")
        ok("image stream", f"{len(events)} events")

    def events(self, what: str, answer: Answer) -> list[Any]:
        """The ``data:`` payloads of an SSE body: JSON objects, and ``"[DONE]"`` as it is."""
        if "text/event-stream" not in answer.content_type:
            raise self.fail(what, answer, f"Content-Type {answer.content_type!r}, not text/event-stream")
        payloads: list[Any] = []
        for line in answer.text().splitlines():
            if line.startswith("data:"):
                data = line[5:].strip()
                try:
                    payloads.append(data if data == "[DONE]" else json.loads(data))
                except ValueError:
                    raise self.fail(what, answer, f"a data line is not JSON: {data[:80]!r}") from None
                if data != "[DONE]" and not isinstance(payloads[-1], dict):
                    raise self.fail(what, answer, "a data line is not a JSON object")
        return payloads


def ok(name: str, detail: str) -> None:
    print(f"ok    {name:<13} {detail}", flush=True)


def run(args: argparse.Namespace) -> int:
    smoke = Smoke(args)
    if not smoke.base:
        print("grok2api smoke: --base-url (or GROK2API_BASE_URL) is empty", file=sys.stderr)
        return 2
    try:
        smoke.run()
    except CheckFailed as exc:
        print(f"FAIL  {exc}", file=sys.stderr)
        return 1
    print(f"smoke test passed: {smoke.base}")
    return 0
