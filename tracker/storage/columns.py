"""The sighting row both backends store, and the batch they are handed.

Column order (the order of :data:`SIGHTING_COLUMNS`, of the staging table and of every row
tuple the backends build)::

    gateway_id spool_id seq | state tag_id tag_kind tag_type reader_id antenna antennas
    first_seen last_seen reads rssi_max_dbm rssi_max_raw flags reader_time
    \\_ sighting id _/        \\_ the aggregate, merged under pak.types.merge_sightings _/

(plus ``stored_at``, set by the database side.) ``first_seen`` belongs to the stored key too:
a hypertable's unique key must hold its time column.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Final

from pak.errors import ConfigError
from pak.types import Sighting
from tracker.storage.base import dedupe

__all__ = ["SIGHTING_COLUMNS", "cutoff_for", "normal_flags", "unique_batch"]

SIGHTING_COLUMNS: Final[tuple[str, ...]] = (
    "gateway_id", "spool_id", "seq", "state", "tag_id", "tag_kind", "tag_type", "reader_id",
    "antenna", "antennas", "first_seen", "last_seen", "reads", "rssi_max_dbm", "rssi_max_raw",
    "flags", "reader_time",
)


def unique_batch(sightings: Sequence[Sighting]) -> Sequence[Sighting]:
    """The batch with one sighting per id. The caller is meant to have deduplicated already
    (base.dedupe); checking costs a set of tuples, and a duplicate that slipped through would
    otherwise make PostgreSQL refuse the whole statement (one INSERT may not touch a row
    twice) while SQLite would accept it: both backends must behave alike."""
    keys = {(s.gateway_id, s.spool_id, s.seq) for s in sightings}
    return sightings if len(keys) == len(sightings) else dedupe(sightings)


def normal_flags(flags: Sequence[str]) -> list[str]:
    """Flags as stored: sorted and unique, as the wire sends them and as every merge leaves
    them (the merge rule's union is sorted). Storing them so lets the upsert skip the union
    when the incoming flags add nothing."""
    if len(flags) < 2:
        return list(flags)
    return sorted(set(flags))


def cutoff_for(days: float, now: datetime) -> datetime:
    """The retention boundary: sightings whose first_seen is before it may go."""
    if days <= 0:
        raise ConfigError(f"retention days must be positive, not {days}")
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    return now - timedelta(days=days)
