"""Prometheus metrics of storage upkeep: retention runs and the one-row rule's conflicts.

Registered on the tracker's own registry (the one ``/metrics`` serves), never the global one,
so two trackers in one process (tests) keep their own counts. The conflict count lives in the
storage (tracker/storage/one_row.py, counted after commit) and is read at scrape time.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol, runtime_checkable

from prometheus_client import CollectorRegistry, Counter, Gauge
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector

from tracker.storage.one_row import FirstSeenConflicts

__all__ = ["StorageMetrics"]


@runtime_checkable
class _HasConflicts(Protocol):
    first_seen_conflicts: FirstSeenConflicts


class _ConflictCollector(Collector):
    def __init__(self, conflicts: FirstSeenConflicts) -> None:
        self._conflicts = conflicts

    def collect(self) -> Iterator[CounterMetricFamily]:
        yield CounterMetricFamily(
            "pak_storage_first_seen_conflicts",
            "Messages whose first_seen differed from their sighting id's stored one (the "
            "stored one was kept)", value=self._conflicts.count)


class StorageMetrics:
    """The storage's counters on ``registry``; retention figures are updated by the
    retention runner (tracker/storage/retention_runner.py)."""

    def __init__(self, storage: object, registry: CollectorRegistry) -> None:
        r = registry
        if isinstance(storage, _HasConflicts):
            r.register(_ConflictCollector(storage.first_seen_conflicts))
        self.runs = Counter("pak_retention_runs", "Retention runs, by outcome (ok; skipped: "
                            "another instance held the retention lock; failed)",
                            ["outcome"], registry=r)
        for outcome in ("ok", "skipped", "failed"):
            self.runs.labels(outcome)  # every series exists from the start (rate() works)
        self.evidence_copied = Counter("pak_retention_evidence_copied_rows",
                                       "Sightings copied to evidence_sightings before retention",
                                       registry=r)
        self.chunks_dropped = Counter("pak_retention_chunks_dropped",
                                      "Hypertable chunks dropped by retention (TimescaleDB)",
                                      registry=r)
        self.rows_deleted = Counter("pak_retention_rows_deleted",
                                    "Sightings deleted by retention (SQLite)", registry=r)
        self.days = Gauge("pak_retention_days", "Days of sightings kept (0: retention off)",
                          registry=r)
        self.last_run = Gauge("pak_retention_last_run_timestamp_seconds",
                              "When the last retention run started (Unix time)", registry=r)
        self.last_success = Gauge("pak_retention_last_success_timestamp_seconds",
                                  "When the last successful retention run started (Unix time)",
                                  registry=r)
