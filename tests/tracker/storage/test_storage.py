"""The storage suite: every test runs against both backends (SQLite in a temporary folder,
TimescaleDB in a scratch database of the shared PostgreSQL), so both keep the same rows.

Expected rows are written out by hand from DESIGN.md's merge rule; the property test at the
end compares the database with folding pak.types.merge_sightings over the same messages.
"""

from __future__ import annotations

import itertools
import sqlite3
import threading
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pak.errors import ConfigError
from pak.types import Sighting, SightingId, merge_sightings
from tests import services
from tracker.storage import (
    Alert,
    DeadLetter,
    NotFound,
    Reader,
    Storage,
    StorageError,
    StorageUnavailable,
    TagAssignment,
    Vehicle,
    dedupe,
    open_storage,
)

T0 = datetime(2026, 11, 28, 6, 0, 0, tzinfo=UTC)
ALL_MIGRATIONS = ["0001_sightings", "0002_registry", "0003_cases", "0004_operations",
                  "0005_one_row_per_sighting", "0006_accounts", "0007_audit_chain",
                  "0008_incomplete"]


def sec(n: float) -> timedelta:
    return timedelta(seconds=n)


def mk(seq: int, state: str = "closed", *, gw: str = "gw-1", spool: str = "sp-a",
       tag: str = "E2000017221101441890ABCD", reader: str = "rd-1", first: datetime = T0,
       last: datetime | None = None, reads: int = 1, **kw: object) -> Sighting:
    return Sighting(gateway_id=gw, spool_id=spool, seq=seq, state=state,  # type: ignore[arg-type]
                    tag_id=tag, tag_kind="epc", reader_id=reader, first_seen=first,
                    last_seen=last or first, reads=reads, **kw)  # type: ignore[arg-type]


# --- migrations ---------------------------------------------------------------------------


def test_migrations_apply_once_and_are_idempotent(db_url: str) -> None:
    with open_storage(db_url) as s:
        assert s.info()["migrations_pending"] == ALL_MIGRATIONS
        assert s.migrate() == ALL_MIGRATIONS
        assert s.migrate() == []
    with open_storage(db_url) as again:
        assert again.migrate() == []
        info = again.info()
        assert info["migrations_applied"] == ALL_MIGRATIONS
        assert info["migrations_pending"] == []
        assert info["counts"]["sightings"] == 0


def test_two_processes_migrating_at_once_apply_each_migration_once(db_url: str) -> None:
    results: list[list[str]] = []
    errors: list[BaseException] = []
    gate = threading.Barrier(2)

    def run() -> None:
        try:
            with open_storage(db_url) as s:
                gate.wait(30)
                results.append(s.migrate())
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    assert sorted(results, key=len) == [[], ALL_MIGRATIONS]


@pytest.mark.timescale
def test_sightings_is_a_hypertable_on_first_seen_with_its_indexes(pg_url: str) -> None:
    import psycopg

    with open_storage(pg_url) as s:
        s.migrate()
    with psycopg.connect(pg_url) as conn:
        dims = conn.execute(
            "SELECT d.column_name, d.time_interval FROM timescaledb_information.hypertables h "
            "JOIN timescaledb_information.dimensions d USING (hypertable_schema, "
            "hypertable_name) WHERE h.hypertable_name = 'sightings'").fetchall()
        assert dims == [("first_seen", timedelta(days=1))]
        idx = {r[0]: r[1] for r in conn.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'sightings'")}
        assert "(gateway_id, spool_id, seq, first_seen)" in idx["sightings_id"]
        assert "UNIQUE" in idx["sightings_id"]
        assert "(tag_id, first_seen DESC)" in idx["sightings_tag_time"]
        assert "(reader_id, first_seen DESC)" in idx["sightings_reader_time"]
        lic = conn.execute("SELECT current_setting('timescaledb.license')").fetchone()
        assert lic is not None and lic[0] in ("apache", "timescale")


# --- the merge rule -------------------------------------------------------------------------

OPEN = mk(7, "open", reads=2, last=T0 + sec(1), antenna=2, antennas=(2,),
          rssi_max_dbm=-61.5, rssi_max_raw=120, flags=("key",), tag_type=49)
CLOSED = mk(7, "closed", reads=9, last=T0 + sec(20), antenna=2, antennas=(2, 1),
            rssi_max_dbm=-48.0, rssi_max_raw=None, flags=("low_battery",), tag_type=49,
            reader_time=T0 - sec(3))
# Worked by hand from the rule: closed beats open, later last_seen, larger reads and rssi
# (a missing value never wins), antennas in order of first appearance, sorted flag union.
MERGED = mk(7, "closed", reads=9, last=T0 + sec(20), antenna=2, antennas=(2, 1),
            rssi_max_dbm=-48.0, rssi_max_raw=120, flags=("key", "low_battery"), tag_type=49,
            reader_time=T0 - sec(3))


@pytest.mark.parametrize("order", [(OPEN, CLOSED), (CLOSED, OPEN)], ids=["open-closed",
                                                                          "closed-open"])
def test_open_and_closed_in_either_order_leave_the_final_aggregate(
        storage: Storage, order: tuple[Sighting, Sighting]) -> None:
    for s in order:
        storage.write_batch([s])
    assert storage.sightings() == [MERGED]
    assert storage.count_sightings() == 1


def test_redelivered_duplicates_change_nothing(storage: Storage) -> None:
    for _ in range(3):
        storage.write_batch([CLOSED])
        storage.write_batch([OPEN])
    assert storage.sightings() == [MERGED]


def test_antenna_union_keeps_the_base_side_first(storage: Storage) -> None:
    storage.write_batch([mk(1, "open", antenna=3, antennas=(3, 1)),
                         mk(2, "open", antenna=3, antennas=(3, 1))])
    # seq 1: an open message meets an open row -> the stored row is the base.
    # seq 2: a closed message meets an open row -> the closed message is the base.
    storage.write_batch([mk(1, "open", antenna=1, antennas=(1, 4)),
                         mk(2, "closed", antenna=None, antennas=(1, 4))])
    one, two = storage.sightings()
    assert (one.antennas, one.antenna, one.state) == ((3, 1, 4), 3, "open")
    assert (two.antennas, two.antenna, two.state) == ((1, 4, 3), 3, "closed")


def test_larger_reads_and_rssi_and_later_last_seen_win_even_from_an_open_message(
        storage: Storage) -> None:
    storage.write_batch([mk(1, "closed", reads=5, last=T0 + sec(9), rssi_max_dbm=-70.0,
                            rssi_max_raw=None, flags=("tamper",))])
    storage.write_batch([mk(1, "open", reads=8, last=T0 + sec(30), rssi_max_dbm=-55.25,
                            rssi_max_raw=33, flags=("key", "out_of_range"),
                            reader="rd-other", tag="AAAA")])
    (row,) = storage.sightings()
    assert (row.state, row.reads, row.last_seen) == ("closed", 8, T0 + sec(30))
    assert (row.rssi_max_dbm, row.rssi_max_raw) == (-55.25, 33)
    assert row.flags == ("key", "out_of_range", "tamper")
    # Fields both sides should agree on come from the closed side.
    assert (row.reader_id, row.tag_id) == ("rd-1", "E2000017221101441890ABCD")


def test_the_same_id_twice_in_one_batch_after_dedupe(storage: Storage) -> None:
    batch = [OPEN, mk(8, "open"), CLOSED]
    storage.write_batch(dedupe(batch))
    assert storage.sightings() == [MERGED, mk(8, "open")]


def test_a_batch_not_deduplicated_by_the_caller_still_keeps_one_row(storage: Storage) -> None:
    storage.write_batch([CLOSED, OPEN, CLOSED])
    assert storage.sightings() == [MERGED]


def test_round_trip_keeps_every_field(storage: Storage) -> None:
    s = mk(2**53 - 1, "closed", gw="gw:x.1", spool="0f1e2d3c", tag="E280" * 6,
           reader="rd-9", first=T0 + timedelta(microseconds=125_000),
           last=T0 + sec(4.5), reads=2**40, tag_type=255, antenna=64,
           antennas=(64, 1, 7), rssi_max_dbm=-200.0, rssi_max_raw=-128,
           flags=("key", "low_battery", "out_of_range", "tamper"),
           reader_time=T0 - timedelta(hours=8, microseconds=1))
    s = s.replace(tag_kind="active")
    storage.write_batch([s])
    assert storage.get_sighting(s.id) == s
    assert storage.get_sighting(SightingId("gw:x.1", "0f1e2d3c", 1)) is None


def test_flags_are_stored_sorted_and_unique(storage: Storage) -> None:
    storage.write_batch([mk(1, flags=("tamper", "key", "tamper"))])
    (row,) = storage.sightings()
    assert row.flags == ("key", "tamper")
    storage.write_batch([mk(1, flags=("key",))])  # adds nothing: the row stays as it is
    assert storage.sightings() == [row]


# --- transactions and availability ------------------------------------------------------------


@pytest.mark.parametrize("poison", ["sighting", "dead_letter"])
def test_a_failing_batch_leaves_nothing(storage: Storage, poison: str) -> None:
    good = [mk(i) for i in range(1, 50)]
    letters = [DeadLetter("pak/v1/gw/x/sightings", b"{", "not_json", "", T0)]
    alerts = [Alert("hit:gw-1/sp-a/1", "stolen_hit", T0, tag_id="AB")]
    if poison == "sighting":
        good.append(mk(99, "half-open"))  # refused by the table's CHECK
    else:
        letters.append(DeadLetter("t", None, "x", "", T0))  # type: ignore[arg-type]
    with pytest.raises(StorageError) as exc:
        storage.write_batch(good, dead_letters=letters, alerts=alerts)
    assert not isinstance(exc.value, StorageUnavailable)
    counts = storage.counts()
    assert (counts["sightings"], counts["dead_letters"], counts["alerts"]) == (0, 0, 0)
    storage.write_batch(good[:3])  # the storage is still usable
    assert storage.count_sightings() == 3


def test_two_writers_with_overlapping_batches_neither_deadlock_nor_double(db_url: str) -> None:
    """Two tracker instances may hold the same ids (a redelivery went to the other one),
    in any order: rows are locked in key order, so neither waits for the other forever."""
    ids = list(range(1, 1501))
    errors: list[BaseException] = []
    with open_storage(db_url) as first:
        first.migrate()

    def writer(order: list[int], state: str) -> None:
        try:
            with open_storage(db_url) as s:
                for _ in range(3):
                    s.write_batch([mk(i, state, reads=i % 7 + 1) for i in order])
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=writer, args=(ids, "open")),
               threading.Thread(target=writer, args=(ids[::-1], "closed"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert errors == []
    with open_storage(db_url) as s:
        rows = s.sightings()
    assert [r.seq for r in rows] == ids
    assert {r.state for r in rows} == {"closed"}


@pytest.mark.timescale
def test_unreachable_database_raises_unavailable_and_recovers(
        private_pg: services.PrivatePostgres) -> None:
    with open_storage(private_pg.url, timeout=1.5) as s:
        s.migrate()
        s.write_batch([mk(1)])
        private_pg.stop("fast")  # admin shutdown: the pooled connection dies
        with pytest.raises(StorageUnavailable):
            s.write_batch([mk(2), mk(3)],
                          alerts=[Alert("a", "stolen_hit", T0, sighting=SightingId(
                              "gw-1", "sp-a", 2))])
        private_pg.start()
        s.write_batch([mk(2), mk(3)],
                      alerts=[Alert("a", "stolen_hit", T0, sighting=SightingId("gw-1", "sp-a",
                                                                               2))])
        assert [x.seq for x in s.sightings()] == [1, 2, 3]
        assert s.counts()["alerts"] == 1


@pytest.mark.timescale
def test_database_down_at_start_is_unavailable_not_a_crash(
        private_pg: services.PrivatePostgres) -> None:
    private_pg.stop("immediate")
    with open_storage(private_pg.url, timeout=1.0) as s:
        with pytest.raises(StorageUnavailable):
            s.migrate()
        with pytest.raises(StorageUnavailable):
            s.write_batch([mk(1)])
        private_pg.start()
        assert s.migrate() == ALL_MIGRATIONS
        s.write_batch([mk(1)])
        assert s.count_sightings() == 1


def test_sqlite_locked_by_another_writer_is_unavailable_then_recovers(tmp_path: Path) -> None:
    url = f"sqlite://{tmp_path}/pak.db"
    with open_storage(url, busy_timeout=0.2) as s:
        s.migrate()
        other = sqlite3.connect(tmp_path / "pak.db", isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
        with pytest.raises(StorageUnavailable):
            s.write_batch([mk(1)])
        other.execute("ROLLBACK")
        other.close()
        s.write_batch([mk(1)])
        assert s.count_sightings() == 1


# --- queries ------------------------------------------------------------------------------


def _traffic() -> list[Sighting]:
    """Three tags passing three readers, written out of time order."""
    out = []
    plan = [  # (seq, tag, reader, offset s)
        (1, "AA01", "rd-1", 50), (2, "AA01", "rd-2", 10), (3, "BB02", "rd-1", 30),
        (4, "AA01", "rd-3", 90), (5, "CC03", "rd-2", 20), (6, "BB02", "rd-3", 70),
        (7, "AA01", "rd-1", 130), (8, "CC03", "rd-1", 60),
    ]
    for seq, tag, reader, off in plan:
        out.append(mk(seq, tag=tag, reader=reader, first=T0 + sec(off),
                      last=T0 + sec(off + 4), reads=3))
    return out


def test_queries_by_tag_and_by_reader_set_are_in_time_order(storage: Storage) -> None:
    storage.write_batch(_traffic())
    assert [s.seq for s in storage.sightings(tag_id="AA01")] == [2, 1, 4, 7]
    # since is inclusive, until exclusive
    got = storage.sightings(reader_ids=["rd-1", "rd-2"], since=T0 + sec(20),
                            until=T0 + sec(60))
    assert [s.seq for s in got] == [5, 3, 1]
    assert storage.sightings(reader_ids=[]) == []
    assert [s.seq for s in storage.sightings(limit=3)] == [2, 5, 3]
    assert [s.seq for s in storage.iter_sightings(batch_size=3)] == [2, 5, 3, 1, 8, 6, 4, 7]
    assert [s.seq for s in storage.iter_sightings(since=T0 + sec(60))] == [8, 6, 4, 7]


def test_recent_passes_are_newest_first(storage: Storage) -> None:
    storage.write_batch(_traffic())
    assert [s.seq for s in storage.recent_passes("AA01", limit=2)] == [7, 4]
    assert [s.seq for s in storage.recent_passes("AA01", before=T0 + sec(90))] == [1, 2]
    assert storage.recent_passes("FFFF") == []


# --- dead letters, alerts, watchlist --------------------------------------------------------


def test_dead_letters_keep_their_raw_bytes(storage: Storage) -> None:
    raw = bytes(range(256)) + b"\x00\xff"
    storage.write_batch([], dead_letters=[
        DeadLetter("pak/v1/gw/g1/sightings", raw, "not_json", "byte 0", T0),
        DeadLetter("pak/v1/gw/g2/sightings", b"{}", "bad_envelope", "missing v",
                   T0 + sec(1)),
    ])
    got = storage.dead_letters()
    assert [d.reason for d in got] == ["bad_envelope", "not_json"]  # newest first
    assert got[1].payload == raw
    assert got[1] == DeadLetter("pak/v1/gw/g1/sightings", raw, "not_json", "byte 0", T0)
    assert storage.count_dead_letters() == 2
    assert storage.count_dead_letters(reason="not_json") == 1
    assert storage.dead_letters(since=T0 + sec(1))[0].topic == "pak/v1/gw/g2/sightings"


def test_alert_upsert_is_idempotent_and_repeated_hits_update_one_row(
        storage: Storage) -> None:
    first = Alert("stolen:AB12", "stolen_hit", T0, tag_id="AB12", reader_id="rd-1",
                  gateway_id="gw-1", sighting=SightingId("gw-1", "sp-a", 5),
                  detail={"case": "C-1", "passes": 1})
    storage.write_batch([], alerts=[first])
    storage.write_batch([], alerts=[first])
    a = storage.get_alert("stolen:AB12")
    assert a is not None
    assert (a.status, a.at, a.last_at, a.sightings) == (
        "new", T0, T0, (SightingId("gw-1", "sp-a", 5),))
    assert storage.counts()["alerts"] == 1

    storage.set_alert_status("stolen:AB12", "acknowledged", actor="officer-7", at=T0 + sec(5))
    later = replace(first, at=T0 + sec(60), reader_id="rd-2",
                    sighting=SightingId("gw-2", "sp-b", 1), detail={"case": "C-1", "passes": 2})
    storage.upsert_alerts([later])
    storage.upsert_alerts([first])  # a late redelivery of the first hit changes nothing
    a = storage.get_alert("stolen:AB12")
    assert a is not None
    assert a.status == "acknowledged"  # a new hit never resets the lifecycle
    assert (a.at, a.last_at, a.reader_id, a.detail) == (
        T0, T0 + sec(60), "rd-2", {"case": "C-1", "passes": 2})
    assert a.sightings == (SightingId("gw-1", "sp-a", 5), SightingId("gw-2", "sp-b", 1))

    done = storage.set_alert_status("stolen:AB12", "dispatched", actor="desk", at=T0 + sec(90),
                                    note="unit 12")
    assert [(h.from_status, h.to_status, h.actor) for h in done.history] == [
        ("new", "acknowledged", "officer-7"), ("acknowledged", "dispatched", "desk")]
    assert done.history[1].note == "unit 12"
    assert done.updated_at == T0 + sec(90)
    with pytest.raises(NotFound):
        storage.set_alert_status("nope", "closed", actor="x", at=T0)
    with pytest.raises(StorageError):
        storage.set_alert_status("stolen:AB12", "lost", actor="x", at=T0)


def test_alert_lists_filter_by_status_kind_and_time(storage: Storage) -> None:
    storage.upsert_alerts([
        Alert("a1", "stolen_hit", T0, tag_id="AB"),
        Alert("a2", "tamper", T0 + sec(10), tag_id="CD"),
        Alert("a3", "stolen_hit", T0 + sec(20), tag_id="AB"),
    ])
    storage.set_alert_status("a3", "closed", actor="x", at=T0 + sec(30))
    assert [a.alert_id for a in storage.alerts()] == ["a3", "a2", "a1"]
    assert [a.alert_id for a in storage.alerts(status="new")] == ["a2", "a1"]
    assert [a.alert_id for a in storage.alerts(status=["new", "closed"], kind="stolen_hit")
            ] == ["a3", "a1"]
    assert [a.alert_id for a in storage.alerts(tag_id="AB", since=T0 + sec(1))] == ["a3"]
    assert [a.alert_id for a in storage.alerts(limit=1)] == ["a3"]
    # the live feed's replay: by latest change, not by first raised
    storage.set_alert_status("a1", "acknowledged", actor="x", at=T0 + sec(40))
    assert [a.alert_id for a in storage.alerts(changed_since=T0 + sec(25))] == ["a3", "a1"]
    assert [a.alert_id for a in storage.alerts(changed_since=T0 + sec(35))] == ["a1"]


def test_watchlist_add_remove_and_history(storage: Storage) -> None:
    storage.watchlist_add("AB12", case_no="2026-001", reporter="PS Nord", reported_at=T0,
                          note="red e-bike", at=T0 + sec(1))
    storage.watchlist_add("CD34", case_no="2026-002", reporter=None, reported_at=T0,
                          at=T0 + sec(2))
    assert [w.tag_id for w in storage.watchlist()] == ["AB12", "CD34"]
    assert storage.watchlist_remove("AB12", status="recovered", at=T0 + sec(10)) == 1
    assert storage.watchlist_remove("AB12", at=T0 + sec(11)) == 0  # nothing active left
    assert [w.tag_id for w in storage.watchlist()] == ["CD34"]
    (entry,) = storage.watchlist(status=None, tag_id="AB12")
    assert (entry.status, entry.changed_at, entry.note, entry.reporter) == (
        "recovered", T0 + sec(10), "red e-bike", "PS Nord")
    # Stolen again: a second case for the same tag; the first one stays as history.
    storage.watchlist_add("AB12", case_no="2026-050", reporter="PS Sued", reported_at=T0,
                          at=T0 + sec(20))
    assert [(w.case_no, w.status) for w in storage.watchlist(status=None, tag_id="AB12")] == [
        ("2026-001", "recovered"), ("2026-050", "active")]
    assert [w.case_no for w in storage.watchlist(status=None, changed_since=T0 + sec(10))
            ] == ["2026-001", "2026-050"]
    with pytest.raises(StorageError):
        storage.watchlist_remove("CD34", status="active", at=T0)


# --- readers, vehicles, tag history -------------------------------------------------------


def test_readers_round_trip_and_update(storage: Storage) -> None:
    r = Reader("rd-1", "Main St / 5th", 31.2304, 121.4737, {1: 90.0, 2: 270.0},
               "Asia/Shanghai")
    storage.upsert_readers([r, Reader("rd-0", "Depot", 31.0, 121.0)])
    assert storage.get_reader("rd-1") == r
    storage.upsert_readers([replace(r, name="Main St / 6th", bearings={1: 45.5})])
    got = storage.get_reader("rd-1")
    assert got is not None and (got.name, got.bearings) == ("Main St / 6th", {1: 45.5})
    assert [x.reader_id for x in storage.readers()] == ["rd-0", "rd-1"]
    assert storage.get_reader("rd-x") is None


def test_tag_reissue_keeps_history(storage: Storage) -> None:
    a = Vehicle("v-a", "SH-12345", owner="Li", kind="e-bike", colour="red",
                key_tag_id="K1", unaccompanied_check=True)
    b = Vehicle("v-b", "SH-99999", kind="motorbike")
    storage.upsert_vehicles([a, b])
    assert storage.get_vehicle("v-a") == a
    t1, t3, t6 = T0, T0 + timedelta(days=3), T0 + timedelta(days=6)
    storage.assign_tag("TAG1", "v-a", at=t1)
    storage.assign_tag("TAG1", "v-b", at=t3)  # the card is re-issued to another vehicle
    assert storage.vehicle_for_tag("TAG1", at=t1 - sec(1)) is None
    assert storage.vehicle_for_tag("TAG1", at=t1) == a
    assert storage.vehicle_for_tag("TAG1", at=t3 - sec(1)) == a
    assert storage.vehicle_for_tag("TAG1", at=t3) == b
    # v-b gets a new card: its old one (TAG1) ends there.
    storage.assign_tag("TAG2", "v-b", at=t6)
    assert storage.vehicle_for_tag("TAG1", at=t6) is None
    assert storage.vehicle_for_tag("TAG2", at=t6 + sec(1)) == b
    assert storage.tag_assignments(tag_id="TAG1") == [
        TagAssignment("TAG1", "v-a", t1, t3), TagAssignment("TAG1", "v-b", t3, t6)]
    assert storage.tag_assignments(vehicle_id="v-b") == [
        TagAssignment("TAG1", "v-b", t3, t6), TagAssignment("TAG2", "v-b", t6, None)]
    storage.release_tag("TAG2", at=t6 + timedelta(days=1))
    assert storage.vehicle_for_tag("TAG2", at=t6 + timedelta(days=2)) is None
    with pytest.raises(StorageError):
        storage.assign_tag("TAG3", "v-unknown", at=t6)
    assert [v.vehicle_id for v in storage.vehicles()] == ["v-a", "v-b"]


# --- gateways, audit ----------------------------------------------------------------------


def test_gateway_state_and_health_keep_the_latest(storage: Storage) -> None:
    storage.record_gateway("gw-1", state="online", at=T0)
    storage.record_gateway("gw-1", health={"frames_ok": 10}, at=T0 + sec(5))
    storage.record_gateway("gw-1", state="offline", at=T0 + sec(60))
    storage.record_gateway("gw-1", state="online", at=T0 + sec(30))  # late, older: ignored
    g = storage.get_gateway("gw-1")
    assert g is not None
    assert (g.state, g.state_at, g.health, g.health_at) == (
        "offline", T0 + sec(60), {"frames_ok": 10}, T0 + sec(5))
    storage.record_gateway("gw-0", state="online", at=T0)
    assert [x.gateway_id for x in storage.gateways()] == ["gw-0", "gw-1"]
    assert storage.get_gateway("gw-9") is None


def test_audit_log_appends_and_filters(storage: Storage) -> None:
    storage.append_audit(actor="alice", action="trail", reason="case 2026-001",
                         params={"tag_id": "AB12", "since": "2026-11-01"}, at=T0)
    storage.append_audit(actor="bob", action="who_passed", reason="case 2026-002",
                         params={"readers": ["rd-1"]}, at=T0 + sec(1))
    entries = storage.audit_log()
    assert [(e.actor, e.action) for e in entries] == [("alice", "trail"), ("bob", "who_passed")]
    assert entries[0].params == {"tag_id": "AB12", "since": "2026-11-01"}
    assert [e.actor for e in storage.audit_log(actor="bob")] == ["bob"]
    assert [e.actor for e in storage.audit_log(until=T0 + sec(1))] == ["alice"]


# --- retention ----------------------------------------------------------------------------


def test_retention_copies_evidence_then_drops_old_sightings(storage: Storage) -> None:
    now = T0
    old, new = now - timedelta(days=40), now - timedelta(days=1)
    rows = []
    for i, tag in enumerate(["0A", "0B", "0C", "0D", "0E", "0F"]):
        rows.append(mk(10 + i, tag=tag, first=old + sec(i)))
        rows.append(mk(20 + i, tag=tag, first=new + sec(i)))
    storage.write_batch(rows)
    storage.watchlist_add("0A", case_no="c1", reporter=None, reported_at=old, at=old)
    storage.watchlist_add("0F", case_no="c2", reporter=None, reported_at=old, at=old)
    storage.watchlist_remove("0F", status="withdrawn", at=new)  # case closed: no evidence
    storage.upsert_alerts([
        Alert("open-by-tag", "clone_suspect", old, tag_id="0B"),
        Alert("closed-by-tag", "stolen_hit", old, tag_id="0C"),
        Alert("open-by-sighting", "tamper", old, sighting=SightingId("gw-1", "sp-a", 13)),
    ])
    storage.set_alert_status("closed-by-tag", "closed", actor="x", at=old)

    result = storage.retention(30, now=now)
    assert result["evidence_copied"] == 3
    assert result["mode"] in ("delete", "drop_chunks", "policy")
    assert [s.seq for s in storage.sightings()] == [20, 21, 22, 23, 24, 25]
    evidence = storage.evidence_sightings()
    assert [(s.seq, s.tag_id) for s in evidence] == [(10, "0A"), (11, "0B"), (13, "0D")]
    assert evidence[0] == rows[0]
    assert [s.seq for s in storage.evidence_sightings(tag_id="0B")] == [11]

    again = storage.retention(30, now=now)  # nothing left to copy or drop
    assert again["evidence_copied"] == 0
    assert len(storage.evidence_sightings()) == 3
    with pytest.raises(ConfigError):
        storage.retention(0, now=now)


# --- URLs and the command line ------------------------------------------------------------


def test_open_storage_urls(tmp_path: Path) -> None:
    with open_storage("sqlite://:memory:") as s:
        assert s.migrate() == ALL_MIGRATIONS
        s.write_batch([CLOSED, OPEN])
        assert s.sightings() == [MERGED]
    with pytest.raises(ConfigError):
        open_storage("mysql://x")
    with pytest.raises(ConfigError):
        open_storage("sqlite://")


def test_pak_db_cli(db_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    import json

    from tracker import db_cli

    assert db_cli.main(["migrate", "--db", db_url]) == 0
    assert "applied 0005_one_row_per_sighting" in capsys.readouterr().out
    assert db_cli.main(["migrate"], env={"PAK_DB_URL": db_url}) == 0
    assert "up to date" in capsys.readouterr().out
    assert db_cli.main(["info", "--db", db_url, "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["migrations_applied"] == ALL_MIGRATIONS
    assert info["counts"]["sightings"] == 0
    if info["backend"] == "timescaledb":
        assert info["timescaledb_license"] == "apache"
        assert info["timescaledb_version"].startswith("2.")
    assert db_cli.main(["info", "--db", db_url]) == 0
    assert f"migrations: {len(ALL_MIGRATIONS)} applied" in capsys.readouterr().out
    assert db_cli.main(["retention", "--db", db_url, "--days", "30"]) == 0
    assert json.loads(capsys.readouterr().out)["evidence_copied"] == 0
    with pytest.raises(ConfigError):
        db_cli.main(["info"], env={})


# --- property: any messages, any batching = folding the merge rule -------------------------

_SIDS = [("gw-1", "sp-a", 1), ("gw-1", "sp-a", 2), ("gw-2", "sp-a", 1), ("gw-2", "sp-b", 9)]


@st.composite
def _messages(draw: st.DrawFn) -> list[Sighting]:
    """Messages about a few sighting ids, as gateways send them: per id a fixed first_seen
    and a final antenna list; each message carries a prefix of that list (an open message
    knows the first antennas, the closed one all) and the reader time the sighting has or
    none. Everything the rule folds by max/union/closed-first varies freely, including
    redeliveries and open/closed in any order."""
    out: list[Sighting] = []
    for gw, spool, seq in draw(st.lists(st.sampled_from(_SIDS), min_size=1, max_size=4,
                                        unique=True)):
        first = T0 + sec(draw(st.integers(0, 10_000)))
        final = draw(st.lists(st.integers(1, 8), unique=True, max_size=4))
        rt = draw(st.none() | st.just(first - sec(2)))
        for _ in range(draw(st.integers(1, 5))):
            n = draw(st.integers(0, len(final)))
            out.append(Sighting(
                gateway_id=gw, spool_id=spool, seq=seq,
                state=draw(st.sampled_from(["open", "closed"])),
                tag_id=draw(st.sampled_from(["AB12", "CD34"])),
                tag_kind=draw(st.sampled_from(["epc", "active"])),
                tag_type=draw(st.none() | st.integers(0, 255)),
                reader_id=draw(st.sampled_from(["rd-1", "rd-2"])),
                first_seen=first,
                last_seen=first + timedelta(milliseconds=draw(st.integers(0, 600_000))),
                reads=draw(st.integers(1, 10_000)),
                antenna=final[0] if n else None,
                antennas=tuple(final[:n]),
                rssi_max_dbm=draw(st.none() | st.floats(-200, 50, allow_nan=False)),
                rssi_max_raw=draw(st.none() | st.integers(-128, 65535)),
                flags=tuple(sorted(draw(st.sets(st.sampled_from(
                    ["key", "low_battery", "out_of_range", "tamper"]))))),
                reader_time=draw(st.sampled_from([rt, None])),
            ))
    return draw(st.permutations(out))


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
          deadline=None)
@given(messages=_messages(), cuts=st.lists(st.integers(0, 20), max_size=6))
def test_any_batching_equals_folding_the_merge_rule(
        storage: Storage, messages: list[Sighting], cuts: list[int]) -> None:
    # Each example gets its own spool ids, so earlier examples' rows do not interfere.
    tag = services.unique("x")
    messages = [m.replace(spool_id=f"{m.spool_id}-{tag}") for m in messages]
    bounds = sorted({0, len(messages), *(c for c in cuts if c < len(messages))})
    for lo, hi in itertools.pairwise(bounds):
        storage.write_batch(dedupe(messages[lo:hi]))
    expected: dict[SightingId, Sighting] = {}
    for m in messages:
        expected[m.id] = merge_sightings(expected[m.id], m) if m.id in expected else m
    for sid, want in expected.items():
        assert storage.get_sighting(sid) == want
