"""Decode counters of a link, summed over all its connections.

A link makes a new :class:`~gateway.drivers.base.StreamDecoder` per connection (a reopened
port must not inherit half a frame from the old one), yet health reports cumulative counters.
:class:`DecodeTotals` keeps the sum of finished decoders plus the live ones, behind one lock:
the link thread feeds bytes while the runtime's health thread takes snapshots.
"""

from __future__ import annotations

import threading

from gateway.drivers.base import DecodeItem, DecodeStats, Rejected, StreamDecoder

__all__ = ["DecodeTotals", "add_stats"]


def add_stats(into: DecodeStats, other: DecodeStats) -> None:
    """Add ``other``'s counters to ``into``."""
    into.frames.update(other.frames)
    into.rejected.update(other.rejected)
    into.rejected_bytes += other.rejected_bytes
    into.bytes_in += other.bytes_in


class DecodeTotals:
    """Cumulative decode statistics over the decoders a link has used."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._done = DecodeStats()
        self._live: list[StreamDecoder] = []

    def attach(self, decoder: StreamDecoder) -> None:
        with self._lock:
            self._live.append(decoder)

    def feed(self, decoder: StreamDecoder, data: bytes) -> list[DecodeItem]:
        # Under the lock: a snapshot iterates the decoder's Counters, which feed() mutates.
        with self._lock:
            return decoder.feed(data)

    def count(self, decoder: StreamDecoder, rejected: list[Rejected]) -> None:
        """Count rejections found inside intact frames (a driver's ``rejections(frame)``) in
        the decoder's statistics, like the framer's own."""
        if not rejected:
            return
        with self._lock:
            for item in rejected:
                decoder.stats.rejected[item.reason] += 1
                decoder.stats.rejected_bytes += len(item.data)

    def detach(self, decoder: StreamDecoder) -> list[DecodeItem]:
        """The connection ended: count its leftover bytes (they can never become a frame)
        and fold its counters into the totals. Returns the flushed rejections."""
        with self._lock:
            rest = decoder.flush()
            if decoder in self._live:
                self._live.remove(decoder)
                add_stats(self._done, decoder.stats)
            return rest

    def snapshot(self) -> DecodeStats:
        out = DecodeStats()
        with self._lock:
            add_stats(out, self._done)
            for decoder in self._live:
                add_stats(out, decoder.stats)
        return out

    def status_fields(self) -> dict[str, object]:
        """The decode part of a link's ``status()``."""
        s = self.snapshot()
        return {
            "frames_ok": s.frames_ok,
            "frames_bad": {r: n for r, n in sorted(s.rejected.items()) if r != "garbage"},
            "garbage_bytes": s.garbage_bytes,
            "bytes_in": s.bytes_in,
            "frames": dict(sorted(s.frames.items())),
        }
