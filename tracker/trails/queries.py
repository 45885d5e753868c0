"""The police queries over storage, as the API and ``pak trail`` call them.

Every function takes the storage first and everything else by keyword. Times are aware
datetimes; ``since`` is inclusive and ``until`` exclusive, both bounding a sighting's
``first_seen``. Auditing is the caller's duty (the API with its user, the CLI with the
operating-system user): these functions only read.

* :func:`trail`: one tag's trail (passes, trips, hops, implausible hops flagged), built by
  :func:`tracker.trails.trail.build_trail` from its stored sightings;
* :func:`passed_here`: every sighting at one reader, or any of a set, in a window;
* :func:`seen_together`: the tags that passed the same readers within seconds of a given tag,
  on more than one occasion (an accomplice, or the thief's own vehicle).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pak.timefmt import format_time
from pak.types import Sighting
from tracker.storage.base import Storage
from tracker.storage.records import Reader
from tracker.trails.trail import DistanceFn, Trail, build_trail, merge_passes

__all__ = ["Companion", "Together", "companion_json", "passed_here", "readers_for",
           "seen_together", "trail"]


def readers_for(storage: Storage, reader_ids: Sequence[str]) -> dict[str, Reader]:
    """The readers among ``reader_ids`` that storage knows (one lookup each: a trail touches
    a handful of readers, a city has thousands)."""
    out: dict[str, Reader] = {}
    for rid in dict.fromkeys(reader_ids):
        r = storage.get_reader(rid)
        if r is not None:
            out[rid] = r
    return out


def trail(
    storage: Storage,
    *,
    tag_id: str,
    since: datetime,
    until: datetime,
    trip_gap: timedelta = timedelta(minutes=30),
    max_speed_kmh: float = 120.0,
    readers: Mapping[str, Reader] | None = None,
    distance: DistanceFn | None = None,
) -> Trail:
    """The trail of ``tag_id`` in ``[since, until)``. ``readers`` may be a cached map of the
    city's readers (by default the trail's readers are looked up); ``distance`` a road-graph
    distance (by default great-circle)."""
    sightings = storage.sightings(tag_id=tag_id, since=since, until=until)
    if readers is None:
        readers = readers_for(storage, [s.reader_id for s in sightings])
    return build_trail(tag_id, sightings, readers, trip_gap=trip_gap,
                       max_speed_kmh=max_speed_kmh, distance=distance)


def passed_here(storage: Storage, *, reader_ids: Sequence[str], since: datetime,
                until: datetime, limit: int | None = None) -> list[Sighting]:
    """Every sighting at any of ``reader_ids`` in the window, in ``first_seen`` order (one per
    sighting id: a vehicle that waited at the light is one row)."""
    if not reader_ids:
        return []
    return storage.sightings(reader_ids=list(reader_ids), since=since, until=until,
                             limit=limit)


@dataclass(frozen=True, slots=True)
class Together:
    """One occasion: the given tag and the other at one reader within seconds."""

    reader_id: str
    tag_at: datetime  # the given tag's first read there
    other_at: datetime  # the other tag's first read there
    delta_s: float  # other minus tag


@dataclass(frozen=True, slots=True)
class Companion:
    """A tag seen with the given tag ``times`` times (distinct occasions)."""

    tag_id: str
    times: int
    readers: tuple[str, ...]  # distinct readers of those occasions
    occasions: tuple[Together, ...]


def seen_together(storage: Storage, *, tag_id: str, since: datetime, until: datetime,
                  within_s: float = 30.0, min_times: int = 2) -> list[Companion]:
    """Tags whose first read at a reader came within ``within_s`` seconds of the given tag's
    first read at that reader, on at least ``min_times`` of the given tag's passes; most often
    first. One query per pass of the given tag (each on the reader-and-time index)."""
    if min_times < 1 or within_s < 0:
        raise ValueError("min_times >= 1 and within_s >= 0")
    w = timedelta(seconds=within_s)
    found: dict[str, dict[tuple[str, datetime], Together]] = {}
    for p in merge_passes(storage.sightings(tag_id=tag_id, since=since, until=until)):
        lo, hi = p.first_seen - w, p.first_seen + w
        for o in storage.sightings(reader_ids=[p.reader_id], since=lo,
                                   until=hi + timedelta(microseconds=1)):
            if o.tag_id == tag_id:
                continue
            occasions = found.setdefault(o.tag_id, {})
            key = (p.reader_id, p.first_seen)  # one occasion per pass, however many sightings
            prev = occasions.get(key)
            delta = (o.first_seen - p.first_seen).total_seconds()
            if prev is None or abs(delta) < abs(prev.delta_s):
                occasions[key] = Together(p.reader_id, p.first_seen, o.first_seen, delta)
    out = []
    for other, occ in found.items():
        if len(occ) >= min_times:
            items = tuple(sorted(occ.values(), key=lambda t: t.tag_at))
            out.append(Companion(other, len(items),
                                 tuple(dict.fromkeys(t.reader_id for t in items)), items))
    out.sort(key=lambda c: (-c.times, c.tag_id))
    return out


def companion_json(c: Companion) -> dict[str, Any]:
    """A companion as plain JSON (the API's and ``--json`` form)."""
    return {"tag_id": c.tag_id, "times": c.times, "readers": list(c.readers),
            "occasions": [{"reader_id": o.reader_id, "tag_at": format_time(o.tag_at),
                           "other_at": format_time(o.other_at), "delta_s": o.delta_s}
                          for o in c.occasions]}
