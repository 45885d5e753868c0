"""The movement model's warm-up: a model that knows few trips is relearned every ``warmup_s``
(not every ``refresh_s``), and a prediction asked of an empty model wakes the learner, so a
new site (the demo) has predictions within minutes of its first traffic."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from pak.types import Sighting
from tests.support.wait import eventually
from tracker.storage import open_storage
from tracker.storage.base import Storage
from tracker.storage.records import Reader
from tracker.trails.movement import MovementModel

READERS = {"a": Reader("a", "A", 30.0, 120.0), "b": Reader("b", "B", 30.0, 120.004)}


@pytest.fixture
def storage(tmp_path: Path) -> Iterator[Storage]:
    with open_storage(f"sqlite:///{tmp_path / 'm.sqlite3'}") as st:
        st.migrate()
        yield st


def _trips(storage: Storage, n: int, now: datetime) -> None:
    out = []
    for i in range(n):
        tag = f"{0x40000000 + i:08X}"
        t = now - timedelta(minutes=30)
        for seq, reader in enumerate(("a", "b")):
            s = t + timedelta(seconds=60 * seq)
            out.append(Sighting("gw", "sp", i * 2 + seq, "closed", tag, "epc", reader, s,
                                s + timedelta(seconds=3), 3))
    storage.write_batch(out)


def test_few_trips_mean_the_warm_up_interval(storage: Storage) -> None:
    now = datetime.now(UTC)
    m = MovementModel(storage, lambda: READERS, refresh_s=3600, warmup_s=60, warmup_trips=10,
                      min_support=1, clock=lambda: now)
    assert m.next_wait() == 60  # no model yet
    m.relearn()
    assert m.model is not None and m.model.trips_seen == 0 and m.next_wait() == 60
    _trips(storage, 10, now)
    m.relearn()
    assert m.model.trips_seen == 10 and m.next_wait() == 3600


def test_a_prediction_on_an_empty_model_wakes_the_learner(storage: Storage) -> None:
    now = [datetime.now(UTC)]
    m = MovementModel(storage, lambda: READERS, refresh_s=3600, warmup_s=60, warmup_trips=10,
                      min_support=1, clock=lambda: now[0])
    m.start()
    try:
        assert m.ready.wait(10) and m.learned_from == 0  # the first run: an empty table
        _trips(storage, 6, now[0])
        assert m.predict("a", None, now[0]) == []
        assert m.learned_from == 0  # the last run is under warmup_s old: no new run asked
        now[0] += timedelta(seconds=61)
        assert m.predict("a", None, now[0]) == []  # empty still, but the learner is woken
        eventually(lambda: m.learned_from == 12, 10, "the woken learner's run")
        assert [p["reader_id"] for p in m.predict("a", None, now[0])] == ["b"]
    finally:
        m.stop()
