"""``pak api`` as a real process: a failed sign-in is counted against the connection's
address, and against X-Forwarded-For's only when the peer is a configured trusted proxy."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests import services


def failed_sign_in_subjects(tmp_path: Path, *flags: str) -> set[str]:
    port = services.free_port()
    db = tmp_path / f"addr-{port}.sqlite3"
    proc = subprocess.Popen([sys.executable, "-m", "pak.cli", "api", "--db", f"sqlite:///{db}",
                             "--port", str(port), *flags],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        services.wait_port("127.0.0.1", port, timeout=20)
        r = httpx.post(f"http://127.0.0.1:{port}/api/v1/session",
                       json={"user": "nobody", "password": "guess"},
                       headers={"X-Forwarded-For": "203.0.113.9"}, timeout=10)
        assert r.status_code == 401
    finally:
        proc.terminate()
        proc.wait(10)
    with sqlite3.connect(db) as conn:
        return {row[0] for row in conn.execute("SELECT subject FROM login_failures")}


@pytest.mark.slow
def test_forwarded_address_only_from_a_trusted_proxy(tmp_path: Path) -> None:
    assert failed_sign_in_subjects(tmp_path) == {"user:nobody", "addr:127.0.0.1"}
    assert failed_sign_in_subjects(tmp_path, "--trusted-proxy", "127.0.0.1") == {
        "user:nobody", "addr:203.0.113.9"}
