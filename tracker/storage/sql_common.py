"""What the two SQL backends (SQLite, TimescaleDB) share: the statements and row -> record
conversions of every query that is the same in both dialects, written once.

The shared statements use the qmark placeholder ``?``; a backend's :meth:`SqlStorage._exec`
turns them into its own style (psycopg's ``%s``), so no shared statement may hold a literal
``?`` or ``%``. Everything else that differs is a small hook a backend supplies::

    hook                     SQLite                     TimescaleDB
    _exec / _executemany     sqlite3 connection         psycopg connection (?  ->  %s)
    _reading / _writing      reader / writer connection one pooled transaction
    _to_time / _from_time    int microseconds (UTC)     aware datetime (timestamptz)
    _to_json / _from_json    JSON text                  jsonb
    _in_list                 col IN (?, ?, ...)         col = ANY(?::text[])
    COLLATE                  "" (binary already)        ' COLLATE "C"' (byte order)
    GREATEST / LEAST         max / min (scalar)         GREATEST / LEAST

The write path of sightings (``write_batch``) stays in each backend, tuned to its engine.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from functools import cache
from typing import Any, ClassVar, Final, Generic, Protocol, TypeVar

from pak.types import Sighting, SightingId
from tracker.storage.audit_chain import GENESIS, canonical_params, record_hash
from tracker.storage.base import Alert, DeadLetter, NotFound, Storage, StorageError
from tracker.storage.columns import SIGHTING_COLUMNS
from tracker.storage.records import (
    ALERT_STATUSES,
    WATCH_STATUSES,
    AlertStatusChange,
    AuditEntry,
    GatewayRecord,
    Reader,
    StoredAlert,
    TagAssignment,
    TagPass,
    Vehicle,
    WatchEntry,
)
from tracker.storage.retention import EVIDENCE_CONDITION

__all__ = ["SELECT_SIGHTING_COLS", "SIGHTING_COLS", "TABLES", "Cursor", "SqlStorage"]

C = TypeVar("C")

#: The sighting columns as a list for INSERT, and as SELECT-ed from ``sightings AS s``.
SIGHTING_COLS: Final = ", ".join(SIGHTING_COLUMNS)
SELECT_SIGHTING_COLS: Final = ", ".join(f"s.{c}" for c in SIGHTING_COLUMNS)

#: Every table the schema holds besides schema_migrations (Storage.counts).
TABLES: Final = ("sightings", "evidence_sightings", "readers", "vehicles", "tag_assignments",
                 "watchlist", "alerts", "dead_letters", "audit_log", "gateways")

_READER_COLS: Final = "reader_id, name, latitude, longitude, bearings, timezone"
_VEHICLE_COLS: Final = "vehicle_id, plate, owner, kind, colour, key_tag_id, unaccompanied_check"
_WATCH_COLS: Final = "tag_id, case_no, reporter, reported_at, note, status, changed_at"
_GATEWAY_COLS: Final = "gateway_id, state, state_at, health, health_at"
_ALERT_COLS: Final = ("alert_id, kind, at, last_at, updated_at, status, tag_id, reader_id, "
                      "gateway_id, detail")

_DEAD_LETTER: Final = """
INSERT INTO dead_letters (topic, payload, reason, detail, received_at) VALUES (?, ?, ?, ?, ?)
"""
_ALERT_SIGHTING: Final = """
INSERT INTO alert_sightings (alert_id, gateway_id, spool_id, seq, added_at)
VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING
"""


@cache
def _alert_upsert(greatest: str, least: str) -> str:
    """The alert upsert of base.Storage.upsert_alerts in a dialect (its GREATEST and LEAST)."""
    return f"""
INSERT INTO alerts AS a ({_ALERT_COLS})
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (alert_id) DO UPDATE SET
    at = {least}(a.at, EXCLUDED.at),
    last_at = {greatest}(a.last_at, EXCLUDED.last_at),
    updated_at = {greatest}(a.updated_at, EXCLUDED.updated_at),
    tag_id = CASE WHEN EXCLUDED.last_at >= a.last_at THEN coalesce(EXCLUDED.tag_id, a.tag_id)
                  ELSE a.tag_id END,
    reader_id = CASE WHEN EXCLUDED.last_at >= a.last_at
                     THEN coalesce(EXCLUDED.reader_id, a.reader_id) ELSE a.reader_id END,
    gateway_id = CASE WHEN EXCLUDED.last_at >= a.last_at
                      THEN coalesce(EXCLUDED.gateway_id, a.gateway_id) ELSE a.gateway_id END,
    detail = CASE WHEN EXCLUDED.last_at >= a.last_at THEN EXCLUDED.detail ELSE a.detail END
"""

# A gateway's state (health) is replaced only by a message at least as new as the stored one.
_NEWER_STATE: Final = ("EXCLUDED.state_at IS NOT NULL AND "
                       "(g.state_at IS NULL OR EXCLUDED.state_at >= g.state_at)")
_NEWER_HEALTH: Final = ("EXCLUDED.health_at IS NOT NULL AND "
                        "(g.health_at IS NULL OR EXCLUDED.health_at >= g.health_at)")


class Cursor(Protocol):
    """What the shared code uses of a DB-API cursor (sqlite3's and psycopg's alike)."""

    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...


class _Where:
    """The conditions of a WHERE clause, with their parameters in order. A condition whose
    value is None (an unset filter) is left out."""

    __slots__ = ("conds", "params")

    def __init__(self) -> None:
        self.conds: list[str] = []
        self.params: list[Any] = []

    def __call__(self, cond: str, value: Any) -> None:
        """Add ``cond`` (one ``?``) with ``value``, unless value is None."""
        if value is not None:
            self.conds.append(cond)
            self.params.append(value)

    def add(self, cond: str, params: Sequence[Any]) -> None:
        self.conds.append(cond)
        self.params.extend(params)

    def sql(self) -> str:
        return " WHERE " + " AND ".join(self.conds) if self.conds else ""

    def limit(self, limit: int | None) -> str:
        """`` LIMIT ?`` (its parameter added last), or "" for no limit."""
        if limit is None:
            return ""
        self.params.append(int(limit))
        return " LIMIT ?"


class SqlStorage(Storage, Generic[C]):
    """The queries both SQL backends run alike; ``C`` is the backend's connection type."""

    #: Appended to a text column in ORDER BY so both backends sort by bytes.
    COLLATE: ClassVar[str]
    #: Two-argument maximum and minimum of the dialect (only used on NOT NULL columns: the
    #: two differ on NULL).
    GREATEST: ClassVar[str]
    LEAST: ClassVar[str]
    #: Locks the rows a SELECT reads until the transaction ends ("" where a write
    #: transaction already locks the whole database).
    FOR_UPDATE: ClassVar[str]
    #: Serialises appends to the audit chain until the transaction ends ("" where a write
    #: transaction already locks the whole database).
    AUDIT_LOCK: ClassVar[str] = ""
    #: The most values one :meth:`_in_list` may be given (host-parameter limits).
    IN_LIST_MAX: ClassVar[int]

    # --- hooks ------------------------------------------------------------------------------

    @abstractmethod
    def _reading(self) -> AbstractContextManager[C]:
        """A connection for queries; driver errors leave it as StorageError."""

    def _looking_up(self) -> AbstractContextManager[C]:
        """A connection for the short lookups an alert needs (tracker/storage/timeouts.py:
        a backend with statement timeouts gives them the shortest)."""
        return self._reading()

    @abstractmethod
    def _writing(self) -> AbstractContextManager[C]:
        """A connection in one write transaction, committed at the end, rolled back on any
        error; driver errors leave it as StorageError (or StorageUnavailable)."""

    @abstractmethod
    def _exec(self, conn: C, sql: str, params: Sequence[Any] = (), *,
              prepare: bool | None = None) -> Cursor:
        """Run one shared (``?``-style) statement; ``prepare`` is a hint a backend may
        ignore."""

    @abstractmethod
    def _executemany(self, conn: C, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        """Run one shared (``?``-style) statement once per row."""

    @abstractmethod
    def _in_list(self, col: str, values: Sequence[str]) -> tuple[str, list[Any]]:
        """The condition "``col`` is one of ``values``" (none: false) and its parameters."""

    @staticmethod
    @abstractmethod
    def _to_time(t: datetime) -> Any:
        """A datetime as the time columns hold it (a naive one is read as UTC)."""

    @staticmethod
    @abstractmethod
    def _from_time(v: Any) -> datetime:
        """A time column's value as an aware UTC datetime."""

    @staticmethod
    @abstractmethod
    def _to_json(obj: Any) -> Any:
        """A JSON value (dict, list) as the JSON columns hold it."""

    @staticmethod
    @abstractmethod
    def _from_json(v: Any) -> Any:
        """A JSON column's value as Python data."""

    @staticmethod
    @abstractmethod
    def _to_sighting(r: Any) -> Sighting:
        """A row of SELECT_SIGHTING_COLS as a Sighting (the backend's own function: it is
        the hot read path)."""

    # --- helpers ----------------------------------------------------------------------------

    def _to_time_opt(self, t: datetime | None) -> Any:
        return None if t is None else self._to_time(t)

    def _from_time_opt(self, v: Any) -> datetime | None:
        return None if v is None else self._from_time(v)

    def _query(self, sql: str, params: Sequence[Any] = (), *,
               prepare: bool | None = None, lookup: bool = False) -> list[Any]:
        """The rows of one shared (``?``-style) query (``lookup``: a short one, see
        :meth:`_looking_up`)."""
        with self._looking_up() if lookup else self._reading() as conn:
            return self._exec(conn, sql, params, prepare=prepare).fetchall()

    def _order(self, *, desc: bool = False) -> str:
        """The order of sightings (``s``): first_seen, then the sighting id."""
        c, d = self.COLLATE, " DESC" if desc else ""
        return f"s.first_seen{d}, s.gateway_id{c}{d}, s.spool_id{c}{d}, s.seq{d}"

    def _sightings_where(self, *, tag_id: str | None = None,
                         reader_ids: Sequence[str] | None = None, since: datetime | None = None,
                         until: datetime | None = None) -> _Where:
        """The filter of a sightings query on ``s``."""
        w = _Where()
        w("s.tag_id = ?", tag_id)
        if reader_ids is not None:
            w.add(*self._in_list("s.reader_id", list(reader_ids)))
        w("s.first_seen >= ?", self._to_time_opt(since))
        w("s.first_seen < ?", self._to_time_opt(until))
        return w

    def _iter_sql(self, *, since: datetime | None,
                  until: datetime | None) -> tuple[str, list[Any]]:
        """The statement (shared style) and parameters of iter_sightings."""
        w = self._sightings_where(since=since, until=until)
        return (f"SELECT {SELECT_SIGHTING_COLS} FROM sightings s{w.sql()} "
                f"ORDER BY {self._order()}"), w.params

    # --- row -> record --------------------------------------------------------------------

    def _reader(self, r: Sequence[Any]) -> Reader:
        return Reader(r[0], r[1], r[2], r[3],
                      {int(k): float(v) for k, v in self._from_json(r[4]).items()}, r[5])

    @staticmethod
    def _vehicle(r: Sequence[Any]) -> Vehicle:
        return Vehicle(r[0], r[1], r[2], r[3], r[4], r[5], bool(r[6]))

    def _watch(self, r: Sequence[Any]) -> WatchEntry:
        return WatchEntry(r[0], r[1], r[2], self._from_time(r[3]), r[4], r[5],
                          self._from_time(r[6]))

    def _gateway(self, r: Sequence[Any]) -> GatewayRecord:
        return GatewayRecord(r[0], r[1], self._from_time_opt(r[2]),
                             None if r[3] is None else self._from_json(r[3]),
                             self._from_time_opt(r[4]))

    # --- sightings queries -------------------------------------------------------------------

    def sightings(
        self,
        *,
        tag_id: str | None = None,
        reader_ids: Sequence[str] | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int | None = None,
    ) -> list[Sighting]:
        w = self._sightings_where(tag_id=tag_id, reader_ids=reader_ids, since=since,
                                  until=until)
        sql = (f"SELECT {SELECT_SIGHTING_COLS} FROM sightings s{w.sql()} "
               f"ORDER BY {self._order()}{w.limit(limit)}")
        conv = self._to_sighting
        return [conv(r) for r in self._query(sql, w.params, prepare=True)]

    def get_sighting(self, sid: SightingId) -> Sighting | None:
        rows = self._query(f"SELECT {SELECT_SIGHTING_COLS} FROM sightings s "
                           "WHERE s.gateway_id = ? AND s.spool_id = ? AND s.seq = ? "
                           "ORDER BY s.first_seen LIMIT 1",
                           (sid.gateway_id, sid.spool_id, sid.seq), prepare=True)
        return self._to_sighting(rows[0]) if rows else None

    def recent_passes(self, tag_id: str, *, before: datetime | None = None,
                      limit: int = 5) -> list[Sighting]:
        w = self._sightings_where(tag_id=tag_id, until=before)
        conv = self._to_sighting
        return [conv(r) for r in self._query(
            f"SELECT {SELECT_SIGHTING_COLS} FROM sightings s{w.sql()} "
            f"ORDER BY {self._order(desc=True)}{w.limit(limit)}", w.params, prepare=True,
            lookup=True)]

    def evidence_sightings(self, *, tag_id: str | None = None) -> list[Sighting]:
        w = self._sightings_where(tag_id=tag_id)
        conv = self._to_sighting
        return [conv(r) for r in self._query(
            f"SELECT {SELECT_SIGHTING_COLS} FROM evidence_sightings s{w.sql()} "
            f"ORDER BY {self._order()}", w.params)]

    def count_sightings(self) -> int:
        return int(self._query("SELECT count(*) FROM sightings")[0][0])

    def _rows_of_tags(self, cols: str, tag_ids: Sequence[str], *, since: datetime,
                      until: datetime) -> Iterator[Any]:
        """Rows of ``cols`` of the sightings of ``tag_ids`` with ``since <= first_seen <
        until``, in (tag_id, first_seen) order. One statement per IN_LIST_MAX tags
        (TimescaleDB: one for all): the (tag_id, first_seen) index per tag, chunks outside
        the window excluded."""
        tags = sorted(set(tag_ids))
        for i in range(0, len(tags), self.IN_LIST_MAX):
            cond, params = self._in_list("s.tag_id", tags[i:i + self.IN_LIST_MAX])
            yield from self._query(
                f"SELECT {cols} FROM sightings s WHERE {cond} "
                "AND s.first_seen >= ? AND s.first_seen < ? "
                f"ORDER BY s.tag_id{self.COLLATE}, {self._order()}",
                [*params, self._to_time(since), self._to_time(until)], prepare=True)

    def sightings_of_tags(self, tag_ids: Sequence[str], *, since: datetime,
                          until: datetime) -> list[Sighting]:
        conv = self._to_sighting
        return [conv(r) for r in self._rows_of_tags(SELECT_SIGHTING_COLS, tag_ids,
                                                    since=since, until=until)]

    def tag_passes(self, tag_ids: Sequence[str], *, since: datetime,
                   until: datetime) -> list[TagPass]:
        # sightings_of_tags' statement, seven columns: the clone checks read thousands of
        # rows a second, and a whole Sighting per row costs more than the check itself
        t = self._from_time
        return [TagPass(r[0], r[1], t(r[2]), t(r[3]), r[4], r[5], r[6])
                for r in self._rows_of_tags(
                    "s.tag_id, s.reader_id, s.first_seen, s.last_seen, s.gateway_id, "
                    "s.spool_id, s.seq", tag_ids, since=since, until=until)]

    def close_incomplete(self, cutoffs: Mapping[str, datetime], default: datetime, *,
                         limit: int) -> int:
        """Close, flagged incomplete, up to ``limit`` open sightings first seen before their
        gateway's cutoff (``cutoffs``; others: ``default``), oldest first: one statement.
        Returns how many were closed."""
        times = [self._to_time(t) for t in cutoffs.values()]
        latest = max([*times, self._to_time(default)])
        case: list[Any] = []
        for gw, t in zip(cutoffs, times, strict=True):
            case += [gw, t]
        cutoff = ("CASE s.gateway_id " + "WHEN ? THEN ? " * len(cutoffs) + "ELSE ? END"
                  if cutoffs else "?")
        with self._writing() as conn:
            cur = self._exec(conn, f"""
                UPDATE sightings SET state = 'closed', incomplete = TRUE
                WHERE state = 'open' AND first_seen < ?
                  AND (gateway_id, spool_id, seq) IN (
                    SELECT s.gateway_id, s.spool_id, s.seq FROM sightings s
                    WHERE s.state = 'open' AND s.first_seen < ? AND s.first_seen < {cutoff}
                    ORDER BY s.first_seen LIMIT ?)""",
                (latest, latest, *case, self._to_time(default), limit))
            return int(cur.rowcount)

    def count_by_reader(self, *, since: datetime, until: datetime) -> dict[str, int]:
        return {r: int(n) for r, n in self._query(
            "SELECT reader_id, count(*) FROM sightings WHERE first_seen >= ? "
            "AND first_seen < ? GROUP BY reader_id",
            (self._to_time(since), self._to_time(until)), prepare=True)}

    def counts(self) -> dict[str, int]:
        row = self._query("SELECT " + ", ".join(f"(SELECT count(*) FROM {t})" for t in TABLES))
        return {t: int(n) for t, n in zip(TABLES, row[0], strict=True)}

    def _copy_evidence(self, conn: C, *, cutoff: datetime, now: datetime) -> int:
        """Copy the sightings older than ``cutoff`` that an open matter needs
        (retention.EVIDENCE_CONDITION) into evidence_sightings; how many rows were."""
        set_all = ", ".join(f"{c} = EXCLUDED.{c}" for c in SIGHTING_COLUMNS[3:])
        return int(self._exec(conn, f"""
            INSERT INTO evidence_sightings ({SIGHTING_COLS}, stored_at, copied_at)
            SELECT {SELECT_SIGHTING_COLS}, s.stored_at, ? FROM sightings s
            WHERE s.first_seen < ? AND {EVIDENCE_CONDITION}
            ON CONFLICT (gateway_id, spool_id, seq, first_seen) DO UPDATE SET {set_all}
            """, (self._to_time(now), self._to_time(cutoff))).rowcount)

    # --- readers, vehicles, tag assignments -------------------------------------------------

    def upsert_readers(self, readers: Iterable[Reader]) -> None:
        rows = [(r.reader_id, r.name, r.latitude, r.longitude,
                 self._to_json({str(k): v for k, v in r.bearings.items()}), r.timezone)
                for r in readers]
        with self._writing() as conn:
            self._executemany(conn, f"""
                INSERT INTO readers ({_READER_COLS}) VALUES (?, ?, ?, ?, ?, ?)
                ON CONFLICT (reader_id) DO UPDATE SET name = EXCLUDED.name,
                  latitude = EXCLUDED.latitude, longitude = EXCLUDED.longitude,
                  bearings = EXCLUDED.bearings, timezone = EXCLUDED.timezone
                """, rows)

    def get_reader(self, reader_id: str) -> Reader | None:
        rows = self._query(f"SELECT {_READER_COLS} FROM readers WHERE reader_id = ?",
                           (reader_id,), prepare=True)
        return self._reader(rows[0]) if rows else None

    def readers(self) -> list[Reader]:
        return [self._reader(r) for r in self._query(
            f"SELECT {_READER_COLS} FROM readers ORDER BY reader_id{self.COLLATE}")]

    def upsert_vehicles(self, vehicles: Iterable[Vehicle]) -> None:
        # A bool is stored as 1/0 by sqlite3 and as boolean by psycopg.
        rows = [(v.vehicle_id, v.plate, v.owner, v.kind, v.colour, v.key_tag_id,
                 v.unaccompanied_check) for v in vehicles]
        with self._writing() as conn:
            self._executemany(conn, f"""
                INSERT INTO vehicles ({_VEHICLE_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?)
                ON CONFLICT (vehicle_id) DO UPDATE SET plate = EXCLUDED.plate,
                  owner = EXCLUDED.owner, kind = EXCLUDED.kind, colour = EXCLUDED.colour,
                  key_tag_id = EXCLUDED.key_tag_id,
                  unaccompanied_check = EXCLUDED.unaccompanied_check
                """, rows)

    def get_vehicle(self, vehicle_id: str) -> Vehicle | None:
        rows = self._query(f"SELECT {_VEHICLE_COLS} FROM vehicles WHERE vehicle_id = ?",
                           (vehicle_id,), prepare=True)
        return self._vehicle(rows[0]) if rows else None

    def vehicles(self) -> list[Vehicle]:
        return [self._vehicle(r) for r in self._query(
            f"SELECT {_VEHICLE_COLS} FROM vehicles ORDER BY vehicle_id{self.COLLATE}")]

    def paired_vehicles(self) -> list[Vehicle]:
        # A bare unaccompanied_check is a truth value in both dialects (1/0, boolean).
        return [self._vehicle(r) for r in self._query(
            f"SELECT {_VEHICLE_COLS} FROM vehicles WHERE unaccompanied_check "
            "AND key_tag_id IS NOT NULL AND key_tag_id <> '' "
            f"ORDER BY vehicle_id{self.COLLATE}")]

    def assign_tag(self, tag_id: str, vehicle_id: str, *, at: datetime) -> None:
        t = self._to_time(at)
        with self._writing() as conn:
            self._exec(conn, "UPDATE tag_assignments SET valid_to = ? WHERE valid_to IS NULL "
                             "AND (tag_id = ? OR vehicle_id = ?) AND valid_from <= ?",
                       (t, tag_id, vehicle_id, t))
            self._exec(conn, "INSERT INTO tag_assignments (tag_id, vehicle_id, valid_from) "
                             "VALUES (?, ?, ?) ON CONFLICT (tag_id, valid_from) DO UPDATE SET "
                             "vehicle_id = EXCLUDED.vehicle_id, valid_to = NULL",
                       (tag_id, vehicle_id, t))

    def release_tag(self, tag_id: str, *, at: datetime) -> None:
        t = self._to_time(at)
        with self._writing() as conn:
            self._exec(conn, "UPDATE tag_assignments SET valid_to = ? WHERE valid_to IS NULL "
                             "AND tag_id = ? AND valid_from <= ?", (t, tag_id, t))

    def tag_assignments(self, *, tag_id: str | None = None,
                        vehicle_id: str | None = None) -> list[TagAssignment]:
        w = _Where()
        w("tag_id = ?", tag_id)
        w("vehicle_id = ?", vehicle_id)
        return [TagAssignment(r[0], r[1], self._from_time(r[2]), self._from_time_opt(r[3]))
                for r in self._query(
                    "SELECT tag_id, vehicle_id, valid_from, valid_to FROM tag_assignments"
                    f"{w.sql()} ORDER BY valid_from, tag_id{self.COLLATE}", w.params)]

    def vehicle_for_tag(self, tag_id: str, *, at: datetime) -> Vehicle | None:
        t = self._to_time(at)
        cols = ", ".join(f"v.{c.strip()}" for c in _VEHICLE_COLS.split(","))
        rows = self._query(
            f"SELECT {cols} FROM tag_assignments a JOIN vehicles v USING (vehicle_id) "
            "WHERE a.tag_id = ? AND a.valid_from <= ? AND (a.valid_to IS NULL "
            "OR a.valid_to > ?) ORDER BY a.valid_from DESC LIMIT 1", (tag_id, t, t),
            prepare=True, lookup=True)
        return self._vehicle(rows[0]) if rows else None

    # --- watchlist ----------------------------------------------------------------------------

    def watchlist_add(self, tag_id: str, *, case_no: str, reporter: str | None,
                      reported_at: datetime, note: str = "", at: datetime) -> WatchEntry:
        with self._writing() as conn:
            self._exec(conn, f"""
                INSERT INTO watchlist ({_WATCH_COLS}) VALUES (?, ?, ?, ?, ?, 'active', ?)
                ON CONFLICT (tag_id, case_no) DO UPDATE SET reporter = EXCLUDED.reporter,
                  reported_at = EXCLUDED.reported_at, note = EXCLUDED.note,
                  status = 'active', changed_at = EXCLUDED.changed_at
                """, (tag_id, case_no, reporter, self._to_time(reported_at), note,
                      self._to_time(at)))
        return WatchEntry(tag_id, case_no, reporter, reported_at, note, "active", at)

    def watchlist_remove(self, tag_id: str, *, status: str = "recovered", at: datetime,
                         case_no: str | None = None) -> int:
        if status not in WATCH_STATUSES or status == "active":
            raise StorageError(f"a watchlist entry leaves as recovered or withdrawn, "
                               f"not {status!r}")
        sql = ("UPDATE watchlist SET status = ?, changed_at = ? "
               "WHERE tag_id = ? AND status = 'active'")
        params: list[Any] = [status, self._to_time(at), tag_id]
        if case_no is not None:
            sql += " AND case_no = ?"
            params.append(case_no)
        with self._writing() as conn:
            return int(self._exec(conn, sql, params).rowcount)

    def watchlist(self, *, status: str | None = "active", tag_id: str | None = None,
                  changed_since: datetime | None = None) -> list[WatchEntry]:
        w = _Where()
        w("status = ?", status)
        w("tag_id = ?", tag_id)
        w("changed_at >= ?", self._to_time_opt(changed_since))
        c = self.COLLATE
        return [self._watch(r) for r in self._query(
            f"SELECT {_WATCH_COLS} FROM watchlist{w.sql()} ORDER BY tag_id{c}, case_no{c}",
            w.params)]

    # --- alerts -------------------------------------------------------------------------------

    def _write_batch_rest(self, conn: C, dead_letters: Sequence[DeadLetter],
                          alerts: Sequence[Alert]) -> None:
        """The dead letters and alerts of a write_batch, in its transaction (its sightings
        are the backend's own, tuned, part)."""
        if dead_letters:
            self._executemany(conn, _DEAD_LETTER, [
                (d.topic, d.payload, d.reason, d.detail, self._to_time(d.received_at))
                for d in dead_letters])
        if alerts:
            self._upsert_alerts(conn, alerts)

    def _upsert_alerts(self, conn: C, alerts: Sequence[Alert]) -> None:
        rows, links = [], []
        for a in alerts:
            if a.status not in ALERT_STATUSES:
                raise StorageError(f"alert {a.alert_id}: unknown status {a.status!r}")
            at = self._to_time(a.at)
            rows.append((a.alert_id, a.kind, at, at, at, a.status, a.tag_id, a.reader_id,
                         a.gateway_id, self._to_json(a.detail)))
            if a.sighting is not None:
                sid = a.sighting
                links.append((a.alert_id, sid.gateway_id, sid.spool_id, sid.seq, at))
        self._executemany(conn, _alert_upsert(self.GREATEST, self.LEAST), rows)
        if links:
            self._executemany(conn, _ALERT_SIGHTING, links)

    def upsert_alerts(self, alerts: Sequence[Alert]) -> None:
        with self._writing() as conn:
            self._upsert_alerts(conn, alerts)

    def _alert_rows(self, conn: C, rows: list[Any]) -> list[StoredAlert]:
        """Alert rows (``_ALERT_COLS``) with their sighting ids and status history, read on
        ``conn`` (one query of each per IN_LIST_MAX alerts)."""
        ids = [r[0] for r in rows]
        sids: dict[str, list[SightingId]] = {i: [] for i in ids}
        hist: dict[str, list[AlertStatusChange]] = {i: [] for i in ids}
        c = self.COLLATE
        for i in range(0, len(ids), self.IN_LIST_MAX):
            cond, params = self._in_list("alert_id", ids[i:i + self.IN_LIST_MAX])
            for aid, g, sp, sq in self._exec(conn, (
                    f"SELECT alert_id, gateway_id, spool_id, seq FROM alert_sightings "
                    f"WHERE {cond} ORDER BY added_at, gateway_id{c}, spool_id{c}, seq"),
                    params).fetchall():
                sids[aid].append(SightingId(g, sp, sq))
            for aid, at, actor, frm, to, note in self._exec(conn, (
                    "SELECT alert_id, at, actor, from_status, to_status, note FROM "
                    f"alert_status_changes WHERE {cond} ORDER BY at, id"), params).fetchall():
                hist[aid].append(AlertStatusChange(self._from_time(at), actor, frm, to, note))
        return [StoredAlert(
            alert_id=r[0], kind=r[1], at=self._from_time(r[2]), last_at=self._from_time(r[3]),
            updated_at=self._from_time(r[4]), status=r[5], tag_id=r[6], reader_id=r[7],
            gateway_id=r[8], detail=self._from_json(r[9]), sightings=tuple(sids[r[0]]),
            history=tuple(hist[r[0]])) for r in rows]

    def get_alert(self, alert_id: str) -> StoredAlert | None:
        with self._looking_up() as conn:
            rows = self._exec(conn, f"SELECT {_ALERT_COLS} FROM alerts WHERE alert_id = ?",
                              (alert_id,), prepare=True).fetchall()
            found = self._alert_rows(conn, rows)
        return found[0] if found else None

    def alerts(self, *, status: str | Sequence[str] | None = None, kind: str | None = None,
               tag_id: str | None = None, since: datetime | None = None,
               until: datetime | None = None, limit: int | None = None,
               changed_since: datetime | None = None) -> list[StoredAlert]:
        w = _Where()
        if status is not None:
            w.add(*self._in_list("status", [status] if isinstance(status, str)
                                 else list(status)))
        w("kind = ?", kind)
        w("tag_id = ?", tag_id)
        w("at >= ?", self._to_time_opt(since))
        w("at < ?", self._to_time_opt(until))
        w("updated_at >= ?", self._to_time_opt(changed_since))
        sql = (f"SELECT {_ALERT_COLS} FROM alerts{w.sql()} "
               f"ORDER BY at DESC, alert_id{self.COLLATE}{w.limit(limit)}")
        with self._reading() as conn:
            return self._alert_rows(conn, self._exec(conn, sql, w.params).fetchall())

    def set_alert_status(self, alert_id: str, status: str, *, actor: str, at: datetime,
                         note: str | None = None) -> StoredAlert:
        if status not in ALERT_STATUSES:
            raise StorageError(f"unknown alert status {status!r}")
        t = self._to_time(at)
        with self._writing() as conn:
            row = self._exec(conn, f"SELECT status FROM alerts WHERE alert_id = ?"
                                   f"{self.FOR_UPDATE}", (alert_id,)).fetchone()
            if row is None:
                raise NotFound(f"no alert {alert_id!r}")
            self._exec(conn, f"UPDATE alerts SET status = ?, updated_at = "
                             f"{self.GREATEST}(updated_at, ?) WHERE alert_id = ?",
                       (status, t, alert_id))
            self._exec(conn, "INSERT INTO alert_status_changes (alert_id, at, actor, "
                             "from_status, to_status, note) VALUES (?, ?, ?, ?, ?, ?)",
                       (alert_id, t, actor, row[0], status, note))
            rows = self._exec(conn, f"SELECT {_ALERT_COLS} FROM alerts WHERE alert_id = ?",
                              (alert_id,)).fetchall()
            return self._alert_rows(conn, rows)[0]

    # --- dead letters, audit, gateways ------------------------------------------------------

    def dead_letters(self, *, since: datetime | None = None, reason: str | None = None,
                     limit: int | None = 100) -> list[DeadLetter]:
        w = _Where()
        w("received_at >= ?", self._to_time_opt(since))
        w("reason = ?", reason)
        sql = ("SELECT topic, payload, reason, detail, received_at FROM dead_letters"
               f"{w.sql()} ORDER BY received_at DESC, id DESC{w.limit(limit)}")
        return [DeadLetter(r[0], bytes(r[1]), r[2], r[3], self._from_time(r[4]))
                for r in self._query(sql, w.params)]

    def count_dead_letters(self, *, reason: str | None = None) -> int:
        if reason is None:
            return int(self._query("SELECT count(*) FROM dead_letters")[0][0])
        return int(self._query("SELECT count(*) FROM dead_letters WHERE reason = ?",
                               (reason,))[0][0])

    def append_audit(self, *, actor: str, action: str, reason: str,
                     params: dict[str, Any], at: datetime, role: str | None = None,
                     client: str | None = None) -> AuditEntry:
        clean = canonical_params(params)
        with self._writing() as conn:
            if self.AUDIT_LOCK:  # one writer at a time extends the chain (never a fork)
                self._exec(conn, self.AUDIT_LOCK)
            row = self._exec(conn, "SELECT hash FROM audit_log WHERE hash IS NOT NULL "
                                   "ORDER BY id DESC LIMIT 1").fetchone()
            prev = row[0] if row else GENESIS
            digest = record_hash(prev, at=at, actor=actor, role=role, client=client,
                                 action=action, reason=reason, params=clean)
            new = self._exec(conn, "INSERT INTO audit_log (at, actor, action, reason, params, "
                                   "role, client, prev_hash, hash) "
                                   "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
                             (self._to_time(at), actor, action, reason, self._to_json(clean),
                              role, client, prev, digest), prepare=True).fetchone()
        return AuditEntry(int(new[0]), at, actor, action, reason, clean, role, client, prev,
                          digest)

    _AUDIT_COLS: Final = "id, at, actor, action, reason, params, role, client, prev_hash, hash"

    def _audit_entry(self, r: Sequence[Any]) -> AuditEntry:
        return AuditEntry(int(r[0]), self._from_time(r[1]), r[2], r[3], r[4],
                          self._from_json(r[5]), r[6], r[7], r[8], r[9])

    def audit_log(self, *, since: datetime | None = None, until: datetime | None = None,
                  actor: str | None = None, action: str | None = None,
                  limit: int | None = None) -> list[AuditEntry]:
        w = _Where()
        w("at >= ?", self._to_time_opt(since))
        w("at < ?", self._to_time_opt(until))
        w("actor = ?", actor)
        w("action = ?", action)
        sql = (f"SELECT {self._AUDIT_COLS} FROM audit_log"
               f"{w.sql()} ORDER BY at, id{w.limit(limit)}")
        return [self._audit_entry(r) for r in self._query(sql, w.params)]

    def audit_chain(self, *, after_id: int = 0, limit: int = 10_000) -> list[AuditEntry]:
        return [self._audit_entry(r) for r in self._query(
            f"SELECT {self._AUDIT_COLS} FROM audit_log WHERE id > ? ORDER BY id LIMIT ?",
            (after_id, limit))]

    def audit_head(self) -> AuditEntry | None:
        rows = self._query(f"SELECT {self._AUDIT_COLS} FROM audit_log ORDER BY id DESC LIMIT 1")
        return self._audit_entry(rows[0]) if rows else None

    def record_gateway(self, gateway_id: str, *, state: str | None = None,
                       health: dict[str, Any] | None = None, at: datetime) -> None:
        t = self._to_time(at)
        with self._writing() as conn:
            self._exec(conn, f"""
                INSERT INTO gateways AS g ({_GATEWAY_COLS}) VALUES (?, ?, ?, ?, ?)
                ON CONFLICT (gateway_id) DO UPDATE SET
                  state = CASE WHEN {_NEWER_STATE} THEN EXCLUDED.state ELSE g.state END,
                  state_at = CASE WHEN {_NEWER_STATE} THEN EXCLUDED.state_at
                                  ELSE g.state_at END,
                  health = CASE WHEN {_NEWER_HEALTH} THEN EXCLUDED.health ELSE g.health END,
                  health_at = CASE WHEN {_NEWER_HEALTH} THEN EXCLUDED.health_at
                                   ELSE g.health_at END
                """, (gateway_id, state, t if state is not None else None,
                      None if health is None else self._to_json(health),
                      t if health is not None else None), prepare=True)

    def get_gateway(self, gateway_id: str) -> GatewayRecord | None:
        rows = self._query(f"SELECT {_GATEWAY_COLS} FROM gateways WHERE gateway_id = ?",
                           (gateway_id,), prepare=True)
        return self._gateway(rows[0]) if rows else None

    def gateways(self) -> list[GatewayRecord]:
        return [self._gateway(r) for r in self._query(
            f"SELECT {_GATEWAY_COLS} FROM gateways ORDER BY gateway_id{self.COLLATE}")]
