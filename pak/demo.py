"""``pak demo``: the whole pipeline on embedded defaults, nothing to install.

It starts real processes, wired as production would wire them:

* an embedded MQTT broker (amqtt; the demo's only stand-in: production uses Mosquitto),
* ``pak tracker`` and ``pak api`` on one SQLite file,
* four readers with their gateways: an R2000, a Chafon and an EM4100 reader, each a
  ``pak sim reader`` on a pseudo-terminal read by a ``pak gateway``, and an MR7901 station
  that dials in to its gateway's TCP server,
* ``pak sim city``: a few hundred vehicles moving through a grid of readers, published as
  those readers' gateways, so the map, trails and predictions have traffic,
* one vehicle of the city on the watchlist, so stolen-vehicle alerts appear.

Logs of every process go to ``<data-dir>/logs``; a status line is printed every few seconds;
Ctrl-C stops everything. This module starts processes only: it imports no component.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

__all__ = ["main"]

STOLEN_CASE = "DEMO-2026-001"
STATION_ID = "79010001"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _port_busy(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


@dataclass
class Child:
    name: str
    argv: list[str]
    log: Path
    proc: subprocess.Popen[bytes] | None = None
    fh: IO[bytes] | None = field(default=None, repr=False)

    def start(self) -> None:
        self.fh = self.log.open("ab")
        self.proc = subprocess.Popen(self.argv, stdout=self.fh, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        if self.alive():
            assert self.proc is not None
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(8)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        if self.fh:
            self.fh.close()

    def tail(self, n: int = 8) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""


def _pak(*args: str) -> list[str]:
    return [sys.executable, "-m", "pak.cli", *args]


def _run(argv: list[str], what: str) -> str:
    """Run a pak command; its stdout (``pak users add`` prints a new secret there)."""
    r = subprocess.run(argv, capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"pak demo: {what} failed:\n{r.stderr or r.stdout}")
    return r.stdout.strip()


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="pak demo", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", type=Path, default=Path("demo-data"),
                   help="where the database, spools, ptys and logs go (default ./demo-data)")
    p.add_argument("--keep", action="store_true", help="keep the data of an earlier run")
    p.add_argument("--port", type=int, default=8080, help="web console port (default 8080)")
    p.add_argument("--vehicles", type=int, default=20000, help="vehicles in the city")
    p.add_argument("--speed", type=float, default=1.0,
                   help="city clock speed (default 1: real time; faster compresses travel "
                        "times, and the clone check then flags impossible speeds)")
    p.add_argument("--duration", type=float, help="stop after this many seconds")
    return p


def _demo_readers(city_readers: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Four more readers, for the real serial/TCP gateways, placed beside the city's."""
    lat0 = min(r["latitude"] for r in city_readers)
    lon0 = min(r["longitude"] for r in city_readers)
    names = [("rd-r2000", "North Gate (R2000)"), ("rd-chafon", "Bridge (Chafon)"),
             ("rd-em4100", "Car park (EM4100)"), (STATION_ID, "Market square (MR7901)")]
    return [{"reader_id": rid, "name": name, "latitude": round(lat0 - 0.004, 6),
             "longitude": round(lon0 + 0.006 * i, 6),
             "bearings": {"1": 90.0, "2": 180.0, "3": 270.0, "4": 0.0}}
            for i, (rid, name) in enumerate(names)]


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    data: Path = args.data_dir.resolve()
    if data.exists() and not args.keep:
        shutil.rmtree(data)
    logs = data / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    if _port_busy(args.port):
        raise SystemExit(f"pak demo: port {args.port} is taken; choose another with --port")
    db = f"sqlite:///{data / 'pak.sqlite3'}"
    broker_port = _free_port()
    mqtt = f"mqtt://127.0.0.1:{broker_port}"
    proto = ("--mqtt-protocol", "3.1.1")  # amqtt speaks MQTT 3.1.1 only

    print(f"pak demo: data in {data}", flush=True)
    # registers: the city's readers and fleet, plus the four demo readers
    _run(_pak("sim", "city", "--vehicles", str(args.vehicles),
              "--export-readers", str(data / "city-readers.json"),
              "--export-fleet", str(data / "fleet.json"),
              "--export-streets", str(data / "streets.geojson")), "exporting the city")
    city_readers = json.loads((data / "city-readers.json").read_text())
    (data / "readers.json").write_text(json.dumps(city_readers + _demo_readers(city_readers)))
    fleet = json.loads((data / "fleet.json").read_text())
    stolen = fleet[0]["tag_id"]
    _run(_pak("db", "migrate", "--db", db), "creating the database")
    # its own keys: the centre signs receipts, alerts and watchlist changes, gateways check
    _run(_pak("keys", "init", "--dir", str(data / "keys")), "making the signing keys")
    sign = ("--signing-key", str(data / "keys" / "centre.key"))
    centre = ("--centre-key", str(data / "keys" / "centre.pub"))
    _run(_pak("db", "import", "--db", db, "--readers", str(data / "readers.json"),
              "--fleet", str(data / "fleet.json")), "importing readers and fleet")
    _run(_pak("watchlist", "add", stolen, "--db", db, "--case", STOLEN_CASE,
              "--reporter", "demo", "--note", f"{fleet[0]['colour']} {fleet[0]['kind']}, "
              f"plate {fleet[0]['plate']}"), "reporting the stolen vehicle")
    # no default account: the demo makes its admin and an officer for the console (random
    # passwords, printed below) and a key for its own status line that may read the
    # statistics and nothing else
    password = _run(_pak("users", "add", "admin", "--role", "admin", "--db", db),
                    "creating the admin account")
    officer_password = _run(_pak("users", "add", "officer", "--role", "officer", "--db", db),
                            "creating the officer account")
    status_key = _run(_pak("users", "add", "demo-status", "--role", "service", "--api-key",
                           "--scope", "stats:read", "--db", db), "creating the status key")

    children: list[Child] = []

    def child(name: str, argv: list[str]) -> None:
        c = Child(name, argv, logs / f"{name}.log")
        c.start()
        children.append(c)

    child("broker", [sys.executable, "-m", "pak.embedded_broker", "--port", str(broker_port)])
    deadline = time.monotonic() + 20
    while not _port_busy(broker_port):
        if time.monotonic() > deadline:
            raise SystemExit("pak demo: the embedded broker did not start")
        time.sleep(0.1)
    child("tracker", _pak("tracker", "--mqtt", mqtt, *proto, "--db", db, "--batch-max-age-ms",
                          "200", "--gateway-check-s", "5", *sign))
    child("api", _pak("api", "--db", db, "--mqtt", mqtt, *proto, "--port", str(args.port),
                      "--roads-geojson", str(data / "streets.geojson"), *sign))
    gw_common = ["--mqtt", mqtt, *proto, "--health-every", "10", "--republish-after", "5",
                 *centre]
    for driver, extra in (("r2000", ["--random", "5", "--rate", "4", "--dwell", "6"]),
                          ("chafon", ["--random", "5", "--rate", "3", "--dwell", "8"]),
                          ("em4100", ["--random", "4", "--rate", "5", "--dwell", "5"])):
        tty = data / f"tty-{driver}"
        child(f"sim-{driver}", _pak("sim", "reader", "--driver", driver, "--link", str(tty),
                                    *extra))
        child(f"gateway-{driver}", _pak(
            "gateway", "--serial", str(tty), "--driver", driver, "--gateway-id",
            f"gw-{driver}", "--reader-id", f"rd-{driver}", "--spool",
            str(data / f"spool-{driver}"), *gw_common))
    station_port = _free_port()
    child("gateway-mr7901", _pak(
        "gateway", "--listen", f"tcp://127.0.0.1:{station_port}", "--driver", "mr7901",
        "--gateway-id", "gw-mr7901", "--allow-station", STATION_ID, "--spool",
        str(data / "spool-mr7901"), "--exit-after", "20", *gw_common))
    child("sim-mr7901", _pak("sim", "reader", "--driver", "mr7901", "--connect",
                             f"127.0.0.1:{station_port}", "--device-id", STATION_ID,
                             "--tag", f"{stolen}:1", "--random", "6", "--rate", "1",
                             "--dwell", "15", "--antennas", "4"))
    child("city", _pak("sim", "city", "--mqtt", mqtt, "--mqtt-protocol", "3.1.1",
                       "--vehicles", str(args.vehicles), "--speed", str(args.speed)))

    url = f"http://127.0.0.1:{args.port}/"
    print(f"pak demo: web console at {url}  (stolen tag {stolen}, case {STOLEN_CASE})",
          flush=True)
    print(f"pak demo: 登录 sign in as officer, password {officer_password}  (alerts, trails, "
          "watchlist)", flush=True)
    print(f"pak demo: 登录 sign in as admin, password {password}  (accounts; more: "
          f"pak users add NAME --role officer --db {db})", flush=True)
    print("pak demo: Ctrl-C stops everything; logs in " + str(logs), flush=True)
    stop = False

    def on_signal(*_: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    started = time.monotonic()
    status = 1
    try:
        while not stop:
            for c in children:
                if not c.alive():
                    print(f"pak demo: {c.name} stopped unexpectedly; its last lines:\n"
                          f"{c.tail()}", file=sys.stderr, flush=True)
                    return 1
            _print_status(args.port, status_key)
            if args.duration and time.monotonic() - started >= args.duration:
                break
            for _ in range(100):
                if stop:
                    break
                time.sleep(0.1)
        status = 0
    finally:
        for c in reversed(children):
            c.stop()
        print("pak demo: stopped", flush=True)
    return status


def _print_status(port: int, key: str) -> None:
    req = urllib.request.Request(f"http://127.0.0.1:{port}/api/v1/stats",
                                 headers={"Authorization": f"Bearer {key}"})
    try:
        with urllib.request.urlopen(req, timeout=2) as r:
            s = json.loads(r.read())
        print(f"pak demo: {s['sightings']} sightings stored, {s['gateways_online']}/"
              f"{s['gateways']} gateways online, {s['alerts_open']} open alerts, "
              f"{s['dead_letters']} dead letters", flush=True)
    except OSError:
        print("pak demo: waiting for the API…", flush=True)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    raise SystemExit(main())
