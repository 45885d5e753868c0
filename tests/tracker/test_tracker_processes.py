"""``pak tracker`` as real processes against real services, with a publisher that republishes
what is not receipted (as gateways do). Whatever fails mid-stream (PostgreSQL restarted, the
tracker or the broker killed with SIGKILL), the final table equals the stream that was sent,
row for row; two trackers on one shared subscription store every sighting once.

Failures are injected into private instances (tests/services.py), never the shared ones."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from tests import services
from tests.support.procs import TrackerProcess, tracker
from tests.support.publisher import RepublishingPublisher
from tests.support.stores import Store
from tests.support.streams import Message, expected_rows, stream
from tests.support.wait import eventually

pytestmark = [pytest.mark.slow, pytest.mark.mosquitto]

GATEWAYS = [f"gw-{i:02d}" for i in range(8)]


def final_rows(db: str) -> Store:
    from tracker.storage import open_storage

    return Store(open_storage(db))


def check_table(db: str, messages: list[Message]) -> None:
    store = final_rows(db)
    try:
        assert store.rows() == expected_rows(messages)
    finally:
        store.storage.close()


def publish_in_background(pub: RepublishingPublisher, messages: list[Message],
                          rate: float) -> threading.Thread:
    t = threading.Thread(target=pub.publish, args=(messages,), kwargs={"rate": rate},
                         daemon=True)
    t.start()
    return t


def test_two_trackers_on_one_shared_subscription_store_every_sighting_once(
        tmp_path: Path, private_broker: services.PrivateMosquitto, pg_url: str) -> None:
    root = services.unique("pak-t/")
    messages = stream(GATEWAYS, 1200, seed=11)
    with tracker(tmp_path, mqtt=private_broker.url, db=pg_url, root=root, client_id="a") as a, \
            tracker(tmp_path, mqtt=private_broker.url, db=pg_url, root=root,
                    client_id="b", extra=["--no-migrate"]) as b:
        with RepublishingPublisher(private_broker.url, root, republish_after=5) as pub:
            pub.publish(messages, rate=1500)
            pub.wait_receipted(30)
        got_a = a.metric("pak_ingest_sightings_received_total")
        got_b = b.metric("pak_ingest_sightings_received_total")
        sent = sum(len(m.sightings) for m in messages)
        # the broker split the stream: each took a share, together exactly what was sent
        assert got_a > 0 and got_b > 0
        if pub.republished == 0:
            assert got_a + got_b == sent
        else:  # a slow machine: republished copies went to one tracker or the other
            assert got_a + got_b == sent + pub.republished_sightings
        assert a.stop() == 0 and b.stop() == 0
    check_table(pg_url, messages)


@pytest.mark.parametrize("alerts", [False, True], ids=["ingest", "with-alerts"])
def test_postgres_restarted_mid_stream(tmp_path: Path, private_broker: services.PrivateMosquitto,
                                       private_pg: services.PrivatePostgres,
                                       alerts: bool) -> None:
    root = services.unique("pak-t/")
    messages = stream(GATEWAYS, 1500, seed=12)
    extra = ["--db-timeout-s", "0.5", *([] if alerts else ["--no-alerts"])]
    with tracker(tmp_path, mqtt=private_broker.url, db=private_pg.url, root=root,
                 client_id="pg", extra=extra) as t:
        with RepublishingPublisher(private_broker.url, root, republish_after=4) as pub:
            feeder = publish_in_background(pub, messages, rate=100)
            eventually(lambda: pub.receipts, 10, "the first receipts")  # the stream is flowing
            # down longer than a write waits for a connection: batches fail and are retried
            private_pg.stop()
            time.sleep(2.0)  # deliberately: the outage lasts while the stream goes on
            private_pg.start()
            feeder.join(30)
            pub.wait_receipted(40)
        log = t.log_text()
        assert t.stop() == 0
    check_table(private_pg.url, messages)
    if not alerts:
        # The alert engine's hook reads storage in the receive thread, so with it the outage
        # may hold messages back before they reach the batcher; alone, the batcher meets it.
        assert "db_unavailable" in log and "db_available" in log, log[-2000:]


def test_tracker_killed_mid_stream_then_restarted(
        tmp_path: Path, private_broker: services.PrivateMosquitto) -> None:
    root = services.unique("pak-t/")
    db = f"sqlite://{tmp_path}/pak.db"
    messages = stream(GATEWAYS, 1500, seed=13)
    with RepublishingPublisher(private_broker.url, root, republish_after=4) as pub:
        t = TrackerProcess(["--mqtt", private_broker.url, "--db", db, "--topic-root", root,
                            "--client-id", "k9", "--batch-max-age-ms", "50",
                            "--receipt-interval-ms", "200"],
                           tmp_path / "tracker.log", services.free_port())
        try:
            t.start()
            feeder = publish_in_background(pub, messages, rate=100)
            eventually(lambda: pub.receipts, 10, "the first receipts")  # the stream is flowing
            t.kill9()
            time.sleep(0.5)  # deliberately: the stream goes on while no tracker is there
            t.start()  # the same client id: the broker resumes its session
            assert "session_present=True" in t.log_text().rsplit("mqtt_connected", 1)[1]
            feeder.join(30)
            pub.wait_receipted(40)
            assert t.stop() == 0
        finally:
            t.stop()
    check_table(db, messages)


def test_broker_killed_mid_stream_then_restarted(
        tmp_path: Path, private_broker: services.PrivateMosquitto, pg_url: str) -> None:
    root = services.unique("pak-t/")
    messages = stream(GATEWAYS, 1500, seed=14)
    with tracker(tmp_path, mqtt=private_broker.url, db=pg_url, root=root, client_id="bk") as t:
        with RepublishingPublisher(private_broker.url, root, republish_after=3) as pub:
            feeder = publish_in_background(pub, messages, rate=100)
            eventually(lambda: pub.receipts, 10, "the first receipts")  # the stream is flowing
            private_broker.kill()
            time.sleep(0.5)  # deliberately: the gateways go on publishing to no broker
            private_broker.start()
            feeder.join(30)
            pub.wait_receipted(40)
        # reconnected and resubscribed (the broker's session may be gone)
        assert t.log_text().count("mqtt_connected") >= 2
        assert t.stop() == 0
    check_table(pg_url, messages)


def test_sigterm_commits_acks_and_receipts_what_is_pending(
        tmp_path: Path, private_broker: services.PrivateMosquitto) -> None:
    root = services.unique("pak-t/")
    db = f"sqlite://{tmp_path}/pak.db"
    messages = stream(GATEWAYS, 200, seed=15)
    sent = sum(len(m.sightings) for m in messages)
    # batches that would wait a minute: only the graceful stop can commit them
    with tracker(tmp_path, mqtt=private_broker.url, db=db, root=root, client_id="term",
                 extra=["--batch-max-age-ms", "60000", "--batch-size", "100000"]) as t:
        with RepublishingPublisher(private_broker.url, root, republish_after=600) as pub:
            pub.publish(messages)
            eventually(lambda: t.metric("pak_ingest_sightings_received_total") >= sent, 20,
                       "the tracker receiving the whole stream", step=0.05)
            assert pub.receipts == []  # nothing committed yet
            t0 = time.monotonic()
            assert t.stop() == 0
            assert time.monotonic() - t0 < 10
            pub.wait_receipted(5)  # the last receipts went out before the process ended
        assert "committed_all=True" in t.log_text()
    check_table(db, messages)
