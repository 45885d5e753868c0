"""Receipts: after each commit, tell every gateway which of its sightings are stored.

One message per (gateway, spool) in the batch, on ``{root}/gw/{gateway_id}/receipts`` (QoS 1)::

    {"v":1, "gateway_id":"gw-7", "spool_id":"s9", "at":"...Z",
     "ranges":      [[101,180],[182,182]],    stored closed: the gateway deletes them
     "open_ranges": [[181,181]]}              stored only as open so far: stop republishing
                                              the open message, keep the sighting

A seq is in ``ranges`` when the batch's merged sighting is closed: closed beats open in the
database too, so the stored row is then certainly closed. A seq the batch holds only as open is
in ``open_ranges`` even if an earlier batch already stored it closed: that is the safe answer
(the gateway keeps what it may still need), never the reverse. Receipts cover only this batch;
the gateway accumulates them.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Final

from pak.types import Sighting
from pak.wire import Topics, compact_ranges, encode_receipts

__all__ = ["MAX_RANGES", "receipts_for"]

#: The contract's limit on ranges per list (pak/schemas/receipts.json); more -> more messages.
MAX_RANGES: Final = 10_000


def _chunks(ranges: list[tuple[int, int]]) -> list[list[tuple[int, int]]]:
    return [ranges[i:i + MAX_RANGES] for i in range(0, len(ranges), MAX_RANGES)] or [[]]


def receipts_for(sightings: Iterable[Sighting], topics: Topics,
                 at: datetime) -> list[tuple[str, bytes]]:
    """The receipt messages (topic, payload) for one committed, deduplicated batch."""
    closed: dict[tuple[str, str], list[int]] = {}
    opened: dict[tuple[str, str], list[int]] = {}
    for s in sightings:
        key = (s.gateway_id, s.spool_id)
        (closed if s.state == "closed" else opened).setdefault(key, []).append(s.seq)
    out: list[tuple[str, bytes]] = []
    for key in sorted(closed.keys() | opened.keys()):
        gid, sid = key
        c_chunks = _chunks(compact_ranges(closed.get(key, ())))
        o_chunks = _chunks(compact_ranges(opened.get(key, ())))
        for i in range(max(len(c_chunks), len(o_chunks))):
            c = c_chunks[i] if i < len(c_chunks) else []
            o = o_chunks[i] if i < len(o_chunks) else []
            out.append((topics.receipts(gid), encode_receipts(gid, sid, c, at, open=o)))
    return out
