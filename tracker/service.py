"""The ``pak tracker`` service: storage + ingest pipeline + hooks + metrics, started and
stopped in the right order.

Start: open the storage, apply pending migrations (idempotent; retried while the database is
unreachable, so a tracker may start before its database), serve metrics, then connect to the
broker. Stop: stop taking messages, commit what is pending, ack it, send the last receipts,
disconnect (the broker keeps the session), close the storage.

The alert engine plugs in before :meth:`TrackerService.start` with :meth:`add_hook`; it can
publish through :meth:`TrackerService.publish` and read :attr:`TrackerService.storage`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from ingest.hooks import SightingHook, WatchlistHook
from ingest.metrics import IngestMetrics
from ingest.pipeline import Ingest
from pak.key_settings import require_keys
from pak.logs import event
from pak.settings import describe
from pak.wire import Topics
from pak.wire.envelope import control
from tracker.alerts.engine import AlertEngine
from tracker.config import TrackerSettings, default_client_id
from tracker.health import add_healthz
from tracker.hits import HitLane
from tracker.storage.base import Storage, StorageUnavailable
from tracker.storage.metrics import StorageMetrics
from tracker.storage.retention_runner import RetentionRunner

if TYPE_CHECKING:
    from pak.keys import Signer

__all__ = ["TrackerService"]

log = logging.getLogger("pak.tracker")


class TrackerService:
    """One tracker instance. ``storage`` may be given (tests); by default it is opened from
    ``settings.db``."""

    def __init__(self, settings: TrackerSettings, *, storage: Storage | None = None,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC),
                 signer: Signer | None = None) -> None:
        self.settings = settings
        # --signing-key signs receipts and alerts; its public half checks watchlist changes
        # (the API and the watchlist CLI sign them with the same centre key).
        self.signer = signer if signer is not None else settings.signer("tracker")
        self._verifier = None if self.signer is None else self.signer.verifier()
        if storage is None:
            from tracker.storage import backend_of, open_storage

            opts: dict[str, Any] = {"busy_timeout": settings.db_write_timeout_s}
            if backend_of(settings.db) == "postgres":
                opts = {"timeout": settings.db_timeout_s,
                        "timeouts": settings.statement_timeouts()}
            storage = open_storage(settings.db, **opts)
        self.storage = storage
        self.metrics = IngestMetrics()
        self._hooks: list[SightingHook] = []
        self._watchlist_hooks: list[WatchlistHook] = []
        self.ingest: Ingest | None = None
        self.alerts: AlertEngine | None = None
        self.hits: HitLane | None = None
        self._stop = threading.Event()
        self._closed = False
        self.retention = RetentionRunner(  # retention on its own schedule (--retention-days)
            self.storage, StorageMetrics(self.storage, self.metrics.registry),
            days=settings.retention_days, every=timedelta(seconds=settings.retention_interval_s),
            clock=clock)

    def add_hook(self, hook: SightingHook | WatchlistHook) -> None:
        """Register a hook (before start): a SightingHook, a WatchlistHook, or both."""
        if self.ingest is not None:
            raise RuntimeError("hooks are registered before start()")
        if isinstance(hook, SightingHook):
            self._hooks.append(hook)
        if isinstance(hook, WatchlistHook):
            self._watchlist_hooks.append(hook)

    def publish(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False) -> None:
        """Publish on the tracker's MQTT connection (alerts)."""
        if self.hits is not None and self.hits.in_lane():
            # an alert the priority lane raised leaves by its own connection
            self.hits.publish(topic, payload, qos, retain)
            return
        if self.ingest is None:
            raise RuntimeError("the tracker is not started")
        self.ingest.publish(topic, payload, qos, retain)

    def publish_signed(self, topic: str, payload: bytes, qos: int = 1,
                       retain: bool = False) -> None:
        """Publish a control message (an alert) signed with ``--signing-key`` (as it is in
        an unsigned loopback trial)."""
        self.publish(topic, control(payload, self.signer, topic), qos, retain)

    def _migrate(self) -> bool:
        """Apply migrations, waiting for the database; False when stopped meanwhile."""
        delay, said = 0.2, False
        while True:
            try:
                applied = self.storage.migrate()
            except StorageUnavailable as e:
                if not said:
                    event(log, logging.WARNING, "db_unavailable", error=str(e)[:300],
                          action="waiting for the database before migrating")
                    said = True
                if self._stop.wait(delay):
                    return False
                delay = min(delay * 2, self.settings.db_retry_max_s)
                continue
            event(log, logging.INFO, "db_migrated", applied=",".join(applied) or "none")
            return True

    def start(self) -> bool:
        """Start everything; False when stopped before the database ever answered."""
        s = self.settings
        event(log, logging.INFO, "tracker_starting", **describe(s))
        require_keys("tracker", "signing_key", s.broker(), self.signer is not None)
        if s.migrate and not self._migrate():
            return False
        self.retention.start()
        if (metrics_at := s.metrics_address()) is not None:
            add_healthz(self.metrics.serve(metrics_at[1], metrics_at[0]), self.health)
        if s.alerts:
            self._start_alerts()
        self.ingest = Ingest(self.storage, s.broker(), s.ingest_options(), hooks=self._hooks,
                             watchlist_hooks=self._watchlist_hooks, metrics=self.metrics,
                             signer=self.signer, verifier=self._verifier)
        self.ingest.start()
        return True

    def _start_alerts(self) -> None:
        """The alert engine: loaded (watchlist, registry) before the first message arrives,
        so no sighting passes unchecked; it publishes through this service's connection."""
        s = self.settings
        self.alerts = AlertEngine(self.storage, self.publish_signed, topics=Topics(s.topic_root),
                                  settings=s.alert_settings())
        self.add_hook(self.alerts)
        self.alerts.start()
        self.hits = HitLane(  # the priority lane: its own connection and thread
            s.broker(), Topics(s.topic_root), on_hit=self.alerts.stolen.on_hit,
            watched=self.alerts.watchlist.tags, edge_key=s.edge_key_bytes(),
            client_id=f"{s.client_id or default_client_id()}-hits"[:64],
            protocol="3.1.1" if s.mqtt_protocol == "3.1.1" else "5", signer=self.signer)
        self.add_hook(self.hits)
        self.hits.start()

    def stop(self) -> bool:
        """Graceful stop; True when everything received was committed and acked."""
        if self._closed:
            return True
        self._closed = True
        self._stop.set()
        ok = True
        if self.ingest is not None:
            t0 = time.monotonic()
            ok = self.ingest.stop(self.settings.shutdown_timeout_s)
            event(log, logging.INFO if ok else logging.WARNING, "tracker_stopped",
                  committed_all=ok, took_s=round(time.monotonic() - t0, 3))
        if self.hits is not None:
            self.hits.stop()
        if self.alerts is not None:
            self.alerts.stop()
        self.retention.stop()
        self.storage.close()
        return ok

    def health(self) -> dict[str, Any]:
        """What ``/healthz`` (beside ``/metrics``) answers."""
        return {"status": "ok", "retention": self.retention.health()}

    def run(self, stop: threading.Event) -> int:
        """Run until ``stop`` is set (the CLI sets it on SIGTERM/SIGINT); the exit status."""
        def relay() -> None:  # a stop during start-up (migrating) ends the wait for the DB
            stop.wait()
            self._stop.set()

        threading.Thread(target=relay, name="pak-tracker-stop", daemon=True).start()
        try:
            if self.start():
                stop.wait()
        finally:
            ok = self.stop()
        return 0 if ok else 1
