"""The storage interface of the centre, split by aggregate into small ports, each used by
the code that needs only it. Both backends (SQLite, TimescaleDB) implement all of them through
:class:`Storage` and pass one shared test suite (tests/tracker/storage/test_storage.py,
parametrised over both).

Ports: ingest's :class:`ingest.ports.BatchSink` (its writes: a batch, a gateway's state or
health), :class:`SightingStore` and :class:`GatewayStore` (their reads),
:class:`RegistryStore` (readers, vehicles, tag assignments), :class:`WatchlistStore`,
:class:`AlertStore`, :class:`AuditStore`, :class:`DeadLetterStore`, and
:class:`StorageAdmin` (migrations, retention, counts).

Rules every backend keeps:
* one row per sighting id (gateway_id, spool_id, seq); a write under DESIGN.md's merge rule
  (:func:`pak.types.merge_sightings`, mirrored in SQL), so redeliveries and ``open``/``closed``
  in either order leave the final aggregate;
* one transaction per :meth:`~ingest.ports.BatchSink.write_batch`: its sightings, dead
  letters and alerts are committed together or not at all;
* the caller deduplicates inside a batch first (:func:`dedupe`), so one statement never meets
  the same key twice.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol

from ingest.ports import BatchSink, DeadLetter, StorageError, StorageUnavailable, dedupe
from pak.alert import Alert
from pak.types import Sighting, SightingId
from tracker.storage.records import (
    AuditEntry,
    GatewayRecord,
    Reader,
    StoredAlert,
    TagAssignment,
    TagPass,
    Vehicle,
    WatchEntry,
)

__all__ = ["Alert", "AlertStore", "AuditStore", "DeadLetter", "DeadLetterStore", "GatewayStore",
           "NotFound", "RegistryStore", "SightingStore", "Storage", "StorageAdmin",
           "StorageError", "StorageUnavailable", "WatchlistStore", "dedupe"]


class NotFound(StorageError):
    """The record an update names does not exist (an unknown alert id, say)."""


class SightingStore(Protocol):
    """Sightings as read by trails, queries and the alert handlers (they are written through
    ingest's :class:`~ingest.ports.BatchSink`, which :class:`Storage` implements).

    Times are aware datetimes (naive ones are read as UTC); ``since`` is inclusive, ``until``
    exclusive, everywhere. The bulk reads of the alert handlers' timers (clone checks, blind
    spots) have defaults that work through the queries above them; backends override them with
    one statement."""

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
    def get_sighting(self, sid: SightingId) -> Sighting | None:
        """The stored row of one sighting id, or None."""

    @abstractmethod
    def recent_passes(self, tag_id: str, *, before: datetime | None = None,
                      limit: int = 5) -> list[Sighting]:
        """The tag's latest sightings (first_seen before ``before``), newest first."""

    @abstractmethod
    def iter_sightings(self, *, since: datetime | None = None, until: datetime | None = None,
                       batch_size: int = 10_000) -> Iterator[Sighting]:
        """Every sighting in the window in ``first_seen`` order, streamed (for learning jobs).
        Holds a connection until exhausted or closed."""

    def sightings_of_tags(self, tag_ids: Sequence[str], *, since: datetime,
                          until: datetime) -> list[Sighting]:
        """Sightings of any of ``tag_ids`` with ``since <= first_seen < until``, in
        ``(tag_id, first_seen)`` order."""
        out: list[Sighting] = []
        for tag in sorted(set(tag_ids)):
            out.extend(self.sightings(tag_id=tag, since=since, until=until))
        return out

    def tag_passes(self, tag_ids: Sequence[str], *, since: datetime,
                   until: datetime) -> list[TagPass]:
        """What :meth:`sightings_of_tags` returns, reduced to where and when (same order)."""
        return [TagPass(s.tag_id, s.reader_id, s.first_seen, s.last_seen, s.gateway_id,
                        s.spool_id, s.seq)
                for s in self.sightings_of_tags(tag_ids, since=since, until=until)]

    def close_incomplete(self, cutoffs: Mapping[str, datetime], default: datetime, *,
                         limit: int) -> int:
        """Close (flagged incomplete: migration 0008) up to ``limit`` open sightings first seen
        before their gateway's cutoff, ``default`` for gateways not in ``cutoffs``; a real
        closed message stored later replaces that close. Returns how many were closed."""
        ...

    def count_by_reader(self, *, since: datetime, until: datetime) -> dict[str, int]:
        """How many sightings each reader has with ``since <= first_seen < until``."""
        counts: dict[str, int] = {}
        for s in self.iter_sightings(since=since, until=until):
            counts[s.reader_id] = counts.get(s.reader_id, 0) + 1
        return counts

    @abstractmethod
    def evidence_sightings(self, *, tag_id: str | None = None) -> list[Sighting]:
        """Sightings kept as evidence (never touched by retention), in ``first_seen`` order."""


class GatewayStore(Protocol):
    """The last state and health each gateway reported (recorded through ingest's
    :class:`~ingest.ports.BatchSink`)."""

    @abstractmethod
    def get_gateway(self, gateway_id: str) -> GatewayRecord | None: ...

    @abstractmethod
    def gateways(self) -> list[GatewayRecord]:
        """Every gateway heard from, by id."""


class RegistryStore(Protocol):
    """Readers, vehicles and which tag is on which vehicle when."""

    @abstractmethod
    def upsert_readers(self, readers: Iterable[Reader]) -> None: ...

    @abstractmethod
    def get_reader(self, reader_id: str) -> Reader | None: ...

    @abstractmethod
    def readers(self) -> list[Reader]:
        """All readers, by id."""

    @abstractmethod
    def upsert_vehicles(self, vehicles: Iterable[Vehicle]) -> None: ...

    @abstractmethod
    def get_vehicle(self, vehicle_id: str) -> Vehicle | None: ...

    @abstractmethod
    def vehicles(self) -> list[Vehicle]:
        """All vehicles, by id."""

    def paired_vehicles(self) -> list[Vehicle]:
        """The vehicles whose owners switched the key-pairing check on (``unaccompanied``),
        with a key tag, by id: what the alert engine refreshes every minute, without reading
        the city's whole register. Backends override it with one filtered statement."""
        return [v for v in self.vehicles() if v.unaccompanied_check and v.key_tag_id]

    @abstractmethod
    def assign_tag(self, tag_id: str, vehicle_id: str, *, at: datetime) -> None:
        """From ``at`` on, the tag is on this vehicle: the tag's open assignment and the
        vehicle's open assignment (its previous tag) end at ``at``; history is kept."""

    @abstractmethod
    def release_tag(self, tag_id: str, *, at: datetime) -> None:
        """The tag's open assignment ends at ``at`` (tag withdrawn, not yet re-issued)."""

    @abstractmethod
    def tag_assignments(self, *, tag_id: str | None = None,
                        vehicle_id: str | None = None) -> list[TagAssignment]:
        """Assignment history, oldest first."""

    @abstractmethod
    def vehicle_for_tag(self, tag_id: str, *, at: datetime) -> Vehicle | None:
        """The vehicle that carried the tag at ``at`` (valid_from <= at < valid_to)."""


class WatchlistStore(Protocol):
    """The stolen-vehicle watchlist, one entry per tag and case."""

    @abstractmethod
    def watchlist_add(self, tag_id: str, *, case_no: str, reporter: str | None,
                      reported_at: datetime, note: str = "", at: datetime) -> WatchEntry:
        """Put (or put back) ``tag_id`` under ``case_no`` on the watchlist, status active."""

    @abstractmethod
    def watchlist_remove(self, tag_id: str, *, status: str = "recovered", at: datetime,
                         case_no: str | None = None) -> int:
        """Move the tag's active entries (or only ``case_no``) to ``recovered`` or
        ``withdrawn``; returns how many changed."""

    @abstractmethod
    def watchlist(self, *, status: str | None = "active", tag_id: str | None = None,
                  changed_since: datetime | None = None) -> list[WatchEntry]:
        """Entries (status None: all), by tag then case."""


class AlertStore(Protocol):
    """Alerts, one row per id, with their status history."""

    @abstractmethod
    def upsert_alerts(self, alerts: Sequence[Alert]) -> None:
        """Store alerts in one transaction (as write_batch does with its ``alerts``).

        A new id makes a row with the alert's status. An id already stored is updated, never
        duplicated: ``at`` stays the first, ``last_at`` becomes the latest; tag, reader,
        gateway and detail follow the latest hit; the sighting id joins its list; the status
        is kept (it changes only through set_alert_status). Writing one alert twice changes
        nothing."""

    @abstractmethod
    def get_alert(self, alert_id: str) -> StoredAlert | None: ...

    @abstractmethod
    def alerts(self, *, status: str | Sequence[str] | None = None, kind: str | None = None,
               tag_id: str | None = None, since: datetime | None = None,
               until: datetime | None = None, limit: int | None = None,
               changed_since: datetime | None = None) -> list[StoredAlert]:
        """Alerts by first-raised time ``at``, newest first; ``changed_since`` keeps those
        whose latest change (``updated_at``) is at or after it (the live feed's replay)."""

    @abstractmethod
    def set_alert_status(self, alert_id: str, status: str, *, actor: str, at: datetime,
                         note: str | None = None) -> StoredAlert:
        """Change an alert's status, recording who and when. Raises NotFound."""


class AuditStore(Protocol):
    """Who did what, and why (append only)."""

    @abstractmethod
    def append_audit(self, *, actor: str, action: str, reason: str,
                     params: dict[str, Any], at: datetime, role: str | None = None,
                     client: str | None = None) -> AuditEntry:
        """Append one record to the hash chain (serialised: concurrent writers never fork
        it) and return it with its id and hash."""

    @abstractmethod
    def audit_chain(self, *, after_id: int = 0, limit: int = 10_000) -> list[AuditEntry]:
        """Records in the chain's order (by id) after ``after_id``."""

    @abstractmethod
    def audit_head(self) -> AuditEntry | None:
        """The last record of the chain, if any."""

    @abstractmethod
    def audit_log(self, *, since: datetime | None = None, until: datetime | None = None,
                  actor: str | None = None, action: str | None = None,
                  limit: int | None = None) -> list[AuditEntry]:
        """Audit entries, oldest first."""


class DeadLetterStore(Protocol):
    """Messages the centre refused (written with the batches, read for diagnosis)."""

    @abstractmethod
    def dead_letters(self, *, since: datetime | None = None, reason: str | None = None,
                     limit: int | None = 100) -> list[DeadLetter]:
        """Refused messages, newest first."""

    @abstractmethod
    def count_dead_letters(self, *, reason: str | None = None) -> int: ...


class StorageAdmin(Protocol):
    """The database as a whole: migrations, retention, counts, closing."""

    @abstractmethod
    def migrate(self) -> list[str]:
        """Apply the numbered migrations not yet applied; return their names. Idempotent."""

    @abstractmethod
    def counts(self) -> dict[str, int]:
        """Row count of every table (exact; a count of the hypertable scans it)."""

    @abstractmethod
    def info(self) -> dict[str, Any]:
        """Backend, migrations applied and pending, server facts, row counts (for pak db info)."""

    @abstractmethod
    def retention(self, days: float, *, now: datetime) -> dict[str, Any]:
        """Copy sightings older than ``days`` that an open case or alert needs into evidence,
        then drop the old sightings (see tracker/storage/retention.py). Returns what it did."""

    @abstractmethod
    def close(self) -> None: ...


class Storage(BatchSink, SightingStore, GatewayStore, RegistryStore, WatchlistStore, AlertStore,
              AuditStore, DeadLetterStore, StorageAdmin):
    """A connection (or pool) to one database, every port at once. Thread-safe for one writer
    and many readers."""

    url: str

    def __enter__(self) -> Storage:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
