"""The incomplete close (tracker/storage/sql_common.py ``close_incomplete``, migration 0008) on
both SQL backends: an open sighting past its gateway's cutoff is closed, flagged incomplete,
oldest first and bounded per run; one within it stays open; a real closed stored later replaces
the close (its aggregate, the flag cleared); the tracker's job takes each gateway's bound from
its health."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from pak.types import Sighting, SightingId
from tracker.alerts.overflow import CLOSE_MARGIN_S, close_cutoffs
from tracker.storage import open_storage
from tracker.storage.sql_common import SqlStorage

NOW = datetime.now(UTC).replace(microsecond=0)


@pytest.fixture(params=["sqlite", pytest.param("timescale", marks=pytest.mark.timescale)])
def sql(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SqlStorage[Any]]:
    url = (f"sqlite://{tmp_path}/pak.db" if request.param == "sqlite"
           else request.getfixturevalue("pg_url"))
    st = open_storage(url)
    st.migrate()
    assert isinstance(st, SqlStorage)
    try:
        yield st
    finally:
        st.close()


def sighting(gw: str, seq: int, age_s: float, state: str = "open", reads: int = 3) -> Sighting:
    first = NOW - timedelta(seconds=age_s)
    return Sighting(gw, "sp-1", seq, state, "E2003016", "active", "r1",  # type: ignore[arg-type]
                    first, first + timedelta(seconds=2), reads)


def incomplete(st: SqlStorage[Any], gw: str, seq: int) -> bool:
    (row,) = st._query("SELECT incomplete FROM sightings WHERE gateway_id = ? AND seq = ?",
                       (gw, seq))
    return bool(row[0])


def test_closes_the_lost_flags_them_and_a_real_closed_wins(sql: SqlStorage[Any]) -> None:
    sql.write_batch([sighting("gw-1", 1, 900), sighting("gw-1", 2, 800),
                     sighting("gw-1", 3, 100), sighting("gw-2", 1, 900),
                     sighting("gw-1", 4, 950, "closed")])
    cutoffs = {"gw-2": NOW - timedelta(seconds=1000)}  # gw-2 keeps sightings open longer
    default = NOW - timedelta(seconds=500)
    assert sql.close_incomplete(cutoffs, default, limit=1) == 1  # bounded: the oldest first
    assert sql.get_sighting(SightingId("gw-1", "sp-1", 1)).state == "closed"  # type: ignore[union-attr]
    assert sql.get_sighting(SightingId("gw-1", "sp-1", 2)).state == "open"  # type: ignore[union-attr]
    assert sql.close_incomplete(cutoffs, default, limit=100) == 1
    assert sql.close_incomplete(cutoffs, default, limit=100) == 0
    states = {(s.gateway_id, s.seq): s.state for s in sql.iter_sightings()}
    assert states == {("gw-1", 1): "closed", ("gw-1", 2): "closed", ("gw-1", 3): "open",
                      ("gw-2", 1): "open", ("gw-1", 4): "closed"}
    assert incomplete(sql, "gw-1", 1) and incomplete(sql, "gw-1", 2)
    assert not incomplete(sql, "gw-1", 4) and not incomplete(sql, "gw-1", 3)
    # The real closed form arrives at last: its aggregate stands, the mark goes.
    real = sighting("gw-1", 1, 900, "closed", reads=40)
    real = real._replace(last_seen=real.first_seen + timedelta(seconds=30))
    sql.write_batch([real])
    got = sql.get_sighting(SightingId("gw-1", "sp-1", 1))
    assert got is not None and got.state == "closed" and got.reads == 40
    assert got.last_seen == real.last_seen
    assert not incomplete(sql, "gw-1", 1)
    # A late open message does not reopen it; an incomplete close stays closed.
    sql.write_batch([sighting("gw-1", 2, 800)])
    assert sql.get_sighting(SightingId("gw-1", "sp-1", 2)).state == "closed"  # type: ignore[union-attr]
    assert incomplete(sql, "gw-1", 2)


def test_cutoffs_come_from_each_gateways_health() -> None:
    from tracker.storage.records import GatewayRecord

    def rec(gw: str, spool: dict[str, Any] | None) -> GatewayRecord:
        return GatewayRecord(gw, "online", NOW, None if spool is None else {"spool": spool}, NOW)

    got = close_cutoffs([rec("a", {"max_duration_s": 300.0, "exit_after_s": 10.0}),
                         rec("b", {"spool_id": "sp"}), rec("c", None),
                         rec("d", {"max_duration_s": -1})], NOW)
    assert got == {"a": NOW - timedelta(seconds=310 + CLOSE_MARGIN_S)}
