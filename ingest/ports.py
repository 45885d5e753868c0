"""What ingest needs from the world it writes to, defined here, by its user.

The pipeline (:mod:`ingest.batcher`) writes a batch and records gateways' state and health;
nothing else. :class:`BatchSink` is that port; the centre's storage
(tracker/storage/base.py) implements it, so ingest never imports the tracker.

The sink's contract:

* one transaction per :meth:`BatchSink.write_batch`: its sightings, dead letters and alerts are
  committed together or not at all; the caller deduplicates inside a batch first
  (:func:`dedupe`), so one statement never meets the same key twice;
* :class:`StorageUnavailable` when the database cannot be reached (nothing committed: retry the
  same batch later); any other :class:`StorageError` is the batch's own fault.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from pak.alert import Alert
from pak.errors import PakError
from pak.types import Sighting, SightingId, merge_sightings

__all__ = ["BatchSink", "DeadLetter", "StorageError", "StorageUnavailable", "dedupe"]


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


def dedupe(sightings: Iterable[Sighting]) -> list[Sighting]:
    """One sighting per id, merged under the design's rule, in order of first appearance."""
    out: dict[SightingId, Sighting] = {}
    for s in sightings:
        key = s.id
        prev = out.get(key)
        out[key] = s if prev is None else merge_sightings(prev, s)
    return list(out.values())


class BatchSink(Protocol):
    """Where committed batches go (see module doc)."""

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
    def record_gateway(self, gateway_id: str, *, state: str | None = None,
                       health: dict[str, Any] | None = None, at: datetime) -> None:
        """Remember a gateway's last state (online/offline) or health payload; an older
        message than the one stored (by ``at``) does not overwrite it."""
