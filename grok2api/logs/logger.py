"""Logging through loguru: a console sink and JSON lines under ``logs/``, secrets masked.

Masking happens in a patcher, so a secret passed to any logger call (message, extra
fields, the text of an exception) is hidden before any sink sees it. Tracebacks are
rendered there too, as plain text without local variables: loguru's ``diagnose`` would
print every value in every frame (the settings object, a presented API key). The
standard library's loggers (aiohttp's server and access loggers, asyncio) are routed
into loguru, so their records are masked the same way.
"""

from __future__ import annotations

import logging
import re
import sys
import threading
import traceback
from contextvars import ContextVar
from pathlib import Path
from types import TracebackType
from typing import Any

from aiohttp.http import HttpProcessingError
from aiohttp.web import RequestPayloadError
from loguru import logger

__all__ = ["REQUEST_ID", "logger", "mask_secret", "mask_text", "setup_logging"]

#: the id of the request being served: records logged meanwhile carry it as ``extra["request_id"]``
#: (a context variable costs a tenth of ``logger.contextualize``, which every request would pay)
REQUEST_ID: ContextVar[str | None] = ContextVar("request_id", default=None)

_PATTERNS = [
    # cookies and key=value pairs: sso, sso-rw, cf_clearance, api_key, password, token
    re.compile(r"(?i)\b(sso(?:-rw)?|cf_clearance|__cf_bm|api_key|app_key|password|passwd|token|secret)(\s*[=:]\s*\"?)([^\s;,\"&]+)"),
    # bearer credentials
    re.compile(r"(?i)(bearer\s+)([^\s\"',]+)()"),
    # credentials inside URLs: scheme://user:pass@host
    re.compile(r"(://[^/\s:@]*:)([^@\s/]+)(@)"),
    # JWT-looking strings (SSO tokens) and sk- keys wherever they appear
    re.compile(r"()(eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-.]{8,}|sk-[A-Za-z0-9_\-]{12,})()"),
]


def mask_secret(value: str) -> str:
    """Keep just enough of a secret to tell two apart: ``abcd…wxyz``; a short one keeps its
    last quarter (``***en``), and only one under four characters is all ``***``."""
    if len(value) > 12:
        return f"{value[:4]}…{value[-4:]}"
    tail = len(value) // 4
    return f"***{value[-tail:]}" if tail else "***"


def mask_text(text: str) -> str:
    """Mask every secret-looking substring of a free text (log lines, error bodies)."""
    for pattern in _PATTERNS:
        if pattern.groups == 3 and pattern.pattern.startswith("(?i)\\b"):
            text = pattern.sub(lambda m: f"{m.group(1)}{m.group(2)}{mask_secret(m.group(3))}", text)
        else:
            text = pattern.sub(lambda m: f"{m.group(1)}{mask_secret(m.group(2))}{m.group(3)}", text)
    return text


def _patch(record: Any) -> None:
    request_id = REQUEST_ID.get()
    if request_id is not None:
        record["extra"].setdefault("request_id", request_id)
    message = record["message"]
    error = record["exception"]
    if error is not None:
        # rendered here, where it can be masked; the sinks then have no exception to render
        message = f"{message}\n{''.join(traceback.format_exception(error.type, error.value, error.traceback))}"
        record["exception"] = None
    record["message"] = mask_text(message).rstrip("\n")
    for key, value in list(record["extra"].items()):
        if isinstance(value, str):
            record["extra"][key] = mask_text(value)


class _StdlibToLoguru(logging.Handler):
    """Standard-library records into loguru. A malformed request (aiohttp's parser or
    decompressor refusing it) is the client's fault: one warning line, no traceback."""

    def emit(self, record: logging.LogRecord) -> None:
        level: str | int = record.levelname if record.levelname in _LEVELS else record.levelno
        error = record.exc_info[1] if record.exc_info else None
        message = record.getMessage()
        if isinstance(error, HttpProcessingError | RequestPayloadError):
            logger.warning("{}: malformed request ({}): {}", record.name, message, _reason(error))
            return
        logger.opt(exception=record.exc_info or None).log(level, "{}: {}", record.name, message)


_LEVELS = frozenset({"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"})
_STATUS_LINE = re.compile(r"^\d{3}, message:$")
_QUOTED_BYTES = re.compile(r"""\bb['"]""")


def _reason(error: BaseException) -> str:
    """aiohttp's description of a refusal, without the echoed request bytes and caret under them."""
    for line in str(error).splitlines():
        line = _QUOTED_BYTES.split(line)[0].strip()
        if line and not _STATUS_LINE.match(line) and not line.startswith("^"):
            return line[:200]
    return type(error).__name__


def setup_logging(level: str = "INFO", log_dir: Path | None = Path("logs")) -> None:
    """Console plus ``logs/app_<date>.log`` (JSON lines, rotated daily, kept 14 days);
    the standard library's loggers at ``level`` and above, and errors nothing caught (in
    the main thread or another), land in the same sinks."""
    logger.remove()
    logger.configure(patcher=_patch)
    logger.add(sys.stderr, level=level, format="{time:HH:mm:ss.SSS} {level: <7} {message}",
               backtrace=False, diagnose=False)
    if log_dir is not None:
        log_dir.mkdir(parents=True, exist_ok=True)
        logger.add(
            log_dir / "app_{time:YYYY-MM-DD}.log",
            level=level,
            serialize=True,
            rotation="00:00",
            retention="14 days",
            enqueue=True,
            backtrace=False,
            diagnose=False,
        )
    logging.basicConfig(handlers=[_StdlibToLoguru()], level=logger.level(level).no, force=True)
    sys.excepthook = _log_uncaught
    threading.excepthook = lambda args: _log_uncaught(args.exc_type, args.exc_value, args.exc_traceback)


def _log_uncaught(kind: type[BaseException], error: BaseException | None, trace: TracebackType | None) -> None:
    """Python would print it unmasked; through loguru it is masked like any record."""
    logger.opt(exception=(kind, error, trace)).critical("uncaught error")
