"""alerts: webhooks told when the gateway needs an operator.

Four kinds: too few accounts can serve (``accounts_low``), accounts expired
(``account_expired``), too many model requests failed upstream (``upstream_errors``),
a job failed (``job_failed``). Bodies suit a generic JSON receiver, Slack, Discord and
Telegram. Each alert is sent once per deduplication window and each kind at most so
often, across every worker; sending never holds up a request.
"""
