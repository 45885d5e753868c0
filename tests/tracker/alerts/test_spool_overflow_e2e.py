"""spool_overflow through real processes: ``pak gateway`` with a 1 MB spool, fed by
``pak sim reader`` while its (private) Mosquitto is down, and ``pak tracker`` on a scratch
SQLite with alerts on and a fast timer.

When the broker comes back the gateway drains what it kept; the tracker raises exactly one
``spool_overflow:{gateway}:{spool}`` alert whose ``dropped_total`` is the gateway's own count
(its spool's ``meta.dropped``, which is also the number of rows in its ``dropped`` table), and
every sighting the gateway numbered is either stored exactly once or among the dropped, never
both, never neither.

The feed starts only once the broker is down, so no sighting was in flight when it stopped:
every drop is a sighting the centre never received, and the count must be exact.
"""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests import services
from tests.gateway.harness import gateway, gateway_args, sim_reader
from tests.support.procs import tracker
from tests.support.wait import eventually
from tracker.storage import open_storage

pytestmark = [pytest.mark.slow, pytest.mark.mosquitto]

GW = "gw-overflow"
ALERTS = ["--alert-tick-s", "0.1", "--gateway-check-s", "0.2", "--watchlist-reload-s", "3600",
          "--model-refresh-s", "3600"]


def query(db: Path, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    """Rows from a database another process writes (read-only; not through its code)."""
    if not db.exists():
        return []
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)) as c:
        return c.execute(sql, params).fetchall()


def overflow_alerts(db: Path) -> list[tuple[str, dict[str, Any]]]:
    return [(r[0], orjson.loads(r[1])) for r in
            query(db, "SELECT alert_id, detail FROM alerts WHERE kind='spool_overflow'")]


def test_spool_overflow_alert_counts_exactly_what_the_centre_never_stored(
        tmp_path: Path, private_broker: services.PrivateMosquitto) -> None:
    broker, root = private_broker, services.unique("ovf")
    db = tmp_path / "centre.db"
    with open_storage(f"sqlite://{db}") as st:
        st.migrate()
    spool, link = tmp_path / "spool", tmp_path / "reader"
    spool_db = spool / "spool.db"
    gw_log = tmp_path / "gw.log"

    with tracker(tmp_path, mqtt=broker.url, db=f"sqlite://{db}", root=root,
                 client_id=services.unique("trk-"), extra=ALERTS) as trk, \
            gateway([*gateway_args(gateway_id=GW, spool=spool, mqtt_url=broker.url, root=root),
                     "--driver", "r2000", "--serial", str(link), "--exit-after", "0.1",
                     "--spool-max-mb", "1"], gw_log) as gw:
        # The gateway is connected: its health reached the tracker's storage.
        eventually(lambda: query(db, "SELECT 1 FROM gateways WHERE gateway_id=? AND health "
                                     "IS NOT NULL", GW), 20, "the gateway's health stored",
                   step=0.1, detail=gw.log_text)
        broker.stop()
        trk.wait_log("mqtt_disconnected", 10)

        # The outage: ~3000 short sightings of random tags, far more than 1 MB of spool.
        with sim_reader(["--driver", "r2000", "--link", str(link), "--random", "3000",
                         "--rate", "2000", "--per-round", "20", "--dwell", "0.05",
                         "--visible", "40", "--count", "8000", "--seed", "9"],
                        tmp_path / "sim.log") as sim:
            sim.proc.wait(30)
        assert sim.proc.returncode == 0, sim.log_text()[-2000:]
        eventually(lambda: "spool_full_dropped" in gw.log_text(), 15,
                   "the gateway dropping for space", step=0.1, detail=lambda: gw.log_text()[-2000:])
        assert not query(db, "SELECT 1 FROM alerts WHERE kind='spool_overflow'")

        broker.start()

        def drained() -> bool:
            """The spool empty (everything kept was receipted) and the alert carrying the
            spool's own count."""
            if query(spool_db, "SELECT count(*) FROM sightings")[0][0]:
                return False
            dropped = int(query(spool_db, "SELECT value FROM meta WHERE key='dropped'")[0][0])
            alerts = overflow_alerts(db)
            return bool(alerts) and alerts[-1][1]["dropped_total"] == dropped

        eventually(drained, 30, "the spool drained and the alert at the gateway's count",
                   step=0.1, detail=lambda: f"{overflow_alerts(db)}\n{gw.log_text()[-2000:]}")

        (spool_id,) = [r[0] for r in query(spool_db, "SELECT value FROM meta "
                                                     "WHERE key='spool_id'")]
        dropped_total = int(query(spool_db, "SELECT value FROM meta WHERE key='dropped'")[0][0])
        dropped = {r[0] for r in query(spool_db, "SELECT seq FROM dropped WHERE spool_id=?",
                                       spool_id)}
        stored = [r[0] for r in query(db, "SELECT seq FROM sightings WHERE gateway_id=? AND "
                                          "spool_id=? AND state='closed'", GW, spool_id)]
        stored_any = query(db, "SELECT count(*) FROM sightings")[0][0]

    assert dropped_total > 0 and len(dropped) == dropped_total
    # Exactly one alert, named for the spool, at the gateway's exact count.
    alerts = overflow_alerts(db)
    assert [a[0] for a in alerts] == [f"spool_overflow:{GW}:{spool_id}"], alerts
    assert alerts[0][1]["dropped_total"] == dropped_total
    assert alerts[0][1]["spool_id"] == spool_id and alerts[0][1]["oldest_dropped"]
    # Every sighting not dropped is stored, once, closed; none of the dropped is.
    assert len(stored) == len(set(stored)) == stored_any
    assert not dropped & set(stored)
    numbered = dropped | set(stored)
    assert numbered == set(range(min(numbered), max(numbered) + 1)), "a seq neither stored " \
        "nor counted dropped"
