"""`pak api` as a real process: an alert published on the broker reaches a browser's live
feed (server-sent events), and the console page is served."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import orjson
import paho.mqtt.client as mqtt

from tests import services
from tests.support.wait import eventually


def test_alert_reaches_the_live_feed(tmp_path: Path, mqtt_url: str, topic_root: str) -> None:
    port = services.free_port()
    db = f"sqlite:///{tmp_path / 'live.sqlite3'}"
    proc = subprocess.Popen(
        [sys.executable, "-m", "pak.cli", "api", "--db", db, "--no-auth", "--port", str(port),
         "--mqtt", mqtt_url, "--topic-root", topic_root],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env={**os.environ})
    try:
        services.wait_port("127.0.0.1", port, timeout=20)
        base = f"http://127.0.0.1:{port}"
        assert "pak" in httpx.get(base + "/").text
        eventually(lambda: httpx.get(base + "/healthz").json()["alert_feed"] == "connected",
                   10, "the API subscribed to the alert topic", step=0.1)
        alert = {"v": 1, "alert_id": "stolen_hit:gw-1:s:7", "kind": "stolen_hit",
                 "at": "2026-11-28T06:00:00.000Z", "status": "new", "tag_id": "AABBCCDD"}
        pub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        pub.connect("127.0.0.1", 1883)
        pub.loop_start()
        got = None
        with httpx.stream("GET", base + "/api/alerts/stream", timeout=10) as r:
            assert r.headers["content-type"].startswith("text/event-stream")
            lines = r.iter_lines()
            assert next(lines) == ": connected"
            pub.publish(f"{topic_root}/alerts/stolen_hit", orjson.dumps(alert), qos=1)
            for line in lines:
                if line.startswith("data: "):
                    got = orjson.loads(line[6:])
                    break
        pub.loop_stop()
        pub.disconnect()
        assert got == alert
    finally:
        proc.terminate()
        proc.wait(10)
