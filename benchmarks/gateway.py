"""The gateway under load: CPU, memory, open-sighting latency, and the drain after an outage.

Everything runs as on a roadside box, as separate processes on this machine::

    pak sim reader (R2000, pty) --> pak gateway --> private Mosquitto --> centre (this process:
                                        ^                                  receives, receipts)
                                        +---------- receipts --------------+

Live phase (``--duration``, default 60 s at ``--rate`` 500 reads/s): the gateway's CPU time
over wall time (% of one core) and its peak RSS; the latency of every ``open`` sighting from
the moment the simulator wrote the first read of that tag's stay to the pty (its ``--log-sent``
ground truth, millisecond stamps) to the moment the centre received the message.

Outage phase (``--outage``, default 600 s): the broker is killed (kill -9) while reads go on,
then restarted. The gateway reconnects by itself (paho's capped back-off: up to
``--reconnect-max`` s late). Measured: how many sightings were spooled meanwhile, how fast they
reach the centre once the gateway is back (sightings/s, against the live rate of new
sightings), and the latency of the live ``open`` sightings made while the backlog drains.

    pak bench gateway [--duration 60] [--rate 500] [--outage 600] [--no-outage]
"""

from __future__ import annotations

import argparse
import bisect
import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import paho.mqtt.client as mqtt
import psutil
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from benchmarks.harness import PAK, BenchError, free_port, stop_process, wait_port
from pak.broker_url import Brokers
from pak.mqtt import Backoff, make_client
from pak.timefmt import parse_time, utcnow
from pak.wire import Topics, compact_ranges, encode_receipts

__all__ = ["run"]

GATEWAY_ID = "gw-bench"
ROOT = "bench/v1"


class Broker:
    """A private Mosquitto (never the shared one: this benchmark kills it)."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        (workdir / "mosquitto.conf").write_text("\n".join([
            f"listener {self.port} 127.0.0.1", "allow_anonymous true",
            "max_inflight_messages 1000", "max_queued_messages 100000",
            "max_packet_size 1052672", "set_tcp_nodelay true",
            # The centre's session (its subscription) must outlive the kill, or the gateway,
            # back first, would drain into nobody and wait for its republish timer.
            "persistence true", f"persistence_location {workdir}/", "autosave_interval 1",
            f"log_dest file {workdir}/mosquitto.log", ""]))

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.proc = subprocess.Popen(["mosquitto", "-c", str(self.workdir / "mosquitto.conf")],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_port(self.port, 60.0)
        except BenchError:
            log = self.workdir / "mosquitto.log"
            tail = log.read_text(errors="replace")[-1500:] if log.exists() else ""
            raise RuntimeError(f"mosquitto did not start (exit {self.proc.poll()}): {tail}") \
                from None

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)


@dataclass
class Centre:
    """Receives sightings, stamps their arrival, and receipts them as the tracker would."""

    port: int
    # (tag, received at, the gateway's first_seen stamp)
    opens: list[tuple[str, float, float]] = field(default_factory=list)
    closed_at: dict[tuple[str, int], float] = field(default_factory=dict)  # first closed
    first_seen: dict[tuple[str, int], float] = field(default_factory=dict)
    last_seen: dict[tuple[str, int], float] = field(default_factory=dict)
    online_at: list[float] = field(default_factory=list)
    since: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.topics = Topics(ROOT)
        # reconnect at once: the benchmark measures how soon the centre is back
        c = make_client(Brokers.parse(f"mqtt://127.0.0.1:{self.port}"), backoff=Backoff(1, 1),
                        client_id="bench-centre")
        c.on_connect = self._on_connect
        c.on_message = self._on_message
        self.client = c

    def start(self) -> None:
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = 3600
        self.client.start(30, clean_start=False, properties=props)

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any,
                    props: Any) -> None:
        client.subscribe(self.topics.sightings(GATEWAY_ID), qos=1)
        client.subscribe(self.topics.state(GATEWAY_ID), qos=1)

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        now = time.time()
        obj = orjson.loads(msg.payload)
        if msg.topic.endswith("/state"):
            # A retained "online" from before a broker restart says nothing: only one stamped
            # after the restart shows the gateway back.
            if obj["state"] == "online" and parse_time(obj["at"]).timestamp() >= self.since:
                with self.lock:
                    self.online_at.append(now)
            return
        spool = obj["spool_id"]
        closed, opened = [], []
        with self.lock:
            for s in obj["sightings"]:
                key = (spool, s["seq"])
                if s["state"] == "open":
                    opened.append(s["seq"])
                    self.opens.append((s["tag_id"], now,
                                       parse_time(s["first_seen"]).timestamp()))
                else:
                    closed.append(s["seq"])
                    self.closed_at.setdefault(key, now)
                    self.last_seen[key] = parse_time(s["last_seen"]).timestamp()
                self.first_seen.setdefault(key, parse_time(s["first_seen"]).timestamp())
        client.publish(self.topics.receipts(GATEWAY_ID),
                       encode_receipts(GATEWAY_ID, spool, compact_ranges(closed), utcnow(),
                                       compact_ranges(opened)), qos=1)


def _stay_starts(truth: Path) -> dict[str, list[float]]:
    """tag -> times (Unix s) the simulator wrote the first read of each of its stays."""
    starts: dict[str, list[float]] = defaultdict(list)
    entered: set[str] = set()
    with open(truth, "rb") as fh:
        for line in fh:
            with contextlib.suppress(orjson.JSONDecodeError):
                r = orjson.loads(line)
                ev = r.get("event")
                if ev == "enter":
                    entered.add(r["tag_id"])
                elif ev == "read" and r["tag_id"] in entered and r.get("delivered"):
                    entered.discard(r["tag_id"])
                    starts[r["tag_id"]].append(parse_time(r["t"]).timestamp())
    return starts


def _latencies_ms(opens: list[tuple[str, float, float]], starts: dict[str, list[float]],
                  lo: float, hi: float) -> tuple[list[float], list[float]]:
    """Latencies of the opens whose stay began in [lo, hi): (sim write -> centre receive,
    sim write -> the gateway's receive stamp), both sorted."""
    total, link = [], []
    for tag, at, first_seen in opens:
        ts = starts.get(tag, [])
        i = bisect.bisect_right(ts, at) - 1
        if i >= 0 and lo <= ts[i] < hi:
            total.append((at - ts[i]) * 1000)
            link.append((first_seen - ts[i]) * 1000)
    return sorted(total), sorted(link)


def _pct(xs: list[float], p: float) -> float | None:
    if not xs:
        return None
    return round(xs[min(len(xs) - 1, int(p / 100 * len(xs)))], 2)


@contextlib.contextmanager
def _proc(cmd: Sequence[str], log: Path, **kw: Any) -> Iterator[subprocess.Popen[str]]:
    with open(log, "a") as fh:
        p = subprocess.Popen(list(cmd), stderr=fh, text=True, **kw)
    try:
        yield p
    finally:
        stop_process(p, 15)


def _parse(argv: Sequence[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="pak bench gateway", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--duration", type=float, default=60.0, help="live phase, s (default 60)")
    p.add_argument("--rate", type=float, default=500.0, help="reads per second (default 500)")
    p.add_argument("--visible", type=int, default=10,
                   help="tags in range at once (default 10)")
    p.add_argument("--dwell", type=float, default=1.0,
                   help="s each tag stays (default 1: --visible new sightings a second)")
    p.add_argument("--per-round", type=int, default=5,
                   help="tags per inventory round (default 5)")
    p.add_argument("--outage", type=float, default=600.0,
                   help="broker outage, s (default 600; use e.g. 20 for a quick run)")
    p.add_argument("--no-outage", action="store_true", help="live phase only")
    p.add_argument("--reconnect-max", type=int, default=10,
                   help="the gateway's longest reconnect wait, s (default 10)")
    p.add_argument("--after", type=float, default=10.0,
                   help="live s measured after the gateway is back (default 10)")
    p.add_argument("--keep", action="store_true", help="keep the work folder")
    return p.parse_args(list(argv))


def run(argv: Sequence[str]) -> dict[str, Any]:
    args = _parse(argv)
    if shutil.which("mosquitto") is None:
        raise RuntimeError("mosquitto is not installed (deploy/setup-services.sh)")
    work = Path(tempfile.mkdtemp(prefix="pak-bench-gw-"))
    try:
        return _run(args, work)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


def _run(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    os.chmod(work, 0o777)  # mosquitto may drop privileges to its own user
    broker = Broker(work)
    broker.start()
    centre = Centre(broker.port)
    centre.start()
    truth = work / "sent.jsonl"
    link = work / "reader"
    total = args.duration + (0 if args.no_outage else args.outage + 60 + args.after) + 30
    sim_cmd = [*PAK, "sim", "reader", "--driver", "r2000", "--link", str(link),
               "--random", "5000", "--antennas", "4", "--visible", str(args.visible),
               "--dwell", str(args.dwell), "--per-round", str(args.per_round),
               "--rate", str(args.rate), "--duration", str(total), "--seed", "1",
               "--log-sent", str(truth), "--log-level", "warning"]
    gw_cmd = [*PAK, "gateway", "--gateway-id", GATEWAY_ID, "--driver", "r2000",
              "--serial", str(link), "--spool", str(work / "spool"), "--mqtt", broker.url,
              "--topic-root", ROOT, "--health-every", "10",
              "--mqtt-reconnect-max", str(args.reconnect_max), "--log-level", "warning"]
    result: dict[str, Any] = {"rate_reads_per_s": args.rate, "duration_s": args.duration,
                              "new_sightings_per_s": args.visible / args.dwell}
    try:
        with _proc(sim_cmd, work / "sim.log", stdout=subprocess.PIPE) as sim:
            assert sim.stdout is not None
            sim.stdout.readline()  # the pty path: the reader is up
            with _proc(gw_cmd, work / "gw.log", stdout=subprocess.DEVNULL) as gw:
                ps = psutil.Process(gw.pid)
                time.sleep(3.0)  # warm-up: connected, inventory running
                c0, t0 = ps.cpu_times(), time.time()
                rss_peak = 0
                while time.time() - t0 < args.duration:
                    rss_peak = max(rss_peak, ps.memory_info().rss)
                    time.sleep(1.0)
                c1, t1 = ps.cpu_times(), time.time()
                cpu = (c1.user + c1.system - c0.user - c0.system) / (t1 - t0) * 100
                with centre.lock:
                    live_opens = sum(1 for _, at, _ in centre.opens if t0 <= at < t1)
                result.update({
                    "gateway_cpu_pct_of_one_core": round(cpu, 2),
                    "gateway_rss_mb_peak": round(rss_peak / 2**20, 1),
                    "open_sightings_measured": live_opens,
                })
                if not args.no_outage:
                    result.update(_outage(args, broker, centre, ps))
                window = (t0, t1)
            sim.send_signal(signal.SIGTERM)
            sim.wait(15)
        starts = _stay_starts(truth)
        lat, link_lat = _latencies_ms(centre.opens, starts, *window)
        result.update({"open_latency_ms_p50": _pct(lat, 50), "open_latency_ms_p99": _pct(lat, 99),
                       "open_latency_ms_max": _pct(lat, 100),
                       "of_which_pty_to_gateway_ms_p50": _pct(link_lat, 50),
                       "of_which_pty_to_gateway_ms_p99": _pct(link_lat, 99)})
        if "back_online_at" in result:
            back = result.pop("back_online_at")
            lat2, _ = _latencies_ms(centre.opens, starts, back, back + args.after)
            result.update({"drain_open_latency_ms_p50": _pct(lat2, 50),
                           "drain_open_latency_ms_p99": _pct(lat2, 99),
                           "drain_open_sightings_measured": len(lat2)})
        result["goals"] = {
            "cpu_pct_le_5": (result["gateway_cpu_pct_of_one_core"] <= 5),
            "rss_mb_le_60": result["gateway_rss_mb_peak"] <= 60,
            "open_p99_ms_le_20": (result["open_latency_ms_p99"] or 1e9) <= 20,
        }
        if "drain_vs_live" in result:
            result["goals"]["drain_ge_20x_live"] = (result["drain_vs_live"] or 0) >= 20
        return result
    finally:
        centre.stop()
        broker.kill()


def _outage(args: argparse.Namespace, broker: Broker, centre: Centre,
            ps: psutil.Process) -> dict[str, Any]:
    """Kill the broker, wait, restart it; measure the drain of what was spooled meanwhile."""
    with centre.lock:
        onlines = len(centre.online_at)
    killed_at = time.time()
    broker.kill()
    rss_peak = 0
    c0 = ps.cpu_times()
    while time.time() - killed_at < args.outage:
        rss_peak = max(rss_peak, ps.memory_info().rss)
        time.sleep(1.0)
    c1 = ps.cpu_times()
    outage_cpu = (c1.user + c1.system - c0.user - c0.system) / (time.time() - killed_at) * 100
    restarted_at = time.time()
    centre.since = restarted_at
    broker.start()
    deadline = restarted_at + args.reconnect_max + 30
    while time.time() < deadline:
        with centre.lock:
            if len(centre.online_at) > onlines:
                break
        time.sleep(0.02)
    with centre.lock:
        if len(centre.online_at) <= onlines:
            raise RuntimeError("the gateway did not come back online")
        back = centre.online_at[onlines]
    # The backlog: sightings that began after the kill and were closed (so spooled, waiting)
    # before the gateway was back. Wait until no more of them arrive.
    exit_after = 3.0  # the R2000 driver's default

    def backlog_arrivals() -> tuple[int, list[float]]:
        with centre.lock:
            keys = [k for k, fs in centre.first_seen.items()
                    if fs >= killed_at and k in centre.last_seen
                    and centre.last_seen[k] + exit_after < back]
            return len(keys), sorted(centre.closed_at[k] for k in keys)

    n, arrivals = backlog_arrivals()
    still = time.time()
    while time.time() - back < 300 and (time.time() - still < 2.0
                                        or time.time() - back < args.after):
        time.sleep(0.1)
        n2, arrivals = backlog_arrivals()
        if n2 != n:
            n, still = n2, time.time()
    rss_peak = max(rss_peak, ps.memory_info().rss)
    with centre.lock:
        spooled_during = sum(1 for fs in centre.first_seen.values() if killed_at <= fs < back)
    backlog = arrivals
    drain_s = (arrivals[-1] - back) if arrivals else None
    rate = len(arrivals) / drain_s if drain_s else None
    live = args.visible / args.dwell
    return {
        "outage_s": args.outage,
        "gateway_cpu_pct_during_outage": round(outage_cpu, 2),
        "gateway_rss_mb_peak_outage": round(rss_peak / 2**20, 1),
        "reconnect_after_restart_s": round(back - restarted_at, 2),
        "backlog_sightings": len(backlog),
        "sightings_begun_during_outage": spooled_during,
        "drain_s": None if drain_s is None else round(drain_s, 3),
        "drain_sightings_per_s": None if rate is None else round(rate, 1),
        "drain_vs_live": None if rate is None else round(rate / live, 1),
        "back_online_at": back,
    }
