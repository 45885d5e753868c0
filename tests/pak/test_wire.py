"""The wire contract: builders produce what the JSON Schemas describe, the strict parser
accepts exactly that and refuses the rest with a reason code."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import jsonschema
import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pak.errors import WireError
from pak.timefmt import format_time, parse_time
from pak.types import Sighting, merge_sightings
from pak.wire.receipts import compact_ranges, encode_receipts, parse_receipts
from pak.wire.sightings import encode_sightings, parse_sightings
from pak.wire.state import encode_state
from pak.wire.topics import Topics
from tests.support.wire_schema import validate

T0 = datetime(2026, 11, 28, 6, 15, 2, 125000, tzinfo=UTC)

ids = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,20}", fullmatch=True)
times = st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2035, 1, 1),
                     timezones=st.just(UTC)).map(lambda t: t.replace(
                         microsecond=t.microsecond // 1000 * 1000))


@st.composite
def sightings(draw: st.DrawFn, gateway_id: str = "gw-1", spool_id: str = "s1") -> Sighting:
    first = draw(times)
    antennas = draw(st.lists(st.integers(1, 8), unique=True, max_size=4))
    return Sighting(
        gateway_id=gateway_id, spool_id=spool_id,
        seq=draw(st.integers(0, 2**53 - 1)),
        state=draw(st.sampled_from(["open", "closed"])),
        tag_id=draw(st.from_regex(r"([0-9A-F]{2}){1,12}", fullmatch=True)),
        tag_kind=draw(st.sampled_from(["epc", "active", "em4100"])),
        reader_id=draw(ids),
        first_seen=first,
        last_seen=first + timedelta(milliseconds=draw(st.integers(0, 10**7))),
        reads=draw(st.integers(1, 10**6)),
        tag_type=draw(st.none() | st.integers(0, 255)),
        antenna=antennas[0] if antennas else None,
        antennas=tuple(antennas),
        rssi_max_dbm=draw(st.none() | st.integers(-120, 0).map(float)),
        rssi_max_raw=draw(st.none() | st.integers(0, 255)),
        flags=tuple(sorted(draw(st.sets(st.sampled_from(
            ["key", "low_battery", "out_of_range", "tamper"]))))),
        reader_time=draw(st.none() | times),
    )


def test_time_format_is_rfc3339_utc_millis() -> None:
    assert format_time(T0) == "2026-11-28T06:15:02.125Z"
    assert parse_time("2026-11-28T06:15:02.125Z") == T0
    assert parse_time("2026-11-28T14:15:02.125+08:00") == T0
    with pytest.raises(ValueError):
        parse_time("2026-11-28T06:15:02.125")  # no zone: refused
    with pytest.raises(ValueError):
        format_time(datetime(2026, 1, 1))


@given(st.lists(sightings(), min_size=1, max_size=5))
def test_sightings_round_trip_and_schema(items: list[Sighting]) -> None:
    payload = encode_sightings("gw-1", "s1", items, T0)
    validate("sightings", payload)
    msg = parse_sightings(payload, topic_gateway_id="gw-1")
    assert msg.gateway_id == "gw-1" and msg.spool_id == "s1" and msg.sent_at == T0
    assert msg.sightings == items


def _payload(**change: object) -> bytes:
    s = Sighting("gw-1", "s1", 7, "open", "E2003016", "epc", "rd-1", T0, T0, 1)
    obj = orjson.loads(encode_sightings("gw-1", "s1", [s], T0))
    for k, v in change.items():
        if k.startswith("s_"):
            obj["sightings"][0][k[2:]] = v
        else:
            obj[k] = v
    return orjson.dumps(obj)


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"not json", "not_json"),
        (b"[1,2]", "not_object"),
        (b"[" * 5000 + b"]" * 5000, "not_json"),
        (_payload(v=2), "bad_version"),
        (_payload(extra=1), "bad_envelope"),
        (_payload(gateway_id="gw-2"), "gateway_mismatch"),
        (_payload(gateway_id="a/b"), "bad_field"),
        (_payload(sightings=[]), "bad_field"),
        (_payload(s_seq=-1), "bad_field"),
        (_payload(s_seq="7"), "bad_field"),
        (_payload(s_state="gone"), "bad_field"),
        (_payload(s_tag_id="e200"), "bad_field"),
        (_payload(s_reads=0), "bad_field"),
        (_payload(s_reads=True), "bad_field"),
        (_payload(s_flags=["stolen"]), "bad_field"),
        (_payload(s_first_seen="2026-11-28 06:15:02"), "bad_time"),
        (_payload(s_last_seen="2026-11-28T06:15:01.000Z"), "bad_field"),
        (_payload(s_antennas=[1, 1]), "bad_field"),
        (_payload(s_extra=1), "bad_sighting"),
    ],
)
def test_parser_refuses_with_reason(payload: bytes, reason: str) -> None:
    with pytest.raises(WireError) as e:
        parse_sightings(payload, topic_gateway_id="gw-1")
    assert e.value.reason == reason
    # and the schema refuses the same payloads (where they are JSON objects at all)
    try:
        obj = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return
    # Two rules no JSON Schema can state: the topic's gateway id, and last_seen >= first_seen.
    schema_can_tell = reason != "gateway_mismatch" and "last_seen before" not in str(e.value)
    if schema_can_tell:
        with pytest.raises(jsonschema.ValidationError):
            validate("sightings", obj)


def test_future_times_refused_old_backlog_accepted() -> None:
    now = T0 + timedelta(hours=6)  # a backlog six hours old: normal
    assert parse_sightings(_payload(), topic_gateway_id="gw-1", now=now).sightings
    with pytest.raises(WireError) as e:
        parse_sightings(_payload(), now=T0 - timedelta(minutes=10))
    assert e.value.reason == "future_time"


def test_too_large_refused() -> None:
    with pytest.raises(WireError) as e:
        parse_sightings(b" " * 2_000_000)
    assert e.value.reason == "too_large"


@given(st.sets(st.integers(0, 200), max_size=60))
def test_compact_ranges_cover_exactly(seqs: set[int]) -> None:
    ranges = compact_ranges(seqs)
    covered = {s for a, b in ranges for s in range(a, b + 1)}
    assert covered == seqs
    assert all(b + 1 < c for (_, b), (c, _) in itertools.pairwise(ranges))


def test_receipts_round_trip_and_schema() -> None:
    payload = encode_receipts("gw-1", "s1", [(1, 5), (9, 9)], T0, open=[(10, 12)])
    validate("receipts", payload)
    r = parse_receipts(payload)
    assert (r.gateway_id, r.spool_id, r.closed, r.open) == ("gw-1", "s1", [(1, 5), (9, 9)],
                                                             [(10, 12)])
    with pytest.raises(WireError):
        parse_receipts(b'{"v":1,"gateway_id":"g","spool_id":"s","at":"x","ranges":[[5,1]]}')


def test_state_payloads_follow_schema() -> None:
    validate("state", encode_state("online", T0, gateway_id="gw-1", version="0.1.0"))
    validate("state", encode_state("offline", T0))
    with pytest.raises(jsonschema.ValidationError):
        validate("state", {"v": 1, "state": "sleeping", "at": format_time(T0)})


def test_topics() -> None:
    t = Topics("city/v1")
    assert t.sightings("gw-9") == "city/v1/gw/gw-9/sightings"
    assert t.shared("trk", t.all_gateways("sightings")) == "$share/trk/city/v1/gw/+/sightings"
    assert t.gateway_of("city/v1/gw/gw-9/sightings", "sightings") == "gw-9"
    assert t.gateway_of("city/v1/gw/a/b/sightings", "sightings") is None
    assert t.gateway_of("other/gw/x/sightings", "sightings") is None


@given(sightings(), sightings(), sightings())
def test_merge_rule(a: Sighting, b: Sighting, c: Sighting) -> None:
    b = b.replace(seq=a.seq, first_seen=a.first_seen, tag_id=a.tag_id)
    c = c.replace(seq=a.seq, first_seen=a.first_seen, tag_id=a.tag_id)
    ab, ba = merge_sightings(a, b), merge_sightings(b, a)

    def aggregate(s: Sighting) -> tuple[object, ...]:
        return (s.state, s.last_seen, s.reads, s.rssi_max_dbm, s.rssi_max_raw, s.flags,
                set(s.antennas))

    assert aggregate(ab) == aggregate(ba)  # the order messages meet in does not matter
    assert set(merge_sightings(ab, c).antennas) == set(a.antennas) | set(b.antennas) | set(
        c.antennas)
    assert ab.state == ("closed" if "closed" in (a.state, b.state) else "open")
    assert ab.last_seen == max(a.last_seen, b.last_seen)
    assert ab.reads == max(a.reads, b.reads)
    assert set(ab.flags) == set(a.flags) | set(b.flags)
    assert list(ab.flags) == sorted(ab.flags)
    if a.state == "closed" and b.state == "open":
        assert ab.antennas[: len(a.antennas)] == a.antennas


def test_merge_refuses_different_ids() -> None:
    s = Sighting("gw-1", "s1", 1, "open", "AA", "epc", "r", T0, T0, 1)
    with pytest.raises(ValueError):
        merge_sightings(s, s.replace(seq=2))
