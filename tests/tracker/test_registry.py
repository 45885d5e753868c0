"""Importing the readers and fleet registers (JSON and CSV) into storage."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from firmware_sim.city import City
from firmware_sim.city_cli import fleet_json, readers_json
from tracker.registry import RegistryError, import_fleet, import_readers
from tracker.storage import open_storage


def test_city_registers_round_trip(tmp_path: Path) -> None:
    city = City(vehicles=20, seed=2)
    (tmp_path / "r.json").write_text(json.dumps(readers_json(city)))
    (tmp_path / "f.json").write_text(json.dumps(fleet_json(city)))
    st = open_storage(f"sqlite:///{tmp_path / 'db.sqlite3'}")
    st.migrate()
    assert import_readers(st, tmp_path / "r.json") == len(city.readers)
    assert import_fleet(st, tmp_path / "f.json") == 20
    assert import_fleet(st, tmp_path / "f.json") == 20  # again: no new assignments
    r = st.get_reader(city.readers[0].reader_id)
    assert r is not None and r.latitude == city.readers[0].latitude and r.bearings[3] == 270.0
    v = st.vehicle_for_tag(city.fleet[5].tag_id, at=datetime.now(UTC))
    assert v is not None and v.plate == "A00005"
    assert len(st.tag_assignments(tag_id=city.fleet[5].tag_id)) == 1
    st.close()


def test_csv_and_refusals(tmp_path: Path) -> None:
    st = open_storage(f"sqlite:///{tmp_path / 'db.sqlite3'}")
    st.migrate()
    good = tmp_path / "readers.csv"
    good.write_text("reader_id,name,latitude,longitude\nrd-1,Gate,30.1,120.2\n")
    assert import_readers(st, good) == 1
    bad = tmp_path / "bad.csv"
    bad.write_text("reader_id,name,latitude,longitude\nrd-2,Gate,north,120.2\n")
    with pytest.raises(RegistryError, match=r"bad\.csv:2"):
        import_readers(st, bad)
    missing = tmp_path / "fleet.json"
    missing.write_text(json.dumps([{"vehicle_id": "v", "tag_id": "AABB"}]))
    with pytest.raises(RegistryError, match="missing plate"):
        import_fleet(st, missing)
    st.close()
