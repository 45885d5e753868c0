"""The TimescaleDB backend: PostgreSQL with the timescaledb extension, via psycopg 3 and a
psycopg-pool connection pool.

The write path, one transaction per batch::

    batch (deduplicated) --binary COPY, explicit types--> sightings_stage (temp, per session,
        ON COMMIT DELETE ROWS)
    sightings_stage --one statement--> sighting_ids (claim each id: its stored first_seen)
                                   --> sightings (INSERT ... ON CONFLICT DO UPDATE, merge
                                       rule, under the claimed first_seen)
    dead letters, alerts --executemany--> their tables
    COMMIT

The staging table is created once per pooled connection (``_configure``); hot statements are
prepared (``prepare=True``). Errors that mean "the server is not there right now" (refused,
restarting, shut down by an admin, connection lost, no pooled connection within ``timeout``)
become StorageUnavailable after a rollback, so the caller can retry the same batch; the pool
checks each connection before lending it, so the first call after the server is back works.
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, Final

import psycopg
from psycopg.types.json import Jsonb
from psycopg_pool import ConnectionPool

from pak.types import Sighting
from tracker.storage import migrations
from tracker.storage.base import (
    Alert,
    DeadLetter,
    StorageError,
    StorageUnavailable,
)
from tracker.storage.columns import SIGHTING_COLUMNS, cutoff_for, normal_flags, unique_batch
from tracker.storage.one_row import FirstSeenConflicts
from tracker.storage.retention import (
    POLICY_GRACE,
    RETENTION_LOCK,
    SKIPPED_BUSY,
    RetentionMode,
    log_mode,
)
from tracker.storage.sql_common import SIGHTING_COLS, SqlStorage
from tracker.storage.timeouts import QueryKind, StatementTimeouts

__all__ = ["STAGE_TYPES", "TimescaleStorage", "copy_row"]

_log = logging.getLogger("tracker.storage.timescale")

Conn = psycopg.Connection[tuple[Any, ...]]

#: Key of the session advisory lock that serialises migrations between processes.
_MIGRATE_LOCK: Final = 0x70616B5F6D6967  # "pak_mig"

#: PostgreSQL types of the staging table's columns, in SIGHTING_COLUMNS order (binary COPY
#: needs them stated: Python values alone do not say int2 from int8).
STAGE_TYPES: Final[tuple[str, ...]] = (
    "text", "text", "int8", "text", "text", "text", "int4", "text", "int2", "int2[]",
    "timestamptz", "timestamptz", "int8", "float8", "int4", "text[]", "timestamptz",
)


_STAGE_DDL: Final = ("CREATE TEMP TABLE IF NOT EXISTS sightings_stage ("
                     + ", ".join(f"{c} {t}" for c, t in zip(SIGHTING_COLUMNS, STAGE_TYPES,
                                                            strict=True))
                     + ") ON COMMIT DELETE ROWS")
_COPY_STAGE: Final = f"COPY sightings_stage ({SIGHTING_COLS}) FROM STDIN (FORMAT BINARY)"

# The merge rule of pak.types.merge_sightings with a = the stored row (s), b = the incoming
# one (EXCLUDED); see tracker/storage/sqlite.py for the same rule in SQLite's dialect.
# "b is the base" when b is closed and s is not. GREATEST ignores NULLs, as _max_opt does.
# The list unions skip the function call in the common case (one side already holds the other: an
# open message's antennas are a prefix of the closed one's); the flag shortcut relies on
# stored flags being sorted and unique, which copy_row ensures.
#
# One row per sighting id (tracker/storage/one_row.py): the first CTE claims each staged id in
# sighting_ids. A new id is inserted with its own first_seen; an id stored with the same
# first_seen is only locked (the WHERE is false); an id stored with another first_seen is
# "updated" to itself, which locks it and RETURNs the stored time. Every staged row is then
# written under the returned time, or its own when none came back, so the hypertable's key
# (id, first_seen) meets the stored row; the final SELECT lists the conflicts, to count and
# log (the INSERT into sightings runs whether or not anything reads it: a data-modifying CTE
# always does). The claims are taken in key order (byte order, "C", sorts fastest), so two
# writers of the same ids lock them in the same order and never deadlock; a writer touches
# the sightings rows only of ids it holds the claim of, so that INSERT needs no order of its
# own.
_B_BASE: Final = "(EXCLUDED.state = 'closed' AND (s.state <> 'closed' OR s.incomplete))"
_CLAIMED: Final = ", ".join("coalesce(stored, first_seen)" if c == "first_seen" else c
                            for c in SIGHTING_COLUMNS)
_MERGE: Final = f"""
WITH i AS (
    INSERT INTO sighting_ids AS k (gateway_id, spool_id, seq, first_seen)
    SELECT gateway_id, spool_id, seq, first_seen FROM sightings_stage
    ORDER BY gateway_id COLLATE "C", spool_id COLLATE "C", seq
    ON CONFLICT (gateway_id, spool_id, seq) DO UPDATE SET first_seen = k.first_seen
        WHERE k.first_seen <> EXCLUDED.first_seen
    RETURNING k.gateway_id, k.spool_id, k.seq, k.first_seen
), c AS (
    SELECT {", ".join("st." + c for c in SIGHTING_COLUMNS)}, i.first_seen AS stored
    FROM sightings_stage st LEFT JOIN i USING (gateway_id, spool_id, seq)
), merged AS (
INSERT INTO sightings AS s ({SIGHTING_COLS})
SELECT {_CLAIMED} FROM c
ON CONFLICT (gateway_id, spool_id, seq, first_seen) DO UPDATE SET
    state = CASE WHEN s.state = 'closed' OR EXCLUDED.state = 'closed'
                 THEN 'closed' ELSE 'open' END,
    tag_id = CASE WHEN {_B_BASE} THEN EXCLUDED.tag_id ELSE s.tag_id END,
    tag_kind = CASE WHEN {_B_BASE} THEN EXCLUDED.tag_kind ELSE s.tag_kind END,
    tag_type = CASE WHEN {_B_BASE} THEN EXCLUDED.tag_type ELSE s.tag_type END,
    reader_id = CASE WHEN {_B_BASE} THEN EXCLUDED.reader_id ELSE s.reader_id END,
    antenna = CASE WHEN {_B_BASE} THEN coalesce(EXCLUDED.antenna, s.antenna)
                   ELSE coalesce(s.antenna, EXCLUDED.antenna) END,
    antennas = CASE WHEN {_B_BASE}
        THEN CASE WHEN s.antennas <@ EXCLUDED.antennas THEN EXCLUDED.antennas
                  ELSE pak_antenna_union(EXCLUDED.antennas, s.antennas) END
        ELSE CASE WHEN EXCLUDED.antennas <@ s.antennas THEN s.antennas
                  ELSE pak_antenna_union(s.antennas, EXCLUDED.antennas) END END,
    reader_time = CASE WHEN {_B_BASE} THEN coalesce(EXCLUDED.reader_time, s.reader_time)
                       ELSE coalesce(s.reader_time, EXCLUDED.reader_time) END,
    last_seen = GREATEST(s.last_seen, EXCLUDED.last_seen),
    reads = GREATEST(s.reads, EXCLUDED.reads),
    rssi_max_dbm = GREATEST(s.rssi_max_dbm, EXCLUDED.rssi_max_dbm),
    rssi_max_raw = GREATEST(s.rssi_max_raw, EXCLUDED.rssi_max_raw),
    flags = CASE WHEN EXCLUDED.flags <@ s.flags THEN s.flags
                 ELSE pak_flag_union(s.flags, EXCLUDED.flags) END,
    incomplete = CASE WHEN EXCLUDED.state = 'closed' THEN FALSE ELSE s.incomplete END
)
SELECT gateway_id, spool_id, seq, stored, first_seen FROM c WHERE stored <> first_seen
"""




def _aware(t: datetime) -> datetime:
    """Naive datetimes are read as UTC (as in the SQLite backend)."""
    return t if t.tzinfo is not None else t.replace(tzinfo=UTC)


def _aware_opt(t: datetime | None) -> datetime | None:
    return None if t is None else _aware(t)


def copy_row(s: Sighting) -> tuple[Any, ...]:
    """One sighting as a row of the staging table (STAGE_TYPES)."""
    # Unpacked as the tuple it is (pak.types.Sighting's field order): cheaper than 17
    # attribute reads on the writer thread, which shares the GIL with the receive thread.
    (gw, spool, seq, state, tag, kind, reader, first, last, reads, tag_type, antenna,
     antennas, dbm, raw, flags, reader_time) = s
    return (gw, spool, seq, state, tag, kind, tag_type, reader, antenna, list(antennas),
            _aware(first), _aware(last), reads, dbm, raw, normal_flags(flags),
            _aware_opt(reader_time))


def _sighting(r: Sequence[Any]) -> Sighting:
    return Sighting(
        gateway_id=r[0], spool_id=r[1], seq=r[2], state=r[3], tag_id=r[4], tag_kind=r[5],
        tag_type=r[6], reader_id=r[7], antenna=r[8], antennas=tuple(r[9]),
        first_seen=r[10], last_seen=r[11], reads=r[12], rssi_max_dbm=r[13],
        rssi_max_raw=r[14], flags=tuple(r[15]), reader_time=r[16],
    )


def redact(url: str) -> str:
    """The URL without its password (for logs and ``pak db info``)."""
    return re.sub(r"(://[^:/@]+):[^@/]*@", r"\1:***@", url)


def _format_style(sql: str) -> str:
    """A shared statement (qmark ``?``) in psycopg's format style (``%s``)."""
    return sql.replace("?", "%s")


def _unavailable(e: BaseException) -> bool:
    return isinstance(e, psycopg.OperationalError)


def _configure(conn: Conn) -> None:
    """Session set-up of every pooled connection: UTC times and the staging table."""
    conn.execute("SET TIME ZONE 'UTC'")
    conn.execute(_STAGE_DDL)
    conn.commit()


class TimescaleStorage(SqlStorage[Conn]):
    """Storage in PostgreSQL + TimescaleDB (``postgresql://...``)."""

    def __init__(self, url: str, *, min_size: int = 1, max_size: int = 4,
                 timeout: float = 5.0, connect_timeout: int = 5,
                 application_name: str = "pak",
                 timeouts: StatementTimeouts | None = None) -> None:
        self.url = url
        self.timeouts = t = timeouts or StatementTimeouts()
        # every statement not named otherwise (a batch, an alert) has the write timeout
        self._connect_kwargs: dict[str, Any] = {
            "connect_timeout": connect_timeout, "application_name": application_name,
            "options": f"-c statement_timeout={t.ms('write')}"}
        self._mode_logged = False
        self.first_seen_conflicts = FirstSeenConflicts()
        # open(wait=False): a database that is down at start-up is not an error yet; the
        # first call says StorageUnavailable. The pool's own reconnection backs off
        # exponentially for reconnect_timeout; kept shorter than ``timeout``, a call made
        # after the server is back finds either a pending attempt due within its wait or
        # none (and the pool then connects at once), so the next call after an outage works
        # instead of waiting out a back-off grown over a long outage.
        self._pool: ConnectionPool[Conn] = ConnectionPool(
            url, min_size=min_size, max_size=max_size, open=False, timeout=timeout,
            reconnect_timeout=max(0.5, timeout / 2), configure=_configure,
            check=ConnectionPool.check_connection, kwargs=self._connect_kwargs,
            name="pak-storage")
        self._pool.open(wait=False)

    def close(self) -> None:
        self._pool.close()

    # --- connections and errors -----------------------------------------------------------

    @contextlib.contextmanager
    def _tx(self, kind: QueryKind = "write") -> Iterator[Conn]:
        """A pooled connection in one transaction, committed at the end, rolled back on any
        error, its statements limited to ``kind``'s timeout (tracker/storage/timeouts.py);
        psycopg errors become StorageUnavailable or StorageError."""
        try:
            with self._pool.connection() as conn, conn.transaction():
                if kind != "write":  # the connection's default
                    conn.execute(f"SET LOCAL statement_timeout = {self.timeouts.ms(kind)}")
                yield conn
        except psycopg.Error as e:
            if _unavailable(e):
                raise StorageUnavailable(f"postgresql: {e}") from e
            raise StorageError(f"postgresql: {e}") from e

    # --- the hooks of SqlStorage ---------------------------------------------------------

    COLLATE: ClassVar[str] = ' COLLATE "C"'  # byte order, as SQLite sorts (and fastest)
    GREATEST: ClassVar[str] = "GREATEST"
    LEAST: ClassVar[str] = "LEAST"
    FOR_UPDATE: ClassVar[str] = " FOR UPDATE"
    AUDIT_LOCK: ClassVar[str] = "SELECT pg_advisory_xact_lock(hashtext('pak.audit_log'))"
    IN_LIST_MAX: ClassVar[int] = 2**31  # one array parameter, whatever its length
    _to_sighting = staticmethod(_sighting)

    def _reading(self) -> AbstractContextManager[Conn]:
        return self._tx("read")

    def _looking_up(self) -> AbstractContextManager[Conn]:
        return self._tx("lookup")

    def _writing(self) -> AbstractContextManager[Conn]:
        return self._tx()

    def _exec(self, conn: Conn, sql: str, params: Sequence[Any] = (), *,
              prepare: bool | None = None) -> psycopg.Cursor[tuple[Any, ...]]:
        return conn.execute(_format_style(sql), params, prepare=prepare)

    def _executemany(self, conn: Conn, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        with conn.cursor() as cur:
            cur.executemany(_format_style(sql), rows)

    def _in_list(self, col: str, values: Sequence[str]) -> tuple[str, list[Any]]:
        return f"{col} = ANY(?::text[])", [list(values)]

    @staticmethod
    def _to_time(t: datetime) -> datetime:
        return _aware(t)

    @staticmethod
    def _from_time(v: datetime) -> datetime:
        return v  # timestamptz, read in the session's time zone, UTC

    @staticmethod
    def _to_json(obj: Any) -> Jsonb:
        return Jsonb(obj)

    @staticmethod
    def _from_json(v: Any) -> Any:
        return v  # psycopg decodes jsonb

    # --- migrations -----------------------------------------------------------------------

    def migrate(self) -> list[str]:
        # Its own connection in autocommit mode: a session advisory lock serialises
        # processes that start together; each migration then runs in its own transaction.
        done: list[str] = []
        try:
            with psycopg.connect(self.url, autocommit=True, **self._connect_kwargs) as conn:
                conn.execute("SELECT pg_advisory_lock(%s)", (_MIGRATE_LOCK,))
                try:
                    conn.execute("CREATE TABLE IF NOT EXISTS schema_migrations (version "
                                 "integer PRIMARY KEY, name text NOT NULL, applied_at "
                                 "timestamptz NOT NULL DEFAULT now())")
                    applied = {r[0] for r in conn.execute("SELECT name FROM schema_migrations")}
                    for mig in migrations.load("postgres"):
                        if mig.name in applied:
                            continue
                        with conn.transaction():
                            # No parameters: sent as one simple query, so a file may
                            # hold many statements (and dollar-quoted bodies).
                            conn.execute(mig.sql)
                            conn.execute("INSERT INTO schema_migrations (version, name) "
                                         "VALUES (%s, %s)", (mig.version, mig.name))
                        _log.info("migration applied: %s", mig.name)
                        done.append(mig.name)
                finally:
                    if not conn.broken:
                        conn.execute("SELECT pg_advisory_unlock(%s)", (_MIGRATE_LOCK,))
        except psycopg.Error as e:
            if _unavailable(e):
                raise StorageUnavailable(f"postgresql: {e}") from e
            raise StorageError(f"postgresql: migration failed: {e}") from e
        return done

    def _applied(self, conn: Conn) -> list[str]:
        if conn.execute("SELECT to_regclass('schema_migrations')").fetchone() == (None,):
            return []
        return [r[0] for r in conn.execute("SELECT name FROM schema_migrations ORDER BY version")]

    # --- the write path -------------------------------------------------------------------

    def write_batch(
        self,
        sightings: Sequence[Sighting],
        *,
        dead_letters: Sequence[DeadLetter] = (),
        alerts: Sequence[Alert] = (),
    ) -> None:
        batch = unique_batch(sightings)
        conflicts: list[tuple[Any, ...]] = []
        with self._tx() as conn:
            if batch:
                with conn.cursor() as cur:
                    with cur.copy(_COPY_STAGE) as cp:
                        cp.set_types(list(STAGE_TYPES))
                        for s in batch:
                            cp.write_row(copy_row(s))
                    conflicts = cur.execute(_MERGE, prepare=True).fetchall()
            self._write_batch_rest(conn, dead_letters, alerts)
        if conflicts:  # committed: count and log them
            self.first_seen_conflicts.add((r[0], r[1], r[2], r[3], r[4]) for r in conflicts)

    # --- sightings queries ----------------------------------------------------------------

    def iter_sightings(self, *, since: datetime | None = None, until: datetime | None = None,
                       batch_size: int = 10_000) -> Iterator[Sighting]:
        sql, params = self._iter_sql(since=since, until=until)
        # A server-side cursor: rows arrive batch_size at a time, never all in memory.
        with self._tx("long") as conn, conn.cursor(name="pak_iter_sightings") as cur:
            cur.itersize = batch_size
            cur.execute(_format_style(sql), params)
            for r in cur:
                yield _sighting(r)

    def info(self) -> dict[str, Any]:
        with self._tx() as conn:
            applied = self._applied(conn)
            server = conn.execute("SHOW server_version").fetchone()
            ext = conn.execute("SELECT extversion FROM pg_extension "
                               "WHERE extname = 'timescaledb'").fetchone()
            lic = conn.execute("SELECT current_setting('timescaledb.license', true)").fetchone()
            hyper: list[dict[str, Any]] = []
            if ext is not None:
                hyper = [{"name": r[0], "chunks": r[1], "compression": r[2]}
                         for r in conn.execute(
                             "SELECT hypertable_name, num_chunks, compression_enabled "
                             "FROM timescaledb_information.hypertables "
                             "ORDER BY hypertable_name")]
        known = [m.name for m in migrations.load("postgres")]
        return {
            "backend": "timescaledb",
            "url": redact(self.url),
            "server_version": server[0] if server else None,
            "timescaledb_version": ext[0] if ext else None,
            "timescaledb_license": lic[0] if lic else None,
            "hypertables": hyper,
            "migrations_applied": applied,
            "migrations_pending": [n for n in known if n not in applied],
            "counts": self.counts() if len(applied) == len(known) else {},
        }

    # --- retention ------------------------------------------------------------------------

    def retention(self, days: float, *, now: datetime) -> dict[str, Any]:
        cutoff = cutoff_for(days, now)
        with self._tx("long") as conn:
            row = conn.execute("SELECT current_setting('timescaledb.license', true)").fetchone()
            lic = row[0] if row else None
            mode: RetentionMode = "policy" if lic == "timescale" else "drop_chunks"
            if not self._mode_logged:
                log_mode(mode, license=lic, days=days)
                self._mode_logged = True
            out: dict[str, Any] = {"mode": mode, "license": lic, "cutoff": cutoff.isoformat(),
                                   "skipped": None, "evidence_copied": 0, "chunks_dropped": None,
                                   "rows_deleted": None, "ids_deleted": 0}
            # One run at a time across the group; released when this transaction ends.
            locked = conn.execute("SELECT pg_try_advisory_xact_lock(%s)",
                                  (RETENTION_LOCK,)).fetchone()
            if not (locked and locked[0]):
                out["skipped"] = SKIPPED_BUSY
                return out
            # Evidence first, in the same transaction as the drop: nothing an open case or
            # alert needs can go without its copy.
            out["evidence_copied"] = self._copy_evidence(conn, cutoff=cutoff, now=now)
            if mode == "drop_chunks":
                dropped = conn.execute("SELECT count(*) FROM drop_chunks('sightings', "
                                       "older_than => %s::timestamptz)", (cutoff,)).fetchone()
                out["chunks_dropped"] = int(dropped[0]) if dropped else 0
            else:
                self._ensure_policies(conn, days)
            out["ids_deleted"] = self._forget_dropped_ids(conn, cutoff)
        return out

    @staticmethod
    def _forget_dropped_ids(conn: Conn, cutoff: datetime) -> int:
        """Delete the sighting_ids whose sightings are gone: those before the oldest chunk
        left (whoever dropped the chunks, drop_chunks here or the policy's job). An id whose
        chunk still exists keeps its claim, even past the cutoff."""
        oldest = conn.execute(
            "SELECT min(range_start) FROM timescaledb_information.chunks "
            "WHERE hypertable_name = 'sightings' AND hypertable_schema = current_schema()"
        ).fetchone()
        before = oldest[0] if oldest and oldest[0] is not None else cutoff
        return int(conn.execute("DELETE FROM sighting_ids WHERE first_seen < %s",
                                (min(before, cutoff),)).rowcount)

    @staticmethod
    def _ensure_policies(conn: Conn, days: float) -> None:
        """Compression and a retention policy (timescale license only; not exercised on the
        Apache-only build of the development machines)."""
        drop_after = timedelta(days=days) + POLICY_GRACE
        compress_after = max(timedelta(days=1), min(timedelta(days=7), timedelta(days=days) / 2))
        enabled = conn.execute("SELECT compression_enabled FROM timescaledb_information."
                               "hypertables WHERE hypertable_name = 'sightings'").fetchone()
        if not (enabled and enabled[0]):
            conn.execute("ALTER TABLE sightings SET (timescaledb.compress, "
                         "timescaledb.compress_segmentby = 'tag_id', "
                         "timescaledb.compress_orderby = 'first_seen DESC, gateway_id, "
                         "spool_id, seq')")
        conn.execute("SELECT add_compression_policy('sightings', compress_after => %s, "
                     "if_not_exists => true)", (compress_after,))
        # Re-adding a policy resets its schedule: only replace it when drop_after changed.
        same = conn.execute("SELECT (config->>'drop_after')::interval = %s::interval "
                            "FROM timescaledb_information.jobs WHERE proc_name = "
                            "'policy_retention' AND hypertable_name = 'sightings'",
                            (drop_after,)).fetchone()
        if same is not None and not same[0]:
            conn.execute("SELECT remove_retention_policy('sightings')")
        if same is None or not same[0]:
            conn.execute("SELECT add_retention_policy('sightings', drop_after => %s)",
                         (drop_after,))
