"""The centre's presence, end to end with real processes on a private Mosquitto:

    pak sim reader --> pty --> pak gateway --> Mosquitto --> pak tracker --> SQLite
                                   ^---- receipts, {root}/centre ----+

The receipt timer is set to 60 s here, so only the presence can bring a dropped sighting back
within the bounds asserted (issue 9): at first start (the gateway publishes before any tracker
subscribed) every sighting is stored within 5 s of the tracker's announcement; after a broker
outage the first sighting made during it is stored within 5 s of broker and tracker both being
back, and all of them within 10 s of the broker's return. Delays are measured from observable
events: the tracker's ``centre_presence`` log line (its time stamp), the broker's port open
again, and each row's ``stored_at``; the measured figures are printed (``pytest -s``).
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import time
from datetime import datetime
from pathlib import Path

import pytest

from tests import services
from tests.gateway.harness import Proc, gateway, gateway_args, sim_reader, spool_rows
from tests.support.procs import TrackerProcess, tracker
from tests.support.wait import eventually

pytestmark = [pytest.mark.mosquitto, pytest.mark.slow]

GW = "gw-presence"
TAGS = [f"E2003016661301211550{i:04X}" for i in range(6)]
#: Only the presence can be this quick: the receipt timer waits a minute.
SLOW_RECEIPT_TIMER = ["--republish-after", "60", "--republish-max", "600"]
OUTAGE_S = 5.0


def sim_args(link: Path, duration: float) -> list[str]:
    tags = [a for i, t in enumerate(TAGS) for a in ("--tag", f"{t}:{i % 4 + 1}")]
    return ["--driver", "r2000", "--link", str(link), *tags, "--dwell", "0.6", "--visible",
            "2", "--rate", "40", "--duration", str(duration), "--seed", "9"]


def start_gateway(tmp: Path, url: str, root: str) -> contextlib.AbstractContextManager[Proc]:
    return gateway([*gateway_args(gateway_id=GW, spool=tmp / "spool", mqtt_url=url, root=root,
                                  extra=SLOW_RECEIPT_TIMER),
                    "--driver", "r2000", "--serial", str(tmp / "reader"), "--exit-after", "0.3"],
                   tmp / "gw.log")


def start_tracker(tmp: Path, url: str, root: str) -> contextlib.AbstractContextManager[
        TrackerProcess]:
    return tracker(tmp, mqtt=url, db=f"sqlite://{tmp}/pak.db", root=root, client_id="trk",
                   extra=["--no-alerts", "--log-format", "json"])


def presence_times(t: TrackerProcess) -> list[float]:
    """Unix times of the tracker's presence announcements, from its own log."""
    out = []
    for line in t.log_text().splitlines():
        if '"centre_presence"' in line:
            out.append(datetime.fromisoformat(json.loads(line)["ts"]).timestamp())
    return out


def stored(tmp: Path) -> dict[int, tuple[float, float]]:
    """seq -> (first_seen, stored_at), Unix seconds, straight from the tracker's database."""
    db = tmp / "pak.db"
    if not db.exists():
        return {}
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)) as c, \
            contextlib.suppress(sqlite3.OperationalError):  # not migrated yet
        return {seq: (fs / 1e6, at / 1e6) for seq, fs, at in c.execute(
            "SELECT seq, first_seen, stored_at FROM sightings WHERE gateway_id = ?", (GW,))}
    return {}


def spooled_first_seen(spool: Path) -> list[float]:
    db = spool / "spool.db"
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)) as c:
        return [r[0] for r in c.execute("SELECT first_seen FROM sightings")]


def test_at_first_start_what_went_unheard_is_stored_within_5s_of_the_tracker_subscribing(
        tmp_path: Path, private_broker: services.PrivateMosquitto) -> None:
    root = services.unique("pak-p/")
    url = private_broker.url
    spool = tmp_path / "spool"
    with sim_reader(sim_args(tmp_path / "reader", 60), tmp_path / "sim.log") as sim, \
            start_gateway(tmp_path, url, root) as gw:
        eventually(lambda: "mqtt_connected" in gw.log_text(), 15, "the gateway connected")
        eventually(lambda: list(spool_rows(spool).values()).count("closed") >= 3, 20,
                   "sightings closed", detail=lambda: gw.log_text()[-2000:])
        sim.stop()  # the reader falls silent
        # every sighting closed, published to a broker where nobody listens yet
        eventually(lambda: set(spool_rows(spool).values()) == {"closed"}, 10,
                   "the sightings closed in the spool", detail=lambda: gw.log_text()[-2000:])
        unheard = set(spool_rows(spool))
        with start_tracker(tmp_path, url, root) as trk:
            trk.wait_log("centre_presence", 10)
            eventually(lambda: unheard <= set(stored(tmp_path)), 15,
                       "the unheard sightings stored",
                       detail=lambda: f"{sorted(unheard - set(stored(tmp_path)))}\n"
                                      f"{gw.log_text()[-2000:]}")
            announced = presence_times(trk)[0]
            delays = [stored(tmp_path)[s][1] - announced for s in unheard]
            print(f"\nfirst start: {len(unheard)} sightings stored {min(delays):.2f}.."
                  f"{max(delays):.2f} s after the tracker's presence")
            assert max(delays) <= 5.0
            assert "centre_epoch_new" in gw.log_text()
            eventually(lambda: not spool_rows(spool), 10, "receipted")


def test_after_a_broker_outage_the_backlog_is_stored_within_seconds(
        tmp_path: Path, private_broker: services.PrivateMosquitto) -> None:
    root = services.unique("pak-p/")
    url = private_broker.url
    with start_tracker(tmp_path, url, root) as trk, \
            sim_reader(sim_args(tmp_path / "reader", 60), tmp_path / "sim.log"), \
            start_gateway(tmp_path, url, root) as gw:
        eventually(lambda: len(stored(tmp_path)) >= 3, 15, "sightings flowing")
        epochs = gw.log_text().count("centre_epoch_new")
        down = time.time()
        private_broker.stop()
        trk.wait_log("mqtt_disconnected", 10)
        eventually(lambda: "mqtt_lost" in gw.log_text(), 10, "the gateway saw the outage")
        time.sleep(max(0.0, down + OUTAGE_S - time.time()))  # the outage itself
        private_broker.start()
        back = time.time()
        trk.wait_log("centre_presence", 15, count=2)
        tracker_back = presence_times(trk)[1]
        # every sighting that began before the broker's return left the spool: stored,
        # receipted, deleted
        eventually(lambda: min(spooled_first_seen(tmp_path / "spool"), default=back + 1) > back,
                   15, "the outage's sightings receipted",
                   detail=lambda: gw.log_text()[-2000:])
        during = {s: v for s, v in stored(tmp_path).items() if down < v[0] <= back}
        assert during, "sightings were made during the outage"
        first = min(at for _, at in during.values())
        last = max(at for _, at in during.values())
        both_back = max(back, tracker_back)
        print(f"\noutage {back - down:.1f} s: tracker announced {tracker_back - back:.2f} s "
              f"after the broker's return; {len(during)} sightings made during it stored "
              f"{first - both_back:.2f} s (first) after both were back, all within "
              f"{last - back:.2f} s of the broker's return")
        assert first - both_back <= 5.0
        assert last - back <= 10.0
        assert gw.log_text().count("centre_epoch_new") > epochs
