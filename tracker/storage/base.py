"""The storage interface of the centre. Both backends (SQLite, TimescaleDB) implement it and
pass one shared test suite (tests/test_storage.py, parametrised over both).

Rules every backend keeps:
* one row per sighting id (gateway_id, spool_id, seq); a write under DESIGN.md's merge rule
  (:func:`pak.types.merge_sightings`, mirrored in SQL), so redeliveries and ``open``/``closed``
  in either order leave the final aggregate;
* one transaction per :meth:`Storage.write_batch`: its sightings, dead letters and alerts are
  committed together or not at all;
* the caller deduplicates inside a batch first (:func:`dedupe`), so one statement never meets
  the same key twice.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pak.errors import PakError
from pak.types import Sighting, SightingId, merge_sightings

__all__ = ["Alert", "DeadLetter", "Storage", "StorageError", "StorageUnavailable", "dedupe"]


class StorageError(PakError):
    """A storage operation failed for a reason retrying will not fix."""


class StorageUnavailable(StorageError):
    """The database cannot be reached right now (down, restarting): retry later."""


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A message the centre refused: kept with the reason and its raw bytes."""

    topic: str
    payload: bytes
    reason: str
    detail: str
    received_at: datetime


@dataclass(frozen=True, slots=True)
class Alert:
    """An alert as stored (and, as JSON, published on ``{root}/alerts/{kind}``).

    ``alert_id`` is derived from its cause (the sighting id for a hit), so storing the same
    alert twice updates one row."""

    alert_id: str
    kind: str
    at: datetime
    status: str = "new"
    tag_id: str | None = None
    reader_id: str | None = None
    gateway_id: str | None = None
    sighting: SightingId | None = None
    detail: dict[str, Any] = field(default_factory=dict)


def dedupe(sightings: Iterable[Sighting]) -> list[Sighting]:
    """One sighting per id, merged under the design's rule, in order of first appearance."""
    out: dict[SightingId, Sighting] = {}
    for s in sightings:
        key = s.id
        prev = out.get(key)
        out[key] = s if prev is None else merge_sightings(prev, s)
    return list(out.values())


class Storage(ABC):
    """A connection (or pool) to one database. Thread-safe for one writer and many readers."""

    url: str

    @abstractmethod
    def migrate(self) -> list[str]:
        """Apply the numbered migrations not yet applied; return their names. Idempotent."""

    @abstractmethod
    def write_batch(
        self,
        sightings: Sequence[Sighting],
        *,
        dead_letters: Sequence[DeadLetter] = (),
        alerts: Sequence[Alert] = (),
    ) -> None:
        """Store one deduplicated batch in one transaction (merge rule on conflict).
        Raises StorageUnavailable when the database cannot be reached (nothing committed)."""

    @abstractmethod
    def sightings(
        self,
        *,
        tag_id: str | None = None,
        reader_ids: Sequence[str] | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int | None = None,
    ) -> list[Sighting]:
        """Sightings in ``first_seen`` order, filtered; ``since``/``until`` bound first_seen."""

    @abstractmethod
    def count_sightings(self) -> int: ...

    @abstractmethod
    def record_gateway(self, gateway_id: str, *, state: str | None = None,
                       health: dict[str, Any] | None = None, at: datetime) -> None:
        """Remember a gateway's last state (online/offline) or health payload."""

    @abstractmethod
    def close(self) -> None: ...

    def __enter__(self) -> Storage:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
