"""Retention run by the tracker itself, on the schedule of tracker/storage/retention_schedule.py.

A police system whose sightings (personal location data) must go after the legal period
cannot rely on a cron job nobody was told to write: ``pak tracker --retention-days N`` starts
this runner. Each run is ``Storage.retention(days, now=clock())``: evidence of open cases and
alerts copied first, then the old sightings dropped (tracker/storage/retention.py says how per
backend and TimescaleDB license).

Invariants:

* One run at a time across a tracker group: the storage takes the retention lock (PostgreSQL:
  a transaction-scoped advisory lock; SQLite: its single write lock) and answers
  ``skipped`` when another instance holds it; that instance does the work.
* A failure never stops the runner or the tracker: it is logged, counted, shown in health, and
  retried after ``retry``.
* The clock is injected; the runner waits in real time at most ``poll_s`` between looks at it,
  so a clock that jumps (a test running retention in the future, an NTP step) is noticed.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from pak.logs import event
from tracker.storage.base import Storage, StorageError
from tracker.storage.metrics import StorageMetrics
from tracker.storage.retention_schedule import Outcome, RunRecord, next_due

__all__ = ["RetentionRunner"]

_log = logging.getLogger("tracker.storage.retention")

#: After a failed run, the next attempt waits this long (or ``every``, if shorter).
RETRY: Final = timedelta(minutes=5)


def _utcnow() -> datetime:
    return datetime.now(UTC)


class RetentionRunner:
    """Runs retention every ``every`` while started; ``days=None`` means off (nothing runs,
    health says so)."""

    def __init__(self, storage: Storage, metrics: StorageMetrics, *, days: float | None,
                 every: timedelta, retry: timedelta = RETRY,
                 clock: Callable[[], datetime] = _utcnow, poll_s: float = 30.0) -> None:
        self._storage = storage
        self._metrics = metrics
        self.days = days
        self.every = every
        self.retry = retry
        self._clock = clock
        self._poll_s = max(0.01, min(poll_s, every.total_seconds()))
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._ran = threading.Condition(self._lock)
        self.run_count = 0
        self._started: datetime | None = None
        self._last: RunRecord | None = None
        self._last_ok: RunRecord | None = None
        metrics.days.set(days or 0)

    # --- the loop -------------------------------------------------------------------------

    def start(self) -> None:
        if self.days is None or self._thread is not None:
            return
        self._started = self._clock()
        event(_log, logging.INFO, "retention_scheduled", days=self.days,
              every_s=self.every.total_seconds())
        self._thread = threading.Thread(target=self._loop, name="pak-retention", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop the loop; a run in progress finishes (its transaction commits or rolls back)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _loop(self) -> None:
        assert self._started is not None
        while not self._stop.is_set():
            with self._lock:
                last = self._last
            due = next_due(last, started=self._started, every=self.every, retry=self.retry)
            wait = (due - self._clock()).total_seconds()
            if wait <= 0:
                self.run_once()
            else:
                self._stop.wait(min(wait, self._poll_s))

    # --- one run --------------------------------------------------------------------------

    def run_once(self) -> RunRecord:
        """One retention run now (by the injected clock): logged, counted, remembered."""
        if self.days is None:
            raise RuntimeError("retention is off (no --retention-days)")
        started = self._clock()
        t0 = time.monotonic()
        outcome: Outcome
        try:
            result = self._storage.retention(self.days, now=started)
            outcome = "skipped" if result.get("skipped") else "ok"
        except Exception as e:  # a failed run is retried; it must never end the loop
            result = {"error": f"{type(e).__name__}: {e}"[:500]}
            outcome = "failed"
            if not isinstance(e, StorageError):  # a bug, not the database: its traceback
                _log.warning("retention run failed", exc_info=True)
        took = round(time.monotonic() - t0, 3)
        rec = RunRecord(started, self._clock(), outcome, result)
        self._count(rec)
        event(_log, logging.WARNING if outcome == "failed" else logging.INFO, "retention_run",
              outcome=outcome, took_s=took, **{k: v for k, v in result.items()
                                               if v is not None})
        with self._lock:
            self._last = rec
            if outcome == "ok":
                self._last_ok = rec
            self.run_count += 1
            self._ran.notify_all()
        return rec

    def wait_runs(self, n: int, timeout: float) -> bool:
        """Wait until ``n`` runs have finished since construction; False on timeout."""
        with self._ran:
            return self._ran.wait_for(lambda: self.run_count >= n, timeout)

    def _count(self, rec: RunRecord) -> None:
        m, r = self._metrics, rec.result
        m.runs.labels(rec.outcome).inc()
        m.last_run.set(rec.started_at.timestamp())
        if rec.outcome != "ok":
            return
        m.last_success.set(rec.started_at.timestamp())
        m.evidence_copied.inc(r.get("evidence_copied") or 0)
        m.chunks_dropped.inc(r.get("chunks_dropped") or 0)
        m.rows_deleted.inc(r.get("rows_deleted") or 0)

    # --- what health shows ----------------------------------------------------------------

    def health(self) -> dict[str, Any]:
        """The retention part of the tracker's ``/healthz``."""
        if self.days is None:
            return {"enabled": False}
        with self._lock:
            last, last_ok, started = self._last, self._last_ok, self._started
        out: dict[str, Any] = {"enabled": True, "days": self.days,
                               "every_s": self.every.total_seconds(),
                               "last_run": _run_json(last), "last_success": _run_json(last_ok)}
        if started is not None:
            out["next_run_at"] = next_due(last, started=started, every=self.every,
                                          retry=self.retry).isoformat()
        return out


def _run_json(rec: RunRecord | None) -> dict[str, Any] | None:
    if rec is None:
        return None
    return {"started_at": rec.started_at.isoformat(), "finished_at": rec.finished_at.isoformat(),
            "outcome": rec.outcome, **rec.result}
