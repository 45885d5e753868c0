"""The handlers' shared outbox (tracker/alerts/outbox.py): an alert that storage refused is
kept and stored by the timer's next ``store`` job, not only when another alert comes along."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import pytest

from pak.alert import Alert
from pak.wire import Topics
from tests.tracker.alerts.alert_fixtures import at
from tracker.alerts.outbox import Outbox
from tracker.storage.base import StorageUnavailable
from tracker.storage.records import StoredAlert


class FlakyAlerts:
    """An AlertStore whose writes fail while ``down``."""

    def __init__(self) -> None:
        self.down = False
        self.stored: dict[str, Alert] = {}

    def upsert_alerts(self, alerts: Sequence[Alert]) -> None:
        if self.down:
            raise StorageUnavailable("down")
        self.stored.update((a.alert_id, a) for a in alerts)

    def get_alert(self, alert_id: str) -> StoredAlert | None:
        return None

    def alerts(self, **_: Any) -> list[StoredAlert]:
        return []

    def set_alert_status(self, alert_id: str, status: str, *, actor: str, at: datetime,
                         note: str | None = None) -> StoredAlert:
        raise AssertionError("not used here")


def test_a_refused_alert_is_stored_by_the_next_store_job() -> None:
    store = FlakyAlerts()
    out = Outbox(store, lambda topic, payload, qos: None, Topics(), lambda: at(0))
    alert = Alert("gateway_offline:gw-1:1795845600000", "gateway_offline", at(0),
                  gateway_id="gw-1")
    store.down = True
    with pytest.raises(StorageUnavailable):
        out.store([alert])
    with pytest.raises(StorageUnavailable):
        out.store([])  # still down: kept
    assert store.stored == {}
    store.down = False
    out.store([])  # what the engine's "store" job runs every tick
    assert list(store.stored) == [alert.alert_id]
    out.store([])
    assert len(store.stored) == 1
