"""An alert's lifecycle: ``new -> acknowledged -> dispatched -> closed``, each step with who and
when (kept by storage as the alert's status history).

Steps only go forward; one may be skipped (an officer who dispatches at once has acknowledged
too), and any open alert may be closed (a false alarm). A closed alert stays closed: a new
event makes a new alert. Storage accepts any status; this rule is applied by the one use case
that moves alerts (tracker/usecases/alerts.py) and read by the engine (which alerts are open).
"""

from __future__ import annotations

from typing import Final

from pak.errors import PakError
from tracker.storage.records import ALERT_STATUSES

__all__ = ["OPEN_STATUSES", "AlertTransitionError", "can_move"]

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
