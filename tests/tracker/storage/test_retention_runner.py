"""Retention run by the tracker itself (tracker/storage/retention_runner.py), with the clock
injected so the runs happen "days in the future" without waiting: one run directly, failures,
the lock between instances, and whole trackers (``TrackerService``) on a short period, with
their ``/healthz`` and metrics."""

from __future__ import annotations

import json
import urllib.request
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from pak.types import Sighting, SightingId
from tests import services
from tracker.config import load_settings
from tracker.service import TrackerService
from tracker.storage import Alert, Storage, StorageUnavailable, open_storage
from tracker.storage.metrics import StorageMetrics
from tracker.storage.retention import RETENTION_LOCK, SKIPPED_BUSY
from tracker.storage.retention_runner import RetentionRunner

NOW = datetime.now(UTC).replace(microsecond=0)
OLD = NOW - timedelta(hours=2)  # "old" once the clock says NOW + 3 days and days = 1
FUTURE = timedelta(days=3)


class ShiftedClock:
    """The real clock plus an offset the test moves (time runs, so waits still end)."""

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset


def mk(seq: int, tag: str) -> Sighting:
    return Sighting(gateway_id="gw-1", spool_id="sp-a", seq=seq, state="closed", tag_id=tag,
                    tag_kind="epc", reader_id="rd-1", first_seen=OLD + timedelta(seconds=seq),
                    last_seen=OLD + timedelta(seconds=seq + 5), reads=3)


def fill(storage: Storage) -> list[Sighting]:
    """Five sightings; the one of seq 3 is tied to an open alert (evidence)."""
    rows = [mk(i, f"0{i}") for i in range(5)]
    storage.write_batch(rows, alerts=[Alert("open-by-sighting", "tamper", OLD,
                                            sighting=SightingId("gw-1", "sp-a", 3))])
    return rows


def sample(registry: CollectorRegistry, name: str, **labels: str) -> float:
    v = registry.get_sample_value(name, labels)
    return 0.0 if v is None else v


def chunks(url: str) -> int:
    import psycopg

    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT count(*) FROM timescaledb_information.chunks "
                           "WHERE hypertable_name = 'sightings'").fetchone()
    return int(row[0]) if row else 0


# --- one runner -----------------------------------------------------------------------------


def test_a_run_in_the_future_copies_evidence_then_drops_and_counts(storage: Storage,
                                                                     db_url: str) -> None:
    rows = fill(storage)
    pg = db_url.startswith("postgresql")
    before = chunks(db_url) if pg else 0
    registry = CollectorRegistry()
    clock = ShiftedClock()
    runner = RetentionRunner(storage, StorageMetrics(storage, registry), days=1,
                             every=timedelta(hours=1), clock=clock)
    assert runner.run_once().result["evidence_copied"] == 0  # today: nothing is old yet
    assert len(storage.sightings(limit=None)) == 5

    clock.offset = FUTURE
    rec = runner.run_once()
    assert rec.outcome == "ok" and rec.started_at >= NOW + FUTURE
    assert storage.sightings(limit=None) == []
    assert storage.evidence_sightings() == [rows[3]]
    assert sample(registry, "pak_retention_runs_total", outcome="ok") == 2
    assert sample(registry, "pak_retention_evidence_copied_rows_total") == 1
    if pg:
        assert before >= 1 and chunks(db_url) == 0
        assert sample(registry, "pak_retention_chunks_dropped_total") == before
    else:
        assert sample(registry, "pak_retention_rows_deleted_total") == 5
    assert sample(registry, "pak_retention_last_success_timestamp_seconds") == \
        rec.started_at.timestamp()
    assert sample(registry, "pak_retention_days") == 1
    health = runner.health()
    assert health["last_success"]["evidence_copied"] == 1
    assert health["last_run"]["outcome"] == "ok"


class _Down:
    """A storage whose retention fails as a database that is away does."""

    def retention(self, days: float, *, now: datetime) -> dict[str, Any]:
        raise StorageUnavailable("postgresql: connection refused")


def test_a_failed_run_is_counted_shown_and_retried_sooner() -> None:
    registry = CollectorRegistry()
    clock = ShiftedClock()
    down: Any = _Down()
    runner = RetentionRunner(down, StorageMetrics(down, registry), days=30,
                             every=timedelta(hours=1), retry=timedelta(minutes=5), clock=clock)
    runner.start()  # the first run is due at once, and fails
    try:
        assert runner.wait_runs(1, 10)
        health = runner.health()
    finally:
        runner.stop()
    assert health["last_run"]["outcome"] == "failed"
    assert "connection refused" in health["last_run"]["error"]
    assert health["last_success"] is None
    started = datetime.fromisoformat(health["last_run"]["started_at"])
    assert datetime.fromisoformat(health["next_run_at"]) == started + timedelta(minutes=5)
    assert sample(registry, "pak_retention_runs_total", outcome="failed") == 1
    assert sample(registry, "pak_retention_last_success_timestamp_seconds") == 0


def test_retention_off_runs_nothing() -> None:
    registry = CollectorRegistry()
    down: Any = _Down()
    runner = RetentionRunner(down, StorageMetrics(down, registry), days=None,
                             every=timedelta(hours=1))
    runner.start()
    runner.stop()
    assert runner.health() == {"enabled": False}
    assert runner.run_count == 0
    assert sample(registry, "pak_retention_days") == 0


@pytest.mark.timescale
def test_a_run_while_another_instance_holds_the_lock_is_skipped(pg_url: str) -> None:
    import psycopg

    with open_storage(pg_url) as storage:
        storage.migrate()
        fill(storage)
        registry = CollectorRegistry()
        runner = RetentionRunner(storage, StorageMetrics(storage, registry), days=1,
                                 every=timedelta(hours=1), clock=lambda: NOW + FUTURE)
        with psycopg.connect(pg_url, autocommit=True) as other:
            other.execute("SELECT pg_advisory_lock(%s)", (RETENTION_LOCK,))
            rec = runner.run_once()
            assert rec.outcome == "skipped" and rec.result["skipped"] == SKIPPED_BUSY
            assert len(storage.sightings(limit=None)) == 5  # untouched
            other.execute("SELECT pg_advisory_unlock(%s)", (RETENTION_LOCK,))
        assert runner.run_once().outcome == "ok"
        assert storage.sightings(limit=None) == []
        assert sample(registry, "pak_retention_runs_total", outcome="skipped") == 1
        assert sample(registry, "pak_retention_runs_total", outcome="ok") == 1


# --- whole trackers ------------------------------------------------------------------------


def start_tracker(db: str, mqtt_url: str, root: str, name: str, clock: ShiftedClock,
                  ) -> tuple[TrackerService, int]:
    port = services.free_port()
    settings = load_settings(
        ["--mqtt", mqtt_url, "--db", db, "--topic-root", root, "--client-id", name,
         "--group", root.replace("/", "-"), "--no-alerts", "--metrics-port", str(port),
         "--metrics-addr", "127.0.0.1", "--retention-days", "1",
         "--retention-interval-s", "0.2"], env={})
    service = TrackerService(settings, clock=clock)
    assert service.start()
    return service, port


def get(port: int, path: str) -> bytes:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as r:
        body: bytes = r.read()
        return body


def runs_after_now(service: TrackerService, runs: int = 2) -> None:
    """Wait until ``runs`` more runs have finished: the last of them started after now."""
    assert service.retention.wait_runs(service.retention.run_count + runs, 30)


@pytest.mark.mosquitto
def test_a_tracker_runs_retention_by_itself(db_url: str, mqtt_url: str, topic_root: str) -> None:
    with open_storage(db_url) as s:
        s.migrate()
        rows = fill(s)
    pg = db_url.startswith("postgresql")
    before = chunks(db_url) if pg else 0
    clock = ShiftedClock()
    service, port = start_tracker(db_url, mqtt_url, topic_root, "ret-a", clock)
    try:
        runs_after_now(service)  # runs on its own, today: nothing old yet
        assert len(service.storage.sightings(limit=None)) == 5
        clock.offset = FUTURE
        runs_after_now(service)
        health = json.loads(get(port, "/healthz"))
        metrics = get(port, "/metrics").decode()
        registry = service.metrics.registry
        assert service.storage.sightings(limit=None) == []
        assert service.storage.evidence_sightings() == [rows[3]]
        assert sample(registry, "pak_retention_evidence_copied_rows_total") == 1
        if pg:
            assert chunks(db_url) == 0
            assert sample(registry, "pak_retention_chunks_dropped_total") == before
        else:
            assert sample(registry, "pak_retention_rows_deleted_total") == 5
    finally:
        service.stop()
    assert health["status"] == "ok"
    ret = health["retention"]
    assert ret["enabled"] is True and ret["days"] == 1 and ret["every_s"] == 0.2
    assert ret["last_run"]["outcome"] == "ok"
    assert datetime.fromisoformat(ret["last_success"]["started_at"]) >= NOW + FUTURE
    assert "pak_retention_runs_total{outcome=\"ok\"}" in metrics
    assert "pak_storage_first_seen_conflicts_total 0.0" in metrics


@pytest.mark.mosquitto
@pytest.mark.timescale
def test_two_trackers_run_retention_one_at_a_time(pg_url: str, mqtt_url: str,
                                                  topic_root: str) -> None:
    """While a third party holds the retention lock both trackers' runs are skipped; after,
    each old row is copied or dropped once in all: the figures of both trackers add up to
    exactly one run's work."""
    import psycopg

    with open_storage(pg_url) as s:
        s.migrate()
        rows = fill(s)
    before = chunks(pg_url)
    clock = ShiftedClock()
    clock.offset = FUTURE
    trackers: list[TrackerService] = []
    with psycopg.connect(pg_url, autocommit=True) as other:
        other.execute("SELECT pg_advisory_lock(%s)", (RETENTION_LOCK,))
        try:
            for name in ("ret-a", "ret-b"):
                trackers.append(start_tracker(pg_url, mqtt_url, topic_root, name, clock)[0])
            for t in trackers:
                runs_after_now(t)
            assert len(trackers[0].storage.sightings(limit=None)) == 5
        finally:
            other.execute("SELECT pg_advisory_unlock(%s)", (RETENTION_LOCK,))
        try:
            for t in trackers:
                runs_after_now(t)
            regs = [t.metrics.registry for t in trackers]
            for r in regs:
                assert sample(r, "pak_retention_runs_total", outcome="skipped") >= 2
                assert sample(r, "pak_retention_runs_total", outcome="failed") == 0
            assert sum(sample(r, "pak_retention_evidence_copied_rows_total") for r in regs) == 1
            assert sum(sample(r, "pak_retention_chunks_dropped_total") for r in regs) == before
            assert trackers[0].storage.evidence_sightings() == [rows[3]]
            assert trackers[0].storage.sightings(limit=None) == []
        finally:
            for t in trackers:
                t.stop()


def test_settings_name_the_retention_setting() -> None:
    from pak.errors import ConfigError

    s = load_settings(["--retention-days", "30"], env={})
    assert s.retention_days == 30 and s.retention_interval_s == 3600
    assert load_settings([], env={"PAK_TRACKER_RETENTION_DAYS": "7"}).retention_days == 7
    assert load_settings([], env={}).retention_days is None
    with pytest.raises(ConfigError, match="retention_days"):
        load_settings(["--retention-days", "0"], env={})
    with pytest.raises(ConfigError, match="retention_interval_s"):
        load_settings(["--retention-interval-s", "86400"], env={})
