"""A broker without MQTT 5 (amqtt, the demo broker, speaks only 3.1.1): the tracker notices
the refusal, falls back to 3.1.1 with a persistent session and a plain subscription, and
still stores, acks and receipts."""

from __future__ import annotations

import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from ingest.pipeline import Ingest, IngestOptions
from pak.wire.receipts import parse_receipts
from pak.wire.topics import Topics
from tests import services
from tests.support.memstore import MemoryStorage
from tests.support.streams import expected_rows, stream
from tests.support.suback import Subacks
from tests.support.wait import eventually


@pytest.fixture
def mqtt311_broker(tmp_path: Path) -> Iterator[str]:
    exe = Path(sys.executable).parent / "amqtt"
    services.require(exe.exists() or shutil.which("amqtt") is not None, "amqtt not installed")
    port = services.free_port()
    conf = tmp_path / "amqtt.yaml"
    conf.write_text(f"listeners:\n  default:\n    type: tcp\n    bind: 127.0.0.1:{port}\n"
                    "plugins:\n  amqtt.plugins.authentication.AnonymousAuthPlugin:\n"
                    "    allow_anonymous: true\n")
    proc = subprocess.Popen([str(exe if exe.exists() else "amqtt"), "-c", str(conf)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        services.wait_port("127.0.0.1", port, timeout=20)
        yield f"mqtt://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(10)


def test_falls_back_to_mqtt_311_and_still_ingests(mqtt311_broker: str) -> None:
    mem = MemoryStorage()
    root = "pak/v1"
    ing = Ingest(mem.as_storage(), mqtt311_broker,
                 IngestOptions(topic_root=root, client_id="trk-311", batch_max_age=0.05,
                               connack_timeout=1.0, receipt_interval=0.1))
    subacks = Subacks(ing.consumer)
    ing.start()
    try:
        assert ing.consumer.wait_connected(15)
        assert ing.consumer.protocol == "3.1.1"
        assert ing.consumer.subscriptions()[0] == f"{root}/gw/+/sightings"  # no $share
        subacks.wait(10)
        receipts: list[bytes] = []
        got = threading.Event()
        subscribed = threading.Event()
        pub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="gw-311",
                          protocol=mqtt.MQTTv311)

        def on_receipt(c: mqtt.Client, u: object, m: mqtt.MQTTMessage) -> None:
            if m.topic != Topics(root).receipts("gw-f"):
                return  # amqtt also hands a new subscriber the retained centre presence
            receipts.append(bytes(m.payload))
            got.set()

        pub.on_message = on_receipt
        pub.on_subscribe = lambda *a: subscribed.set()
        port = int(mqtt311_broker.rsplit(":", 1)[1])
        pub.connect("127.0.0.1", port)
        pub.loop_start()
        pub.subscribe(Topics(root).receipts("gw-f"), qos=1)
        assert subscribed.wait(10), "no SUBACK for the receipts"
        messages = stream(["gw-f"], 10, seed=5, dup_rate=0.0)
        for m in messages:
            pub.publish(Topics(root).sightings("gw-f"), m.payload(), qos=1)
        eventually(lambda: mem.count_sightings() >= 10 and got.is_set(), 10,
                   "ten sightings stored and a receipt over MQTT 3.1.1")
        assert mem.rows.keys() == expected_rows(messages).keys()
        assert parse_receipts(receipts[0]).gateway_id == "gw-f"
        pub.loop_stop()
        pub.disconnect()
    finally:
        ing.stop(2.0)
