"""The codecs' refusals (each with its reason code), alert revisions, and the envelope seam."""

from __future__ import annotations

import ast
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest

from pak.errors import WireError
from pak.timefmt import format_time, to_millis
from pak.wire import alert, envelope, errors, health, state, watchlist
from tests.support.wire_schema import validate

# a day before the run, whole milliseconds (the wire's precision): never a fixed calendar day
T0 = (datetime.now(UTC) - timedelta(days=1)).replace(microsecond=125000)
AT = format_time(T0)
HEALTH: dict[str, Any] = {
    "v": 1, "gateway_id": "gw-1", "at": AT, "uptime_s": 1.5,
    "link": {"state": "connected"}, "clock": {"status": "ok"},
    "counters": {"frames_ok": 1, "frames_bad": {}, "reads": 1, "sightings": 1, "dropped": 0,
                 "reconnects": 0},
    "spool": {"spool_id": "s1", "depth": 0, "oldest_age_s": None}}


def reason(parse: Any, payload: bytes | dict[str, Any], *args: Any) -> str:
    raw = payload if isinstance(payload, bytes) else orjson.dumps(payload)
    with pytest.raises(WireError) as e:
        parse(raw, *args)
    return e.value.reason


def test_every_reason_a_codec_names_is_a_code() -> None:
    codes = {v for k, v in vars(errors).items() if k.isupper() and isinstance(v, str)}
    for codec in (state, health, watchlist, alert, envelope):
        assert set(codec.REASONS) <= codes, codec.__name__


@pytest.mark.parametrize(("payload", "code"), [
    (b"x" * 70_000, errors.TOO_LARGE), (b"{", errors.NOT_JSON), (b"[]", errors.NOT_OBJECT),
    ({"v": 2, "state": "online", "at": AT}, errors.BAD_VERSION),
    ({"v": 1, "state": "asleep", "at": AT}, errors.BAD_STATE),
    ({"v": 1, "state": "online", "at": "yesterday"}, errors.BAD_STATE),
    ({"v": 1, "state": "online", "at": AT, "gateway_id": "gw-2"}, errors.GATEWAY_MISMATCH),
])
def test_state_refusals(payload: Any, code: str) -> None:
    assert reason(state.parse_state, payload, "gw-1") == code


@pytest.mark.parametrize(("change", "code"), [
    ({"gateway_id": None}, errors.BAD_HEALTH),
    ({"gateway_id": "gw-2"}, errors.GATEWAY_MISMATCH),
    ({"at": 5}, errors.BAD_HEALTH),
    ({"clock": "ok"}, errors.BAD_HEALTH),
    ({"counters": {"frames_bad": {"a": {"b": {"c": 1}}}}}, errors.TOO_DEEP),
])
def test_health_refusals(change: dict[str, Any], code: str) -> None:
    assert reason(health.parse_health, {**HEALTH, **change}, "gw-1") == code


def test_health_strict_reading_refuses_what_the_schema_refuses() -> None:
    assert health.Health.from_json(validate("health", HEALTH)).spool.oldest_age_s is None
    for bad in ({**HEALTH, "link": {"state": "asleep"}},
                {**HEALTH, "counters": {**HEALTH["counters"], "reads": -1}},
                {**HEALTH, "extra": 1}):
        with pytest.raises(WireError) as e:
            health.Health.from_json(bad)
        assert e.value.reason == errors.BAD_HEALTH


def test_watchlist_announcements_follow_the_schema() -> None:
    validate("watchlist", watchlist.encode_watchlist_change("add", "E2003412", T0, case="HZ-1",
                                                            reporter="Li", note="red"))
    validate("watchlist", watchlist.encode_watchlist_change("remove", "E2003412", T0,
                                                            reason="recovered"))
    with pytest.raises(ValueError):
        watchlist.encode_watchlist_change("delete", "E2003412", T0)


@pytest.mark.parametrize(("payload", "code"), [
    ({"v": 1, "op": "delete", "tag_id": "AA", "at": AT}, errors.BAD_WATCHLIST),
    ({"v": 1, "op": "add", "tag_id": "aa", "at": AT}, errors.BAD_WATCHLIST),
    ({"v": 1, "op": "add", "tag_id": "AA", "at": None}, errors.BAD_WATCHLIST),
    ({"v": 1, "op": "add", "tag_id": "AA", "at": AT, "note": {"x": 1}}, errors.TOO_DEEP),
])
def test_watchlist_refusals(payload: dict[str, Any], code: str) -> None:
    assert reason(watchlist.parse_watchlist, payload) == code


def test_alert_refusals() -> None:
    ok = {"v": 1, "alert_id": "a", "kind": "tamper", "rev": 1, "at": AT, "status": "new",
          "tag_id": None, "reader_id": None, "gateway_id": None, "sighting": None, "detail": {}}
    assert alert.parse_alert(orjson.dumps(validate("alert", ok))).rev == 1
    for change in ({"rev": -1}, {"rev": True}, {"kind": "party"}, {"extra": 1},
                   {"sighting": {"gateway_id": "g"}}, {"detail": []}):
        assert reason(alert.parse_alert, {**ok, **change}) == errors.BAD_ALERT, change


def test_alert_revisions_grow_per_id_even_when_the_clock_stands_still() -> None:
    now = [T0]
    revs = alert.AlertRevisions(clock=lambda: now[0], size=2)
    a1, a2, b1 = revs.next("a"), revs.next("a"), revs.next("b")
    assert a1 == to_millis(T0) and a2 == a1 + 1 and b1 == to_millis(T0)
    now[0] = T0 + timedelta(seconds=1)
    assert revs.next("a") == to_millis(now[0])
    now[0] = T0 - timedelta(seconds=5)  # the clock stepped back: still a newer revision
    assert revs.next("a") == to_millis(T0 + timedelta(seconds=1)) + 1


def test_the_envelope_seam_passes_bodies_through_unsigned_today() -> None:
    body = watchlist.encode_watchlist_change("add", "AA", T0)
    assert envelope.control(body) is body
    for payload in (b'{"v":1,"kid":"k","sig":"s"}', b'{"v":1,"kid":"k","sig":"","body":"{}"}'):
        assert reason(envelope.parse_envelope, payload) == errors.BAD_ENVELOPE


def test_the_wire_package_needs_only_the_gateway_extras() -> None:
    """pak.wire (response models included) imports neither pydantic nor FastAPI nor the
    centre's packages: an edge box installs pak[gateway] only."""
    code = ("import sys, pak.wire, pak.wire.alert, pak.wire.health, pak.wire.watchlist, "
            "pak.wire.envelope; print(sorted(m.split('.')[0] for m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    loaded = set(ast.literal_eval(out))
    assert not loaded & {"pydantic", "fastapi", "starlette", "tracker", "ingest", "api",
                         "gateway"}


def test_health_carries_what_the_gateway_sends_byte_for_byte() -> None:
    """The gateway's health payload today (gateway/runtime.py, every key it writes) reads
    into Health and encodes back to the same bytes: the gateway can build a Health and call
    encode_health without changing what the centre receives."""
    sent = {
        "v": 1, "gateway_id": "gw-1", "at": AT, "uptime_s": 12.5, "readers": ["rd-1"],
        "link": {"state": "connected", "url": "socket://10.0.0.9:4001", "since": AT},
        "clock": {"status": "suspect", "reason": "before the build date"},
        "counters": {
            "frames_ok": 9, "frames_bad": {"bad_crc": 1}, "garbage_bytes": 3, "reads": 40,
            "sightings": 4, "dropped": 0, "reconnects": 1, "published": 4, "republished": 0,
            "receipted": 4, "receipted_open": 4, "receipts": 2, "echoes": 0,
            "sightings_open": 0, "closed_exit": 4, "closed_out_of_range": 0,
            "closed_max_duration": 0, "closed_evicted": 0, "mqtt_reconnects": 0,
            "mqtt_inflight": 0, "publish_messages": 8, "core_wakeups": 50,
            "receipts_refused": 0, "spool_reservation_waits": 0},
        "spool": {"spool_id": "s1", "depth": 0, "oldest_age_s": None, "bytes": 4096,
                  "dropped_total": 2, "oldest_dropped": AT, "max_duration_s": 300.0,
                  "exit_after_s": 10.0}}
    payload = orjson.dumps(validate("health", sent))
    h = health.Health.from_json(sent)
    assert h.counters.extra["core_wakeups"] == 50 and h.clock.status == "suspect"
    assert health.encode_health(h) == payload
    assert health.health_json(h) == sent
