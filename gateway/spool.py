"""The durable spool: every sighting stays on disk until the centre's receipt covers it.

Layout of the spool folder::

    spool.db         SQLite, WAL mode, synchronous=NORMAL: one row per sighting
    spool.db-wal     its write-ahead log (fsync'd by a background thread every sync_interval)
    seq.reserved     {"spool_id": "...", "reserved": N}: every seq below N may have been used

Table ``sightings`` (one row per sighting id; the open message is replaced by the closed one)::

    seq       INTEGER PRIMARY KEY   never reused in this folder, across kill -9 and power loss
    spool_id  TEXT                  the spool id the seq was issued under
    state     TEXT                  'open' | 'closed'
    body      TEXT                  the sighting object exactly as on the wire (JSON)
    suspect   INTEGER               stamped while the gateway's clock was suspect
    first_seen REAL                 Unix seconds (the spool's oldest age)
    next_try  REAL                  monotonic time to (re)publish; NULL: nothing to publish
                                    (an open sighting whose open message the centre stored)
    tries     INTEGER               publications so far (the republish back-off)
    sent      REAL                  monotonic time of the last publication (NULL: not in
                                    flight; cleared at every start, like next_try)

Lost, not slow: the centre commits a gateway's messages about in the order they were sent, so
when a receipt covers a sighting sent at time T, a sighting still unreceipted that was sent
before ``T - LOST_SLACK_S`` was lost (a broker that dropped it), not delayed: it is due again at
once instead of at its receipt timer (checked whenever a receipt moves that time on; an index on
``sent`` keeps the check to the rows it changes). The slack allows
for several tracker instances committing at slightly different speeds; a wrong guess costs a
duplicate, which storage merges.

Losses, counted exactly: when the spool outgrows ``max_bytes`` it drops its oldest closed rows.
A dropped row the centre had stored but not yet receipted is no loss, so each dropped row is
remembered in table ``dropped`` (spool id, seq, first_seen) for ``DROP_PENDING_S``: a receipt
that covers it later takes it back out of the count. ``meta`` keeps the count (``dropped``) and
the oldest first_seen among counted drops (``oldest_dropped``; ``oldest_settled`` for rows no
longer pending), durable with the transaction that changes them.

Table ``meta`` also keeps ``centre_epoch``: the newest centre epoch (pak/wire/presence.py) this
gateway has acted on, so a restart does not take the retained presence message for news, while
an epoch that changed while the gateway was away still is.

Sequence numbers are reserved durably in blocks: ``seq.reserved`` is rewritten (temp file,
fsync, rename, fsync of the folder) by the background thread when half the block is used, so a
read waits for a disk sync only if sightings outrun a whole half block during one fsync. After
any restart numbering resumes at the reserved mark: seqs issued but lost with a power cut are
skipped, never reissued. If the reservation record is missing or belongs to another spool,
nothing can prove which seqs were used, so the spool takes a new ``spool_id`` (the centre keys
sightings on ``(gateway_id, spool_id, seq)``) and continues numbering above every stored seq.

Durability (docs/gateway.md says the same): a commit survives a process crash (kill -9) at
once; it survives a power cut once the background thread has fsync'd the WAL, at most
``sync_interval`` (default 0.2 s) plus one fsync later.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import orjson

from pak.errors import PakError
from pak.logs import event
from pak.types import Sighting
from pak.wire.receipts import Receipt
from pak.wire.sightings import sighting_to_json

__all__ = ["Spool", "SpoolError", "SpoolRow", "SpoolStats", "new_spool_id"]

log = logging.getLogger("pak.gateway.spool")

DB_NAME: Final = "spool.db"
RESERVATION_NAME: Final = "seq.reserved"
SCHEMA_VERSION: Final = 1
#: A sighting sent this much before the newest receipted one is presumed lost.
LOST_SLACK_S: Final = 3.0
#: A dropped row no receipt has covered this long (wall seconds) after its drop stays a loss.
DROP_PENDING_S: Final = 3600.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS sightings (
    seq INTEGER PRIMARY KEY,
    spool_id TEXT NOT NULL,
    state TEXT NOT NULL,
    body TEXT NOT NULL,
    suspect INTEGER NOT NULL,
    first_seen REAL NOT NULL,
    next_try REAL,
    tries INTEGER NOT NULL DEFAULT 0,
    sent REAL
);
CREATE INDEX IF NOT EXISTS sightings_due ON sightings(next_try) WHERE next_try IS NOT NULL;
CREATE TABLE IF NOT EXISTS dropped (
    spool_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    first_seen REAL NOT NULL,
    dropped_at REAL NOT NULL,
    PRIMARY KEY (spool_id, seq)
);
"""


class SpoolError(PakError):
    """The spool folder cannot be used (unwritable, corrupt, from a newer version)."""


def new_spool_id() -> str:
    """A random spool id (made once, when a spool is created): 20 hex digits."""
    return "sp-" + secrets.token_hex(10)


@dataclass(frozen=True, slots=True)
class SpoolRow:
    """A sighting to publish: its current state and wire body."""

    seq: int
    spool_id: str
    state: str
    body: bytes
    suspect: bool
    tries: int = 0


@dataclass(slots=True)
class SpoolStats:
    """Cumulative counters since the spool was opened (``dropped_total``: its whole life, the
    dropped rows no receipt showed stored; ``dropped_stored``: drops a late receipt took back)."""

    stored: int = 0
    receipted: int = 0
    receipted_open: int = 0
    dropped: int = 0
    dropped_total: int = 0
    dropped_stored: int = 0
    reservations: int = 0
    wal_syncs: int = 0
    reservation_waits: int = 0
    receipts_foreign: int = 0
    presumed_lost: int = 0


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_durably(path: Path, data: bytes) -> None:
    """Replace ``path`` so that after a power cut it holds either the old or the new data."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    _fsync_dir(path.parent)


class _Syncer(threading.Thread):
    """Background durability: WAL fsyncs and seq reservations, off the read path."""

    def __init__(self, spool: Spool, interval: float) -> None:
        super().__init__(name="spool-sync", daemon=True)
        self.spool = spool
        self.interval = interval
        self.wake = threading.Event()
        self.stopping = False

    def run(self) -> None:
        while not self.stopping:
            self.wake.wait(self.interval)
            self.wake.clear()
            try:
                self.spool._background_step()
            except OSError as e:  # a failing SD card: say so, keep trying
                event(log, logging.ERROR, "spool_sync_failed", error=str(e))
                time.sleep(self.interval)


class Spool:
    """The on-disk spool. Its SQLite connection belongs to one thread (the runtime's core
    thread); :meth:`next_seq` is thread-safe (the link thread's smoother calls it). The
    background syncer only fsyncs files and never touches the connection."""

    def __init__(self, folder: Path, *, max_bytes: int = 512 << 20, block: int = 1000,
                 sync_interval: float = 0.2, republish_after: float = 30.0,
                 republish_max: float = 600.0,
                 monotonic: Callable[[], float] = time.monotonic,
                 wall: Callable[[], float] = time.time) -> None:
        if block < 2:
            raise ValueError("block must be at least 2")
        self.folder = Path(folder)
        self.max_bytes = max_bytes
        self.block = block
        self.republish_after = republish_after
        self.republish_max = republish_max
        self._mono = monotonic
        self._wall = wall
        self.stats = SpoolStats()
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.folder / DB_NAME, isolation_level=None,
                                       check_same_thread=True)
        except (OSError, sqlite3.Error) as e:
            raise SpoolError(f"cannot open the spool in {self.folder}: {e}") from None
        self._wal = self.folder / (DB_NAME + "-wal")
        self._lock = threading.Condition()
        self._dirty_wal = False
        self._reserve_wanted = False
        try:
            self._setup()
        except sqlite3.Error as e:
            self._db.close()
            raise SpoolError(f"spool {self.folder / DB_NAME}: {e}") from None
        self._in_tx = False
        self._newest_receipted: float | None = None  # sent time of the newest receipted row
        self._lost_checked: float | None = None  # the value of it the last check used
        # A lower bound of the earliest next_try (None: nothing scheduled), kept in memory so
        # the core loop does not ask SQLite "anything due?" hundreds of times a second.
        self._due_hint: float | None = 0.0
        self._syncer = _Syncer(self, sync_interval)
        self._syncer.start()

    # --- opening ----------------------------------------------------------------------------

    def _setup(self) -> None:
        db = self._db
        mode = db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise SpoolError(f"spool {self.folder}: the file system refuses WAL mode ({mode})")
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute("PRAGMA foreign_keys=OFF")
        db.executescript(_SCHEMA)
        if "sent" not in {r[1] for r in db.execute("PRAGMA table_info(sightings)")}:
            db.execute("ALTER TABLE sightings ADD COLUMN sent REAL")  # an older spool
        db.execute("CREATE INDEX IF NOT EXISTS sightings_sent ON sightings(sent) "
                   "WHERE sent IS NOT NULL")
        meta = dict(db.execute("SELECT key, value FROM meta").fetchall())
        version = int(meta.get("schema", SCHEMA_VERSION))
        if version > SCHEMA_VERSION:
            raise SpoolError(f"spool {self.folder}: written by a newer pak (schema {version})")
        db_id = meta.get("spool_id")
        max_seq = db.execute("SELECT max(seq) FROM sightings").fetchone()[0]
        floor = -1 if max_seq is None else int(max_seq)
        res = self._read_reservation()
        if res is not None and (db_id is None or res[0] == db_id):
            spool_id, start = res[0], max(res[1], floor + 1)
        else:
            # No proof of which seqs were used under the old id: begin a new spool id.
            spool_id, start = new_spool_id(), floor + 1
            if db_id is not None:
                event(log, logging.WARNING, "spool_new_id", old=db_id, new=spool_id,
                      why="reservation record missing or foreign")
        self.spool_id = spool_id
        self._next = start
        self._reserved = start
        self._write_reservation(start + self.block)
        db.execute("BEGIN")
        db.execute("INSERT OR REPLACE INTO meta VALUES ('spool_id', ?)", (spool_id,))
        db.execute("INSERT OR REPLACE INTO meta VALUES ('schema', ?)", (str(SCHEMA_VERSION),))
        db.execute("INSERT OR IGNORE INTO meta VALUES ('created_at', ?)", (str(time.time()),))
        db.execute("INSERT OR IGNORE INTO meta VALUES ('dropped', '0')")
        # The process that published these is gone: what was open is closed with the
        # aggregate last checkpointed, and everything unreceipted is due again at once
        # (next_try is monotonic time, meaningless across restarts).
        db.execute("UPDATE sightings SET state='closed', body=json_set(body, '$.state', "
                   "'closed') WHERE state='open'")
        db.execute("UPDATE sightings SET next_try=0, tries=0, sent=NULL")
        db.execute("COMMIT")
        # Older spool ids still holding rows (after a new id was taken): receipts for them count.
        row = db.execute("SELECT value FROM meta WHERE key='centre_epoch'").fetchone()
        self._centre_epoch = int(row[0]) if row is not None else -1
        self._spool_ids = {spool_id} | {
            r[0] for r in db.execute("SELECT DISTINCT spool_id FROM sightings")}
        self.stats.dropped_total = int(
            db.execute("SELECT value FROM meta WHERE key='dropped'").fetchone()[0])
        self.oldest_dropped = self._meta_float("oldest_dropped")
        _fsync_dir(self.folder)

    def _meta_float(self, key: str) -> float | None:
        row = self._db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return None if row is None else float(row[0])

    def _set_meta_float(self, key: str, value: float | None) -> None:
        if value is None:
            self._db.execute("DELETE FROM meta WHERE key=?", (key,))
        else:
            self._db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, repr(value)))

    def _read_reservation(self) -> tuple[str, int] | None:
        try:
            doc = json.loads((self.folder / RESERVATION_NAME).read_bytes())
            spool_id, reserved = doc["spool_id"], doc["reserved"]
        except (OSError, ValueError, KeyError, TypeError):
            return None
        if not isinstance(spool_id, str) or type(reserved) is not int or reserved < 0:
            return None
        return spool_id, reserved

    def _write_reservation(self, upto: int) -> None:
        _write_durably(self.folder / RESERVATION_NAME,
                       json.dumps({"spool_id": self.spool_id, "reserved": upto}).encode())
        with self._lock:
            self._reserved = max(self._reserved, upto)
            self._reserve_wanted = False
            self._lock.notify_all()
        self.stats.reservations += 1

    # --- the background thread ------------------------------------------------------------

    def _background_step(self) -> None:
        with self._lock:
            want = self._reserve_wanted
            upto = self._reserved + self.block
            dirty, self._dirty_wal = self._dirty_wal, False
        if want:
            self._write_reservation(upto)
        if dirty:
            with contextlib.suppress(FileNotFoundError):
                fd = os.open(self._wal, os.O_RDONLY)
                try:
                    os.fsync(fd)  # the WAL's committed frames are now on the medium
                finally:
                    os.close(fd)
                self.stats.wal_syncs += 1

    # --- sequence numbers -----------------------------------------------------------------

    def next_seq(self) -> int:
        """The next sequence number: never returned before in this folder."""
        with self._lock:
            if self._reserved - self._next <= self.block // 2 and not self._reserve_wanted:
                self._reserve_wanted = True
                self._syncer.wake.set()
            while self._next >= self._reserved:
                # Sightings outran the reservation: this one wait is the price of the block.
                self.stats.reservation_waits += 1
                self._reserve_wanted = True
                self._syncer.wake.set()
                self._lock.wait(1.0)
            seq = self._next
            self._next += 1
            return seq

    @property
    def reserved(self) -> int:
        with self._lock:
            return self._reserved

    # --- writing --------------------------------------------------------------------------

    def _begin(self) -> None:
        if not self._in_tx:
            self._db.execute("BEGIN")
            self._in_tx = True

    def commit(self) -> None:
        """Make everything written since the last commit survive a process crash."""
        if self._in_tx:
            self._db.execute("COMMIT")
            self._in_tx = False
            with self._lock:
                self._dirty_wal = True

    def _note_due(self, t: float) -> None:
        if self._due_hint is None or t < self._due_hint:
            self._due_hint = t

    def _backoff(self, tries: int) -> float:
        return float(min(self.republish_max, self.republish_after * (2 ** min(tries, 30))))

    def put(self, sightings: Sequence[Sighting], *, suspect: bool,
            publishing: bool) -> list[bytes]:
        """Store sightings (an open inserts its row; the closed one replaces it, same seq).
        Returns their wire bodies, in order (encoded once, for the spool and the message).

        ``publishing``: the caller publishes them right after :meth:`commit`, so their
        republish timer starts now; otherwise they are due at once (the broker is away)."""
        if not sightings:
            return []
        now = self._mono()
        next_try = now + self._backoff(0) if publishing else now
        tries = 1 if publishing else 0
        sent = now if publishing else None
        bodies = [orjson.dumps(sighting_to_json(s)) for s in sightings]
        rows = [(s.seq, s.spool_id, s.state, body.decode(), int(suspect),
                 s.first_seen.timestamp(), next_try, tries, sent)
                for s, body in zip(sightings, bodies, strict=True)]
        self._note_due(next_try)
        self._begin()
        self._db.executemany(
            "INSERT INTO sightings (seq, spool_id, state, body, suspect, first_seen, next_try, "
            "tries, sent) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(seq) DO UPDATE SET "
            "state=excluded.state, body=excluded.body, next_try=excluded.next_try, "
            "tries=excluded.tries, sent=excluded.sent", rows)
        self.stats.stored += sum(1 for r in rows if r[2] == "open")
        return bodies

    def checkpoint(self, sightings: Iterable[Sighting]) -> None:
        """Save the current aggregate of still-open sightings (no publication): after a crash
        their closed form carries the counts up to here."""
        rows = [(orjson.dumps(sighting_to_json(s)).decode(), s.seq) for s in sightings]
        if rows:
            self._begin()
            self._db.executemany(
                "UPDATE sightings SET body=? WHERE seq=? AND state='open'", rows)

    def due(self, limit: int) -> list[SpoolRow]:
        """Up to ``limit`` sightings whose (re)publication is due, oldest first."""
        if self._due_hint is None or self._due_hint > self._mono():
            return []
        cur = self._db.execute(
            "SELECT seq, spool_id, state, body, suspect, tries FROM sightings "
            "WHERE next_try IS NOT NULL AND next_try <= ? ORDER BY next_try, seq LIMIT ?",
            (self._mono(), limit))
        return [SpoolRow(seq, sid, st, body.encode(), bool(sus), tries)
                for seq, sid, st, body, sus, tries in cur]

    def mark_sent(self, seqs: Sequence[int]) -> None:
        """Publication of ``seqs`` starts now: wait for a receipt, longer at each try."""
        if not seqs:
            return
        now = self._mono()
        self._note_due(now + self._backoff(0))
        self._begin()
        self._db.executemany(
            "UPDATE sightings SET next_try = ? + min(?, ? * (1 << min(tries, 30))), "
            "tries = tries + 1, sent = ? WHERE seq = ?",
            [(now, self.republish_max, self.republish_after, now, s) for s in seqs])

    def make_due(self, seqs: Sequence[int]) -> None:
        """These could not be handed to the broker after all: due again at once."""
        if seqs:
            self._note_due(self._mono())
            self._begin()
            self._db.executemany("UPDATE sightings SET next_try=?, tries=max(tries - 1, 0), "
                                 "sent=NULL WHERE seq=? AND next_try IS NOT NULL",
                                 [(self._mono(), s) for s in seqs])

    @property
    def centre_epoch(self) -> int:
        """The newest centre epoch acted on (-1: none yet)."""
        return self._centre_epoch

    def new_centre_epoch(self, epoch: int) -> bool:
        """Note ``epoch`` if it is newer than the last one acted on (in the current
        transaction: durable with the next commit); True when it is news."""
        if epoch <= self._centre_epoch:
            return False
        self._centre_epoch = epoch
        self._begin()
        self._db.execute("INSERT OR REPLACE INTO meta VALUES ('centre_epoch', ?)", (str(epoch),))
        return True

    def republish_all(self, at: float) -> int:
        """Everything unreceipted is due at monotonic time ``at`` (or earlier, if it already
        was); open sightings whose open message the centre stored stay as they are. The
        back-off (``tries``) is kept: only the wait is cut short. Returns how many rows."""
        self._note_due(at)
        self._begin()
        return int(self._db.execute(
            "UPDATE sightings SET next_try=? WHERE next_try IS NOT NULL AND next_try > ?",
            (at, at)).rowcount)

    def next_due(self) -> float | None:
        """Monotonic time of the earliest scheduled (re)publication, if any (may answer a
        little early, never late)."""
        if self._due_hint is None or self._due_hint > self._mono():
            return self._due_hint
        row = self._db.execute("SELECT min(next_try) FROM sightings "
                               "WHERE next_try IS NOT NULL").fetchone()
        self._due_hint = None if row[0] is None else float(row[0])
        return self._due_hint

    def apply_receipt(self, receipt: Receipt) -> tuple[int, int]:
        """Delete the closed sightings ``receipt.closed`` covers; stop republishing the open
        messages ``receipt.open`` covers (their sightings stay until closed and receipted).
        Returns (deleted, open marked). A receipt for another spool id changes nothing."""
        if receipt.spool_id not in self._spool_ids:
            self.stats.receipts_foreign += 1
            return 0, 0
        self._begin()
        deleted = marked = 0
        newest = self._db.execute
        for ranges, state in ((receipt.closed, "closed"), (receipt.open, "open")):
            for a, b in ranges:
                t = newest("SELECT max(sent) FROM sightings WHERE spool_id=? AND seq BETWEEN ? "
                           "AND ? AND state=?", (receipt.spool_id, a, b, state)).fetchone()[0]
                if t is not None and (self._newest_receipted is None
                                      or t > self._newest_receipted):
                    self._newest_receipted = float(t)
        stored_after_drop = 0
        for a, b in receipt.closed:
            deleted += self._db.execute(
                "DELETE FROM sightings WHERE spool_id=? AND seq BETWEEN ? AND ? "
                "AND state='closed'", (receipt.spool_id, a, b)).rowcount
            if self.stats.dropped_total:
                stored_after_drop += self._db.execute(
                    "DELETE FROM dropped WHERE spool_id=? AND seq BETWEEN ? AND ?",
                    (receipt.spool_id, a, b)).rowcount
        if stored_after_drop:
            self._uncount(stored_after_drop)
        for a, b in receipt.open:
            marked += self._db.execute(
                "UPDATE sightings SET next_try=NULL, sent=NULL WHERE spool_id=? "
                "AND seq BETWEEN ? AND ? AND state='open' AND next_try IS NOT NULL",
                (receipt.spool_id, a, b)).rowcount
        self.stats.receipted += deleted
        self.stats.receipted_open += marked
        self._republish_lost()
        return deleted, marked

    def _uncount(self, n: int) -> None:
        """``n`` dropped rows turned out stored (a late receipt): not losses after all."""
        self.stats.dropped_total -= n
        self.stats.dropped_stored += n
        self._db.execute("UPDATE meta SET value=? WHERE key='dropped'",
                         (str(self.stats.dropped_total),))
        pending = self._db.execute("SELECT min(first_seen) FROM dropped").fetchone()[0]
        oldest = min((t for t in (pending, self._meta_float("oldest_settled"))
                      if t is not None), default=None)
        self.oldest_dropped = None if oldest is None else float(oldest)
        self._set_meta_float("oldest_dropped", self.oldest_dropped)

    def _settle_dropped(self) -> None:
        """Forget dropped rows no receipt covered within DROP_PENDING_S: losses for good."""
        cutoff = self._wall() - DROP_PENDING_S
        old = self._db.execute("SELECT min(first_seen), count(*) FROM dropped "
                               "WHERE dropped_at < ?", (cutoff,)).fetchone()
        if old[1]:
            settled = min(t for t in (old[0], self._meta_float("oldest_settled"))
                           if t is not None)
            self._set_meta_float("oldest_settled", float(settled))
            self._db.execute("DELETE FROM dropped WHERE dropped_at < ?", (cutoff,))

    def _republish_lost(self) -> None:
        """Unreceipted sightings sent ``LOST_SLACK_S`` before the newest receipted one: due
        now (see the module docstring)."""
        if self._newest_receipted is None or self._newest_receipted == self._lost_checked:
            return
        self._lost_checked = self._newest_receipted
        now = self._mono()
        n = self._db.execute(
            "UPDATE sightings SET next_try=?, sent=NULL WHERE next_try IS NOT NULL "
            "AND next_try > ? AND sent < ?",
            (now, now, self._newest_receipted - LOST_SLACK_S)).rowcount
        if n:
            self._note_due(now)
            self.stats.presumed_lost += n
            event(log, logging.INFO, "spool_presumed_lost", republish=n,
                  presumed_lost_total=self.stats.presumed_lost)

    # --- size -----------------------------------------------------------------------------

    def bytes_used(self) -> int:
        """Bytes of the database holding data (free pages excluded; the WAL not counted)."""
        page = self._db.execute("PRAGMA page_size").fetchone()[0]
        count = self._db.execute("PRAGMA page_count").fetchone()[0]
        free = self._db.execute("PRAGMA freelist_count").fetchone()[0]
        return int((count - free) * page)

    def enforce_limit(self) -> int:
        """Over ``max_bytes``: drop the oldest CLOSED sightings (never an open one: they are
        few, bounded by the smoother) until under 90 % of it. Returns how many were dropped;
        the lifetime total, less the drops a later receipt shows stored, is kept in the spool
        and reported in health, with the oldest dropped first_seen."""
        if self.bytes_used() <= self.max_bytes:
            return 0
        target = int(self.max_bytes * 0.9)
        dropped = 0
        self._begin()
        now = self._wall()
        oldest: float | None = None
        self._settle_dropped()
        while self.bytes_used() > target:
            victims = self._db.execute(
                "SELECT seq, spool_id, first_seen FROM sightings WHERE state='closed' "
                "ORDER BY seq LIMIT ?", (max(100, self.depth() // 50),)).fetchall()
            if not victims:
                break
            self._db.executemany("DELETE FROM sightings WHERE seq=?", [(v[0],) for v in victims])
            # Remembered until a receipt may still cover them (module doc: exact losses).
            self._db.executemany(
                "INSERT OR REPLACE INTO dropped VALUES (?, ?, ?, ?)",
                [(sid, seq, first, now) for seq, sid, first in victims])
            first_seen = min(float(v[2]) for v in victims)
            oldest = first_seen if oldest is None else min(oldest, first_seen)
            dropped += len(victims)
        if dropped:
            self._db.execute("UPDATE meta SET value = CAST(value AS INTEGER) + ? "
                             "WHERE key='dropped'", (dropped,))
            self.stats.dropped += dropped
            self.stats.dropped_total += dropped
            if oldest is not None and (self.oldest_dropped is None
                                       or oldest < self.oldest_dropped):
                self.oldest_dropped = oldest
                self._set_meta_float("oldest_dropped", oldest)
            event(log, logging.WARNING, "spool_full_dropped", dropped=dropped,
                  dropped_total=self.stats.dropped_total, max_bytes=self.max_bytes)
        self.commit()
        return dropped

    # --- reporting ------------------------------------------------------------------------

    def depth(self) -> int:
        return int(self._db.execute("SELECT count(*) FROM sightings").fetchone()[0])

    def oldest_first_seen(self) -> float | None:
        """Unix time of the oldest sighting still spooled."""
        row = self._db.execute("SELECT first_seen FROM sightings ORDER BY seq LIMIT 1").fetchone()
        return None if row is None else float(row[0])

    def seqs(self) -> list[int]:
        """Every spooled seq (tests and tools)."""
        return [r[0] for r in self._db.execute("SELECT seq FROM sightings ORDER BY seq")]

    # --- closing --------------------------------------------------------------------------

    def close(self) -> None:
        """Commit, stop the background thread, fsync and close."""
        self.commit()
        self._syncer.stopping = True
        self._syncer.wake.set()
        self._syncer.join(5.0)
        with contextlib.suppress(sqlite3.Error):
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        self._db.close()

    def __enter__(self) -> Spool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
