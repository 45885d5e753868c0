"""Trails: passes, trips, hops; implausible hops flagged, never hidden."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pak.types import Sighting
from tracker.trails.geo import bearing_deg, compass, haversine_m
from tracker.trails.trail import (
    build_trail,
    direction_of_travel,
    merge_passes,
    split_trips,
    trail_geojson,
    trail_json,
)

T0 = datetime(2026, 11, 28, 8, 0, tzinfo=UTC)


@dataclass(frozen=True)
class R:
    latitude: float | None
    longitude: float | None


# Three readers on one east-west street, ~1 km apart (0.009 deg of longitude at 30 deg N
# is ~866 m; values below were computed by hand with the haversine formula).
READERS = {"A": R(30.0, 120.0), "B": R(30.0, 120.01), "C": R(30.0, 120.02), "X": R(None, None)}

_seq = iter(range(10**9))


def s(reader: str, start_s: float, dur_s: float = 5, reads: int = 3,
      antennas: tuple[int, ...] = ()) -> Sighting:
    first = T0 + timedelta(seconds=start_s)
    return Sighting("gw", "sp", next(_seq), "closed", "AABBCCDD", "active", reader, first,
                    first + timedelta(seconds=dur_s), reads, antennas=antennas)


def test_geo_known_answers() -> None:
    # 0.01 deg of longitude on the 30th parallel: 2*pi*R*cos(30)/36000 = 963.2 m
    assert haversine_m(30, 120, 30, 120.01) == pytest.approx(963.2, abs=0.5)
    # one degree of latitude ~ 111.2 km
    assert haversine_m(0, 0, 1, 0) == pytest.approx(111_195, rel=1e-3)
    assert bearing_deg(30, 120, 30, 120.01) == pytest.approx(90, abs=0.01)
    assert bearing_deg(30, 120, 29.99, 120) == pytest.approx(180, abs=0.01)
    assert compass(91) == "E" and compass(359) == "N" and compass(225) == "SW"


def test_consecutive_sightings_at_one_reader_merge() -> None:
    passes = merge_passes([s("A", 0), s("A", 60, antennas=(2,)), s("B", 200), s("A", 400)])
    assert [p.reader_id for p in passes] == ["A", "B", "A"]
    assert passes[0].reads == 6 and passes[0].last_seen == T0 + timedelta(seconds=65)
    assert len(passes[0].sightings) == 2
    # back at the same reader after longer than the trip gap: a new pass
    apart = merge_passes([s("A", 0), s("A", 7200)], max_gap=timedelta(minutes=30))
    assert len(apart) == 2


def test_trips_split_at_gaps_and_hops_measured() -> None:
    trail = build_trail("AABBCCDD", [s("C", 3600), s("A", 0), s("B", 60)], READERS,
                        trip_gap=timedelta(minutes=30))
    assert len(trail.trips) == 2
    first = trail.trips[0]
    assert [p.reader_id for p in first.passes] == ["A", "B"]
    (hop,) = first.hops
    assert hop.travel_s == 55  # A's last read at 5 s, B's first at 60 s
    assert hop.distance_m == pytest.approx(963.2, abs=0.5)
    assert hop.speed_kmh == pytest.approx(963.2 / 55 * 3.6, rel=1e-3)  # ~63 km/h
    assert hop.heading == "E" and not hop.implausible


def test_impossible_hop_flagged_not_hidden() -> None:
    trail = build_trail("AABBCCDD", [s("A", 0, dur_s=1), s("C", 11)], READERS)
    (hop,) = trail.hops  # 1.93 km in 10 s = ~693 km/h
    assert hop.implausible and "km/h" in (hop.reason or "")
    assert [p.reader_id for p in trail.passes] == ["A", "C"]
    at_once = build_trail("AABBCCDD", [s("A", 0, dur_s=30), s("B", 10)], READERS)
    assert at_once.hops[0].implausible
    assert at_once.hops[0].reason == "at two readers at the same time"


def test_unknown_positions_do_not_break_the_trail() -> None:
    trail = build_trail("AABBCCDD", [s("A", 0), s("X", 60), s("Q", 120)], READERS)
    assert [h.distance_m for h in trail.hops] == [None, None]
    assert trail.unknown_readers == ("Q",)
    assert trail_json(trail)["trips"][0]["hops"][0]["speed_kmh"] is None


def test_road_distance_overrides_great_circle() -> None:
    trail = build_trail("AABBCCDD", [s("A", 0), s("B", 105)], READERS,
                        distance=lambda a, b: 1500.0)
    assert trail.hops[0].distance_m == 1500.0
    assert trail.hops[0].speed_kmh == pytest.approx(1500 / 100 * 3.6)


def test_geojson_shapes() -> None:
    gj = trail_geojson(build_trail("AABBCCDD", [s("A", 0), s("B", 60), s("C", 120)], READERS),
                       READERS)
    kinds = [f["geometry"]["type"] for f in gj["features"]]
    assert kinds.count("Point") == 3 and kinds.count("LineString") == 2  # one per hop
    line = next(f for f in gj["features"] if f["geometry"]["type"] == "LineString")
    assert line["geometry"]["coordinates"][0] == [120.0, 30.0]  # GeoJSON is lon, lat
    assert line["properties"]["from"] == "A" and line["properties"]["to"] == "B"
    assert {"speed_kmh", "implausible"} <= line["properties"].keys()


def test_direction_from_antenna_order() -> None:
    # heard first on the east antenna (1), last on the west one (3): came from the east,
    # leaves towards the west
    assert direction_of_travel((1, 4, 3)) == {"from": "E", "towards": "W", "heading_deg": 270.0}
    assert direction_of_travel((2,)) is None
    assert direction_of_travel(()) is None


@given(st.lists(st.tuples(st.sampled_from("ABC"), st.integers(0, 20000), st.integers(0, 300)),
                max_size=30),
       st.integers(1, 7200))
def test_trail_properties(items: list[tuple[str, int, int]], gap_s: int) -> None:
    sightings = [s(r, t, d) for r, t, d in items]
    trail = build_trail("AABBCCDD", sightings, READERS, trip_gap=timedelta(seconds=gap_s))
    passes = trail.passes
    # every sighting is in exactly one pass; passes alternate readers within the whole trail
    ids = [sid for p in passes for sid in p.sightings]
    assert sorted(ids, key=lambda i: i.seq) == sorted((x.id for x in sightings),
                                                      key=lambda i: i.seq)
    for a, b in itertools.pairwise(passes):  # same reader twice in a row only across a gap
        assert a.reader_id != b.reader_id or b.first_seen - a.last_seen > timedelta(
            seconds=gap_s)
    for trip in trail.trips:
        assert len(trip.hops) == len(trip.passes) - 1
        for a, b in zip(trip.passes, trip.passes[1:], strict=False):
            assert b.first_seen - a.last_seen <= timedelta(seconds=gap_s)
    for t1, t2 in zip(trail.trips, trail.trips[1:], strict=False):
        assert t2.passes[0].first_seen - t1.passes[-1].last_seen > timedelta(seconds=gap_s)
    assert sum(len(t) for t in split_trips(passes, timedelta(seconds=gap_s))) == len(passes)
