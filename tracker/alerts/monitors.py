"""``gateway_offline``, ``clock_skew`` and ``reader_silent``: the health of the infrastructure.

The hot path takes one clock sample per sightings message (receive time minus the freshest
``last_seen``); the timer feeds the monitors of tracker/alerts/episodes.py with what storage
holds (gateway records, counts per reader) and turns their findings into alerts: a ``raise``
makes (or updates) the episode's alert, a ``clear`` closes the alert this instance raised,
recorded as done by :data:`ENGINE_ACTOR`.
"""

from __future__ import annotations

from datetime import datetime

from pak.alert import Alert
from pak.timefmt import format_time
from pak.types import Sighting
from tracker.alerts.context import Registry, reader_json
from tracker.alerts.episodes import ClockMonitor, Finding, GatewayMonitor, SilenceMonitor
from tracker.alerts.handler import Handler, Job
from tracker.alerts.ids import subject_alert_id
from tracker.alerts.outbox import Outbox
from tracker.alerts.settings import AlertSettings
from tracker.storage.base import Storage
from tracker.trails.history import reader_counts

__all__ = ["ENGINE_ACTOR", "MonitorsHandler"]

#: The actor recorded when the engine itself closes an alert whose cause has cleared.
ENGINE_ACTOR = "pak-tracker"


class MonitorsHandler(Handler):
    """Gateways, their clocks, and readers (see module doc)."""

    def __init__(self, outbox: Outbox, storage: Storage, registry: Registry,
                 settings: AlertSettings) -> None:
        super().__init__(outbox, storage, registry, settings)
        self.gateways = GatewayMonitor(settings)
        self.clocks = ClockMonitor(settings)
        self.silence = SilenceMonitor(
            settings, lambda a, b: reader_counts(storage, since=a, until=b))
        self._episodes: dict[tuple[str, str], str] = {}  # raised here, to clear later

    def on_sightings(self, sightings: list[Sighting], received_at: datetime) -> list[Alert]:
        if sightings:
            freshest = max(s.last_seen for s in sightings)
            self.clocks.add(sightings[0].gateway_id, received_at,
                            (received_at - freshest).total_seconds())
        return []

    def _finding(self, f: Finding) -> list[Alert]:
        key = (f.kind, f.subject)
        is_gw = f.kind in ("gateway_offline", "clock_skew")
        out = self._outbox
        if f.transition == "raise":
            candidate = subject_alert_id(f.kind, f.subject, f.since)
            res = out.resolve(f.kind, f.subject, candidate, sid=None, tag_id=None)
            if res.closed:
                return []
            self._episodes[key] = res.alert_id
            detail = {**f.detail, "since": format_time(f.since), "update": not res.new}
            if f.kind == "reader_silent":
                detail["reader"] = reader_json(f.subject, self._registry.reader(f.subject))
            alert = Alert(alert_id=res.alert_id, kind=f.kind, at=f.since, status=res.status,
                          reader_id=None if is_gw else f.subject,
                          gateway_id=f.subject if is_gw else None, detail=detail)
            out.store([alert])
            if res.new:
                out.raised += 1
                out.send(alert)
            return [alert]
        alert_id = self._episodes.pop(key, None)
        if alert_id is None:
            return []
        stored = self._storage.get_alert(alert_id)
        if stored is None or stored.status == "closed":
            return []
        closed = self._storage.set_alert_status(alert_id, "closed", actor=ENGINE_ACTOR,
                                                at=out.clock(), note=f"cleared: {f.detail}")
        alert = Alert(alert_id=alert_id, kind=f.kind, at=closed.at, status="closed",
                      reader_id=closed.reader_id, gateway_id=closed.gateway_id,
                      detail={**closed.detail, **f.detail, "cleared": True})
        out.send(alert)
        return [alert]

    def check_gateways(self, now: datetime) -> list[Alert]:
        records = self._storage.gateways()
        for g in records:
            self.clocks.add_health(g)
        out: list[Alert] = []
        for f in self.gateways.check(records, now) + self.clocks.check(now):
            out.extend(self._finding(f))
        return out

    def check_readers(self, now: datetime) -> list[Alert]:
        out: list[Alert] = []
        for f in self.silence.check(now, self._registry.readers):
            out.extend(self._finding(f))
        return out

    def jobs(self) -> list[Job]:
        clock = self._outbox.clock
        return [Job("gateways", self.s.gateway_check_s, lambda: self.check_gateways(clock())),
                Job("readers", self.s.silent_check_s, lambda: self.check_readers(clock()))]
