"""What every handler does with an alert once it has decided one: find which alert the cause
belongs to, publish it, store it.

Alert ids and repeated causes (tracker/alerts/ids.py):

* every alert a sighting causes has the id ``{kind}:{gateway_id}:{spool_id}:{seq}`` of that
  sighting, so a redelivered message (or its ``closed`` form after the ``open``) yields the
  same id;
* one *open* alert per kind and subject (a stolen tag, a gateway, a reader): a new cause while
  one is open (not closed) updates that alert: same id (the first cause's), the new sighting
  joins its list, reader and detail follow the latest, and the update is published again, so
  an officer's screen moves with the vehicle instead of filling with new alerts. A stolen tag
  has one alert however many cases name it (all are listed in its detail);
* which alert is open comes from storage (so instances agree), with this instance's memory
  bridging the moment before its own batch commits;
* a sighting already folded into a closed alert (a redelivery after an officer closed it)
  never reopens it nor raises a new one.

Alerts raised off the hot path are stored at once and kept for the next try while storage is
down (:meth:`Outbox.store`); a hot-path alert is returned to the ingest pipeline, which stores
it with the batch of the sighting that caused it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pak.logs import event
from pak.timefmt import format_time
from pak.types import Sighting, SightingId
from pak.wire.alert import AlertRevisions, encode_alert
from pak.wire.topics import Topics
from tracker.alerts.ids import sighting_alert_id
from tracker.alerts.lifecycle import OPEN_STATUSES
from tracker.storage.base import Alert, AlertStore, StorageError
from tracker.storage.records import StoredAlert

__all__ = ["Outbox", "Publish", "Resolved"]

log = logging.getLogger("pak.tracker.alerts")

#: ``publish(topic, payload, qos)``: the tracker's MQTT connection.
Publish = Callable[[str, bytes, int], None]

#: How long this instance trusts its memory of an alert it raised that storage does not show
#: yet (its batch is still being written).
_TRUST_MEMORY_S = 30.0


@dataclass(frozen=True, slots=True)
class Resolved:
    """The alert a new cause belongs to."""

    alert_id: str
    status: str
    first_at: datetime | None
    new: bool

    @property
    def closed(self) -> bool:
        return self.status == "closed"


def _subject_of(kind: str, a: StoredAlert) -> str | None:
    if kind in ("reader_silent",):
        return a.reader_id
    if kind in ("gateway_offline", "clock_skew"):
        return a.gateway_id
    return a.tag_id


class Outbox:
    """Id resolution, publishing and storing, shared by the handlers of one engine."""

    def __init__(self, storage: AlertStore, publish: Publish, topics: Topics,
                 clock: Callable[[], datetime]) -> None:
        self.storage = storage
        self._publish = publish
        self.topics = topics
        self.clock = clock
        self._revs = AlertRevisions(clock=clock)  # the rev of each alert id's next update
        self._lock = threading.Lock()  # guards the retry buffer (hot path and timer)
        self._send_lock = threading.Lock()  # one rev order per id (see send)
        self._published_lock = threading.Lock()  # guards _published (hit lane and bulk lane)
        # alert memory of this instance: (kind, subject) -> (alert id, first at, monotonic)
        self._open: dict[tuple[str, str], tuple[str, datetime, float]] = {}
        # causes already published by this instance: (kind, sighting id, state)
        self._published: OrderedDict[tuple[str, SightingId, str], None] = OrderedDict()
        self._unstored: list[Alert] = []
        self.raised = 0
        self.updated = 0

    # --- which alert ------------------------------------------------------------------------------

    def _remember(self, kind: str, subject: str, alert_id: str, first_at: datetime) -> None:
        self._open[(kind, subject)] = (alert_id, first_at, time.monotonic())
        if len(self._open) > 100_000:
            horizon = time.monotonic() - _TRUST_MEMORY_S
            self._open = {k: v for k, v in self._open.items() if v[2] >= horizon}

    def resolve(self, kind: str, subject: str, candidate: str, *, sid: SightingId | None,
                tag_id: str | None) -> Resolved:
        """Which alert a new cause belongs to (module doc): the open alert of this kind and
        subject, the closed one that already holds this cause, or a new one."""
        mem = self._open.get((kind, subject))
        try:
            if tag_id is not None:
                found = self.storage.alerts(kind=kind, tag_id=tag_id, limit=50)
            else:
                found = self.storage.alerts(kind=kind, status=list(OPEN_STATUSES), limit=1000)
                got = self.storage.get_alert(candidate)
                if got is not None:
                    found = [got, *found]
        except StorageError:
            if mem is not None:
                return Resolved(mem[0], "new", mem[1], False)
            self._remember(kind, subject, candidate, self.clock())
            return Resolved(candidate, "new", None, True)
        for a in found:
            if a.alert_id == candidate or (sid is not None and sid in a.sightings):
                return Resolved(a.alert_id, a.status, a.at, False)
        for a in found:
            if a.status in OPEN_STATUSES and _subject_of(kind, a) == subject:
                self._remember(kind, subject, a.alert_id, a.at)
                return Resolved(a.alert_id, a.status, a.at, False)
        if mem is not None and time.monotonic() - mem[2] < _TRUST_MEMORY_S \
                and all(a.alert_id != mem[0] for a in found):
            return Resolved(mem[0], "new", mem[1], False)
        self._remember(kind, subject, candidate, self.clock())
        return Resolved(candidate, "new", None, True)

    # --- publishing -------------------------------------------------------------------------------

    def published(self, kind: str, sid: SightingId, state: str) -> bool:
        """Whether this instance has published this cause already (a redelivery)."""
        return (kind, sid, state) in self._published

    def first_publish(self, kind: str, sid: SightingId, state: str) -> bool:
        """True the first time this instance publishes this cause (redeliveries stay quiet).
        Check and mark are one step: the hit lane and the bulk lane meet the same sighting on
        two threads, and only one of them may publish it."""
        key = (kind, sid, state)
        with self._published_lock:
            if key in self._published:
                return False
            self._published[key] = None
            if len(self._published) > 50_000:
                self._published.popitem(last=False)
        return True

    def send(self, alert: Alert, *, with_status: bool = True) -> None:
        """Publish one alert (QoS 1); a broker that is away is logged, never raised.
        ``with_status=False``: an update that leaves the status as it is (pak/wire/alert.py)."""
        try:
            # one lock: the receive thread and the enrichment worker both publish, and each
            # id's revisions must reach the broker in the order they grow
            with self._send_lock:
                self._publish(self.topics.alerts(alert.kind),
                              encode_alert(alert, self._revs.next(alert.alert_id),
                                           with_status=with_status), 1)
        except Exception as e:  # the broker being away must not lose the stored alert
            event(log, logging.WARNING, "alert_publish_failed", alert_id=alert.alert_id,
                  error=repr(e)[:200])
            return
        event(log, logging.INFO, "alert", kind=alert.kind, alert_id=alert.alert_id,
              status=alert.status if with_status else None, tag_id=alert.tag_id,
              reader_id=alert.reader_id, gateway_id=alert.gateway_id)

    def sighting_alert(self, kind: str, s: Sighting, detail: dict[str, Any],
                       first_at: datetime | None = None) -> list[Alert]:
        """Raise or update the open ``kind`` alert of the sighting's tag; [] when nothing
        new (a redelivery this instance has published, or a cause of a closed alert)."""
        candidate = sighting_alert_id(kind, s.id)
        res = self.resolve(kind, s.tag_id, candidate, sid=s.id, tag_id=s.tag_id)
        if res.closed:
            return []
        first = res.first_at or first_at or s.first_seen
        # A new alert is raised at the vehicle's arrival; an update at its latest read (storage
        # keeps the first ``at`` and lets location and detail follow the latest).
        alert = Alert(alert_id=res.alert_id, kind=kind,
                      at=s.first_seen if res.new else s.last_seen, status=res.status,
                      tag_id=s.tag_id, reader_id=s.reader_id, gateway_id=s.gateway_id,
                      sighting=s.id,
                      detail={**detail, "first_at": format_time(first), "update": not res.new})
        if self.first_publish(kind, s.id, s.state):
            self.send(alert)
            if res.new:
                self.raised += 1
            else:
                self.updated += 1
        return [alert]

    # --- storing ----------------------------------------------------------------------------------

    def store(self, alerts: Sequence[Alert]) -> None:
        """Store alerts raised off the hot path; kept and retried while storage is down
        (``store([])`` retries what is kept)."""
        if not alerts and not self._unstored:
            return
        with self._lock:
            pending = [*self._unstored, *alerts]
            self._unstored = []
        try:
            self.storage.upsert_alerts(pending)
        except StorageError:
            with self._lock:
                self._unstored = pending + self._unstored
            raise

    def close(self) -> None:
        """A last try at storing what is kept (at stop)."""
        with self._lock:
            left = self._unstored
            self._unstored = []
        if left:
            try:
                self.storage.upsert_alerts(left)
            except StorageError as e:
                event(log, logging.ERROR, "alerts_not_stored", alerts=len(left),
                      error=str(e)[:300])
