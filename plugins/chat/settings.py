"""The ``[chat]`` config section: how reasoning is shown and how attachments are fetched."""

from __future__ import annotations

import ipaddress
from typing import Literal

from pydantic import Field, field_validator

from grok2api.api import Section


class ChatSettings(Section):
    reasoning_format: Literal["reasoning_content", "think_tags"] = Field(
        "reasoning_content",
        description="reasoning in delta/message.reasoning_content, or wrapped in <think>…</think> inside content")
    fetch_allow_networks: list[str] = Field(
        [], description="CIDR networks exempt from the SSRF refusal of attachment URLs (e.g. an intranet host)")
    fetch_timeout: float = Field(10, gt=0, description="seconds for fetching one attachment URL, redirects included")
    fetch_max_mb: float = Field(20, gt=0, description="largest attachment fetched from a URL")
    fetch_max_redirects: int = Field(5, ge=0)
    inline_max_mb: float = Field(20, gt=0, description="largest attachment sent inline (data URI or base64)")
    max_attachments: int = Field(10, ge=0, description="attachments per request")

    @field_validator("fetch_allow_networks")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        for item in value:
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError:
                raise ValueError(f"{item!r} is not a CIDR network such as 10.0.0.0/8 or 127.0.0.1/32") from None
        return value
