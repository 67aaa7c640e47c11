"""Anthropic's Messages API (``POST /v1/messages``, ``POST /v1/messages/count_tokens``) on the chat models.

A translation, not a second provider: requests become the chat plugin's
:class:`~grok2api_plugins.chat.surface.Conversation`, answers come back through its
pipeline, so rotation, filters, quotas, usage and failures are the chat provider's.
"""
