"""The alert engine: routes sightings and timer ticks to the alert handlers, nothing more.

It is the ingest pipeline's SightingHook and WatchlistHook. Each valid sightings message is
handed to every handler's ``on_sightings`` in the MQTT receive thread, before it is batched
(the stolen handler first: the fastest path); the alerts they return are stored by the
pipeline with that batch. One timer thread runs the handlers' jobs, each on its own period; a
job that fails logs once and is retried on its next period.

Handlers (tracker/alerts/handler.py for the interface), each owning its state:

=====================  ==========================================================
stolen.py              ``stolen_hit`` (watchlist lookup; published at once, enriched
                       after by enrich.py)
flags.py               ``tamper``, ``low_battery`` (counts per tag)
pairing.py             ``unaccompanied`` (owner-key pairing)
clones.py              ``clone_suspect`` (impossible hops, against storage)
monitors.py            ``gateway_offline``, ``clock_skew``, ``reader_silent``
overflow.py            ``spool_overflow`` (a gateway's health: evidence dropped)
=====================  ==========================================================

What they share: the :class:`~tracker.alerts.outbox.Outbox` (which alert a cause belongs to,
publishing, storing with retries) and the slowly changing context the engine keeps fresh (the
watchlist cache, the registry of readers and paired vehicles, the movement model).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from pak.alert import Alert
from pak.logs import event
from pak.timefmt import utcnow
from pak.types import Sighting
from pak.wire import Topics
from tracker.alerts.clones import CloneHandler
from tracker.alerts.context import Registry
from tracker.alerts.flags import FlagsHandler
from tracker.alerts.handler import AlertHandler, Job
from tracker.alerts.monitors import MonitorsHandler
from tracker.alerts.outbox import Outbox, Publish
from tracker.alerts.overflow import OverflowHandler
from tracker.alerts.pairing import PairingHandler
from tracker.alerts.settings import AlertSettings
from tracker.alerts.stolen import StolenHandler
from tracker.storage.base import Storage, StorageError
from tracker.trails.movement import MovementModel
from tracker.watchlist import WatchlistCache

__all__ = ["AlertEngine"]

log = logging.getLogger("pak.tracker.alerts")


class AlertEngine:
    """The alert handlers of one tracker instance, fed and ticked (see module doc)."""

    def __init__(self, storage: Storage, publish: Publish, *, topics: Topics | None = None,
                 settings: AlertSettings | None = None,
                 clock: Callable[[], datetime] = utcnow) -> None:
        self.storage = storage
        self.s = s = settings or AlertSettings()
        self.outbox = Outbox(storage, publish, topics or Topics(), clock)
        self.watchlist = WatchlistCache(storage, reload_s=s.watchlist_reload_s, clock=clock)
        self.registry = Registry(storage)
        self.movement = MovementModel(storage, lambda: self.registry.readers, days=s.model_days,
                                      refresh_s=s.model_refresh_s,
                                      trip_gap=timedelta(seconds=s.trip_gap_s),
                                      max_sightings=s.model_max_sightings, clock=clock)
        self.stolen = StolenHandler(self.outbox, storage, self.watchlist, self.registry,
                                    self.movement, s)
        self.flags = FlagsHandler(self.outbox, storage, self.registry, s)
        self.pairing = PairingHandler(self.outbox, storage, self.registry, s)
        self.clones = CloneHandler(self.outbox, storage, self.registry, s)
        self.monitors = MonitorsHandler(self.outbox, storage, self.registry, s)
        self.handlers: Sequence[AlertHandler] = (
            self.stolen, self.flags, self.pairing, self.clones, self.monitors,
            OverflowHandler(self.outbox, storage, self.registry, s))
        self._jobs: list[Job] = [
            Job("store", s.alert_tick_s, lambda: self.outbox.store([])),
            *(j for h in self.handlers for j in h.jobs()),
            Job("registry", 60.0, self.registry.refresh),
        ]
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._next: dict[str, float] = {}
        self._job_failing: dict[str, bool] = {}

    # --- life cycle -----------------------------------------------------------------------------

    def start(self, *, timer: bool = True) -> None:
        """Load the watchlist and the registry (storage is up: the tracker migrated it), then
        start the watchlist reload, the movement model's learning and the timer."""
        try:
            n = self.watchlist.load()
            self.registry.refresh()
            self.stolen.load()
        except StorageError as e:
            n = len(self.watchlist)
            event(log, logging.WARNING, "alerts_start_degraded", error=str(e)[:300],
                  action="the periodic reload retries")
        self.watchlist.start()
        self.movement.start()
        self.stolen.worker.start()
        event(log, logging.INFO, "alerts_started", watched=n,
              readers=len(self.registry.readers), paired=len(self.registry.paired))
        if timer and self._thread is None:
            self._thread = threading.Thread(target=self._run, name="pak-alert-timer",
                                            daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10.0)
            self._thread = None
        self.stolen.worker.stop()
        self.watchlist.stop()
        self.movement.stop()
        self.outbox.close()

    # --- the hot path (MQTT network thread) -----------------------------------------------------

    def on_watchlist(self, change: dict[str, Any], received_at: datetime) -> None:
        """WatchlistHook: an announcement on ``{root}/watchlist`` changes the cache at once."""
        self.watchlist.on_watchlist(change, received_at)

    def on_sightings(self, sightings: list[Sighting], received_at: datetime) -> list[Alert]:
        """SightingHook: every handler sees the message; the alerts they return are stored
        with its batch."""
        alerts: list[Alert] = []
        for h in self.handlers:
            alerts.extend(h.on_sightings(sightings, received_at))
        return alerts

    # --- the timer ----------------------------------------------------------------------------

    def tick(self) -> None:
        """Run the timer's due jobs once (each failing job logs once, and is retried)."""
        mono = time.monotonic()
        for name, every, job in self._jobs:
            if self._next.get(name, 0.0) > mono:
                continue
            self._next[name] = mono + every
            try:
                job()
            except StorageError as e:
                if not self._job_failing.get(name):
                    event(log, logging.WARNING, "alert_job_failed", job=name,
                          error=str(e)[:300], action="retrying on the next period")
                self._job_failing[name] = True
                continue
            except Exception:
                log.exception("alert job %s failed", name)
                self._job_failing[name] = True
                continue
            if self._job_failing.pop(name, False):
                event(log, logging.INFO, "alert_job_recovered", job=name)

    def _run(self) -> None:
        while not self._stop.wait(self.s.alert_tick_s):
            self.tick()
