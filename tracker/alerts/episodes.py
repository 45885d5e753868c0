"""The infrastructure alerts, decided on the engine's timer from what storage holds:
``gateway_offline``, ``clock_skew`` and ``reader_silent``.

Each monitor turns records into :class:`Finding` objects: a ``raise`` or ``clear`` transition
of one subject (a gateway or a reader), with when the episode began (which alert ids are
derived from, so instances that read the same storage derive the same id) and the detail.
The engine turns findings into alerts. Every monitor debounces
(:class:`tracker.alerts.rules.Debouncer`), so a gateway that reboots or a reader that has a
quiet minute does not flap.

Sources:

* gateway state (its retained online/offline, the offline one being its MQTT will) and health,
  as the ingest pipeline records them in storage (``record_gateway``; a live message is
  recorded with the tracker's receive time, and the health payload keeps the gateway's own
  ``at``): the same for every instance;
* clock samples: (receive time - gateway time) of each sightings message this instance
  receives (from the hot path) and of each health message (from storage);
* counts per reader in a window (storage), against the same hour on previous days.
"""

from __future__ import annotations

import math
import threading
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from pak.timefmt import format_time, parse_time
from tracker.alerts.rules import Debouncer, Transition, clock_skew_s, is_silent
from tracker.alerts.settings import AlertSettings
from tracker.storage.records import GatewayRecord

__all__ = ["ClockMonitor", "Finding", "GatewayMonitor", "SilenceMonitor"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Finding:
    """A monitor's decision about one subject."""

    kind: str
    transition: Transition
    subject: str  # gateway id or reader id
    since: datetime  # when the episode began
    detail: dict[str, Any] = field(default_factory=dict)


def _floor(t: datetime, step_s: float) -> datetime:
    s = (t - _EPOCH).total_seconds()
    return _EPOCH + timedelta(seconds=math.floor(s / step_s) * step_s)


class GatewayMonitor:
    """``gateway_offline``: its will (state offline) for ``offline_grace_s``, or no health for
    ``health_timeout_s``; cleared once it has been back for ``offline_clear_s``."""

    def __init__(self, settings: AlertSettings) -> None:
        self.s = settings
        self._debounce: Debouncer[str] = Debouncer(hold_s=0.0, clear_s=settings.offline_clear_s)
        self._since: dict[str, datetime] = {}

    def _down(self, g: GatewayRecord, now: datetime) -> tuple[datetime, dict[str, Any]] | None:
        grace = timedelta(seconds=self.s.offline_grace_s)
        timeout = timedelta(seconds=self.s.health_timeout_s)
        # health newer than the will means it is back (its online state may be late)
        will = (g.state == "offline" and g.state_at is not None and now - g.state_at >= grace
                and (g.health_at is None or g.health_at <= g.state_at))
        if will and g.state_at is not None:
            return g.state_at, {"cause": "will", "offline_at": format_time(g.state_at)}
        stale = (g.health_at is not None and now - g.health_at >= timeout
                 and (g.state != "offline" or (g.state_at is not None
                                               and g.state_at < g.health_at)))
        if stale and g.health_at is not None:
            return g.health_at, {"cause": "no_health",
                                 "last_health_at": format_time(g.health_at),
                                 "silent_s": round((now - g.health_at).total_seconds())}
        return None

    def check(self, gateways: Iterable[GatewayRecord], now: datetime) -> list[Finding]:
        out: list[Finding] = []
        seen = set()
        for g in gateways:
            seen.add(g.gateway_id)
            down = self._down(g, now)
            tr = self._debounce.update(g.gateway_id, down is not None, now)
            if tr == "raise" and down is not None:
                self._since[g.gateway_id] = down[0]
                out.append(Finding("gateway_offline", "raise", g.gateway_id, down[0], down[1]))
            elif tr == "clear":
                since = self._since.pop(g.gateway_id, now)
                out.append(Finding("gateway_offline", "clear", g.gateway_id, since,
                                   {"back_at": format_time(now)}))
        return out


class ClockMonitor:
    """``clock_skew``: the gateway's clock off by more than ``skew_tolerance_s`` beyond what its
    backlog explains (:func:`tracker.alerts.rules.clock_skew_s`), for ``skew_hold_s``."""

    def __init__(self, settings: AlertSettings) -> None:
        self.s = settings
        # samples arrive from the MQTT thread while the timer reads them
        self._lock = threading.Lock()
        self._samples: dict[str, deque[tuple[datetime, float]]] = {}
        self._backlog: dict[str, float] = {}
        self._health_seen: dict[str, datetime] = {}
        self._debounce: Debouncer[str] = Debouncer(hold_s=settings.skew_hold_s,
                                                   clear_s=settings.skew_clear_s)
        self._since: dict[str, datetime] = {}

    def add(self, gateway_id: str, received_at: datetime, lag_s: float) -> None:
        """One sample: receive time minus the gateway's time in the message (hot path)."""
        with self._lock:
            q = self._samples.get(gateway_id)
            if q is None:
                q = self._samples[gateway_id] = deque(maxlen=4096)
            q.append((received_at, lag_s))

    def add_health(self, g: GatewayRecord) -> None:
        """A health record from storage: its receive time against the gateway's ``at``, and
        the age of the oldest message the gateway still holds."""
        h = g.health
        if not h or g.health_at is None or self._health_seen.get(g.gateway_id) == g.health_at:
            return
        self._health_seen[g.gateway_id] = g.health_at
        try:
            at = parse_time(str(h.get("at")))
        except ValueError:
            return
        self.add(g.gateway_id, g.health_at, (g.health_at - at).total_seconds())
        spool = h.get("spool") if isinstance(h.get("spool"), dict) else {}
        age = spool.get("oldest_age_s") if spool else None
        self._backlog[g.gateway_id] = float(age) if isinstance(age, int | float) else 0.0

    def check(self, now: datetime) -> list[Finding]:
        out: list[Finding] = []
        horizon = now - timedelta(seconds=self.s.skew_window_s)
        with self._lock:
            current: dict[str, list[float]] = {}
            for gid, q in list(self._samples.items()):
                while q and q[0][0] < horizon:
                    q.popleft()
                if q:
                    current[gid] = [lag for _, lag in q]
                elif not self._debounce.is_raised(gid):
                    del self._samples[gid]
        for gid in sorted(set(current) | set(self._debounce.keys())):
            lags = current.get(gid, [])
            backlog = self._backlog.get(gid, 0.0)
            skew = clock_skew_s(lags, backlog, self.s.skew_tolerance_s)
            tr = self._debounce.update(gid, skew is not None, now)
            if tr == "raise" and skew is not None:
                since = _floor(self._debounce.since(gid) or now, 60.0)
                self._since[gid] = since
                out.append(Finding("clock_skew", "raise", gid, since, {
                    "skew_s": round(skew, 3), "ahead": skew > 0, "samples": len(lags),
                    "backlog_s": backlog, "tolerance_s": self.s.skew_tolerance_s}))
            elif tr == "clear":
                out.append(Finding("clock_skew", "clear", gid, self._since.pop(gid, now),
                                   {"back_at": format_time(now)}))
        return out


CountsFn = Callable[[datetime, datetime], Mapping[str, int]]


class SilenceMonitor:
    """``reader_silent``: a reader whose count in the last ``silent_window_s`` is below
    ``silent_ratio`` of its usual count for that hour (the mean of the same hour on the last
    ``silent_baseline_days`` days), for ``silent_hold_s``.

    Windows are aligned to a grid of ``silent_check_s``, so every instance looks at the same
    window and derives the same episode start. A window ends ``lag_s`` before now, so the
    batches of every instance are committed.
    """

    def __init__(self, settings: AlertSettings, counts: CountsFn, *, lag_s: float = 10.0) -> None:
        self.s = settings
        self._counts = counts
        self.lag_s = lag_s
        self._baseline: dict[datetime, dict[str, float]] = {}
        self._debounce: Debouncer[str] = Debouncer(hold_s=settings.silent_hold_s,
                                                   clear_s=settings.silent_clear_s)
        self._since: dict[str, datetime] = {}

    def usual_per_hour(self, hour: datetime) -> dict[str, float]:
        """Mean sightings per reader in this hour of the day over the previous days (cached
        per hour: a few aggregate queries once an hour)."""
        hit = self._baseline.get(hour)
        if hit is not None:
            return hit
        days = self.s.silent_baseline_days
        total: dict[str, float] = {}
        for d in range(1, days + 1):
            start = hour - timedelta(days=d)
            for reader, n in self._counts(start, start + timedelta(hours=1)).items():
                total[reader] = total.get(reader, 0.0) + n
        usual = {r: n / days for r, n in total.items()}
        self._baseline = {h: b for h, b in self._baseline.items() if hour - h < timedelta(hours=3)}
        self._baseline[hour] = usual
        return usual

    def check(self, now: datetime, readers: Iterable[str] = ()) -> list[Finding]:
        window = timedelta(seconds=self.s.silent_window_s)
        end = _floor(now - timedelta(seconds=self.lag_s), self.s.silent_check_s)
        start = end - window
        hour = _floor(start + window / 2, 3600.0)
        usual_hour = self.usual_per_hour(hour)
        scale = window.total_seconds() / 3600.0
        current = self._counts(start, end)
        out: list[Finding] = []
        for reader in sorted(set(usual_hour) | set(readers) | set(self._debounce.keys())):
            usual = usual_hour.get(reader, 0.0) * scale
            n = current.get(reader, 0)
            silent = is_silent(n, usual, ratio=self.s.silent_ratio,
                               min_usual=self.s.silent_min_usual)
            tr = self._debounce.update(reader, silent, end)
            if tr == "raise":
                since = self._debounce.since(reader) or end
                self._since[reader] = since
                out.append(Finding("reader_silent", "raise", reader, since, {
                    "window_s": window.total_seconds(), "count": n,
                    "usual": round(usual, 1), "ratio": self.s.silent_ratio,
                    "window_end": format_time(end)}))
            elif tr == "clear":
                out.append(Finding("reader_silent", "clear", reader,
                                   self._since.pop(reader, end),
                                   {"count": n, "usual": round(usual, 1),
                                    "back_at": format_time(end)}))
        return out
