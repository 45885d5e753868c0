"""Alert latency, end to end: from the moment the simulated reader has written the last byte
of a stolen tag's frame to its pty, through ``pak gateway`` (serial link, driver, smoother,
spool, MQTT), a private Mosquitto (deploy/mosquitto/pak.conf), and ``pak tracker`` (parse,
watchlist check, alert built with storage lookups, published), to an MQTT subscriber that
receives the alert; with the simulated city's background traffic going through the same
broker and tracker.

    pak bench alerts [--hits 200] [--background-rate 5000] [--backlog 200000]
                     [--db pg|sqlite|URL] [--no-edge]

Three conditions in one run, each measured until ``--hits`` alerts (or ``--phase-timeout``):
``idle`` (the stolen tag alone, the baseline), ``background`` (``--background-rate``
sightings/s of city traffic through the same broker and tracker) and ``backlog`` (the tracker
stopped while ``--backlog`` city sightings queue at the broker, then restarted: hits measured
while it drains them; the phase ends when the backlog is stored, so it may hold fewer than
``--hits`` samples: the report says how many). With the edge key (the default; ``--no-edge``
measures the bulk lane alone) the gateway sends the stolen tag's open sightings on the
priority lane, which the tracker reads on its own connection and thread.

The reader (``pak sim reader --driver r2000``) rotates the stolen tag with another one every
``--dwell`` seconds, so a new sighting of the stolen tag opens every ``2 x dwell`` s; each
open sighting makes the tracker publish the tag's alert (raised, then updated). The reader's
ground truth (``--log-sent``) times every frame's last byte; the alert's sighting says when
the gateway first read it, which picks the frame. Same machine, same clock.

Goals (issue 18): p99 <= 20 ms with 5,000 sightings/s of background traffic; p99 <= 50 ms while
a tracker drains a 200,000-sighting backlog.
"""

from __future__ import annotations

import argparse
import bisect
import contextlib
import secrets
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


def _latencies(sent_log: Path, alerts: list[tuple[float, bytes]], since: float,
               until: float = float("inf"),
               ) -> tuple[list[tuple[float, float, float, int]], int, int]:
    """Latency of every alert published for an open sighting first read in [since, until),
    matched to the frame of the sighting's first read, with the part of it before the tracker
    received the sighting (the alert's ``delay_s``: reader, gateway, broker); also how many
    stolen-tag sightings opened, and alerts unmatched."""
    reads: list[float] = []
    enters = 0
    for line in sent_log.read_text().splitlines():
        try:
            r = orjson.loads(line)
        except orjson.JSONDecodeError:
            continue  # the line being written
        if r.get("tag_id") != STOLEN:
            continue
        t = parse_time(r["t"]).timestamp()
        if not since <= t < until:
            continue
        if r["event"] == "enter":
            enters += 1
        elif r["event"] == "read" and r.get("delivered") and not r.get("corrupted"):
            reads.append(t)
    reads.sort()
    out: list[tuple[float, float, float, int]] = []
    unmatched = 0
    timed: set[tuple[str, str, int]] = set()  # sightings whose first alert event is counted
    for recv, payload in sorted(alerts, key=lambda x: x[0]):
        a = orjson.loads(payload)
        seen = a["detail"]["seen"]
        if seen["state"] != "open":
            continue  # the closed form's update: not a new pass
        if a["detail"].get("enriched"):
            continue  # the enrichment worker's later revision of an alert already out
        sid = a["sighting"]
        key = (sid["gateway_id"], sid["spool_id"], int(sid["seq"]))
        if key in timed:
            continue  # the same pass published again (the other lane): timed at its first
        timed.add(key)
        first = parse_time(seen["first_seen"]).timestamp()
        if not since <= first < until:
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
    p.add_argument("--hits", type=int, default=200, help="alerts measured per condition")
    p.add_argument("--phase-timeout", type=float, default=150.0,
                   help="longest a condition is measured (seconds)")
    p.add_argument("--warmup", type=float, default=5.0,
                   help="seconds of background traffic before measuring")
    p.add_argument("--background-rate", type=float, default=5000.0,
                   help="city sightings per second through the same broker and tracker")
    p.add_argument("--backlog", type=int, default=200_000,
                   help="city sightings queued while the tracker is down (0: no backlog "
                        "condition)")
    p.add_argument("--backlog-rate", type=float, default=20_000.0,
                   help="how fast the backlog is published (sightings/s)")
    p.add_argument("--dwell", type=float, default=0.15,
                   help="seconds the stolen tag stays in range (and out of it)")
    p.add_argument("--edge", action=argparse.BooleanOptionalAction, default=True,
                   help="give the tracker and the gateway an edge key (the priority lane)")
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
    options = list(args.broker_option)
    if args.backlog and not any(o.split()[0] == "max_queued_messages" for o in options):
        # one message per city sighting: the broker must queue the whole backlog
        options.append(f"max_queued_messages {args.backlog * 2 + 100_000}")

    with workdir(args.keep) as wd, private_mosquitto(wd, options) as mqtt_url:
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


def _summary(xs: list[float]) -> dict[str, float]:
    xs = xs or [float("nan")]
    return {"p50": round(statistics.median(xs), 2), "p90": round(_pct(xs, 90), 2),
            "p99": round(_pct(xs, 99), 2), "max": round(max(xs), 2), "min": round(min(xs), 2)}


class _Run:
    """The processes of one benchmark run and the measurement of one condition."""

    def __init__(self, args: argparse.Namespace, wd: Path, mqtt_url: str, db: str,
                 procs: Procs) -> None:
        self.args, self.wd, self.mqtt_url, self.db, self.procs = args, wd, mqtt_url, db, procs
        self.sent = wd / "sent.jsonl"
        self.edge: list[str] = []
        if args.edge:
            key = wd / "edge.key"
            key.write_bytes(secrets.token_bytes(32))
            self.edge = ["--edge-key", str(key)]
        self.trackers = 0
        self.live = {"sim", "gateway"}  # the processes that must stay up

    def start_tracker(self) -> str:
        self.trackers += 1
        name = f"tracker{self.trackers}"
        self.live = {n for n in self.live if not n.startswith("tracker")} | {name}
        self.procs.pak(name, "tracker", "--mqtt", self.mqtt_url, "--db", self.db,
                       "--topic-root", ROOT, "--client-id", "bench-tracker",
                       "--model-refresh-s", "3600", "--watchlist-reload-s", "60", *self.edge,
                       *self.args.tracker_arg)
        self.procs.wait_log(name, "mqtt_connected", 60)
        self.procs.wait_log(name, "hit_lane_subscribed", 30)
        return name

    def stored(self) -> int:
        from tracker.storage import open_storage

        with open_storage(self.db) as st:
            return st.count_sightings()

    def condition(self, sub: _Subscriber, since: float,
                  done: Any = lambda: False) -> dict[str, Any]:
        """Wait for ``--hits`` samples (or ``done()``, or the phase timeout); the summary."""
        t_end = time.monotonic() + self.args.phase_timeout
        lat: list[tuple[float, float, float, int]] = []
        while time.monotonic() < t_end:
            self.procs.check_alive(self.live)
            time.sleep(1.0)
            lat, _, _ = _latencies(self.sent, list(sub.got), since)
            if len(lat) >= self.args.hits or done():
                break
        until = time.time()
        time.sleep(0.5)  # the last alerts in flight
        lat, enters, unmatched = _latencies(self.sent, list(sub.got), since, until)
        ms = [x * 1000 for x, *_ in lat]
        return {"samples": len(lat), "stolen_passes": enters, "unmatched_alerts": unmatched,
                "seconds": round(until - since, 1),
                "latency_ms": _summary(ms),
                # the same, split where the tracker received the sighting
                "to_tracker_ms": _summary([u * 1000 for _, u, *_ in lat]),
                "in_tracker_to_subscriber_ms": _summary([(x - u) * 1000 for x, u, *_ in lat])}

    def city(self, name: str, rate: float, seconds: float) -> subprocess.Popen[bytes]:
        proc = self.procs.start(name, [sys.executable, "-m", "benchmarks.city_load",
                                       "--mqtt", self.mqtt_url, "--topic-root", ROOT,
                                       "--rate", str(rate), "--vehicles", "40000",
                                       "--duration", str(seconds)], stdout=subprocess.PIPE)
        self.procs.wait_log(name, "city_load_started", 120)
        return proc


def _city_result(proc: subprocess.Popen[bytes]) -> dict[str, Any]:
    out = proc.stdout.read() if proc.stdout else b""
    with contextlib.suppress(orjson.JSONDecodeError, IndexError):
        result: dict[str, Any] = orjson.loads(out.strip().splitlines()[-1])
        return result
    return {}


def _measure(args: argparse.Namespace, wd: Path, mqtt_url: str, db: str,
             procs: Procs) -> dict[str, Any]:
    r = _Run(args, wd, mqtt_url, db, procs)
    tracker = r.start_tracker()
    sub = _Subscriber(mqtt_url, f"{ROOT}/alerts/stolen_hit")
    conditions: dict[str, Any] = {}
    try:
        link = wd / "reader"
        procs.pak("sim", "sim", "reader", "--driver", "r2000", "--link", str(link),
                  "--tag", STOLEN, "--random", "1", "--seed", "3", "--dwell", str(args.dwell),
                  "--visible", "1", "--rate", "40", "--log-sent", str(r.sent))
        deadline = time.monotonic() + 10
        while not link.exists():
            if time.monotonic() > deadline:
                raise BenchError("the simulated reader made no pty")
            time.sleep(0.05)
        procs.pak("gateway", "gateway", "--gateway-id", GATEWAY, "--reader-id", READER,
                  "--driver", "r2000", "--serial", str(link), "--mqtt", mqtt_url,
                  "--topic-root", ROOT, "--spool", str(wd / "spool"),
                  "--exit-after", str(round(args.dwell * 0.66, 3)), "--health-every", "5",
                  *r.edge)
        procs.wait_log("gateway", "mqtt_connected", 20)
        if args.edge:
            procs.wait_log("gateway", "edge_watchlist_applied", 20)
        time.sleep(1.0)
        conditions["idle"] = r.condition(sub, time.time())
        if args.background_rate > 0:
            load = r.city("city", args.background_rate,
                          args.warmup + args.phase_timeout + 20)
            time.sleep(args.warmup)
            conditions["background"] = r.condition(sub, time.time())
            procs.stop("city")
            conditions["background"]["background"] = {
                "requested_per_s": args.background_rate, **_city_result(load)}
        if args.backlog > 0:
            procs.stop(tracker, 30)
            before = r.stored()
            load = r.city("backlog", args.backlog_rate, args.backlog / args.backlog_rate)
            load.wait()
            queued = _city_result(load)
            t0 = time.monotonic()
            tracker = r.start_tracker()
            since = time.time()
            target = before + int(queued.get("sightings") or args.backlog)
            last = [before, time.monotonic()]

            def drained() -> bool:
                n = r.stored()
                if n != last[0]:
                    last[:] = [n, time.monotonic()]
                return n >= target or time.monotonic() - last[1] > 5

            c = r.condition(sub, since, drained)
            c["backlog"] = {"requested": args.backlog, "queued": queued,
                            "stored_when_phase_ended": r.stored() - before,
                            "drain_s_so_far": round(time.monotonic() - t0, 1)}
            conditions["backlog"] = c
        procs.stop("sim")
    finally:
        sub.close()
    procs.stop("gateway")
    procs.stop(tracker, 30)
    from tracker.storage import open_storage

    with open_storage(db) as st:
        alert_ids = {a.alert_id for a in st.alerts(kind="stolen_hit")}
    p99 = {k: v["latency_ms"]["p99"] for k, v in conditions.items()}
    return {
        "conditions": conditions,
        "edge_lane": args.edge,
        "alert_ids": len(alert_ids),
        "goals": {"background": "p99 <= 20 ms with 5,000 sightings/s of background",
                  "backlog": "p99 <= 50 ms while a tracker drains a 200,000-sighting backlog"},
        "goal_met": {"background": "background" in p99 and p99["background"] <= 20.0,
                     "backlog": "backlog" in p99 and p99["backlog"] <= 50.0},
        "hits_per_condition": args.hits,
        "measured_at": utcnow().isoformat(timespec="seconds"),
        "python": sys.version.split()[0],
        "pak": " ".join(PAK[1:]),
    }
