"""chat: the twelve Grok chat models behind ``POST /v1/chat/completions``.

Requests are validated and flattened into one Grok prompt (attachments uploaded, remote
ones fetched only after an SSRF check), sent upstream on an account the pool leases, and
answered in OpenAI's exact shapes: reasoning kept apart from content, usage counted,
failures reported as OpenAI errors before the first byte and as an error chunk after it.
"""
