"""The centre's ingest rate: raw COPY against MQTT + ``pak tracker``, on this machine.

In one run, with the same N sightings:

1. **raw COPY**: binary COPY of the N sightings into an empty hypertable
   (``benchmarks.storage_copy.raw_copy_rate``, the storage's own yardstick);
2. **pipeline, TimescaleDB**: the N sightings as gateway traffic (messages of 1 to
   ``--max-per-message`` sightings, default 20, from ``--gateways`` gateway ids, default 1000,
   each payload exactly what ``pak.wire.encode_sightings`` makes) through a private Mosquitto
   running deploy/mosquitto/pak.conf and ``pak tracker`` as a real subprocess into an empty
   hypertable;
3. **pipeline, SQLite**: the same into an SQLite file.

How the pipeline is timed (``--mode``):

* ``backlog`` (default): the tracker subscribes once (its persistent session), stops, every
  message is published into its session queue, and the tracker starts again; timed from its
  first received message to the last sighting committed. This is the tracker draining a
  backlog (after an outage, or at peak): the figure is the centre's capacity, with no
  publisher competing for this machine's two cores (gateways run on their own boxes).
* ``live``: the tracker runs while this process publishes everything as fast as paho goes;
  timed the same way. The publisher takes CPU from the tracker and the database here, so this
  is a floor, not the centre's capacity.

The result says both rates, their ratio, and whether the goals (pipeline >= 50 % of raw COPY
and >= 50,000 sightings/s) were met. Every row is counted in the database afterwards.

The tracker is measured as shipped (with the alert engine of issue 5) and with ``--no-alerts``
(the ingest pipeline alone); ``--alerts on|off`` runs only one.

    pak bench ingest [--n 200000] [--mode backlog|live|both] [--alerts both|on|off]
                     [--open-messages] [--skip-sqlite] [--skip-raw] [--tracker-arg=ARG ...]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import shutil
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from benchmarks.harness import PAK, REPO, free_port, scratch_postgres, stop_process, wait_port
from pak.broker_url import Brokers
from pak.mqtt import CENTRE_BACKOFF, make_client
from pak.types import Sighting
from pak.wire import Topics, encode_sightings

__all__ = ["make_traffic", "run"]

ROOT = "bench/v1"
SHARED_PG = "postgresql://postgres@127.0.0.1:5432/postgres"
GOAL_RATIO = 0.5
GOAL_RATE = 50_000


# --- traffic ------------------------------------------------------------------------------------

def make_traffic(n: int, *, gateways: int, max_per_message: int, seed: int,
                 open_messages: bool = False) -> tuple[list[Sighting], list[tuple[str, bytes]]]:
    """N closed sightings shaped like a city's (``benchmarks.storage_copy.make_sightings``,
    the hour before now), and the messages (topic, payload) its gateways publish for them: in
    time order, each gateway's records gathered into messages of 1..``max_per_message``
    (uniformly drawn per message). With ``open_messages`` every sighting also goes out as
    ``open`` at its first read, as gateways do (2N records for N rows)."""
    from benchmarks.storage_copy import make_sightings, with_open_messages

    rnd = random.Random(seed)
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    sightings = make_sightings(n, gateways=gateways, seed=seed, start=start)
    records = with_open_messages(sightings) if open_messages else \
        sorted(sightings, key=lambda s: s.last_seen)
    topics = Topics(ROOT)
    sent_at = datetime.now(UTC)
    pending: dict[tuple[str, str], list[Sighting]] = {}
    target: dict[tuple[str, str], int] = {}
    messages: list[tuple[str, bytes]] = []

    def emit(key: tuple[str, str]) -> None:
        gid, sid = key
        messages.append((topics.sightings(gid), encode_sightings(gid, sid, pending.pop(key),
                                                                 sent_at)))
        target[key] = rnd.randint(1, max_per_message)

    for s in records:
        key = (s.gateway_id, s.spool_id)
        pending.setdefault(key, []).append(s)
        if len(pending[key]) >= target.setdefault(key, rnd.randint(1, max_per_message)):
            emit(key)
    for key in list(pending):
        emit(key)
    return sightings, messages


# --- services -----------------------------------------------------------------------------------

class Broker:
    """A private Mosquitto with deploy/mosquitto/pak.conf (own listener and folders)."""

    def __init__(self, work: Path) -> None:
        self.work = work
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        keep = [ln for ln in (REPO / "deploy/mosquitto/pak.conf").read_text().splitlines()
                if not ln.strip().startswith(("listener", "persistence_location", "log_dest",
                                               "password_file", "acl_file", "allow_anonymous"))]
        conf = self.work / "mosquitto.conf"
        conf.write_text("\n".join([f"listener {self.port} 127.0.0.1", "allow_anonymous true",
                                   f"persistence_location {self.work}/",
                                   f"log_dest file {self.work}/mosquitto.log", *keep, ""]))
        self.proc = subprocess.Popen(["mosquitto", "-c", str(conf)], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        wait_port(self.port)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)


class Tracker:
    """``pak tracker`` as a subprocess, watched through its /metrics."""

    def __init__(self, work: Path, mqtt_url: str, db: str, extra: Sequence[str],
                 index: int = 0) -> None:
        self.metrics_port = free_port()
        self.log = work / f"tracker-{index}.log"
        self.cmd = [*PAK, "tracker", "--mqtt", mqtt_url, "--db", db, "--topic-root", ROOT,
                    "--client-id", f"bench-tracker-{index}",
                    "--metrics-listen", f"127.0.0.1:{self.metrics_port}",
                    "--log-level", "warning", *extra]
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with open(self.log, "ab") as fh:
            self.proc = subprocess.Popen(self.cmd, stdout=subprocess.DEVNULL, stderr=fh,
                                         cwd=REPO)
        deadline = time.monotonic() + 60
        while True:  # up when /metrics answers and the broker connection is made
            with contextlib.suppress(OSError):
                if self.metric("pak_ingest_mqtt_connected") == 1:
                    time.sleep(0.2)  # the SUBACK follows the CONNACK
                    return
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"pak tracker did not start: {self.log.read_text()[-2000:]}")
            time.sleep(0.05)

    def metric(self, name: str) -> float:
        """The sum of a metric's samples (over its labels), 0 when absent."""
        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        total = 0.0
        with urllib.request.urlopen(url, timeout=5) as resp:
            for line in resp.read().decode().splitlines():
                if line.startswith((name + " ", name + "{")):
                    total += float(line.rsplit(" ", 1)[1])
        return total

    def cpu_seconds(self) -> float:
        """User + system CPU time the process has used so far (Linux /proc): per-row CPU cost
        is what a loaded machine's noise changes least."""
        if self.proc is None:
            return 0.0
        try:
            fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return 0.0
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        if self.proc:
            stop_process(self.proc, 60, kill_wait=10)


def _publish_all(port: int, messages: Sequence[tuple[str, bytes]]) -> float:
    """Publish at QoS 1 as fast as paho goes; seconds until the broker acked the last."""
    c = make_client(Brokers.parse(f"mqtt://127.0.0.1:{port}"), backoff=CENTRE_BACKOFF,
                    client_id="bench-gateways")
    c.max_inflight_messages_set(1000)
    c.connect_first()
    c.loop_start()
    t0 = time.perf_counter()
    infos = [c.publish(topic, payload, qos=1) for topic, payload in messages]
    for info in infos:
        info.wait_for_publish(120)
    took = time.perf_counter() - t0
    c.disconnect()
    c.loop_stop()
    return took


def _pipeline(db: str, messages: Sequence[tuple[str, bytes]], n: int, records: int, mode: str,
              work: Path, tracker_args: Sequence[str], trackers: int = 1) -> dict[str, Any]:
    """Run the traffic through a private broker and ``trackers`` ``pak tracker`` processes (one
    shared subscription) into ``db``; time it from the first received message until every
    record is received, committed and acked (/metrics polled every 0.1 s: finer polling costs
    the trackers CPU)."""
    run_dir = Path(tempfile.mkdtemp(prefix="run-", dir=work))
    os.chmod(run_dir, 0o777)
    broker = Broker(run_dir)
    broker.start()
    procs = [Tracker(run_dir, f"mqtt://127.0.0.1:{broker.port}", db,
                     [*tracker_args, *([] if i == 0 else ["--no-migrate"])], i)
             for i in range(trackers)]
    out: dict[str, Any] = {"mode": mode, "trackers": trackers}

    def total(name: str) -> float:
        return sum(t.metric(name) for t in procs)

    try:
        for t in procs:  # migrates, subscribes: the persistent sessions exist from here
            t.start()
        if mode == "backlog":
            for t in procs:
                t.stop()
            out["publish_s"] = round(_publish_all(broker.port, messages), 3)
            for t in procs:
                t.start()
        else:
            import threading

            threading.Thread(target=_publish_all, args=(broker.port, messages),
                             daemon=True).start()
        t_first = t_last = None
        cpu_first = cpu_last = 0.0
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            now = time.perf_counter()
            got = total("pak_ingest_sightings_received_total")
            if t_first is None and got > 0:
                t_first = now
                cpu_first = sum(t.cpu_seconds() for t in procs)
            if got >= records and total("pak_ingest_pending_messages") == 0:
                t_last = now
                cpu_last = sum(t.cpu_seconds() for t in procs)
                break
            time.sleep(0.1)
        if t_first is None or t_last is None:
            raise RuntimeError("the pipeline did not store every sighting in 10 minutes")
        took = t_last - t_first
        out.update({
            "seconds": round(took, 3),
            "rows_per_s": round(n / took),
            "records_per_s": round(records / took),
            "messages_per_s": round(len(messages) / took),
            # CPU of the tracker processes (every thread) per stored row, first to last
            "tracker_cpu_us_per_row": round((cpu_last - cpu_first) / n * 1e6, 1),
            "db_retries": total("pak_ingest_db_retries_total"),
            "dead_letters": total("pak_ingest_dead_letters_total"),
        })
    finally:
        for t in procs:
            t.stop()
        broker.stop()
    from tracker.storage import open_storage

    with open_storage(db) as storage:
        out["rows_in_table"] = storage.count_sightings()
    if out["rows_in_table"] != n:
        raise RuntimeError(f"expected {n} rows, the table holds {out['rows_in_table']}")
    return out


# --- the benchmark ------------------------------------------------------------------------------

def _parse(argv: Sequence[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="pak bench ingest", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=200_000, help="sightings (default 200000)")
    p.add_argument("--gateways", type=int, default=1000, help="gateway ids (default 1000)")
    p.add_argument("--max-per-message", type=int, default=20,
                   help="sightings per message: 1..this, uniformly (default 20)")
    p.add_argument("--mode", choices=("backlog", "live", "both"), default="backlog")
    p.add_argument("--pg", default=SHARED_PG,
                   help="PostgreSQL with timescaledb; scratch databases are made there")
    p.add_argument("--skip-raw", action="store_true", help="no raw COPY measurement")
    p.add_argument("--skip-sqlite", action="store_true", help="no SQLite pipeline run")
    p.add_argument("--open-messages", action="store_true",
                   help="also send every sighting's open form first (2N records, N rows)")
    p.add_argument("--alerts", choices=("both", "on", "off"), default="both",
                   help="run pak tracker with its alert engine (on), without (off: the ingest "
                        "pipeline alone), or both (default); SQLite runs the last of these")
    p.add_argument("--trackers", type=int, default=1,
                   help="pak tracker processes sharing the subscription (TimescaleDB runs; "
                        "default 1)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--tracker-arg", action="append", default=[], metavar="ARG",
                   help="extra argument for pak tracker (repeat), e.g. --tracker-arg=--batch-size"
                        " --tracker-arg=10000")
    return p.parse_args(list(argv))


def run(argv: Sequence[str]) -> dict[str, Any]:
    args = _parse(argv)
    if shutil.which("mosquitto") is None:
        raise RuntimeError("mosquitto is not installed (deploy/setup-services.sh)")
    t0 = time.perf_counter()
    sightings, messages = make_traffic(args.n, gateways=args.gateways,
                                       max_per_message=args.max_per_message, seed=args.seed,
                                       open_messages=args.open_messages)
    records = args.n * (2 if args.open_messages else 1)
    result: dict[str, Any] = {
        "n": args.n, "gateways": args.gateways, "messages": len(messages),
        "open_messages": args.open_messages,
        "records_per_message": round(records / len(messages), 2),
        "payload_bytes_avg": round(sum(len(p) for _, p in messages) / len(messages)),
        "tracker_args": args.tracker_arg, "trackers": args.trackers, "cpus": os.cpu_count(),
        "traffic_build_s": round(time.perf_counter() - t0, 2),
    }
    work = Path(tempfile.mkdtemp(prefix="pak-bench-ingest-"))
    os.chmod(work, 0o777)  # mosquitto may drop privileges to its own user
    modes = ["backlog", "live"] if args.mode == "both" else [args.mode]
    # The tracker as shipped runs the alert engine's hook and timer checks (issue 5); the
    # ingest pipeline alone is the same tracker with --no-alerts. Both are measured.
    with_alerts: tuple[str, list[str]] = ("", [])
    without: tuple[str, list[str]] = ("_no_alerts", ["--no-alerts"])
    variants = {"both": [with_alerts, without], "on": [with_alerts],
                "off": [without]}[args.alerts]
    try:
        if not args.skip_raw:
            from benchmarks.storage_copy import raw_copy_rate

            with scratch_postgres(args.pg) as db:
                raw = raw_copy_rate(db, sightings)
            result["raw_copy_rows_per_s"] = round(float(
                raw["rows_per_s"] if isinstance(raw, dict) else raw))
        for mode in modes:
            for suffix, extra in variants:
                with scratch_postgres(args.pg) as db:
                    r = _pipeline(db, messages, args.n, records, mode, work,
                                  [*extra, *args.tracker_arg], args.trackers)
                result[f"pipeline_timescale_{mode}{suffix}"] = r
                if "raw_copy_rows_per_s" in result:
                    result[f"ratio_{mode}{suffix}"] = round(
                        r["rows_per_s"] / result["raw_copy_rows_per_s"], 3)
        if not args.skip_sqlite:
            suffix, extra = variants[-1]
            r = _pipeline(f"sqlite://{work}/bench.db", messages, args.n, records, modes[0],
                          work, [*extra, *args.tracker_arg])
            result[f"pipeline_sqlite_{modes[0]}{suffix}"] = r
    finally:
        shutil.rmtree(work, ignore_errors=True)
    goals: dict[str, Any] = {}
    for suffix, _ in variants:
        main = result.get(f"pipeline_timescale_{modes[0]}{suffix}", {})
        ratio = result.get(f"ratio_{modes[0]}{suffix}")
        goals[f"half_of_raw_copy{suffix}"] = None if ratio is None else ratio >= GOAL_RATIO
        goals[f"at_least_50k_per_s{suffix}"] = main.get("rows_per_s", 0) >= GOAL_RATE
    result["goal"] = goals
    return result
