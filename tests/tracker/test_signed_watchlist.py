"""A tracker given the centre's key (``--signing-key``) applies only watchlist changes that
key signed for ``{root}/watchlist``, each newer than the tag's last: a forged or replayed
``remove`` never suppresses a real stolen hit, and the alert it raises goes out signed.
Real processes: ``pak db migrate``, ``pak watchlist``, ``pak tracker`` and Mosquitto."""

from __future__ import annotations

import subprocess
import threading
import urllib.parse
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from pak.keys import Signer, init_keys, load_signer, load_verifier
from pak.types import Sighting
from pak.wire.envelope import accept_control, control
from pak.wire.sightings import encode_sightings
from pak.wire.topics import Topics
from pak.wire.watchlist import encode_watchlist_change
from tests import services
from tests.support.procs import PAK, tracker
from tests.support.wait import eventually

pytestmark = [pytest.mark.mosquitto]

STOLEN = "E2003412AB01CD02EF030001"
STOLEN2 = "E2003412AB01CD02EF030002"


class Bus:
    """The test's own MQTT client: publishes, and records every alert message."""

    def __init__(self, url: str, topics: Topics) -> None:
        u = urllib.parse.urlsplit(url)
        self.topics = topics
        self.alerts: list[tuple[str, bytes]] = []
        self.subscribed = threading.Event()
        c = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        c.on_connect = lambda cl, *a: cl.subscribe(f"{topics.root}/alerts/#", qos=1)
        c.on_subscribe = lambda *a: self.subscribed.set()
        c.on_message = lambda cl, u_, m: self.alerts.append((m.topic, bytes(m.payload)))
        c.connect(u.hostname or "127.0.0.1", u.port or 1883, 30)
        c.loop_start()
        self.client = c
        assert self.subscribed.wait(10), "no SUBACK for the alerts"

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def publish(self, topic: str, payload: bytes) -> None:
        self.client.publish(topic, payload, qos=1).wait_for_publish(10)


def run(*args: str) -> str:
    out = subprocess.run([*PAK, *args], capture_output=True, text=True, cwd=services.REPO,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    return out.stdout


def sighting(tag: str, seq: int) -> bytes:
    now = datetime.now(UTC).replace(microsecond=0)
    s = Sighting("gw-w", "sp-w", seq, "open", tag, "epc", "rd-w", now, now, 1, tag_type=None,
                 antenna=1, antennas=(1,), rssi_max_dbm=-50.0, rssi_max_raw=100, flags=())
    return encode_sightings("gw-w", "sp-w", [s], now)


def change(op: str, tag: str) -> bytes:
    return encode_watchlist_change(op, tag, datetime.now(UTC), case="HZ-1",
                                   reason="recovered" if op == "remove" else None)


def test_forged_and_replayed_removals_do_not_suppress_a_stolen_hit(
        tmp_path: Path, mqtt_url: str, topic_root: str) -> None:
    key, pub, _ = init_keys(tmp_path / "keys")
    centre = load_signer(key, "watchlist")
    thief = Signer.generate("watchlist")
    verifier = load_verifier([pub])
    topics = Topics(topic_root)
    db = f"sqlite:///{tmp_path / 'pak.sqlite3'}"
    run("db", "migrate", "--db", db)
    run("watchlist", "add", STOLEN, "--db", db, "--case", "HZ-1")
    bus = Bus(mqtt_url, topics)
    try:
        with tracker(tmp_path, mqtt=mqtt_url, db=db, root=topic_root, client_id="trk-signed",
                     extra=["--signing-key", str(key)]) as t:
            def dead(reason: str) -> float:
                return t.metric(f'pak_ingest_dead_letters_total{{reason="{reason}"}}')

            def refused(reason: str, payload: bytes, topic: str = topics.watchlist) -> None:
                # published again until refused: the first may beat the tracker's SUBACK
                eventually(lambda: dead(reason) >= 1 or bus.publish(topic, payload), 15,
                           f"a watchlist change refused as {reason}", step=0.3)

            refused("unsigned", change("remove", STOLEN))
            refused("unknown_key", control(change("remove", STOLEN), thief, topics.watchlist))
            refused("wrong_topic", control(change("remove", STOLEN), centre,
                                           Topics("elsewhere/v1").watchlist))
            old_remove = control(change("remove", STOLEN), centre, topics.watchlist)
            bus.publish(topics.watchlist, control(change("add", STOLEN), centre,
                                                  topics.watchlist))
            t.wait_log("watchlist_change", 10)
            refused("stale_revision", old_remove)  # a genuine removal, replayed after a newer add

            # the signed CLI path: applied by the tracker at once
            run("watchlist", "add", STOLEN2, "--db", db, "--case", "HZ-2", "--mqtt", mqtt_url,
                "--topic-root", topic_root, "--signing-key", str(key))
            t.wait_log(f"tag_id={STOLEN2}", 10)

            bus.publish(topics.sightings("gw-w"), sighting(STOLEN, 1))

            def hit() -> dict[str, Any] | None:
                for topic, payload in list(bus.alerts):
                    a = orjson.loads(accept_control(payload, topic, verifier))
                    if a["kind"] == "stolen_hit" and a["tag_id"] == STOLEN:
                        return a
                return None

            eventually(lambda: hit() is not None, 15, "a signed stolen_hit alert",
                       detail=lambda: t.log_text()[-2000:])
    finally:
        bus.close()
