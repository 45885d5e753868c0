"""deploy/mosquitto/: the shipped configuration runs, and its ACL lets a gateway publish only
under its own gw/{id}/ and read only its own receipts, while the tracker reads every gateway
and writes receipts and alerts. Checked on a private Mosquitto with real users."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

from tests import services

pytestmark = pytest.mark.mosquitto

DEPLOY = services.REPO / "deploy" / "mosquitto"
USERS = {"pak-tracker": "t-secret", "gw-1": "g1-secret", "gw-2": "g2-secret"}


@pytest.fixture
def secured_broker() -> Iterator[int]:
    services.require(shutil.which("mosquitto") is not None
                     and shutil.which("mosquitto_passwd") is not None,
                     "mosquitto and mosquitto_passwd are not installed")
    # Mosquitto started as root drops to its own user: its files must be reachable to that
    # user, which pytest's private tmp_path is not.
    with tempfile.TemporaryDirectory(prefix="pak-acl-") as d:
        os.chmod(d, 0o777)
        yield from _run_broker(Path(d))


def _run_broker(tmp_path: Path) -> Iterator[int]:
    pw = tmp_path / "passwd"
    for i, (user, secret) in enumerate(USERS.items()):
        subprocess.run(["mosquitto_passwd", "-b", *([] if i else ["-c"]), str(pw), user, secret],
                       check=True, capture_output=True)
    pw.chmod(0o644)
    port = services.free_port()
    lines = []
    for ln in (DEPLOY / "pak.conf").read_text().splitlines():
        key = ln.split(" ", 1)[0]
        ln = {"listener": f"listener {port} 127.0.0.1",
              "password_file": f"password_file {pw}",
              "acl_file": f"acl_file {DEPLOY / 'acl'}",
              "persistence_location": f"persistence_location {tmp_path}/",
              "log_dest": f"log_dest file {tmp_path}/mosquitto.log"}.get(key, ln)
        lines.append(ln)
    conf = tmp_path / "pak.conf"
    conf.write_text("\n".join(lines) + "\n")
    proc = subprocess.Popen(["mosquitto", "-c", str(conf)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        services.wait_port("127.0.0.1", port)
        yield port
    finally:
        proc.terminate()
        proc.wait(10)


class Client:
    def __init__(self, port: int, user: str | None, password: str | None = None) -> None:
        self.got: list[tuple[str, bytes]] = []
        self.granted: list[ReasonCode] = []
        self.connack: ReasonCode | None = None
        self._ready = threading.Event()
        self._subacked = threading.Event()
        c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"{user}-{time.monotonic_ns()}",
                        protocol=mqtt.MQTTv5)
        if user:
            c.username_pw_set(user, password or USERS[user])
        c.on_connect = self._on_connect
        c.on_message = lambda cl, u, m: self.got.append((m.topic, bytes(m.payload)))
        c.on_subscribe = self._on_subscribe
        c.connect("127.0.0.1", port)
        c.loop_start()
        self.c = c
        self._ready.wait(5)

    def _on_connect(self, cl: object, u: object, f: object, rc: ReasonCode, p: object) -> None:
        self.connack = rc
        self._ready.set()

    def _on_subscribe(self, cl: object, u: object, mid: int, rcs: list[ReasonCode],
                      p: object) -> None:
        self.granted = rcs
        self._subacked.set()

    def subscribe(self, *topics: str) -> list[ReasonCode]:
        self._subacked.clear()
        self.c.subscribe([(t, 1) for t in topics])
        assert self._subacked.wait(5)
        return self.granted

    def publish(self, topic: str, payload: bytes = b"x") -> None:
        self.c.publish(topic, payload, qos=1).wait_for_publish(5)

    def close(self) -> None:
        self.c.disconnect()
        self.c.loop_stop()


def test_gateways_touch_only_their_own_topics(secured_broker: int) -> None:
    port = secured_broker
    anon = Client(port, None)
    assert anon.connack is not None and anon.connack.is_failure  # no anonymous clients
    anon.close()
    tracker, gw1, gw2 = Client(port, "pak-tracker"), Client(port, "gw-1"), Client(port, "gw-2")
    try:
        granted = tracker.subscribe("$share/pak-tracker/pak/v1/gw/+/sightings",
                                    "pak/v1/gw/+/state", "pak/v1/gw/+/health",
                                    "pak/v1/watchlist")
        assert [g.is_failure for g in granted] == [False] * 4
        assert [g.is_failure for g in gw1.subscribe("pak/v1/gw/gw-1/receipts")] == [False]
        # someone else's receipts, everybody's sightings: Mosquitto grants the subscription
        # and checks read access per message, so gw-2 must simply never get any of them
        gw2.subscribe("pak/v1/gw/gw-1/receipts", "pak/v1/gw/+/sightings")

        gw1.publish("pak/v1/gw/gw-1/sightings", b"mine")
        gw1.publish("pak/v1/gw/gw-2/sightings", b"forged")  # accepted, never delivered
        gw1.publish("pak/v1/gw/gw-1/state", b"state")
        gw1.publish("pak/v1/gw/gw-1/receipts", b"self-receipt")  # gateways cannot receipt
        tracker.publish("pak/v1/gw/gw-1/receipts", b"receipt")
        tracker.publish("pak/v1/gw/gw-2/sightings", b"tracker-forged")
        time.sleep(0.5)
        assert sorted(tracker.got) == [("pak/v1/gw/gw-1/sightings", b"mine"),
                                       ("pak/v1/gw/gw-1/state", b"state")]
        assert gw1.got == [("pak/v1/gw/gw-1/receipts", b"receipt")]
        assert gw2.got == []
    finally:
        for c in (tracker, gw1, gw2):
            c.close()
