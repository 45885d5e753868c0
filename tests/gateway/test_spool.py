"""The spool: seqs never reused (reopen, lost reservation record, kill -9 of a writer), receipts
delete only closed sightings, republication backs off, the size policy drops oldest closed."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest

from gateway.spool import DB_NAME, DROP_PENDING_S, RESERVATION_NAME, Spool
from pak.types import Sighting
from pak.wire.receipts import Receipt
from tests.support.wait import eventually
from tests.support.wire_schema import validate

T0 = datetime(2026, 11, 28, 6, 0, 0, tzinfo=UTC)


class FakeMono:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def sighting(sp: Spool, seq: int, state: str = "open", tag: str = "E2003016") -> Sighting:
    return Sighting("gw1", sp.spool_id, seq, state, tag, "epc", "r1",  # type: ignore[arg-type]
                    T0 + timedelta(seconds=seq), T0 + timedelta(seconds=seq + 1), 1,
                    antennas=(1,), antenna=1)


def stored(folder: Path) -> dict[int, str]:
    """Read the spool file directly (not through the class under test)."""
    with sqlite3.connect(folder / DB_NAME) as db:
        return dict(db.execute("SELECT seq, state FROM sightings"))


def test_seq_resumes_above_the_reserved_mark_after_reopen(tmp_path: Path) -> None:
    sp = Spool(tmp_path, block=10)
    taken = [sp.next_seq() for _ in range(7)]
    assert taken == list(range(7))
    sp.put([sighting(sp, s) for s in taken[:3]], suspect=False, publishing=False)
    sp.commit()
    spool_id = sp.spool_id
    sp.close()
    record = json.loads((tmp_path / RESERVATION_NAME).read_text())
    assert record["spool_id"] == spool_id and record["reserved"] >= 7
    sp = Spool(tmp_path, block=10)
    assert sp.spool_id == spool_id  # the same spool: same id
    nxt = sp.next_seq()
    assert nxt >= record["reserved"] > max(taken)  # seqs 3..6 were taken, never stored: skipped
    sp.close()


def test_reservation_is_written_before_the_block_runs_out(tmp_path: Path) -> None:
    sp = Spool(tmp_path, block=100)
    for _ in range(1000):
        s = sp.next_seq()
        # The durable record always covers every seq handed out.
        assert json.loads((tmp_path / RESERVATION_NAME).read_text())["reserved"] > s
    assert sp.stats.reservations >= 10
    sp.close()


def test_a_lost_reservation_record_means_a_new_spool_id(tmp_path: Path) -> None:
    sp = Spool(tmp_path, block=10)
    seqs = [sp.next_seq() for _ in range(25)]
    sp.put([sighting(sp, s) for s in seqs], suspect=False, publishing=False)
    sp.commit()
    old = sp.spool_id
    sp.close()
    (tmp_path / RESERVATION_NAME).unlink()
    sp = Spool(tmp_path, block=10)
    assert sp.spool_id != old
    assert sp.next_seq() > max(seqs)
    # the old spool's sightings are still there, under their own id, and still receiptable
    rows = sp.due(100)
    assert {r.spool_id for r in rows} == {old} and len(rows) == 25
    assert sp.apply_receipt(Receipt("gw1", old, [(0, 24)], [])) == (25, 0)
    sp.close()


def test_receipts_delete_closed_only_and_open_ranges_stop_republishing(tmp_path: Path) -> None:
    mono = FakeMono()
    sp = Spool(tmp_path, block=50, republish_after=10, monotonic=mono)
    seqs = [sp.next_seq() for _ in range(6)]
    sp.put([sighting(sp, s) for s in seqs], suspect=False, publishing=True)
    sp.put([sighting(sp, s, "closed") for s in seqs[:3]], suspect=False, publishing=True)
    sp.commit()
    assert sp.due(100) == []  # just published: wait for a receipt
    # A late receipt for the open messages of 0..5 must not delete the closed 0..2,
    # and a closed receipt for 3..5 (still open here) deletes nothing.
    assert sp.apply_receipt(Receipt("gw1", sp.spool_id, [(3, 5)], [(0, 5)])) == (0, 3)
    sp.commit()
    assert stored(tmp_path) == {0: "closed", 1: "closed", 2: "closed", 3: "open", 4: "open",
                                5: "open"}
    mono.t += 10
    assert sorted(r.seq for r in sp.due(100)) == [0, 1, 2]  # 3..5: open message delivered
    sp.put([sighting(sp, 4, "closed")], suspect=False, publishing=False)
    assert sorted(r.seq for r in sp.due(100)) == [0, 1, 2, 4]  # its closed form is due
    assert sp.apply_receipt(Receipt("gw1", sp.spool_id, [(0, 1), (4, 4)], [])) == (3, 0)
    sp.commit()
    assert stored(tmp_path) == {2: "closed", 3: "open", 5: "open"}
    assert sp.apply_receipt(Receipt("gw1", "someone-else", [(0, 100)], [])) == (0, 0)
    assert sp.stats.receipts_foreign == 1
    sp.close()


def test_republication_backs_off(tmp_path: Path) -> None:
    mono = FakeMono()
    sp = Spool(tmp_path, block=50, republish_after=2, republish_max=7, monotonic=mono)
    s = sp.next_seq()
    sp.put([sighting(sp, s, "closed")], suspect=False, publishing=True)
    sp.commit()
    waits = []
    last = mono.t
    for _ in range(5):
        while not sp.due(1):
            mono.t += 0.5
        waits.append(mono.t - last)
        last = mono.t
        sp.mark_sent([s])
    assert waits == [2, 4, 7, 7, 7]
    sp.close()


def test_rows_carry_the_wire_body(tmp_path: Path) -> None:
    sp = Spool(tmp_path, block=10)
    s = sighting(sp, sp.next_seq(), "closed")
    sp.put([s], suspect=True, publishing=False)
    (row,) = sp.due(10)
    assert row.suspect and row.state == "closed" and row.spool_id == sp.spool_id
    body = orjson.loads(row.body)
    assert body["first_seen"] == "2026-11-28T06:00:00.000Z" and body["state"] == "closed"
    validate("sightings", {"v": 1, "gateway_id": "gw1", "spool_id": sp.spool_id,
                           "sent_at": "2026-11-28T06:00:01.000Z", "sightings": [body]})
    sp.close()


def test_open_sightings_of_a_dead_process_come_back_closed_and_due(tmp_path: Path) -> None:
    sp = Spool(tmp_path, block=10)
    a, b = sp.next_seq(), sp.next_seq()
    sp.put([sighting(sp, a), sighting(sp, b)], suspect=False, publishing=True)
    sp.commit()
    newer = sighting(sp, a).replace(last_seen=T0 + timedelta(seconds=30), reads=9)
    sp.checkpoint([newer])
    sp.commit()
    sp.close()
    sp = Spool(tmp_path, block=10)
    rows = {r.seq: r for r in sp.due(10)}
    assert set(rows) == {a, b}
    assert all(r.state == "closed" for r in rows.values())
    body = orjson.loads(rows[a].body)
    assert body["state"] == "closed" and body["reads"] == 9
    assert body["last_seen"] == "2026-11-28T06:00:30.000Z"
    sp.close()


def test_size_limit_drops_the_oldest_closed_first_and_counts(tmp_path: Path) -> None:
    sp = Spool(tmp_path, block=1000, max_bytes=300_000)
    opens = [sp.next_seq() for _ in range(5)]
    sp.put([sighting(sp, s) for s in opens], suspect=False, publishing=False)
    closed = [sp.next_seq() for _ in range(3000)]
    sp.put([sighting(sp, s, "closed", tag="E2" + "0" * 40) for s in closed], suspect=False,
           publishing=False)
    sp.commit()
    assert sp.bytes_used() > 300_000
    dropped = sp.enforce_limit()
    assert dropped > 0 and sp.bytes_used() <= 300_000
    rows = stored(tmp_path)
    assert all(s in rows for s in opens)  # open sightings are never dropped
    kept = sorted(s for s in rows if s not in opens)
    assert kept == closed[dropped:]  # exactly the oldest closed went
    assert sp.stats.dropped == dropped
    sp.close()
    sp = Spool(tmp_path, block=1000, max_bytes=300_000)
    assert sp.stats.dropped_total == dropped  # the lifetime count survives a restart
    assert sp.enforce_limit() == 0
    sp.close()


class FakeWall:
    def __init__(self) -> None:
        self.t = T0.timestamp() + 3600

    def __call__(self) -> float:
        return self.t


def test_only_drops_the_centre_never_stored_are_counted(tmp_path: Path) -> None:
    """Closed rows receipted before the drop are gone already (never counted); dropped rows a
    late receipt covers were stored after all and leave the count; the count and the oldest
    dropped first_seen survive a restart; after DROP_PENDING_S a drop is a loss for good."""
    wall = FakeWall()
    sp = Spool(tmp_path, block=1000, max_bytes=300_000, wall=wall)
    closed = [sp.next_seq() for _ in range(3000)]
    sp.put([sighting(sp, s, "closed", tag="E2" + "0" * 40) for s in closed], suspect=False,
           publishing=True)
    assert sp.apply_receipt(Receipt("gw1", sp.spool_id, [(0, 199)], [])) == (200, 0)
    sp.commit()
    dropped = sp.enforce_limit()
    assert dropped > 300
    gone = closed[200:200 + dropped]
    assert not set(gone) & set(stored(tmp_path))
    assert sp.stats.dropped_total == dropped
    assert sp.oldest_dropped == (T0 + timedelta(seconds=200)).timestamp()
    # The centre had stored 200..299 (their receipt was late): not a loss.
    sp.apply_receipt(Receipt("gw1", sp.spool_id, [(200, 299)], []))
    sp.commit()
    assert sp.stats.dropped_total == dropped - 100
    assert sp.oldest_dropped == (T0 + timedelta(seconds=300)).timestamp()
    sp.close()
    sp = Spool(tmp_path, block=1000, max_bytes=300_000, wall=wall)
    assert sp.stats.dropped_total == dropped - 100
    assert sp.oldest_dropped == (T0 + timedelta(seconds=300)).timestamp()
    # An hour on, the next drop settles the old ones: a receipt no longer takes them back.
    wall.t += DROP_PENDING_S + 1
    more = [sp.next_seq() for _ in range(2000)]
    sp.put([sighting(sp, s, "closed", tag="E2" + "0" * 40) for s in more], suspect=False,
           publishing=True)
    sp.commit()
    dropped2 = sp.enforce_limit()
    assert dropped2 > 0
    sp.apply_receipt(Receipt("gw1", sp.spool_id, [(300, 399)], []))
    sp.commit()
    assert sp.stats.dropped_total == dropped - 100 + dropped2
    assert sp.oldest_dropped == (T0 + timedelta(seconds=300)).timestamp()
    sp.close()


def test_depth_and_oldest(tmp_path: Path) -> None:
    sp = Spool(tmp_path, block=10)
    assert sp.depth() == 0 and sp.oldest_first_seen() is None
    seqs = [sp.next_seq() for _ in range(4)]
    sp.put([sighting(sp, s) for s in seqs], suspect=False, publishing=False)
    sp.commit()
    assert sp.depth() == 4
    assert sp.oldest_first_seen() == T0.timestamp()
    sp.close()


def test_wal_mode_and_background_fsync(tmp_path: Path) -> None:
    sp = Spool(tmp_path, block=10, sync_interval=0.05)
    with sqlite3.connect(tmp_path / DB_NAME) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    sp.put([sighting(sp, sp.next_seq())], suspect=False, publishing=False)
    sp.commit()
    eventually(lambda: sp.stats.wal_syncs >= 1, 5, "a background WAL sync")
    sp.close()


WRITER = textwrap.dedent("""
    import sys
    from datetime import UTC, datetime
    from pathlib import Path
    from gateway.spool import Spool
    from pak.types import Sighting
    sp = Spool(Path(sys.argv[1]), block=int(sys.argv[2]))
    t = datetime(2026, 11, 28, tzinfo=UTC)
    while True:
        batch = [sp.next_seq() for _ in range(3)]
        print("T", *batch, flush=True)
        sp.put([Sighting("gw1", sp.spool_id, s, "closed", "E2", "epc", "r1", t, t, 1)
                for s in batch], suspect=False, publishing=False)
        sp.commit()
        print("C", *batch, flush=True)
""")


@pytest.mark.parametrize("round_", range(3))
def test_kill_9_of_a_writer_loses_nothing_committed_and_reuses_no_seq(
        tmp_path: Path, round_: int) -> None:
    taken: set[int] = set()
    committed: set[int] = set()
    for life in range(3):
        proc = subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path), "50"],
                                stdout=subprocess.PIPE, text=True,
                                env={**os.environ, "PYTHONPATH": str(Path.cwd())})
        assert proc.stdout is not None
        lines: list[str] = []
        for line in proc.stdout:
            lines.append(line)
            if len(lines) >= 200 + 97 * round_ + 31 * life:
                proc.send_signal(signal.SIGKILL)
                break
        lines += proc.stdout.read().splitlines(keepends=True)  # printed before it died
        proc.wait(10)
        assert proc.returncode == -signal.SIGKILL
        life_taken: set[int] = set()
        for line in lines:
            if not line.endswith("\n"):
                continue  # cut by the kill
            kind, *nums = line.split()
            seqs = {int(n) for n in nums}
            if kind == "T":
                assert not seqs & taken, f"seq reused in life {life}: {seqs & taken}"
                life_taken |= seqs
            else:
                committed |= seqs
        taken |= life_taken
        rows = stored(tmp_path)
        assert committed <= set(rows), f"committed but lost: {sorted(committed - set(rows))[:5]}"
    sp = Spool(tmp_path, block=50)
    assert sp.next_seq() > max(taken)
    sp.close()
