"""The batcher alone, over the in-memory storage: batches close by size and by age, are
deduplicated, retried whole while the database is unavailable (never handed on for acking
before they commit), and a message the database refuses becomes a dead letter without
holding back the messages around it."""

from __future__ import annotations

import logging
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest

from ingest.batcher import Batch, Batcher, Item
from ingest.metrics import IngestMetrics
from pak.types import Sighting
from tests.support.memstore import MemoryStorage
from tests.support.metrics import sample
from tests.support.wait import eventually

T0 = datetime(2026, 11, 28, 6, 0, tzinfo=UTC)


def mk(seq: int, state: str = "closed", reads: int = 1, tag: str = "E2001234",
       gw: str = "gw-1", last: float = 0.0, antennas: tuple[int, ...] = (1,)) -> Sighting:
    return Sighting(gw, "sp-1", seq, state, tag, "epc", "rd-1", T0,  # type: ignore[arg-type]
                    T0 + timedelta(seconds=last), reads, antenna=antennas[0],
                    antennas=antennas)


def item(*sightings: Sighting, ack: object = None) -> Item:
    return Item("pak/v1/gw/gw-1/sightings", b"raw", T0, ack, list(sightings))


class Recorder:
    def __init__(self) -> None:
        self.batches: list[Batch] = []
        self.event = threading.Event()

    def __call__(self, batch: Batch) -> None:
        self.batches.append(batch)
        self.event.set()

    def acks(self) -> list[object]:
        return [it.ack for b in self.batches for it in b.items]

    def wait(self, n_acks: int, timeout: float = 5.0) -> None:
        eventually(lambda: len(self.acks()) >= n_acks, timeout, f"{n_acks} acks handed on",
                   detail=lambda: f"only {len(self.acks())} handed on")


def make(store: MemoryStorage, rec: Recorder, *, batch_size: int, max_age: float,
         metrics: IngestMetrics | None = None) -> Batcher:
    b = Batcher(store.as_storage(), on_committed=rec, retry_initial=0.01, retry_max=0.05,
                batch_size=batch_size, max_age=max_age, metrics=metrics)
    b.start()
    return b


def test_a_full_batch_commits_without_waiting_for_its_age() -> None:
    store, rec = MemoryStorage(), Recorder()
    b = make(store, rec, batch_size=10, max_age=60.0)
    t0 = time.monotonic()
    for i in range(10):
        b.add(item(mk(i), ack=i))
    rec.wait(10)
    assert time.monotonic() - t0 < 2.0
    assert [len(x.sightings) for x in rec.batches] == [10]
    assert b.stop(1.0)


def test_an_old_batch_commits_before_it_is_full() -> None:
    store, rec = MemoryStorage(), Recorder()
    b = make(store, rec, batch_size=1000, max_age=0.2)
    t0 = time.monotonic()
    b.add(item(mk(1), ack="a"))
    b.add(item(mk(2), ack="b"))
    rec.wait(2)
    waited = time.monotonic() - t0
    assert 0.15 <= waited < 2.0
    assert rec.acks() == ["a", "b"] and len(rec.batches) == 1
    assert b.stop(1.0)


def test_batches_are_deduplicated_and_merged_before_writing() -> None:
    store, rec = MemoryStorage(), Recorder()
    b = make(store, rec, batch_size=100, max_age=0.05)
    # closed first, its open form after it, and the same closed message again
    b.add(item(mk(1, "closed", reads=7, last=4.0, antennas=(2, 1)), mk(2, "open"), ack=1))
    b.add(item(mk(1, "open", reads=1, antennas=(2,)), ack=2))
    b.add(item(mk(1, "closed", reads=7, last=4.0, antennas=(2, 1)), mk(2, "closed", reads=3),
               ack=3))
    rec.wait(3)
    assert b.stop(1.0)
    (batch,) = rec.batches
    assert batch.received == 5 and len(batch.sightings) == 2
    one, two = store.rows[mk(1).id], store.rows[mk(2).id]
    assert (one.state, one.reads, one.antennas, one.last_seen) == (
        "closed", 7, (2, 1), T0 + timedelta(seconds=4))
    assert (two.state, two.reads) == ("closed", 3)


def test_database_down_holds_the_batch_and_retries_it_whole(
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="pak.ingest.batcher")
    store, rec = MemoryStorage(), Recorder()
    metrics = IngestMetrics()
    store.down.set()
    b = make(store, rec, batch_size=3, max_age=0.02, metrics=metrics)
    for i in range(7):
        b.add(item(mk(i), ack=i))
    eventually(lambda: store.attempts >= 4, 5, "four write attempts")  # retried, with backoff
    assert rec.acks() == [] and store.rows == {}
    assert b.pending == 7
    store.down.clear()
    rec.wait(7)
    assert rec.acks() == list(range(7))  # handed on in the order received
    assert len(store.rows) == 7
    events = [r.getMessage() for r in caplog.records]
    assert events.count("db_unavailable") == 1 and events.count("db_available") == 1
    assert sample(metrics.registry, "pak_ingest_db_retries_total") >= 3
    assert b.stop(1.0)


def test_a_refused_message_becomes_a_dead_letter_and_the_rest_is_stored() -> None:
    store, rec = MemoryStorage(), Recorder()
    store.refuse = lambda s: s.tag_id == "E2BAD0"
    metrics = IngestMetrics()
    b = make(store, rec, batch_size=1000, max_age=0.05, metrics=metrics)
    for i in range(9):
        b.add(item(mk(i, tag="E2BAD0" if i == 4 else "E2001234"), ack=i))
    rec.wait(9)
    assert b.stop(1.0)
    assert rec.acks() == list(range(9))
    assert sorted(s.seq for s in store.rows.values()) == [0, 1, 2, 3, 5, 6, 7, 8]
    (dead,) = store.dead
    assert dead.reason == "storage_rejected" and dead.payload == b"raw"
    assert "refused" in dead.detail
    assert sample(metrics.registry, "pak_ingest_dead_letters_total",
                  reason="storage_rejected") == 1


def test_stop_commits_what_is_pending() -> None:
    store, rec = MemoryStorage(), Recorder()
    b = make(store, rec, batch_size=1000, max_age=60.0)
    for i in range(5):
        b.add(item(mk(i), ack=i))
    assert b.stop(2.0)
    assert rec.acks() == list(range(5)) and len(store.rows) == 5


def test_stop_with_the_database_down_gives_up_without_handing_anything_on() -> None:
    store, rec = MemoryStorage(), Recorder()
    store.down.set()
    b = make(store, rec, batch_size=1000, max_age=60.0)
    b.add(item(mk(1), ack=1))
    t0 = time.monotonic()
    assert b.stop(0.3) is False
    assert time.monotonic() - t0 < 3.0
    assert rec.acks() == [] and store.rows == {}


def test_state_and_health_are_recorded_with_the_batch() -> None:
    from ingest.validate import GatewayStatus

    store, rec = MemoryStorage(), Recorder()
    b = make(store, rec, batch_size=1000, max_age=0.05)
    b.add(Item("t", b"", T0, 1, gateway=GatewayStatus("gw-9", T0, state="online")))
    b.add(Item("t", b"", T0, 2, gateway=GatewayStatus("gw-9", T0, health={"v": 1})))
    b.add(Item("t", b"", T0, 3, gateway=GatewayStatus("gw-9", T0 + timedelta(seconds=1),
                                                      state="offline")))
    rec.wait(3)
    assert b.stop(1.0)
    assert store.gateways["gw-9"]["state"] == "offline"
    assert store.gateways["gw-9"]["health"] == {"v": 1}
