"""A gateway given the centre's key (``--centre-key``) believes only receipts that key signed
for its own topic and spool: forged, foreign-signed, replayed and misaddressed receipts leave
its spool as it is; the genuine one empties it. Forged presence is refused too. Real
processes: ``pak keys init``, the simulated reader, ``pak gateway`` and Mosquitto; the test
plays the centre."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from pak.keys import Signer, load_signer
from pak.timefmt import utcnow
from pak.wire.envelope import control
from pak.wire.presence import Presence, encode_presence
from pak.wire.receipts import compact_ranges, encode_receipts
from tests.gateway.harness import (
    PAK,
    REPO,
    Centre,
    gateway,
    gateway_args,
    sim_reader,
    spool_rows,
)
from tests.support.wait import eventually

pytestmark = [pytest.mark.mosquitto]

GW = "gw-signed"
TAGS = ["E2003016661301211550AA01", "E2003016661301211550AA02"]


def keys_init(folder: Path) -> tuple[Path, Path]:
    out = subprocess.run([*PAK, "keys", "init", "--dir", str(folder)], capture_output=True,
                         text=True, cwd=REPO, timeout=60, check=True)
    assert "centre.pub" in out.stdout
    return folder / "centre.key", folder / "centre.pub"


def refused(centre: Centre) -> int:
    h = centre.last_health() or {}
    return int(h.get("counters", {}).get("receipts_refused", 0))


def test_forged_receipts_do_not_empty_the_spool_and_a_signed_one_does(
        tmp_path: Path, mqtt_url: str, topic_root: str) -> None:
    key, pub = keys_init(tmp_path / "keys")
    centre_signer = load_signer(key, "tracker")
    thief = Signer.generate("tracker")
    spool, link = tmp_path / "spool", tmp_path / "reader"
    with Centre(mqtt_url, topic_root, GW, receipting=False) as centre:
        centre.wait_connected()
        with sim_reader(["--driver", "r2000", "--link", str(link), "--tag", f"{TAGS[0]}:1",
                         "--tag", f"{TAGS[1]}:2", "--dwell", "0.5", "--visible", "2",
                         "--rate", "20", "--duration", "2", "--seed", "3"],
                        tmp_path / "sim.log") as sim, \
                gateway([*gateway_args(gateway_id=GW, spool=spool, mqtt_url=mqtt_url,
                                       root=topic_root, extra=["--centre-key", str(pub)]),
                         "--driver", "r2000", "--serial", str(link), "--exit-after", "0.3"],
                        tmp_path / "gw.log") as gw:
            sim.proc.wait(20)
            eventually(lambda: centre.tags_closed() == set(TAGS), 15, "both tags closed")
            eventually(lambda: set(spool_rows(spool).values()) == {"closed"}, 10,
                       "only closed sightings left in the spool")
            rows = spool_rows(spool)
            spool_id = centre.messages[0].spool_id
            topic = centre.topics.receipts(GW)
            everything = [(0, 100_000_000)]

            def receipt(gid: str = GW, sid: str = spool_id) -> bytes:
                return encode_receipts(gid, sid, everything, utcnow())

            before = refused(centre)
            forged = [
                receipt(),  # unsigned
                control(receipt(), thief, topic),  # signed by a key the gateway lacks
                # genuinely signed for another gateway, replayed onto this one's topic
                control(receipt("gw-other"), centre_signer, centre.topics.receipts("gw-other")),
                # genuinely signed and addressed here, but for a spool this gateway lacks
                control(receipt(sid="sp-not-mine"), centre_signer, topic),
            ]
            for payload in forged:
                centre.client.publish(topic, payload, qos=1)
            eventually(lambda: refused(centre) >= before + len(forged), 10,
                       "the gateway's health counting four refused receipts",
                       detail=lambda: gw.log_text()[-2000:])
            log = gw.log_text()
            for reason in ("unsigned", "unknown_key", "wrong_topic"):
                assert f"reason={reason}" in log, log[-2000:]
            assert spool_rows(spool) == rows, "a refused receipt deleted sightings"

            # a forged presence (a huge epoch would make every later genuine one look old)
            # and one signed by another key: both refused, logged as such
            forged_presence = Presence(centre.topics.centre, "trk-x", 2**52, utcnow())
            for payload in (encode_presence(forged_presence),
                            encode_presence(forged_presence, thief)):
                centre.client.publish(centre.topics.centre, payload, qos=1)
            eventually(lambda: gw.log_text().count("presence_refused") >= 2, 10,
                       "two refused presence messages in the gateway's log",
                       detail=lambda: gw.log_text()[-2000:])

            closed = compact_ranges(rows)
            centre.client.publish(topic, control(
                encode_receipts(GW, spool_id, closed, utcnow()), centre_signer, topic), qos=1)
            eventually(lambda: not spool_rows(spool), 10, "the signed receipt empties the spool")
            assert refused(centre) >= before + len(forged)


def test_no_centre_key_with_a_broker_off_loopback_refuses_to_start(tmp_path: Path) -> None:
    out = subprocess.run([*PAK, "gateway", "--gateway-id", "gw-x", "--spool",
                          str(tmp_path / "spool"), "--serial", str(tmp_path / "tty"),
                          "--driver", "r2000", "--mqtt", "mqtt://192.0.2.1:1883"],
                         capture_output=True, text=True, cwd=REPO, timeout=60)
    assert out.returncode == 2, out.stderr
    assert "setting centre_key" in out.stderr


def test_edge_list_held_only_when_the_centre_key_signed_it_and_newer() -> None:
    from gateway.edge_watchlist import EdgeList
    from pak.wire.edge_watchlist import encode_edge_watchlist

    centre, thief = Signer.generate("tracker"), Signer.generate("tracker")
    topic, key = "pak/v1/edge/watchlist", bytes(range(32))
    edge = EdgeList(key, topic, None, centre.verifier())

    def snap(rev: int, signer: Signer | None) -> bytes:
        return control(encode_edge_watchlist(topic, rev, key, ["E2003412AB01CD02EF030001"]),
                       signer, topic)

    assert not edge.apply(snap(5, None))  # unsigned
    assert not edge.apply(snap(5, thief))  # another key
    assert edge.apply(snap(5, centre))
    assert not edge.apply(snap(4, centre))  # a replayed older revision
    assert edge.refused == 3
