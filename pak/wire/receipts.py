"""Codec of ``{root}/gw/{gateway_id}/receipts`` (centre to gateway; schemas/receipts.json):
which sequence numbers of one spool the centre has committed, as compact inclusive ranges.

``ranges`` covers sightings stored in their final (closed) state: the gateway may delete
them. ``open_ranges`` covers sightings stored so far only as ``open``. Receipts are
idempotent and may arrive in any order.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from pak.timefmt import format_time
from pak.wire.common import VERSION, dumps, is_int, is_valid_id, load_object
from pak.wire.envelope import control
from pak.wire.errors import BAD_FIELD, BAD_VERSION, LOADING, WireError

__all__ = [
    "MAX_RANGES",
    "REASONS",
    "SCHEMA",
    "Receipt",
    "compact_ranges",
    "encode_receipts",
    "parse_receipts",
]

SCHEMA: Final = "receipts"
REASONS: Final = (*LOADING, BAD_FIELD)
#: The contract's limit on ranges per list; more ranges -> more messages.
MAX_RANGES: Final = 10000
MAX_RECEIPT_PAYLOAD: Final = 1 << 20


def compact_ranges(seqs: Iterable[int]) -> list[tuple[int, int]]:
    """Sorted, disjoint, inclusive ``(first, last)`` ranges covering ``seqs``."""
    out: list[tuple[int, int]] = []
    for s in sorted(set(seqs)):
        if out and s == out[-1][1] + 1:
            out[-1] = (out[-1][0], s)
        else:
            out.append((s, s))
    return out


@dataclass(frozen=True, slots=True)
class Receipt:
    """What the centre has committed for one spool.

    ``closed`` covers sightings stored in their final (closed) state: the gateway may delete
    them. ``open`` covers sightings stored so far only as ``open``: the gateway stops
    republishing that open message but keeps the sighting until its closed form is receipted
    (so a late receipt of the open message can never delete the closed one)."""

    gateway_id: str
    spool_id: str
    closed: list[tuple[int, int]]
    open: list[tuple[int, int]]


def encode_receipts(gateway_id: str, spool_id: str, closed: Sequence[tuple[int, int]],
                    at: datetime, open: Sequence[tuple[int, int]] = ()) -> bytes:
    body: dict[str, Any] = {
        "v": VERSION,
        "gateway_id": gateway_id,
        "spool_id": spool_id,
        "at": format_time(at),
        "ranges": [[a, b] for a, b in closed],
    }
    if open:
        body["open_ranges"] = [[a, b] for a, b in open]
    return control(dumps(body))


def _ranges(obj: dict[str, Any], key: str) -> list[tuple[int, int]]:
    ranges = obj.get(key, [])
    if not isinstance(ranges, list) or len(ranges) > MAX_RANGES:
        raise WireError(BAD_FIELD, key)
    out: list[tuple[int, int]] = []
    for r in ranges:
        if (not isinstance(r, list) or len(r) != 2 or not all(is_int(x) and x >= 0 for x in r)
                or r[0] > r[1]):
            raise WireError(BAD_FIELD, f"{key}: range {r!r}")
        out.append((r[0], r[1]))
    return out


def parse_receipts(payload: bytes) -> Receipt:
    """A receipts payload; WireError when malformed."""
    obj = load_object(payload, MAX_RECEIPT_PAYLOAD)
    if obj.get("v") != VERSION:
        raise WireError(BAD_VERSION, repr(obj.get("v")))
    gid, sid = obj.get("gateway_id"), obj.get("spool_id")
    if not is_valid_id(gid) or not is_valid_id(sid):
        raise WireError(BAD_FIELD, "gateway_id/spool_id")
    closed, open_ = _ranges(obj, "ranges"), _ranges(obj, "open_ranges")
    if not closed and not open_:
        raise WireError(BAD_FIELD, "no ranges")
    return Receipt(str(gid), str(sid), closed, open_)
