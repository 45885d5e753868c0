"""Next-reader prediction: transition counts, second order with fallback, travel times."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tracker.trails.prediction import TransitionModel


def test_first_order_counts_and_times() -> None:
    m = TransitionModel(min_support=5)
    for _ in range(6):
        m.observe_trip(["A", "B", "C"], [60.0, 120.0])
    for _ in range(2):
        m.observe_trip(["A", "B", "D"], [60.0, 300.0])
    top = m.predict("B")
    assert [n.reader_id for n in top] == ["C", "D"]
    assert top[0].probability == pytest.approx(6 / 8)
    # the histogram's bins are ~15 % wide on a log scale: the median lands near 120 s
    assert top[0].travel_s_median == pytest.approx(120, rel=0.1)


def test_second_order_separates_directions() -> None:
    m = TransitionModel(min_support=2)
    for _ in range(20):
        m.observe_trip(["W", "X", "E"], None)  # eastbound through X
        m.observe_trip(["E", "X", "W"], None)  # westbound through X
    assert m.predict("X", prev="W")[0].reader_id == "E"
    assert m.predict("X", prev="E")[0].reader_id == "W"
    # without the previous reader both are equally likely
    first = m.predict("X")
    assert {n.reader_id for n in first} == {"E", "W"}
    assert first[0].probability == pytest.approx(0.5)


def test_unknown_reader_has_no_prediction() -> None:
    assert TransitionModel().predict("nowhere") == []


@given(st.lists(st.lists(st.sampled_from("ABCDE"), min_size=2, max_size=8), max_size=30),
       st.sampled_from("ABCDE"), st.none() | st.sampled_from("ABCDE"))
def test_probabilities_form_a_distribution(trips: list[list[str]], at: str,
                                           prev: str | None) -> None:
    m = TransitionModel(min_support=3)
    for t in trips:
        m.observe_trip(t, None)
    out = m.predict(at, prev, k=10)
    if out:
        assert sum(n.probability for n in out) == pytest.approx(1.0)
        assert [n.probability for n in out] == sorted((n.probability for n in out), reverse=True)
    again = TransitionModel.from_json(m.to_json())
    assert again.predict(at, prev, k=10) == out
