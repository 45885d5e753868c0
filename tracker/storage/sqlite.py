"""The SQLite backend: the embedded default (demo, small single-box sites).

One file in WAL mode: one writer connection, serialised by a lock, and one reader connection
per thread, so queries run while a batch is written. ``:memory:`` uses the writer connection
for everything. Times are stored as integer microseconds since the Unix epoch (UTC), so they
sort and compare as numbers; antennas and flags as JSON arrays in text. The merge rule runs in
the upsert itself (two small SQL functions registered on each connection do the list unions).
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, Final

import orjson

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
from tracker.storage.retention import log_mode
from tracker.storage.sql_common import SIGHTING_COLS, SqlStorage

__all__ = ["SqliteStorage"]

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_US: Final = timedelta(microseconds=1)


def _us(t: datetime) -> int:
    """Microseconds since the epoch; a naive datetime is read as UTC."""
    if t.tzinfo is None:
        t = t.replace(tzinfo=UTC)
    return (t - _EPOCH) // _US


def _us_opt(t: datetime | None) -> int | None:
    return None if t is None else _us(t)


def _dt(us: int) -> datetime:
    return _EPOCH + timedelta(microseconds=us)


def _dt_opt(us: int | None) -> datetime | None:
    return None if us is None else _EPOCH + timedelta(microseconds=us)


def _json(obj: Any) -> str:
    return orjson.dumps(obj).decode()


def _antenna_union(a: str, b: str) -> str:
    """pak.types.merge_sightings' antenna rule: a's list, then b's new antennas in order."""
    out: list[int] = orjson.loads(a)
    for x in orjson.loads(b):
        if x not in out:
            out.append(x)
    return _json(out)


def _flag_union(a: str, b: str) -> str:
    return _json(sorted(set(orjson.loads(a)) | set(orjson.loads(b))))



# The merge rule of pak.types.merge_sightings with a = the stored row, b = the incoming one.
# "b is the base" when b is closed and the stored row is not (or was closed by the tracker,
# incomplete: a real closed replaces that close, migration 0008); the base gives tag, reader and
# kind, and comes first in the antenna list and in the antenna/reader_time fallbacks. In an
# UPDATE SET every expression sees the row as it was before the update. The key is the
# sighting id alone (tracker/storage/one_row.py): the stored first_seen stands, and a message
# that claims another one is noted by pak_first_seen_conflict (it returns the stored time).
_B_BASE: Final = "(excluded.state = 'closed' AND (state <> 'closed' OR incomplete))"
_UPSERT: Final = f"""
INSERT INTO sightings ({SIGHTING_COLS}, stored_at)
VALUES ({", ".join("?" * (len(SIGHTING_COLUMNS) + 1))})
ON CONFLICT (gateway_id, spool_id, seq) DO UPDATE SET
    first_seen = CASE WHEN excluded.first_seen = first_seen THEN first_seen
                      ELSE pak_first_seen_conflict(gateway_id, spool_id, seq, first_seen,
                                                   excluded.first_seen) END,
    state = CASE WHEN state = 'closed' OR excluded.state = 'closed'
                 THEN 'closed' ELSE 'open' END,
    tag_id = CASE WHEN {_B_BASE} THEN excluded.tag_id ELSE tag_id END,
    tag_kind = CASE WHEN {_B_BASE} THEN excluded.tag_kind ELSE tag_kind END,
    tag_type = CASE WHEN {_B_BASE} THEN excluded.tag_type ELSE tag_type END,
    reader_id = CASE WHEN {_B_BASE} THEN excluded.reader_id ELSE reader_id END,
    antenna = CASE WHEN {_B_BASE} THEN coalesce(excluded.antenna, antenna)
                   ELSE coalesce(antenna, excluded.antenna) END,
    antennas = CASE WHEN {_B_BASE} THEN pak_antenna_union(excluded.antennas, antennas)
                    ELSE pak_antenna_union(antennas, excluded.antennas) END,
    reader_time = CASE WHEN {_B_BASE} THEN coalesce(excluded.reader_time, reader_time)
                       ELSE coalesce(reader_time, excluded.reader_time) END,
    last_seen = max(last_seen, excluded.last_seen),
    reads = max(reads, excluded.reads),
    rssi_max_dbm = CASE WHEN rssi_max_dbm IS NULL THEN excluded.rssi_max_dbm
                        WHEN excluded.rssi_max_dbm IS NULL THEN rssi_max_dbm
                        ELSE max(rssi_max_dbm, excluded.rssi_max_dbm) END,
    rssi_max_raw = CASE WHEN rssi_max_raw IS NULL THEN excluded.rssi_max_raw
                        WHEN excluded.rssi_max_raw IS NULL THEN rssi_max_raw
                        ELSE max(rssi_max_raw, excluded.rssi_max_raw) END,
    flags = pak_flag_union(flags, excluded.flags),
    incomplete = CASE WHEN excluded.state = 'closed' THEN FALSE ELSE incomplete END
"""






def _sighting(r: sqlite3.Row | tuple[Any, ...]) -> Sighting:
    return Sighting(
        gateway_id=r[0], spool_id=r[1], seq=r[2], state=r[3], tag_id=r[4], tag_kind=r[5],
        tag_type=r[6], reader_id=r[7], antenna=r[8], antennas=tuple(orjson.loads(r[9])),
        first_seen=_dt(r[10]), last_seen=_dt(r[11]), reads=r[12], rssi_max_dbm=r[13],
        rssi_max_raw=r[14], flags=tuple(orjson.loads(r[15])), reader_time=_dt_opt(r[16]),
    )


def _row(s: Sighting, stored_at: int) -> tuple[Any, ...]:
    # Unpacked as the tuple it is (pak.types.Sighting's field order), as copy_row does.
    (gw, spool, seq, state, tag, kind, reader, first, last, reads, tag_type, antenna,
     antennas, dbm, raw, flags, reader_time) = s
    return (gw, spool, seq, state, tag, kind, tag_type, reader, antenna, _json(list(antennas)),
            _us(first), _us(last), reads, dbm, raw, _json(normal_flags(flags)),
            _us_opt(reader_time), stored_at)


def _map_error(e: sqlite3.Error) -> StorageError:
    """A busy or locked database is worth retrying; anything else is not."""
    msg = str(e)
    if isinstance(e, sqlite3.OperationalError) and ("locked" in msg or "busy" in msg):
        return StorageUnavailable(f"sqlite: {msg}")
    return StorageError(f"sqlite: {msg}")


def _split_statements(sql: str) -> Iterator[str]:
    """The statements of a migration file, one by one (executescript would commit first,
    breaking the migration's transaction)."""
    buf = ""
    for line in sql.splitlines(keepends=True):
        buf += line
        if sqlite3.complete_statement(buf):
            if buf.strip():
                yield buf
            buf = ""
    if buf.strip() and not all(ln.strip().startswith("--") or not ln.strip()
                               for ln in buf.splitlines()):
        raise StorageError(f"incomplete SQL statement in a migration: {buf[:80]!r}")


class SqliteStorage(SqlStorage[sqlite3.Connection]):
    """Storage in one SQLite file (``sqlite://PATH``, ``sqlite:///abs/path``) or in memory
    (``sqlite://:memory:``)."""

    def __init__(self, url: str, path: str, *, busy_timeout: float = 5.0) -> None:
        self.url = url
        self.path = path
        self._memory = path == ":memory:"
        self._busy_ms = int(busy_timeout * 1000)
        self._lock = threading.RLock()
        self._local = threading.local()
        self._readers: list[sqlite3.Connection] = []
        self._mode_logged = False
        self._closed = False
        self.first_seen_conflicts = FirstSeenConflicts()
        self._conflicts_seen: list[tuple[str, str, int, int, int]] = []  # this batch's
        try:
            self._conn = self._connect()
        except sqlite3.Error as e:
            raise _map_error(e) from e

    # --- connections --------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        # isolation_level=None: no implicit transactions; writes say BEGIN IMMEDIATE so the
        # write lock is taken up front (no deadlock between two writers upgrading).
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False,
                               timeout=self._busy_ms / 1000)
        conn.execute(f"PRAGMA busy_timeout = {self._busy_ms}")
        if not self._memory:
            self._use_wal(conn)
            conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("PRAGMA foreign_keys = ON")
        conn.create_function("pak_antenna_union", 2, _antenna_union, deterministic=True)
        conn.create_function("pak_flag_union", 2, _flag_union, deterministic=True)
        conn.create_function("pak_first_seen_conflict", 5, self._note_conflict)
        return conn

    def _note_conflict(self, gw: str, spool: str, seq: int, stored: int, claimed: int) -> int:
        """Called by the upsert (under the write lock) for a message whose first_seen is not
        its id's stored one; the stored one stays."""
        self._conflicts_seen.append((gw, spool, seq, stored, claimed))
        return stored

    def _use_wal(self, conn: sqlite3.Connection) -> None:
        """Switch the file to WAL (a persistent setting). Two processes opening a new file
        at once can see "database is locked" here without the busy handler being consulted,
        so retry for as long as busy_timeout allows."""
        deadline = time.monotonic() + self._busy_ms / 1000
        while True:
            try:
                if conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                    conn.execute("PRAGMA journal_mode = WAL")
                return
            except sqlite3.OperationalError as e:
                if "locked" not in str(e) or time.monotonic() > deadline:
                    raise
                time.sleep(0.01)

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction on the writer connection (rolled back on any error)."""
        with self._lock:
            conn = self._conn
            try:
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as e:
                raise _map_error(e) from e
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException as e:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                if isinstance(e, sqlite3.Error):
                    raise _map_error(e) from e
                raise

    @contextlib.contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        """A connection for queries: this thread's own reader (WAL: readers never wait for
        the writer), or the one connection of an in-memory database."""
        try:
            if self._memory:
                with self._lock:
                    yield self._conn
                return
            conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
            if conn is None:
                conn = self._connect()
                self._local.conn = conn
                with self._lock:
                    self._readers.append(conn)
            yield conn
        except sqlite3.Error as e:
            raise _map_error(e) from e

    # --- the hooks of SqlStorage ---------------------------------------------------------

    COLLATE: ClassVar[str] = ""  # SQLite compares text by bytes already
    GREATEST: ClassVar[str] = "max"
    LEAST: ClassVar[str] = "min"
    FOR_UPDATE: ClassVar[str] = ""  # BEGIN IMMEDIATE holds the database's write lock
    IN_LIST_MAX: ClassVar[int] = 500  # below SQLite's host-parameter limit
    _to_sighting = staticmethod(_sighting)

    def _reading(self) -> AbstractContextManager[sqlite3.Connection]:
        return self._read()

    def _writing(self) -> AbstractContextManager[sqlite3.Connection]:
        return self._write()

    def _exec(self, conn: sqlite3.Connection, sql: str, params: Sequence[Any] = (), *,
              prepare: bool | None = None) -> sqlite3.Cursor:
        return conn.execute(sql, params)

    def _executemany(self, conn: sqlite3.Connection, sql: str,
                     rows: Sequence[Sequence[Any]]) -> None:
        conn.executemany(sql, rows)

    def _in_list(self, col: str, values: Sequence[str]) -> tuple[str, list[Any]]:
        return (f"{col} IN ({', '.join('?' * len(values))})" if values else "0"), list(values)

    @staticmethod
    def _to_time(t: datetime) -> int:
        return _us(t)

    @staticmethod
    def _from_time(v: int) -> datetime:
        return _dt(v)

    @staticmethod
    def _to_json(obj: Any) -> str:
        return _json(obj)

    @staticmethod
    def _from_json(v: str) -> Any:
        return orjson.loads(v)

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            for c in self._readers:
                c.close()
            self._readers.clear()
            self._conn.close()

    # --- migrations -----------------------------------------------------------------------

    def _applied(self, conn: sqlite3.Connection) -> list[str]:
        has = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' "
                           "AND name = 'schema_migrations'").fetchone()
        if not has:
            return []
        return [r[0] for r in conn.execute("SELECT name FROM schema_migrations ORDER BY version")]

    def migrate(self) -> list[str]:
        # BEGIN IMMEDIATE takes the database's write lock: a second process starting at the
        # same time waits (busy_timeout), then finds the migrations recorded and does nothing.
        done: list[str] = []
        with self._write() as conn:
            conn.execute("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER "
                         "PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)")
            applied = set(self._applied(conn))
            for mig in migrations.load("sqlite"):
                if mig.name in applied:
                    continue
                for stmt in _split_statements(mig.sql):
                    conn.execute(stmt)
                conn.execute("INSERT INTO schema_migrations VALUES (?, ?, ?)",
                             (mig.version, mig.name, _us(datetime.now(UTC))))
                done.append(mig.name)
        return done

    # --- the write path -------------------------------------------------------------------

    def write_batch(
        self,
        sightings: Sequence[Sighting],
        *,
        dead_letters: Sequence[DeadLetter] = (),
        alerts: Sequence[Alert] = (),
    ) -> None:
        now = _us(datetime.now(UTC))
        rows = [_row(s, now) for s in unique_batch(sightings)]
        with self._write() as conn:
            self._conflicts_seen.clear()
            if rows:
                conn.executemany(_UPSERT, rows)
            self._write_batch_rest(conn, dead_letters, alerts)
            conflicts, self._conflicts_seen = self._conflicts_seen, []
        if conflicts:  # committed: count and log them
            self.first_seen_conflicts.add((gw, sp, seq, _dt(a), _dt(b))
                                          for gw, sp, seq, a, b in conflicts)

    # --- sightings queries ----------------------------------------------------------------

    def iter_sightings(self, *, since: datetime | None = None, until: datetime | None = None,
                       batch_size: int = 10_000) -> Iterator[Sighting]:
        sql, params = self._iter_sql(since=since, until=until)
        # Its own connection, so a long scan neither holds the writer's lock nor shares a
        # cursor with this thread's other queries.
        conn = self._conn if self._memory else self._connect()
        try:
            cur = conn.execute(sql, params)
            while True:
                rows = cur.fetchmany(batch_size)
                if not rows:
                    return
                for r in rows:
                    yield _sighting(r)
        except sqlite3.Error as e:
            raise _map_error(e) from e
        finally:
            if conn is not self._conn:
                conn.close()

    def info(self) -> dict[str, Any]:
        with self._read() as conn:
            applied = self._applied(conn)
            mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
        known = [m.name for m in migrations.load("sqlite")]
        return {
            "backend": "sqlite",
            "url": self.url,
            "path": self.path,
            "sqlite_version": sqlite3.sqlite_version,
            "journal_mode": mode,
            "migrations_applied": applied,
            "migrations_pending": [n for n in known if n not in applied],
            "counts": self.counts() if applied else {},
        }

    def retention(self, days: float, *, now: datetime) -> dict[str, Any]:
        cutoff = cutoff_for(days, now)
        if not self._mode_logged:
            log_mode("delete", license=None, days=days)
            self._mode_logged = True
        # BEGIN IMMEDIATE: SQLite's one write lock serialises runs (a second process waits
        # for the first to commit, then finds nothing left to do).
        with self._write() as conn:
            copied = self._copy_evidence(conn, cutoff=cutoff, now=now)
            deleted = conn.execute("DELETE FROM sightings WHERE first_seen < ?",
                                   (_us(cutoff),)).rowcount
        return {"mode": "delete", "license": None, "cutoff": cutoff.isoformat(),
                "skipped": None, "evidence_copied": copied, "chunks_dropped": None,
                "rows_deleted": deleted}
