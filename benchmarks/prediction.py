"""Next-reader prediction against the city simulator's ground truth.

Trains the tracker's transition model on the trails of ``train_days`` simulated days (built
by the tracker's own trail code from the sightings a gateway would have sent, missed reads
included) and measures top-3 accuracy of the next reader on the following ``test_days``.

    pak bench prediction [--vehicles 3000] [--train-days 5] [--test-days 2]
"""

from __future__ import annotations

import argparse
import time
from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from firmware_sim.city import City
from firmware_sim.city_truth import passage_sightings
from pak.types import Sighting
from tracker.trails.prediction import TransitionModel, learn, top_k_accuracy
from tracker.trails.trail import Trail, build_trail


def _trails(city: City, start: datetime, days: int) -> list[Trail]:
    sightings = passage_sightings(city, city.passages(start, days))
    by_tag: defaultdict[str, list[Sighting]] = defaultdict(list)
    for s in sightings:
        by_tag[s.tag_id].append(s)
    readers = {r.reader_id: r for r in city.readers}
    return [build_trail(tag, ss, readers, trip_gap=timedelta(minutes=20))
            for tag, ss in by_tag.items()]


def run(argv: Sequence[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(prog="pak bench prediction", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--vehicles", type=int, default=3000)
    p.add_argument("--train-days", type=int, default=5)
    p.add_argument("--test-days", type=int, default=2)
    p.add_argument("--seed", type=int, default=1)
    args = p.parse_args(argv)
    city = City(vehicles=args.vehicles, seed=args.seed)
    start = datetime(2026, 11, 2, tzinfo=UTC)
    t0 = time.perf_counter()
    model = learn(TransitionModel(), _trails(city, start, args.train_days))
    t_train = time.perf_counter() - t0
    test = _trails(city, start + timedelta(days=args.train_days), args.test_days)
    result = top_k_accuracy(model, test, k=3)
    return {
        "benchmark": "prediction",
        "readers": len(city.readers),
        "vehicles": args.vehicles,
        "train_days": args.train_days,
        "test_days": args.test_days,
        "train_s": round(t_train, 2),
        **result,
        "goal": "top-3 accuracy of the next reader, measured against ground truth",
    }


def main(argv: Sequence[str] | None = None) -> int:
    import json

    print(json.dumps(run(argv)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
