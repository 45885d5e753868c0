"""The enrichment worker (tracker/alerts/enrich.py) alone, with an injected clock and a storage
that fails on demand: the queue is bounded and a full one drops the enrichment, never blocks;
a job waits for storage and for its alert to be stored, then publishes one update with no
status; a job older than ``give_up_s`` is dropped."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pytest

from pak.alert import Alert
from pak.wire import Topics
from tests.tracker.alerts.alert_fixtures import Published, at, sighting
from tracker.alerts.enrich import EnrichmentWorker
from tracker.alerts.outbox import Outbox
from tracker.storage import StorageError
from tracker.storage.records import StoredAlert

AID = "stolen_hit:E2003412AB01:HZ-1"


@dataclass
class FakeAlerts:
    """The alert part of storage: ``down`` makes every call fail; ``stored`` is what it holds."""

    down: bool = False
    stored: dict[str, StoredAlert] = field(default_factory=dict)
    upserts: list[Alert] = field(default_factory=list)

    def get_alert(self, alert_id: str) -> StoredAlert | None:
        if self.down:
            raise StorageError("connection refused")
        return self.stored.get(alert_id)

    def upsert_alerts(self, alerts: list[Alert]) -> None:
        if self.down:
            raise StorageError("connection refused")
        self.upserts.extend(alerts)

    def hold(self, a: Alert, status: str = "new") -> None:
        assert a.sighting is not None
        self.stored[a.alert_id] = StoredAlert(a.alert_id, a.kind, a.at, a.at, a.at,
                                              status, a.tag_id, a.reader_id,  # type: ignore[arg-type]
                                              a.gateway_id, a.detail, (a.sighting,))


class Clock:
    def __init__(self) -> None:
        self.now = at(0)

    def __call__(self) -> datetime:
        return self.now


def hit(seq: int = 7) -> tuple[Alert, Any]:
    s = sighting(seq, "R1", 0, 4)
    return Alert(AID, "stolen_hit", s.first_seen, tag_id=s.tag_id, reader_id="R1",
                 gateway_id=s.gateway_id, sighting=s.id,
                 detail={"case": "HZ-1", "enriched": False, "update": False}), s


def make(capacity: int = 2, give_up_s: float = 60.0) -> tuple[EnrichmentWorker, FakeAlerts,
                                                              Published, Clock]:
    clock, store, pub = Clock(), FakeAlerts(), Published()
    outbox = Outbox(store, pub, Topics(), clock)  # type: ignore[arg-type]
    w = EnrichmentWorker(outbox, store, lambda s: {"vehicle": None, "enriched": True},  # type: ignore[arg-type]
                         capacity=capacity, give_up_s=give_up_s, clock=clock)
    return w, store, pub, clock


def test_a_full_queue_drops_the_enrichment_counted_and_logged_once(
        caplog: pytest.LogCaptureFixture) -> None:
    w, _, _, _ = make(capacity=2)
    caplog.set_level(logging.INFO, "pak.tracker.alerts")
    results = [w.submit(*hit(seq)) for seq in range(5)]  # no thread: nothing is taken
    assert results == [True, True, False, False, False]
    assert w.dropped == 3 and len(w) == 2
    assert sum("alert_enrichment_dropped" in r.message for r in caplog.records) == 1


def test_a_job_waits_for_storage_and_its_stored_alert_then_updates_without_status() -> None:
    w, store, pub, clock = make()
    alert, s = hit()
    store.down = True
    job = _job(w, alert, s)
    assert w.step(job) is False and pub.items == []  # storage down: retried later
    store.down = False
    assert w.step(job) is False  # storage back, but the batch with the alert not stored yet
    store.hold(alert, status="acknowledged")  # the batch landed; an officer acknowledged it
    clock.now += timedelta(seconds=5)
    assert w.step(job) is True
    (_, obj), = pub.items
    assert obj["alert_id"] == AID and obj["status"] is None and obj["detail"]["enriched"]
    assert obj["detail"]["update"] is True and obj["detail"]["case"] == "HZ-1"
    (stored,) = store.upserts
    assert stored.detail["enriched"] and w.enriched == 1


def test_a_later_hit_supersedes_an_older_enrichment() -> None:
    w, store, pub, _ = make()
    alert, s = hit(7)
    store.hold(alert)
    newer = store.stored[AID]
    store.stored[AID] = StoredAlert(AID, newer.kind, newer.at, newer.at + timedelta(minutes=5),
                                    newer.updated_at, "new", newer.tag_id, "R2", None, {},
                                    (s.id,))
    assert w.step(_job(w, alert, s)) is True and pub.items == []


def test_a_job_gives_up_after_give_up_s_on_the_injected_clock() -> None:
    w, store, pub, clock = make(give_up_s=60.0)
    alert, s = hit()
    store.down = True
    job = _job(w, alert, s)
    clock.now += timedelta(seconds=59)
    assert w.step(job) is False
    clock.now += timedelta(seconds=2)
    assert w.step(job) is True and w.given_up == 1 and pub.items == []


def _job(w: EnrichmentWorker, alert: Alert, s: Any) -> Any:
    assert w.submit(alert, s)
    return w._queue.get_nowait()
