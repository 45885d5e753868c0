"""The gateway's edge list (gateway/edge_watchlist.py): only a newer snapshot, for this
topic, hashed with this gateway's key, replaces the list; the list survives a restart beside
the spool; hits carry exactly the open sightings that match."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from gateway.edge_watchlist import STATE_FILE, EdgeList, send_hits
from pak.types import Sighting
from pak.wire.edge_watchlist import encode_edge_watchlist
from pak.wire.hits import parse_hit

TOPIC = "pak/v1/edge/watchlist"
KEY = b"k" * 32
# a day before the run, whole milliseconds (the wire's precision): never a fixed calendar day
T0 = (datetime.now(UTC) - timedelta(days=1)).replace(microsecond=125000)
STOLEN, OTHER = "E2000001", "E2000002"


def sighting(tag: str, state: str = "open", seq: int = 1) -> Sighting:
    return Sighting("gw-1", "sp-1", seq, state, tag, "epc", "R-1",  # type: ignore[arg-type]
                    T0, T0 + timedelta(seconds=1), 2, antennas=(1,))


def test_only_a_newer_snapshot_for_this_topic_and_key_applies(tmp_path: Path) -> None:
    edge = EdgeList(KEY, TOPIC, tmp_path)
    assert not edge.matches(STOLEN)
    assert edge.apply(encode_edge_watchlist(TOPIC, 10, KEY, [STOLEN]))
    assert edge.matches(STOLEN) and not edge.matches(OTHER)
    # a replayed older (or the same) revision cannot bring back an older list
    assert not edge.apply(encode_edge_watchlist(TOPIC, 10, KEY, []))
    assert not edge.apply(encode_edge_watchlist(TOPIC, 9, KEY, []))
    assert not edge.apply(encode_edge_watchlist("pak/v2/edge/watchlist", 11, KEY, []))
    assert not edge.apply(encode_edge_watchlist(TOPIC, 12, b"x" * 32, []))  # another key
    assert not edge.apply(b"{not json")
    assert edge.matches(STOLEN) and edge.rev == 10 and edge.refused == 5
    assert edge.apply(encode_edge_watchlist(TOPIC, 13, KEY, [OTHER]))
    assert edge.matches(OTHER) and not edge.matches(STOLEN)


def test_the_list_survives_a_restart_beside_the_spool(tmp_path: Path) -> None:
    EdgeList(KEY, TOPIC, tmp_path).apply(encode_edge_watchlist(TOPIC, 7, KEY, [STOLEN]))
    assert (tmp_path / STATE_FILE).exists()
    again = EdgeList(KEY, TOPIC, tmp_path)
    assert again.rev == 7 and again.matches(STOLEN)
    assert EdgeList(b"x" * 32, TOPIC, tmp_path).rev is None  # not ours: ignored


def test_hits_carry_the_matching_open_sightings_only(tmp_path: Path) -> None:
    edge = EdgeList(KEY, TOPIC)
    sent: list[bytes] = []

    def publish(p: bytes) -> bool:
        sent.append(p)
        return True

    events = [sighting(STOLEN, "open", 1), sighting(OTHER, "open", 2),
              sighting(STOLEN, "closed", 3)]
    kw = {"gateway_id": "gw-1", "spool_id": "sp-1", "now": T0, "clock_suspect": False,
          "publish": publish}
    assert send_hits(edge, events, **kw) == 0 and not sent  # type: ignore[arg-type]
    assert send_hits(None, events, **kw) == 0 and not sent  # type: ignore[arg-type]
    edge.apply(encode_edge_watchlist(TOPIC, 1, KEY, [STOLEN]))
    assert send_hits(edge, events, **kw) == 1  # type: ignore[arg-type]
    [msg] = sent
    assert [s.seq for s in parse_hit(msg, topic_gateway_id="gw-1").sightings] == [1]
