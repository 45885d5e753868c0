"""The alert timers' bulk reads (tracker/trails/history.py over Storage.sightings_of_tags and
Storage.count_by_reader) on every backend, against the interface's one-query-per-tag defaults."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from pak.types import SightingId
from tests.tracker.alerts.alert_fixtures import at, sighting
from tracker.storage import Storage, open_storage
from tracker.trails.history import reader_counts, tag_histories


@pytest.fixture(params=["sqlite", pytest.param("timescale", marks=pytest.mark.timescale)])
def st(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Storage]:
    url = (f"sqlite://{tmp_path}/h.db" if request.param == "sqlite"
           else request.getfixturevalue("pg_url"))
    s = open_storage(url)
    s.migrate()
    s.write_batch([
        sighting(1, "R1", 0, 5, tag="AA01"),
        sighting(2, "R2", 60, 65, tag="AA01"),
        sighting(3, "R1", 120, 125, tag="AA02"),
        sighting(4, "R3", 30, 35, tag="AA03"),
        sighting(5, "R1", 600, 605, tag="AA01"),  # outside the window below
        sighting(6, "R2", -10, -5, tag="AA02"),  # before it
    ])
    yield s
    s.close()


def test_histories_of_many_tags_in_one_read(st: Storage) -> None:
    got = tag_histories(st, ["AA02", "AA01", "AA01", "ZZ99"], since=at(0), until=at(600))
    assert {t: [s.seq for s in ss] for t, ss in got.items()} == {"AA01": [1, 2], "AA02": [3]}
    first = got["AA01"][0]
    assert (first.reader_id, first.first_seen, first.last_seen) == ("R1", at(0), at(5))
    assert first.sid == SightingId("gw-1", "sp-1", 1)
    # the lean read says what the full one says
    assert st.tag_passes(["AA01", "AA03"], since=at(-60), until=at(601)) == \
        Storage.tag_passes(st, ["AA01", "AA03"], since=at(-60), until=at(601))
    # the backend's one statement says what the interface's default says
    fast = st.sightings_of_tags(["AA01", "AA02", "AA03"], since=at(-60), until=at(601))
    slow = Storage.sightings_of_tags(st, ["AA01", "AA02", "AA03"], since=at(-60),
                                     until=at(601))
    assert fast == slow
    assert [(s.tag_id, s.seq) for s in fast] == [("AA01", 1), ("AA01", 2), ("AA01", 5),
                                                 ("AA02", 6), ("AA02", 3), ("AA03", 4)]
    assert st.sightings_of_tags([], since=at(0), until=at(1)) == []


def test_counts_per_reader(st: Storage) -> None:
    assert reader_counts(st, since=at(0), until=at(600)) == {"R1": 2, "R2": 1, "R3": 1}
    assert st.count_by_reader(since=at(-60), until=at(601)) == \
        Storage.count_by_reader(st, since=at(-60), until=at(601)) == {"R1": 3, "R2": 2, "R3": 1}
    assert st.count_by_reader(since=at(1000), until=at(2000)) == {}


def test_paired_vehicles_only(st: Storage) -> None:
    from tracker.storage import Vehicle

    st.upsert_vehicles([
        Vehicle("V-1", "P1", key_tag_id="31000001", unaccompanied_check=True),
        Vehicle("V-2", "P2", key_tag_id="31000002"),  # check off (the default)
        Vehicle("V-3", "P3", unaccompanied_check=True),  # no key registered
        Vehicle("V-0", "P0", key_tag_id="31000000", unaccompanied_check=True),
    ])
    assert [v.vehicle_id for v in st.paired_vehicles()] == ["V-0", "V-1"]
    assert st.paired_vehicles() == Storage.paired_vehicles(st)
