"""The gateway's priority lane with real processes (``pak sim reader`` -> pty -> ``pak gateway``
-> Mosquitto): the tracker's retained edge list is published by the test; a gateway given
the edge key sends each open sighting of a listed tag on ``gw/{id}/hits`` (and on the bulk
lane as usual), nothing else; a gateway without the key sends no hits at all."""

from __future__ import annotations

import time
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from pak.wire.edge_watchlist import encode_edge_watchlist
from pak.wire.hits import parse_hit
from pak.wire.topics import Topics
from tests.gateway.harness import Centre, gateway, gateway_args, sim_reader
from tests.support.wait import eventually

pytestmark = [pytest.mark.mosquitto, pytest.mark.slow]

STOLEN, OTHER = "E2003016661301211550AA01", "E2003016661301211550AA02"
KEY = bytes(range(7, 39))


def test_hits_only_from_a_gateway_with_the_edge_key(tmp_path: Path, mqtt_url: str,
                                                    topic_root: str) -> None:
    topics = Topics(topic_root)
    key = tmp_path / "edge.key"
    key.write_bytes(KEY)
    host, port = mqtt_url.removeprefix("mqtt://").split(":")
    hits: list[tuple[str, bytes]] = []
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    c.on_message = lambda cl, ud, m: hits.append((m.topic, bytes(m.payload)))
    c.connect(host, int(port))
    c.loop_start()
    try:
        c.subscribe(topics.all_gateways("hits"), qos=1)
        c.publish(topics.edge_watchlist, encode_edge_watchlist(
            topics.edge_watchlist, int(time.time() * 1000), KEY, [STOLEN]), qos=1,
            retain=True).wait_for_publish(5)
        with Centre(mqtt_url, topic_root, "gw-key") as centre_a, \
                Centre(mqtt_url, topic_root, "gw-nokey") as centre_b:
            centres = {"gw-key": centre_a, "gw-nokey": centre_b}
            centre_a.wait_connected()
            centre_b.wait_connected()
            runs = {}
            for gid, extra in (("gw-key", ["--edge-key", str(key)]), ("gw-nokey", [])):
                link = tmp_path / f"reader-{gid}"
                sim = sim_reader(["--driver", "r2000", "--link", str(link), "--tag", STOLEN,
                                  "--tag", OTHER, "--dwell", "0.5", "--visible", "1",
                                  "--rate", "20", "--duration", "4", "--seed", "5"],
                                 tmp_path / f"sim-{gid}.log")
                runs[gid] = (sim, gateway([*gateway_args(gateway_id=gid,
                                                         spool=tmp_path / f"spool-{gid}",
                                                         mqtt_url=mqtt_url, root=topic_root,
                                                         extra=extra),
                                           "--driver", "r2000", "--serial", str(link),
                                           "--exit-after", "0.3"], tmp_path / f"{gid}.log"))
            with runs["gw-key"][0] as sim_a, runs["gw-nokey"][0] as sim_b, \
                    runs["gw-key"][1] as gw_a, runs["gw-nokey"][1]:
                sim_a.proc.wait(30)
                sim_b.proc.wait(30)
                eventually(lambda: "edge_watchlist_applied" in gw_a.log_text(), 10,
                           "the keyed gateway applied the edge list")

                def opens(gid: str) -> dict[int, str]:
                    return {s["seq"]: s["tag_id"] for r in centres[gid].messages
                            for s in r.sightings if s["state"] == "open"}

                eventually(lambda: any(t == STOLEN for t in opens("gw-nokey").values())
                           and any(t == STOLEN for t in opens("gw-key").values()), 15,
                           "the stolen tag's open sightings on both bulk lanes")
                eventually(lambda: hits, 10, "a hit from the keyed gateway")
        key_opens = opens("gw-key")
        for topic, payload in hits:
            assert topic == topics.hits("gw-key"), topic
            for s in parse_hit(payload, topic_gateway_id="gw-key").sightings:
                assert s.tag_id == STOLEN
                assert key_opens.get(s.seq) == STOLEN  # the same sighting on the bulk lane
        assert OTHER in set(key_opens.values())  # read, but never a hit
    finally:
        c.publish(topics.edge_watchlist, b"", qos=1, retain=True).wait_for_publish(5)
        c.loop_stop()
        c.disconnect()
