"""``unaccompanied``: a vehicle whose owner switched key pairing on passed a reader without its
owner's key tag passing the same reader within ``pairing_window_s``.

The hot path remembers the passes of paired vehicles and of key tags (registry maps, one dict
lookup each). The timer decides the vehicle passes whose window is over: the key at the same
reader within the window (this instance's memory, else storage, where other instances' key
sightings are) or the alert, on the vehicle's sighting.
"""

from __future__ import annotations

import threading
from collections import deque
from datetime import datetime, timedelta

from pak.alert import Alert
from pak.types import Sighting, SightingId, merge_sightings
from tracker.alerts.context import (
    PairedVehicle,
    Registry,
    reader_json,
    sighting_json,
    vehicle_json,
)
from tracker.alerts.handler import Handler, Job
from tracker.alerts.outbox import Outbox
from tracker.alerts.rules import PassPoint, key_accompanied, pairing_due
from tracker.alerts.settings import AlertSettings
from tracker.storage.base import Storage

__all__ = ["PairingHandler", "pass_point"]


def pass_point(s: Sighting) -> PassPoint:
    return PassPoint(s.reader_id, s.first_seen, s.last_seen)


class PairingHandler(Handler):
    """Owner-key pairing (see module doc)."""

    def __init__(self, outbox: Outbox, storage: Storage, registry: Registry,
                 settings: AlertSettings) -> None:
        super().__init__(outbox, storage, registry, settings)
        self._window_s = settings.pairing_window_s
        self._lag_s = settings.pairing_lag_s
        self._lock = threading.Lock()  # the passes, shared with the timer
        self._pairing: dict[SightingId, tuple[Sighting, PairedVehicle]] = {}
        self._key_passes: dict[str, deque[PassPoint]] = {}

    def on_sightings(self, sightings: list[Sighting], received_at: datetime) -> list[Alert]:
        paired = self._registry.paired
        keys = self._registry.key_tags
        if not paired and not keys:
            return []
        for s in sightings:
            if paired and s.tag_id in paired:
                self._vehicle_seen(s, paired[s.tag_id])
            if keys and s.tag_id in keys:
                self._key_seen(s)
        return []

    def _vehicle_seen(self, s: Sighting, pv: PairedVehicle) -> None:
        with self._lock:
            prev = self._pairing.get(s.id)
            merged = s if prev is None else merge_sightings(prev[0], s)
            self._pairing[s.id] = (merged, pv)

    def _key_seen(self, s: Sighting) -> None:
        with self._lock:
            q = self._key_passes.get(s.tag_id)
            if q is None:
                q = self._key_passes[s.tag_id] = deque(maxlen=32)
            q.append(pass_point(s))

    def check(self, now: datetime) -> list[Alert]:
        """Decide the vehicle passes whose pairing window is over (module doc)."""
        w, lag = self._window_s, self._lag_s
        with self._lock:
            due = [(sid, v) for sid, v in self._pairing.items()
                   if pairing_due(pass_point(v[0]), now, w, lag)]
            for sid, _ in due:
                del self._pairing[sid]
            keys = {k: list(q) for k, q in self._key_passes.items()}
        out: list[Alert] = []
        for _, (s, pv) in due:
            stored = self._storage.get_sighting(s.id)
            if stored is not None:
                s = merge_sightings(stored, s)  # its closed form may have gone elsewhere
                if not pairing_due(pass_point(s), now, w, lag):
                    with self._lock:
                        self._pairing[s.id] = (s, pv)
                    continue
            vehicle = pass_point(s)
            if key_accompanied(vehicle, keys.get(pv.key_tag_id, ()), w):
                continue
            span = timedelta(seconds=w)
            near = self._storage.sightings(tag_id=pv.key_tag_id, reader_ids=[s.reader_id],
                                           since=s.first_seen - span - timedelta(hours=1),
                                           until=s.last_seen + span + timedelta(seconds=1))
            if key_accompanied(vehicle, [pass_point(k) for k in near], w):
                continue
            reader = self._registry.reader(s.reader_id)
            detail = {"vehicle_id": pv.vehicle_id, "key_tag_id": pv.key_tag_id,
                      "window_s": w, "reader": reader_json(s.reader_id, reader),
                      "seen": sighting_json(s, reader),
                      "vehicle": vehicle_json(self._storage.get_vehicle(pv.vehicle_id))}
            alerts = self._outbox.sighting_alert("unaccompanied", s, detail)
            self._outbox.store(alerts)
            out.extend(alerts)
        with self._lock:
            horizon = now - timedelta(seconds=w + 3600)
            for k in list(self._key_passes):
                q = self._key_passes[k]
                while q and q[0].last_seen < horizon:
                    q.popleft()
                if not q:
                    del self._key_passes[k]
        return out

    def jobs(self) -> list[Job]:
        return [Job("pairing", self.s.alert_tick_s, lambda: self.check(self._outbox.clock()))]
