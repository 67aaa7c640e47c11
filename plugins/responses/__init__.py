"""OpenAI's Responses API (``/v1/responses``) on the chat models.

Requests become the chat plugin's :class:`~grok2api_plugins.chat.surface.Conversation`
and answers come back through its pipeline; stored responses live in the kernel's
storage with a time-to-live, so every worker can continue or fetch them.
"""
