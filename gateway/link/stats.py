"""Decode counters of a link, summed over all its connections.

A link makes a new :class:`~gateway.drivers.base.StreamDecoder` per connection (a reopened
port must not inherit half a frame from the old one), yet health reports cumulative counters.
:class:`DecodeTotals` keeps the sum of finished decoders plus the live ones, behind one lock:
the link thread feeds bytes while the runtime's health thread takes snapshots.

Both links (serial and station server) also build their ``status()`` around the same counters
(:func:`link_status`) and log driver and sink exceptions the same way (:class:`ErrorsOnce`).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from gateway.drivers.base import DecodeItem, DecodeStats, Rejected, StreamDecoder

__all__ = ["DecodeTotals", "ErrorsOnce", "add_stats", "link_status"]


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


def link_status(*, state: str, since: datetime, url: str, reconnects: int, reads: int,
                echoes: int, totals: DecodeTotals, extra: Mapping[str, object],
                sink_errors: int, driver_errors: int) -> dict[str, Any]:
    """A link's ``status()``: the fields every link reports, its decode totals, then its own
    ``extra`` fields, and last the error counters (the key order is what health shows)."""
    out: dict[str, Any] = {
        "state": state,
        "url": url,
        "since": since,
        "reconnects": reconnects,
        "reads": reads,
        "echoes": echoes,
    }
    out.update(totals.status_fields())
    out.update(extra)
    out["errors"] = {"sink": sink_errors, "driver": driver_errors}
    return out


class ErrorsOnce:
    """Logs a link's driver and sink exceptions: with the traceback at ERROR the first time a
    (kind, exception type) shows up, at DEBUG after, so a reader whose every frame trips the
    same bug cannot flood the log. Events are named ``{prefix}_{kind}_error``."""

    def __init__(self, logger: logging.Logger, prefix: str) -> None:
        self._log = logger
        self._prefix = prefix
        self._seen: set[str] = set()

    def log(self, kind: str, exc: BaseException, **fields: object) -> None:
        key = f"{kind}:{type(exc).__name__}"
        level = logging.DEBUG if key in self._seen else logging.ERROR
        self._seen.add(key)
        if self._log.isEnabledFor(level):
            # stacklevel 2: the record names the link method that called, as before the merge
            self._log.log(level, f"{self._prefix}_{kind}_error", exc_info=exc,
                          extra={"fields": fields}, stacklevel=2)
