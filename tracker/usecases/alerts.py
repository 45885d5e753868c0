"""Move an alert through its lifecycle (the rule is tracker/alerts/lifecycle.py): one function
for the API's action routes, the console and any tool.

What each step needs (the one business rule, here): a dispatch names the unit sent, a close
names its outcome (:data:`OUTCOMES`); both are kept in the step's history note, ahead of the
officer's own words (``unit: 巡逻车 12; note``), so the history reads who, when and what."""

from __future__ import annotations

from datetime import datetime
from typing import Final

from pak.timefmt import utcnow
from tracker.alerts.lifecycle import AlertTransitionError, can_move
from tracker.storage.base import AlertStore, NotFound
from tracker.storage.records import StoredAlert

__all__ = ["OUTCOMES", "AlertActionError", "move_alert"]

#: How a closed alert ended: the vehicle recovered, not found at the place, or a false alarm.
OUTCOMES: Final = ("recovered", "not_found", "false_alarm")


class AlertActionError(AlertTransitionError):
    """A step without what it needs (a dispatch without a unit, a close without an outcome)."""


def move_alert(store: AlertStore, alert_id: str, to: str, *, actor: str,
               note: str | None = None, unit: str | None = None, outcome: str | None = None,
               at: datetime | None = None) -> StoredAlert:
    """Move an alert one or more steps forward, recording ``actor``. Raises NotFound for an
    unknown id, AlertActionError for a dispatch without ``unit`` or a close without an
    ``outcome`` of :data:`OUTCOMES`, and AlertTransitionError for a step the lifecycle
    forbids."""
    unit = (unit or "").strip() or None
    if to == "dispatched" and unit is None:
        raise AlertActionError("a dispatch names the unit sent (unit)")
    if to == "closed" and outcome not in OUTCOMES:
        raise AlertActionError(f"a close needs an outcome: one of {', '.join(OUTCOMES)}")
    if to not in ("dispatched", "closed") and (unit or outcome):
        raise AlertActionError("unit goes with a dispatch, outcome with a close")
    found = store.get_alert(alert_id)
    if found is None:
        raise NotFound(f"no alert {alert_id!r}")
    if not can_move(found.status, to):
        raise AlertTransitionError(f"alert is {found.status}; it cannot become {to} (new -> "
                                   "acknowledged -> dispatched -> closed)")
    parts = [f"unit: {unit}"] if unit else []
    parts += [f"outcome: {outcome}"] if to == "closed" else []
    parts += [note.strip()] if note and note.strip() else []
    return store.set_alert_status(alert_id, to, actor=actor, at=at or utcnow(),
                                  note="; ".join(parts) or None)
