"""The gateway's side of the centre's presence in its spool (gateway/spool.py): the epoch it
acted on survives a restart, and a new one makes everything unreceipted due at once."""

from __future__ import annotations

from pathlib import Path

from gateway.spool import Spool
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
    sp.put([sighting(sp, s) for s in seqs], suspect=False, publishing=True)
    sp.put([sighting(sp, s, "closed") for s in seqs[:2]], suspect=False, publishing=True)
    sp.apply_receipt(Receipt("gw1", sp.spool_id, [], [(3, 3)]))  # 3's open form is stored
    sp.commit()
    assert sp.due(100) == []  # published: waiting 30 s for a receipt
    assert sp.republish_all(mono.t + 0.5) == 3
    sp.commit()
    assert sp.due(100) == [] and sp.next_due() == mono.t + 0.5  # the jitter
    mono.t += 0.5
    assert sorted(r.seq for r in sp.due(100)) == [0, 1, 2]  # not 3: stored, still open
    sp.close()
