"""``tamper`` and ``low_battery``: a tag whose sightings carry the flag ``threshold`` times within
a window (:class:`tracker.alerts.rules.WindowCount`, with a cool-down after it fires).

The hot path only counts, in memory (the open and closed forms of one sighting count once); a
count that crosses its threshold queues the alert for the timer, which reads storage (the
vehicle, the open alert): the receive thread never waits for the database for these kinds.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from datetime import datetime
from typing import Any

from pak.alert import Alert
from pak.types import Sighting, SightingId
from tracker.alerts.context import Registry, reader_json, sighting_json, vehicle_json
from tracker.alerts.handler import Handler, Job
from tracker.alerts.outbox import Outbox
from tracker.alerts.rules import WindowCount
from tracker.alerts.settings import AlertSettings
from tracker.storage.base import Storage, StorageError

__all__ = ["FlagsHandler"]


class FlagsHandler(Handler):
    """Tamper and low-battery counts per tag (see module doc)."""

    def __init__(self, outbox: Outbox, storage: Storage, registry: Registry,
                 settings: AlertSettings) -> None:
        super().__init__(outbox, storage, registry, settings)
        s = settings
        self.counters: dict[str, WindowCount[str]] = {
            "tamper": WindowCount(threshold=s.tamper_threshold, window_s=s.tamper_window_s,
                                  cooldown_s=s.tamper_cooldown_s),
            "low_battery": WindowCount(threshold=s.low_battery_threshold,
                                       window_s=s.low_battery_window_s,
                                       cooldown_s=s.low_battery_cooldown_s),
        }
        self._lock = threading.Lock()  # the counters and the queue, shared with the timer
        self._counted: OrderedDict[tuple[str, SightingId], None] = OrderedDict()
        self._fired: list[tuple[str, Sighting]] = []  # thresholds crossed, to raise

    def on_sightings(self, sightings: list[Sighting], received_at: datetime) -> list[Alert]:
        for s in sightings:
            if s.flags:
                self._flagged(s)
        return []

    def _flagged(self, s: Sighting) -> None:
        for kind, counter in self.counters.items():  # the flag is named as its alert kind
            if kind not in s.flags:
                continue
            key = (kind, s.id)
            if key in self._counted:  # the open and closed forms are one sighting
                continue
            self._counted[key] = None
            if len(self._counted) > 50_000:
                self._counted.popitem(last=False)
            with self._lock:  # the timer prunes the counters
                if counter.add(s.tag_id, s.first_seen):
                    self._fired.append((kind, s))

    def raise_fired(self) -> list[Alert]:
        """Raise the ``tamper`` and ``low_battery`` alerts whose thresholds were crossed."""
        with self._lock:
            fired, self._fired = self._fired, []
        out: list[Alert] = []
        for i, (kind, s) in enumerate(fired):
            counter = self.counters[kind]
            reader = self._registry.reader(s.reader_id)
            detail: dict[str, Any] = {"reader": reader_json(s.reader_id, reader),
                                      "seen": sighting_json(s, reader),
                                      "threshold": counter.threshold,
                                      "window_s": counter.window.total_seconds()}
            try:
                detail["vehicle"] = vehicle_json(
                    self._storage.vehicle_for_tag(s.tag_id, at=s.first_seen))
                alerts = self._outbox.sighting_alert(kind, s, detail)
                self._outbox.store(alerts)
            except StorageError:
                with self._lock:  # the rest waits for the next tick
                    self._fired = fired[i:] + self._fired
                raise
            out.extend(alerts)
        return out

    def prune(self) -> None:
        """Forget tags with nothing recent (bounded memory)."""
        now = self._outbox.clock()
        with self._lock:
            for counter in self.counters.values():
                counter.prune(now)

    def jobs(self) -> list[Job]:
        return [Job("flags", self.s.alert_tick_s, self.raise_fired),
                Job("prune", 300.0, self.prune)]
