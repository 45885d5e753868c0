"""Alerts through real processes: ``pak tracker`` on Mosquitto (the shared broker, a topic root
of its own), sightings published by a test gateway, alerts taken by an MQTT subscriber.

* a watched tag's sighting delivered twice (and its closed form after) makes exactly one
  alert id, on the alert topic and in storage;
* a watchlist change made with ``pak watchlist --mqtt`` reaches a second tracker instance that
  could not have read it from its own storage (its own database, reload period of an hour).
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
from pak.wire.sightings import encode_sightings
from pak.wire.topics import Topics
from tests import services
from tests.support.procs import tracker
from tests.support.wait import eventually
from tests.support.wire_schema import validate
from tracker.storage import Reader, open_storage
from tracker.watchlist_cli import main as watchlist_main

pytestmark = [pytest.mark.slow, pytest.mark.mosquitto]

TAG = "E2003412AB99"
QUIET = ["--watchlist-reload-s", "3600", "--model-refresh-s", "3600"]


@contextmanager
def mqtt_client(url: str, subscribe: str | None = None) -> Iterator[tuple[mqtt.Client,
                                                                            list[bytes]]]:
    got: list[bytes] = []
    ready = threading.Event()
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    c.on_message = lambda cl, ud, msg: got.append(bytes(msg.payload))
    c.on_subscribe = lambda *a: ready.set()
    c.on_connect = lambda *a: ready.set() if subscribe is None else None
    host, port = url.removeprefix("mqtt://").split(":")
    c.connect(host, int(port))
    if subscribe is not None:
        c.subscribe(subscribe, qos=1)
    c.loop_start()
    try:
        assert ready.wait(5)
        yield c, got
    finally:
        c.loop_stop()
        c.disconnect()


def prepare_db(path: Path, *, watched: bool) -> str:
    url = f"sqlite://{path}"
    with open_storage(url) as st:
        st.migrate()
        st.upsert_readers([Reader("R-e2e", "Test junction", 30.27, 120.15)])
        if watched:
            now = utcnow()
            st.watchlist_add(TAG, case_no="E2E-1", reporter="t", reported_at=now, at=now)
    return url


def sighting_message(seq: int, state: str, gw: str = "gw-e2e") -> bytes:
    now = utcnow()
    s = Sighting(gw, "sp-e2e", seq, state, TAG, "active", "R-e2e",  # type: ignore[arg-type]
                 now - timedelta(seconds=2), now, 3, antennas=(1, 3))
    return encode_sightings(gw, "sp-e2e", [s], now)


def test_one_alert_id_even_when_delivered_twice(tmp_path: Path, mqtt_url: str,
                                                topic_root: str) -> None:
    db = prepare_db(tmp_path / "pak.db", watched=True)
    topics = Topics(topic_root)
    with tracker(tmp_path, mqtt=mqtt_url, db=db, root=topic_root,
                 client_id=services.unique("trk-"), extra=QUIET), \
            mqtt_client(mqtt_url, topics.alerts("#")) as (_, alerts), \
            mqtt_client(mqtt_url) as (gw, _):
        payload = sighting_message(41, "open")
        for _ in range(2):  # the same message twice, as a broker redelivers it
            gw.publish(topics.sightings("gw-e2e"), payload, qos=1).wait_for_publish(5)
        gw.publish(topics.sightings("gw-e2e"), sighting_message(41, "closed"),
                   qos=1).wait_for_publish(5)
        with open_storage(db) as st:
            eventually(lambda: st.alerts() and st.count_sightings() == 1
                       and st.get_sighting(st.sightings()[0].id).state == "closed",  # type: ignore[union-attr]
                       10, "the alert and the closed sighting stored")
            eventually(lambda: len(alerts) >= 1, 10, "the alert on MQTT")
            # Deliberately let time pass: a second alert for the redelivery would arrive in it.
            time.sleep(0.5)
            stored = st.alerts()
        ids = {validate("alert", p)["alert_id"] for p in alerts}
        assert ids == {"stolen_hit:E2003412AB99:E2E-1"}
        assert [a.alert_id for a in stored] == ["stolen_hit:E2003412AB99:E2E-1"]
        assert len(stored[0].sightings) == 1
        first = orjson.loads(alerts[0])
        assert first["detail"]["case"] == "E2E-1"
        assert first["detail"]["reader"]["name"] == "Test junction"


def test_watchlist_change_reaches_another_instance(tmp_path: Path, mqtt_url: str,
                                                   topic_root: str) -> None:
    db_a = prepare_db(tmp_path / "a.db", watched=False)
    db_b = prepare_db(tmp_path / "b.db", watched=False)
    topics = Topics(topic_root)
    group = services.unique("g")
    with tracker(tmp_path, mqtt=mqtt_url, db=db_a, root=topic_root, group=group,
                 client_id=services.unique("trk-a-"), extra=QUIET) as a, \
            tracker(tmp_path, mqtt=mqtt_url, db=db_b, root=topic_root, group=group,
                    client_id=services.unique("trk-b-"), extra=QUIET) as b, \
            mqtt_client(mqtt_url) as (gw, _):
        # the change is written to A's storage only, and announced
        assert watchlist_main(["add", TAG, "--db", db_a, "--case", "E2E-2", "--mqtt",
                               mqtt_url, "--topic-root", topic_root]) == 0
        for t in (a, b):
            t.wait_log(f"watchlist_change op=add tag_id={TAG}", 10)
        # the shared subscription deals the sightings out: both instances raise alerts
        for seq in range(1, 21):
            gw.publish(topics.sightings("gw-e2e"), sighting_message(seq, "closed"), qos=1)
        for t in (a, b):
            t.wait_log("alert kind=stolen_hit", 10)


def test_gateway_will_becomes_gateway_offline(tmp_path: Path, mqtt_url: str,
                                              topic_root: str) -> None:
    """The will a gateway leaves with the broker reaches the tracker's storage through ingest,
    and the engine's timer turns it into one gateway_offline alert after the grace period."""
    from pak.wire.state import encode_state

    db = prepare_db(tmp_path / "pak.db", watched=False)
    topics = Topics(topic_root)
    with tracker(tmp_path, mqtt=mqtt_url, db=db, root=topic_root,
                 client_id=services.unique("trk-"),
                 extra=[*QUIET, "--offline-grace-s", "0.5", "--gateway-check-s", "0.2"]), \
            mqtt_client(mqtt_url, topics.alerts("gateway_offline")) as (_, alerts), \
            mqtt_client(mqtt_url) as (gw, _):
        went = utcnow() - timedelta(seconds=1)
        gw.publish(topics.state("gw-gone"), encode_state("offline", went, gateway_id="gw-gone"),
                   qos=1, retain=True).wait_for_publish(5)
        try:
            eventually(lambda: len(alerts) >= 1, 10, "the gateway_offline alert")
            # Deliberately let time pass: the timer checks five more times meanwhile, and a
            # second alert would arrive in it.
            time.sleep(1.0)
        finally:  # leave no retained message behind on the shared broker
            gw.publish(topics.state("gw-gone"), b"", qos=1, retain=True).wait_for_publish(5)
    objs = [validate("alert", p) for p in alerts]
    assert {o["alert_id"] for o in objs} == {o["alert_id"] for o in objs[:1]}
    assert objs[0]["gateway_id"] == "gw-gone" and objs[0]["detail"]["cause"] == "will"
