"""``spool_overflow`` (tracker/alerts/overflow.py) from gateway health stored in SQLite, with
the time injected: one alert per spool, updated only as the exact count grows, none for a
gateway that dropped nothing, a restart that neither repeats nor misses, and a closed alert
followed by the spool's next one."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from pak.timefmt import format_time
from tests.tracker.alerts.alert_fixtures import Published, at, engine, make_storage
from tracker.alerts.engine import AlertEngine
from tracker.alerts.overflow import OverflowHandler
from tracker.storage import Storage


def health(gw: str, t: float, dropped: int | None, oldest: float | None = None) -> dict[str, Any]:
    spool: dict[str, Any] = {"spool_id": "sp-1", "depth": 10, "oldest_age_s": 5.0}
    if dropped is not None:
        spool["dropped_total"] = dropped
        spool["oldest_dropped"] = None if oldest is None else format_time(at(oldest))
    return {"v": 1, "gateway_id": gw, "at": format_time(at(t)), "uptime_s": 100,
            "link": {"state": "connected"}, "clock": {"status": "ok"},
            "counters": {"frames_ok": 1, "frames_bad": {}, "reads": 1, "sightings": 1,
                         "dropped": 0, "reconnects": 0},
            "spool": spool}


Handlers = Callable[[Published], OverflowHandler]


@pytest.fixture
def st(tmp_path: Path) -> Iterator[Storage]:
    with make_storage(tmp_path) as s:
        yield s


@pytest.fixture
def handler(st: Storage) -> Iterator[Handlers]:
    """Makes engines on ``st`` (one per tracker instance) and gives their overflow handler."""
    made: list[AlertEngine] = []

    def make(pub: Published) -> OverflowHandler:
        made.append(engine(st, pub))
        (h,) = [h for h in made[-1].handlers if isinstance(h, OverflowHandler)]
        return h

    yield make
    for e in made:
        e.stop()


def test_one_alert_per_spool_updated_as_the_count_grows(st: Storage, handler: Handlers) -> None:
    pub = Published()
    h = handler(pub)
    st.record_gateway("gw-1", health=health("gw-1", 0, 0), at=at(0))
    st.record_gateway("gw-2", health=health("gw-2", 0, None), at=at(0))  # an older gateway
    assert h.check(at(1)) == []
    st.record_gateway("gw-1", health=health("gw-1", 10, 2400, oldest=-40), at=at(10))
    (raised,) = h.check(at(11))
    assert raised.alert_id == "spool_overflow:gw-1:sp-1" and raised.gateway_id == "gw-1"
    assert raised.detail["dropped_total"] == 2400 and raised.detail["dropped_new"] == 2400
    assert raised.detail["oldest_dropped"] == format_time(at(-40))
    assert h.check(at(12)) == []  # the same count: nothing new
    st.record_gateway("gw-1", health=health("gw-1", 20, 2500, oldest=-40), at=at(20))
    (update,) = h.check(at(21))
    assert update.alert_id == raised.alert_id and update.detail["dropped_new"] == 100
    stored = st.get_alert(raised.alert_id)
    assert stored is not None and stored.detail["dropped_total"] == 2500
    assert pub.ids("spool_overflow") == [raised.alert_id, raised.alert_id]
    # A restarted tracker reads what it alerted on back from storage: no repeat.
    again = handler(Published())
    assert again.check(at(30)) == []


def test_after_an_officer_closed_it_new_drops_open_the_next(st: Storage,
                                                            handler: Handlers) -> None:
    h = handler(Published())
    st.record_gateway("gw-1", health=health("gw-1", 0, 10, oldest=-5), at=at(0))
    (first,) = h.check(at(1))
    st.set_alert_status(first.alert_id, "closed", actor="officer", at=at(2), note="seen")
    assert h.check(at(3)) == []
    st.record_gateway("gw-1", health=health("gw-1", 10, 15, oldest=-5), at=at(10))
    (second,) = h.check(at(11))
    assert second.alert_id != first.alert_id and second.status == "new"
    assert second.detail["dropped_new"] == 5 and second.detail["dropped_total"] == 15
