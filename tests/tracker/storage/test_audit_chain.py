"""The audit log on both backends: one record per call, chained; UPDATE and DELETE refused by
the database; a tampered record found by ``pak audit verify`` (a real process)."""

from __future__ import annotations

import itertools
import json
import logging
import sqlite3
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import psycopg
import pytest

from pak.timefmt import utcnow
from tracker.storage import Storage
from tracker.storage.audit_chain import GENESIS
from tracker.usecases.audit import AuditNotWritten, log_head, record_audit, verify_chain


def _fill(storage: Storage, n: int) -> None:
    t0 = utcnow()
    for i in range(n):
        record_audit(storage, actor=f"officer{i % 2}", role="officer", client="10.0.0.7",
                     action="trail", reason=f"案件 C-{i}",
                     params={"tag_id": f"AA{i:02d}", "since": t0 - timedelta(hours=i),
                             "within_s": 30.0}, at=t0 + timedelta(microseconds=i))


def _raw(db_url: str, sql: str, params: tuple[object, ...] = ()) -> None:
    """Run one statement behind the storage's back, as someone with the database file or the
    owner's password could."""
    if db_url.startswith("sqlite"):
        with sqlite3.connect(db_url.removeprefix("sqlite://")) as conn:
            conn.execute(sql, params)
    else:
        with psycopg.connect(db_url, autocommit=True) as conn:
            conn.execute(sql.replace("?", "%s"), params)  # type: ignore[arg-type]


def _verify(db_url: str) -> tuple[int, dict[str, object]]:
    p = subprocess.run([sys.executable, "-m", "pak.cli", "audit", "verify", "--db", db_url,
                        "--json"], capture_output=True, text=True, timeout=60)
    return p.returncode, json.loads(p.stdout)


def test_each_call_appends_one_chained_record(storage: Storage) -> None:
    _fill(storage, 5)
    chain = storage.audit_chain()
    assert len(chain) == 5
    assert chain[0].prev_hash == GENESIS
    assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(chain))
    assert {(e.role, e.client) for e in chain} == {("officer", "10.0.0.7")}
    assert chain[3].params["within_s"] == 30.0 and chain[3].reason == "案件 C-3"
    report = verify_chain(storage)
    assert report.intact and report.records == 5 and report.head_hash == chain[-1].hash
    assert storage.audit_head() == chain[-1]


def test_update_and_delete_are_refused(storage: Storage, db_url: str) -> None:
    _fill(storage, 2)
    error = sqlite3.DatabaseError if db_url.startswith("sqlite") else psycopg.Error
    with pytest.raises(error, match="append-only"):
        _raw(db_url, "UPDATE audit_log SET reason = ? WHERE id = 1", ("nothing to see",))
    with pytest.raises(error, match="append-only"):
        _raw(db_url, "DELETE FROM audit_log WHERE id = 2")
    assert [e.reason for e in storage.audit_chain()] == ["案件 C-0", "案件 C-1"]


def test_verify_finds_the_first_tampered_record(storage: Storage, db_url: str) -> None:
    _fill(storage, 4)
    code, out = _verify(db_url)
    assert code == 0 and out["intact"] is True and out["records"] == 4
    ids = [e.id for e in storage.audit_chain()]
    # someone who owns the database drops the guard and rewrites one reason
    if db_url.startswith("sqlite"):
        _raw(db_url, "DROP TRIGGER audit_log_no_update")
    else:
        _raw(db_url, "ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_change")
    _raw(db_url, "UPDATE audit_log SET reason = ? WHERE id = ?", ("routine", ids[2]))
    code, out = _verify(db_url)
    assert code == 1 and out["intact"] is False and out["broken_id"] == ids[2]
    assert "changed" in str(out["problem"])


def test_a_removed_record_breaks_the_chain(storage: Storage, db_url: str) -> None:
    _fill(storage, 4)
    ids = [e.id for e in storage.audit_chain()]
    if db_url.startswith("sqlite"):
        _raw(db_url, "DROP TRIGGER audit_log_no_delete")
    else:
        _raw(db_url, "ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_change")
    _raw(db_url, "DELETE FROM audit_log WHERE id = ?", (ids[1],))
    report = verify_chain(storage)
    assert not report.intact and report.broken_id == ids[2]


def test_a_record_that_cannot_be_written_is_an_error(storage: Storage, db_url: str) -> None:
    storage.close()  # the database went away
    with pytest.raises(AuditNotWritten):
        record_audit(storage, actor="a", action="trail", reason="case", params={})


def test_concurrent_writers_never_fork_the_chain(storage: Storage) -> None:
    def write(n: int) -> None:
        for i in range(10):
            record_audit(storage, actor=f"w{n}", action="trail", reason=f"r{i}", params={})

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(write, range(4)))
    report = verify_chain(storage)
    assert report.intact and report.records == 40


def test_the_head_is_logged(storage: Storage, caplog: pytest.LogCaptureFixture) -> None:
    assert log_head(storage) is None
    _fill(storage, 3)
    with caplog.at_level(logging.INFO, logger="pak.audit"):
        head = log_head(storage)
    assert head is not None and head == storage.audit_chain()[-1]
    [rec] = [r for r in caplog.records if r.getMessage() == "audit_head"]
    assert rec.fields["hash"] == head.hash  # type: ignore[attr-defined]
