"""The one-row rule: storage holds exactly one row per sighting id ``(gateway_id, spool_id,
seq)``, whatever ``first_seen`` a later message claims.

* The ``first_seen`` stored first stands. A later message of the id that carries another one
  (a gateway bug, a clock correction, a hostile payload) is merged into the stored row under
  the merge rule (pak.types.merge_sightings) for every other field; its ``first_seen`` is
  dropped, counted here and logged. Inside one batch the merge rule decides alone (the batch
  is deduplicated before it reaches the database).
* SQLite: the table's unique key is the sighting id itself. TimescaleDB: a hypertable's unique
  index must hold its time column, so a small ordinary table ``sighting_ids`` keyed by the
  sighting id holds each id's stored ``first_seen``; the batch write claims its ids there
  first, in the same statement, and writes every sighting under the claimed time (see
  tracker/storage/timescale.py and migrations/postgres/0005_one_row_per_sighting.sql).

A conflict is logged once per id and batch with both times; the count is exposed as the
metric ``pak_storage_first_seen_conflicts_total`` (tracker/storage/metrics.py).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from datetime import datetime

from pak.logs import event

__all__ = ["FirstSeenConflicts"]

_log = logging.getLogger("tracker.storage.one_row")

#: Conflicts logged one by one per batch; the rest of a batch is summed in one line.
_LOG_EACH = 10


class FirstSeenConflicts:
    """How many messages carried a ``first_seen`` other than their id's stored one.
    Thread-safe; backends call :meth:`add` after the batch has committed."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._count = 0

    @property
    def count(self) -> int:
        with self._lock:
            return self._count

    def add(self, conflicts: Iterable[tuple[str, str, int, datetime, datetime]]) -> int:
        """Count and log ``(gateway_id, spool_id, seq, stored, claimed)`` conflicts of one
        committed batch; how many there were."""
        n = 0
        for gw, spool, seq, stored, claimed in conflicts:
            n += 1
            if n <= _LOG_EACH:
                event(_log, logging.WARNING, "first_seen_conflict", gateway_id=gw,
                      spool_id=spool, seq=seq, stored=stored.isoformat(),
                      claimed=claimed.isoformat(), kept="stored")
        if n > _LOG_EACH:
            event(_log, logging.WARNING, "first_seen_conflicts", count=n,
                  logged=_LOG_EACH, kept="stored")
        if n:
            with self._lock:
                self._count += n
        return n
