"""Prometheus metrics of the ingest pipeline.

Each :class:`IngestMetrics` owns its registry, so two pipelines in one process (tests, or a
benchmark) never share counters; the service serves that registry on ``/metrics``.
"""

from __future__ import annotations

from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

__all__ = ["IngestMetrics"]

_BATCH_BUCKETS = (1, 10, 50, 100, 250, 500, 1000, 2000, 5000, 10000, 20000)
_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class IngestMetrics:
    """Counters the pipeline updates per message or per batch (never per sighting)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.messages = Counter("pak_ingest_messages_received", "MQTT messages received",
                                ["kind"], registry=r)
        self.received = Counter("pak_ingest_sightings_received",
                                "Sightings received in valid messages (duplicates included)",
                                registry=r)
        self.stored = Counter("pak_ingest_sightings_stored",
                              "Sightings written after deduplication inside the batch",
                              registry=r)
        self.dead_letters = Counter("pak_ingest_dead_letters", "Messages refused, by reason",
                                    ["reason"], registry=r)
        self.batch_size = Histogram("pak_ingest_batch_sightings", "Sightings per committed batch",
                                    buckets=_BATCH_BUCKETS, registry=r)
        self.commit_seconds = Histogram("pak_ingest_commit_seconds",
                                        "Time to write and commit one batch",
                                        buckets=_LATENCY_BUCKETS, registry=r)
        self.db_retries = Counter("pak_ingest_db_retries",
                                  "Batch writes retried because the database was unavailable",
                                  registry=r)
        self.receipts = Counter("pak_ingest_receipts_published", "Receipt messages published",
                                registry=r)
        self.alerts = Counter("pak_ingest_alerts", "Alerts returned by the sighting hooks",
                              registry=r)
        self.hook_errors = Counter("pak_ingest_hook_errors", "Exceptions raised by hooks",
                                   registry=r)
        self.pending = Gauge("pak_ingest_pending_messages",
                             "Messages received but not yet committed and acknowledged",
                             registry=r)
        self.connected = Gauge("pak_ingest_mqtt_connected",
                               "1 while the broker connection is up (subscriptions are made "
                               "on every connect)", registry=r)
        self.stale_acks = Counter("pak_ingest_stale_acks",
                                  "Acks not sent because the connection that delivered the "
                                  "message is gone (the broker redelivers it)", registry=r)

    def serve(self, port: int, addr: str = "0.0.0.0") -> WSGIServer:
        """Serve ``/metrics`` on ``addr:port`` from a daemon thread; the server."""
        return start_http_server(port, addr=addr, registry=self.registry)[0]
