"""An alert's lifecycle: ``new -> acknowledged -> dispatched -> closed``, each step with who and
when (kept by storage as the alert's status history).

Steps only go forward; one may be skipped (an officer who dispatches at once has acknowledged
too), and any open alert may be closed (a false alarm). A closed alert stays closed: a new
event makes a new alert. Storage accepts any status; this rule is the engine's and the API's.
"""

from __future__ import annotations

from datetime import datetime
from typing import Final

from pak.errors import PakError
from pak.timefmt import utcnow
from tracker.storage.base import NotFound, Storage
from tracker.storage.records import ALERT_STATUSES, StoredAlert

__all__ = ["OPEN_STATUSES", "AlertTransitionError", "can_move", "move_alert"]

#: Statuses of an alert still being worked on.
OPEN_STATUSES: Final = ("new", "acknowledged", "dispatched")
_ORDER: Final = {s: i for i, s in enumerate(ALERT_STATUSES)}


class AlertTransitionError(PakError):
    """A status change the lifecycle does not allow (backwards, or out of ``closed``)."""


def can_move(current: str, to: str) -> bool:
    """Whether an alert in ``current`` may move to ``to``."""
    if current not in _ORDER or to not in _ORDER:
        return False
    return _ORDER[to] > _ORDER[current]


def move_alert(storage: Storage, alert_id: str, to: str, *, actor: str,
               note: str | None = None, at: datetime | None = None) -> StoredAlert:
    """Move an alert one or more steps forward, recording ``actor``. Raises NotFound for an
    unknown id and AlertTransitionError for a step the lifecycle forbids."""
    found = storage.get_alert(alert_id)
    if found is None:
        raise NotFound(f"no alert {alert_id!r}")
    if not can_move(found.status, to):
        raise AlertTransitionError(f"alert {alert_id}: {found.status} -> {to} is not a step "
                                   f"of new -> acknowledged -> dispatched -> closed")
    return storage.set_alert_status(alert_id, to, actor=actor, at=at or utcnow(), note=note)
