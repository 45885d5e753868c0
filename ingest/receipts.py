"""Receipts: after commits, tell every gateway which of its sightings are stored.

One message per (gateway, spool), on ``{root}/gw/{gateway_id}/receipts`` (QoS 1)::

    {"v":1, "gateway_id":"gw-7", "spool_id":"s9", "at":"...Z",
     "ranges":      [[101,180],[182,182]],    stored closed: the gateway deletes them
     "open_ranges": [[181,181]]}              stored only as open so far: stop republishing
                                              the open message, keep the sighting

A seq is in ``ranges`` when a committed batch held it closed: closed beats open in the
database too, so the stored row is then certainly closed. A seq committed only as open is in
``open_ranges`` even if an earlier batch (before the last receipt) stored it closed: that is the
safe answer (the gateway keeps what it may still need), never the reverse.

:class:`PendingReceipts` gathers what commits cover and is drained every receipt interval: at a
city's peak a batch holds a few sightings of each of a thousand gateways, and one receipt per
gateway per batch would cost the tracker as much as the sightings themselves. Receipts are
about the gateway's disk, not about latency (it republishes only after tens of seconds), so a
second's delay costs nothing.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Final

from pak.types import Sighting
from pak.wire.envelope import SignerLike, control
from pak.wire.receipts import compact_ranges, encode_receipts
from pak.wire.topics import Topics

__all__ = ["MAX_RANGES", "PendingReceipts", "receipts_for"]

#: The contract's limit on ranges per list (pak/schemas/receipts.json); more -> more messages.
MAX_RANGES: Final = 10_000

_Key = tuple[str, str]  # gateway id, spool id


def _chunks(ranges: list[tuple[int, int]]) -> list[list[tuple[int, int]]]:
    return [ranges[i:i + MAX_RANGES] for i in range(0, len(ranges), MAX_RANGES)] or [[]]


def _encode(closed: dict[_Key, set[int]], opened: dict[_Key, set[int]], topics: Topics,
            at: datetime, signer: SignerLike | None = None) -> list[tuple[str, bytes]]:
    out: list[tuple[str, bytes]] = []
    for key in sorted(closed.keys() | opened.keys()):
        gid, sid = key
        c_chunks = _chunks(compact_ranges(closed.get(key, ())))
        o_chunks = _chunks(compact_ranges(opened.get(key, set()) - closed.get(key, set())))
        for i in range(max(len(c_chunks), len(o_chunks))):
            c = c_chunks[i] if i < len(c_chunks) else []
            o = o_chunks[i] if i < len(o_chunks) else []
            if c or o:
                topic = topics.receipts(gid)
                out.append((topic, control(encode_receipts(gid, sid, c, at, open=o), signer,
                                           topic)))
    return out


def _collect(sightings: Iterable[Sighting], closed: dict[_Key, set[int]],
             opened: dict[_Key, set[int]]) -> None:
    for s in sightings:
        key = (s.gateway_id, s.spool_id)
        target = closed if s.state == "closed" else opened
        seqs = target.get(key)
        if seqs is None:
            target[key] = {s.seq}
        else:
            seqs.add(s.seq)


def receipts_for(sightings: Iterable[Sighting], topics: Topics, at: datetime,
                 signer: SignerLike | None = None) -> list[tuple[str, bytes]]:
    """The receipt messages (topic, payload) for committed sightings (signed by ``signer``)."""
    closed: dict[_Key, set[int]] = {}
    opened: dict[_Key, set[int]] = {}
    _collect(sightings, closed, opened)
    return _encode(closed, opened, topics, at, signer)


class PendingReceipts:
    """Committed sighting ids not yet receipted (thread-safe): :meth:`add` after each commit,
    :meth:`take` when receipts are due."""

    def __init__(self, topics: Topics, signer: SignerLike | None = None) -> None:
        self._topics = topics
        self._signer = signer
        self._lock = threading.Lock()
        self._closed: dict[_Key, set[int]] = {}
        self._opened: dict[_Key, set[int]] = {}
        self.count = 0  # seqs added since the last take (an upper bound of what is pending)

    def add(self, sightings: Sequence[Sighting]) -> None:
        with self._lock:
            _collect(sightings, self._closed, self._opened)
            self.count += len(sightings)

    def take(self, at: datetime) -> list[tuple[str, bytes]]:
        """The receipts of everything added since the last take."""
        with self._lock:
            closed, opened = self._closed, self._opened
            self._closed, self._opened, self.count = {}, {}, 0
        return _encode(closed, opened, self._topics, at, self._signer)
