"""The live alert feed as real ``pak api`` processes serve it: it stays open through quiet
heartbeats, replays what a client missed after ``Last-Event-ID``, and carries a status change
made on one API instance to the clients of another (one broker, one database)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import orjson
import paho.mqtt.client as mqtt
import pytest

from pak.alert import Alert
from pak.timefmt import utcnow
from pak.wire.alert import stored_alert_message
from tests import services
from tests.support.wait import eventually
from tracker.storage import open_storage

HEARTBEAT_S = 1.0


def _db(tmp_path: Path) -> str:
    db = f"sqlite:///{tmp_path / 'feed.sqlite3'}"
    with open_storage(db) as s:
        s.migrate()
    return db


def _add_key(db: str, user: str, role: str) -> dict[str, str]:
    made = subprocess.run([sys.executable, "-m", "pak.cli", "users", "add", user, "--role",
                           role, "--api-key", "--db", db], capture_output=True, text=True,
                          check=True)
    return {"Authorization": f"Bearer {made.stdout.strip()}"}


@contextmanager
def _api(db: str, mqtt_url: str, topic_root: str) -> Iterator[str]:
    port = services.free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "pak.cli", "api", "--db", db, "--port", str(port),
         "--mqtt", mqtt_url, "--topic-root", topic_root,
         "--feed-heartbeat-s", str(HEARTBEAT_S)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ})
    try:
        services.wait_port("127.0.0.1", port, timeout=20)
        base = f"http://127.0.0.1:{port}"
        eventually(lambda: httpx.get(base + "/healthz").json()["alert_feed"] == "connected",
                   10, "the API subscribed to the alert topic", step=0.1)
        yield base
    finally:
        proc.terminate()
        proc.wait(10)


class Feed:
    """One SSE connection read event by event: (kind, id, data) or ("heartbeat", None, None)."""

    def __init__(self, lines: Iterator[str]) -> None:
        self.lines = lines

    def next(self) -> tuple[str, str | None, Any]:
        kind, eid, data = "message", None, None
        for line in self.lines:
            if line == ": heartbeat":
                return "heartbeat", None, None
            if line.startswith("id: "):
                eid = line[4:]
            elif line.startswith("event: "):
                kind = line[7:]
            elif line.startswith("data: "):
                data = orjson.loads(line[6:])
            elif line == "" and data is not None:
                return kind, eid, data
        raise AssertionError("the feed ended")

    def next_alert(self) -> tuple[str | None, dict[str, Any]]:
        while True:
            kind, eid, data = self.next()
            if kind == "alert":
                return eid, data
            assert kind in ("heartbeat", "feed"), (kind, data)


@contextmanager
def _feed(base: str, auth: dict[str, str], last_event_id: str | None = None) -> Iterator[Feed]:
    headers = dict(auth) | ({"Last-Event-ID": last_event_id} if last_event_id else {})
    with httpx.stream("GET", base + "/api/v1/alerts/stream", headers=headers,
                      timeout=10) as r:
        assert r.status_code == 200
        yield Feed(r.iter_lines())


@pytest.fixture
def publisher() -> Iterator[mqtt.Client]:
    pub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    pub.connect("127.0.0.1", 1883)
    pub.loop_start()
    yield pub
    pub.loop_stop()
    pub.disconnect()


def _raise(db: str, n: int) -> dict[str, Any]:
    """Store stolen-hit alert ``n`` as the tracker does and return its alert message."""
    with open_storage(db) as storage:
        storage.upsert_alerts([Alert(f"stolen_hit:AABB{n:04X}:1", "stolen_hit", utcnow(),
                                     tag_id=f"AABB{n:04X}", reader_id="rd-1")])
        stored = storage.get_alert(f"stolen_hit:AABB{n:04X}:1")
    assert stored is not None
    return stored_alert_message(stored)


def _send(pub: mqtt.Client, root: str, message: dict[str, Any]) -> None:
    pub.publish(f"{root}/alerts/stolen_hit", orjson.dumps(message), qos=1).wait_for_publish(5)


def test_feed_stays_open_then_replays_what_a_client_missed(
        tmp_path: Path, mqtt_url: str, topic_root: str, publisher: mqtt.Client) -> None:
    db = _db(tmp_path)
    auth = _add_key(db, "dispatch", "officer")
    with _api(db, mqtt_url, topic_root) as base:
        with _feed(base, auth) as feed:
            assert feed.next() == ("feed", None, {"live": True})
            for _ in range(5):  # five quiet heartbeat intervals: the feed stays open
                assert feed.next() == ("heartbeat", None, None)
            first = _raise(db, 1)
            _send(publisher, topic_root, first)
            eid, got = feed.next_alert()
            assert got == first and eid == f"{first['rev']}/{first['alert_id']}"
        # disconnected: two alerts are raised (stored and published) meanwhile
        missed = [_raise(db, 2), _raise(db, 3)]
        for m in missed:
            _send(publisher, topic_root, m)
        with _feed(base, auth, last_event_id=eid) as feed:
            replayed = [feed.next_alert()[1] for _ in missed]
        assert replayed == missed


def test_a_status_change_reaches_every_api_instance(
        tmp_path: Path, mqtt_url: str, topic_root: str, publisher: mqtt.Client) -> None:
    db = _db(tmp_path)
    auth = _add_key(db, "wang", "officer")
    alert = _raise(db, 7)
    with _api(db, mqtt_url, topic_root) as one, _api(db, mqtt_url, topic_root) as two:
        with _feed(two, auth) as feed:
            assert feed.next()[0] == "feed"
            r = httpx.post(f"{one}/api/v1/alerts/{alert['alert_id']}/status", headers=auth,
                           json={"status": "acknowledged"})
            assert r.status_code == 200, r.text
            _eid, got = feed.next_alert()
        assert got["alert_id"] == alert["alert_id"] and got["status"] == "acknowledged"
        assert got["rev"] >= alert["rev"]


def test_a_disabled_accounts_feed_ends(tmp_path: Path, mqtt_url: str, topic_root: str) -> None:
    db = _db(tmp_path)
    auth = _add_key(db, "li", "officer")
    with _api(db, mqtt_url, topic_root) as base, _feed(base, auth) as feed:
        assert feed.next() == ("feed", None, {"live": True})
        assert feed.next() == ("heartbeat", None, None)
        subprocess.run([sys.executable, "-m", "pak.cli", "users", "disable", "li", "--db", db],
                       capture_output=True, check=True)
        # a heartbeat may have left while the command ran; the first after it ends the feed
        events = [feed.next()]
        while events[-1][0] == "heartbeat":
            events.append(feed.next())
        kind, _eid, data = events[-1]
        assert kind == "end" and "API" in data["detail"] and len(events) <= 3, events
        with pytest.raises(AssertionError, match="ended"):
            feed.next()
