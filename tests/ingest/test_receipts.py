"""Receipts after a commit: per gateway and spool, closed seqs in ``ranges``, seqs stored only
as open in ``open_ranges``, compact, following pak/schemas/receipts.json."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
from hypothesis import given
from hypothesis import strategies as st

from ingest.receipts import MAX_RANGES, PendingReceipts, receipts_for
from pak.types import Sighting
from pak.wire.receipts import parse_receipts
from pak.wire.topics import Topics
from tests.support.wire_schema import validate

AT = datetime(2026, 11, 28, 6, 15, 2, 125000, tzinfo=UTC)


def mk(gw: str, spool: str, seq: int, state: str) -> Sighting:
    return Sighting(gw, spool, seq, state, "E2001234", "epc", "rd-1", AT, AT,  # type: ignore[arg-type]
                    1)


def test_one_receipt_per_gateway_and_spool_written_out() -> None:
    batch = [mk("gw-2", "s1", 5, "closed"), mk("gw-1", "sA", 3, "closed"),
             mk("gw-1", "sA", 1, "closed"), mk("gw-1", "sA", 2, "closed"),
             mk("gw-1", "sA", 4, "open"), mk("gw-1", "sA", 7, "closed"),
             mk("gw-1", "sB", 1, "open")]
    out = receipts_for(batch, Topics("pak/v1"), AT)
    assert out == [
        ("pak/v1/gw/gw-1/receipts",
         b'{"v":1,"gateway_id":"gw-1","spool_id":"sA","at":"2026-11-28T06:15:02.125Z",'
         b'"ranges":[[1,3],[7,7]],"open_ranges":[[4,4]]}'),
        ("pak/v1/gw/gw-1/receipts",
         b'{"v":1,"gateway_id":"gw-1","spool_id":"sB","at":"2026-11-28T06:15:02.125Z",'
         b'"ranges":[],"open_ranges":[[1,1]]}'),
        ("pak/v1/gw/gw-2/receipts",
         b'{"v":1,"gateway_id":"gw-2","spool_id":"s1","at":"2026-11-28T06:15:02.125Z",'
         b'"ranges":[[5,5]]}'),
    ]
    for _, payload in out:
        validate("receipts", payload)


@given(st.dictionaries(st.integers(0, 60_000), st.sampled_from(["open", "closed"]),
                       max_size=300))
def test_ranges_cover_exactly_what_was_committed(states: dict[int, str]) -> None:
    check_cover(states)


def test_more_ranges_than_one_message_holds_are_split() -> None:
    # every other seq: as many ranges as seqs, past the contract's limit per message
    states = {2 * i: "closed" for i in range(MAX_RANGES + 5)} | {1: "open", 3: "open"}
    assert check_cover(states) == 2


def check_cover(states: dict[int, str]) -> int:
    """Receipt the batch; check the ranges cover exactly its seqs; return the message count."""
    batch = [mk("gw-1", "s", seq, st_) for seq, st_ in states.items()]
    closed: set[int] = set()
    opened: set[int] = set()
    out = receipts_for(batch, Topics("r"), AT)
    for topic, payload in out:
        assert topic == "r/gw/gw-1/receipts"
        obj = orjson.loads(payload)
        assert len(obj["ranges"]) <= MAX_RANGES and len(obj.get("open_ranges", [])) <= MAX_RANGES
        r = parse_receipts(payload)
        for a, b in r.closed:
            closed.update(range(a, b + 1))
        for a, b in r.open:
            opened.update(range(a, b + 1))
    assert closed == {s for s, v in states.items() if v == "closed"}
    assert opened == {s for s, v in states.items() if v == "open"}
    return len(out)


def test_pending_receipts_gather_commits_until_taken() -> None:
    pending = PendingReceipts(Topics("pak/v1"))
    pending.add([mk("gw-1", "sA", 1, "open"), mk("gw-1", "sA", 2, "open")])
    pending.add([mk("gw-1", "sA", 1, "closed"), mk("gw-1", "sA", 3, "closed")])  # 1 closed now
    pending.add([mk("gw-1", "sA", 3, "open")])  # a late open form of a closed sighting
    assert pending.count == 5
    assert pending.take(AT) == [
        ("pak/v1/gw/gw-1/receipts",
         b'{"v":1,"gateway_id":"gw-1","spool_id":"sA","at":"2026-11-28T06:15:02.125Z",'
         b'"ranges":[[1,1],[3,3]],"open_ranges":[[2,2]]}')]
    assert pending.count == 0 and pending.take(AT) == []
