"""The pure schedule of retention runs (tracker/storage/retention_schedule.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tracker.storage.retention_schedule import Outcome, RunRecord, next_due

START = datetime.now(UTC)
EVERY = timedelta(hours=1)
RETRY = timedelta(minutes=5)


def ran(outcome: Outcome, at: datetime) -> RunRecord:
    return RunRecord(at, at + timedelta(seconds=3), outcome, {})


def test_first_run_is_due_at_start() -> None:
    assert next_due(None, started=START, every=EVERY, retry=RETRY) == START


def test_done_and_skipped_runs_wait_a_whole_period_from_their_start() -> None:
    at = START + timedelta(minutes=7)
    for outcome in ("ok", "skipped"):
        assert next_due(ran(outcome, at), started=START, every=EVERY, retry=RETRY) == at + EVERY


def test_a_failed_run_is_retried_sooner_but_never_later_than_a_period() -> None:
    at = START + timedelta(minutes=7)
    assert next_due(ran("failed", at), started=START, every=EVERY, retry=RETRY) == at + RETRY
    short = timedelta(seconds=30)
    assert next_due(ran("failed", at), started=START, every=short, retry=RETRY) == at + short
