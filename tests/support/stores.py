"""The storages the ingest tests run over: the in-memory contract, SQLite, TimescaleDB.
Each test reads back rows and dead letters through :class:`Store`, whatever the backend."""

from __future__ import annotations

from dataclasses import dataclass

from pak.types import Sighting, SightingId
from tests.support.memstore import MemoryStorage
from tracker.storage.base import DeadLetter, Storage


@dataclass
class Store:
    storage: Storage
    memory: MemoryStorage | None = None

    def rows(self) -> dict[SightingId, Sighting]:
        if self.memory is not None:
            with self.memory.lock:
                return dict(self.memory.rows)
        return {s.id: s for s in self.storage.sightings(limit=None)}

    def dead(self) -> list[DeadLetter]:
        if self.memory is not None:
            with self.memory.lock:
                return list(self.memory.dead)
        return self.storage.dead_letters(limit=None)
