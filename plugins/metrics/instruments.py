"""The request observer and its instruments.

This module is the plugin's first to import prometheus_client, which picks in-memory or
multiprocess values at that moment: :mod:`.workers` must have decided before.
"""

from __future__ import annotations

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.multiprocess import MultiProcessCollector

from grok2api.api import Failure, RequestRecord, http_status

#: seconds; a chat answer may take minutes
LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120, 300)
FIRST_TOKEN_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 3, 5, 8, 13, 20, 30, 60)
#: the error codes a request ends with when Grok (or the pool in front of it) failed it
UPSTREAM_CODES = frozenset({http_status(f)[1] for f in Failure} | {"no_available_token"})
UNMATCHED = "unmatched"


class Instruments:
    """The observer: counts each finished request once, in this process (or its file).

    Labels stay few: ``route`` is the matched pattern (``unmatched`` for a 404 of no route),
    ``model`` a registered model id (the kernel records no other), ``key`` the key's name.
    """

    name = "metrics"

    def __init__(self, multiproc: str | None) -> None:
        self.multiproc = multiproc
        self.registry = CollectorRegistry()
        owner = None if multiproc else self.registry  # multiprocess values live in files, read at scrape time
        self.requests = Counter("grok2api_requests", "Finished HTTP requests", ["route", "model", "key", "status"],
                                registry=owner)
        self.duration = Histogram("grok2api_request_duration_seconds", "Time from request to the end of the answer",
                                  ["route", "model"], buckets=LATENCY_BUCKETS, registry=owner)
        self.first_token = Histogram(
            "grok2api_time_to_first_token_seconds",
            "Time to the first byte of a model's answer: the first chunk of a stream, else the whole answer",
            ["model"], buckets=FIRST_TOKEN_BUCKETS, registry=owner)
        self.upstream_failures = Counter("grok2api_upstream_failures", "Requests Grok or the pool failed, by code",
                                         ["code"], registry=owner)

    def request_finished(self, app: web.Application, record: RequestRecord) -> None:
        route, model = record.route or UNMATCHED, record.model or ""
        self.requests.labels(route, model, record.key_name or "", str(record.status)).inc()
        self.duration.labels(route, model).observe(record.duration_ms / 1000)
        if model:
            self.first_token.labels(model).observe(record.first_byte_ms / 1000)
        if record.error_code in UPSTREAM_CODES:
            self.upstream_failures.labels(record.error_code).inc()

    def sources(self, scrape: CollectorRegistry) -> None:
        """Put the request counts into ``scrape``: every worker's, or this process's."""
        if self.multiproc:
            MultiProcessCollector(scrape, path=self.multiproc)  # type: ignore[no-untyped-call]  # untyped upstream
        else:
            scrape.register(self.registry)
