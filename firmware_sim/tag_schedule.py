"""Which tags a simulated reader hears, over time: the vehicles passing its antennas.

Without a dwell time every tag of the pool is in range for the whole run. With one, ``visible``
slots hold a tag each for ``dwell`` seconds; a tag that leaves is replaced by the next waiting
tag of the pool (pool order, cycling), so sightings open and close. When no other tag waits, the
slot stays empty for one dwell: a single tag is heard for ``dwell`` s, then not for ``dwell`` s.
Initial departures are staggered so that slots do not all change at once.

Pure: times are plain floats handed in by the runner.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

from firmware_sim.devices.base import SimTag

__all__ = ["TagEvent", "TagSchedule"]


@dataclass(frozen=True, slots=True)
class TagEvent:
    kind: str  # "enter" | "leave"
    tag: SimTag
    at: float


class TagSchedule:
    def __init__(self, pool: Sequence[SimTag], *, dwell: float | None = None, visible: int = 1,
                 start: float = 0.0) -> None:
        if dwell is not None and dwell <= 0:
            raise ValueError("dwell must be positive")
        if visible < 1:
            raise ValueError("visible must be at least 1")
        self.dwell = dwell
        self._rr = -1
        self._pending: list[TagEvent] = []
        if dwell is None:
            self._slots: list[tuple[SimTag | None, float]] = []
            self._in_range = list(pool)
            self._waiting: deque[SimTag] = deque()
            self._pending = [TagEvent("enter", t, start) for t in pool]
            return
        self._in_range = []
        self._waiting = deque(pool)
        n = min(visible, len(pool)) if pool else 0
        self._slots = []
        for i in range(n):
            tag = self._waiting.popleft()
            self._in_range.append(tag)
            self._pending.append(TagEvent("enter", tag, start))
            self._slots.append((tag, start + dwell * (i + 1) / n))

    @property
    def in_range(self) -> list[SimTag]:
        return list(self._in_range)

    def next_change(self) -> float | None:
        """When the set of tags in range changes next (None: never)."""
        return min((until for _, until in self._slots), default=None)

    def update(self, now: float) -> list[TagEvent]:
        """Advance to ``now``; the enter/leave events since the last call, in time order."""
        events, self._pending = self._pending, []
        if self.dwell is None:
            return events
        while True:
            i, (tag, until) = min(enumerate(self._slots), key=lambda s: s[1][1],
                                  default=(-1, (None, float("inf"))))
            if i < 0 or until > now:
                return events
            # Pick the replacement before the leaver joins the queue, so a lone tag leaves a gap.
            nxt = self._waiting.popleft() if self._waiting else None
            if tag is not None:
                self._in_range.remove(tag)
                self._waiting.append(tag)
                events.append(TagEvent("leave", tag, until))
            if nxt is not None:
                self._in_range.append(nxt)
                events.append(TagEvent("enter", nxt, until))
            self._slots[i] = (nxt, until + self.dwell)

    def next_tags(self, n: int = 1) -> list[SimTag]:
        """The next ``n`` tags to report (round robin over those in range; fewer when fewer
        are in range, none when none is)."""
        k = min(n, len(self._in_range))
        out = []
        for _ in range(k):
            self._rr = (self._rr + 1) % len(self._in_range)
            out.append(self._in_range[self._rr])
        return out
