"""The ``[chat]`` config section: how reasoning is shown, how attachments are fetched, and
the tool-calling convention (``docs/agents.md``)."""

from __future__ import annotations

import ipaddress
from typing import Literal

from pydantic import Field, field_validator

from grok2api.api import Section

DEFAULT_TOOL_PROMPT = """You can call tools. They are listed below, one JSON object per line:
<tools>
{tools}
</tools>
To call a tool, write exactly {open}{{"name": "<tool name>", "arguments": {{<arguments as JSON>}}}}{close} \
on a line of its own, with arguments that follow the tool's parameters schema. You may write several calls. \
After your calls, stop and wait: the results come back as tool_result blocks. {rules}"""


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
    tool_call_open: str = Field("<tool_call>", min_length=1, description="marker that opens a tool call in answers")
    tool_call_close: str = Field("</tool_call>", min_length=1, description="marker that closes a tool call")
    tool_prompt: str = Field(
        DEFAULT_TOOL_PROMPT,
        description="instructions put before the conversation when a request offers tools; {tools} is one JSON "
                    "line per tool, {open}/{close} the markers, {rules} what tool_choice asks")

    @field_validator("tool_prompt")
    @classmethod
    def _tool_prompt(cls, value: str) -> str:
        try:
            value.format(tools="", open="", close="", rules="")
        except (KeyError, IndexError, ValueError) as exc:
            raise ValueError(f"tool_prompt may use only {{tools}}, {{open}}, {{close}} and {{rules}} ({exc})") from None
        if "{tools}" not in value or "{open}" not in value:
            raise ValueError("tool_prompt must contain {tools} and {open}")
        return value

    @field_validator("fetch_allow_networks")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        for item in value:
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError:
                raise ValueError(f"{item!r} is not a CIDR network such as 10.0.0.0/8 or 127.0.0.1/32") from None
        return value
