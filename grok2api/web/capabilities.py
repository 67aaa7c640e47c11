"""The kernel's own capabilities, registered through the same hook a plugin uses.

Its imports wait for the hook: every ``grok2api`` command registers this module, and
``grok2api --help`` must not pay for the web layer.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from grok2api import hookimpl

if TYPE_CHECKING:
    from grok2api.plugin.registries import CapabilityRegistry

PLUGIN_NAME = "kernel:capabilities"


@hookimpl
def grok2api_register_capabilities(capabilities: CapabilityRegistry) -> None:
    from grok2api.plugin.registries import Capability
    from grok2api.web.body import read_multipart

    capabilities.add(Capability("chat", "POST", "/v1/chat/completions", description="OpenAI chat completions"))
    capabilities.add(Capability("image", "POST", "/v1/images/generations", description="OpenAI image generation"))
    capabilities.add(Capability("image_edit", "POST", "/v1/images/edits", read_body=read_multipart,
                                description="OpenAI image edits (multipart/form-data)"))
