"""Shared set-up of the alert tests: an SQLite storage with two readers 5.6 km apart, a
registered vehicle whose tag was re-issued, and an engine that records what it publishes."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pak.types import Sighting
from tests.support.wire_schema import validate
from tracker.alerts.engine import AlertEngine
from tracker.alerts.settings import AlertSettings
from tracker.storage import Reader, Storage, Vehicle, open_storage

T0 = datetime(2026, 11, 28, 6, 0, tzinfo=UTC)
STOLEN = "E2003412AB01"
#: MR7901 antennas 1-4 face E, S, W, N; R1 says so explicitly, R2 has none configured
READERS = [
    Reader("R1", "Wulin Sq. north", 30.2741, 120.1551, {1: 90.0, 2: 180.0, 3: 270.0, 4: 0.0}),
    Reader("R2", "Qiantang bridge", 30.2241, 120.1551),
    Reader("R3", "Wulin Sq. south", 30.2731, 120.1551),  # 111 m from R1
]


def at(s: float) -> datetime:
    return T0 + timedelta(seconds=s)


def sighting(seq: int, reader: str, first: float, last: float | None = None, *,
             tag: str = STOLEN, state: str = "closed", gw: str = "gw-1", spool: str = "sp-1",
             antennas: tuple[int, ...] = (), flags: tuple[str, ...] = (),
             tag_type: int | None = None) -> Sighting:
    return Sighting(gw, spool, seq, state, tag, "active", reader, at(first),  # type: ignore[arg-type]
                    at(first if last is None else last), 1, tag_type=tag_type,
                    antenna=antennas[0] if antennas else None, antennas=antennas, flags=flags)


@dataclass
class Published:
    items: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, topic: str, payload: bytes, qos: int) -> None:
        assert qos == 1
        obj = validate("alert", payload)  # every published alert follows the contract
        with self.lock:
            self.items.append((topic, obj))

    def ids(self, kind: str | None = None) -> list[str]:
        return [o["alert_id"] for _, o in self.items if kind is None or o["kind"] == kind]


def make_storage(tmp: Path, name: str = "pak.db") -> Storage:
    st = open_storage(f"sqlite://{tmp}/{name}")
    st.migrate()
    st.upsert_readers(READERS)
    st.upsert_vehicles([Vehicle("V-old", "ZJ-OLD01", kind="motorbike", colour="black"),
                        Vehicle("V-1", "ZJ-A1234", kind="e-bike", colour="red")])
    # the tag was on another vehicle until a day before T0, then re-issued to V-1
    st.assign_tag(STOLEN, "V-old", at=T0 - timedelta(days=300))
    st.assign_tag(STOLEN, "V-1", at=T0 - timedelta(days=1))
    return st


def watch(st: Storage, tag: str = STOLEN, case: str = "HZ-2026-0415") -> None:
    st.watchlist_add(tag, case_no=case, reporter="owner", reported_at=T0 - timedelta(hours=2),
                     note="red e-bike, basket", at=T0 - timedelta(hours=2))


def engine(st: Storage, pub: Published, **settings: Any) -> AlertEngine:
    e = AlertEngine(st, pub, settings=AlertSettings(**settings), clock=lambda: at(10_000))
    e.start(timer=False)
    return e

