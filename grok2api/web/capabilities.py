"""The kernel's own capabilities, registered through the same hook a plugin uses."""

from __future__ import annotations

from grok2api import hookimpl
from grok2api.plugin.registries import Capability, CapabilityRegistry
from grok2api.web.body import read_multipart

PLUGIN_NAME = "kernel:capabilities"


@hookimpl
def grok2api_register_capabilities(capabilities: CapabilityRegistry) -> None:
    capabilities.add(Capability("chat", "POST", "/v1/chat/completions", description="OpenAI chat completions"))
    capabilities.add(Capability("image", "POST", "/v1/images/generations", description="OpenAI image generation"))
    capabilities.add(Capability("image_edit", "POST", "/v1/images/edits", read_body=read_multipart,
                                description="OpenAI image edits (multipart/form-data)"))
