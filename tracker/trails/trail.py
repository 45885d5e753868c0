"""Trails: a tag's sightings as passes, trips and hops, with implausible hops flagged.

Pure functions over sightings and reader positions; the API and ``pak trail`` call
:func:`build_trail` on what storage returns. Nothing is hidden: a hop faster than any vehicle
(a cloned tag, or a reader's clock that is wrong) is kept and marked ``implausible``.

* consecutive sightings at one reader merge into one :class:`Pass` (a vehicle waiting at a
  red light is one pass, even if the gateway split it at ``max_duration``);
* a gap longer than ``trip_gap`` between passes starts a new :class:`Trip`;
* each :class:`Hop` between consecutive passes of a trip carries distance (great-circle, or a
  road distance function when one is configured), travel time, implied speed and bearing.
"""

from __future__ import annotations

import csv
import io
import itertools
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from pak.timefmt import format_time
from pak.types import Sighting, SightingId
from tracker.trails.geo import bearing_deg, compass, haversine_m

__all__ = [
    "TRAIL_CSV_COLUMNS",
    "Hop",
    "Pass",
    "Position",
    "Trail",
    "Trip",
    "build_trail",
    "direction_of_travel",
    "merge_passes",
    "split_trips",
    "trail_csv",
    "trail_geojson",
    "trail_json",
]

#: Antenna -> approach it faces, for four-antenna stations (MR7901: 1-4 = E, S, W, N).
DEFAULT_ANTENNA_BEARINGS: Mapping[int, float] = {1: 90.0, 2: 180.0, 3: 270.0, 4: 0.0}


class Position(Protocol):
    """What a trail needs of a reader: where it is, and which way its antennas face."""

    @property
    def latitude(self) -> float | None: ...

    @property
    def longitude(self) -> float | None: ...


DistanceFn = Callable[[str, str], float | None]


@dataclass(frozen=True, slots=True)
class Pass:
    """One stay of the tag at one reader (consecutive sightings there merged)."""

    reader_id: str
    first_seen: datetime
    last_seen: datetime
    reads: int
    antennas: tuple[int, ...]
    sightings: tuple[SightingId, ...]
    rssi_max_dbm: float | None = None
    flags: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Hop:
    """The move between two consecutive passes of one trip."""

    from_reader: str
    to_reader: str
    depart: datetime
    arrive: datetime
    distance_m: float | None
    travel_s: float
    speed_kmh: float | None
    bearing_deg: float | None
    implausible: bool
    reason: str | None = None

    @property
    def heading(self) -> str | None:
        return None if self.bearing_deg is None else compass(self.bearing_deg)


@dataclass(frozen=True, slots=True)
class Trip:
    passes: tuple[Pass, ...]
    hops: tuple[Hop, ...]

    @property
    def start(self) -> datetime:
        return self.passes[0].first_seen

    @property
    def end(self) -> datetime:
        return self.passes[-1].last_seen


@dataclass(frozen=True, slots=True)
class Trail:
    tag_id: str
    trips: tuple[Trip, ...]
    unknown_readers: tuple[str, ...] = field(default=())

    @property
    def passes(self) -> list[Pass]:
        return [p for t in self.trips for p in t.passes]

    @property
    def hops(self) -> list[Hop]:
        return [h for t in self.trips for h in t.hops]


def merge_passes(sightings: Iterable[Sighting],
                 max_gap: timedelta | None = None) -> list[Pass]:
    """Sightings in time order -> passes, consecutive sightings at one reader merged (unless
    more than ``max_gap`` apart: a vehicle back at the same reader next morning is a new
    pass, in a new trip)."""
    out: list[Pass] = []
    for s in sorted(sightings, key=lambda s: (s.first_seen, s.last_seen, s.seq)):
        prev = out[-1] if out else None
        if (prev is not None and prev.reader_id == s.reader_id
                and (max_gap is None or s.first_seen - prev.last_seen <= max_gap)):
            antennas = prev.antennas + tuple(a for a in s.antennas if a not in prev.antennas)
            rssi = [x for x in (prev.rssi_max_dbm, s.rssi_max_dbm) if x is not None]
            out[-1] = Pass(
                prev.reader_id, prev.first_seen, max(prev.last_seen, s.last_seen),
                prev.reads + s.reads, antennas, (*prev.sightings, s.id),
                max(rssi) if rssi else None, tuple(sorted(set(prev.flags) | set(s.flags))),
            )
        else:
            out.append(Pass(s.reader_id, s.first_seen, s.last_seen, s.reads, s.antennas,
                            (s.id,), s.rssi_max_dbm, s.flags))
    return out


def split_trips(passes: Sequence[Pass], trip_gap: timedelta) -> list[list[Pass]]:
    """Split time-ordered passes where the gap from one pass's end to the next one's start
    exceeds ``trip_gap``."""
    trips: list[list[Pass]] = []
    for p in passes:
        if trips and p.first_seen - trips[-1][-1].last_seen <= trip_gap:
            trips[-1].append(p)
        else:
            trips.append([p])
    return trips


def _hop(a: Pass, b: Pass, readers: Mapping[str, Position], max_speed_kmh: float,
         distance: DistanceFn | None) -> Hop:
    travel_s = (b.first_seen - a.last_seen).total_seconds()
    ra, rb = readers.get(a.reader_id), readers.get(b.reader_id)
    dist: float | None = None
    bearing: float | None = None
    if ra is not None and rb is not None and None not in (
            ra.latitude, ra.longitude, rb.latitude, rb.longitude):
        lat1, lon1 = float(ra.latitude), float(ra.longitude)  # type: ignore[arg-type]
        lat2, lon2 = float(rb.latitude), float(rb.longitude)  # type: ignore[arg-type]
        dist = haversine_m(lat1, lon1, lat2, lon2)
        bearing = bearing_deg(lat1, lon1, lat2, lon2) if dist > 0 else None
    if distance is not None:
        road = distance(a.reader_id, b.reader_id)
        if road is not None:
            dist = road
    speed: float | None = None
    implausible, reason = False, None
    if dist is not None:
        if travel_s > 0:
            speed = dist / travel_s * 3.6
            if speed > max_speed_kmh:
                implausible, reason = True, f"{speed:.0f} km/h > {max_speed_kmh:.0f} km/h"
        elif dist > 0:
            # at two different readers at once (overlapping passes): no vehicle does that
            implausible, reason = True, "at two readers at the same time"
    return Hop(a.reader_id, b.reader_id, a.last_seen, b.first_seen, dist, travel_s, speed,
               bearing, implausible, reason)


def build_trail(
    tag_id: str,
    sightings: Iterable[Sighting],
    readers: Mapping[str, Position],
    *,
    trip_gap: timedelta = timedelta(minutes=30),
    max_speed_kmh: float = 120.0,
    distance: DistanceFn | None = None,
) -> Trail:
    """A tag's trail from its sightings (any order) and the readers' positions."""
    passes = merge_passes(sightings, trip_gap)
    trips = []
    for group in split_trips(passes, trip_gap):
        hops = tuple(_hop(a, b, readers, max_speed_kmh, distance)
                     for a, b in itertools.pairwise(group))
        trips.append(Trip(tuple(group), hops))
    unknown = tuple(sorted({p.reader_id for p in passes if p.reader_id not in readers}))
    return Trail(tag_id, tuple(trips), unknown)


def direction_of_travel(antennas: Sequence[int],
                        bearings: Mapping[int, float] | None = None) -> dict[str, Any] | None:
    """Which way a vehicle went through a four-antenna station, from the order in which its
    antennas heard the tag: it arrived on the approach of the first antenna and left by the
    approach of the last. None when one antenna (or none) heard it."""
    bearings = bearings or DEFAULT_ANTENNA_BEARINGS
    known = [a for a in antennas if a in bearings]
    if len(known) < 2 or known[0] == known[-1]:
        return None
    came, went = bearings[known[0]], bearings[known[-1]]
    # leaving by the approach facing `went` means heading towards that bearing
    return {"from": compass(came), "towards": compass(went), "heading_deg": went}


def _iso(t: datetime) -> str:
    return format_time(t)


def _lonlat(readers: Mapping[str, Position], reader_id: str) -> list[float] | None:
    r = readers.get(reader_id)
    if r is None or r.latitude is None or r.longitude is None:
        return None
    return [float(r.longitude), float(r.latitude)]  # GeoJSON order: longitude, latitude


def trail_geojson(trail: Trail, readers: Mapping[str, Position]) -> dict[str, Any]:
    """GeoJSON FeatureCollection: a Point per pass (its reader and times) and a LineString per
    hop (``speed_kmh``, ``implausible``). A reader without a position has no Point and its
    hops no line (:attr:`Trail.unknown_readers` names it)."""
    features: list[dict[str, Any]] = []
    for i, trip in enumerate(trail.trips):
        for p in trip.passes:
            point = _lonlat(readers, p.reader_id)
            if point is None:
                continue
            features.append({
                "type": "Feature",
                "geometry": {"type": "Point", "coordinates": point},
                "properties": {"kind": "pass", "trip": i, "reader_id": p.reader_id,
                               "first_seen": _iso(p.first_seen), "last_seen": _iso(p.last_seen),
                               "reads": p.reads, "antennas": list(p.antennas),
                               "direction": direction_of_travel(p.antennas)},
            })
        for h in trip.hops:
            ends = _lonlat(readers, h.from_reader), _lonlat(readers, h.to_reader)
            if ends[0] is None or ends[1] is None:
                continue
            features.append({
                "type": "Feature",
                "geometry": {"type": "LineString", "coordinates": list(ends)},
                "properties": {"kind": "hop", "trip": i, "tag_id": trail.tag_id,
                               "from": h.from_reader, "to": h.to_reader,
                               "depart": _iso(h.depart), "arrive": _iso(h.arrive),
                               "distance_m": h.distance_m, "speed_kmh": h.speed_kmh,
                               "heading": h.heading, "implausible": h.implausible,
                               "reason": h.reason},
            })
    return {"type": "FeatureCollection", "features": features}


#: Columns of :func:`trail_csv`: one row per pass, with the hop that brought the tag there.
TRAIL_CSV_COLUMNS = ("tag_id", "trip", "reader_id", "first_seen", "last_seen", "reads",
                     "direction_from", "direction_towards", "from_reader", "distance_m",
                     "travel_s", "speed_kmh", "implausible")


def trail_csv(trail: Trail) -> str:
    """The trail as CSV (:data:`TRAIL_CSV_COLUMNS`, a header line first); the first pass of a
    trip has empty hop columns."""
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(TRAIL_CSV_COLUMNS)
    for i, trip in enumerate(trail.trips):
        arrivals: list[Hop | None] = [None, *trip.hops]
        for p, h in zip(trip.passes, arrivals, strict=True):
            d = direction_of_travel(p.antennas) or {}
            w.writerow([trail.tag_id, i, p.reader_id, _iso(p.first_seen), _iso(p.last_seen),
                        p.reads, d.get("from", ""), d.get("towards", ""),
                        *(("", "", "", "", "") if h is None else
                          (h.from_reader, _num(h.distance_m), round(h.travel_s, 3),
                           _num(h.speed_kmh), "true" if h.implausible else "false"))])
    return out.getvalue()


def _num(v: float | None) -> str | float:
    return "" if v is None else round(v, 3)


def trail_json(trail: Trail) -> dict[str, Any]:
    """The trail as plain JSON (API and ``pak trail --json``)."""
    def pass_json(p: Pass) -> dict[str, Any]:
        return {"reader_id": p.reader_id, "first_seen": _iso(p.first_seen),
                "last_seen": _iso(p.last_seen), "reads": p.reads, "antennas": list(p.antennas),
                "direction": direction_of_travel(p.antennas), "rssi_max_dbm": p.rssi_max_dbm,
                "flags": list(p.flags),
                "sightings": [[s.gateway_id, s.spool_id, s.seq] for s in p.sightings]}

    def hop_json(h: Hop) -> dict[str, Any]:
        return {"from": h.from_reader, "to": h.to_reader, "depart": _iso(h.depart),
                "arrive": _iso(h.arrive), "distance_m": h.distance_m, "travel_s": h.travel_s,
                "speed_kmh": h.speed_kmh, "bearing_deg": h.bearing_deg, "heading": h.heading,
                "implausible": h.implausible, "reason": h.reason}

    return {
        "tag_id": trail.tag_id,
        "unknown_readers": list(trail.unknown_readers),
        "trips": [{"start": _iso(t.start), "end": _iso(t.end),
                   "passes": [pass_json(p) for p in t.passes],
                   "hops": [hop_json(h) for h in t.hops]} for t in trail.trips],
    }
