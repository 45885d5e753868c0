"""Streams of sightings messages shaped like a gateway's traffic, for the ingest tests.

Every sighting is published twice, ``open`` at its first read and ``closed`` with the
aggregate; some arrive closed-first, some messages are sent twice, and messages carry 1-20
sightings. :func:`expected_rows` folds everything sent with pak.types.merge_sightings: the
table the tracker must end with, row for row.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from pak.types import Sighting, SightingId, merge_sightings
from pak.wire.sightings import encode_sightings


@dataclass(frozen=True)
class Message:
    gateway_id: str
    spool_id: str
    sightings: tuple[Sighting, ...]

    def payload(self, sent_at: datetime | None = None) -> bytes:
        return encode_sightings(self.gateway_id, self.spool_id, self.sightings,
                                sent_at or datetime.now(UTC))


def _ms(t: datetime) -> datetime:
    return t.replace(microsecond=t.microsecond // 1000 * 1000)


def pair(gateway_id: str, spool_id: str, seq: int, rnd: random.Random,
         base: datetime) -> tuple[Sighting, Sighting]:
    """The open and the closed form of one sighting (the open one a prefix of the closed)."""
    first = _ms(base + timedelta(milliseconds=rnd.randrange(0, 600_000)))
    ants = rnd.sample(range(1, 5), rnd.randint(1, 3))
    tag = f"E200{rnd.randrange(16**20):020X}"
    reader = f"rd-{gateway_id}-{rnd.randint(1, 2)}"
    dbm = round(rnd.uniform(-80, -30), 1)
    open_ = Sighting(gateway_id, spool_id, seq, "open", tag, "epc", reader, first, first, 1,
                     tag_type=None, antenna=ants[0], antennas=(ants[0],), rssi_max_dbm=dbm,
                     rssi_max_raw=rnd.randint(0, 255), flags=())
    flags = tuple(sorted(rnd.sample(["key", "low_battery", "tamper"], rnd.randint(0, 2))))
    closed = open_.replace(state="closed",
                           last_seen=_ms(first + timedelta(milliseconds=rnd.randint(0, 9000))),
                           reads=rnd.randint(1, 40), antennas=tuple(ants),
                           rssi_max_dbm=max(dbm, round(rnd.uniform(-80, -30), 1)),
                           rssi_max_raw=open_.rssi_max_raw, flags=flags)
    return open_, closed


def stream(gateways: Sequence[str], n: int, *, seed: int, dup_rate: float = 0.1,
           closed_first_rate: float = 0.2, max_per_message: int = 20,
           base: datetime | None = None, spool_id: str = "sp-1") -> list[Message]:
    """``n`` sightings spread over ``gateways``, as messages in publication order."""
    rnd = random.Random(seed)
    base = base or datetime.now(UTC) - timedelta(minutes=15)
    seqs = dict.fromkeys(gateways, 0)
    pending: dict[str, list[Sighting]] = {g: [] for g in gateways}
    target = {g: rnd.randint(1, max_per_message) for g in gateways}
    out: list[Message] = []

    def emit(g: str) -> None:
        out.append(Message(g, spool_id, tuple(pending[g])))
        pending[g] = []
        target[g] = rnd.randint(1, max_per_message)

    later: list[tuple[str, Sighting]] = []
    for _ in range(n):
        g = rnd.choice(gateways)
        seqs[g] += 1
        o, c = pair(g, spool_id, seqs[g], rnd, base)
        first, second = (c, o) if rnd.random() < closed_first_rate else (o, c)
        pending[g].append(first)
        later.append((g, second))
        # the second form goes out a little later, mixed with other sightings
        if len(later) > rnd.randint(0, 8):
            lg, ls = later.pop(rnd.randrange(len(later)))
            pending[lg].append(ls)
        for gw in gateways:
            if len(pending[gw]) >= target[gw]:
                emit(gw)
        if out and rnd.random() < dup_rate:
            out.append(out[rnd.randrange(len(out))])
    for lg, ls in later:
        pending[lg].append(ls)
    for g in gateways:
        while pending[g]:
            rest = pending[g][max_per_message:]
            pending[g] = pending[g][:max_per_message]
            emit(g)
            pending[g] = rest
    return out


def expected_rows(messages: Iterable[Message]) -> dict[SightingId, Sighting]:
    rows: dict[SightingId, Sighting] = {}
    for m in messages:
        for s in m.sightings:
            prev = rows.get(s.id)
            rows[s.id] = s if prev is None else merge_sightings(prev, s)
    return rows
