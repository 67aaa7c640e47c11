"""An alert and the body each receiver format takes."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from grok2api_plugins.alerts.settings import Webhook

Severity = Literal["warning", "critical"]
#: Discord refuses content over 2000 characters, Telegram text over 4096; Slack cuts long text itself
TEXT_LIMITS = {"discord": 2000, "telegram": 4096, "slack": 4000}


@dataclass(frozen=True, slots=True)
class Alert:
    """``subject`` is what makes two alerts of one kind the same alert (deduplication)."""

    kind: str
    subject: str
    severity: Severity
    message: str
    details: dict[str, Any] = field(default_factory=dict)
    at: float = field(default_factory=time.time)

    def text(self) -> str:
        return f"[grok2api {self.severity}] {self.message}"


def body(alert: Alert, webhook: Webhook) -> dict[str, Any]:
    """What ``webhook`` is sent for ``alert``."""
    if webhook.format == "json":
        at = datetime.fromtimestamp(alert.at, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
        return {"kind": alert.kind, "severity": alert.severity, "message": alert.message, "details": alert.details,
                "at": at}
    text = alert.text()[:TEXT_LIMITS[webhook.format]]
    if webhook.format == "slack":
        return {"text": text}
    if webhook.format == "discord":
        return {"content": text}
    return {"chat_id": webhook.chat_id, "text": text}
