"""Open and closed forms in either order, in one batch or across batches, duplicates and
redeliveries: through the batcher into each storage (memory, SQLite, TimescaleDB) they leave
one row per sighting with the final aggregate, written out here by hand."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from ingest.batcher import Batch, Batcher, Item
from pak.types import Sighting
from tests.support.stores import Store

T0 = datetime(2026, 11, 28, 6, 0, tzinfo=UTC)


def s(seq: int, state: str, reads: int, last: float, antennas: tuple[int, ...],
      flags: tuple[str, ...] = (), dbm: float = -60.0) -> Sighting:
    return Sighting("gw-1", "sp-1", seq, state, f"E2{seq:06X}", "epc",  # type: ignore[arg-type]
                    "rd-1", T0 + timedelta(seconds=seq), T0 + timedelta(seconds=seq + last),
                    reads, antenna=antennas[0], antennas=antennas, rssi_max_dbm=dbm,
                    rssi_max_raw=100, flags=flags)


def write(store: Store, *batches: list[list[Sighting]]) -> None:
    """Each batch is a list of messages, committed as one batch before the next."""
    for messages in batches:
        done: list[Batch] = []
        b = Batcher(store.storage, on_committed=done.append, batch_size=100_000, max_age=60.0)
        for m in messages:
            b.add(Item("t", b"", T0, None, m))
        b.start()
        assert b.stop(5.0)  # stop commits what is queued, as one batch here
        assert len(done) == 1 and done[0].received == sum(map(len, messages))


def test_open_and_closed_in_either_order_in_one_batch_and_across_batches(store: Store) -> None:
    o1, c1 = s(1, "open", 1, 0, (2,)), s(1, "closed", 6, 3.5, (2, 1), ("tamper",), -50.5)
    o2, c2 = s(2, "open", 1, 0, (1,)), s(2, "closed", 4, 2.0, (1,))
    o3, c3 = s(3, "open", 1, 0, (3,), ("key",)), s(3, "closed", 9, 8.0, (3, 4), ("key",))
    o4, c4 = s(4, "open", 2, 0.5, (1,)), s(4, "closed", 3, 1.0, (1,))
    o5 = s(5, "open", 1, 0, (1,))
    write(store,
          [[c1, o2], [o3], [c3, o3], [c4]],     # batch 1: 3 closed+open inside one batch
          [[o1, c2], [o4], [o5], [o5]],         # batch 2: late open forms, a duplicate
          [[c1, c2, o1]])                       # batch 3: everything again (redelivery)
    rows = store.rows()
    assert set(rows) == {x.id for x in (c1, c2, c3, c4, o5)}
    assert rows[c1.id] == c1  # the closed aggregate, untouched by its late open form
    assert rows[c2.id] == c2
    assert rows[c3.id] == c3
    assert rows[c4.id] == c4
    assert rows[o5.id] == o5
