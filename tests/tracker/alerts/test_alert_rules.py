"""The alert rules (tracker/alerts/rules.py): clone verdicts, debouncing, thresholds, the
owner-key window, blind spots and clock skew, each against properties and worked examples."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from tracker.alerts.rules import (
    Debouncer,
    PassPoint,
    WindowCount,
    clock_skew_s,
    clone_verdict,
    is_silent,
    key_accompanied,
    pairing_due,
)

T0 = datetime(2026, 11, 28, 6, 0, tzinfo=UTC)


def at(s: float) -> datetime:
    return T0 + timedelta(seconds=s)


def pp(reader: str, first: float, last: float) -> PassPoint:
    return PassPoint(reader, at(first), at(last))


RULE = {"max_speed_kmh": 120.0, "min_distance_m": 300.0, "slack_s": 5.0}

passes = st.builds(
    lambda r, a, d: pp(r, a, a + d),
    st.sampled_from(["R1", "R2", "R3"]),
    st.floats(0, 7200, allow_nan=False),
    st.floats(0, 120, allow_nan=False),
)
distances = st.one_of(st.none(), st.floats(0, 50_000, allow_nan=False))


# --- clone_verdict: worked examples -------------------------------------------------------------

def test_too_fast_example() -> None:
    # 5 km in 60 s (+5 s slack) = 276.9 km/h: no e-bike does that
    v = clone_verdict(pp("A", 0, 10), pp("B", 70, 75), 5000.0, **RULE)
    assert v is not None and v.reason == "too_fast"
    assert v.gap_s == 60.0
    assert v.speed_kmh == pytest.approx(5000 / 65 * 3.6)


def test_plausible_example() -> None:
    # 2 km in 10 minutes: 12 km/h
    assert clone_verdict(pp("A", 0, 10), pp("B", 610, 620), 2000.0, **RULE) is None


def test_simultaneous_example() -> None:
    # heard at both readers, 2 km apart, during the same 20 s
    v = clone_verdict(pp("A", 0, 30), pp("B", 10, 40), 2000.0, **RULE)
    assert v is not None and v.reason == "simultaneous" and v.speed_kmh is None
    assert v.gap_s == -20.0


def test_overlap_within_slack_is_speed_checked() -> None:
    # overlapping by 3 s (two gateway clocks 3 s apart): travel time taken as 0 + 5 s slack;
    # 100 m apart is below the minimum distance, 400 m in 5 s is 288 km/h
    assert clone_verdict(pp("A", 0, 10), pp("B", 7, 12), 100.0, **RULE) is None
    v = clone_verdict(pp("A", 0, 10), pp("B", 7, 12), 400.0, **RULE)
    assert v is not None and v.reason == "too_fast"


def test_unknown_distance_or_same_reader_is_never_a_clone() -> None:
    assert clone_verdict(pp("A", 0, 10), pp("B", 11, 12), None, **RULE) is None
    assert clone_verdict(pp("A", 0, 10), pp("A", 0, 10), 9e9, **RULE) is None


# --- clone_verdict: properties ------------------------------------------------------------------

@given(passes, passes, distances)
def test_clone_verdict_is_symmetric(a: PassPoint, b: PassPoint, d: float | None) -> None:
    assert clone_verdict(a, b, d, **RULE) == clone_verdict(b, a, d, **RULE)


@given(passes, passes, st.floats(0, 300, exclude_max=True))
def test_close_readers_never_clone(a: PassPoint, b: PassPoint, d: float) -> None:
    assert clone_verdict(a, b, d, **RULE) is None


@given(passes, passes, st.floats(300, 50_000), st.floats(0, 50_000))
def test_farther_is_never_less_suspect(a: PassPoint, b: PassPoint, d: float,
                                       extra: float) -> None:
    """Moving the readers apart cannot turn a clone verdict into an acquittal."""
    if clone_verdict(a, b, d, **RULE) is not None:
        assert clone_verdict(a, b, d + extra, **RULE) is not None


@given(passes, passes, st.floats(300, 50_000), st.floats(0, 60), st.floats(0, 60))
def test_more_slack_is_never_more_suspect(a: PassPoint, b: PassPoint, d: float, s1: float,
                                          s2: float) -> None:
    lo, hi = sorted((s1, s2))
    rule = dict(RULE)
    if clone_verdict(a, b, d, **{**rule, "slack_s": hi}) is not None:
        assert clone_verdict(a, b, d, **{**rule, "slack_s": lo}) is not None


@given(passes, passes, st.floats(300, 50_000))
def test_verdict_matches_the_speed_definition(a: PassPoint, b: PassPoint, d: float) -> None:
    """Whatever the order, the verdict is exactly "faster than the limit, slack included" or
    "overlapping beyond the slack"."""
    assume(a.reader_id != b.reader_id)
    early, late = sorted((a, b), key=lambda p: (p.first_seen, p.last_seen))
    gap = (late.first_seen - early.last_seen).total_seconds()
    v = clone_verdict(a, b, d, **RULE)
    if gap < -RULE["slack_s"]:
        assert v is not None and v.reason == "simultaneous"
    else:
        speed = d / (max(gap, 0) + RULE["slack_s"]) * 3.6
        assert (v is not None) == (speed > RULE["max_speed_kmh"])


# --- Debouncer ----------------------------------------------------------------------------------

steps = st.lists(st.tuples(st.floats(0.0, 30.0), st.booleans()), max_size=80)


def _run(deb: Debouncer[str], seq: list[tuple[float, bool]]) -> list[tuple[float, str]]:
    t, out = 0.0, list[tuple[float, str]]()
    for dt, holds in seq:
        t += dt
        tr = deb.update("k", holds, at(t))
        if tr:
            out.append((t, tr))
    return out


@given(steps, st.floats(0, 60), st.floats(0, 60))
def test_debouncer_alternates_raise_and_clear(seq: list[tuple[float, bool]], hold: float,
                                              clear: float) -> None:
    kinds = [k for _, k in _run(Debouncer(hold_s=hold, clear_s=clear), seq)]
    assert kinds == (["raise", "clear"] * len(kinds))[:len(kinds)]


@given(steps, st.floats(0, 60), st.floats(0, 60))
def test_debouncer_raises_only_after_holding(seq: list[tuple[float, bool]], hold: float,
                                             clear: float) -> None:
    """A raise at t means the condition held at every evaluation in [t - hold, t], and at
    least one evaluation at or before t - hold saw it hold; likewise for clears."""
    deb: Debouncer[str] = Debouncer(hold_s=hold, clear_s=clear)
    t, history = 0.0, []
    for dt, holds in seq:
        t += dt
        history.append((t, holds))
        tr = deb.update("k", holds, at(t))
        if tr is None:
            continue
        want = tr == "raise"
        span = hold if want else clear
        # the run of equal values ending now
        run_start = t
        for ht, hv in reversed(history):
            if hv != want:
                break
            run_start = ht
        assert t - run_start >= span - 1e-6


def test_debouncer_flicker_does_not_flap() -> None:
    deb: Debouncer[str] = Debouncer(hold_s=60, clear_s=60)
    # holds for 30 s, absent 1 s, holds again: never raised
    assert deb.update("r", True, at(0)) is None
    assert deb.update("r", True, at(30)) is None
    assert deb.update("r", False, at(31)) is None
    assert deb.update("r", True, at(32)) is None
    assert deb.update("r", True, at(91)) is None
    assert deb.update("r", True, at(92)) == "raise"
    # a short absence while raised does not clear it, and it does not raise again
    assert deb.update("r", False, at(100)) is None
    assert deb.update("r", True, at(120)) is None
    assert deb.update("r", False, at(130)) is None
    assert deb.update("r", False, at(190)) == "clear"
    assert not deb.is_raised("r")


def test_debouncer_keys_are_independent() -> None:
    deb: Debouncer[str] = Debouncer(hold_s=0, clear_s=0)
    assert deb.update("a", True, at(0)) == "raise"
    assert deb.update("b", False, at(0)) is None
    assert deb.is_raised("a") and not deb.is_raised("b")


# --- WindowCount --------------------------------------------------------------------------------

@given(st.lists(st.integers(0, 100_000), max_size=60), st.integers(1, 5),
       st.integers(1000, 200_000), st.integers(0, 500_000))
def test_window_count_fires_exactly_at_threshold(gaps: list[int], n: int, window: int,
                                                 cooldown: int) -> None:
    """Reference model (times in milliseconds): events since the last fire (outside the
    cool-down) that lie within the window of the newest one; fires when they number n; quiet
    for the cool-down after."""
    wc: WindowCount[str] = WindowCount(threshold=n, window_s=window / 1000,
                                       cooldown_s=cooldown / 1000)
    t, quiet_until = 0, -1
    counted: list[int] = []
    for g in gaps:
        t += g
        fired = wc.add("tag", at(t / 1000))
        if t < quiet_until:
            assert not fired
            continue
        counted = [c for c in counted if t - c <= window] + [t]
        expect = len(counted) >= n
        assert fired == expect
        if fired:
            counted, quiet_until = [], t + cooldown


def test_window_count_example() -> None:
    wc: WindowCount[str] = WindowCount(threshold=3, window_s=60, cooldown_s=600)
    assert [wc.add("T", at(s)) for s in (0, 30, 61)] == [False, False, False]  # 0 fell out
    assert wc.add("T", at(62)) is True  # 30, 61, 62
    assert wc.add("T", at(63)) is False  # cooling down
    assert wc.add("U", at(63)) is False  # another tag counts for itself
    wc.prune(at(10_000))
    assert len(wc) == 0


# --- owner key pairing --------------------------------------------------------------------------

def test_key_accompanied_examples() -> None:
    vehicle = pp("R1", 100, 110)
    assert key_accompanied(vehicle, [pp("R1", 120, 121)], 15)  # 10 s after it left
    assert not key_accompanied(vehicle, [pp("R1", 126, 130)], 15)  # 16 s after
    assert not key_accompanied(vehicle, [pp("R2", 100, 110)], 15)  # another reader
    assert key_accompanied(vehicle, [pp("R1", 80, 86)], 15)  # just before, ended 14 s before
    assert not key_accompanied(vehicle, [], 15)


ms = st.integers(0, 1_000_000)


@given(ms, ms, ms, ms, st.integers(0, 120_000))
def test_key_accompanied_is_interval_distance(vf: int, vd: int, kf: int, kd: int,
                                              w: int) -> None:
    """Accompanied exactly when the gap between the two stays is at most the window (times
    in whole milliseconds, as on the wire)."""
    v, k = pp("R", vf / 1000, (vf + vd) / 1000), pp("R", kf / 1000, (kf + kd) / 1000)
    gap_ms = max(kf - (vf + vd), vf - (kf + kd), 0)
    assert key_accompanied(v, [k], w / 1000) == (gap_ms <= w)


@given(st.floats(0, 1000), st.floats(0, 100), st.floats(0, 100), st.floats(0, 2000))
def test_pairing_due_after_window_and_lag(last: float, w: float, lag: float, now: float) -> None:
    due = pairing_due(pp("R", 0, last), at(now), w, lag)
    if now >= last + w + lag + 1e-3:
        assert due
    elif now <= last + w + lag - 1e-3:
        assert not due


# --- reader_silent, clock_skew -------------------------------------------------------------------

def test_is_silent_examples() -> None:
    assert is_silent(3, 100, ratio=0.1, min_usual=20)
    assert not is_silent(10, 100, ratio=0.1, min_usual=20)  # exactly 10 %: not below
    assert not is_silent(0, 15, ratio=0.1, min_usual=20)  # a quiet reader at night
    assert not is_silent(0, None, ratio=0.1, min_usual=20)  # no history yet


@given(st.floats(0, 1e5), st.floats(0, 1e5), st.floats(0.01, 0.99), st.floats(1, 100))
def test_is_silent_is_monotone(a: float, b: float, ratio: float, min_usual: float) -> None:
    """Fewer sightings never look less silent."""
    lo, hi = sorted((a, b))
    if is_silent(hi, 500, ratio=ratio, min_usual=min_usual):
        assert is_silent(lo, 500, ratio=ratio, min_usual=min_usual)


def test_clock_skew_examples() -> None:
    # in step: lags of delivery only
    assert clock_skew_s([0.05, 0.2, 3.0], backlog_s=0, tolerance_s=120) is None
    # gateway 10 min ahead: its times arrive from the future
    assert clock_skew_s([-600.1, -599.8], backlog_s=0, tolerance_s=120) == pytest.approx(600.1)
    # every message 2 h late, but it is draining a 2 h backlog: explained
    assert clock_skew_s([7200.0, 7300.0], backlog_s=7250, tolerance_s=120) is None
    # every message 2 h late with no backlog: its clock is 2 h behind
    assert clock_skew_s([7200.0, 7300.0], backlog_s=0, tolerance_s=120) == pytest.approx(-7200)
    assert clock_skew_s([], backlog_s=0, tolerance_s=120) is None


@given(st.lists(st.floats(-1e5, 1e5), min_size=1, max_size=30), st.floats(0, 1e5),
       st.floats(0, 600), st.floats(-1e5, 1e5))
def test_clock_skew_uses_the_fastest_sample(lags: list[float], backlog: float, tol: float,
                                            slower: float) -> None:
    """Adding a sample slower than the fastest (more delayed) changes nothing: delivery can
    only delay, so only the fastest sample speaks of the clock."""
    assume(slower >= min(lags))
    assert clock_skew_s([*lags, slower], backlog, tol) == clock_skew_s(lags, backlog, tol)


@given(st.lists(st.floats(-1e5, 1e5), min_size=1, max_size=30), st.floats(0, 1e5),
       st.floats(0, 600))
def test_clock_skew_within_tolerance_is_none(lags: list[float], backlog: float,
                                             tol: float) -> None:
    skew = clock_skew_s(lags, backlog, tol)
    assert skew is None or abs(skew) > tol
