"""Reads -> sightings: every read lands in exactly one sighting, open before closed, the
aggregate is what the reads say, long presences split, memory stays bounded."""

from __future__ import annotations

import itertools
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.smoother import Smoother
from pak.types import Sighting, StampedRead, TagRead

T0 = datetime(2026, 11, 28, 6, 15, 2, tzinfo=UTC)
EXIT = 3.0
MAXDUR = 20.0


def read(tag: str, t: float, *, antenna: int | None = 1, dbm: float | None = -60.0,
         raw: int | None = 70, in_range: bool | None = None, low_battery: bool | None = None,
         key: bool | None = None, kind: str = "epc", tag_type: int | None = None,
         reader: str = "r1") -> StampedRead:
    r = TagRead(driver="x", tag_id=tag, tag_kind=kind, raw=b"", tag_type=tag_type,  # type: ignore[arg-type]
                antenna=antenna, rssi_dbm=dbm, rssi_raw=raw, in_range=in_range,
                low_battery=low_battery, key=key)
    return StampedRead(r, "gw1", reader, T0 + timedelta(seconds=t))


def smoother(**kw: float) -> Smoother:
    counter = itertools.count(100)
    return Smoother(spool_id="sp1", next_seq=lambda: next(counter),
                    exit_after=kw.get("exit_after", EXIT),
                    max_duration=kw.get("max_duration", MAXDUR),
                    max_open=int(kw.get("max_open", 10_000)))


def at(t: float) -> datetime:
    return T0 + timedelta(seconds=t)


def test_open_at_first_read_then_closed_after_exit_after() -> None:
    sm = smoother()
    out = sm.feed(read("E1", 0.0, antenna=2, dbm=-70, raw=59))
    assert [(s.state, s.seq, s.reads) for s in out] == [("open", 100, 1)]
    assert out[0].first_seen == out[0].last_seen == at(0)
    assert out[0].antennas == (2,) and out[0].antenna == 2
    assert sm.feed(read("E1", 1.0, antenna=1, dbm=-50, raw=79)) == []
    assert sm.feed(read("E1", 2.5, antenna=2, dbm=-65, raw=64, low_battery=True)) == []
    assert sm.expire(at(5.4)) == []  # 2.9 s after the last read: still there
    (closed,) = sm.expire(at(5.5))
    assert closed.state == "closed" and closed.seq == 100
    assert closed.first_seen == at(0) and closed.last_seen == at(2.5)
    assert closed.reads == 3
    assert closed.antennas == (2, 1) and closed.antenna == 2  # order of first read
    assert closed.rssi_max_dbm == -50 and closed.rssi_max_raw == 79
    assert closed.flags == ("low_battery",)
    assert len(sm) == 0


def test_out_of_range_report_closes_at_once() -> None:
    sm = smoother(exit_after=60, max_duration=300)
    sm.feed(read("3031A2B4", 0, kind="active", tag_type=0x30, in_range=True))
    out = sm.feed(read("3031A2B4", 30, kind="active", tag_type=0x30, in_range=False))
    assert [s.state for s in out] == ["closed"]
    assert out[0].reads == 2 and out[0].flags == ("out_of_range",)
    assert sm.stats.closed_out_of_range == 1
    # the next report of that tag is a new sighting
    assert [s.state for s in sm.feed(read("3031A2B4", 31, kind="active", tag_type=0x30))] == \
        ["open"]


def test_tag_type_tells_a_key_from_its_bike() -> None:
    sm = smoother()
    a = sm.feed(read("E3AF2232", 0, kind="active", tag_type=0x30))
    b = sm.feed(read("E3AF2232", 0.1, kind="active", tag_type=0x31, key=True))
    assert len(a) == len(b) == 1 and a[0].seq != b[0].seq
    assert b[0].flags == ("key",)


def test_max_duration_splits_a_parked_vehicle() -> None:
    sm = smoother(exit_after=3, max_duration=10)
    out: list[Sighting] = []
    for i in range(50):  # every 0.5 s for 25 s
        out += sm.feed(read("E1", i * 0.5))
    out += sm.close_all()
    opens = [s for s in out if s.state == "open"]
    closed = [s for s in out if s.state == "closed"]
    assert [s.first_seen for s in opens] == [at(0), at(10), at(20)]
    assert [(s.first_seen, s.last_seen, s.reads) for s in closed] == [
        (at(0), at(9.5), 20), (at(10), at(19.5), 20), (at(20), at(24.5), 10)]
    assert sm.stats.closed_max_duration == 2


def test_first_seen_is_the_same_in_open_and_closed() -> None:
    sm = smoother()
    (o,) = sm.feed(read("E1", 0.25))
    sm.feed(read("E1", 1.0))
    (c,) = sm.expire(at(10))
    assert (o.seq, o.first_seen) == (c.seq, c.first_seen)


def test_memory_is_bounded_by_max_open() -> None:
    sm = smoother(max_open=50, exit_after=600, max_duration=3600)
    evicted = 0
    for i in range(20_000):
        out = sm.feed(read(f"{i:08X}", i * 0.001))
        evicted += sum(1 for s in out if s.state == "closed")
        assert len(sm) <= 50
    assert evicted == 20_000 - 50 == sm.stats.closed_evicted
    # The stalest goes first: the survivors are the 50 most recent tags.
    rest = sm.close_all()
    assert sorted(s.tag_id for s in rest) == [f"{i:08X}" for i in range(20_000 - 50, 20_000)]


def test_a_read_long_after_the_last_starts_a_new_sighting_even_without_expire() -> None:
    sm = smoother()
    sm.feed(read("E1", 0))
    out = sm.feed(read("E1", 10))  # expire() was not called in between
    assert [(s.state, s.reads) for s in out] == [("closed", 1), ("open", 1)]


def test_clock_stepping_back_never_makes_last_seen_earlier() -> None:
    sm = smoother()
    sm.feed(read("E1", 5))
    sm.feed(read("E1", 2))  # NTP stepped the gateway's clock back
    (c,) = sm.close_all()
    assert c.last_seen == c.first_seen == at(5) and c.reads == 2


def test_dirty_reports_changed_open_sightings_once() -> None:
    sm = smoother()
    sm.feed(read("E1", 0))
    sm.feed(read("E2", 0))
    assert sm.dirty() == []  # a fresh open is already stored as such
    sm.feed(read("E1", 1))
    (d,) = sm.dirty()
    assert d.state == "open" and d.reads == 2 and d.tag_id == "E1"
    assert sm.dirty() == []


# --- properties ----------------------------------------------------------------------------

@dataclass(frozen=True)
class Op:
    tag: int  # -1: an expire() call instead of a read
    dt_ms: int
    antenna: int | None
    raw: int | None
    out_of_range: bool
    low_battery: bool


ops = st.lists(st.builds(
    Op,
    tag=st.integers(-1, 4),
    dt_ms=st.integers(1, 4000),
    antenna=st.none() | st.integers(1, 4),
    raw=st.none() | st.integers(0, 255),
    out_of_range=st.sampled_from([False] * 9 + [True]),
    low_battery=st.sampled_from([False] * 5 + [True]),
), max_size=300)


@given(ops)
def test_every_read_belongs_to_exactly_one_sighting(seq: list[Op]) -> None:
    sm = smoother(exit_after=2.0, max_duration=6.0)
    t = 0.0
    stream: list[Sighting] = []
    reads: dict[str, list[tuple[float, Op]]] = defaultdict(list)
    for op in seq:
        t += op.dt_ms / 1000
        if op.tag < 0:
            stream += sm.expire(at(t))
            continue
        tag = f"E{op.tag}"
        reads[tag].append((t, op))
        stream += sm.feed(read(tag, t, antenna=op.antenna, raw=op.raw, dbm=None,
                               in_range=False if op.out_of_range else None,
                               low_battery=op.low_battery or None))
        assert len(sm) <= 5
    stream += sm.close_all()

    # Each seq: one open, then one closed, nothing else; open first.
    states: dict[int, list[str]] = defaultdict(list)
    for s in stream:
        states[s.seq].append(s.state)
    assert all(v == ["open", "closed"] for v in states.values())
    closed = [s for s in stream if s.state == "closed"]
    opens = {s.seq: s for s in stream if s.state == "open"}

    for tag, tag_reads in reads.items():
        mine = sorted((s for s in closed if s.tag_id == tag), key=lambda s: s.first_seen)
        assert sum(s.reads for s in mine) == len(tag_reads)
        i = 0
        parts = []
        for s in mine:
            assert opens[s.seq].first_seen == s.first_seen
            part = tag_reads[i:i + s.reads]
            parts.append(part)
            i += s.reads
            # The sighting's reads are exactly the tag's reads from first_seen to last_seen.
            assert at(part[0][0]) == s.first_seen and at(part[-1][0]) == s.last_seen
            gaps = [b[0] - a[0] for a, b in itertools.pairwise(part)]
            assert all(g < 2.0 for g in gaps)
            assert part[-1][0] - part[0][0] < 6.0
            # No out-of-range report inside a sighting, only possibly as its last read.
            assert not any(op.out_of_range for _, op in part[:-1])
            want_ants = tuple(dict.fromkeys(op.antenna for _, op in part if op.antenna))
            assert s.antennas == want_ants
            assert s.antenna == (want_ants[0] if want_ants else None)
            raws = [op.raw for _, op in part if op.raw is not None]
            assert s.rssi_max_raw == (max(raws) if raws else None)
            flags = set()
            if any(op.low_battery for _, op in part):
                flags.add("low_battery")
            if part[-1][1].out_of_range:
                flags.add("out_of_range")
            assert s.flags == tuple(sorted(flags))
        for pa, pb in itertools.pairwise(parts):
            # Why two sightings and not one: a silence, a leave report, or max_duration.
            assert (pb[0][0] - pa[-1][0] >= 2.0 or pa[-1][1].out_of_range
                    or pb[0][0] - pa[0][0] >= 6.0)


@pytest.mark.parametrize("bad", [{"exit_after": 0}, {"max_duration": -1}, {"max_open": 0}])
def test_refuses_nonsense_limits(bad: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        smoother(**bad)
