"""Logging through loguru: a console sink and JSON lines under ``logs/``, secrets masked.

Masking happens in a patcher, so a secret passed to any logger call (message or
extra fields) is hidden before any sink sees it.
"""

from __future__ import annotations

import re
import sys
from contextvars import ContextVar
from pathlib import Path
from typing import Any

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
    """Keep just enough of a secret to tell two apart: ``abcd…wxyz`` or ``***``."""
    if len(value) <= 12:
        return "***"
    return f"{value[:4]}…{value[-4:]}"


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
    record["message"] = mask_text(record["message"])
    for key, value in list(record["extra"].items()):
        if isinstance(value, str):
            record["extra"][key] = mask_text(value)


def setup_logging(level: str = "INFO", log_dir: Path | None = Path("logs")) -> None:
    """Console plus ``logs/app_<date>.log`` (JSON lines, rotated daily, kept 14 days)."""
    logger.remove()
    logger.configure(patcher=_patch)
    logger.add(sys.stderr, level=level, format="{time:HH:mm:ss.SSS} {level: <7} {message}")
    if log_dir is not None:
        log_dir.mkdir(parents=True, exist_ok=True)
        logger.add(
            log_dir / "app_{time:YYYY-MM-DD}.log",
            level=level,
            serialize=True,
            rotation="00:00",
            retention="14 days",
            enqueue=True,
        )
