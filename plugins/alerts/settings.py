"""The ``[alerts]`` section: where alerts go, what raises them, how often they may repeat."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, ValidationInfo, field_validator
from yarl import URL

from grok2api.api import Section

Format = Literal["json", "slack", "discord", "telegram"]


class Webhook(Section):
    url: str = Field(description="where alerts are POSTed (Telegram: the bot API's sendMessage URL)")
    format: Format = Field("json", description="the body: json {kind, severity, message, details, at}, "
                                               "slack {text}, discord {content}, telegram {chat_id, text}")
    chat_id: str = Field("", validate_default=True, description="Telegram only: the chat the bot writes to")
    allow_private: bool = Field(
        False, description="send even when the URL's host is a loopback or private address (an on-premises "
                           "receiver); otherwise such a webhook is never fetched")

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        url = URL(value.strip())
        if url.scheme not in ("http", "https") or not url.host:
            raise ValueError("must be an http(s) URL with a host")
        return str(url)

    @field_validator("chat_id")
    @classmethod
    def _telegram_chat(cls, value: str, info: ValidationInfo) -> str:
        if info.data.get("format") == "telegram" and not value.strip():
            raise ValueError("a telegram webhook needs chat_id")
        return value.strip()


class AlertsSettings(Section):
    webhooks: list[Webhook] = Field(  # a secret: Slack, Discord and Telegram URLs carry their token
        [], description="receivers; every alert goes to each (none: alerts are off)",
        json_schema_extra={"writeOnly": True})
    check_interval_sec: float = Field(30.0, gt=0, description="how often the pool, the error rate and the jobs "
                                                              "are looked at")
    usable_share_below: float = Field(
        0.5, ge=0, le=1, description="alert when this share of accounts or less can serve (expired count against "
                                     "it, disabled ones are left out; 0: never)")
    error_rate_above: float = Field(
        0.5, ge=0, le=1, description="alert when more than this share of model requests failed upstream within "
                                     "error_window_sec (1: never)")
    error_window_sec: float = Field(300.0, gt=0, description="the window of the error rate")
    error_min_requests: int = Field(20, ge=1, description="the error rate is judged only on at least this many "
                                                          "model requests in the window")
    account_expired: bool = Field(True, description="alert when an account expires (Grok refused its cookie)")
    job_failed: bool = Field(True, description="alert when a job fails")
    job_namespaces: list[str] = Field(
        ["admin_jobs", "video_jobs"], description="storage namespaces of job records; a record whose state or "
                                                  "status becomes failed is a failed job")
    dedupe_sec: float = Field(3600.0, ge=0, description="the same alert (kind and subject) is sent once in this "
                                                        "long, by one worker of all")
    rate_limit: int = Field(10, ge=1, le=100, description="alerts of one kind sent at most per rate_window_sec")
    rate_window_sec: float = Field(3600.0, gt=0, description="the window of rate_limit")
    timeout_sec: float = Field(10.0, gt=0, description="how long one webhook call may take")
