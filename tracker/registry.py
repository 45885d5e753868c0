"""Import the city's registers: readers (where they are, which way antennas face) and the
vehicle fleet (plates and which tag each vehicle carries), from JSON or CSV files.

Readers: ``reader_id, name, latitude, longitude`` and optional ``bearings`` (antenna ->
degrees) and ``timezone``. Fleet: ``vehicle_id, plate, tag_id`` and optional ``owner, kind,
colour, key_tag_id, unaccompanied_check, valid_from``. Unknown columns are ignored; a row
that lacks a required field is refused with its line number.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from pak.errors import PakError
from pak.timefmt import parse_time, utcnow
from tracker.storage.base import Storage
from tracker.storage.records import Reader, Vehicle

__all__ = ["RegistryError", "import_fleet", "import_readers"]


class RegistryError(PakError):
    """A register file that cannot be imported; the message names the row."""


def _rows(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    try:
        if path.suffix.lower() == ".csv":
            with path.open(newline="", encoding="utf-8-sig") as fh:
                for n, row in enumerate(csv.DictReader(fh), 2):
                    yield n, {k.strip(): (v.strip() if isinstance(v, str) else v)
                              for k, v in row.items() if k}
            return
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise RegistryError(f"{path}: {e}") from None
    if not isinstance(data, list):
        raise RegistryError(f"{path}: expected a JSON list of objects")
    for n, row in enumerate(data, 1):
        if not isinstance(row, dict):
            raise RegistryError(f"{path}: item {n} is not an object")
        yield n, row


def _need(row: dict[str, Any], key: str, where: str) -> Any:
    v = row.get(key)
    if v is None or v == "":
        raise RegistryError(f"{where}: missing {key}")
    return v


def import_readers(storage: Storage, path: Path) -> int:
    readers = []
    for n, row in _rows(path):
        where = f"{path}:{n}"
        try:
            lat, lon = float(_need(row, "latitude", where)), float(_need(row, "longitude", where))
        except ValueError:
            raise RegistryError(f"{where}: latitude/longitude must be numbers") from None
        if not (-90 <= lat <= 90 and -180 <= lon <= 180):
            raise RegistryError(f"{where}: position out of range")
        bearings = row.get("bearings") or {}
        if isinstance(bearings, str):
            bearings = json.loads(bearings) if bearings else {}
        readers.append(Reader(str(_need(row, "reader_id", where)),
                              str(row.get("name") or row["reader_id"]), lat, lon,
                              {int(k): float(v) for k, v in bearings.items()},
                              row.get("timezone") or None))
    storage.upsert_readers(readers)
    return len(readers)


def _when(v: Any, where: str) -> datetime:
    if not v:
        return utcnow()
    try:
        return parse_time(str(v))
    except ValueError:
        raise RegistryError(f"{where}: valid_from is not an RFC 3339 time") from None


def import_fleet(storage: Storage, path: Path) -> int:
    vehicles, tags = [], []
    for n, row in _rows(path):
        where = f"{path}:{n}"
        vid = str(_need(row, "vehicle_id", where))
        check = str(row.get("unaccompanied_check", "")).lower() in ("1", "true", "yes")
        key = row.get("key_tag_id") or None
        vehicles.append(Vehicle(vid, str(_need(row, "plate", where)), row.get("owner") or None,
                                row.get("kind") or None, row.get("colour") or None,
                                str(key).upper() if key else None, check))
        tags.append((str(_need(row, "tag_id", where)).upper(), vid,
                     _when(row.get("valid_from"), where)))
    storage.upsert_vehicles(vehicles)
    known = {a.tag_id: a.vehicle_id for a in storage.tag_assignments() if a.valid_to is None}
    for tag, vid, at in tags:
        if known.get(tag) != vid:  # re-importing the same register changes nothing
            storage.assign_tag(tag, vid, at=at)
    return len(vehicles)
