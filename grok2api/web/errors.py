"""OpenAI-style errors: one exception type for the whole gateway and the middleware that renders it.

Every failure leaves the process as ``{"error": {"message", "type", "param", "code"}}``
with an honest status; internal details are logged, never sent.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from http import HTTPStatus

import orjson
from aiohttp import web

from grok2api.keys.limits import KeyExpired, KeyLimitExceeded, ModelNotAllowed
from grok2api.keys.service import QuotaExceeded
from grok2api.logs.logger import logger
from grok2api.pool.errors import AccountNotFound, InvalidAccountField, NoAccountAvailable
from grok2api.upstream.errors import Failure, UpstreamError, http_status
from grok2api.web.appkeys import REGISTRIES

#: the ``code`` of the error a request ended with, for the request observers
ERROR_CODE = web.RequestKey("error_code", str)

_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    408: "invalid_request_error",
    409: "invalid_request_error",
    413: "invalid_request_error",
    415: "invalid_request_error",
    417: "invalid_request_error",
    422: "invalid_request_error",
    429: "rate_limit_error",
}


class ApiError(Exception):
    """An error the client should see, with the OpenAI fields spelled out."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        code: str | None = None,
        param: str | None = None,
        type: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.param = param
        self.type = type or _TYPES.get(status, "server_error")
        self.headers = dict(headers or {})

    def body(self) -> dict[str, dict[str, str | None]]:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}

    def response(self) -> web.Response:
        response = web.Response(
            status=self.status,
            body=orjson.dumps(self.body()),
            content_type="application/json",
            headers=self.headers,
        )
        if self.status == 408:  # the rest of a body that did not arrive in time is not waited for
            response.force_close()
        return response


def invalid(message: str, param: str | None = None, code: str = "invalid_value") -> ApiError:
    """A 400 naming the offending field."""
    return ApiError(400, message, code=code, param=param)


def _from_http_exception(exc: web.HTTPException) -> ApiError:
    status = exc.status
    if status == 404:
        return ApiError(404, "Not found: no route matches this path", code="not_found")
    if status == 405:
        allowed = ", ".join(sorted(getattr(exc, "allowed_methods", ()) or ()))
        return ApiError(405, f"Method not allowed; use {allowed}", code="method_not_allowed",
                        headers={"Allow": allowed})
    if status == 413:
        return ApiError(413, "Request body too large", code="request_too_large")
    return ApiError(status, exc.reason or "Request failed", code=None)


#: aiohttp's own answers that pass the app's signals, by status: (message, param, code); never
#: its text, which may quote a request header back (``Unknown Expect: <value>``)
_AIOHTTP_ANSWERS = {
    417: ("Expectation failed: only 'Expect: 100-continue' is supported", "Expect", "expectation_failed"),
    500: ("Internal server error", None, "internal_error"),
    504: ("The request took too long to handle", None, "timeout"),
}


def openai_error_body(response: web.StreamResponse) -> None:
    """``on_response_prepare``: an error aiohttp wrote as text (an unknown ``Expect``, a crash
    outside the error middleware, in HTML when the client accepts it) leaves as an OpenAI
    error object instead."""
    status = response.status
    if status < 400 or not isinstance(response, web.Response):
        return
    if response.content_type != "text/plain" and not (status >= 500 and response.content_type == "text/html"):
        return
    message, param, code = _AIOHTTP_ANSWERS.get(status) or (_phrase(status), None, None)
    body = orjson.dumps(ApiError(status, message, code=code, param=param).body())
    response.body = body
    response.content_type = "application/json"
    response.headers["Content-Length"] = str(len(body))


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Request failed"


def upstream_error(exc: UpstreamError) -> ApiError:
    """The client's view of a failed upstream call: a status by failure class (429 with the
    upstream's ``Retry-After``, 502/503/504), and OpenAI's content-policy error for a
    prompt Grok's moderation refused."""
    status, code = http_status(exc.failure)
    if exc.failure is Failure.MODERATED:
        return ApiError(status, f"Grok refused this request (content moderation): {exc.message}", param="prompt",
                        code=code)
    headers = {"Retry-After": str(max(1, round(exc.retry_after)))} if exc.retry_after and status == 429 else None
    return ApiError(status, f"Grok upstream failed: {exc.message}", code=code, headers=headers)


def from_domain(exc: Exception) -> ApiError | None:
    """The HTTP form of the kernel's domain errors: the pool's and the keys' refusals and
    failed upstream calls."""
    if isinstance(exc, UpstreamError):
        return upstream_error(exc)
    if isinstance(exc, NoAccountAvailable):
        if exc.retry_after is None:
            return ApiError(503, exc.message, code="no_available_token")
        return ApiError(429, exc.message, code="rate_limit_exceeded", headers={"Retry-After": str(exc.retry_after)})
    if isinstance(exc, QuotaExceeded):
        return ApiError(429, str(exc), code="daily_quota_exceeded")
    if isinstance(exc, KeyLimitExceeded):
        return ApiError(429, exc.message, code=f"{exc.limit}_limit_exceeded", param=exc.limit,
                        headers={"Retry-After": str(exc.retry_after)} if exc.retry_after else None)
    if isinstance(exc, KeyExpired):
        return ApiError(403, str(exc), code="key_expired")
    if isinstance(exc, ModelNotAllowed):
        return ApiError(403, str(exc), param="model", code="model_not_allowed")
    if isinstance(exc, AccountNotFound):
        return ApiError(404, "No such account", code="token_not_found")
    if isinstance(exc, InvalidAccountField):
        return invalid(exc.message, exc.field)
    return None


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _render(request: web.Request, error: ApiError) -> web.StreamResponse:
    """In the shape of the capability whose route this is (Anthropic's, say), else OpenAI's."""
    if error.code:
        request[ERROR_CODE] = error.code
    resource = request.match_info.route.resource
    registries = request.app.get(REGISTRIES)
    if resource is not None and registries is not None:
        for capability in registries.capabilities.capabilities.values():
            if capability.render_error is not None and capability.path == resource.canonical:
                return capability.render_error(error)
    return error.response()


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Render :class:`ApiError`, domain errors, aiohttp's HTTP exceptions and crashes as API errors."""
    try:
        return await handler(request)
    except ApiError as exc:
        return _render(request, exc)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return _render(request, _from_http_exception(exc))
    except Exception as exc:
        mapped = from_domain(exc)
        if mapped is not None:
            return _render(request, mapped)
        logger.exception("unhandled error on {} {}", request.method, request.path)
        return _render(request, ApiError(500, "Internal server error", code="internal_error"))
