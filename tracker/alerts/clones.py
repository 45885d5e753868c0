"""``clone_suspect``: one tag at two readers faster than any vehicle could travel between them,
or at both at once (:func:`tracker.alerts.rules.clone_verdict`).

The hot path appends what arrives to a buffer. The timer checks what was received at least
``clone_lag_s`` ago against the tags' history in storage (every instance's share is there), at
most one finding per tag per check; the alert is pinned on the later of the two sightings, so
whichever instance finds the pair derives the same id.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from pak.alert import Alert
from pak.timefmt import format_time
from pak.types import Sighting, SightingId
from tracker.alerts.context import Registry, reader_json, vehicle_json
from tracker.alerts.handler import Handler, Job
from tracker.alerts.outbox import Outbox
from tracker.alerts.pairing import pass_point
from tracker.alerts.rules import CloneVerdict, PassPoint, clone_verdict
from tracker.alerts.settings import AlertSettings
from tracker.storage.base import Storage, StorageError
from tracker.storage.records import Reader, TagPass
from tracker.trails.geo import haversine_m
from tracker.trails.history import tag_histories

__all__ = ["CloneHandler"]

_BUFFER_MAX = 200_000


class CloneHandler(Handler):
    """Clone checks (see module doc)."""

    def __init__(self, outbox: Outbox, storage: Storage, registry: Registry,
                 settings: AlertSettings) -> None:
        super().__init__(outbox, storage, registry, settings)
        self._lock = threading.Lock()  # the buffer, shared with the timer
        self._buffer: list[tuple[float, Sighting]] = []
        self.dropped = 0
        self._distances: dict[tuple[str, str], float | None] = {}
        self._distances_of: dict[str, Reader] | None = None  # the registry map they came from

    def on_sightings(self, sightings: list[Sighting], received_at: datetime) -> list[Alert]:
        mono = time.monotonic()
        with self._lock:
            buf = self._buffer
            buf.extend((mono, s) for s in sightings)
            if len(buf) > _BUFFER_MAX:  # storage down for long: check the newest only
                drop = len(buf) - _BUFFER_MAX
                del buf[:drop]
                self.dropped += drop
        return []

    def _distance(self, a: str, b: str) -> float | None:
        readers = self._registry.readers
        if readers is not self._distances_of:  # the registry was refreshed: a reader may move
            self._distances, self._distances_of = {}, readers
        key = (a, b) if a < b else (b, a)
        cache = self._distances
        if key in cache:
            return cache[key]
        ra, rb = readers.get(a), readers.get(b)
        d = None if ra is None or rb is None else haversine_m(ra.latitude, ra.longitude,
                                                             rb.latitude, rb.longitude)
        if len(cache) > 1_000_000:  # the city is huge: start afresh
            cache.clear()
        cache[key] = d
        return d

    def _worst(self, new: Sighting,
               history: Sequence[TagPass]) -> tuple[TagPass, CloneVerdict] | None:
        s = self.s
        window = timedelta(seconds=s.clone_window_s)
        worst: tuple[TagPass, CloneVerdict] | None = None
        nid = (new.gateway_id, new.spool_id, new.seq)
        for h in history:
            if h.reader_id == new.reader_id or (h.gateway_id, h.spool_id, h.seq) == nid:
                continue
            if h.first_seen > new.last_seen + window or h.last_seen < new.first_seen - window:
                continue
            d = self._distance(h.reader_id, new.reader_id)
            if d is None or d < s.clone_min_distance_m:
                continue  # what clone_verdict would say, without building its arguments
            v = clone_verdict(PassPoint(h.reader_id, h.first_seen, h.last_seen),
                              pass_point(new), d, max_speed_kmh=s.alert_max_speed_kmh,
                              min_distance_m=s.clone_min_distance_m, slack_s=s.clone_slack_s)
            if v is None:
                continue
            if worst is None or v.reason == "simultaneous" or (
                    worst[1].reason == "too_fast" and (v.speed_kmh or 0) > (worst[1].speed_kmh
                                                                           or 0)):
                worst = (h, v)
        return worst

    def check(self, now_mono: float | None = None) -> list[Alert]:
        """Check the sightings received at least ``clone_lag_s`` ago against their tags'
        history in storage (every instance's share is there)."""
        cutoff = (time.monotonic() if now_mono is None else now_mono) - self.s.clone_lag_s
        with self._lock:
            buf = self._buffer
            i = 0
            while i < len(buf) and buf[i][0] <= cutoff:
                i += 1
            taken, self._buffer = buf[:i], buf[i:]
        if not taken:
            return []
        by_tag: dict[str, dict[SightingId, Sighting]] = {}
        placed = self._registry.readers
        for _, s in taken:
            if s.reader_id not in placed:
                continue  # a reader without a position: no distance, so no verdict
            d = by_tag.setdefault(s.tag_id, {})
            sid = s.id
            prev = d.get(sid)
            # the open and closed forms of one sighting: the rule needs only the longer stay
            # (a full merge costs more than the check itself at thousands per second)
            if prev is None or s.last_seen > prev.last_seen:
                d[sid] = s
        if not by_tag:
            return []
        window = timedelta(seconds=self.s.clone_window_s)
        firsts = [s.first_seen for d in by_tag.values() for s in d.values()]
        try:
            hist = tag_histories(self._storage, by_tag, since=min(firsts) - window,
                                 until=max(firsts) + window)
        except StorageError:
            with self._lock:  # try again next time
                self._buffer = taken + self._buffer
            raise
        out: list[Alert] = []
        for tag, news in by_tag.items():
            history = hist.get(tag, [])
            if len(history) + len(news) < 2:
                continue
            for n in news.values():
                found = self._worst(n, history)
                if found is None:
                    continue
                other, v = found
                out.extend(self._alert(n, other, v))
                break  # one finding per tag per check: the alert is per tag anyway
        return out

    def _alert(self, new: Sighting, other: TagPass, v: CloneVerdict) -> list[Alert]:
        """The alert of a clone pair, on the later of its two sightings (whichever instance
        finds the pair derives the same id)."""
        def order(x: Sighting | TagPass) -> tuple[Any, ...]:
            return (x.first_seen, x.last_seen, x.gateway_id, x.spool_id, x.seq)

        early: Sighting | TagPass
        if order(other) > order(new):
            stored = self._storage.get_sighting(other.sid)
            if stored is None:  # gone meanwhile (retention): nothing to pin the alert on
                return []
            early, late = new, stored
        else:
            early, late = other, new
        passes = []
        for x in (early, late):
            passes.append({**reader_json(x.reader_id, self._registry.reader(x.reader_id)),
                           "first_seen": format_time(x.first_seen),
                           "last_seen": format_time(x.last_seen),
                           "sighting": [x.gateway_id, x.spool_id, x.seq]})
        detail: dict[str, Any] = {
            "reason": v.reason, "distance_m": round(v.distance_m, 1), "gap_s": round(v.gap_s, 3),
            "speed_kmh": None if v.speed_kmh is None else round(v.speed_kmh, 1),
            "max_speed_kmh": self.s.alert_max_speed_kmh, "passes": passes}
        try:
            detail["vehicle"] = vehicle_json(self._storage.vehicle_for_tag(late.tag_id,
                                                                          at=late.first_seen))
        except StorageError:
            detail["vehicle"] = None
        alerts = self._outbox.sighting_alert("clone_suspect", late, detail)
        self._outbox.store(alerts)
        return alerts

    def jobs(self) -> list[Job]:
        return [Job("clones", self.s.clone_check_s, self.check)]
