"""Prometheus metrics of one hub (a registry per app, so tests and several apps don't mix)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

__all__ = ["CONTENT_TYPE_LATEST", "Metrics"]


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.received = Counter("caphub_alerts_received", "CAP messages posted", registry=self.registry)
        self.accepted = Counter("caphub_alerts_accepted", "CAP messages accepted (new or repeated)",
                                ["reason"], registry=self.registry)
        self.refused = Counter("caphub_alerts_refused", "CAP messages refused", ["reason"],
                               registry=self.registry)
        self.latency = Histogram(
            "caphub_ingest_seconds", "Time from request to answer for POST /cap",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
            registry=self.registry,
        )

        # The free feeds and push to partners (issue 7).
        self.feed_requests = Counter("caphub_feed_requests", "Feed requests answered, by feed",
                                     ["feed"], registry=self.registry)
        self.feed_not_modified = Counter("caphub_feed_not_modified", "Feed requests answered 304, by feed",
                                         ["feed"], registry=self.registry)
        self.pushes = Counter("caphub_pushes", "Push tries to partners and WebSub pings, by outcome "
                              "(delivered, retried, failed, websub-ok, websub-failed)", ["outcome"],
                              registry=self.registry)

    def render(self) -> bytes:
        return generate_latest(self.registry)
