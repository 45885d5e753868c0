"""Every codec against its JSON Schema, on generated messages, both ways: what the codec
encodes the schema accepts, and what the schema accepts the codec parses (and reads back as
it was written). The few rules no JSON Schema can state are kept out of the generated
messages and named where they are (last_seen >= first_seen; a receipt with at least one
range; a range's first <= last)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from hypothesis import given
from hypothesis import strategies as st

from pak.timefmt import format_time
from pak.types import SightingId
from pak.wire import alert, envelope, health, receipts, sightings, state, watchlist
from tests.pak.test_wire import ids, times
from tests.pak.test_wire import sightings as sighting_values
from tests.support.wire_schema import validate

# a day before the run, whole milliseconds (the wire's precision): never a fixed calendar day
T0 = (datetime.now(UTC) - timedelta(days=1)).replace(microsecond=125000)
tags = st.from_regex(r"([0-9A-F]{2}){1,16}", fullmatch=True)
wire_times = times.map(format_time)
counts = st.integers(0, 2**40)
text = st.text(max_size=30)
small_text = st.text(min_size=1, max_size=30)


def dumps(obj: Any) -> bytes:
    return orjson.dumps(obj)


def optional(d: dict[str, st.SearchStrategy[Any]]) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({}, optional=d)


# --- sightings ------------------------------------------------------------------------------

@st.composite
def sighting_objects(draw: st.DrawFn) -> dict[str, Any]:
    """Any sighting object the schema accepts (and last_seen >= first_seen)."""
    first = draw(times)
    return {
        "seq": draw(st.integers(0, 2**53 - 1)), "state": draw(st.sampled_from(["open",
                                                                             "closed"])),
        "tag_id": draw(tags), "tag_kind": draw(st.sampled_from(["epc", "active", "em4100"])),
        "tag_type": draw(st.none() | st.integers(0, 255)), "reader_id": draw(ids),
        "antenna": draw(st.none() | st.integers(1, 64)),
        "antennas": draw(st.lists(st.integers(1, 64), unique=True, max_size=6)),
        "first_seen": format_time(first),
        "last_seen": format_time(first + timedelta(milliseconds=draw(st.integers(0, 10**8)))),
        "reads": draw(st.integers(1, 2**31)),
        "rssi_max_dbm": draw(st.none() | st.integers(-200, 50)
                             | st.floats(-200, 50, allow_nan=False)),
        "rssi_max_raw": draw(st.none() | st.integers(-128, 65535)),
        "flags": draw(st.lists(st.sampled_from(["key", "low_battery", "out_of_range",
                                                "tamper"]), unique=True)),
        "reader_time": draw(st.none() | wire_times),
    }


@given(ids, ids, st.lists(sighting_objects(), min_size=1, max_size=4), wire_times,
       st.booleans())
def test_sightings_the_schema_accepts_parse(gid: str, sid: str, items: list[dict[str, Any]],
                                            sent: str, suspect: bool) -> None:
    obj = {"v": 1, "gateway_id": gid, "spool_id": sid, "sent_at": sent, "sightings": items,
           **({"clock_suspect": suspect} if suspect else {})}
    validate("sightings", obj)
    msg = sightings.parse_sightings(dumps(obj), topic_gateway_id=gid)
    assert [sightings.sighting_to_json(s)["tag_id"] for s in msg.sightings] == [
        o["tag_id"] for o in items]
    assert msg.clock_suspect is suspect


@given(st.lists(sighting_values(), min_size=1, max_size=4), st.booleans())
def test_sightings_the_codec_encodes_validate(items: list[Any], suspect: bool) -> None:
    payload = sightings.encode_sightings("gw-1", "s1", items, T0, clock_suspect=suspect)
    validate("sightings", payload)
    assert sightings.parse_sightings(payload).sightings == items


# --- state ------------------------------------------------------------------------------------

@given(st.sampled_from(["online", "offline"]), times, ids, st.none() | st.text(max_size=64))
def test_state_both_ways(s: str, at: datetime, gid: str, version: str | None) -> None:
    payload = state.encode_state(s, at, gateway_id=gid, version=version)
    validate("state", payload)
    got = state.parse_state(payload, gid)
    assert (got.state, got.at, got.gateway_id, got.version) == (s, at, gid, version)


@given(ids, st.fixed_dictionaries(
    {"v": st.just(1), "state": st.sampled_from(["online", "offline"]), "at": wire_times},
    optional={"version": st.text(max_size=64)}))
def test_state_the_schema_accepts_parses(gid: str, obj: dict[str, Any]) -> None:
    validate("state", obj)
    assert state.parse_state(dumps(obj), gid).state == obj["state"]


# --- health -----------------------------------------------------------------------------------

links = st.builds(health.LinkHealth, st.sampled_from(health.LINK_STATES),
                  st.none() | small_text, st.none() | times,
                  st.none() | st.lists(text, max_size=3).map(tuple))
clocks = st.builds(health.ClockHealth, st.sampled_from(["ok", "suspect"]),
                   st.none() | small_text)
extra_counts = st.dictionaries(st.from_regex(r"x_[a-z]{1,8}", fullmatch=True),
                               counts | st.floats(0, 1e9, allow_nan=False), max_size=3)
counters = st.builds(
    health.Counters, counts, st.dictionaries(st.from_regex(r"[a-z_]{1,12}", fullmatch=True),
                                             counts, max_size=3),
    counts, counts, counts, counts, st.none() | counts, st.none() | counts,
    st.none() | counts, st.none() | counts, extra_counts)
limits = st.none() | st.floats(0.001, 1e5, allow_nan=False)
spools = st.builds(health.SpoolHealth, ids, counts,
                   st.none() | st.floats(0, 1e7, allow_nan=False), st.none() | counts,
                   extra_counts, max_duration_s=limits, exit_after_s=limits).flatmap(
    lambda sp: st.one_of(st.just(sp), st.builds(
        lambda n, t: dataclasses.replace(sp, dropped_total=n, oldest_dropped=t),
        counts, st.none() | times)))
healths = st.builds(health.Health, ids, times, st.floats(0, 1e9, allow_nan=False), links,
                    clocks, counters, spools, st.none() | st.lists(ids, max_size=3).map(tuple))


@given(healths)
def test_health_codec_round_trips_through_the_schema(h: health.Health) -> None:
    payload = health.encode_health(h)
    obj = validate("health", payload)
    assert health.Health.from_json(obj) == h
    report = health.parse_health(payload, h.gateway_id)
    assert (report.gateway_id, report.at, report.body) == (h.gateway_id, h.at, obj)


@given(healths.map(health.health_json))
def test_health_the_schema_accepts_parses(obj: dict[str, Any]) -> None:
    validate("health", obj)
    assert health.parse_health(dumps(obj), obj["gateway_id"]).body == obj
    assert health.health_json(health.Health.from_json(obj)) == obj


# --- receipts ---------------------------------------------------------------------------------

ranges = st.lists(st.tuples(st.integers(0, 2**53 - 1), st.integers(0, 2**20)).map(
    lambda p: (p[0], min(p[0] + p[1], 2**53 - 1))), max_size=5)


@given(ids, ids, ranges, ranges, times)
def test_receipts_both_ways(gid: str, sid: str, closed: list[tuple[int, int]],
                            open_: list[tuple[int, int]], at: datetime) -> None:
    if not closed and not open_:
        closed = [(0, 0)]  # a receipt says something (no schema rule can)
    payload = receipts.encode_receipts(gid, sid, closed, at, open=open_)
    obj = validate("receipts", payload)
    r = receipts.parse_receipts(payload)
    assert (r.gateway_id, r.spool_id, r.closed, r.open) == (gid, sid, closed, open_)
    assert receipts.parse_receipts(dumps(obj)) == r


# --- watchlist --------------------------------------------------------------------------------

@given(st.sampled_from(["add", "remove"]), tags, times,
       *(st.none() | st.text(max_size=50) for _ in range(4)))
def test_watchlist_both_ways(op: str, tag: str, at: datetime, case: str | None,
                             reporter: str | None, note: str | None, reason: str | None) -> None:
    payload = watchlist.encode_watchlist_change(op, tag, at, case=case, reporter=reporter,
                                                note=note, reason=reason)
    obj = validate("watchlist", payload)
    assert watchlist.parse_watchlist(payload) == obj
    assert {k: obj.get(k) for k in ("case", "reporter", "note", "reason")} == {
        "case": case, "reporter": reporter, "note": note, "reason": reason}


@given(st.fixed_dictionaries(
    {"v": st.just(1), "op": st.sampled_from(["add", "remove"]), "tag_id": tags,
     "at": wire_times},
    optional={k: st.none() | st.text(max_size=50) for k in ("case", "reporter", "note",
                                                            "reason")}))
def test_watchlist_the_schema_accepts_parses(obj: dict[str, Any]) -> None:
    validate("watchlist", obj)
    assert watchlist.parse_watchlist(dumps(obj)) == obj


# --- alert ------------------------------------------------------------------------------------

sids = st.builds(SightingId, ids, ids, st.integers(0, 2**53 - 1))


@st.composite
def alert_values(draw: st.DrawFn) -> Any:
    from tracker.storage.base import Alert  # the tracker's value type (tests may import it)

    kind = draw(st.sampled_from([k for k in alert.ALERT_KINDS if k != "stolen_hit"]))
    return Alert(alert_id=draw(st.text(min_size=1, max_size=200)), kind=kind, at=draw(times),
                 status=draw(st.sampled_from(alert.ALERT_STATUSES)),
                 tag_id=draw(st.none() | tags), reader_id=draw(st.none() | ids),
                 gateway_id=draw(st.none() | ids), sighting=draw(st.none() | sids),
                 detail=draw(st.dictionaries(st.text(max_size=8), st.integers(-2**53, 2**53) | text,
                                             max_size=3)))


@given(alert_values(), st.integers(0, 2**53))
def test_alert_both_ways(a: Any, rev: int) -> None:
    payload = alert.encode_alert(a, rev)
    obj = validate("alert", payload)
    assert alert.alert_json(a, rev) == obj
    m = alert.parse_alert(payload)
    assert (m.alert_id, m.kind, m.rev, m.at, m.status, m.tag_id, m.reader_id, m.gateway_id,
            m.detail) == (a.alert_id, a.kind, rev, a.at, a.status, a.tag_id, a.reader_id,
                          a.gateway_id, a.detail)
    sid = a.sighting
    assert m.sighting == (None if sid is None else (sid.gateway_id, sid.spool_id, sid.seq))


# --- the envelope -----------------------------------------------------------------------------

@given(st.builds(envelope.Envelope, small_text, small_text, small_text))
def test_envelope_both_ways(e: envelope.Envelope) -> None:
    payload = envelope.encode_envelope(e)
    obj = validate("envelope", payload)
    assert envelope.parse_envelope(payload) == e
    assert envelope.parse_envelope(dumps(obj)) == e
