"""``stolen_hit``: a sighting of a tag on the watchlist, the tracker's fastest path.

Per sighting one dict lookup in the in-memory watchlist (tracker/watchlist.py). Storage is
touched only on a hit: its detail is assembled (tracker/alerts/context.py), the alert is
published at once on ``{root}/alerts/stolen_hit`` (QoS 1) and returned, so the pipeline stores
it with the batch. A redelivery this instance has published already costs one set lookup.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from pak.alert import Alert
from pak.types import Sighting
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

    def on_sightings(self, sightings: list[Sighting], received_at: datetime) -> list[Alert]:
        lookup = self._watchlist.lookup
        alerts: list[Alert] = []
        for s in sightings:
            entries = lookup(s.tag_id)
            if entries:
                alerts.extend(self._hit(s, entries, received_at))
        return alerts

    def _hit(self, s: Sighting, entries: Sequence[WatchEntry],
             received_at: datetime) -> list[Alert]:
        if self._outbox.published("stolen_hit", s.id, s.state):
            return []  # a redelivery: published and handed to storage already
        detail = stolen_hit_detail(s, entries, self._registry, self._storage, self._movement,
                                   received_at=received_at, recent=self._recent,
                                   predictions=self._predictions, trip_gap=self._trip_gap)
        return self._outbox.sighting_alert("stolen_hit", s, detail)

    def jobs(self) -> list[Job]:
        return []  # the watchlist reloads itself; the pipeline stores the hits
