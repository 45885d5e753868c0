"""The one-row rule (tracker/storage/one_row.py) on every store: one row per sighting id
whatever first_seen a later message claims; the first stored first_seen stands, the merge rule
decides the rest, and the conflict is counted."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from pak.types import Sighting, merge_sightings
from tests.support.stores import Store
from tracker.storage import migrations, open_storage

NOW = datetime.now(UTC).replace(microsecond=0)
T0 = NOW - timedelta(hours=2)


def msg(state: str, *, first: datetime, last: datetime, reads: int, seq: int = 7,
        antennas: tuple[int, ...] = (1,), flags: tuple[str, ...] = ()) -> Sighting:
    return Sighting(gateway_id="gw-1", spool_id="sp-a", seq=seq, state=state,  # type: ignore[arg-type]
                    tag_id="E2000017221101441890ABCD", tag_kind="epc", reader_id="rd-1",
                    first_seen=first, last_seen=last, reads=reads, antenna=antennas[0],
                    antennas=antennas, flags=flags, rssi_max_dbm=-60.0)


def conflicts(store: Store) -> int:
    holder: Any = store.memory if store.memory is not None else store.storage
    return int(holder.first_seen_conflicts.count)


def test_open_then_closed_with_another_first_seen_leave_one_row(store: Store) -> None:
    opened = msg("open", first=T0, last=T0, reads=1)
    closed = msg("closed", first=T0 + timedelta(seconds=5), last=T0 + timedelta(seconds=40),
                 reads=9, antennas=(1, 2), flags=("tamper",))
    store.storage.write_batch([opened])
    store.storage.write_batch([closed])

    rows = store.rows()
    assert list(rows) == [opened.id]
    # The stored first_seen stands; everything else is the merge rule's.
    assert rows[opened.id] == merge_sightings(opened, closed).replace(first_seen=T0)
    assert rows[opened.id].state == "closed" and rows[opened.id].reads == 9
    assert conflicts(store) == 1

    # The same closed message again, and a later one that agrees: no new conflict... and a
    # third time first_seen differs: counted again, still one row.
    store.storage.write_batch([closed.replace(first_seen=T0)])
    assert conflicts(store) == 1
    store.storage.write_batch([closed.replace(first_seen=T0 - timedelta(days=3))])
    assert conflicts(store) == 2
    assert list(store.rows()) == [opened.id]
    assert store.rows()[opened.id].first_seen == T0


def test_closed_first_keeps_its_first_seen_when_a_late_open_disagrees(store: Store) -> None:
    closed = msg("closed", first=T0, last=T0 + timedelta(seconds=30), reads=5, seq=8)
    late_open = msg("open", first=T0 + timedelta(hours=1), last=T0 + timedelta(hours=1),
                    reads=1, seq=8, antennas=(3,))
    other = msg("closed", first=T0, last=T0, reads=1, seq=9)  # an unrelated id, same batch
    store.storage.write_batch([closed])
    store.storage.write_batch([late_open, other])

    rows = store.rows()
    assert sorted(r.seq for r in rows.values()) == [8, 9]
    got = rows[closed.id]
    assert got == merge_sightings(closed, late_open).replace(first_seen=T0)
    assert got.state == "closed" and got.antennas == (1, 3)
    assert conflicts(store) == 1


@pytest.mark.timescale
def test_timescale_keeps_one_claim_per_id(pg_url: str) -> None:
    """The id table holds each id once, with the stored first_seen, and a conflict does not
    create a chunk for the claimed time."""
    import psycopg

    with open_storage(pg_url) as s:
        s.migrate()
        s.write_batch([msg("open", first=T0, last=T0, reads=1)])
        s.write_batch([msg("closed", first=T0 - timedelta(days=10), last=T0, reads=3)])
    with psycopg.connect(pg_url) as conn:
        ids = conn.execute("SELECT gateway_id, spool_id, seq, first_seen FROM sighting_ids"
                           ).fetchall()
        assert ids == [("gw-1", "sp-a", 7, T0)]
        starts = [r[0] for r in conn.execute(
            "SELECT range_start FROM timescaledb_information.chunks "
            "WHERE hypertable_name = 'sightings'")]
        assert len(starts) == 1 and starts[0] <= T0


# --- the migration: rows stored before it under one id become one ------------------------


def _apply(backend: migrations.Backend, run: Any, upto: int) -> None:
    for mig in migrations.load(backend)[:upto]:
        run(mig)


def _legacy_rows(ins: Any) -> None:
    """Three rows of one id (the bug): open, then closed with another time, then a later
    open; and one ordinary id."""
    ins("gw-1", "sp-a", 1, "open", T0, T0, 1, 10)
    ins("gw-1", "sp-a", 1, "closed", T0 + timedelta(seconds=5), T0 + timedelta(seconds=50), 8, 20)
    ins("gw-1", "sp-a", 1, "open", T0 + timedelta(seconds=9), T0 + timedelta(seconds=9), 1, 30)
    ins("gw-1", "sp-a", 2, "open", T0, T0, 2, 40)


def test_migration_collapses_earlier_duplicates_sqlite(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT "
                 "NOT NULL, applied_at INTEGER NOT NULL)")

    def run(mig: migrations.Migration) -> None:
        conn.executescript(mig.sql)
        conn.execute("INSERT INTO schema_migrations VALUES (?, ?, 0)", (mig.version, mig.name))

    def us(t: datetime) -> int:
        return int(t.timestamp() * 1_000_000)

    def ins(gw: str, sp: str, seq: int, state: str, first: datetime, last: datetime,
            reads: int, stored: int) -> None:
        conn.execute("INSERT INTO sightings (gateway_id, spool_id, seq, state, tag_id, "
                     "tag_kind, reader_id, first_seen, last_seen, reads, stored_at) "
                     "VALUES (?, ?, ?, ?, 'AB', 'epc', 'rd-1', ?, ?, ?, ?)",
                     (gw, sp, seq, state, us(first), us(last), reads, stored))

    _apply("sqlite", run, 4)
    _legacy_rows(ins)
    conn.close()
    with open_storage(f"sqlite://{path}") as s:
        assert s.migrate()[0] == "0005_one_row_per_sighting"
        rows = sorted(s.sightings(limit=None), key=lambda r: r.seq)
    assert [(r.seq, r.state, r.first_seen, r.reads) for r in rows] == [
        (1, "closed", T0 + timedelta(seconds=5), 8), (2, "open", T0, 2)]


@pytest.mark.timescale
def test_migration_collapses_earlier_duplicates_timescale(pg_url: str) -> None:
    import psycopg

    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE schema_migrations (version integer PRIMARY KEY, name text "
                     "NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())")

        def run(mig: migrations.Migration) -> None:
            conn.execute(mig.sql)  # type: ignore[call-overload]
            conn.execute("INSERT INTO schema_migrations (version, name) VALUES (%s, %s)",
                         (mig.version, mig.name))

        def ins(gw: str, sp: str, seq: int, state: str, first: datetime, last: datetime,
                reads: int, stored: int) -> None:
            conn.execute("INSERT INTO sightings (gateway_id, spool_id, seq, state, tag_id, "
                         "tag_kind, reader_id, first_seen, last_seen, reads, stored_at) "
                         "VALUES (%s, %s, %s, %s, 'AB', 'epc', 'rd-1', %s, %s, %s, %s)",
                         (gw, sp, seq, state, first, last, reads,
                          T0 + timedelta(seconds=stored)))

        _apply("postgres", run, 4)
        _legacy_rows(ins)
    with open_storage(pg_url) as s:
        assert s.migrate()[0] == "0005_one_row_per_sighting"
        rows = sorted(s.sightings(limit=None), key=lambda r: r.seq)
        # And the id table now guards the kept rows.
        s.write_batch([rows[0].replace(first_seen=T0 + timedelta(days=2), reads=99)])
        after = sorted(s.sightings(limit=None), key=lambda r: r.seq)
        assert [(r.seq, r.state, r.first_seen, r.reads) for r in after] == [
            (1, "closed", T0 + timedelta(seconds=5), 99), (2, "open", T0, 2)]
    assert [(r.seq, r.state, r.first_seen, r.reads) for r in rows] == [
        (1, "closed", T0 + timedelta(seconds=5), 8), (2, "open", T0, 2)]
