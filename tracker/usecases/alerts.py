"""Move an alert through its lifecycle (the rule is tracker/alerts/lifecycle.py): one function
for the API's status route, the console and any tool."""

from __future__ import annotations

from datetime import datetime

from pak.timefmt import utcnow
from tracker.alerts.lifecycle import AlertTransitionError, can_move
from tracker.storage.base import AlertStore, NotFound
from tracker.storage.records import StoredAlert

__all__ = ["move_alert"]


def move_alert(store: AlertStore, alert_id: str, to: str, *, actor: str,
               note: str | None = None, at: datetime | None = None) -> StoredAlert:
    """Move an alert one or more steps forward, recording ``actor``. Raises NotFound for an
    unknown id and AlertTransitionError for a step the lifecycle forbids."""
    found = store.get_alert(alert_id)
    if found is None:
        raise NotFound(f"no alert {alert_id!r}")
    if not can_move(found.status, to):
        raise AlertTransitionError(f"alert is {found.status}; it cannot become {to} (new -> "
                                   "acknowledged -> dispatched -> closed)")
    return store.set_alert_status(alert_id, to, actor=actor, at=at or utcnow(), note=note)
