"""Police queries (tracker/trails/queries.py) and ``pak trail`` (tracker/trail_cli.py) over a real
SQLite storage: trails with implausible hops kept and flagged, who passed here, who travels
with whom, and the audit of every trail query."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from pak.errors import ConfigError
from tests.tracker.alerts.alert_fixtures import T0, at, make_storage, sighting
from tracker.storage import Storage
from tracker.trail_cli import main as trail_main
from tracker.trail_cli import parse_when
from tracker.trails.queries import companion_json, passed_here, seen_together, trail
from tracker.usecases.audit import os_user

TAG = "E200DDDD0001"


@pytest.fixture
def st(tmp_path: Path) -> Iterator[Storage]:
    s = make_storage(tmp_path)
    # trip 1: R2 -> R1 (5.56 km in 10 min: 33 km/h) -> R3 -> R2 again 30 s later (clone-fast)
    # trip 2 (an hour later): R1, with a second sighting at R1 (a red light) merged into it
    s.write_batch([
        sighting(1, "R2", 0, 10, tag=TAG),
        sighting(2, "R1", 610, 620, tag=TAG, antennas=(2, 4)),
        sighting(3, "R3", 640, 650, tag=TAG),
        sighting(4, "R2", 680, 690, tag=TAG),
        sighting(5, "R1", 4300, 4310, tag=TAG),
        sighting(6, "R1", 4330, 4340, tag=TAG),
        sighting(7, "R9", 4400, 4405, tag=TAG),  # a reader nobody registered
    ])
    yield s
    s.close()


def test_trail_trips_hops_and_flags(st: Storage) -> None:
    t = trail(st, tag_id=TAG, since=at(-60), until=at(5000), trip_gap=timedelta(minutes=30),
              max_speed_kmh=120)
    assert [[p.reader_id for p in trip.passes] for trip in t.trips] == [
        ["R2", "R1", "R3", "R2"], ["R1", "R9"]]
    first = t.trips[0].hops[0]
    assert first.distance_m == pytest.approx(5560, abs=5)
    assert first.travel_s == 600 and first.speed_kmh == pytest.approx(33.4, abs=0.1)
    assert not first.implausible
    fast = t.trips[0].hops[2]  # R3 -> R2: 5.45 km in 30 s
    assert fast.implausible and "km/h" in (fast.reason or "")
    assert t.trips[1].passes[0].reads == 2  # the two R1 sightings are one pass
    assert t.unknown_readers == ("R9",)


def test_trail_window_bounds_first_seen(st: Storage) -> None:
    t = trail(st, tag_id=TAG, since=at(610), until=at(680), trip_gap=timedelta(minutes=30),
              max_speed_kmh=120)
    assert [p.reader_id for p in t.passes] == ["R1", "R3"]  # 610 in, 680 out


def test_passed_here(st: Storage) -> None:
    st.write_batch([sighting(20, "R1", 615, 616, tag="E200EEEE0001"),
                    sighting(21, "R3", 620, 621, tag="E200EEEE0002")])
    got = passed_here(st, reader_ids=["R1"], since=at(600), until=at(700))
    assert [(s.tag_id, s.seq) for s in got] == [(TAG, 2), ("E200EEEE0001", 20)]
    both = passed_here(st, reader_ids=["R1", "R3"], since=at(600), until=at(700))
    assert [s.seq for s in both] == [2, 20, 21, 3]
    assert passed_here(st, reader_ids=[], since=at(0), until=at(1)) == []


def test_seen_together_finds_the_companion(st: Storage) -> None:
    st.write_batch([
        # the accomplice: with TAG at R2 (t=0) and at R1 (t=4300), seconds apart
        sighting(30, "R2", 8, 12, tag="E200FFFF0001"),
        sighting(31, "R1", 4290, 4300, tag="E200FFFF0001"),
        # a passer-by once, at R3
        sighting(32, "R3", 645, 650, tag="E200FFFF0002"),
        # someone at R1 a minute later: outside 30 s
        sighting(33, "R1", 680, 690, tag="E200FFFF0003"),
        sighting(34, "R2", 5, 9, tag="E200FFFF0003"),
    ])
    got = seen_together(st, tag_id=TAG, since=at(-60), until=at(5000), within_s=30,
                        min_times=2)
    assert [(c.tag_id, c.times, c.readers) for c in got] == [("E200FFFF0001", 2, ("R2", "R1"))]
    assert [o.delta_s for o in got[0].occasions] == [8.0, -10.0]
    assert companion_json(got[0])["occasions"][0] == {
        "reader_id": "R2", "tag_at": "2026-11-28T06:00:00.000Z",
        "other_at": "2026-11-28T06:00:08.000Z", "delta_s": 8.0}
    once = seen_together(st, tag_id=TAG, since=at(-60), until=at(5000), within_s=30,
                         min_times=1)
    assert {c.tag_id for c in once} == {"E200FFFF0001", "E200FFFF0002", "E200FFFF0003"}


def test_parse_when() -> None:
    assert parse_when("2026-11-28T06:00:00Z", T0) == T0
    assert parse_when("2026-11-28T14:00:00+08:00", T0) == T0
    assert parse_when("2026-11-28T06:00", T0) == T0  # no zone: UTC
    assert parse_when("2026-11-28", T0) == T0 - timedelta(hours=6)
    assert parse_when("6h", T0) == T0 - timedelta(hours=6)
    assert parse_when("90m", T0) == T0 - timedelta(minutes=90)
    assert parse_when("2d", T0) == T0 - timedelta(days=2)
    with pytest.raises(ConfigError):
        parse_when("yesterday", T0)


def test_pak_trail_is_audited_and_prints_each_format(
        st: Storage, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite://{tmp_path}/pak.db"
    base = [TAG.lower(), "--db", url, "--since", "2026-11-28T05:59:00Z",
            "--until", "2026-11-28T08:00:00Z"]
    assert trail_main([*base, "--reason", "case HZ-1 stolen e-bike"]) == 0
    table = capsys.readouterr().out
    assert "2 trip(s), 6 pass(es), 1 implausible hop(s)" in table
    assert "Wulin Sq. north" in table and "! " in table
    assert trail_main([*base, "--reason", "r", "--json"]) == 0
    body = json.loads(capsys.readouterr().out)
    assert body["tag_id"] == TAG and len(body["trips"]) == 2
    assert body["trips"][0]["passes"][1]["direction"]["towards"] == "N"  # antennas S then N
    assert trail_main([*base, "--reason", "r", "--geojson"]) == 0
    geo = json.loads(capsys.readouterr().out)
    kinds = [f["geometry"]["type"] for f in geo["features"]]
    # one line per hop of trip 1; trip 2 has one known reader: no line
    assert kinds.count("LineString") == len(body["trips"][0]["hops"]) == 3
    assert kinds.count("Point") == 5
    log = st.audit_log(action="trail")
    assert [(a.actor, a.reason) for a in log] == [(os_user(), "case HZ-1 stolen e-bike"),
                                                  (os_user(), "r"), (os_user(), "r")]
    assert log[0].params["tag_id"] == TAG
    assert log[0].params["since"] == "2026-11-28T05:59:00.000Z"
    with pytest.raises(ConfigError):
        trail_main([*base, "--reason", "  "])
    with pytest.raises(SystemExit):
        trail_main(base)  # no --reason: nothing is queried
    assert len(st.audit_log(action="trail")) == 3
