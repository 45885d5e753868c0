"""The gateway's side of the centre's presence in its spool (gateway/spool.py): the epoch it
acted on survives a restart, and a new one makes everything unreceipted due at once; a
sighting sent well before the newest receipted one is republished at once (lost, not slow)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from gateway.spool import DB_NAME, LOST_SLACK_S, Spool
from pak.wire.receipts import Receipt
from tests.gateway.test_spool import FakeMono, sighting


def test_the_epoch_acted_on_survives_a_restart(tmp_path: Path) -> None:
    sp = Spool(tmp_path, block=10)
    assert sp.centre_epoch == -1
    assert sp.new_centre_epoch(1000)
    assert not sp.new_centre_epoch(1000)  # the retained message again: not news
    assert not sp.new_centre_epoch(999)
    sp.commit()
    sp.close()
    sp = Spool(tmp_path, block=10)
    assert sp.centre_epoch == 1000
    assert not sp.new_centre_epoch(1000)  # after a restart the retained one is still old
    assert sp.new_centre_epoch(1001)  # changed while we were away: news
    sp.close()


def test_a_new_epoch_makes_everything_unreceipted_due(tmp_path: Path) -> None:
    mono = FakeMono()
    sp = Spool(tmp_path, block=50, republish_after=30, monotonic=mono)
    seqs = [sp.next_seq() for _ in range(4)]
    # 0 and 1 closed, 2 and 3 open; 3's open form is stored at the centre
    sp.put([*(sighting(sp, s, "closed") for s in seqs[:2]), *(sighting(sp, s) for s in seqs[2:])],
           suspect=False, publishing=True)
    sp.apply_receipt(Receipt("gw1", sp.spool_id, [], [(3, 3)]))
    sp.commit()
    assert sp.due(100) == []  # published: waiting 30 s for a receipt
    assert sp.republish_all(mono.t + 0.5) == 3
    sp.commit()
    assert sp.due(100) == [] and sp.next_due() == mono.t + 0.5  # the jitter
    mono.t += 0.5
    assert sorted(r.seq for r in sp.due(100)) == [0, 1, 2]  # not 3: stored, still open
    sp.close()


def test_a_sighting_sent_well_before_the_newest_receipted_one_is_lost_not_slow(
        tmp_path: Path) -> None:
    mono = FakeMono()
    sp = Spool(tmp_path, block=50, republish_after=60, monotonic=mono)
    old, recent, new = sp.next_seq(), sp.next_seq(), sp.next_seq()
    sp.put([sighting(sp, old, "closed")], suspect=False, publishing=True)
    mono.t += LOST_SLACK_S - 1
    sp.put([sighting(sp, recent, "closed")], suspect=False, publishing=True)
    mono.t += 2
    sp.put([sighting(sp, new, "closed")], suspect=False, publishing=True)
    sp.commit()
    assert sp.due(100) == []
    # the newest one is receipted: the one sent LOST_SLACK_S + 1 s before it was lost, the one
    # sent 2 s before may still be on its way
    sp.apply_receipt(Receipt("gw1", sp.spool_id, [(new, new)], []))
    sp.commit()
    assert [r.seq for r in sp.due(100)] == [old] and sp.stats.presumed_lost == 1
    sp.mark_sent([old])
    # once republished, it is in flight again, with its own send time
    sp.apply_receipt(Receipt("gw1", sp.spool_id, [(new, new)], []))
    assert sp.due(100) == [] and sp.stats.presumed_lost == 1
    sp.close()


def test_a_spool_from_before_the_sent_column_opens(tmp_path: Path) -> None:
    sp = Spool(tmp_path, block=10)
    s = sp.next_seq()
    sp.put([sighting(sp, s, "closed")], suspect=False, publishing=True)
    sp.close()
    with sqlite3.connect(tmp_path / DB_NAME) as db:
        db.execute("DROP INDEX sightings_sent")
        db.execute("ALTER TABLE sightings DROP COLUMN sent")
    sp = Spool(tmp_path, block=10)
    assert [r.seq for r in sp.due(10)] == [s]
    sp.close()
