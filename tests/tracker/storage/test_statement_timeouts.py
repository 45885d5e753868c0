"""Statement timeouts per kind of query (tracker/storage/timeouts.py) on a real PostgreSQL: a
lookup blocked by a lock gives up after its short timeout while a write waits longer."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import psycopg
import pytest

from tracker.storage import StorageError
from tracker.storage.timeouts import StatementTimeouts
from tracker.storage.timescale import TimescaleStorage

pytestmark = pytest.mark.timescale


def test_a_blocked_lookup_gives_up_after_its_own_timeout(pg_url: str) -> None:
    st = TimescaleStorage(pg_url, timeouts=StatementTimeouts(lookup_s=0.2, read_s=5.0,
                                                              write_s=2.0))
    try:
        st.migrate()
        now = datetime.now(UTC)
        assert st.vehicle_for_tag("AA01", at=now) is None  # answers while nothing blocks
        with psycopg.connect(pg_url) as blocker:
            blocker.execute("LOCK TABLE tag_assignments IN ACCESS EXCLUSIVE MODE")
            t0 = time.monotonic()
            with pytest.raises(StorageError, match="statement timeout"):
                st.vehicle_for_tag("AA01", at=now)
            lookup_s = time.monotonic() - t0
            # a write (the connection's default) waits longer than a lookup, then gives up too
            t1 = time.monotonic()
            with pytest.raises(StorageError, match="statement timeout"):
                st.assign_tag("AA01", "V-1", at=now)
            write_s = time.monotonic() - t1
            blocker.rollback()
        assert 0.15 <= lookup_s < 1.5, lookup_s
        assert 1.9 <= write_s < 4.0, write_s
        assert st.vehicle_for_tag("AA01", at=now) is None  # the pool recovered
    finally:
        st.close()


def test_timeouts_refuse_a_negative_value() -> None:
    with pytest.raises(ValueError, match="lookup_s"):
        StatementTimeouts(lookup_s=-1)
    assert StatementTimeouts().ms("lookup") == 200 and StatementTimeouts().ms("write") == 30_000
