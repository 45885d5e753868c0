"""`pak sim city` traffic through the shared Mosquitto: every sighting arrives, valid on the
wire, open before closed with one first_seen, stamped with current times."""

from __future__ import annotations

import threading
from collections import defaultdict
from datetime import timedelta

import paho.mqtt.client as mqtt

from firmware_sim.city import City
from firmware_sim.city_publisher import CityPublisher
from pak.timefmt import utcnow
from pak.wire.sightings import parse_sightings
from tests.support.wait import eventually
from tests.support.wire_schema import validate


def test_city_traffic_arrives_whole(mqtt_url: str, topic_root: str) -> None:
    # the callback only keeps the bytes: a subscriber that parses while 2,000 messages/s
    # arrive falls behind, and the broker drops what overflows its queue for a slow client
    got: list[bytes] = []
    subscribed = threading.Event()
    sub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    sub.on_message = lambda _c, _u, m: got.append(m.payload)
    sub.on_subscribe = lambda *_a: subscribed.set()
    sub.connect("127.0.0.1", 1883)
    sub.loop_start()
    sub.subscribe(f"{topic_root}/gw/+/sightings", qos=1)
    assert subscribed.wait(10), "no SUBACK"
    started = utcnow()
    pub = CityPublisher(City(vehicles=1500, seed=4), mqtt_url, topic_root=topic_root, rate=2000)
    stats = pub.run(threading.Event(), duration_s=2.0)
    eventually(lambda: len(got) >= stats.messages, 20, f"all {stats.messages} messages",
               step=0.05, detail=lambda: f"{len(got)} arrived")
    sub.loop_stop()
    sub.disconnect()
    assert stats.sightings > 1000
    by_id: defaultdict[tuple[str, int], list[str]] = defaultdict(list)
    first: dict[tuple[str, int], object] = {}
    for p in got:
        validate("sightings", p)
        msg = parse_sightings(p, now=utcnow())
        for s in msg.sightings:
            key = (s.gateway_id, s.seq)
            by_id[key].append(s.state)
            assert first.setdefault(key, s.first_seen) == s.first_seen
            assert started - timedelta(seconds=1) <= s.first_seen <= utcnow()
    assert all(states[0] == "open" for states in by_id.values())
    assert sum(len(v) for v in by_id.values()) == stats.sightings
