"""The city's ground truth as the sightings a perfect gateway would have sent.

Used by benchmarks and tests to feed the tracker's pure functions (trails, prediction) and
to compare what the pipeline stored against what really happened."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import timedelta

from firmware_sim.city import City, Passage
from pak.types import Sighting

__all__ = ["passage_sightings"]


def passage_sightings(city: City, passages: Iterable[Passage], *,
                      heard_only: bool = True) -> list[Sighting]:
    """One closed sighting per passage (the missed reads left out unless asked), with one
    spool per gateway and increasing seq numbers."""
    gw_of = {r.reader_id: r.gateway_id for r in city.readers}
    seqs: defaultdict[str, int] = defaultdict(int)
    out = []
    for p in passages:
        if heard_only and not p.heard:
            continue
        gw = gw_of[p.reader_id]
        seqs[gw] += 1
        out.append(Sighting(
            gateway_id=gw, spool_id="city", seq=seqs[gw], state="closed", tag_id=p.tag_id,
            tag_kind="active", reader_id=p.reader_id, first_seen=p.at,
            last_seen=p.at + timedelta(seconds=p.dwell_s), reads=max(1, int(p.dwell_s)),
            tag_type=0x30, antenna=p.antennas[0] if p.antennas else None,
            antennas=p.antennas, rssi_max_dbm=-60.0, rssi_max_raw=196))
    return out
