"""The edge watchlist and hit codecs (pak/wire/edge_watchlist.py, pak/wire/hits.py): what
they write follows their schemas and parses back; hostile payloads are refused with a reason
code, never another exception; the keyed hash depends on the key."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pak.errors import WireError
from pak.types import Sighting
from pak.wire import edge_watchlist, errors, hits
from pak.wire.edge_watchlist import (
    edge_hash,
    edge_key_id,
    encode_edge_watchlist,
    parse_edge_watchlist,
)
from pak.wire.hits import encode_hit, parse_hit
from tests.support.wire_schema import validate

# a day before the run, whole milliseconds (the wire's precision): never a fixed calendar day
T0 = (datetime.now(UTC) - timedelta(days=1)).replace(microsecond=125000)
TOPIC = "pak/v1/edge/watchlist"
KEY = bytes(range(32))

tags = st.text(alphabet="0123456789ABCDEF", min_size=2, max_size=64)
keys = st.binary(min_size=16, max_size=64)


def sighting(tag: str, state: str = "open", seq: int = 1) -> Sighting:
    return Sighting("gw-1", "sp-1", seq, state, tag, "epc", "R-1",  # type: ignore[arg-type]
                    T0, T0 + timedelta(seconds=1), 2, antennas=(1,))


def test_reasons_are_codes() -> None:
    codes = {v for k, v in vars(errors).items() if k.isupper() and isinstance(v, str)}
    assert set(edge_watchlist.REASONS) <= codes
    assert set(hits.REASONS) <= codes


@settings(max_examples=60, deadline=None)
@given(key=keys, watched=st.sets(tags, max_size=20), rev=st.integers(0, 2**62))
def test_snapshot_round_trip(key: bytes, watched: set[str], rev: int) -> None:
    payload = encode_edge_watchlist(TOPIC, rev, key, watched)
    validate("edge_watchlist", payload)
    snap = parse_edge_watchlist(payload)
    assert (snap.topic, snap.rev, snap.kid) == (TOPIC, rev, edge_key_id(key))
    assert snap.hashes == {edge_hash(key, t) for t in watched}
    assert len(snap.hashes) == len(watched)  # 128 bits: no collision among a few tags
    assert not any(t.lower() in payload.decode() for t in watched if len(t) >= 8)


@settings(max_examples=60, deadline=None)
@given(a=keys, b=keys, tag=tags)
def test_the_hash_is_keyed(a: bytes, b: bytes, tag: str) -> None:
    assert edge_hash(a, tag) == edge_hash(a, tag)
    assert len(edge_hash(a, tag)) == 32
    if a != b:
        assert edge_hash(a, tag) != edge_hash(b, tag)
        assert edge_key_id(a) != edge_key_id(b)


def test_hash_refuses_short_keys_and_non_tags() -> None:
    with pytest.raises(ValueError):
        edge_hash(b"short", "E200")
    with pytest.raises(ValueError):
        edge_hash(KEY, "e200")  # the wire writes tags upper-case: one form, one hash


@settings(max_examples=200, deadline=None)
@given(st.one_of(st.binary(max_size=300),
                 st.dictionaries(st.sampled_from(["v", "topic", "rev", "kid", "hashes", "x"]),
                                 st.one_of(st.none(), st.integers(-2**63, 2**64 - 1),
                                           st.text(max_size=40),
                                           st.lists(st.text(max_size=40), max_size=3)))
                 .map(orjson.dumps)))
def test_hostile_snapshots_are_refused_with_a_code(payload: bytes) -> None:
    try:
        snap = parse_edge_watchlist(payload)
    except WireError as e:
        assert e.reason in edge_watchlist.REASONS
    else:
        validate("edge_watchlist", payload)
        assert snap.rev >= 0


@pytest.mark.parametrize("change", [
    {"rev": -1}, {"rev": True}, {"kid": "XYZ"}, {"hashes": ["ab"]}, {"hashes": "ab"},
    {"topic": ""}, {"extra": 1}])
def test_bad_snapshots(change: dict[str, object]) -> None:
    good = orjson.loads(encode_edge_watchlist(TOPIC, 5, KEY, ["E200"]))
    with pytest.raises(WireError) as e:
        parse_edge_watchlist(orjson.dumps({**good, **change}))
    assert e.value.reason == errors.BAD_EDGE_WATCHLIST


@settings(max_examples=40, deadline=None)
@given(st.lists(tags, min_size=1, max_size=5))
def test_hit_round_trip(hit_tags: list[str]) -> None:
    ss = [sighting(t, seq=i) for i, t in enumerate(hit_tags)]
    payload = encode_hit("gw-1", "sp-1", ss, T0)
    validate("hits", payload)
    validate("sightings", payload)  # the same codec as the bulk lane
    assert parse_hit(payload, topic_gateway_id="gw-1").sightings == ss


def test_hit_refusals() -> None:
    with pytest.raises(ValueError):
        encode_hit("gw-1", "sp-1", [sighting("E200", "closed")], T0)
    closed = orjson.loads(encode_hit("gw-1", "sp-1", [sighting("E200")], T0))
    closed["sightings"][0]["state"] = "closed"
    with pytest.raises(WireError) as e:
        parse_hit(orjson.dumps(closed), topic_gateway_id="gw-1")
    assert e.value.reason == errors.BAD_HIT
    with pytest.raises(WireError) as e:
        parse_hit(encode_hit("gw-1", "sp-1", [sighting("E200")], T0), topic_gateway_id="gw-2")
    assert e.value.reason == errors.GATEWAY_MISMATCH
