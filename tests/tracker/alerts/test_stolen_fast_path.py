"""The stolen handler's fast path for the priority lane (StolenHandler.on_hit): it believes
only this instance's watchlist; one hit that arrives by both lanes is one alert event, and
the bulk lane still hands the alert to storage."""

from __future__ import annotations

from pathlib import Path

from tests.tracker.alerts.alert_fixtures import (
    READERS,
    STOLEN,
    Published,
    at,
    engine,
    make_storage,
    sighting,
    watch,
)

AID = f"stolen_hit:{STOLEN}:HZ-2026-0415"


def test_hit_then_bulk_is_one_event_and_stored(tmp_path: Path) -> None:
    st = make_storage(tmp_path)
    watch(st)
    pub = Published()
    e = engine(st, pub)
    s = sighting(1, READERS[0].reader_id, 0, state="open")
    assert e.stolen.on_hit(s, at(1))
    assert pub.ids() == [AID]
    assert pub.items[0][1]["detail"]["case"] == "HZ-2026-0415"
    stored = e.on_sightings([s], at(2))  # the same sighting on the bulk lane
    assert [a.alert_id for a in stored] == [AID]
    assert pub.ids() == [AID]  # no second event
    assert e.on_sightings([s], at(3)) == []  # a redelivery after that: nothing
    assert not e.stolen.on_hit(s, at(4))  # a late copy on the hit lane: nothing


def test_bulk_first_then_hit_is_one_event(tmp_path: Path) -> None:
    st = make_storage(tmp_path)
    watch(st)
    pub = Published()
    e = engine(st, pub)
    s = sighting(1, READERS[0].reader_id, 0, state="open")
    assert len(e.on_sightings([s], at(1))) == 1
    assert not e.stolen.on_hit(s, at(2))
    assert pub.ids() == [AID]


def test_a_hit_the_watchlist_does_not_hold_raises_nothing(tmp_path: Path) -> None:
    st = make_storage(tmp_path)
    pub = Published()
    e = engine(st, pub)  # nothing watched
    assert not e.stolen.on_hit(sighting(1, READERS[0].reader_id, 0, tag=STOLEN,
                                        state="open"), at(1))
    watch(st)
    e.watchlist.load()
    assert not e.stolen.on_hit(sighting(2, READERS[0].reader_id, 0, state="closed"), at(1))
    assert pub.ids() == []
