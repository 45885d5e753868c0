"""``spool_overflow`` (tracker/alerts/overflow.py) from gateway health stored in SQLite, with
the time injected: one alert per spool, updated only as the exact count grows, none for a
gateway that dropped nothing, a restart that neither repeats nor misses, and a closed alert
followed by the spool's next one."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pak.timefmt import format_time
from tests.tracker.alerts.alert_fixtures import Published, at, engine, make_storage
from tracker.alerts.engine import AlertEngine
from tracker.alerts.overflow import OverflowHandler
from tracker.storage import Storage


@pytest.fixture
def st(tmp_path: Path) -> Iterator[Storage]:
    s = make_storage(tmp_path)
    yield s
    s.close()


@pytest.fixture
def engines() -> Iterator[list[AlertEngine]]:
    started: list[AlertEngine] = []
    yield started
    for e in started:
        e.stop()


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


def handler(st: Storage, pub: Published, engines: list[AlertEngine]) -> OverflowHandler:
    e = engine(st, pub)
    engines.append(e)
    (h,) = [h for h in e.handlers if isinstance(h, OverflowHandler)]
    return h


def test_one_alert_per_spool_updated_as_the_count_grows(st: Storage,
                                                        engines: list[AlertEngine]) -> None:
    pub = Published()
    h = handler(st, pub, engines)
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
    again = handler(st, Published(), engines)
    assert again.check(at(30)) == []


def test_after_an_officer_closed_it_new_drops_open_the_next(st: Storage,
                                                            engines: list[AlertEngine]) -> None:
    h = handler(st, Published(), engines)
    st.record_gateway("gw-1", health=health("gw-1", 0, 10, oldest=-5), at=at(0))
    (first,) = h.check(at(1))
    st.set_alert_status(first.alert_id, "closed", actor="officer", at=at(2), note="seen")
    assert h.check(at(3)) == []
    st.record_gateway("gw-1", health=health("gw-1", 10, 15, oldest=-5), at=at(10))
    (second,) = h.check(at(11))
    assert second.alert_id != first.alert_id and second.status == "new"
    assert second.detail["dropped_new"] == 5 and second.detail["dropped_total"] == 15
