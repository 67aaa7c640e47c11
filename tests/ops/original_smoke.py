"""The original product's ``scripts/smoke_test.py``, re-implemented from its description
(reference inventory §12) for the tests: our gateway must pass the smoke test its
operators already run. Standard library only, as the original; run it as a script.

- ``--base-url`` (env ``GROK2API_BASE_URL``, default ``http://127.0.0.1:8000``),
  ``--api-key`` (env ``GROK2API_API_KEY``), ``--timeout`` (env ``GROK2API_SMOKE_TIMEOUT``,
  default 5, at least 0.5), ``--check-image-stream``; an empty base URL exits 2;
- ``GET /health`` is 200 and its ``runtime`` is printed; a network error aborts;
- ``GET /login`` is 200, 302, 307 or 308;
- with an API key: ``GET /v1/models`` is 200; ``GET /v1/images/method`` is 200 with
  ``image_generation_method`` ``legacy`` or ``imagine_ws_experimental``; with
  ``--check-image-stream`` a streamed ``grok-imagine-1.0`` picture answers 200 as
  ``text/event-stream`` and is read to the end; without a key these are skipped;
- a failed check exits with its status and the first 500 characters of the body.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.error
import urllib.request
from typing import Any


class _Keep(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


OPENER = urllib.request.build_opener(_Keep())


def call(base: str, path: str, timeout: float, key: str = "", body: dict[str, Any] | None = None
         ) -> tuple[int, str, bytes]:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    request = urllib.request.Request(base + path, data=data, headers=headers, method="POST" if data else "GET")
    try:
        with OPENER.open(request, timeout=timeout) as resp:
            return resp.status, resp.headers.get("Content-Type", ""), resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers.get("Content-Type", ""), exc.read()


def need(ok: bool, what: str, status: int, body: bytes) -> None:
    if not ok:
        sys.exit(f"{what} failed: status={status} body={body.decode('utf-8', 'replace')[:500]}")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--base-url", default=os.environ.get("GROK2API_BASE_URL", "http://127.0.0.1:8000"))
    parser.add_argument("--api-key", default=os.environ.get("GROK2API_API_KEY", ""))
    parser.add_argument("--timeout", type=float, default=float(os.environ.get("GROK2API_SMOKE_TIMEOUT", "5")))
    parser.add_argument("--check-image-stream", action="store_true")
    args = parser.parse_args()
    base = args.base_url.strip().rstrip("/")
    if not base:
        print("base url is empty", file=sys.stderr)
        return 2
    timeout = max(0.5, args.timeout)
    try:
        status, _, body = call(base, "/health", timeout)
    except urllib.error.URLError as exc:
        sys.exit(f"/health unreachable: {exc}")
    need(status == 200, "/health", status, body)
    print("runtime:", json.loads(body).get("runtime"))
    status, _, body = call(base, "/login", timeout)
    need(status in (200, 302, 307, 308), "/login", status, body)
    if not args.api_key:
        print("no API key: /v1 checks skipped")
        return 0
    status, _, body = call(base, "/v1/models", timeout, args.api_key)
    need(status == 200, "/v1/models", status, body)
    status, _, body = call(base, "/v1/images/method", timeout, args.api_key)
    need(status == 200, "/v1/images/method", status, body)
    method = json.loads(body).get("image_generation_method")
    need(method in ("legacy", "imagine_ws_experimental"), "/v1/images/method", status, body)
    if args.check_image_stream:
        status, content_type, body = call(base, "/v1/images/generations", timeout, args.api_key, {
            "prompt": "smoke test image", "model": "grok-imagine-1.0", "n": 1, "stream": True,
            "response_format": "b64_json"})
        need(status == 200 and "text/event-stream" in content_type, "/v1/images/generations", status, body)
    print("smoke test passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
