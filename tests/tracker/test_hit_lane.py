"""The priority lane through a real ``pak tracker`` (the shared Mosquitto, a topic root of its
own; sightings, hits and watchlist changes published by the test):

* a hit is raised while the tracker is still draining a backlog of bulk sightings queued
  before it (ordering: the alert arrives before the backlog's last receipt), and the same
  sighting arriving later on the bulk lane makes no second alert event but is stored once;
* a hit for a tag the tracker's own watchlist does not hold raises nothing, a hit whose
  gateway id is not its topic's is refused, and the edge list the tracker publishes holds the
  keyed hashes of its watchlist, with a growing ``rev``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import orjson
import paho.mqtt.client as mqtt
import pytest

from pak.timefmt import utcnow
from pak.types import Sighting
from pak.wire.edge_watchlist import edge_hash, parse_edge_watchlist
from pak.wire.hits import encode_hit
from pak.wire.receipts import parse_receipts
from pak.wire.sightings import encode_sightings
from pak.wire.topics import Topics
from tests import services
from tests.support.procs import TrackerProcess, tracker
from tests.support.wait import eventually
from tests.support.wire_schema import validate
from tracker.storage import Reader, open_storage
from tracker.watchlist_cli import main as watchlist_main

pytestmark = [pytest.mark.slow, pytest.mark.mosquitto]

TAG = "E2003412AB77"
UNWATCHED = "E2003412AB78"
KEY = bytes(range(100, 132))
QUIET = ["--watchlist-reload-s", "3600", "--model-refresh-s", "3600"]
BACKLOG_MESSAGES, PER_MESSAGE = 40, 1000


class Listener:
    """One MQTT connection recording (arrival, topic, payload) of what it subscribed."""

    def __init__(self, url: str, *topics: str) -> None:
        self.got: list[tuple[float, str, bytes]] = []
        self._lock = threading.Lock()
        self._acked = threading.Semaphore(0)
        c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        c.on_message = self._on_message
        c.on_subscribe = lambda *a: self._acked.release()
        host, port = url.removeprefix("mqtt://").split(":")
        c.connect(host, int(port))
        c.loop_start()
        for t in topics:
            c.subscribe(t, qos=1)
        for _ in topics:
            assert self._acked.acquire(timeout=5), "SUBACK"
        self.client = c

    def _on_message(self, cl: object, ud: object, msg: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.got.append((time.monotonic(), msg.topic, bytes(msg.payload)))

    def on(self, topic_part: str) -> list[tuple[float, bytes]]:
        with self._lock:
            return [(t, p) for t, topic, p in self.got if topic_part in topic]

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


@contextmanager
def listening(url: str, *topics: str) -> Iterator[Listener]:
    li = Listener(url, *topics)
    try:
        yield li
    finally:
        li.close()


@contextmanager
def hit_tracker(tmp: Path, mqtt_url: str, root: str) -> Iterator[tuple[str, TrackerProcess]]:
    """A tracker with the edge key, watching TAG, its hit lane subscribed: (db, process)."""
    db, extra = prepare(tmp)
    with tracker(tmp, mqtt=mqtt_url, db=db, root=root, extra=extra,
                 client_id=services.unique("trk-")) as trk:
        trk.wait_log("hit_lane_subscribed", 10)
        yield db, trk


def prepare(tmp: Path) -> tuple[str, list[str]]:
    url = f"sqlite://{tmp / 'pak.db'}"
    with open_storage(url) as st:
        st.migrate()
        st.upsert_readers([Reader("R-hit", "Hit junction", 30.27, 120.15)])
        now = utcnow()
        st.watchlist_add(TAG, case_no="HIT-1", reporter="t", reported_at=now, at=now)
    key = tmp / "edge.key"
    key.write_bytes(KEY)
    return url, [*QUIET, "--edge-key", str(key)]


def sighting(gw: str, seq: int, tag: str, state: str = "open") -> Sighting:
    now = utcnow()
    return Sighting(gw, "sp-hit", seq, state, tag, "epc", "R-hit",  # type: ignore[arg-type]
                    now - timedelta(milliseconds=5), now, 1, antennas=(1,))


def receipted_closed(li: Listener) -> set[int]:
    seqs: set[int] = set()
    for _, p in li.on("/receipts"):
        for lo, hi in parse_receipts(p).closed:
            seqs.update(range(lo, hi + 1))
    return seqs


def hit_events(li: Listener) -> list[tuple[float, bytes]]:
    """The alert messages that report a hit: the enrichment worker's later update of the same
    alert (vehicle, passes, predictions; ``detail.enriched``) is the same event, revised."""
    return [(t, p) for t, p in li.on("/alerts/")
            if not orjson.loads(p).get("detail", {}).get("enriched")]


def test_a_hit_overtakes_a_backlog_and_is_one_alert_event(tmp_path: Path, mqtt_url: str,
                                                          topic_root: str) -> None:
    topics = Topics(topic_root)
    with hit_tracker(tmp_path, mqtt_url, topic_root) as (db, _), \
            listening(mqtt_url, topics.alerts("#"), topics.receipts("gw-bulk"),
                      topics.receipts("gw-hit")) as li, \
            listening(mqtt_url) as gw:
        # The backlog: queued at the broker before the hit (all PUBACKed), then the hit.
        now = utcnow()
        infos = []
        for m in range(BACKLOG_MESSAGES):
            batch = [sighting("gw-bulk", m * PER_MESSAGE + i + 1, f"E2{m:04X}{i:06X}", "closed")
                     for i in range(PER_MESSAGE)]
            infos.append(gw.client.publish(topics.sightings("gw-bulk"),
                                           encode_sightings("gw-bulk", "sp-hit", batch, now),
                                           qos=1))
        for info in infos:
            info.wait_for_publish(30)
        hit = sighting("gw-hit", 1, TAG)
        gw.client.publish(topics.hits("gw-hit"), encode_hit("gw-hit", "sp-hit", [hit], utcnow()),
                          qos=1).wait_for_publish(5)
        total = BACKLOG_MESSAGES * PER_MESSAGE
        eventually(lambda: len(receipted_closed(li)) == total, 120,
                   "the whole backlog stored and receipted")
        alerts = hit_events(li)
        assert len(alerts) == 1, alerts
        alert_at, payload = alerts[0]
        a = validate("alert", payload)
        assert a["alert_id"] == f"stolen_hit:{TAG}:HIT-1" and a["tag_id"] == TAG
        last_receipt = max(t for t, _ in li.on("/receipts"))
        assert alert_at < last_receipt, \
            f"the hit waited for the backlog ({alert_at - last_receipt:.3f} s after it)"
        # The sighting arrives on the bulk lane too (as a gateway sends it): stored once,
        # with the alert, and no second alert event.
        gw.client.publish(topics.sightings("gw-hit"),
                          encode_sightings("gw-hit", "sp-hit", [hit], utcnow()),
                          qos=1).wait_for_publish(5)
        # the receipt follows the alert publication on the tracker's connection
        eventually(lambda: any(parse_receipts(p).open for _, p in li.on("gw/gw-hit/")), 10,
                   "the bulk copy stored and receipted")
        assert len(hit_events(li)) == 1
        with open_storage(db) as st:
            eventually(lambda: st.alerts(kind="stolen_hit"), 10, "the alert stored")
            stored = st.alerts(kind="stolen_hit")
            assert [x.alert_id for x in stored] == [f"stolen_hit:{TAG}:HIT-1"]
            assert stored[0].detail["case"] == "HIT-1"
            assert st.count_sightings() == total + 1  # the hit itself was never stored


def test_hits_the_watchlist_does_not_hold_raise_nothing(tmp_path: Path, mqtt_url: str,
                                                         topic_root: str) -> None:
    topics = Topics(topic_root)
    with hit_tracker(tmp_path, mqtt_url, topic_root) as (db, trk), \
            listening(mqtt_url, topics.alerts("#"), topics.edge_watchlist) as li, \
            listening(mqtt_url) as gw:
        # The edge list: retained, the watchlist's keyed hashes.
        eventually(lambda: li.on("/edge/watchlist"), 10, "the edge list")
        first = parse_edge_watchlist(li.on("/edge/watchlist")[-1][1])
        assert first.hashes == {edge_hash(KEY, TAG)}
        # A hit for a tag the tracker does not watch; one whose payload names another
        # gateway than its topic; then a real one. One thread takes them in order.
        gw.client.publish(topics.hits("gw-a"), encode_hit("gw-a", "sp-hit",
                                                          [sighting("gw-a", 1, UNWATCHED)],
                                                          utcnow()), qos=1)
        gw.client.publish(topics.hits("gw-b"), encode_hit("gw-a", "sp-hit",
                                                          [sighting("gw-a", 2, TAG)],
                                                          utcnow()), qos=1)
        gw.client.publish(topics.hits("gw-a"), encode_hit("gw-a", "sp-hit",
                                                          [sighting("gw-a", 3, TAG)],
                                                          utcnow()), qos=1)
        eventually(lambda: li.on("/alerts/"), 10, "the watched tag's alert")
        got = [orjson.loads(p) for _, p in li.on("/alerts/")]
        assert [(a["alert_id"], a["sighting"]["seq"]) for a in got] == [
            (f"stolen_hit:{TAG}:HIT-1", 3)]
        trk.wait_log("hit_refused gateway_id=gw-b reason=gateway_mismatch", 5)
        with open_storage(db) as st:
            assert st.count_sightings() == 0  # hits are never stored
        # A watchlist change makes a newer snapshot at once.
        assert watchlist_main(["add", UNWATCHED, "--db", db, "--case", "HIT-2", "--mqtt",
                               mqtt_url, "--topic-root", topic_root]) == 0
        eventually(lambda: len(li.on("/edge/watchlist")) >= 2, 10, "a new edge list")
        second = parse_edge_watchlist(li.on("/edge/watchlist")[-1][1])
        assert second.rev > first.rev
        assert second.hashes == {edge_hash(KEY, TAG), edge_hash(KEY, UNWATCHED)}
