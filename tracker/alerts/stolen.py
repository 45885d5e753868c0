"""``stolen_hit``: a sighting of a tag on the watchlist, the tracker's fastest path.

Per sighting one dict lookup in the in-memory watchlist (tracker/watchlist.py). On a hit nothing
waits for storage (this runs on the MQTT receive thread): the alert is built from what memory
holds (the watchlist entry, the registry's reader, the open alerts this instance knows),
published at once on ``{root}/alerts/{kind}`` (QoS 1) and returned, so the pipeline stores it
with the batch; then it is queued for the enrichment worker (tracker/alerts/enrich.py), which
publishes the vehicle, earlier passes and predictions as an update of the same alert.

The priority lane (tracker/hits.py) calls :meth:`StolenHandler.on_hit` on its own thread when
a gateway flags an open sighting: the same check against this instance's watchlist, the same
alert published at once. The bulk lane's check of that sighting then finds the cause published
(no second event: one alert event per hit, whichever lane came first) and returns the alerts
the hit lane raised, to be stored with the batch; hits themselves are never stored.

Ids (tracker/alerts/ids.py :func:`stolen_alert_id`): one open alert per watchlist entry,
``stolen_hit:{tag}:{case}``, so every instance derives the same id without asking storage;
each hit is an event of it (its sighting joins the alert, a new ``rev``). Once storage says an
officer closed it (loaded at start, learned by the worker), the entry's next hit opens
``stolen_hit:{tag}:{case}:{since_ms}``; a sighting the closed alert holds, or not newer than
its last hit (a late redelivery), raises nothing. Only a new alert is published with a status
("new"); every update (a next hit, the enrichment) carries ``"status": null``, "unchanged"
(pak/wire/alert.py), and storage's upsert never changes a status: an officer's
"acknowledged" stays.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from pak.alert import Alert
from pak.logs import event
from pak.timefmt import format_time
from pak.types import Sighting, SightingId
from tracker.alerts.context import Registry, enrichment, hit_detail
from tracker.alerts.enrich import EnrichmentWorker
from tracker.alerts.handler import Job
from tracker.alerts.ids import parse_alert_id, stolen_alert_id
from tracker.alerts.outbox import Outbox
from tracker.alerts.settings import AlertSettings
from tracker.storage.base import Storage
from tracker.storage.records import StoredAlert, WatchEntry
from tracker.trails.movement import MovementModel
from tracker.watchlist import WatchlistCache

__all__ = ["StolenHandler"]

log = logging.getLogger("pak.tracker.alerts")

KIND = "stolen_hit"


@dataclass(frozen=True, slots=True)
class _Known:
    """What this instance knows of a watchlist entry's latest alert."""

    alert_id: str
    first_at: datetime
    last_at: datetime
    status: str
    covered: frozenset[SightingId] = frozenset()  # the sightings of a closed alert
    latest: SightingId | None = None  # the hit this instance published last


class StolenHandler:
    """Watchlist hits (see module doc)."""

    def __init__(self, outbox: Outbox, storage: Storage, watchlist: WatchlistCache,
                 registry: Registry, movement: MovementModel | None,
                 settings: AlertSettings, *, worker: EnrichmentWorker | None = None) -> None:
        self._outbox = outbox
        self._storage = storage
        self._watchlist = watchlist
        self._registry = registry
        self._lock = threading.Lock()  # the receive thread and the worker share _known
        self._known: dict[tuple[str, str], _Known] = {}
        self._lane_lock = threading.Lock()  # the hit lane's thread against the bulk lane's
        # raised by the hit lane, not yet handed to the bulk lane's batch for storage
        self._via_hit: OrderedDict[SightingId, list[Alert]] = OrderedDict()
        trip_gap = timedelta(seconds=settings.trip_gap_s)

        def enrich(s: Sighting) -> dict[str, object]:
            return enrichment(s, registry, storage, movement,
                              recent=settings.alert_recent_passes,
                              predictions=settings.alert_predictions, trip_gap=trip_gap)

        self.worker = worker or EnrichmentWorker(
            outbox, storage, enrich, on_stored=self.learn, is_latest=self.is_latest,
            capacity=settings.alert_enrich_queue, clock=outbox.clock)

    # --- memory ---------------------------------------------------------------------------------

    @staticmethod
    def _entry_of(a: StoredAlert) -> tuple[str, str] | None:
        """The (tag, case) an alert id of the per-entry form names; None for older forms."""
        try:
            kind, parts = parse_alert_id(a.alert_id)
        except ValueError:
            return None
        if kind != KIND or a.tag_id is None or len(parts) not in (2, 3) \
                or parts[0] != a.tag_id:
            return None
        return parts[0], parts[1]

    def load(self) -> None:
        """What storage holds of the entries' latest alerts (at start; raises StorageError)."""
        found = self._storage.alerts(kind=KIND, limit=100_000)  # newest first
        with self._lock:
            for a in found:
                key = self._entry_of(a)
                if key is not None and key not in self._known:
                    self._known[key] = _Known(a.alert_id, a.at, a.last_at, a.status,
                                              frozenset(a.sightings))

    def learn(self, alert_id: str, stored: StoredAlert) -> None:
        """The worker's news from storage: the alert's status (an officer may have moved it)."""
        key = self._entry_of(stored)
        if key is None:
            return
        with self._lock:
            k = self._known.get(key)
            if k is None or k.alert_id == alert_id:
                self._known[key] = _Known(alert_id, stored.at,
                                          max(stored.last_at, k.last_at) if k else stored.last_at,
                                          stored.status, frozenset(stored.sightings),
                                          k.latest if k else None)

    def is_latest(self, alert: Alert) -> bool:
        """Whether ``alert`` is still its entry's latest hit this instance published (an
        enrichment of an older one would move the officer's map back)."""
        if alert.tag_id is None or not isinstance(alert.detail.get("case"), str):
            return True
        with self._lock:
            k = self._known.get((alert.tag_id, alert.detail["case"]))
        return k is None or k.alert_id != alert.alert_id or k.latest in (None, alert.sighting)

    # --- the hot path -----------------------------------------------------------------------------

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
            if not self._outbox.first_publish(KIND, s.id, s.state):
                return False  # the bulk lane was first
            self._via_hit[s.id] = self._raise(s, entries, received_at)
            if len(self._via_hit) > 10_000:
                self._via_hit.popitem(last=False)
        return True

    def _hit(self, s: Sighting, entries: Sequence[WatchEntry],
             received_at: datetime) -> list[Alert]:
        with self._lane_lock:
            held = self._via_hit.pop(s.id, None) if s.state == "open" else None
            if held is not None:
                return held  # published by the hit lane: stored with this batch
            if not self._outbox.first_publish(KIND, s.id, s.state):
                return []  # a redelivery: published and handed to storage already
        return self._raise(s, entries, received_at)

    def _raise(self, s: Sighting, entries: Sequence[WatchEntry],
               received_at: datetime) -> list[Alert]:
        """Publish the hit on each of its entries' alerts and queue their enrichment."""
        base = hit_detail(s, entries, self._registry, received_at=received_at)
        out: list[Alert] = []
        for e in entries:
            alert = self._alert_for(s, e, base)
            if alert is None:
                continue
            self._outbox.send(alert, with_status=not alert.detail["update"])
            if not self.worker.submit(alert, s):
                event(log, logging.DEBUG, "alert_not_enriched", alert_id=alert.alert_id)
            out.append(alert)
        return out

    def _alert_for(self, s: Sighting, e: WatchEntry, base: dict[str, object]) -> Alert | None:
        key = (s.tag_id, e.case_no)
        with self._lock:
            k = self._known.get(key)
            if k is not None and k.status == "closed":
                if s.id in k.covered or s.last_seen <= k.last_at:
                    return None  # a late delivery of what the closed alert covered
                k = None
                aid = stolen_alert_id(s.tag_id, e.case_no, since=s.first_seen)
            elif k is None:
                aid = stolen_alert_id(s.tag_id, e.case_no)
            else:
                aid = k.alert_id
            new = k is None
            first = s.first_seen if k is None else min(k.first_at, s.first_seen)
            last = s.last_seen if k is None else max(k.last_at, s.last_seen)
            status = "new" if k is None else k.status
            self._known[key] = _Known(aid, first, last, status, latest=s.id)
        if new:
            self._outbox.raised += 1
        else:
            self._outbox.updated += 1
        return Alert(alert_id=aid, kind=KIND, at=s.first_seen if new else s.last_seen,
                     status=status, tag_id=s.tag_id, reader_id=s.reader_id,
                     gateway_id=s.gateway_id, sighting=s.id,
                     detail={**base, "case": e.case_no, "first_at": format_time(first),
                             "update": not new})

    def jobs(self) -> list[Job]:
        return []  # the watchlist reloads itself; the pipeline stores the hits
