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
    made = subprocess.run([sys.executable, "-m", "pak.cli", "users", "add", "dispatch",
                           "--role", "service", "--api-key", "--scope", "alerts:read",
                           "--db", db], capture_output=True, text=True, check=True)
    auth = {"Authorization": f"Bearer {made.stdout.strip()}"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "pak.cli", "api", "--db", db, "--port", str(port),
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
        assert httpx.get(base + "/api/v1/alerts/stream").status_code == 401
        # the console: signs in, then its EventSource sends nothing but the session cookie
        password = subprocess.run(
            [sys.executable, "-m", "pak.cli", "users", "add", "wang", "--role", "officer",
             "--db", db], capture_output=True, text=True, check=True).stdout.strip()
        signed = httpx.post(base + "/api/v1/session", json={"user": "wang",
                                                            "password": password})
        assert signed.status_code == 200 and "__Host-pak_session" in signed.cookies
        cookie = {"Cookie": f"__Host-pak_session={signed.cookies['__Host-pak_session']}"}
        with httpx.stream("GET", base + "/api/v1/alerts/stream", headers=cookie, timeout=10) as r:
            assert r.status_code == 200 and next(r.iter_lines()) == ": connected"
        with httpx.stream("GET", base + "/api/v1/alerts/stream", headers=auth, timeout=10) as r:
            assert r.headers["content-type"].startswith("text/event-stream")
            lines = r.iter_lines()
            assert next(lines) == ": connected"
            pub.publish(f"{topic_root}/alerts/stolen_hit", orjson.dumps(alert), qos=1)
            kind = None
            for line in lines:
                if line.startswith("event: "):
                    kind = line[7:]
                elif line.startswith("data: ") and kind == "alert":
                    got = orjson.loads(line[6:])
                    break
        pub.loop_stop()
        pub.disconnect()
        assert got == alert
    finally:
        proc.terminate()
        proc.wait(10)
