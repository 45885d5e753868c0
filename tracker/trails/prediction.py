"""Where a vehicle goes next: transition counts and travel times between readers.

The model learns from trails (consecutive passes of one trip): for each reader, and for each
(previous reader, reader) pair (which also fixes the direction of travel through the reader),
how often each next reader followed and how long the hop took. A prediction for a vehicle at
reader R that came from P uses the second-order counts when they have enough support and
falls back to R's first-order counts (then blends the two), so a rarely travelled approach
still gets an answer. Travel times keep a bounded log-scale histogram per pair: median and a
p10-p90 range for the expected arrival window.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

__all__ = ["NextReader", "TransitionModel", "learn", "top_k_accuracy", "trip_sequences"]

# travel-time histogram: log-spaced bins from 1 s to ~3 h
_BINS = 64
_LOG_MIN, _LOG_MAX = 0.0, math.log(3 * 3600)


def _bin(seconds: float) -> int:
    x = math.log(max(seconds, 1.0))
    return min(_BINS - 1, int((x - _LOG_MIN) / (_LOG_MAX - _LOG_MIN) * _BINS))


def _bin_mid(i: int) -> float:
    return math.exp(_LOG_MIN + (i + 0.5) * (_LOG_MAX - _LOG_MIN) / _BINS)


@dataclass
class _TravelTimes:
    hist: list[int] = field(default_factory=lambda: [0] * _BINS)
    n: int = 0

    def add(self, seconds: float) -> None:
        self.hist[_bin(seconds)] += 1
        self.n += 1

    def quantile(self, q: float) -> float | None:
        if self.n == 0:
            return None
        target, acc = q * self.n, 0
        for i, c in enumerate(self.hist):
            acc += c
            if acc >= target:
                return _bin_mid(i)
        return _bin_mid(_BINS - 1)


@dataclass(frozen=True, slots=True)
class NextReader:
    reader_id: str
    probability: float
    support: int
    travel_s_median: float | None
    travel_s_p10: float | None
    travel_s_p90: float | None

    def eta(self, departed: datetime) -> dict[str, Any]:
        def at(s: float | None) -> datetime | None:
            return None if s is None else departed + timedelta(seconds=s)

        return {"expected": at(self.travel_s_median), "earliest": at(self.travel_s_p10),
                "latest": at(self.travel_s_p90)}


class TransitionModel:
    """Counts of reader -> next reader (first order) and (prev, reader) -> next (second order),
    with travel-time distributions per reader pair."""

    def __init__(self, *, min_support: int = 5) -> None:
        self.min_support = min_support
        self.first: defaultdict[str, Counter[str]] = defaultdict(Counter)
        self.second: defaultdict[tuple[str, str], Counter[str]] = defaultdict(Counter)
        self.times: defaultdict[tuple[str, str], _TravelTimes] = defaultdict(_TravelTimes)
        self.trips_seen = 0

    def observe_trip(self, readers: Sequence[str], travel_s: Sequence[float] | None = None) -> None:
        """Learn from one trip: the readers passed in order, and the hop times between them
        (``len(readers) - 1`` values) when known. Repeats of one reader are ignored."""
        seq = [r for i, r in enumerate(readers) if i == 0 or r != readers[i - 1]]
        self.trips_seen += 1
        for i in range(len(seq) - 1):
            a, b = seq[i], seq[i + 1]
            self.first[a][b] += 1
            if i > 0:
                self.second[(seq[i - 1], a)][b] += 1
        if travel_s is not None and len(travel_s) == len(readers) - 1:
            for i, t in enumerate(travel_s):
                if readers[i] != readers[i + 1] and t >= 0:
                    self.times[(readers[i], readers[i + 1])].add(t)

    def observe_trips(self, trips: Iterable[tuple[Sequence[str], Sequence[float] | None]]) -> None:
        for readers, times in trips:
            self.observe_trip(readers, times)

    def predict(self, reader: str, prev: str | None = None, k: int = 3) -> list[NextReader]:
        """The ``k`` most likely next readers after ``reader`` (coming from ``prev``)."""
        first = self.first.get(reader, Counter())
        second = self.second.get((prev, reader), Counter()) if prev else Counter()
        n1, n2 = sum(first.values()), sum(second.values())
        if n1 == 0 and n2 == 0:
            return []
        # weight the second-order evidence by how much of it there is (a simple shrinkage)
        w = n2 / (n2 + self.min_support) if n2 else 0.0
        scores: dict[str, float] = {}
        for r in set(first) | set(second):
            p1 = first[r] / n1 if n1 else 0.0
            p2 = second[r] / n2 if n2 else 0.0
            scores[r] = w * p2 + (1 - w) * p1
        total = sum(scores.values()) or 1.0
        ranked = sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))[:k]
        out = []
        for r, s in ranked:
            tt = self.times.get((reader, r))
            out.append(NextReader(
                r, s / total, first[r] + second[r],
                tt.quantile(0.5) if tt else None, tt.quantile(0.1) if tt else None,
                tt.quantile(0.9) if tt else None))
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "min_support": self.min_support,
            "trips_seen": self.trips_seen,
            "first": {a: dict(c) for a, c in self.first.items()},
            "second": [[p, a, dict(c)] for (p, a), c in self.second.items()],
            "times": [[a, b, t.hist] for (a, b), t in self.times.items()],
        }

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> TransitionModel:
        m = cls(min_support=int(obj.get("min_support", 5)))
        m.trips_seen = int(obj.get("trips_seen", 0))
        for a, c in obj.get("first", {}).items():
            m.first[a] = Counter(c)
        for p, a, c in obj.get("second", []):
            m.second[(p, a)] = Counter(c)
        for a, b, hist in obj.get("times", []):
            tt = _TravelTimes(list(hist), sum(hist))
            m.times[(a, b)] = tt
        return m


def trip_sequences(trails: Iterable[Any]) -> Iterator[tuple[list[str], list[float]]]:
    """(readers, hop travel times) of every trip of the given trails (trail.Trail)."""
    for trail in trails:
        for trip in trail.trips:
            readers = [p.reader_id for p in trip.passes]
            if len(readers) >= 2:
                yield readers, [h.travel_s for h in trip.hops]


def learn(model: TransitionModel, trails: Iterable[Any]) -> TransitionModel:
    """Feed every trip of ``trails`` into ``model``."""
    model.observe_trips(trip_sequences(trails))
    return model


def top_k_accuracy(model: TransitionModel, trails: Iterable[Any], k: int = 3) -> dict[str, Any]:
    """For every hop after the first of each trip (so the previous reader is known), whether
    the reader actually reached next is among the model's top ``k``; also the first hop of each
    trip (no previous reader) separately."""
    hits = total = hits_first = total_first = 0
    chance = 0.0  # expected hits of k guesses drawn at random from the readers ever seen next
    for readers, _ in trip_sequences(trails):
        for i in range(len(readers) - 1):
            prev = readers[i - 1] if i else None
            guess = [n.reader_id for n in model.predict(readers[i], prev, k)]
            ok = readers[i + 1] in guess
            if prev is None:
                total_first += 1
                hits_first += ok
            else:
                total += 1
                hits += ok
                seen_next = model.first.get(readers[i], Counter())
                if readers[i + 1] in seen_next:
                    chance += min(1.0, k / len(seen_next))
    return {
        "k": k,
        "hops": total,
        f"top{k}_accuracy": hits / total if total else None,
        f"top{k}_chance": chance / total if total else None,
        "first_hops": total_first,
        f"top{k}_accuracy_first_hop": hits_first / total_first if total_first else None,
    }
