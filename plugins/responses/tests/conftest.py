"""The chat plugin's ``start_gateway`` fixture, here with the responses plugin loaded too."""

from grok2api_plugins.chat.tests.conftest import start_gateway

__all__ = ["start_gateway"]
