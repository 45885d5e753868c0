"""The alert engine: the ingest pipeline's SightingHook and WatchlistHook, plus a timer.

Hot path (:meth:`AlertEngine.on_sightings`, the MQTT network thread, every message before it
is batched): per sighting one dict lookup in the watchlist, one in the paired-vehicle map, a
look at its flags (counted in memory), and an append to the clone buffer. Storage is touched
only on a stolen-vehicle hit: its alert is built, published at once on
``{root}/alerts/stolen_hit`` (QoS 1) and returned, so the pipeline stores it with the batch.

Timer (one thread, :meth:`AlertEngine.tick`): tamper and low-battery alerts whose thresholds the
hot path saw crossed, clone checks of what was received against the
tags' history in storage, owner-key pairing checks once their window is over, gateway and
reader health (tracker/alert_monitors.py), registry refresh. Alerts raised here are published
and stored at once (retried while storage is down).

Alert ids and repeated hits (tracker/alert_ids.py):

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
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pak.logs import event
from pak.timefmt import format_time, utcnow
from pak.types import Sighting, SightingId, merge_sightings
from pak.wire.alert import AlertRevisions, encode_alert
from pak.wire.topics import Topics
from tracker.alert_context import (
    PairedVehicle,
    Registry,
    reader_json,
    sighting_json,
    stolen_hit_detail,
    vehicle_json,
)
from tracker.alert_ids import sighting_alert_id, subject_alert_id
from tracker.alert_lifecycle import OPEN_STATUSES
from tracker.alert_monitors import ClockMonitor, Finding, GatewayMonitor, SilenceMonitor
from tracker.alert_rules import (
    CloneVerdict,
    PassPoint,
    WindowCount,
    clone_verdict,
    key_accompanied,
    pairing_due,
)
from tracker.alert_settings import AlertSettings
from tracker.geo import haversine_m
from tracker.history import reader_counts, tag_histories
from tracker.movement import MovementModel
from tracker.storage.base import Alert, Storage, StorageError
from tracker.storage.records import StoredAlert, TagPass
from tracker.watchlist import WatchlistCache

__all__ = ["AlertEngine", "Publish"]

log = logging.getLogger("pak.tracker.alerts")

#: ``publish(topic, payload, qos)``: the tracker's MQTT connection.
Publish = Callable[[str, bytes, int], None]

#: The actor recorded when the engine itself closes an alert whose cause has cleared.
ENGINE_ACTOR = "pak-tracker"
#: How long this instance trusts its memory of an alert it raised that storage does not show
#: yet (its batch is still being written).
_TRUST_MEMORY_S = 30.0
_CLONE_BUFFER_MAX = 200_000


@dataclass(frozen=True, slots=True)
class _Resolved:
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


def _pp(s: Sighting) -> PassPoint:
    return PassPoint(s.reader_id, s.first_seen, s.last_seen)


class AlertEngine:
    """Watchlist hits and the other alert kinds for one tracker instance (see module doc)."""

    def __init__(self, storage: Storage, publish: Publish, *, topics: Topics | None = None,
                 settings: AlertSettings | None = None,
                 clock: Callable[[], datetime] = utcnow) -> None:
        self.storage = storage
        self._publish = publish
        self.topics = topics or Topics()
        self.s = s = settings or AlertSettings()
        self._clock = clock
        self._revs = AlertRevisions(clock=clock)  # the rev of each alert id's next update
        self.watchlist = WatchlistCache(storage, reload_s=s.watchlist_reload_s, clock=clock)
        self.registry = Registry(storage)
        self.trip_gap = timedelta(seconds=s.trip_gap_s)
        self.movement = MovementModel(storage, lambda: self.registry.readers, days=s.model_days,
                                      refresh_s=s.model_refresh_s, trip_gap=self.trip_gap,
                                      max_sightings=s.model_max_sightings, clock=clock)
        self.gateways = GatewayMonitor(s)
        self.clocks = ClockMonitor(s)
        self.silence = SilenceMonitor(
            s, lambda a, b: reader_counts(storage, since=a, until=b))
        self._tamper: WindowCount[str] = WindowCount(
            threshold=s.tamper_threshold, window_s=s.tamper_window_s,
            cooldown_s=s.tamper_cooldown_s)
        self._low_battery: WindowCount[str] = WindowCount(
            threshold=s.low_battery_threshold, window_s=s.low_battery_window_s,
            cooldown_s=s.low_battery_cooldown_s)
        self._lock = threading.Lock()  # guards the buffers shared with the timer
        self._clone_buffer: list[tuple[float, Sighting]] = []
        self._clone_dropped = 0
        self._pairing: dict[SightingId, tuple[Sighting, PairedVehicle]] = {}
        self._key_passes: dict[str, deque[PassPoint]] = {}
        # alert memory of this instance: (kind, subject) -> (alert id, first at, monotonic)
        self._open: dict[tuple[str, str], tuple[str, datetime, float]] = {}
        # causes already handled by this instance: (kind, sighting id, state)
        self._published: OrderedDict[tuple[str, SightingId, str], None] = OrderedDict()
        self._counted: OrderedDict[tuple[str, SightingId], None] = OrderedDict()
        self._flag_fired: list[tuple[str, Sighting]] = []  # thresholds crossed, to raise
        self._episodes: dict[tuple[str, str], str] = {}  # raised by a monitor, to clear later
        self._unstored: list[Alert] = []
        self._distances: dict[tuple[str, str], float | None] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._next: dict[str, float] = {}
        self._job_failing: dict[str, bool] = {}
        self.raised = 0
        self.updated = 0

    # --- life cycle -----------------------------------------------------------------------------

    def start(self, *, timer: bool = True) -> None:
        """Load the watchlist and the registry (storage is up: the tracker migrated it), then
        start the watchlist reload, the movement model's learning and the timer."""
        try:
            n = self.watchlist.load()
            self.registry.refresh()
        except StorageError as e:
            n = len(self.watchlist)
            event(log, logging.WARNING, "alerts_start_degraded", error=str(e)[:300],
                  action="the periodic reload retries")
        self.watchlist.start()
        self.movement.start()
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
        self.watchlist.stop()
        self.movement.stop()
        with self._lock:
            left = self._unstored
            self._unstored = []
        if left:
            try:
                self.storage.upsert_alerts(left)
            except StorageError as e:
                event(log, logging.ERROR, "alerts_not_stored", alerts=len(left),
                      error=str(e)[:300])

    # --- the hot path (MQTT network thread) -----------------------------------------------------

    def on_watchlist(self, change: dict[str, Any], received_at: datetime) -> None:
        """WatchlistHook: an announcement on ``{root}/watchlist`` changes the cache at once."""
        self.watchlist.on_watchlist(change, received_at)

    def on_sightings(self, sightings: list[Sighting], received_at: datetime) -> list[Alert]:
        """SightingHook: check one message's sightings; publish and return what they raise."""
        alerts: list[Alert] = []
        lookup = self.watchlist.lookup
        paired = self.registry.paired
        keys = self.registry.key_tags
        freshest = None
        for s in sightings:
            entries = lookup(s.tag_id)
            if entries:
                alerts.extend(self._stolen_hit(s, entries, received_at))
            if s.flags:
                self._flagged(s)
            if paired and s.tag_id in paired:
                self._pairing_seen(s, paired[s.tag_id])
            if keys and s.tag_id in keys:
                self._key_seen(s)
            if freshest is None or s.last_seen > freshest:
                freshest = s.last_seen
        if freshest is not None:
            self.clocks.add(sightings[0].gateway_id, received_at,
                            (received_at - freshest).total_seconds())
        mono = time.monotonic()
        with self._lock:
            buf = self._clone_buffer
            buf.extend((mono, s) for s in sightings)
            if len(buf) > _CLONE_BUFFER_MAX:  # storage down for long: check the newest only
                drop = len(buf) - _CLONE_BUFFER_MAX
                del buf[:drop]
                self._clone_dropped += drop
        return alerts

    # --- raising ----------------------------------------------------------------------------------

    def _remember(self, kind: str, subject: str, alert_id: str, first_at: datetime) -> None:
        self._open[(kind, subject)] = (alert_id, first_at, time.monotonic())
        if len(self._open) > 100_000:
            horizon = time.monotonic() - _TRUST_MEMORY_S
            self._open = {k: v for k, v in self._open.items() if v[2] >= horizon}

    def _resolve(self, kind: str, subject: str, candidate: str, *, sid: SightingId | None,
                 tag_id: str | None) -> _Resolved:
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
                return _Resolved(mem[0], "new", mem[1], False)
            self._remember(kind, subject, candidate, self._clock())
            return _Resolved(candidate, "new", None, True)
        for a in found:
            if a.alert_id == candidate or (sid is not None and sid in a.sightings):
                return _Resolved(a.alert_id, a.status, a.at, False)
        for a in found:
            if a.status in OPEN_STATUSES and _subject_of(kind, a) == subject:
                self._remember(kind, subject, a.alert_id, a.at)
                return _Resolved(a.alert_id, a.status, a.at, False)
        if mem is not None and time.monotonic() - mem[2] < _TRUST_MEMORY_S \
                and all(a.alert_id != mem[0] for a in found):
            return _Resolved(mem[0], "new", mem[1], False)
        self._remember(kind, subject, candidate, self._clock())
        return _Resolved(candidate, "new", None, True)

    def _first_publish(self, kind: str, sid: SightingId, state: str) -> bool:
        """True the first time this instance publishes this cause (redeliveries stay quiet)."""
        key = (kind, sid, state)
        if key in self._published:
            return False
        self._published[key] = None
        if len(self._published) > 50_000:
            self._published.popitem(last=False)
        return True

    def _send(self, alert: Alert) -> None:
        try:
            self._publish(self.topics.alerts(alert.kind),
                          encode_alert(alert, self._revs.next(alert.alert_id)), 1)
        except Exception as e:  # the broker being away must not lose the stored alert
            event(log, logging.WARNING, "alert_publish_failed", alert_id=alert.alert_id,
                  error=repr(e)[:200])
            return
        event(log, logging.INFO, "alert", kind=alert.kind, alert_id=alert.alert_id,
              status=alert.status, tag_id=alert.tag_id, reader_id=alert.reader_id,
              gateway_id=alert.gateway_id)

    def _sighting_alert(self, kind: str, s: Sighting, detail: dict[str, Any],
                        first_at: datetime | None = None) -> list[Alert]:
        """Raise or update the open ``kind`` alert of the sighting's tag; [] when nothing
        new (a redelivery this instance has published, or a cause of a closed alert)."""
        candidate = sighting_alert_id(kind, s.id)
        res = self._resolve(kind, s.tag_id, candidate, sid=s.id, tag_id=s.tag_id)
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
        if self._first_publish(kind, s.id, s.state):
            self._send(alert)
            if res.new:
                self.raised += 1
            else:
                self.updated += 1
        return [alert]

    def _stolen_hit(self, s: Sighting, entries: Sequence[Any],
                    received_at: datetime) -> list[Alert]:
        if ("stolen_hit", s.id, s.state) in self._published:
            return []  # a redelivery: published and handed to storage already
        detail = stolen_hit_detail(s, entries, self.registry, self.storage, self.movement,
                                   received_at=received_at, recent=self.s.alert_recent_passes,
                                   predictions=self.s.alert_predictions,
                                   trip_gap=self.trip_gap)
        return self._sighting_alert("stolen_hit", s, detail)

    def _flagged(self, s: Sighting) -> None:
        """Count a flagged sighting (memory only); a count that crosses its threshold queues
        the alert for the timer, which reads storage (the vehicle, the open alert): the
        receive thread never waits for the database for these kinds."""
        for flag, counter, kind in (("tamper", self._tamper, "tamper"),
                                    ("low_battery", self._low_battery, "low_battery")):
            if flag not in s.flags:
                continue
            key = (kind, s.id)
            if key in self._counted:  # the open and closed forms are one sighting
                continue
            self._counted[key] = None
            if len(self._counted) > 50_000:
                self._counted.popitem(last=False)
            with self._lock:  # the timer prunes the counters
                if counter.add(s.tag_id, s.first_seen):
                    self._flag_fired.append((kind, s))

    def raise_flagged(self) -> list[Alert]:
        """Raise the ``tamper`` and ``low_battery`` alerts whose thresholds were crossed."""
        with self._lock:
            fired, self._flag_fired = self._flag_fired, []
        out: list[Alert] = []
        for i, (kind, s) in enumerate(fired):
            counter = self._tamper if kind == "tamper" else self._low_battery
            reader = self.registry.reader(s.reader_id)
            detail: dict[str, Any] = {"reader": reader_json(s.reader_id, reader),
                                      "seen": sighting_json(s, reader),
                                      "threshold": counter.threshold,
                                      "window_s": counter.window.total_seconds()}
            try:
                detail["vehicle"] = vehicle_json(
                    self.storage.vehicle_for_tag(s.tag_id, at=s.first_seen))
                alerts = self._sighting_alert(kind, s, detail)
                self._store(alerts)
            except StorageError:
                with self._lock:  # the rest waits for the next tick
                    self._flag_fired = fired[i:] + self._flag_fired
                raise
            out.extend(alerts)
        return out

    # --- owner key pairing ------------------------------------------------------------------------

    def _pairing_seen(self, s: Sighting, pv: PairedVehicle) -> None:
        with self._lock:
            prev = self._pairing.get(s.id)
            merged = s if prev is None else merge_sightings(prev[0], s)
            self._pairing[s.id] = (merged, pv)

    def _key_seen(self, s: Sighting) -> None:
        with self._lock:
            q = self._key_passes.get(s.tag_id)
            if q is None:
                q = self._key_passes[s.tag_id] = deque(maxlen=32)
            q.append(_pp(s))

    def check_pairing(self, now: datetime) -> list[Alert]:
        """Decide the vehicle passes whose pairing window is over: the key tag at the same
        reader within the window (this instance's memory, else storage) or ``unaccompanied``."""
        w = self.s.pairing_window_s
        with self._lock:
            due = [(sid, v) for sid, v in self._pairing.items()
                   if pairing_due(_pp(v[0]), now, w, self.s.pairing_lag_s)]
            for sid, _ in due:
                del self._pairing[sid]
            keys = {k: list(q) for k, q in self._key_passes.items()}
        out: list[Alert] = []
        for _, (s, pv) in due:
            stored = self.storage.get_sighting(s.id)
            if stored is not None:
                s = merge_sightings(stored, s)  # its closed form may have gone elsewhere
                if not pairing_due(_pp(s), now, w, self.s.pairing_lag_s):
                    with self._lock:
                        self._pairing[s.id] = (s, pv)
                    continue
            vehicle = _pp(s)
            if key_accompanied(vehicle, keys.get(pv.key_tag_id, ()), w):
                continue
            span = timedelta(seconds=w)
            near = self.storage.sightings(tag_id=pv.key_tag_id, reader_ids=[s.reader_id],
                                          since=s.first_seen - span - timedelta(hours=1),
                                          until=s.last_seen + span + timedelta(seconds=1))
            if key_accompanied(vehicle, [_pp(k) for k in near], w):
                continue
            reader = self.registry.reader(s.reader_id)
            detail = {"vehicle_id": pv.vehicle_id, "key_tag_id": pv.key_tag_id,
                      "window_s": w, "reader": reader_json(s.reader_id, reader),
                      "seen": sighting_json(s, reader),
                      "vehicle": vehicle_json(self.storage.get_vehicle(pv.vehicle_id))}
            alerts = self._sighting_alert("unaccompanied", s, detail)
            self._store(alerts)
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

    # --- clone checks -----------------------------------------------------------------------------

    def _distance(self, a: str, b: str) -> float | None:
        key = (a, b) if a < b else (b, a)
        cache = self._distances
        if key in cache:
            return cache[key]
        ra, rb = self.registry.reader(a), self.registry.reader(b)
        d = None if ra is None or rb is None else haversine_m(ra.latitude, ra.longitude,
                                                             rb.latitude, rb.longitude)
        if len(cache) > 1_000_000:  # readers moved or the city is huge: start afresh
            cache.clear()
        cache[key] = d
        return d

    def _worst_clone(self, new: Sighting,
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
            v = clone_verdict(PassPoint(h.reader_id, h.first_seen, h.last_seen), _pp(new), d,
                              max_speed_kmh=s.alert_max_speed_kmh,
                              min_distance_m=s.clone_min_distance_m, slack_s=s.clone_slack_s)
            if v is None:
                continue
            if worst is None or v.reason == "simultaneous" or (
                    worst[1].reason == "too_fast" and (v.speed_kmh or 0) > (worst[1].speed_kmh
                                                                           or 0)):
                worst = (h, v)
        return worst

    def check_clones(self, now_mono: float | None = None) -> list[Alert]:
        """Check the sightings received at least ``clone_lag_s`` ago against their tags'
        history in storage (every instance's share is there)."""
        cutoff = (time.monotonic() if now_mono is None else now_mono) - self.s.clone_lag_s
        with self._lock:
            buf = self._clone_buffer
            i = 0
            while i < len(buf) and buf[i][0] <= cutoff:
                i += 1
            taken, self._clone_buffer = buf[:i], buf[i:]
        if not taken:
            return []
        by_tag: dict[str, dict[SightingId, Sighting]] = {}
        placed = self.registry.readers
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
            hist = tag_histories(self.storage, by_tag, since=min(firsts) - window,
                                 until=max(firsts) + window)
        except StorageError:
            with self._lock:  # try again next time
                self._clone_buffer = taken + self._clone_buffer
            raise
        out: list[Alert] = []
        for tag, news in by_tag.items():
            history = hist.get(tag, [])
            if len(history) + len(news) < 2:
                continue
            for n in news.values():
                found = self._worst_clone(n, history)
                if found is None:
                    continue
                other, v = found
                out.extend(self._clone_alert(n, other, v))
                break  # one finding per tag per check: the alert is per tag anyway
        return out

    def _clone_alert(self, new: Sighting, other: TagPass, v: CloneVerdict) -> list[Alert]:
        """The alert of a clone pair, on the later of its two sightings (whichever instance
        finds the pair derives the same id)."""
        def order(x: Sighting | TagPass) -> tuple[Any, ...]:
            return (x.first_seen, x.last_seen, x.gateway_id, x.spool_id, x.seq)

        early: Sighting | TagPass
        if order(other) > order(new):
            stored = self.storage.get_sighting(other.sid)
            if stored is None:  # gone meanwhile (retention): nothing to pin the alert on
                return []
            early, late = new, stored
        else:
            early, late = other, new
        passes = []
        for x in (early, late):
            passes.append({**reader_json(x.reader_id, self.registry.reader(x.reader_id)),
                           "first_seen": format_time(x.first_seen),
                           "last_seen": format_time(x.last_seen),
                           "sighting": [x.gateway_id, x.spool_id, x.seq]})
        detail: dict[str, Any] = {
            "reason": v.reason, "distance_m": round(v.distance_m, 1), "gap_s": round(v.gap_s, 3),
            "speed_kmh": None if v.speed_kmh is None else round(v.speed_kmh, 1),
            "max_speed_kmh": self.s.alert_max_speed_kmh, "passes": passes}
        try:
            detail["vehicle"] = vehicle_json(self.storage.vehicle_for_tag(late.tag_id,
                                                                         at=late.first_seen))
        except StorageError:
            detail["vehicle"] = None
        alerts = self._sighting_alert("clone_suspect", late, detail)
        self._store(alerts)
        return alerts

    # --- monitors -----------------------------------------------------------------------------

    def _finding(self, f: Finding) -> list[Alert]:
        key = (f.kind, f.subject)
        is_gw = f.kind in ("gateway_offline", "clock_skew")
        if f.transition == "raise":
            candidate = subject_alert_id(f.kind, f.subject, f.since)
            res = self._resolve(f.kind, f.subject, candidate, sid=None, tag_id=None)
            if res.closed:
                return []
            self._episodes[key] = res.alert_id
            detail = {**f.detail, "since": format_time(f.since), "update": not res.new}
            if f.kind == "reader_silent":
                detail["reader"] = reader_json(f.subject, self.registry.reader(f.subject))
            alert = Alert(alert_id=res.alert_id, kind=f.kind, at=f.since, status=res.status,
                          reader_id=None if is_gw else f.subject,
                          gateway_id=f.subject if is_gw else None, detail=detail)
            self._store([alert])
            if res.new:
                self.raised += 1
                self._send(alert)
            return [alert]
        alert_id = self._episodes.pop(key, None)
        if alert_id is None:
            return []
        stored = self.storage.get_alert(alert_id)
        if stored is None or stored.status == "closed":
            return []
        closed = self.storage.set_alert_status(alert_id, "closed", actor=ENGINE_ACTOR,
                                               at=self._clock(), note=f"cleared: {f.detail}")
        alert = Alert(alert_id=alert_id, kind=f.kind, at=closed.at, status="closed",
                      reader_id=closed.reader_id, gateway_id=closed.gateway_id,
                      detail={**closed.detail, **f.detail, "cleared": True})
        self._send(alert)
        return [alert]

    def check_gateways(self, now: datetime) -> list[Alert]:
        records = self.storage.gateways()
        for g in records:
            self.clocks.add_health(g)
        out: list[Alert] = []
        for f in self.gateways.check(records, now) + self.clocks.check(now):
            out.extend(self._finding(f))
        return out

    def check_readers(self, now: datetime) -> list[Alert]:
        out: list[Alert] = []
        for f in self.silence.check(now, self.registry.readers):
            out.extend(self._finding(f))
        return out

    # --- the timer ----------------------------------------------------------------------------

    def _store(self, alerts: Sequence[Alert]) -> None:
        """Store alerts raised off the hot path; kept and retried while storage is down."""
        if not alerts:
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

    def _jobs(self) -> list[tuple[str, float, Callable[[], object]]]:
        s = self.s
        return [
            ("store", s.alert_tick_s, lambda: self._store([])),
            ("flags", s.alert_tick_s, self.raise_flagged),
            ("clones", s.clone_check_s, self.check_clones),
            ("pairing", s.alert_tick_s, lambda: self.check_pairing(self._clock())),
            ("gateways", s.gateway_check_s, lambda: self.check_gateways(self._clock())),
            ("readers", s.silent_check_s, lambda: self.check_readers(self._clock())),
            ("registry", 60.0, self._refresh_registry),
            ("prune", 300.0, self._prune),
        ]

    def _refresh_registry(self) -> None:
        self.registry.refresh()
        self._distances = {}  # a reader may have moved

    def _prune(self) -> None:
        now = self._clock()
        with self._lock:
            self._tamper.prune(now)
            self._low_battery.prune(now)

    def tick(self) -> None:
        """Run the timer's due jobs once (each failing job logs once, and is retried)."""
        mono = time.monotonic()
        for name, every, job in self._jobs():
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
