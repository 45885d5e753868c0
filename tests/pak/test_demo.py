"""`pak demo` end to end: everything starts from embedded defaults, sightings from all four
reader pipelines and the city are stored, and the stolen vehicle raises an alert."""

from __future__ import annotations

import re
import sqlite3
import subprocess
import sys
from pathlib import Path

from api.security.credentials import Passwords
from tests import services


def test_demo_runs_the_whole_pipeline(tmp_path: Path) -> None:
    data = tmp_path / "demo"
    port = services.free_port()
    r = subprocess.run([sys.executable, "-m", "pak.cli", "demo", "--data-dir", str(data),
                        "--port", str(port), "--duration", "40", "--vehicles", "20000"],
                       capture_output=True, text=True, timeout=150)
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"http://127.0.0.1:{port}/" in r.stdout
    # no default account: the demo made an admin and an officer and printed their passwords
    db = sqlite3.connect(data / "pak.sqlite3")
    for name in ("admin", "officer"):
        (password,) = re.findall(rf"sign in as {name}, password (\S+)", r.stdout)
        ((role, stored),) = db.execute("SELECT role, password_hash FROM users WHERE name = ?",
                                       (name,))
        assert role == name
        assert Passwords(time_cost=1, memory_kib=1024).verify(stored, password)
    readers = {row[0] for row in db.execute("SELECT DISTINCT reader_id FROM sightings")}
    # the three serial pipelines and the dial-in station, plus city readers
    assert {"rd-r2000", "rd-chafon", "rd-em4100", "79010001"} <= readers
    assert len(readers) > 10
    kinds = dict(db.execute("SELECT kind, count(*) FROM alerts GROUP BY kind").fetchall())
    assert kinds.get("stolen_hit", 0) >= 1
    assert "clone_suspect" not in kinds  # a real-time city moves at believable speeds
    # every gateway announced itself (and, stopped cleanly at the end, said goodbye)
    states = dict(db.execute("SELECT gateway_id, state FROM gateways").fetchall())
    assert {f"gw-{d}" for d in ("r2000", "chafon", "em4100", "mr7901")} <= set(states)
    assert r.stdout.count("4/4 gateways online") >= 1
