"""The ingest pipeline in-process on a real Mosquitto, over each storage: a stream with
duplicates, reordering, open/closed in either order and hostile payloads mixed in ends as
exactly the expected table, with every bad payload a dead letter with its reason; receipts
come only after the commit and name exactly what is stored."""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Iterator

import pytest

from ingest.pipeline import Ingest, IngestOptions
from pak.wire.topics import Topics
from tests import services
from tests.ingest.test_messages import HOSTILE
from tests.support.memstore import MemoryStorage
from tests.support.metrics import sample
from tests.support.publisher import RepublishingPublisher
from tests.support.stores import Store
from tests.support.streams import expected_rows, stream
from tests.support.suback import Subacks
from tests.support.wait import eventually

pytestmark = pytest.mark.mosquitto


def start_ingest(storage: object, url: str, root: str, **opts: object) -> Ingest:
    options = IngestOptions(topic_root=root, client_id=services.unique("trk-"),
                            group=services.unique("g"), batch_max_age=0.05,
                            receipt_interval=0.1,
                            **opts)  # type: ignore[arg-type]
    ing = Ingest(storage, url, options)  # type: ignore[arg-type]
    subacks = Subacks(ing.consumer)
    ing.start()
    assert ing.consumer.wait_connected(10), "tracker could not connect"
    subacks.wait(10)
    return ing


@pytest.fixture
def stopper() -> Iterator[list[Ingest]]:
    started: list[Ingest] = []
    yield started
    for ing in started:
        ing.stop(2.0)


def test_a_hostile_mixed_stream_is_stored_exactly_once(
        store: Store, mqtt_url: str, topic_root: str, stopper: list[Ingest]) -> None:
    ing = start_ingest(store.storage, mqtt_url, topic_root, batch_size=150)
    stopper.append(ing)
    topics = Topics(topic_root)
    messages = stream(["gw-a", "gw-b", "gw-c", "gw-d"], 400, seed=7)
    # hostile payloads (written for gw-7) on gw-7's topic, spread through the stream
    hostile = [(p, r) for _, p, r in HOSTILE]
    every = max(1, len(messages) // len(hostile))
    with RepublishingPublisher(mqtt_url, topic_root, republish_after=2.0) as pub:
        for i, m in enumerate(messages):
            pub.publish([m])
            if i % every == 0 and hostile:
                pub.publish_raw(topics.sightings("gw-7"), hostile.pop()[0])
        for p, _ in hostile:
            pub.publish_raw(topics.sightings("gw-7"), p)
        pub.wait_receipted(40)
        assert pub.bad_receipts == 0
    eventually(lambda: len(store.dead()) >= len(HOSTILE), 10, "all dead letters")
    assert store.rows() == expected_rows(messages)
    dead = store.dead()
    assert Counter(d.reason for d in dead) == Counter(r for _, _, r in HOSTILE)
    small = {p for _, p, _ in HOSTILE if len(p) < 65536}
    assert small <= {d.payload for d in dead}
    registry = ing.metrics.registry
    assert sample(registry, "pak_ingest_sightings_stored_total") >= len(expected_rows(messages))
    assert sum(sample(registry, "pak_ingest_dead_letters_total", reason=r)
               for r in {r for _, _, r in HOSTILE}) == len(HOSTILE)


def test_receipts_come_after_the_commit_and_name_what_is_stored(
        mqtt_url: str, topic_root: str, stopper: list[Ingest],
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    mem = MemoryStorage()
    mem.down.set()  # the database is away when the stream starts
    ing = start_ingest(mem.as_storage(), mqtt_url, topic_root, batch_size=10_000)
    stopper.append(ing)
    messages = stream(["gw-r"], 60, seed=3, dup_rate=0.2)
    with RepublishingPublisher(mqtt_url, topic_root, republish_after=30) as pub:
        pub.publish(messages)
        eventually(lambda: mem.attempts >= 3, 10, "write attempts")
        time.sleep(0.3)  # deliberately: a receipt sent too early would arrive in this window
        assert pub.receipts == [], "a receipt before anything was committed"
        assert mem.rows == {}
        assert ing.batcher.pending >= len(messages) - 5  # held, not acked
        mem.down.clear()
        pub.wait_receipted(15)  # no republication needed: one commit, receipts for all of it
        assert pub.republished == 0
        closed: set[int] = set()
        opened: set[int] = set()
        for r in pub.receipts:
            assert (r.gateway_id, r.spool_id) == ("gw-r", "sp-1")
            for a, b in r.closed:
                closed.update(range(a, b + 1))
            for a, b in r.open:
                opened.update(range(a, b + 1))
    rows = expected_rows(messages)
    assert mem.rows == rows
    assert closed == {s.seq for s in rows.values()}
    assert opened == set()  # every sighting's closed form was in the same batch as its open one
    events = [r.getMessage() for r in caplog.records if r.name == "pak.ingest.batcher"]
    assert events.count("db_unavailable") == 1 and events.count("db_available") == 1


def test_bad_messages_are_acked_too(mqtt_url: str, topic_root: str) -> None:
    """A refused message is stored as a dead letter and acked: the broker never sends it to
    the same session again."""
    mem = MemoryStorage()
    opts = IngestOptions(topic_root=topic_root, client_id=services.unique("trk-"),
                         group=services.unique("g"), batch_max_age=0.05, receipt_interval=0.1)
    ing = Ingest(mem.as_storage(), mqtt_url, opts)
    subacks = Subacks(ing.consumer)
    ing.start()
    assert ing.consumer.wait_connected(10)
    subacks.wait(10)
    with RepublishingPublisher(mqtt_url, topic_root) as pub:
        for _, payload, _ in HOSTILE[:6]:
            pub.publish_raw(Topics(topic_root).sightings("gw-7"), payload)
        eventually(lambda: len(mem.dead) == 6 and not ing.batcher.pending, 10, "dead letters")
    assert ing.stop(2.0)
    again = MemoryStorage()
    ing2 = Ingest(again.as_storage(), mqtt_url, opts)  # the same client id: the same session
    subacks = Subacks(ing2.consumer)
    ing2.start()
    try:
        assert ing2.consumer.wait_connected(10)
        subacks.wait(10)
        time.sleep(1.0)  # deliberately: a redelivery of the refused messages would come in it
        assert sample(ing2.metrics.registry, "pak_ingest_messages_received_total",
                      kind="sightings") == 0
        assert again.dead == []
    finally:
        ing2.stop(2.0)


@pytest.mark.parametrize(("receive_maximum", "fills"), [(20_000, True), (20, False)])
def test_receive_maximum_lets_batches_fill(private_broker: services.PrivateMosquitto,
                                           receive_maximum: int, fills: bool) -> None:
    """Acks wait for the commit, so the broker's window is the batch: with a large Receive
    Maximum a batch fills to batch_size and commits at once; with 20 it cannot fill and waits
    for its age."""
    root = services.unique("pak-f/")
    mem = MemoryStorage()
    ing = Ingest(mem.as_storage(), private_broker.url,
                 IngestOptions(topic_root=root, client_id="fill", batch_size=1000,
                               batch_max_age=30.0, receive_maximum=receive_maximum))
    subacks = Subacks(ing.consumer)
    ing.start()
    try:
        assert ing.consumer.wait_connected(10)
        subacks.wait(10)
        messages = stream(["gw-a", "gw-b"], 1500, seed=9, dup_rate=0.0)
        with RepublishingPublisher(private_broker.url, root, republish_after=600) as pub:
            pub.publish(messages)
            if fills:  # long before the 30 s age
                eventually(lambda: mem.count_sightings() >= 1000, 10, "a full batch")
            else:
                eventually(lambda: ing.batcher.pending == 20, 10, "the broker's window full")
                time.sleep(2.0)  # deliberately: a batch committed early would do so in it
        if fills:
            assert sample(ing.metrics.registry, "pak_ingest_batch_sightings_sum") >= 1000
        else:
            assert mem.count_sightings() == 0  # 20 messages hold ~200 sightings: no batch
            assert ing.batcher.pending == 20
    finally:
        ing.stop(2.0)
