"""``pak sim city``: a simulated city's traffic over MQTT, and its readers and fleet as files.

    pak sim city --mqtt mqtt://127.0.0.1:1883 --vehicles 2000 --speed 10
    pak sim city --mqtt ... --rate 5000 --duration 60          # load: 5,000 sightings/s
    pak sim city --export-readers readers.json --export-fleet fleet.json   # no traffic
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from firmware_sim.city import City
from pak.logs import event, setup_logging

__all__ = ["main"]

log = logging.getLogger("pak.sim.city")

_KINDS = ("e-bike", "e-bike", "e-bike", "motorbike", "scooter")
_COLOURS = ("black", "white", "red", "blue", "silver", "green", "yellow")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="pak sim city", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    g = p.add_argument_group("the city")
    g.add_argument("--rows", type=int, default=20, help="street grid rows (default 20)")
    g.add_argument("--cols", type=int, default=20, help="street grid columns (default 20)")
    g.add_argument("--spacing-m", type=float, default=400.0, help="block size in metres")
    g.add_argument("--reader-fraction", type=float, default=0.3,
                   help="share of intersections with a reader (default 0.3)")
    g.add_argument("--vehicles", type=int, default=1000, help="vehicles (default 1000)")
    g.add_argument("--readers-per-gateway", type=int, default=1)
    g.add_argument("--center", default="30.2741,120.1551", metavar="LAT,LON")
    g.add_argument("--seed", type=int, default=1)
    g.add_argument("--detect-p", type=float, default=0.97,
                   help="probability that a reader hears a passing tag")
    t = p.add_argument_group("traffic")
    t.add_argument("--mqtt", metavar="URL", help="publish the readers' sightings to this broker")
    t.add_argument("--mqtt-protocol", choices=("5", "3.1.1"), default="5")
    t.add_argument("--topic-root", default="pak/v1")
    t.add_argument("--speed", type=float, default=1.0,
                   help="city clock speed: 1 real time, 10 ten times faster (default 1)")
    t.add_argument("--rate", type=float, help="instead: this many sightings per second")
    t.add_argument("--batch", type=int, default=1,
                   help="closed sightings per message and gateway (open ones go at once)")
    t.add_argument("--duration", type=float, metavar="S", help="stop after S seconds")
    f = p.add_argument_group("files")
    f.add_argument("--export-readers", type=Path, metavar="FILE",
                   help="write the readers (id, gateway, name, latitude, longitude) as JSON")
    f.add_argument("--export-fleet", type=Path, metavar="FILE",
                   help="write the vehicles (id, plate, tag, key tag, kind, colour) as JSON")
    f.add_argument("--export-streets", type=Path, metavar="FILE",
                   help="write the street grid as GeoJSON (a base map: pak api --roads-geojson)")
    p.add_argument("--log-level", default="info")
    p.add_argument("--log-format", default="text", choices=("text", "json"))
    return p


def fleet_json(city: City) -> list[dict[str, Any]]:
    out = []
    for i, v in enumerate(city.fleet):
        out.append({"vehicle_id": f"veh-{i:06d}", "plate": f"A{i:05d}",
                    "kind": _KINDS[i % len(_KINDS)], "colour": _COLOURS[i % len(_COLOURS)],
                    "owner": f"owner {i}", "tag_id": v.tag_id, "key_tag_id": v.key_tag_id})
    return out


def readers_json(city: City) -> list[dict[str, Any]]:
    return [{"reader_id": r.reader_id, "gateway_id": r.gateway_id, "name": r.name,
             "latitude": r.latitude, "longitude": r.longitude,
             # four-antenna stations: 1-4 face east, south, west, north
             "bearings": {"1": 90.0, "2": 180.0, "3": 270.0, "4": 0.0}} for r in city.readers]


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    setup_logging(args.log_level, args.log_format)
    try:
        lat, lon = (float(x) for x in args.center.split(","))
    except ValueError:
        _parser().error("--center: LAT,LON")
    city = City(rows=args.rows, cols=args.cols, spacing_m=args.spacing_m,
                reader_fraction=args.reader_fraction, vehicles=args.vehicles, seed=args.seed,
                center=(lat, lon), detect_p=args.detect_p,
                readers_per_gateway=args.readers_per_gateway)
    if args.export_readers:
        args.export_readers.write_text(json.dumps(readers_json(city), indent=1))
    if args.export_fleet:
        args.export_fleet.write_text(json.dumps(fleet_json(city), indent=1))
    if args.export_streets:
        args.export_streets.write_text(json.dumps(city.streets_geojson()))
    if not args.mqtt:
        if not (args.export_readers or args.export_fleet or args.export_streets):
            _parser().error("nothing to do: give --mqtt for traffic, or "
                            "--export-readers/-fleet/-streets")
        return 0
    from firmware_sim.city_publisher import CityPublisher

    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    pub = CityPublisher(city, args.mqtt, topic_root=args.topic_root, protocol=args.mqtt_protocol,
                        speed=args.speed, rate=args.rate, batch=args.batch)
    stats = pub.run(stop, args.duration)
    event(log, logging.INFO, "city_stopped", sightings=stats.sightings, messages=stats.messages,
          passages=stats.passages, missed=stats.missed)
    return 0
