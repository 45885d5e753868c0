"""``spool_overflow``: a gateway's spool outgrew its limit and dropped evidence the centre never
stored.

Evidence: the gateway's health (``spool.dropped_total``, exact: drops a late receipt showed
stored are not counted, see gateway/spool.py; ``spool.oldest_dropped``), read from the gateway
records storage keeps, on the timer. One open alert per spool, its id from the cause
(``spool_overflow:{gateway_id}:{spool_id}``), updated whenever the count grows; after an
officer closed it, further drops open the spool's next alert, dated by when they were seen.

The detail says how many were dropped in all (``dropped_total``), how many since the previous
revision of this alert (``dropped_new``) and the first_seen of the oldest dropped sighting.
The same evidence's other half, the incomplete close: a sighting whose closed form was dropped
would stay ``open`` for ever. On the same timer, open sightings first seen longer ago than
their gateway's longest sighting (``spool.max_duration_s`` + ``spool.exit_after_s`` from its
health, :data:`DEFAULT_MAX_OPEN_S` when it has not said) plus :data:`CLOSE_MARGIN_S` are closed
by storage, flagged incomplete, at most :data:`CLOSE_BATCH` per run in one statement; a real
closed message arriving later replaces that close (the merge rule, migration 0008).

What the handler has alerted on is kept in memory and, after a restart, read back from the
stored alert, so a restart neither repeats an alert nor misses growth.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Final

from pak.alert import Alert
from pak.timefmt import format_time
from tracker.alerts.handler import Handler, Job
from tracker.alerts.ids import overflow_alert_id
from tracker.storage.records import GatewayRecord

__all__ = ["KIND", "OverflowHandler", "close_cutoffs", "overflow_evidence"]

KIND: Final = "spool_overflow"
#: The gateway's defaults (gateway/config.py max_duration 300 s, exit_after at most 60 s).
DEFAULT_MAX_OPEN_S: Final = 360.0
#: Slack beyond the gateway's bound for its closed message to travel and be stored.
CLOSE_MARGIN_S: Final = 120.0
#: Open sightings closed per run at most (one UPDATE; the rest wait for the next run).
CLOSE_BATCH: Final = 1000


def close_cutoffs(gateways: list[GatewayRecord], now: datetime) -> dict[str, datetime]:
    """Per gateway that said how long its sightings stay open: the first_seen before which an
    open sighting of it has lost its closed form."""
    out: dict[str, datetime] = {}
    for g in gateways:
        spool = (g.health or {}).get("spool")
        if not isinstance(spool, dict):
            continue
        dur, ex = spool.get("max_duration_s"), spool.get("exit_after_s", 0.0)
        if isinstance(dur, int | float) and isinstance(ex, int | float) and dur > 0 <= ex:
            out[g.gateway_id] = now - timedelta(seconds=dur + ex + CLOSE_MARGIN_S)
    return out


def overflow_evidence(g: GatewayRecord) -> tuple[str, int, str | None] | None:
    """``(spool_id, dropped_total, oldest_dropped)`` from a gateway's last health, or None
    when it reports no drop (or is an older gateway that does not count them)."""
    spool = (g.health or {}).get("spool")
    if not isinstance(spool, dict):
        return None
    sid, n, oldest = spool.get("spool_id"), spool.get("dropped_total"), spool.get("oldest_dropped")
    if not isinstance(sid, str) or type(n) is not int or n <= 0:
        return None
    return sid, n, oldest if isinstance(oldest, str) else None


class OverflowHandler(Handler):
    """Raises and updates ``spool_overflow`` from the gateways' health (module doc)."""

    _alerted: dict[tuple[str, str], tuple[str, int]]  # (gateway, spool) -> (alert id, count)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._alerted = {}

    def _last(self, gateway_id: str, spool_id: str) -> tuple[str, int, str] | None:
        """The spool's alert id, the count it last carried and its status."""
        known = self._alerted.get((gateway_id, spool_id))
        alert_id = known[0] if known else overflow_alert_id(gateway_id, spool_id)
        stored = self._storage.get_alert(alert_id)
        if stored is None:
            return None if known is None else (known[0], known[1], "new")
        n = stored.detail.get("dropped_total")
        return alert_id, n if type(n) is int else 0, stored.status

    def check(self, now: datetime) -> list[Alert]:
        out: list[Alert] = []
        for g in self._storage.gateways():
            ev = overflow_evidence(g)
            if ev is None:
                continue
            spool_id, total, oldest = ev
            known = self._alerted.get((g.gateway_id, spool_id))
            if known is not None and known[1] >= total:
                continue  # nothing new (the count only grows, or a late receipt shrank it)
            last = self._last(g.gateway_id, spool_id)
            if last is not None and last[1] >= total:
                self._alerted[(g.gateway_id, spool_id)] = (last[0], last[1])
                continue
            before = 0 if last is None else last[1]
            if last is None or last[2] == "closed":
                alert_id = (overflow_alert_id(g.gateway_id, spool_id) if last is None
                            else overflow_alert_id(g.gateway_id, spool_id, now))
                status, new = "new", True
            else:
                alert_id, status, new = last[0], last[2], False
            detail: dict[str, Any] = {"spool_id": spool_id, "dropped_total": total,
                                      "dropped_new": total - before, "oldest_dropped": oldest,
                                      "health_at": None if g.health_at is None
                                      else format_time(g.health_at), "update": not new}
            alert = Alert(alert_id=alert_id, kind=KIND, at=now, status=status,
                          gateway_id=g.gateway_id, detail=detail)
            self._outbox.store([alert])
            if new:
                self._outbox.raised += 1
            else:
                self._outbox.updated += 1
            self._outbox.send(alert)
            self._alerted[(g.gateway_id, spool_id)] = (alert_id, total)
            out.append(alert)
        return out

    def close_incomplete(self, now: datetime) -> int:
        """Close the open sightings whose closed form was lost (module doc)."""
        default = now - timedelta(seconds=DEFAULT_MAX_OPEN_S + CLOSE_MARGIN_S)
        return self._storage.close_incomplete(close_cutoffs(self._storage.gateways(), now),
                                              default, limit=CLOSE_BATCH)

    def jobs(self) -> list[Job]:
        clock = self._outbox.clock
        return [Job("spool_overflow", self.s.gateway_check_s, lambda: self.check(clock())),
                Job("incomplete_close", self.s.gateway_check_s,
                    lambda: self.close_incomplete(clock()))]
