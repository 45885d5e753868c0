"""Helpers for the gateway's real-process tests: a test centre that subscribes, validates every
payload against the JSON Schemas and plays the tracker's receipts; the gateway and the simulated
reader as subprocesses; the simulator's ground truth; a direct look into the spool file."""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.parse
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import jsonschema
import orjson
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from pak.timefmt import utcnow
from pak.wire.receipts import compact_ranges, encode_receipts
from pak.wire.topics import Topics
from tests.support.wire_schema import validate

PAK = [sys.executable, "-m", "pak.cli"]
REPO = Path(__file__).resolve().parents[2]


@dataclass
class Received:
    """One sightings message as the centre got it."""

    at: float  # time.time() at receipt
    spool_id: str
    sightings: list[dict[str, Any]]
    clock_suspect: bool


class Centre:
    """Plays the centre on a broker: validates, records, and (when ``receipting``) answers
    every sightings message with a receipt (closed ranges for closed sightings, open ranges
    for open ones), as the tracker does after its commit."""

    def __init__(self, url: str, root: str, gateway_id: str = "+", *,
                 receipting: bool = True) -> None:
        u = urllib.parse.urlsplit(url)
        self.host, self.port = u.hostname or "127.0.0.1", u.port or 1883
        self.topics = Topics(root)
        self.gateway_id = gateway_id
        self.receipting = receipting
        self.lock = threading.Lock()
        self.messages: list[Received] = []
        self.by_id: dict[tuple[str, int], list[dict[str, Any]]] = defaultdict(list)
        self.states: list[dict[str, Any]] = []
        self.health: list[dict[str, Any]] = []
        self.errors: list[str] = []
        self.connected = threading.Event()
        c = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        c.on_connect = self._on_connect
        c.on_message = self._on_message
        c.reconnect_delay_set(1, 2)
        self.client = c

    def __enter__(self) -> Centre:
        self.client.connect_async(self.host, self.port, 30)
        self.client.loop_start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def wait_connected(self, timeout: float = 10.0) -> None:
        assert self.connected.wait(timeout), "the test centre could not connect"

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any,
                    props: Any) -> None:
        if reason.is_failure:
            return
        for leaf in ("sightings", "state", "health"):
            client.subscribe(f"{self.topics.root}/gw/{self.gateway_id}/{leaf}", qos=1)
        self.connected.set()

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        leaf = msg.topic.rsplit("/", 1)[-1]
        gid = msg.topic.split("/")[-2]
        try:
            obj = validate(leaf, bytes(msg.payload))
        except (jsonschema.ValidationError, orjson.JSONDecodeError) as e:
            with self.lock:
                self.errors.append(f"{msg.topic}: {e}")
            return
        if obj.get("gateway_id", gid) != gid:
            with self.lock:
                self.errors.append(f"{msg.topic}: gateway id {obj.get('gateway_id')}")
        with self.lock:
            if leaf == "state":
                self.states.append(obj)
                return
            if leaf == "health":
                self.health.append(obj)
                return
            rec = Received(time.time(), obj["spool_id"], obj["sightings"],
                           obj.get("clock_suspect", False))
            self.messages.append(rec)
            for s in obj["sightings"]:
                self.by_id[(rec.spool_id, s["seq"])].append(s)
            receipting = self.receipting
        if receipting:
            closed = compact_ranges(s["seq"] for s in obj["sightings"] if s["state"] == "closed")
            opened = compact_ranges(s["seq"] for s in obj["sightings"] if s["state"] == "open")
            client.publish(self.topics.receipts(gid),
                           encode_receipts(gid, obj["spool_id"], closed, utcnow(), opened), qos=1)

    # --- views ------------------------------------------------------------------------------

    def final(self) -> dict[tuple[str, int], dict[str, Any]]:
        """Each sighting id's closed form (the last closed message of it)."""
        with self.lock:
            out = {}
            for k, msgs in self.by_id.items():
                closed = [m for m in msgs if m["state"] == "closed"]
                if closed:
                    out[k] = closed[-1]
            return out

    def tags_closed(self) -> set[str]:
        return {s["tag_id"] for s in self.final().values()}

    def last_health(self) -> dict[str, Any] | None:
        with self.lock:
            return self.health[-1] if self.health else None

    def check_consistent(self) -> None:
        """No schema errors; every message about one sighting id names the same sighting (a
        reused seq would show another tag or another first_seen); open arrives no later than
        closed when both arrive."""
        with self.lock:
            assert not self.errors, self.errors[:5]
            for key, msgs in self.by_id.items():
                ident = {(m["tag_id"], m["tag_kind"], m["reader_id"], m["first_seen"])
                         for m in msgs}
                assert len(ident) == 1, f"seq reused? {key}: {ident}"
                closed = [m for m in msgs if m["state"] == "closed"]
                assert len({orjson.dumps(m) for m in closed}) <= 1, f"closed forms differ {key}"


# --- subprocesses -------------------------------------------------------------------------

@dataclass
class Proc:
    proc: subprocess.Popen[str]
    log: Path
    lines: list[str] = field(default_factory=list)

    def kill9(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self, timeout: float = 10.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill9()
        return int(self.proc.returncode)

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1"}


@contextlib.contextmanager
def gateway(args: Sequence[str], log: Path) -> Iterator[Proc]:
    """``pak gateway ARGS`` as a subprocess (stderr to ``log``); stopped (SIGTERM, then
    SIGKILL) afterwards whatever happens."""
    with open(log, "a") as fh:
        proc = subprocess.Popen([*PAK, "gateway", *args], stdout=subprocess.DEVNULL,
                                stderr=fh, text=True, env=_env(), cwd=REPO)
    p = Proc(proc, log)
    try:
        yield p
    finally:
        p.stop()


@contextlib.contextmanager
def sim_reader(args: Sequence[str], log: Path, *, wait_path: bool = True,
               env: dict[str, str] | None = None) -> Iterator[Proc]:
    """``pak sim reader ARGS``; with ``wait_path`` the first stdout line (the pty) is read
    into ``lines`` before the block runs. Killed afterwards."""
    with open(log, "a") as fh:
        proc = subprocess.Popen([*PAK, "sim", "reader", *args], stdout=subprocess.PIPE,
                                stderr=fh, text=True, env={**_env(), **(env or {})}, cwd=REPO)
    p = Proc(proc, log)
    try:
        if wait_path:
            assert proc.stdout is not None
            line = _readline(proc.stdout, 15.0)
            assert line, f"the simulator did not start: {p.log_text()[-2000:]}"
            p.lines.append(line)
        yield p
    finally:
        p.stop(5.0)
        if proc.stdout is not None:
            proc.stdout.close()


def _readline(stream: IO[str], timeout: float) -> str:
    import select

    ready, _, _ = select.select([stream], [], [], timeout)
    return stream.readline().strip() if ready else ""


# --- ground truth and the spool -----------------------------------------------------------

def ground_truth(path: Path) -> list[dict[str, Any]]:
    """The simulator's --log-sent records (complete lines only)."""
    if not path.exists():
        return []
    out = []
    for line in path.read_bytes().splitlines():
        with contextlib.suppress(orjson.JSONDecodeError):
            out.append(orjson.loads(line))
    return out


def delivered_reads(truth: list[dict[str, Any]], *, intact_only: bool = True) -> list[dict[str,
                                                                                          Any]]:
    return [r for r in truth if r.get("event") == "read" and r.get("delivered")
            and not (intact_only and (r.get("corrupted") or r.get("dropped")))]


def spool_rows(folder: Path) -> dict[int, str]:
    """seq -> state, read straight from the spool file (not through gateway code)."""
    db = folder / "spool.db"
    if not db.exists():
        return {}
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)) as c:
        return dict(c.execute("SELECT seq, state FROM sightings"))


def gateway_args(*, gateway_id: str, spool: Path, mqtt_url: str, root: str,
                 extra: Sequence[str] = ()) -> list[str]:
    """Settings that keep a test short: quick exits, health and republication."""
    return ["--gateway-id", gateway_id, "--spool", str(spool), "--mqtt", mqtt_url,
            "--topic-root", root, "--health-every", "0.5", "--republish-after", "1",
            "--republish-max", "2", "--log-level", "info", *extra]
