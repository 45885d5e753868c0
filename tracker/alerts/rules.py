"""The alert rules as pure functions and small state machines: no I/O, no clock of their own.

The engine (tracker/alerts/engine.py) feeds them what it reads from messages and storage, with the
time; these decide. Kept apart so each rule can be tested on its own, with hypothesis.

* :func:`clone_verdict`: one tag at two readers faster than any vehicle could travel between
  them, or at both at once;
* :class:`Debouncer`: a condition raises only after it has held for ``hold_s`` and clears only
  after it has been absent for ``clear_s``, so a flickering input does not flap;
* :class:`WindowCount`: "N events within W seconds", with a cool-down after it fires (tamper,
  low battery);
* :func:`key_accompanied` / :func:`pairing_due`: the owner-key pairing window;
* :func:`is_silent`: a reader far below its own usual rate;
* :func:`clock_skew_s`: how far a gateway's clock is off, beyond what its backlog explains.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Generic, Literal, TypeVar

__all__ = [
    "CloneVerdict",
    "Debouncer",
    "PassPoint",
    "Transition",
    "WindowCount",
    "clock_skew_s",
    "clone_verdict",
    "is_silent",
    "key_accompanied",
    "pairing_due",
]

K = TypeVar("K", bound=Hashable)


# --- clone_suspect ------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class PassPoint:
    """Where and when one tag was: a reader, and the first and last read there."""

    reader_id: str
    first_seen: datetime
    last_seen: datetime


@dataclass(frozen=True, slots=True)
class CloneVerdict:
    """Why two passes of one tag cannot be one vehicle."""

    reason: Literal["too_fast", "simultaneous"]
    distance_m: float
    gap_s: float  # from the end of the earlier pass to the start of the later (< 0: overlap)
    speed_kmh: float | None  # implied speed (None when simultaneous)


def clone_verdict(a: PassPoint, b: PassPoint, distance_m: float | None, *,
                  max_speed_kmh: float, min_distance_m: float,
                  slack_s: float) -> CloneVerdict | None:
    """Whether passes ``a`` and ``b`` of one tag (either order) prove two tags with one id.

    Readers closer than ``min_distance_m`` never count (the antennas of one junction overlap,
    and a tag may be heard by both). ``slack_s`` forgives clocks of two gateways that disagree
    a little: the travel time is taken as the gap plus the slack, and passes overlap only when
    they overlap by more than the slack. Symmetric in ``a`` and ``b``.
    """
    if a.reader_id == b.reader_id or distance_m is None or distance_m < min_distance_m:
        return None
    early, late = (a, b) if (a.first_seen, a.last_seen) <= (b.first_seen, b.last_seen) else (b, a)
    gap = (late.first_seen - early.last_seen).total_seconds()
    if gap < -slack_s:
        return CloneVerdict("simultaneous", distance_m, gap, None)
    travel = max(gap, 0.0) + slack_s
    if travel <= 0:
        return CloneVerdict("simultaneous", distance_m, gap, None)
    speed = distance_m / travel * 3.6
    if speed > max_speed_kmh:
        return CloneVerdict("too_fast", distance_m, gap, speed)
    return None


# --- debouncing ----------------------------------------------------------------------------------

Transition = Literal["raise", "clear"]


@dataclass(slots=True)
class _Episode:
    since: datetime | None = None  # when the condition began holding (not yet raised)
    raised: datetime | None = None  # when it was raised (None: not raised)
    absent_since: datetime | None = None  # while raised: when the condition stopped holding


class Debouncer(Generic[K]):
    """Hysteresis per key: ``raise`` after the condition has held for ``hold_s`` without a
    break; ``clear`` after it has been absent for ``clear_s`` without a break. Between a raise
    and its clear no second raise happens, whatever the input does.

    ``update(key, holds, now)`` is called whenever the condition is evaluated; times must not
    go backwards per key (an older time is treated as ``now`` of the last call).
    """

    def __init__(self, *, hold_s: float, clear_s: float) -> None:
        if hold_s < 0 or clear_s < 0:
            raise ValueError("hold_s and clear_s must not be negative")
        self.hold = timedelta(seconds=hold_s)
        self.clear = timedelta(seconds=clear_s)
        self._state: dict[K, _Episode] = {}

    def update(self, key: K, holds: bool, now: datetime) -> Transition | None:
        ep = self._state.get(key)
        if ep is None:
            if not holds:
                return None
            ep = self._state[key] = _Episode()
        if ep.raised is None:
            if not holds:
                del self._state[key]
                return None
            if ep.since is None:
                ep.since = now
            if now - ep.since >= self.hold:
                ep.raised, ep.absent_since = now, None
                return "raise"
            return None
        if holds:
            ep.absent_since = None
            return None
        if ep.absent_since is None:
            ep.absent_since = now
        if now - ep.absent_since >= self.clear:
            del self._state[key]
            return "clear"
        return None

    def is_raised(self, key: K) -> bool:
        ep = self._state.get(key)
        return ep is not None and ep.raised is not None

    def since(self, key: K) -> datetime | None:
        """When the condition began holding for the episode in progress (raised or not)."""
        ep = self._state.get(key)
        return None if ep is None else ep.since

    def keys(self) -> list[K]:
        return list(self._state)


@dataclass(slots=True)
class _Window:
    times: deque[datetime] = field(default_factory=deque)
    quiet_until: datetime | None = None


class WindowCount(Generic[K]):
    """Fires for a key when ``threshold`` events fall within ``window_s`` seconds, then stays
    quiet for ``cooldown_s`` (events during the cool-down do not count towards the next)."""

    def __init__(self, *, threshold: int, window_s: float, cooldown_s: float) -> None:
        if threshold < 1 or window_s < 0 or cooldown_s < 0:
            raise ValueError("threshold >= 1, window_s >= 0, cooldown_s >= 0")
        self.threshold = threshold
        self.window = timedelta(seconds=window_s)
        self.cooldown = timedelta(seconds=cooldown_s)
        self._state: dict[K, _Window] = {}

    def add(self, key: K, at: datetime) -> bool:
        """Count one event; True when this event makes the key fire."""
        w = self._state.get(key)
        if w is None:
            w = self._state[key] = _Window()
        if w.quiet_until is not None:
            if at < w.quiet_until:
                return False
            w.quiet_until = None
        w.times.append(at)
        while w.times and at - w.times[0] > self.window:
            w.times.popleft()
        if len(w.times) >= self.threshold:
            w.times.clear()
            w.quiet_until = at + self.cooldown
            return True
        return False

    def prune(self, now: datetime) -> None:
        """Forget keys with nothing recent (bounded memory)."""
        for key in [k for k, w in self._state.items()
                    if (w.quiet_until is None or w.quiet_until <= now)
                    and (not w.times or now - w.times[-1] > self.window)]:
            del self._state[key]

    def __len__(self) -> int:
        return len(self._state)


# --- unaccompanied --------------------------------------------------------------------------------

def key_accompanied(vehicle: PassPoint, key_passes: Iterable[PassPoint], window_s: float) -> bool:
    """Whether the owner's key tag was at the vehicle's reader within ``window_s`` seconds of
    the vehicle's pass (its stay at the reader overlapping ``[first - w, last + w]``)."""
    w = timedelta(seconds=window_s)
    lo, hi = vehicle.first_seen - w, vehicle.last_seen + w
    return any(k.reader_id == vehicle.reader_id and k.first_seen <= hi and k.last_seen >= lo
               for k in key_passes)


def pairing_due(vehicle: PassPoint, now: datetime, window_s: float, lag_s: float) -> bool:
    """Whether the pairing check of a vehicle pass can be decided at ``now``: the window after
    the pass is over, and ``lag_s`` more for a key sighting stored by another tracker."""
    return now >= vehicle.last_seen + timedelta(seconds=window_s + lag_s)


# --- reader_silent ------------------------------------------------------------------------------

def is_silent(current: float, usual: float | None, *, ratio: float, min_usual: float) -> bool:
    """A blind spot: the reader's count in the window is below ``ratio`` of its usual count for
    this hour, and the usual count is high enough (``min_usual``) for silence to mean
    something (a quiet reader at 4 a.m. is not broken)."""
    if usual is None or usual < min_usual:
        return False
    return current < ratio * usual


# --- clock_skew ----------------------------------------------------------------------------------

def clock_skew_s(lags_s: Sequence[float], backlog_s: float, tolerance_s: float) -> float | None:
    """How far a gateway's clock is off, or None when within ``tolerance_s``.

    ``lags_s`` are recent samples of (tracker receive time - gateway time stamped in the
    message). Delivery only ever delays a message, so the smallest lag is the best estimate of
    the clock offset plus the fastest delivery. Positive result: the gateway is ahead (a time
    arrived from the future). Negative: behind by more than the backlog explains
    (``backlog_s``, the age of the oldest message the gateway still holds, may delay every
    sample by that much).
    """
    if not lags_s:
        return None
    fastest = min(lags_s)
    if fastest < -tolerance_s:
        return -fastest
    unexplained = fastest - max(backlog_s, 0.0)
    if unexplained > tolerance_s:
        return -unexplained
    return None
