"""The enrichment worker: what storage adds to a ``stolen_hit`` after it was published.

A hit is published from memory on the receive thread (tracker/alerts/stolen.py); this worker,
on its own thread, adds the vehicle, the tag's earlier passes and the predicted next readers
(tracker/alerts/context.py :func:`enrichment`) and publishes the result as an update of the
same alert (same id, a new ``rev``), then stores it.

Invariants:

* the queue is bounded (``capacity``): when it is full the *enrichment* is dropped (counted in
  ``dropped``, logged once per run of drops), never the alert, which is already published and
  travels to storage with its sighting's batch;
* a job waits (retried every ``retry_s``, as long as ``give_up_s``) until storage answers and
  holds the alert with its sighting: the enriched update is written after the alert itself
  (never overwritten by the batch's earlier form) and, through a database outage, as soon as
  the database is back;
* an enrichment is published only while its hit is the alert's latest, in storage and in the
  handler's memory (``is_latest``): a later hit's own job tells the newer story; an old one
  would move the officer's map back;
* the update carries no status (``"status": null``, "unchanged"), and the storage upsert never
  changes one: an officer's "acknowledged" stays. What the worker learns from storage (the
  status, the first hit) is handed to ``on_stored``, the handler's memory of open alerts.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from pak.alert import Alert
from pak.logs import event
from pak.timefmt import format_time
from pak.types import Sighting
from tracker.alerts.outbox import Outbox
from tracker.storage.base import AlertStore, StorageError
from tracker.storage.records import StoredAlert

__all__ = ["EnrichJob", "EnrichmentWorker"]

log = logging.getLogger("pak.tracker.alerts")

#: ``enrich(sighting) -> detail``: the storage part of a hit's detail (raises StorageError).
Enrich = Callable[[Sighting], dict[str, Any]]
#: ``on_stored(alert_id, stored)``: what the worker learned of an alert from storage.
OnStored = Callable[[str, StoredAlert], None]


@dataclass(frozen=True, slots=True)
class EnrichJob:
    """One published hit to enrich: the alert as published and the sighting that caused it."""

    alert: Alert
    sighting: Sighting
    queued_at: datetime


class EnrichmentWorker:
    """A bounded queue of published hits and the thread that enriches them (module doc)."""

    def __init__(self, outbox: Outbox, storage: AlertStore, enrich: Enrich, *,
                 on_stored: OnStored | None = None,
                 is_latest: Callable[[Alert], bool] | None = None, capacity: int = 1000,
                 retry_s: float = 0.5, give_up_s: float = 3600.0,
                 clock: Callable[[], datetime]) -> None:
        self._outbox = outbox
        self._storage = storage
        self._enrich = enrich
        self._on_stored = on_stored
        self._is_latest = is_latest
        self._queue: queue.Queue[EnrichJob] = queue.Queue(maxsize=capacity)
        self._retry_s = retry_s
        self._give_up_s = give_up_s
        self._clock = clock
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._dropping = False
        self._waiting = False
        self.dropped = 0
        self.enriched = 0
        self.given_up = 0

    # --- the receive thread's side ------------------------------------------------------------

    def submit(self, alert: Alert, sighting: Sighting) -> bool:
        """Queue a published hit for enrichment; never blocks. False (counted, logged once
        per run of drops) when the queue is full."""
        try:
            self._queue.put_nowait(EnrichJob(alert, sighting, self._clock()))
        except queue.Full:
            self.dropped += 1
            if not self._dropping:
                self._dropping = True
                event(log, logging.WARNING, "alert_enrichment_dropped", alert_id=alert.alert_id,
                      capacity=self._queue.maxsize,
                      action="the alert stands as published; its enrichment is skipped")
            return False
        if self._dropping:
            self._dropping = False
            event(log, logging.INFO, "alert_enrichment_resumed", dropped=self.dropped)
        return True

    def __len__(self) -> int:
        return self._queue.qsize()

    # --- the worker ---------------------------------------------------------------------------

    def step(self, job: EnrichJob) -> bool:
        """Try one job once: True when done (enriched, or given up), False to retry later."""
        aid = job.alert.alert_id
        try:
            stored = self._storage.get_alert(aid)
            if stored is None or job.sighting.id not in stored.sightings:
                return self._too_old(job)  # its batch is not stored yet: the update goes after
            detail = self._enrich(job.sighting)
        except StorageError as e:
            if not self._waiting:
                self._waiting = True
                event(log, logging.WARNING, "alert_enrichment_waiting", alert_id=aid,
                      error=str(e)[:200], action="retrying until storage answers")
            return self._too_old(job)
        if self._waiting:
            self._waiting = False
            event(log, logging.INFO, "alert_enrichment_recovered", queued=len(self))
        if self._on_stored is not None:
            self._on_stored(aid, stored)
        if stored.last_at > job.alert.at or (self._is_latest is not None
                                             and not self._is_latest(job.alert)):
            return True  # a later hit moved the alert on: its own job enriches that one
        update = replace(job.alert, status=stored.status,
                         detail={**job.alert.detail, **detail,
                                 "first_at": format_time(stored.at), "update": True})
        self._outbox.send(update, with_status=False)
        with contextlib.suppress(StorageError):  # kept, retried by the engine's timer
            self._outbox.store([update])
        self.enriched += 1
        return True

    def _too_old(self, job: EnrichJob) -> bool:
        if (self._clock() - job.queued_at).total_seconds() < self._give_up_s:
            return False
        self.given_up += 1
        event(log, logging.WARNING, "alert_enrichment_given_up", alert_id=job.alert.alert_id,
              after_s=self._give_up_s)
        return True

    def start(self) -> None:
        """Start the worker thread (once)."""
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="pak-alert-enrich", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the thread; what is still queued is not enriched (its alerts stand as
        published and are stored with their batches)."""
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout)

    def _run(self) -> None:
        job: EnrichJob | None = None
        while not self._stop.is_set():
            if job is None:
                try:
                    job = self._queue.get(timeout=0.5)
                except queue.Empty:
                    continue
            try:
                done = self.step(job)
            except Exception:
                log.exception("alert enrichment failed for %s", job.alert.alert_id)
                done = True
            if done:
                job = None
            else:
                self._stop.wait(self._retry_s)  # jobs stay in order: the head is retried
