"""metrics: Prometheus metrics of the gateway at ``GET /metrics``.

Requests are counted by a request observer (route, model, key, status; latency and time
to first token; upstream failures by code); the pool, the accounts' failure totals and
the media cache are read live at each scrape. With several workers, prometheus_client's
multiprocess mode sums every worker's counts, so any worker's scrape shows them all.
The endpoint needs an admin session or the ``[metrics] token``.
"""
