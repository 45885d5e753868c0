"""A storage that keeps the contract's rules in memory, for testing the ingest logic alone:
one row per sighting id under pak.types.merge_sightings (the first stored first_seen stands,
a conflicting one is counted: tracker/storage/one_row.py), one transaction per write_batch, and a
refusal of a batch that repeats a sighting id (the caller must deduplicate first). It can be
switched "down" (StorageUnavailable) or told to refuse some sightings (StorageError)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, cast

from pak.types import Sighting, SightingId, merge_sightings
from tracker.storage.base import Alert, DeadLetter, Storage, StorageError, StorageUnavailable
from tracker.storage.one_row import FirstSeenConflicts


class MemoryStorage:
    def __init__(self) -> None:
        self.rows: dict[SightingId, Sighting] = {}
        self.dead: list[DeadLetter] = []
        self.alerts: dict[str, Alert] = {}
        self.gateways: dict[str, dict[str, Any]] = {}
        self.batches: list[list[Sighting]] = []
        self.down = threading.Event()
        self.refuse: Callable[[Sighting], bool] | None = None
        self.attempts = 0
        self.lock = threading.Lock()
        self.on_write: Callable[[], None] | None = None
        self.first_seen_conflicts = FirstSeenConflicts()

    def as_storage(self) -> Storage:
        return cast(Storage, self)

    def migrate(self) -> list[str]:
        return []

    def write_batch(self, sightings: Sequence[Sighting], *, dead_letters: Sequence[DeadLetter] = (),
                    alerts: Sequence[Alert] = ()) -> None:
        with self.lock:
            self.attempts += 1
            if self.on_write:
                self.on_write()
            if self.down.is_set():
                raise StorageUnavailable("memory storage is down")
            ids = [s.id for s in sightings]
            if len(set(ids)) != len(ids):
                raise AssertionError("a batch repeats a sighting id: not deduplicated")
            if self.refuse and any(self.refuse(s) for s in sightings):
                raise StorageError("refused a sighting")
            conflicts = []
            for s in sightings:
                prev = self.rows.get(s.id)
                if prev is None:
                    self.rows[s.id] = s
                    continue
                if s.first_seen != prev.first_seen:
                    conflicts.append((s.gateway_id, s.spool_id, s.seq, prev.first_seen,
                                      s.first_seen))
                self.rows[s.id] = merge_sightings(prev, s).replace(first_seen=prev.first_seen)
            self.first_seen_conflicts.add(conflicts)
            self.dead.extend(dead_letters)
            for a in alerts:
                self.alerts[a.alert_id] = a
            self.batches.append(list(sightings))

    def record_gateway(self, gateway_id: str, *, state: str | None = None,
                       health: dict[str, Any] | None = None, at: datetime) -> None:
        with self.lock:
            if self.down.is_set():
                raise StorageUnavailable("memory storage is down")
            g = self.gateways.setdefault(gateway_id, {})
            if state is not None:
                g["state"], g["state_at"] = state, at
            if health is not None:
                g["health"], g["health_at"] = health, at

    def count_sightings(self) -> int:
        with self.lock:
            return len(self.rows)

    def close(self) -> None:
        pass
