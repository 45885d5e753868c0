"""The gateway as it runs at the roadside, every part a real process:

    pak sim reader --> pty --> pak gateway --> Mosquitto --> test centre (validates against
                                   ^                            the JSON Schemas, receipts)
                                   +------------ receipts <-----+

Ground truth is the simulator's --log-sent file: every read it delivered intact must be counted
in exactly one sighting that reaches the centre (sum of ``reads`` == intact reads per tag).
"""

from __future__ import annotations

import os
import time
from collections import Counter
from pathlib import Path

import pytest

from tests import services
from tests.gateway.harness import (
    Centre,
    delivered_reads,
    gateway,
    gateway_args,
    ground_truth,
    sim_reader,
    spool_rows,
)
from tests.support.wait import eventually

pytestmark = [pytest.mark.mosquitto, pytest.mark.slow]

DRIVER = os.environ.get("PAK_TEST_GATEWAY_DRIVER", "r2000")
TAGS = [f"E20030166613012115507{i:03X}" for i in range(4)]
GW = "gw-e2e"


def sim_tags(n: int = 4) -> list[str]:
    out = []
    for i, t in enumerate(TAGS[:n]):
        out += ["--tag", f"{t}:{i % 4 + 1}"]
    return out


def reads_by_tag(truth_path: Path) -> Counter[str]:
    return Counter(r["tag_id"] for r in delivered_reads(ground_truth(truth_path)))


def counted_by_tag(centre: Centre) -> Counter[str]:
    c: Counter[str] = Counter()
    for s in centre.final().values():
        c[s["tag_id"]] += s["reads"]
    return c


def test_every_tag_arrives_open_then_closed_and_receipts_empty_the_spool(
        tmp_path: Path, mqtt_url: str, topic_root: str) -> None:
    truth = tmp_path / "sent.jsonl"
    spool = tmp_path / "spool"
    link = tmp_path / "reader"
    with Centre(mqtt_url, topic_root) as centre:
        centre.wait_connected()
        with sim_reader(["--driver", DRIVER, "--link", str(link), *sim_tags(), "--dwell", "0.8",
                         "--visible", "2", "--rate", "40", "--duration", "4", "--seed", "7",
                         "--log-sent", str(truth)], tmp_path / "sim.log") as sim, \
                gateway([*gateway_args(gateway_id=GW, spool=spool, mqtt_url=mqtt_url,
                                       root=topic_root),
                         "--driver", DRIVER, "--serial", str(link), "--exit-after", "0.3"],
                        tmp_path / "gw.log") as gw:
            sim.proc.wait(20)
            want = reads_by_tag(truth)
            assert set(want) == set(TAGS), want
            eventually(lambda: counted_by_tag(centre) == want, 10,
                       f"every intact read counted once: {want} vs {counted_by_tag(centre)}")
            eventually(lambda: not spool_rows(spool), 10, "receipted sightings leave the spool")
            centre.check_consistent()
            final = centre.final()
            for (spool_id, seq), closed in final.items():
                msgs = centre.by_id[(spool_id, seq)]
                assert msgs[0]["state"] == "open", "the open message comes first"
                # an open message published late (broker not yet connected on a loaded machine)
                # carries the aggregate so far; it never runs ahead of the closed one
                assert 1 <= msgs[0]["reads"] <= closed["reads"]
                assert closed["first_seen"] == msgs[0]["first_seen"]
                ant = TAGS.index(closed["tag_id"]) % 4 + 1
                assert closed["antennas"] == [ant] and closed["antenna"] == ant
                assert closed["reader_id"] == GW and closed["tag_kind"] == "epc"
                assert closed["rssi_max_raw"] is not None and closed["flags"] == []
                assert closed["last_seen"] >= closed["first_seen"]
            # Each stay of a tag (enter .. leave in the ground truth, with reads) is its own
            # sighting: they are 0.8 s apart, longer than exit_after.
            stays: Counter[str] = Counter()
            inside: dict[str, bool] = {}
            for r in ground_truth(truth):
                if r["event"] == "enter":
                    inside[r["tag_id"]] = False
                elif r["event"] == "read" and r["tag_id"] in inside and not inside[r["tag_id"]]:
                    inside[r["tag_id"]] = True
                    stays[r["tag_id"]] += 1
            per_tag = Counter(s["tag_id"] for s in final.values())
            for tag, n in stays.items():
                assert per_tag[tag] >= n, (tag, per_tag[tag], n)
            eventually(lambda: (centre.last_health() or {}).get("counters", {}).get("receipted",
                                                                                  0) > 0,
                       5, "health reporting receipts")
            assert gw.stop() == 0
        h = centre.last_health()
        assert h is not None and h["link"]["state"] in ("connected", "backoff", "connecting")
        assert h["counters"]["reads"] == sum(want.values())
        assert h["counters"]["sightings"] == len(final)
        eventually(lambda: bool(centre.states) and centre.states[-1]["state"] == "offline", 5,
                   "offline state on a clean stop")
        assert centre.states[0]["state"] == "online"


def test_unreceipted_sightings_come_back_until_receipted(
        tmp_path: Path, mqtt_url: str, topic_root: str) -> None:
    truth = tmp_path / "sent.jsonl"
    spool = tmp_path / "spool"
    link = tmp_path / "reader"
    with Centre(mqtt_url, topic_root, receipting=False) as centre:
        centre.wait_connected()
        with sim_reader(["--driver", DRIVER, "--link", str(link), *sim_tags(2), "--rate", "20",
                         "--duration", "1.5", "--log-sent", str(truth)],
                        tmp_path / "sim.log") as sim, \
                gateway([*gateway_args(gateway_id=GW, spool=spool, mqtt_url=mqtt_url,
                                       root=topic_root),
                         "--driver", DRIVER, "--serial", str(link), "--exit-after", "0.3"],
                        tmp_path / "gw.log"):
            sim.proc.wait(20)
            want = reads_by_tag(truth)
            eventually(lambda: counted_by_tag(centre) == want, 10, "all sightings closed")

            def republished() -> bool:
                return any(sum(m["state"] == "closed" for m in msgs) >= 2
                           for msgs in centre.by_id.values())

            eventually(republished, 10, "an unreceipted sighting published again")
            assert set(spool_rows(spool).values()) == {"closed"}  # still kept
            centre.receipting = True
            eventually(lambda: not spool_rows(spool), 15, "receipts empty the spool")
            eventually(lambda: (centre.last_health() or {}).get("spool", {}).get("depth") == 0, 5,
                       "health showing the empty spool")
            h = centre.last_health()
            assert h is not None
            assert h["counters"]["republished"] > 0 and h["counters"]["receipted"] >= len(want)
        centre.check_consistent()


def test_broker_down_at_start_then_everything_arrives(
        tmp_path: Path, private_broker: services.PrivateMosquitto, topic_root: str) -> None:
    private_broker.stop()
    truth = tmp_path / "sent.jsonl"
    spool = tmp_path / "spool"
    link = tmp_path / "reader"
    with sim_reader(["--driver", DRIVER, "--link", str(link), *sim_tags(), "--dwell", "0.5",
                     "--visible", "2", "--rate", "40", "--duration", "2.5",
                     "--log-sent", str(truth)], tmp_path / "sim.log") as sim, \
            gateway([*gateway_args(gateway_id=GW, spool=spool, mqtt_url=private_broker.url,
                                   root=topic_root),
                     "--driver", DRIVER, "--serial", str(link), "--exit-after", "0.2"],
                    tmp_path / "gw.log") as gw:
        sim.proc.wait(20)
        want = reads_by_tag(truth)
        eventually(lambda: len(spool_rows(spool)) > 0 and
                   set(spool_rows(spool).values()) == {"closed"}, 5, "sightings spooled")
        private_broker.start()
        with Centre(private_broker.url, topic_root) as centre:
            eventually(lambda: counted_by_tag(centre) == want, 20,
                       f"all arrive after the broker comes: {want} vs {counted_by_tag(centre)}")
            eventually(lambda: not spool_rows(spool), 10, "spool emptied by receipts")
            centre.check_consistent()
        assert "mqtt_unreachable" in gw.log_text()


def test_broker_killed_and_restarted_loses_nothing(
        tmp_path: Path, private_broker: services.PrivateMosquitto, topic_root: str) -> None:
    truth = tmp_path / "sent.jsonl"
    spool = tmp_path / "spool"
    link = tmp_path / "reader"
    with Centre(private_broker.url, topic_root) as centre:
        centre.wait_connected()
        with sim_reader(["--driver", DRIVER, "--link", str(link), *sim_tags(), "--dwell", "0.4",
                         "--visible", "2", "--rate", "40", "--duration", "5",
                         "--log-sent", str(truth)], tmp_path / "sim.log") as sim, \
                gateway([*gateway_args(gateway_id=GW, spool=spool, mqtt_url=private_broker.url,
                                       root=topic_root),
                         "--driver", DRIVER, "--serial", str(link), "--exit-after", "0.2"],
                        tmp_path / "gw.log") as gw:
            eventually(lambda: len(centre.messages) >= 3, 10, "traffic before the kill")
            private_broker.kill()
            time.sleep(1.5)  # deliberately: the reader goes on while the broker is away
            private_broker.start()
            sim.proc.wait(20)
            want = reads_by_tag(truth)
            eventually(lambda: counted_by_tag(centre) == want, 20,
                       f"nothing lost: {want} vs {counted_by_tag(centre)}")
            eventually(lambda: not spool_rows(spool), 10, "spool emptied by receipts")
            centre.check_consistent()
            assert "mqtt_lost" in gw.log_text()


def test_gateway_kill_9_and_restart_loses_nothing_and_reuses_no_seq(
        tmp_path: Path, mqtt_url: str, topic_root: str) -> None:
    truth = tmp_path / "sent.jsonl"
    spool = tmp_path / "spool"
    link = tmp_path / "reader"
    args = [*gateway_args(gateway_id=GW, spool=spool, mqtt_url=mqtt_url, root=topic_root),
            "--driver", DRIVER, "--serial", str(link), "--exit-after", "0.3"]
    with Centre(mqtt_url, topic_root) as centre:
        centre.wait_connected()
        with sim_reader(["--driver", DRIVER, "--link", str(link), *sim_tags(), "--dwell", "0.6",
                         "--visible", "2", "--rate", "40", "--duration", "5",
                         "--log-sent", str(truth)], tmp_path / "sim.log") as sim:
            with gateway(args, tmp_path / "gw1.log") as gw1:
                eventually(lambda: len(centre.final()) >= 2, 10, "closed sightings before the kill")
                gw1.kill9()
                # the broker sees the connection die and publishes the will
                eventually(lambda: centre.states[-1]["state"] == "offline", 5, "the will")
            seqs_before = set(spool_rows(spool)) | {k[1] for k in centre.by_id}
            with gateway(args, tmp_path / "gw2.log"):
                sim.proc.wait(20)
                final_tags = {r["tag_id"] for r in delivered_reads(ground_truth(truth))}
                eventually(lambda: centre.tags_closed() >= final_tags, 15, "every tag arrives")
                eventually(lambda: not spool_rows(spool), 10, "spool emptied by receipts")
        centre.check_consistent()  # one identity per (spool_id, seq): no seq reused
        spools = {k[0] for k in centre.by_id}
        assert len(spools) == 1, "the restarted gateway keeps its spool id"
        after = {k[1] for k in centre.by_id} - seqs_before
        assert after and min(after) > max(seqs_before)
        # Reads the dead process had already folded into a closed, committed sighting are
        # there; at most the reads of sightings still open at the kill (since their last
        # checkpoint) and those sent while no gateway read the line are missing.
        want = reads_by_tag(truth)
        got = counted_by_tag(centre)
        assert all(got[t] <= want[t] for t in want), (got, want)
        assert sum(got.values()) >= sum(want.values()) * 0.6


def test_reader_reappearing_as_a_new_pty_is_followed(
        tmp_path: Path, mqtt_url: str, topic_root: str) -> None:
    truth = tmp_path / "sent.jsonl"
    spool = tmp_path / "spool"
    link = tmp_path / "reader"
    with Centre(mqtt_url, topic_root) as centre:
        centre.wait_connected()
        with sim_reader(["--driver", DRIVER, "--link", str(link), *sim_tags(), "--dwell", "0.5",
                         "--visible", "2", "--rate", "40", "--duration", "6",
                         "--disconnect-every", "2", "--outage", "0.5", "--reappear",
                         "--log-sent", str(truth)], tmp_path / "sim.log") as sim, \
                gateway([*gateway_args(gateway_id=GW, spool=spool, mqtt_url=mqtt_url,
                                       root=topic_root),
                         "--driver", DRIVER, "--serial", str(link), "--exit-after", "0.3"],
                        tmp_path / "gw.log"):
            sim.proc.wait(20)
            truth_recs = ground_truth(truth)
            connects = [r for r in truth_recs if r["event"] == "connect"]
            assert len(connects) >= 2, "the simulator re-enumerated"
            # reads after the last reappearance must arrive: the gateway followed the link
            last_connect = max(r["t"] for r in truth_recs if r["event"] == "connect")
            late = {r["tag_id"] for r in delivered_reads(truth_recs) if r["t"] > last_connect}
            assert late
            eventually(lambda: centre.tags_closed() >= late, 15, "reads after re-enumeration")
            want = reads_by_tag(truth)
            eventually(lambda: (centre.last_health() or {}).get("counters", {}).get(
                  "reconnects", 0) >= 1, 5, "health counting the reconnects")
            got = counted_by_tag(centre)
            assert all(got[t] <= want[t] for t in want)
        centre.check_consistent()


def test_faulty_line_every_intact_frame_arrives(
        tmp_path: Path, mqtt_url: str, topic_root: str) -> None:
    truth = tmp_path / "sent.jsonl"
    spool = tmp_path / "spool"
    link = tmp_path / "reader"
    with Centre(mqtt_url, topic_root) as centre:
        centre.wait_connected()
        with sim_reader(["--driver", DRIVER, "--link", str(link), *sim_tags(), "--rate", "60",
                         "--duration", "3", "--corrupt", "0.05", "--garbage", "0.1",
                         "--drop", "0.05", "--chunk", "--seed", "3", "--log-sent", str(truth)],
                        tmp_path / "sim.log") as sim, \
                gateway([*gateway_args(gateway_id=GW, spool=spool, mqtt_url=mqtt_url,
                                       root=topic_root),
                         "--driver", DRIVER, "--serial", str(link), "--exit-after", "0.5",
                         "--link-ping-every", "0.5"],
                        tmp_path / "gw.log"):
            sim.proc.wait(20)
            truth_recs = ground_truth(truth)
            damaged = [r for r in truth_recs if r.get("event") == "read"
                       and (r.get("corrupted") or r.get("dropped"))]
            assert damaged, "the simulator damaged some frames"
            want = reads_by_tag(truth)
            eventually(lambda: all(counted_by_tag(centre)[t] >= n for t, n in want.items()), 15,
                       f"every intact frame counted: {want} vs {counted_by_tag(centre)}")
            eventually(lambda: sum((centre.last_health() or {}).get("counters", {}).get(
                  "frames_bad", {}).values()) > 0, 5, "health counting bad frames")
        centre.check_consistent()
        got = counted_by_tag(centre)
        for tag in TAGS:
            # a damaged frame is never counted as a read of a known tag
            assert got[tag] == want[tag], (tag, got[tag], want[tag])


def test_dial_in_mr7901_station(tmp_path: Path, mqtt_url: str, topic_root: str) -> None:
    port = services.free_port()
    spool = tmp_path / "spool"
    station_tags = ["A1B2C3D4", "0BADCAFE"]
    with Centre(mqtt_url, topic_root) as centre:
        centre.wait_connected()
        with gateway([*gateway_args(gateway_id=GW, spool=spool, mqtt_url=mqtt_url,
                                    root=topic_root),
                      "--driver", "mr7901", "--listen", f"tcp://127.0.0.1:{port}",
                      "--reader-tz", "Asia/Shanghai", "--exit-after", "2"],
                     tmp_path / "gw.log"):
            services.wait_port("127.0.0.1", port)
            with sim_reader(["--driver", "mr7901", "--connect", f"127.0.0.1:{port}",
                             *[a for t in station_tags for a in ("--tag", t)], "--rate", "10",
                             "--duration", "3", "--log-sent", str(tmp_path / "sent.jsonl")],
                            tmp_path / "sim.log", wait_path=False,
                            env={"TZ": "Asia/Shanghai"}) as sim:
                sim.proc.wait(20)
            eventually(lambda: centre.tags_closed() >= set(station_tags), 10,
                       "every station tag arrives")
            eventually(lambda: not spool_rows(spool), 10, "spool emptied by receipts")
        centre.check_consistent()
        for s in centre.final().values():
            assert s["tag_kind"] == "active" and s["tag_type"] is not None
            assert s["reader_id"] != GW  # the station's own device id
            assert s["reader_time"] is not None
            # the station's local clock (Asia/Shanghai) converted to UTC: within a few seconds
            # of the gateway's own stamp, not eight hours off
            from pak.timefmt import parse_time

            skew = abs((parse_time(s["reader_time"]) - parse_time(s["first_seen"]))
                       .total_seconds())
            assert skew < 5, skew
