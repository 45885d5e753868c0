"""``stolen_hit``: a sighting of a tag on the watchlist, the tracker's fastest path.

Per sighting one dict lookup in the in-memory watchlist (tracker/watchlist.py). Storage is
touched only on a hit: its detail is assembled (tracker/alerts/context.py), the alert is
published at once on ``{root}/alerts/stolen_hit`` (QoS 1) and returned, so the pipeline stores
it with the batch. A redelivery this instance has published already costs one set lookup.

The priority lane (tracker/hits.py) calls :meth:`StolenHandler.on_hit` on its own thread
when a gateway flags an open sighting: the same check against this instance's watchlist, the
alert published at once with what needs no history (no recent passes, no predictions). The
bulk lane's check of that sighting then finds the cause published (no second event: one alert
event per hit, whichever lane came first) and still returns the alert, with its full detail,
to be stored with the batch; hits themselves are never stored.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from datetime import datetime, timedelta

from pak.alert import Alert
from pak.types import Sighting, SightingId
from tracker.alerts.context import Registry, stolen_hit_detail
from tracker.alerts.handler import Job
from tracker.alerts.outbox import Outbox
from tracker.alerts.settings import AlertSettings
from tracker.storage.base import Storage
from tracker.storage.records import WatchEntry
from tracker.trails.movement import MovementModel
from tracker.watchlist import WatchlistCache

__all__ = ["StolenHandler"]


class StolenHandler:
    """Watchlist hits (see module doc)."""

    def __init__(self, outbox: Outbox, storage: Storage, watchlist: WatchlistCache,
                 registry: Registry, movement: MovementModel | None,
                 settings: AlertSettings) -> None:
        self._outbox = outbox
        self._storage = storage
        self._watchlist = watchlist
        self._registry = registry
        self._movement = movement
        self._recent = settings.alert_recent_passes
        self._predictions = settings.alert_predictions
        self._trip_gap = timedelta(seconds=settings.trip_gap_s)
        self._lane_lock = threading.Lock()  # the hit lane's thread against the bulk lane's
        self._via_hit: OrderedDict[SightingId, None] = OrderedDict()  # published, not stored

    def on_sightings(self, sightings: list[Sighting], received_at: datetime) -> list[Alert]:
        lookup = self._watchlist.lookup
        alerts: list[Alert] = []
        for s in sightings:
            entries = lookup(s.tag_id)
            if entries:
                alerts.extend(self._hit(s, entries, received_at))
        return alerts

    def on_hit(self, s: Sighting, received_at: datetime) -> bool:
        """The priority lane's fast path for one open sighting a gateway flagged: True when
        this instance's own watchlist holds the tag and the alert went out now."""
        entries = self._watchlist.lookup(s.tag_id)
        if not entries or s.state != "open":
            return False  # a gateway can make the centre look sooner, never make it believe
        with self._lane_lock:
            if self._outbox.published("stolen_hit", s.id, s.state):
                return False  # the bulk lane was first
            self._via_hit[s.id] = None
            if len(self._via_hit) > 10_000:
                self._via_hit.popitem(last=False)
        detail = stolen_hit_detail(s, entries, self._registry, self._storage, None,
                                   received_at=received_at, recent=0, predictions=0,
                                   trip_gap=self._trip_gap)
        self._outbox.sighting_alert("stolen_hit", s, detail)
        return True

    def _hit(self, s: Sighting, entries: Sequence[WatchEntry],
             received_at: datetime) -> list[Alert]:
        with self._lane_lock:
            via_hit = s.state == "open" and s.id in self._via_hit
            if via_hit:
                del self._via_hit[s.id]
        if not via_hit and self._outbox.published("stolen_hit", s.id, s.state):
            return []  # a redelivery: published and handed to storage already
        detail = stolen_hit_detail(s, entries, self._registry, self._storage, self._movement,
                                   received_at=received_at, recent=self._recent,
                                   predictions=self._predictions, trip_gap=self._trip_gap)
        return self._outbox.sighting_alert("stolen_hit", s, detail)

    def jobs(self) -> list[Job]:
        return []  # the watchlist reloads itself; the pipeline stores the hits
