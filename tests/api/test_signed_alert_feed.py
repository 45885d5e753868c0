"""`pak api --signing-key` as a real process: forged alerts (unsigned, signed by another key,
signed for another topic) never reach the live feed; the centre's signed alert does, as the
alert message itself (the envelope removed)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import orjson
import paho.mqtt.client as mqtt

from pak.keys import Signer, init_keys, load_signer
from pak.wire.envelope import control
from tests import services
from tests.api.accounts import api_key
from tests.support.wait import eventually
from tracker.storage import open_storage


def alert(n: int) -> dict[str, object]:
    return {"v": 1, "alert_id": f"stolen_hit:AABBCCDD:HZ-{n}", "kind": "stolen_hit", "rev": n,
            "at": "2026-11-28T06:00:00.000Z", "status": "new", "tag_id": "AABBCCDD",
            "reader_id": "rd-1", "gateway_id": "gw-1", "sighting": None, "detail": {}}


def test_forged_alerts_never_reach_the_live_feed(tmp_path: Path, mqtt_url: str,
                                                 topic_root: str) -> None:
    key, _, _ = init_keys(tmp_path / "keys")
    centre, thief = load_signer(key, "tracker"), Signer.generate("tracker")
    db = f"sqlite:///{tmp_path / 'live.sqlite3'}"
    with open_storage(db) as storage:
        storage.migrate()
        auth = {"Authorization": "Bearer " + api_key(storage, "dispatch", "service",
                                                     scopes=("alerts:read",))}
    port = services.free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "pak.cli", "api", "--db", db, "--port", str(port),
         "--mqtt", mqtt_url, "--topic-root", topic_root, "--signing-key", str(key)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ})
    pub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    pub.connect("127.0.0.1", int(mqtt_url.rsplit(":", 1)[1]))
    pub.loop_start()
    try:
        services.wait_port("127.0.0.1", port, timeout=20)
        base = f"http://127.0.0.1:{port}"
        eventually(lambda: httpx.get(base + "/healthz").json()["alert_feed"] == "connected",
                   10, "the API subscribed to the alert topic", step=0.1)
        topic = f"{topic_root}/alerts/stolen_hit"
        forged = [orjson.dumps(alert(1)),
                  control(orjson.dumps(alert(2)), thief, topic),
                  control(orjson.dumps(alert(3)), centre, f"{topic_root}/alerts/tamper")]
        genuine = alert(4)
        got = None
        with httpx.stream("GET", base + "/api/v1/alerts/stream", headers=auth, timeout=10) as r:
            lines = r.iter_lines()
            assert next(lines) == ": connected"
            for payload in forged:  # one connection, QoS 1: they arrive before the genuine
                pub.publish(topic, payload, qos=1)
            pub.publish(topic, control(orjson.dumps(genuine), centre, topic), qos=1)
            kind = None
            for line in lines:
                if line.startswith("event: "):
                    kind = line[7:]
                elif line.startswith("data: ") and kind == "alert":  # the first alert
                    got = orjson.loads(line[6:])
                    break
        assert got == genuine, got
    finally:
        pub.loop_stop()
        pub.disconnect()
        proc.terminate()
        proc.wait(10)
