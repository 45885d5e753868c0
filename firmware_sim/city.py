"""A simulated city: a street grid, readers at some intersections, vehicles making trips.

It is the ground truth the tracker is measured against: every vehicle's route and the exact
times it passed each reader are known, so trails, "who passed here" and next-reader prediction
can be checked, and it generates realistic sighting traffic for load tests.

The model is deliberately simple but not random noise: each vehicle has a home and a few
regular destinations (work, school, shops) and travels between them along a shortest path of
the grid (turn order chosen per trip, so routes vary), at an e-bike's speed with per-trip
variation; a reader hears a passing tag with a configurable probability (missed reads
happen); a vehicle waiting at a reader produces a dwell of a few seconds.
"""

from __future__ import annotations

import heapq
import itertools
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

__all__ = ["City", "CityReader", "Passage", "Vehicle", "VehicleTrip"]

# metres per degree of latitude (spherical Earth, good to 0.5 % for a city)
_M_PER_DEG = 111_195.0


@dataclass(frozen=True, slots=True)
class CityReader:
    reader_id: str
    gateway_id: str
    node: tuple[int, int]
    latitude: float
    longitude: float
    name: str


@dataclass(frozen=True, slots=True)
class Vehicle:
    tag_id: str  # 8 hex digits: an MR7901 active tag
    key_tag_id: str
    home: tuple[int, int]
    places: tuple[tuple[int, int], ...]
    speed_kmh: float


@dataclass(frozen=True, slots=True)
class Passage:
    """A vehicle passing a reader: ground truth, before detection losses."""

    at: datetime
    tag_id: str
    reader_id: str
    dwell_s: float
    heard: bool  # whether the reader heard it (False: a missed read)
    antennas: tuple[int, ...]  # approach antenna, exit antenna (1-4 = E, S, W, N)


@dataclass(frozen=True, slots=True)
class VehicleTrip:
    tag_id: str
    start: datetime
    nodes: tuple[tuple[int, int], ...]
    passages: tuple[Passage, ...]


@dataclass
class City:
    """A ``rows`` x ``cols`` street grid, ``spacing_m`` apart, around ``center``."""

    rows: int = 20
    cols: int = 20
    spacing_m: float = 400.0
    reader_fraction: float = 0.3
    vehicles: int = 1000
    seed: int = 1
    center: tuple[float, float] = (30.2741, 120.1551)
    detect_p: float = 0.97
    readers_per_gateway: int = 1
    readers: list[CityReader] = field(init=False)
    fleet: list[Vehicle] = field(init=False)

    def __post_init__(self) -> None:
        rng = random.Random(self.seed)
        nodes = [(r, c) for r in range(self.rows) for c in range(self.cols)]
        n_readers = max(2, round(len(nodes) * self.reader_fraction))
        chosen = sorted(rng.sample(nodes, n_readers))
        self.readers = []
        for i, node in enumerate(chosen):
            lat, lon = self.position(node)
            gw = i // max(1, self.readers_per_gateway)
            self.readers.append(CityReader(f"rd-{i:04d}", f"gw-{gw:04d}", node, lat, lon,
                                           f"Intersection {node[0]}-{node[1]}"))
        self._reader_at = {r.node: r for r in self.readers}
        self.fleet = []
        for i in range(self.vehicles):
            home = rng.choice(nodes)
            places = tuple(rng.choice(nodes) for _ in range(rng.randint(1, 3)))
            # ids: deterministic, distinct, 8 hex digits
            tag = f"{(0x30000000 + i * 2) & 0xFFFFFFFF:08X}"
            key = f"{(0x30000001 + i * 2) & 0xFFFFFFFF:08X}"
            self.fleet.append(Vehicle(tag, key, home, places, rng.uniform(12.0, 28.0)))

    # --- geometry ------------------------------------------------------------------------
    def position(self, node: tuple[int, int]) -> tuple[float, float]:
        lat0, lon0 = self.center
        dy = (node[0] - self.rows / 2) * self.spacing_m
        dx = (node[1] - self.cols / 2) * self.spacing_m
        lat = lat0 + dy / _M_PER_DEG
        lon = lon0 + dx / (_M_PER_DEG * math.cos(math.radians(lat0)))
        return round(lat, 6), round(lon, 6)

    def streets_geojson(self) -> dict[str, Any]:
        """The street grid as GeoJSON: one LineString per row street (east-west) and per
        column street (north-south), for a map's base layer when no tile server exists."""
        features: list[dict[str, Any]] = []
        for r in range(self.rows):
            line = [list(reversed(self.position((r, c)))) for c in range(self.cols)]
            features.append({"type": "Feature", "geometry": {"type": "LineString",
                             "coordinates": line}, "properties": {"street": f"row {r}"}})
        for c in range(self.cols):
            line = [list(reversed(self.position((r, c)))) for r in range(self.rows)]
            features.append({"type": "Feature", "geometry": {"type": "LineString",
                             "coordinates": line}, "properties": {"street": f"column {c}"}})
        return {"type": "FeatureCollection", "features": features}

    def reader_at(self, node: tuple[int, int]) -> CityReader | None:
        return self._reader_at.get(node)

    def route(self, a: tuple[int, int], b: tuple[int, int],
              rng: random.Random) -> list[tuple[int, int]]:
        """A shortest grid path from a to b; the interleaving of row and column moves is drawn
        (mostly long straight runs, as riders keep to a main road)."""
        path = [a]
        r, c = a
        dr = (b[0] > r) - (b[0] < r)
        dc = (b[1] > c) - (b[1] < c)
        while (r, c) != b:
            left_r, left_c = abs(b[0] - r), abs(b[1] - c)
            if left_r and left_c:
                # keep the current direction with high probability
                go_rows = rng.random() < (0.85 if len(path) > 1 and path[-2][1] == c else 0.15)
            else:
                go_rows = bool(left_r)
            if go_rows:
                r += dr
            else:
                c += dc
            path.append((r, c))
        return path

    @staticmethod
    def _antenna(frm: tuple[int, int], to: tuple[int, int]) -> int:
        """The antenna facing the approach from ``frm`` to ``to`` (1 E, 2 S, 3 W, 4 N);
        rows grow northwards, columns eastwards."""
        if frm[1] > to[1]:
            return 1  # came from the east
        if frm[1] < to[1]:
            return 3
        if frm[0] < to[0]:
            return 2  # came from the south
        return 4

    def trip(self, v: Vehicle, a: tuple[int, int], b: tuple[int, int], start: datetime,
             rng: random.Random) -> VehicleTrip:
        nodes = self.route(a, b, rng)
        speed = v.speed_kmh * rng.uniform(0.85, 1.15) / 3.6  # m/s
        t = start
        passages = []
        for i, node in enumerate(nodes):
            if i:
                leg = self.spacing_m / speed
                t += timedelta(seconds=leg + rng.uniform(0, 20))  # lights and traffic
            reader = self._reader_at.get(node)
            if reader is None:
                continue
            came = self._antenna(nodes[i - 1], node) if i else None
            went = None
            if i + 1 < len(nodes):
                # the exit antenna faces the approach the vehicle leaves by
                went = {1: 3, 3: 1, 2: 4, 4: 2}[self._antenna(node, nodes[i + 1])]
            antennas = tuple(x for x in (came, went) if x is not None)
            antennas = tuple(dict.fromkeys(antennas))
            dwell = rng.uniform(1.0, 6.0)
            passages.append(Passage(t, v.tag_id, reader.reader_id, dwell,
                                    rng.random() < self.detect_p, antennas))
            t += timedelta(seconds=dwell)
        return VehicleTrip(v.tag_id, start, tuple(nodes), tuple(passages))

    def day_trips(self, day: datetime, rng: random.Random | None = None) -> list[VehicleTrip]:
        """Every vehicle's trips of one day: home -> places -> home, departures spread over
        the morning and afternoon peaks."""
        rng = rng or random.Random(self.seed * 7919 + day.toordinal())
        out = []
        for v in self.fleet:
            if rng.random() < 0.15:
                continue  # stays home today
            stops = [v.home, *rng.sample(v.places, k=rng.randint(1, len(v.places))), v.home]
            t = day + timedelta(hours=rng.gauss(8.0, 1.0))
            for a, b in itertools.pairwise(stops):
                if a == b:
                    continue
                trip = self.trip(v, a, b, t, rng)
                out.append(trip)
                end = trip.passages[-1].at if trip.passages else t + timedelta(minutes=20)
                t = max(end, t) + timedelta(hours=rng.uniform(1.0, 8.0))
        return out

    def passages(self, start: datetime, days: int = 1) -> Iterator[Passage]:
        """Every passage of ``days`` days from ``start``, in time order."""
        for d in range(days):
            trips = self.day_trips(start + timedelta(days=d))
            yield from heapq.merge(*(t.passages for t in trips), key=lambda p: p.at)
