"""Reads -> sightings: one presence of one tag at one reader, from its first read to its last.

Pure: no clock (times come in with the reads and the ``now`` arguments), no I/O. The sequence
numbers come from a callable the runtime passes in (the spool's durable counter).

Life of a sighting (DESIGN.md, Concepts)::

    first read ──> OPEN (emitted at once: an alert must not wait for the vehicle to leave)
       │  more reads fold in: last_seen, reads, max RSSI, antennas in order, flags
       ├─ exit_after without a read ───────────────> CLOSED
       ├─ the station's out-of-range report ───────> CLOSED (that read included)
       ├─ a read max_duration after first_seen ────> CLOSED, and that read opens a new one
       └─ too many open (max_open) ────────────────> the stalest CLOSED early (counted)

A sighting's ``first_seen`` never changes between its open and closed messages: the centre's
unique key includes it. ``last_seen`` never goes backwards, even when the gateway's clock does
(an NTP step), so ``last_seen >= first_seen`` always holds.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from pak.types import Sighting, StampedRead

__all__ = ["OpenSighting", "Smoother", "SmootherStats", "sighting_key"]

#: A tag's identity at one reader. The tag type is part of it: an MR7901 e-bike tag and its
#: owner's key may share the 4 id bytes and differ only by type.
Key = tuple[str, str, str, int | None]


def sighting_key(s: StampedRead) -> Key:
    r = s.read
    return (s.reader_id, r.tag_kind, r.tag_id, r.tag_type)


@dataclass(slots=True)
class OpenSighting:
    """The mutable aggregate of one open sighting."""

    seq: int
    first: StampedRead
    first_seen: datetime
    last_seen: datetime
    reads: int = 1
    antennas: list[int] = field(default_factory=list)
    rssi_max_dbm: float | None = None
    rssi_max_raw: int | None = None
    flags: set[str] = field(default_factory=set)
    reader_time: datetime | None = None

    def fold(self, s: StampedRead) -> None:
        r = s.read
        self.reads += 1
        if s.seen_at > self.last_seen:
            self.last_seen = s.seen_at
        if r.antenna is not None and r.antenna not in self.antennas:
            self.antennas.append(r.antenna)
        if r.rssi_dbm is not None and (self.rssi_max_dbm is None or r.rssi_dbm > self.rssi_max_dbm):
            self.rssi_max_dbm = r.rssi_dbm
        if r.rssi_raw is not None and (self.rssi_max_raw is None or r.rssi_raw > self.rssi_max_raw):
            self.rssi_max_raw = r.rssi_raw
        self.flags |= r.sighting_flags()
        if self.reader_time is None:
            self.reader_time = s.reader_time

    def sighting(self, spool_id: str, state: str) -> Sighting:
        s, r = self.first, self.first.read
        return Sighting(
            gateway_id=s.gateway_id,
            spool_id=spool_id,
            seq=self.seq,
            state="closed" if state == "closed" else "open",
            tag_id=r.tag_id,
            tag_kind=r.tag_kind,
            reader_id=s.reader_id,
            first_seen=self.first_seen,
            last_seen=self.last_seen,
            reads=self.reads,
            tag_type=r.tag_type,
            antenna=self.antennas[0] if self.antennas else None,
            antennas=tuple(self.antennas),
            rssi_max_dbm=self.rssi_max_dbm,
            rssi_max_raw=self.rssi_max_raw,
            flags=tuple(sorted(self.flags)),
            reader_time=self.reader_time,
        )


@dataclass(slots=True)
class SmootherStats:
    """Cumulative counters for health."""

    reads: int = 0
    opened: int = 0
    closed: int = 0
    closed_exit: int = 0
    closed_out_of_range: int = 0
    closed_max_duration: int = 0
    closed_evicted: int = 0
    closed_shutdown: int = 0


class Smoother:
    """Folds stamped reads into sightings; returns the sightings to spool and publish.

    ``feed`` and ``expire`` return :class:`~pak.types.Sighting` objects in the order they
    happened: each ``open`` before its ``closed``. ``spool_id`` only fills the field; the seq
    comes from ``next_seq``.
    """

    def __init__(self, *, spool_id: str, next_seq: Callable[[], int], exit_after: float,
                 max_duration: float, max_open: int = 50_000) -> None:
        if exit_after <= 0 or max_duration <= 0 or max_open < 1:
            raise ValueError("exit_after, max_duration and max_open must be positive")
        self.spool_id = spool_id
        self._next_seq = next_seq
        self.exit_after = timedelta(seconds=exit_after)
        self.max_duration = timedelta(seconds=max_duration)
        self.max_open = max_open
        # Least recently read first: expiry and eviction look only at the front.
        self._open: OrderedDict[Key, OpenSighting] = OrderedDict()
        self._dirty: set[Key] = set()
        self.stats = SmootherStats()

    def __len__(self) -> int:
        return len(self._open)

    def feed(self, s: StampedRead) -> list[Sighting]:
        """One read. Returns what opened and/or closed because of it."""
        self.stats.reads += 1
        out: list[Sighting] = []
        key = sighting_key(s)
        cur = self._open.get(key)
        if cur is not None and s.seen_at - cur.last_seen >= self.exit_after:
            # Already over: expire() was not called since (reads queued behind a slow disk).
            del self._open[key]
            self._dirty.discard(key)
            out.append(self._close(cur, "exit"))
            cur = None
        elif cur is not None and s.seen_at - cur.first_seen >= self.max_duration:
            # A vehicle parked beside the reader: several sightings, not one that never ends.
            del self._open[key]
            self._dirty.discard(key)
            out.append(self._close(cur, "max_duration"))
            cur = None
        if cur is None:
            if len(self._open) >= self.max_open:
                stale_key, stalest = self._open.popitem(last=False)
                self._dirty.discard(stale_key)
                out.append(self._close(stalest, "evicted"))
            r = s.read
            cur = OpenSighting(
                seq=self._next_seq(), first=s, first_seen=s.seen_at, last_seen=s.seen_at,
                antennas=[r.antenna] if r.antenna is not None else [],
                rssi_max_dbm=r.rssi_dbm, rssi_max_raw=r.rssi_raw,
                flags=set(r.sighting_flags()), reader_time=s.reader_time)
            self._open[key] = cur
            self.stats.opened += 1
            out.append(cur.sighting(self.spool_id, "open"))
        else:
            cur.fold(s)
            self._open.move_to_end(key)
            self._dirty.add(key)
        if s.read.in_range is False:
            # The station says the tag left: this read is the sighting's last.
            del self._open[key]
            self._dirty.discard(key)
            out.append(self._close(cur, "out_of_range"))
        return out

    def expire(self, now: datetime) -> list[Sighting]:
        """Close every sighting not read for ``exit_after`` before ``now``."""
        out: list[Sighting] = []
        limit = now - self.exit_after
        while self._open:
            key, cur = next(iter(self._open.items()))
            if cur.last_seen > limit:
                break
            del self._open[key]
            self._dirty.discard(key)
            out.append(self._close(cur, "exit"))
        return out

    def next_expiry(self) -> datetime | None:
        """When the stalest open sighting will close if no read comes (None: none open)."""
        if not self._open:
            return None
        return next(iter(self._open.values())).last_seen + self.exit_after

    def close_all(self) -> list[Sighting]:
        """Close everything (graceful stop): their aggregate as it stands."""
        out = [self._close(cur, "shutdown") for cur in self._open.values()]
        self._open.clear()
        self._dirty.clear()
        return out

    def dirty(self) -> list[Sighting]:
        """Open sightings changed since the last call, as ``open`` (for the spool's checkpoint
        of aggregates, so a crash loses little of an open sighting's counts)."""
        out = [self._open[k].sighting(self.spool_id, "open") for k in self._dirty]
        self._dirty.clear()
        return out

    def _close(self, cur: OpenSighting, why: str) -> Sighting:
        self.stats.closed += 1
        setattr(self.stats, f"closed_{why}", getattr(self.stats, f"closed_{why}") + 1)
        return cur.sighting(self.spool_id, "closed")
