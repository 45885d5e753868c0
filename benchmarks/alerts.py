"""Alert latency, end to end: from the moment the simulated reader has written the last byte
of a stolen tag's frame to its pty, through ``pak gateway`` (serial link, driver, smoother,
spool, MQTT), a private Mosquitto (deploy/mosquitto/pak.conf), and ``pak tracker`` (parse,
watchlist check, alert built with storage lookups, published), to an MQTT subscriber that
receives the alert; with the simulated city's background traffic going through the same
broker and tracker.

    pak bench alerts [--duration 60] [--background-rate 5000] [--db pg|sqlite|URL]

The reader (``pak sim reader --driver r2000``) rotates the stolen tag with another one every
``--dwell`` seconds, so a new sighting of the stolen tag opens every ``2 x dwell`` s; each
open sighting makes the tracker publish the tag's alert (raised, then updated). The reader's
ground truth (``--log-sent``) times every frame's last byte; the alert's sighting says when
the gateway first read it, which picks the frame. Same machine, same clock.

Goal: p99 <= 50 ms with 5,000 sightings/s of background traffic.
"""

from __future__ import annotations

import argparse
import bisect
import contextlib
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson

from benchmarks.harness import (
    PAK,
    BenchError,
    Procs,
    private_mosquitto,
    scratch_postgres,
    workdir,
)
from pak.timefmt import parse_time, utcnow

__all__ = ["run"]

STOLEN = "E2003412B802011829409F3C"
GATEWAY = "gw-bench"
READER = "R-bench"
ROOT = "pak-bench/v1"
SHARED_PG = "postgresql://postgres@127.0.0.1:5432/postgres"


def _prepare(db: str) -> None:
    from tracker.storage import Reader, Vehicle, open_storage

    with open_storage(db) as st:
        st.migrate()
        now = utcnow()
        st.upsert_readers([Reader(READER, "Benchmark junction", 30.2741, 120.1551,
                                  {1: 90.0, 2: 180.0, 3: 270.0, 4: 0.0})])
        st.upsert_vehicles([Vehicle("V-bench", "ZJ-B0001", kind="e-bike", colour="blue")])
        st.assign_tag(STOLEN, "V-bench", at=now - timedelta(days=1))
        st.watchlist_add(STOLEN, case_no="BENCH-1", reporter="bench", reported_at=now,
                         note="benchmark", at=now)


class _Subscriber:
    """Receives the alerts and stamps each on arrival (its own thread, nothing else here)."""

    def __init__(self, url: str, topic: str) -> None:
        from pak.broker_url import Brokers
        from pak.mqtt import CENTRE_BACKOFF, make_client

        self.got: list[tuple[float, bytes]] = []
        self._ready = threading.Event()
        c = make_client(Brokers.parse(url), backoff=CENTRE_BACKOFF)
        c.on_message = lambda cl, ud, msg: self.got.append((time.time(), bytes(msg.payload)))
        c.on_subscribe = lambda *a: self._ready.set()
        c.connect_first()
        c.subscribe(topic, qos=1)
        c.loop_start()
        self.client = c
        if not self._ready.wait(10):
            raise BenchError("the alert subscriber could not subscribe")

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def _pct(xs: Sequence[float], q: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, max(0, round(q / 100 * len(s) + 0.5) - 1))]


def _gateway_seen(messages: list[tuple[float, bytes]]) -> dict[int, float]:
    """When a plain subscriber got each open sighting of the stolen tag from the broker, by
    seq: where the gateway's part of the path ends."""
    out: dict[int, float] = {}
    for recv, payload in messages:
        for s in orjson.loads(payload)["sightings"]:
            if s["tag_id"] == STOLEN and s["state"] == "open":
                out.setdefault(s["seq"], recv)
    return out


def _latencies(sent_log: Path, alerts: list[tuple[float, bytes]],
               since: float) -> tuple[list[tuple[float, float, float, int]], int, int]:
    """Latency of every alert published for an open sighting, matched to the frame of the
    sighting's first read, with the part of it before the tracker received the sighting
    (the alert's ``delay_s``: reader, gateway, broker); also how many stolen-tag sightings
    opened, and alerts unmatched."""
    reads: list[float] = []
    enters = 0
    for line in sent_log.read_text().splitlines():
        r = orjson.loads(line)
        if r.get("tag_id") != STOLEN:
            continue
        t = parse_time(r["t"]).timestamp()
        if t < since:
            continue
        if r["event"] == "enter":
            enters += 1
        elif r["event"] == "read" and r.get("delivered") and not r.get("corrupted"):
            reads.append(t)
    reads.sort()
    out: list[tuple[float, float, float, int]] = []
    unmatched = 0
    for recv, payload in alerts:
        a = orjson.loads(payload)
        seen = a["detail"]["seen"]
        if seen["state"] != "open":
            continue  # the closed form's update: not a new pass
        first = parse_time(seen["first_seen"]).timestamp()
        if first < since:
            continue
        # the gateway stamps its first read a little after the frame's last byte was written
        # (wire times are whole milliseconds): the latest frame at most 1 ms after the stamp
        i = bisect.bisect_right(reads, first + 0.001) - 1
        if i < 0 or first - reads[i] > 0.5:
            unmatched += 1
            continue
        upstream = first - reads[i] + float(a["detail"].get("delay_s") or 0.0)
        out.append((recv - reads[i], upstream, reads[i], int(a["sighting"]["seq"])))
    return out, enters, unmatched


def run(argv: Sequence[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(prog="pak bench alerts", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--duration", type=float, default=60.0, help="measured seconds")
    p.add_argument("--warmup", type=float, default=5.0,
                   help="seconds of background traffic before measuring")
    p.add_argument("--background-rate", type=float, default=5000.0,
                   help="city sightings per second through the same broker and tracker")
    p.add_argument("--dwell", type=float, default=0.5,
                   help="seconds the stolen tag stays in range (and out of it)")
    p.add_argument("--db", default="pg",
                   help="pg (a scratch database on the local PostgreSQL), sqlite, or a URL")
    p.add_argument("--tracker-arg", action="append", default=[], metavar="ARG",
                   help="one more argument for pak tracker (repeat; e.g. "
                        "--tracker-arg=--batch-max-age-ms=50)")
    p.add_argument("--broker-option", action="append", default=[], metavar="LINE",
                   help="a mosquitto.conf line replacing the deploy file's option of that "
                        "name (repeat; e.g. --broker-option='max_inflight_messages 20000')")
    p.add_argument("--keep", action="store_true", help="keep the work folder and logs")
    args = p.parse_args(argv)

    with workdir(args.keep) as wd, private_mosquitto(wd, args.broker_option) as mqtt_url:
        if args.db == "pg":
            db_cm: Any = scratch_postgres(SHARED_PG)
        elif args.db == "sqlite":
            db_cm = contextlib.nullcontext(f"sqlite://{wd}/pak.db")
        else:
            db_cm = contextlib.nullcontext(args.db)
        with db_cm as db:
            _prepare(db)
            procs = Procs(wd)
            try:
                return _measure(args, wd, mqtt_url, db, procs) | {
                    "db": "postgresql+timescaledb" if db.startswith("postgres") else "sqlite",
                    **({"workdir": str(wd)} if args.keep else {})}
            finally:
                procs.stop_all()


def _measure(args: argparse.Namespace, wd: Path, mqtt_url: str, db: str,
             procs: Procs) -> dict[str, Any]:
    procs.pak("tracker", "tracker", "--mqtt", mqtt_url, "--db", db, "--topic-root", ROOT,
              "--client-id", "bench-tracker", "--model-refresh-s", "3600",
              "--watchlist-reload-s", "60", *args.tracker_arg)
    procs.wait_log("tracker", "mqtt_connected", 60)
    sub = _Subscriber(mqtt_url, f"{ROOT}/alerts/stolen_hit")
    gw_sub = _Subscriber(mqtt_url, f"{ROOT}/gw/{GATEWAY}/sightings")
    try:
        load: subprocess.Popen[bytes] | None = None
        if args.background_rate > 0:
            total = args.warmup + args.duration + 20
            load = procs.start("city", [sys.executable, "-m", "benchmarks.city_load",
                                        "--mqtt", mqtt_url, "--topic-root", ROOT,
                                        "--rate", str(args.background_rate),
                                        "--vehicles", "40000", "--duration", str(total)],
                               stdout=subprocess.PIPE)
            procs.wait_log("city", "city_load_started", 120)
        link = wd / "reader"
        sent = wd / "sent.jsonl"
        procs.pak("sim", "sim", "reader", "--driver", "r2000", "--link", str(link),
                  "--tag", STOLEN, "--random", "1", "--seed", "3", "--dwell", str(args.dwell),
                  "--visible", "1", "--rate", "20", "--log-sent", str(sent))
        deadline = time.monotonic() + 10
        while not link.exists():
            if time.monotonic() > deadline:
                raise BenchError("the simulated reader made no pty")
            time.sleep(0.05)
        procs.pak("gateway", "gateway", "--gateway-id", GATEWAY, "--reader-id", READER, "--driver",
                  "r2000", "--serial", str(link), "--mqtt", mqtt_url, "--topic-root", ROOT,
                  "--spool", str(wd / "spool"), "--exit-after", "0.2",
                  "--health-every", "5")
        procs.wait_log("gateway", "mqtt_connected", 20)
        time.sleep(args.warmup)
        since = time.time()
        t_end = time.monotonic() + args.duration
        while time.monotonic() < t_end:
            procs.check_alive()
            time.sleep(0.5)
        procs.stop("sim")
        time.sleep(1.0)  # the last alerts in flight
        bg: dict[str, Any] = {}
        if load is not None:
            procs.stop("city")
            out = load.stdout.read() if load.stdout else b""
            with contextlib.suppress(orjson.JSONDecodeError, IndexError):
                bg = orjson.loads(out.strip().splitlines()[-1])
        received = list(sub.got)
        gw_msgs = list(gw_sub.got)
    finally:
        sub.close()
        gw_sub.close()
    procs.stop("gateway")
    procs.stop("tracker", 30)
    lat, enters, unmatched = _latencies(sent, received, since)
    ms = [x * 1000 for x, *_ in lat] or [float("nan")]
    up = [u * 1000 for _, u, *_ in lat] or [float("nan")]
    down = [(x - u) * 1000 for x, u, *_ in lat] or [float("nan")]
    gw_seen = _gateway_seen(gw_msgs)
    via_gw = [(gw_seen[seq] - t) * 1000 for _, _, t, seq in lat
              if seq in gw_seen] or [float("nan")]

    def summary(xs: list[float]) -> dict[str, float]:
        return {"p50": round(statistics.median(xs), 2), "p90": round(_pct(xs, 90), 2),
                "p99": round(_pct(xs, 99), 2), "max": round(max(xs), 2)}

    from tracker.storage import open_storage

    with open_storage(db) as st:
        stored = st.count_sightings()
        alert_ids = {a.alert_id for a in st.alerts(kind="stolen_hit")}
    return {
        "samples": len(lat),
        "stolen_passes": enters,
        "unmatched_alerts": unmatched,
        "alert_ids": len(alert_ids),
        "latency_ms": {**summary(ms), "min": round(min(ms), 2)},
        # the same, split where the tracker received the sighting
        "to_tracker_ms": summary(up),
        "in_tracker_to_subscriber_ms": summary(down),
        # frame written -> a plain subscriber of the gateway's topic has the open sighting
        "to_broker_subscriber_ms": summary(via_gw),
        "background": {"requested_per_s": args.background_rate,
                       "achieved_per_s": bg.get("rate"), "sightings_sent": bg.get("sightings"),
                       "stored_in_db": stored},
        "duration_s": args.duration,
        "goal": "p99 <= 50 ms with 5,000 sightings/s of background traffic",
        "goal_met": bool(lat) and _pct(ms, 99) <= 50.0,
        "measured_at": utcnow().isoformat(timespec="seconds"),
        "python": sys.version.split()[0],
        "pak": " ".join(PAK[1:]),
    }
