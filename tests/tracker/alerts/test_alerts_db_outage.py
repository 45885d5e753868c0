"""Stolen alerts through a database outage, real processes: ``pak tracker`` on a private
PostgreSQL (tests/services.py) and the shared Mosquitto. The database is stopped for ~12 s
while a test gateway keeps publishing sightings of a watched tag:

* every hit's alert reaches an MQTT subscriber at once: p99 from the sighting's publish to its
  alert <= 50 ms (nothing on the receive thread waits for storage);
* after the database returns, everything is stored: the sightings rows equal what was sent,
  the entry's alert is one row holding every hit, and the enriched update (vehicle from
  storage) is published after the database returned and stored.
"""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson
import paho.mqtt.client as mqtt
import pytest

from pak.timefmt import utcnow
from pak.types import Sighting, SightingId
from pak.wire.sightings import encode_sightings
from pak.wire.topics import Topics
from tests import services
from tests.support.procs import tracker
from tests.support.wait import eventually
from tracker.storage import Reader, Vehicle, open_storage

pytestmark = [pytest.mark.slow, pytest.mark.mosquitto, pytest.mark.timescale]

TAG = "E2003412AB77"
CASE = "OUT-1"
AID = f"stolen_hit:{TAG}:{CASE}"
GW, SPOOL = "gw-out", "sp-out"
OUTAGE_S = 12.0
EVERY_S = 0.1


class AlertWatch:
    """An MQTT subscriber to the alerts, noting when each (alert, sighting seq) arrived."""

    def __init__(self, url: str, topic: str) -> None:
        self.got: list[tuple[float, dict[str, Any]]] = []
        self.lock = threading.Lock()
        self.ready = threading.Event()
        self.c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        self.c.on_message = self._on_message
        self.c.on_subscribe = lambda *a: self.ready.set()
        host, port = url.removeprefix("mqtt://").split(":")
        self.c.connect(host, int(port))
        self.c.subscribe(topic, qos=1)
        self.c.loop_start()
        assert self.ready.wait(5)

    def _on_message(self, _c: Any, _u: Any, msg: mqtt.MQTTMessage) -> None:
        t = time.monotonic()
        with self.lock:
            self.got.append((t, orjson.loads(msg.payload)))

    def arrived(self, seq: int) -> float | None:
        with self.lock:
            for t, o in self.got:
                if o["sighting"]["seq"] == seq and not o["detail"]["enriched"]:
                    return t
        return None

    def items(self) -> list[tuple[float, dict[str, Any]]]:
        with self.lock:
            return list(self.got)

    def close(self) -> None:
        self.c.loop_stop()
        self.c.disconnect()


def hit(seq: int) -> bytes:
    now = utcnow()
    s = Sighting(GW, SPOOL, seq, "closed", TAG, "active", "R-out",  # type: ignore[arg-type]
                 now - timedelta(seconds=1), now, 2, antennas=(1,))
    return encode_sightings(GW, SPOOL, [s], now)


def test_stolen_alerts_arrive_at_once_through_a_database_outage(
        tmp_path: Path, mqtt_url: str, topic_root: str,
        private_pg: services.PrivatePostgres) -> None:
    with open_storage(private_pg.url) as st:
        st.migrate()
        st.upsert_readers([Reader("R-out", "Outage junction", 30.27, 120.15)])
        st.upsert_vehicles([Vehicle("V-out", "ZJ-OUT77", kind="e-bike", colour="blue")])
        st.assign_tag(TAG, "V-out", at=utcnow() - timedelta(days=1))
        now = utcnow()
        st.watchlist_add(TAG, case_no=CASE, reporter="t", reported_at=now, at=now)
    topics = Topics(topic_root)
    watch = AlertWatch(mqtt_url, topics.alerts("#"))
    gw = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    host, port = mqtt_url.removeprefix("mqtt://").split(":")
    gw.connect(host, int(port))
    gw.loop_start()
    sent: list[int] = []
    published_at: dict[int, float] = {}

    def send(seq: int) -> None:
        published_at[seq] = time.monotonic()
        gw.publish(topics.sightings(GW), hit(seq), qos=1)
        sent.append(seq)

    try:
        with tracker(tmp_path, mqtt=mqtt_url, db=private_pg.url, root=topic_root,
                     client_id=services.unique("trk-out-"),
                     extra=["--watchlist-reload-s", "3600", "--model-refresh-s", "3600",
                            "--db-timeout-s", "0.5"]) as t:
            send(1)  # with the database up: raised, then enriched
            eventually(lambda: any(o["detail"]["enriched"] for _, o in watch.items()), 15,
                       "the first alert enriched")
            private_pg.stop("fast")
            down_at = time.monotonic()
            seq = 2
            while time.monotonic() - down_at < OUTAGE_S:
                send(seq)
                seq += 1
                time.sleep(EVERY_S)  # the publishing rate of the test gateway
            eventually(lambda: all(watch.arrived(s) is not None for s in sent), 5,
                       "every hit's alert during the outage")
            during = sorted(watch.arrived(s) - published_at[s]  # type: ignore[operator]
                            for s in sent[1:])
            p99 = during[min(len(during) - 1, int(len(during) * 0.99))]
            print(f"outage: {len(during)} hits, p50 {during[len(during) // 2] * 1000:.1f} ms, "
                  f"p99 {p99 * 1000:.1f} ms, max {during[-1] * 1000:.1f} ms")
            assert p99 <= 0.050, f"p99 {p99 * 1000:.1f} ms during the outage"
            private_pg.start()
            back_at = time.monotonic()
            with open_storage(private_pg.url) as st:
                eventually(lambda: st.count_sightings() == len(sent), 30,
                           "every sighting stored after the outage")
                assert {s.id for s in st.sightings()} == {SightingId(GW, SPOOL, q)
                                                          for q in sent}
                eventually(lambda: st.alerts() and st.alerts()[0].detail.get("enriched")
                           and st.alerts()[0].sightings[-1].seq == sent[-1], 30,
                           "the latest hit's enrichment stored",
                           detail=lambda: f"{[x.seq for x in st.alerts()[0].sightings]}")
                (stored,) = st.alerts()
                assert stored.alert_id == AID and stored.status == "new"
                assert sorted(x.seq for x in stored.sightings) == sent
                assert stored.detail["vehicle"]["plate"] == "ZJ-OUT77"
            late = [(ts, o) for ts, o in watch.items()
                    if o["detail"]["enriched"] and o["sighting"]["seq"] == sent[-1]]
            assert late and late[0][0] > back_at and late[0][1]["status"] is None
            assert {o["alert_id"] for _, o in watch.items()} == {AID}
            assert "Traceback" not in t.log_text()
    finally:
        gw.loop_stop()
        gw.disconnect()
        watch.close()
