"""What an alert tells the officer besides "this tag": the vehicle, the reader, the direction,
the tag's last passes and where it will likely pass next.

:class:`Registry` caches the slowly changing records (readers with their positions and antenna
bearings; vehicles whose owners switched on key pairing) and refreshes them on the engine's
timer. A ``stolen_hit``'s detail comes in two parts: :func:`hit_detail`, from memory alone (the
receive thread publishes it at once), and :func:`enrichment`, from storage (the enrichment
worker, tracker/alerts/enrich.py, publishes it as an update of the same alert).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pak.timefmt import format_time
from pak.types import Sighting
from pak.wire.alert import reader_json, seen_json
from tracker.storage.base import Storage
from tracker.storage.records import Reader, Vehicle, WatchEntry
from tracker.trails.movement import MovementModel
from tracker.trails.trail import direction_of_travel

__all__ = ["PairedVehicle", "Registry", "enrichment", "hit_detail", "reader_json",
           "vehicle_json"]


@dataclass(frozen=True, slots=True)
class PairedVehicle:
    """A vehicle with the unaccompanied check on: its current tag and its owner's key tag."""

    vehicle_id: str
    tag_id: str
    key_tag_id: str


class Registry:
    """Readers and paired vehicles, replaced whole on each refresh (readers of the maps on the
    hot path see either the old or the new map, never half of one)."""

    def __init__(self, storage: Storage) -> None:
        self._storage = storage
        self.readers: dict[str, Reader] = {}
        #: vehicle tag -> its pairing; key tag -> the vehicle tags it accompanies
        self.paired: dict[str, PairedVehicle] = {}
        self.key_tags: dict[str, tuple[str, ...]] = {}

    def refresh(self) -> None:
        """Reload from storage (raises StorageError; the old maps stay)."""
        readers = {r.reader_id: r for r in self._storage.readers()}
        paired: dict[str, PairedVehicle] = {}
        for v in self._storage.paired_vehicles():
            if not v.key_tag_id:
                continue
            current = [a for a in self._storage.tag_assignments(vehicle_id=v.vehicle_id)
                       if a.valid_to is None]
            for a in current:
                paired[a.tag_id] = PairedVehicle(v.vehicle_id, a.tag_id, v.key_tag_id)
        keys: dict[str, list[str]] = {}
        for p in paired.values():
            keys.setdefault(p.key_tag_id, []).append(p.tag_id)
        self.readers = readers
        self.paired = paired
        self.key_tags = {k: tuple(v) for k, v in keys.items()}

    def reader(self, reader_id: str) -> Reader | None:
        return self.readers.get(reader_id)


def vehicle_json(v: Vehicle | None) -> dict[str, Any] | None:
    if v is None:
        return None
    return {"vehicle_id": v.vehicle_id, "plate": v.plate, "kind": v.kind, "colour": v.colour}


def _bearings(reader: Reader | None) -> dict[int, float] | None:
    return dict(reader.bearings) if reader is not None and reader.bearings else None


def sighting_json(s: Sighting, reader: Reader | None) -> dict[str, Any]:
    """An alert's ``seen`` (shape: :func:`pak.wire.alert.seen_json`), with the direction
    of travel the reader's antenna bearings tell."""
    return seen_json(s, direction_of_travel(s.antennas, _bearings(reader)))


def _previous_reader(s: Sighting, earlier: Sequence[Sighting], trip_gap: timedelta) -> str | None:
    """The reader the vehicle came from on this trip (for the second-order prediction)."""
    t = s.first_seen
    for p in earlier:  # newest first
        if p.reader_id == s.reader_id:
            t = min(t, p.first_seen)
            continue
        return p.reader_id if t - p.last_seen <= trip_gap else None
    return None


def hit_detail(s: Sighting, entries: Sequence[WatchEntry], registry: Registry, *,
               received_at: datetime) -> dict[str, Any]:
    """What a ``stolen_hit`` carries the moment it is published: only what memory holds (the
    sighting, its watchlist entries, the registry's reader). No storage call: this runs on the
    MQTT receive thread. The vehicle, earlier passes and predictions come later, from
    :func:`enrichment`, as an update of the same alert (``"enriched": true``)."""
    reader = registry.reader(s.reader_id)
    return {
        "case": entries[0].case_no if entries else None,
        "cases": [{"case": e.case_no, "reporter": e.reporter,
                   "reported_at": format_time(e.reported_at), "note": e.note}
                  for e in entries],
        "reader": reader_json(s.reader_id, reader),
        "seen": sighting_json(s, reader),
        "delay_s": round((received_at - s.last_seen).total_seconds(), 3),
        "vehicle": None,
        "recent_passes": [],
        "predicted_next": [],
        "enriched": False,
    }


def enrichment(s: Sighting, registry: Registry, storage: Storage,
               movement: MovementModel | None, *, recent: int, predictions: int,
               trip_gap: timedelta) -> dict[str, Any]:
    """The part of a ``stolen_hit``'s detail that storage tells (the vehicle that carried the
    tag at that time, its earlier passes, where it will likely pass next): earlier passes come
    from storage, not this instance's memory, so every instance tells the same story.

    Raises StorageError when storage does not answer (the enrichment worker retries); runs
    on the enrichment worker only, never on a receive thread."""
    vehicle = vehicle_json(storage.vehicle_for_tag(s.tag_id, at=s.first_seen))
    earlier: list[Sighting] = []
    if recent:
        earlier = [p for p in storage.recent_passes(s.tag_id, before=s.first_seen,
                                                    limit=recent + 1) if p.id != s.id]
    out: dict[str, Any] = {
        "vehicle": vehicle,
        "recent_passes": [
            {**reader_json(p.reader_id, registry.reader(p.reader_id)),
             "first_seen": format_time(p.first_seen), "last_seen": format_time(p.last_seen),
             "direction": direction_of_travel(p.antennas,
                                              _bearings(registry.reader(p.reader_id)))}
            for p in earlier[:recent]],
        "enriched": True,
    }
    if movement is not None and predictions:
        prev = _previous_reader(s, earlier, trip_gap)
        out["predicted_next"] = movement.predict(s.reader_id, prev, s.last_seen, predictions)
        out["came_from"] = prev
    return out
