"""When the tracker runs retention: a pure decision, apart from the run itself
(tracker/storage/retention_runner.py).

Invariants:

* The first run is due as soon as the tracker starts; then one run every ``every`` after the
  start of the previous one, whatever its outcome, except a failed run, which is retried
  after ``retry`` (never later than ``every``). A run that found another instance running
  retention (``skipped``) counts as done: that instance does the work.
* Times are the injected clock's, never read here: a test runs retention "days in the
  future" by handing a clock that says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

__all__ = ["Outcome", "RunRecord", "next_due"]

Outcome = Literal["ok", "skipped", "failed"]


@dataclass(frozen=True, slots=True)
class RunRecord:
    """One retention run as the tracker saw it."""

    started_at: datetime
    finished_at: datetime
    outcome: Outcome
    #: ``Storage.retention``'s answer (``ok``, ``skipped``), or ``{"error": ...}``.
    result: dict[str, Any]


def next_due(last: RunRecord | None, *, started: datetime, every: timedelta,
             retry: timedelta) -> datetime:
    """When the next run is due, given the last one (None: none yet since ``started``)."""
    if last is None:
        return started
    gap = min(retry, every) if last.outcome == "failed" else every
    return last.started_at + gap
