"""The city simulator's ground truth, and the prediction measured against it."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

from benchmarks.prediction import run as run_prediction
from firmware_sim.city import City

DAY = datetime(2026, 11, 2, tzinfo=UTC)


def test_city_is_deterministic_and_ordered() -> None:
    a = list(City(vehicles=50, seed=3).passages(DAY))
    b = list(City(vehicles=50, seed=3).passages(DAY))
    assert a == b and a
    assert all(x.at <= y.at for x, y in itertools.pairwise(a))


def test_passages_follow_the_grid() -> None:
    city = City(rows=8, cols=8, vehicles=30, reader_fraction=1.0, seed=5)
    for trip in city.day_trips(DAY):
        # consecutive nodes are grid neighbours; every node has a reader here
        assert all(abs(a[0] - b[0]) + abs(a[1] - b[1]) == 1
                   for a, b in itertools.pairwise(trip.nodes))
        assert len(trip.passages) == len(trip.nodes)
        for p in trip.passages[1:-1]:
            assert len(p.antennas) == 2  # came in by one approach, left by another
            assert p.antennas[0] != p.antennas[1] or len(set(p.antennas)) == 1


def test_prediction_beats_chance_on_held_out_days() -> None:
    out = run_prediction(["--vehicles", "400", "--train-days", "3", "--test-days", "1"])
    assert out["hops"] > 500
    # chance: three guesses drawn from the readers ever seen next after the current one
    assert out["top3_accuracy"] > out["top3_chance"] + 0.1
